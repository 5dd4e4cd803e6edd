//! The evaluation plan derived from a compiled schema: adjacency slots and recursion facts.
//!
//! A *slot* holds the plain relationships (no condition, no time bounds) of one stored relation
//! with one kind of subject: `document#viewer@user`, `document#viewer@user:*`,
//! `document#viewer@group#member`. Each slot has forward (object → subjects) and reverse
//! (subject → objects) lists.

use crate::schema::{AllowedKind, RelId, RelKind, Schema, SchemaGraph, TypeId};
use std::collections::HashMap;

pub type SlotId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKind {
    Direct,
    Wildcard,
    Userset(RelId),
}

impl From<AllowedKind> for SlotKind {
    fn from(k: AllowedKind) -> Self {
        match k {
            AllowedKind::Direct => SlotKind::Direct,
            AllowedKind::Wildcard => SlotKind::Wildcard,
            AllowedKind::Userset(r) => SlotKind::Userset(r),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    pub ty: TypeId,
    pub rel: RelId,
    pub subject_ty: TypeId,
    pub kind: SlotKind,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub slots: Vec<SlotInfo>,
    /// `[type][relation]` → its slots.
    by_rel: Vec<Vec<Vec<SlotId>>>,
    lookup: HashMap<(TypeId, RelId, TypeId, SlotKind), SlotId>,
    pub graph: SchemaGraph,
}

impl Plan {
    pub fn new(schema: &Schema) -> Plan {
        let mut slots = Vec::new();
        let mut lookup = HashMap::new();
        let mut by_rel = Vec::new();
        for (t, tdef) in schema.types.iter().enumerate() {
            let mut rels = Vec::new();
            for (r, rdef) in tdef.relations.iter().enumerate() {
                let mut mine = Vec::new();
                if rdef.kind == RelKind::Relation {
                    for a in &rdef.allowed {
                        let key = (t as TypeId, r as RelId, a.ty, SlotKind::from(a.kind));
                        if let std::collections::hash_map::Entry::Vacant(e) = lookup.entry(key) {
                            let id = slots.len() as SlotId;
                            e.insert(id);
                            slots.push(SlotInfo { ty: key.0, rel: key.1, subject_ty: key.2, kind: key.3 });
                            mine.push(id);
                        }
                    }
                }
                rels.push(mine);
            }
            by_rel.push(rels);
        }
        Plan { slots, by_rel, lookup, graph: SchemaGraph::build(schema) }
    }

    pub fn slots_of(&self, ty: TypeId, rel: RelId) -> &[SlotId] {
        self.by_rel.get(ty as usize).and_then(|r| r.get(rel as usize)).map(|v| v.as_slice()).unwrap_or(&[])
    }

    pub fn slot(&self, ty: TypeId, rel: RelId, subject_ty: TypeId, kind: SlotKind) -> Option<SlotId> {
        self.lookup.get(&(ty, rel, subject_ty, kind)).copied()
    }

    pub fn info(&self, slot: SlotId) -> SlotInfo {
        self.slots[slot as usize]
    }
}
