//! Object names shared by every revision of an index.
//!
//! Names are only ever added, and an id never changes meaning, so one table can serve all
//! snapshots: a snapshot ignores ids at or above its own object count. The lock is held only
//! for a hash lookup or an append.

use crate::schema::TypeId;
use crate::store::{Interner, ObjId, WILDCARD};
use std::sync::{RwLock, RwLockReadGuard};

#[derive(Debug, Default)]
pub struct Names {
    types: Vec<RwLock<Interner>>,
}

impl Names {
    pub fn new(types: usize) -> Names {
        Names { types: (0..types).map(|_| RwLock::new(Interner::default())).collect() }
    }

    /// A table holding these interners, one per type.
    pub fn from_interners(types: Vec<Interner>) -> Names {
        Names { types: types.into_iter().map(RwLock::new).collect() }
    }

    /// Every type's interner, read-locked.
    pub fn read_all(&self) -> Vec<RwLockReadGuard<'_, Interner>> {
        self.types
            .iter()
            .map(|l| match l.read() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            })
            .collect()
    }

    pub fn intern(&self, ty: TypeId, name: &str) -> ObjId {
        match self.types.get(ty as usize) {
            Some(l) => match l.write() {
                Ok(mut g) => g.intern(name),
                Err(poisoned) => poisoned.into_inner().intern(name),
            },
            None => WILDCARD,
        }
    }

    /// Forgets the names of `ty` with ids `len` and up. Only for names no snapshot can see
    /// (ids at or above every snapshot's object count).
    pub fn truncate(&self, ty: TypeId, len: u32) {
        if let Some(l) = self.types.get(ty as usize) {
            match l.write() {
                Ok(mut g) => g.truncate(len),
                Err(poisoned) => poisoned.into_inner().truncate(len),
            }
        }
    }

    pub fn get(&self, ty: TypeId, name: &str) -> Option<ObjId> {
        let l = self.types.get(ty as usize)?;
        match l.read() {
            Ok(g) => g.get(name),
            Err(poisoned) => poisoned.into_inner().get(name),
        }
    }

    pub fn name(&self, ty: TypeId, id: ObjId) -> String {
        if id == WILDCARD {
            return "*".to_string();
        }
        let Some(l) = self.types.get(ty as usize) else { return "?".to_string() };
        let g = match l.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        g.name(id).unwrap_or("?").to_string()
    }
}
