//! Stable ids: types, relations and conditions numbered by name, once and for ever.
//!
//! The schema numbers its types and relations by position, so a schema change can renumber
//! them; rows and log records use stable ids instead, and a [`Mapping`] translates between the
//! two for one schema.

use super::{DictName, RowKey, NO_RELATION};
use crate::schema::{CondId, RelId, Schema, TypeId};
use crate::store::{Key, Obj, Subject, WILDCARD};
use std::collections::HashMap;

/// Every stable id given so far.
#[derive(Clone, Debug, Default)]
pub struct Dict {
    ids: HashMap<DictName, u32>,
    next: u32,
}

impl Dict {
    pub fn from_entries(entries: Vec<(DictName, u32)>) -> Dict {
        let next = entries.iter().map(|(_, id)| id + 1).max().unwrap_or(0);
        Dict { ids: entries.into_iter().collect(), next }
    }

    /// The id of `name`, given now (and listed in `added`) if it had none.
    fn id(&mut self, name: DictName, added: &mut Vec<(DictName, u32)>) -> u32 {
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
        let id = self.next;
        self.next += 1;
        self.ids.insert(name.clone(), id);
        added.push((name, id));
        id
    }

    /// The mapping for `schema`, giving ids to its new names; returns the ids given.
    pub fn map(&mut self, schema: &Schema) -> (Mapping, Vec<(DictName, u32)>) {
        let mut added = Vec::new();
        let mut m = Mapping::default();
        for (ty, t) in schema.types.iter().enumerate() {
            let tid = self.id(DictName::Type(t.name.clone()), &mut added);
            m.type_sid.push(tid);
            m.set_type(tid, ty as TypeId);
            let mut rels = Vec::with_capacity(t.relations.len());
            for (rel, r) in t.relations.iter().enumerate() {
                // Permissions too: a later schema may turn one into a relation.
                let rid = self.id(DictName::Relation(t.name.clone(), r.name.clone()), &mut added);
                rels.push(rid);
                m.set_rel(rid, ty as TypeId, rel as RelId);
            }
            m.rel_sid.push(rels);
        }
        for (c, cond) in schema.conditions.iter().enumerate() {
            let cid = self.id(DictName::Condition(cond.name.clone()), &mut added);
            m.cond_sid.push(cid);
            m.set_cond(cid, c as CondId);
        }
        (m, added)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Back {
    #[default]
    None,
    Type(TypeId),
    Rel(TypeId, RelId),
    Cond(CondId),
}

/// Schema ids ⇄ stable ids, for one schema.
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    type_sid: Vec<u32>,
    rel_sid: Vec<Vec<u32>>,
    cond_sid: Vec<u32>,
    /// By stable id.
    back: Vec<Back>,
}

impl Mapping {
    fn slot(&mut self, sid: u32) -> &mut Back {
        let i = sid as usize;
        if self.back.len() <= i {
            self.back.resize(i + 1, Back::None);
        }
        &mut self.back[i]
    }
    fn set_type(&mut self, sid: u32, ty: TypeId) {
        *self.slot(sid) = Back::Type(ty);
    }
    fn set_rel(&mut self, sid: u32, ty: TypeId, rel: RelId) {
        *self.slot(sid) = Back::Rel(ty, rel);
    }
    fn set_cond(&mut self, sid: u32, c: CondId) {
        *self.slot(sid) = Back::Cond(c);
    }

    pub fn type_sid(&self, ty: TypeId) -> u32 {
        self.type_sid[ty as usize]
    }

    pub fn cond_sid(&self, c: CondId) -> u32 {
        self.cond_sid[c as usize]
    }

    pub fn type_of(&self, sid: u32) -> Option<TypeId> {
        match self.back.get(sid as usize) {
            Some(Back::Type(t)) => Some(*t),
            _ => None,
        }
    }

    pub fn rel_of(&self, sid: u32) -> Option<(TypeId, RelId)> {
        match self.back.get(sid as usize) {
            Some(Back::Rel(t, r)) => Some((*t, *r)),
            _ => None,
        }
    }

    pub fn cond_of(&self, sid: u32) -> Option<CondId> {
        match self.back.get(sid as usize) {
            Some(Back::Cond(c)) => Some(*c),
            _ => None,
        }
    }

    /// The row key of a relationship.
    pub fn row_key(&self, (o, rel, s): Key) -> RowKey {
        [
            self.type_sid[o.ty as usize],
            o.id,
            self.rel_sid[o.ty as usize][rel as usize],
            self.type_sid[s.ty as usize],
            s.id,
            s.rel.map_or(NO_RELATION, |r| self.rel_sid[s.ty as usize][r as usize]),
        ]
    }

    /// The relationship of a row key; `None` if the schema no longer has its type or relation.
    pub fn key(&self, k: &RowKey) -> Option<Key> {
        let oty = self.type_of(k[0])?;
        let (rty, rel) = self.rel_of(k[2])?;
        let sty = self.type_of(k[3])?;
        let srel = match k[5] {
            NO_RELATION => None,
            sid => {
                let (t, r) = self.rel_of(sid)?;
                if t != sty {
                    return None;
                }
                Some(r)
            }
        };
        if rty != oty || (k[4] == WILDCARD && srel.is_some()) {
            return None;
        }
        Some((Obj { ty: oty, id: k[1] }, rel, Subject { ty: sty, id: k[4], rel: srel }))
    }
}
