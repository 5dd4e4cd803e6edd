//! An index's relationships under another schema (for `purview diff` and schema dry runs).
//!
//! - [`IndexData::replan`]: when the other schema stores relationships exactly as this one does
//!   (the same types, relations, allowed subjects and conditions, in the same order: only
//!   permissions, relation rewrites or condition bodies differ), the lists are shared as they are
//!   and only what the schema's rewrites decide is redone (the plan, closures for new fast
//!   paths, their "others", the permission-set caches). Milliseconds on any size.
//! - [`IndexData::under_schema`]: otherwise every relationship is named and resolved again
//!   under the other schema (as a schema change does), and those that no longer fit are left
//!   out and counted, grouped by relation and reason ([`Orphans`]). Object ids are kept for the
//!   types both schemas have, so pairs compare by id across the two.

use super::closure::Closure;
use super::plan::{Plan, SlotKind};
use super::{permsets, IndexData, PLAIN};
use crate::schema::{RelId, Schema, TypeId};
use crate::store::{write, Obj, TupleStore as _, WriteError};
use roaring::RoaringBitmap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Relationships of one relation that another schema cannot hold, for one reason.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Orphans {
    /// `type#relation` in the schema the relationships were written under.
    pub relation: String,
    pub reason: String,
    pub count: usize,
    /// Up to three of them.
    pub examples: Vec<String>,
}

/// Whether two schemas store relationships the same way, id for id.
fn same_layout(a: &Schema, b: &Schema) -> bool {
    a.types.len() == b.types.len()
        && a.types.iter().zip(&b.types).all(|(x, y)| {
            x.name == y.name
                && x.relations.len() == y.relations.len()
                && x.relations
                    .iter()
                    .zip(&y.relations)
                    .all(|(r, s)| r.name == s.name && r.kind == s.kind && r.allowed == s.allowed)
        })
        && a.conditions.len() == b.conditions.len()
        && a.conditions.iter().zip(&b.conditions).all(|(x, y)| x.name == y.name && x.params == y.params)
}

impl IndexData {
    /// This revision's relationships under `schema`, sharing every list, when `schema` stores
    /// relationships exactly as this index's schema does (see the module docs); `None` otherwise.
    pub fn replan(&self, schema: Arc<Schema>) -> Option<IndexData> {
        if !same_layout(&self.schema, &schema) {
            return None;
        }
        let plan = Arc::new(Plan::new(&schema));
        if plan.slots != self.plan.slots || plan.relation_count() != self.plan.relation_count() {
            return None;
        }
        let mut next = self.clone();
        next.closures = (0..plan.slots.len())
            .map(|s| {
                plan.closure_slots.contains(&(s as u32)).then(|| match self.closures.get(s) {
                    Some(Some(c)) => c.clone(),
                    _ => Closure::build(&self.fwd[s], &self.rev[s]),
                })
            })
            .collect();
        next.others = (0..plan.fast.len()).map(|_| Arc::new(RoaringBitmap::new())).collect();
        next.permsets = Arc::new(permsets::entries(&schema, |t, r| plan.flat(t, r), plan.relation_count()));
        next.schema = schema;
        next.plan = plan;
        next.rebuild_others();
        Some(next)
    }

    /// Recomputes every fast path's "others" from the lists (after they were built wholesale,
    /// or the plan changed).
    pub(super) fn rebuild_others(&mut self) {
        let deps: Vec<(TypeId, RelId)> = self.plan.others_deps.keys().copied().collect();
        for (ty, rel) in deps {
            let mut objects = RoaringBitmap::new();
            for &slot in self.plan.slots_of(ty, rel) {
                if self.plan.info(slot).kind != SlotKind::Direct {
                    for key in 0..self.fwd[slot as usize].key_bound() {
                        if !self.fwd[slot as usize].get(key).is_empty() {
                            objects.insert(key);
                        }
                    }
                }
            }
            // Objects with special relationships count too (see `update_others`).
            for (k, _) in self.special_of_rel(ty, rel) {
                objects.insert(k.2);
            }
            for id in &objects {
                self.update_others(Obj { ty, id }, rel);
            }
        }
    }

    /// This revision's relationships under `schema`: [`IndexData::replan`] when it applies,
    /// else every relationship resolved again by name; those `schema` cannot hold are left out
    /// and reported. Object ids stay the same for the types both schemas have.
    pub fn under_schema(&self, schema: Arc<Schema>) -> (IndexData, Vec<Orphans>) {
        if let Some(next) = self.replan(schema.clone()) {
            return (next, Vec::new());
        }
        let mut next = IndexData::new(schema.clone());
        for (new_ty, t) in schema.types.iter().enumerate() {
            if let Some(old_ty) = self.schema.type_id(&t.name) {
                for id in 0..self.object_count(old_ty) {
                    next.intern(new_ty as TypeId, &self.names().name(old_ty, id));
                }
            }
        }
        let mut plain = Vec::new();
        let mut special = Vec::new();
        let mut orphans: BTreeMap<(String, String), Orphans> = BTreeMap::new();
        self.for_each_tuple(|o, r, s, a| {
            let rel = crate::store::relationship_of(self, o, r, s, a);
            match write::resolve(&schema, &mut next, &rel) {
                Ok((o, r, s, a)) if a == PLAIN => plain.push((o, r, s)),
                Ok(t) => special.push(t),
                Err(e) => {
                    let relation = format!("{}#{}", rel.resource.ty, rel.relation);
                    let reason = orphan_reason(&e);
                    let group = orphans.entry((relation.clone(), reason.clone())).or_insert(Orphans {
                        relation,
                        reason,
                        count: 0,
                        examples: Vec::new(),
                    });
                    group.count += 1;
                    if group.examples.len() < 3 {
                        group.examples.push(rel.to_string());
                    }
                }
            }
        });
        next.bulk_load_plain(&plain);
        for (o, r, s, a) in special {
            next.insert(o, r, s, a);
        }
        next.revision = self.revision;
        (next, orphans.into_values().collect())
    }
}

/// Why a relationship does not fit, without the relationship (so that reasons group).
fn orphan_reason(e: &WriteError) -> String {
    match e {
        WriteError::UnknownType { name, .. } => format!("type `{name}` is removed"),
        WriteError::UnknownRelation { ty, relation, .. } => format!("relation `{ty}#{relation}` is removed"),
        WriteError::Permission { ty, relation, .. } => {
            format!("`{ty}#{relation}` becomes a permission, which stores nothing")
        }
        WriteError::SubjectNotAllowed { ty, relation, reason, .. } => format!("`{ty}#{relation}`: {reason}"),
        WriteError::InvalidCondition { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}
