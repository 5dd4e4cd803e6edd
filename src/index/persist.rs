//! The index as serializable parts, for snapshot files (see [`crate::storage`]).
//!
//! Everything an [`IndexData`] holds except what the schema determines (the schema and the plan)
//! is written as is: names, lists, closures and fast-path state, so that loading is a decode,
//! not a rebuild. Names are cut at each type's object count (names interned by failed writes
//! after it are left out). Loading checks that the parts fit the schema's plan.

use super::closure::Closure;
use super::lists::Lists;
use super::names::Names;
use super::{IndexData, SpecialKey};
use crate::schema::Schema;
use crate::store::{Interner, PortableAttrs, TupleAttrs};
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Written with [`IndexData::to_parts`]; the same fields, owned, as [`Parts`].
#[derive(Serialize)]
pub struct PartsRef<'a> {
    revision: u64,
    slots: u32,
    relations: u32,
    names: Vec<(&'a str, &'a [usize])>,
    counts: &'a [u32],
    fwd: &'a [Lists],
    rev: &'a [Lists],
    special: Vec<(SpecialKey, PortableAttrs)>,
    special_count: &'a [u32],
    userset_keys: Vec<Option<&'a RoaringBitmap>>,
    closures: &'a [Option<Closure>],
    others: Vec<&'a RoaringBitmap>,
    len: u64,
}

/// Read back from a snapshot; turned into an index by [`IndexData::from_parts`].
#[derive(Deserialize)]
pub struct Parts {
    pub revision: u64,
    slots: u32,
    relations: u32,
    names: Vec<(String, Vec<usize>)>,
    counts: Vec<u32>,
    fwd: Vec<Lists>,
    rev: Vec<Lists>,
    special: Vec<(SpecialKey, PortableAttrs)>,
    special_count: Vec<u32>,
    userset_keys: Vec<Option<RoaringBitmap>>,
    closures: Vec<Option<Closure>>,
    others: Vec<RoaringBitmap>,
    len: u64,
}

impl IndexData {
    /// Serializes the index through `f` (names are read under their locks while `f` runs).
    pub fn with_parts<T>(&self, f: impl FnOnce(&PartsRef<'_>) -> T) -> T {
        let guards = self.names.read_all();
        let names = guards
            .iter()
            .zip(&self.counts)
            .map(|(g, &count)| {
                let (arena, ends) = g.parts();
                let n = (count as usize).min(ends.len());
                let end = if n == 0 { 0 } else { ends[n - 1] };
                (arena.get(..end).unwrap_or(""), &ends[..n])
            })
            .collect();
        let parts = PartsRef {
            revision: self.revision,
            slots: self.plan.slots.len() as u32,
            relations: self.plan.relation_count() as u32,
            names,
            counts: &self.counts,
            fwd: &self.fwd,
            rev: &self.rev,
            special: self.special.iter().map(|(k, a)| (*k, a.to_portable(|c| c))).collect(),
            special_count: &self.special_count,
            userset_keys: self.userset_keys.iter().map(|k| k.as_deref()).collect(),
            closures: &self.closures,
            others: self.others.iter().map(|o| &**o).collect(),
            len: self.len as u64,
        };
        f(&parts)
    }

    /// The index from parts written for `schema`; an error says what does not fit.
    pub fn from_parts(schema: Arc<Schema>, p: Parts) -> Result<IndexData, String> {
        let mut data = IndexData::new(schema.clone());
        let types = schema.types.len();
        let slots = data.plan.slots.len();
        if p.slots as usize != slots || p.relations as usize != data.plan.relation_count() {
            return Err("it was written for another schema (slots or relations differ)".to_string());
        }
        let sizes_fit = p.names.len() == types
            && p.counts.len() == types
            && p.fwd.len() == slots
            && p.rev.len() == slots
            && p.special_count.len() == data.special_count.len()
            && p.userset_keys.len() == slots
            && p.closures.len() == slots
            && p.others.len() == data.others.len();
        if !sizes_fit {
            return Err("its parts do not fit the schema's plan".to_string());
        }
        let mut interners = Vec::with_capacity(types);
        for (ty, (arena, ends)) in p.names.into_iter().enumerate() {
            if ends.len() != p.counts[ty] as usize {
                return Err(format!("type {ty} has {} names for {} objects", ends.len(), p.counts[ty]));
            }
            interners.push(Interner::from_parts(arena, ends).ok_or("its names are malformed")?);
        }
        for (slot, (keys, want)) in p.userset_keys.iter().zip(&data.userset_keys).enumerate() {
            if keys.is_some() != want.is_some() {
                return Err(format!("slot {slot} has the wrong kind of keys"));
            }
        }
        for (slot, (c, want)) in p.closures.iter().zip(&data.closures).enumerate() {
            if c.is_some() != want.is_some() {
                return Err(format!("slot {slot} has the wrong kind of closure"));
            }
        }
        let mut special = imbl::OrdMap::new();
        for (k, a) in p.special {
            let conds = schema.conditions.len() as u32;
            let attrs = TupleAttrs::from_portable(&a, |c| (c < conds).then_some(c))?;
            special.insert(k, attrs);
        }
        data.names = Arc::new(Names::from_interners(interners));
        data.counts = p.counts;
        data.fwd = p.fwd;
        data.rev = p.rev;
        data.special = special;
        data.special_count = p.special_count;
        data.userset_keys = p.userset_keys.into_iter().map(|k| k.map(Arc::new)).collect();
        data.closures = p.closures;
        data.others = p.others.into_iter().map(Arc::new).collect();
        data.len = p.len as usize;
        data.revision = p.revision;
        Ok(data)
    }

    /// Whether both hold the same relationships, names, closures and fast-path state (the
    /// revision aside): used to verify a loaded index against one rebuilt from the relationships.
    pub fn differences(&self, other: &IndexData) -> Vec<String> {
        let mut out = Vec::new();
        if self.len != other.len {
            out.push(format!("{} relationships, against {}", self.len, other.len));
        }
        for ty in 0..self.schema.types.len() as u32 {
            let (a, b) = (self.object_count(ty), other.object_count(ty));
            let name = &self.schema.type_def(ty).name;
            if a != b {
                out.push(format!("type `{name}`: {a} object names, against {b}"));
            } else if (0..a).any(|id| self.names.name(ty, id) != other.names.name(ty, id)) {
                out.push(format!("type `{name}`: object names differ"));
            }
        }
        for (slot, info) in self.plan.slots.iter().enumerate() {
            let what = format!(
                "`{}#{}`",
                self.schema.type_def(info.ty).name,
                self.schema.rel_def(info.ty, info.rel).name
            );
            if !self.fwd[slot].same_as(&other.fwd[slot]) || !self.rev[slot].same_as(&other.rev[slot]) {
                out.push(format!("the relationships of {what} differ"));
            }
            if let (Some(a), Some(b)) = (&self.closures[slot], &other.closures[slot]) {
                if !a.down.same_as(&b.down) || !a.up.same_as(&b.up) {
                    out.push(format!("the closure of {what} differs"));
                }
            }
            if let (Some(a), Some(b)) = (&self.userset_keys[slot], &other.userset_keys[slot]) {
                if a != b {
                    out.push(format!("the userset keys of {what} differ"));
                }
            }
        }
        if self.special != other.special {
            out.push("the relationships with conditions or times differ".to_string());
        }
        if self.others != other.others {
            out.push("the fast paths' state differs".to_string());
        }
        out
    }
}
