//! Object names shared by every revision of an index.
//!
//! Names are only ever added, and an id never changes meaning, so one table can serve all
//! snapshots: a snapshot ignores ids at or above its own object count.
//!
//! Each type's names are in two parts. The *frozen* part holds every name the index had when
//! it was built or opened, and is read with no lock at all (no atomic read-modify-write either,
//! so the two lookups of a question overlap their cache misses). Names added since (by writes)
//! go to a *recent* part under a lock, taken only when a name is not frozen and some name was
//! added. [`Names::freeze`] folds the recent part into the frozen one when nothing else shares
//! the table (after a bulk build).

use crate::schema::TypeId;
use crate::store::{Interner, ObjId, Probe, WILDCARD};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The temporary vectors of [`Names::intern_many_with`].
#[derive(Debug, Default)]
pub struct InternScratch {
    found: Vec<Option<ObjId>>,
    missing: Vec<usize>,
    in_recent: Vec<Option<u32>>,
}

#[derive(Debug, Default)]
pub struct Names {
    types: Vec<TypeNames>,
}

#[derive(Debug, Default)]
struct TypeNames {
    /// Ids `0..frozen.len()`, read without a lock.
    frozen: Interner,
    /// Ids `frozen.len()..`, in order.
    recent: RwLock<Interner>,
    /// Whether `recent` may hold a name (set before the name is published to any snapshot).
    has_recent: AtomicBool,
}

/// One type's names, read-locked: see [`Names::read_all`].
pub struct NamesRead<'a> {
    frozen: &'a Interner,
    recent: RwLockReadGuard<'a, Interner>,
}

impl NamesRead<'_> {
    pub fn name(&self, id: ObjId) -> Option<&str> {
        let base = self.frozen.len() as u32;
        if id < base {
            self.frozen.name(id)
        } else {
            self.recent.name(id - base)
        }
    }

    /// The first `n` names back to back and where each ends (see [`Interner::parts`]).
    pub fn parts(&self, n: usize) -> (String, Vec<usize>) {
        let (mut arena, mut ends) = self.frozen.parts(n);
        if n > ends.len() {
            let (more, more_ends) = self.recent.parts(n - ends.len());
            let base = arena.len();
            arena.push_str(&more);
            ends.extend(more_ends.iter().map(|e| e + base));
        }
        (arena, ends)
    }
}

fn read(l: &RwLock<Interner>) -> RwLockReadGuard<'_, Interner> {
    match l.read() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn write(l: &RwLock<Interner>) -> RwLockWriteGuard<'_, Interner> {
    match l.write() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl TypeNames {
    fn frozen(frozen: Interner) -> TypeNames {
        TypeNames { frozen, ..TypeNames::default() }
    }

    fn get(&self, name: &str) -> Option<ObjId> {
        if let Some(id) = self.frozen.get(name) {
            return Some(id);
        }
        if !self.has_recent.load(Ordering::Acquire) {
            return None;
        }
        read(&self.recent).get(name).map(|id| id + self.frozen.len() as u32)
    }
}

impl Names {
    pub fn new(types: usize) -> Names {
        Names { types: (0..types).map(|_| TypeNames::default()).collect() }
    }

    /// A table holding these interners, one per type, all frozen.
    pub fn from_interners(types: Vec<Interner>) -> Names {
        Names { types: types.into_iter().map(TypeNames::frozen).collect() }
    }

    /// Heap bytes of every type's names.
    pub fn heap_bytes(&self) -> usize {
        self.types.iter().map(|t| t.frozen.heap_bytes() + read(&t.recent).heap_bytes()).sum()
    }

    /// Every type's names, read-locked.
    pub fn read_all(&self) -> Vec<NamesRead<'_>> {
        self.types.iter().map(|t| NamesRead { frozen: &t.frozen, recent: read(&t.recent) }).collect()
    }

    pub fn intern(&self, ty: TypeId, name: &str) -> ObjId {
        let Some(t) = self.types.get(ty as usize) else { return WILDCARD };
        if let Some(id) = t.frozen.get(name) {
            return id;
        }
        let id = write(&t.recent).intern(name);
        t.has_recent.store(true, Ordering::Release);
        id + t.frozen.len() as u32
    }

    /// Forgets the names of `ty` with ids `len` and up. Only for names no snapshot can see
    /// (ids at or above every snapshot's object count), which are never frozen: frozen names
    /// come from a build or an open of committed data.
    pub fn truncate(&self, ty: TypeId, len: u32) {
        if let Some(t) = self.types.get(ty as usize) {
            let base = t.frozen.len() as u32;
            write(&t.recent).truncate(len.saturating_sub(base));
        }
    }

    pub fn get(&self, ty: TypeId, name: &str) -> Option<ObjId> {
        self.types.get(ty as usize)?.get(name)
    }

    /// Two lookups at once (a question's object and subject): their cache misses overlap
    /// (see [`Probe`]).
    pub fn get_pair(&self, a: (TypeId, &str), b: (TypeId, &str)) -> (Option<ObjId>, Option<ObjId>) {
        let (Some(ta), Some(tb)) = (self.types.get(a.0 as usize), self.types.get(b.0 as usize)) else {
            return (self.get(a.0, a.1), self.get(b.0, b.1));
        };
        let (mut pa, mut pb) = (Probe::start(&ta.frozen, a.1), Probe::start(&tb.frozen, b.1));
        pa.locate(&ta.frozen);
        pb.locate(&tb.frozen);
        let found = |t: &TypeNames, p: &Probe, name: &str| match p.finish(&t.frozen, name) {
            Some(id) => Some(id),
            None if !t.has_recent.load(Ordering::Acquire) => None,
            None => read(&t.recent).get(name).map(|id| id + t.frozen.len() as u32),
        };
        (found(ta, &pa, a.1), found(tb, &pb, b.1))
    }

    /// Interns many names of one type at once (a bulk load): `out[i]` is the id of the name at
    /// `ranges[i]` of `text`. The names already present are found by batched lookups (see
    /// [`Probe`]); the temporary vectors are in `scratch`, kept from one batch to the next.
    pub fn intern_many_with(
        &self,
        ty: TypeId,
        text: &str,
        ranges: &[(usize, usize)],
        out: &mut Vec<ObjId>,
        scratch: &mut InternScratch,
    ) {
        let name = |i: usize| ranges.get(i).and_then(|&(from, to)| text.get(from..to)).unwrap_or("");
        let n = ranges.len();
        out.clear();
        out.reserve(n);
        let Some(t) = self.types.get(ty as usize) else {
            out.resize(n, WILDCARD);
            return;
        };
        let InternScratch { found, missing, in_recent } = scratch;
        t.frozen.get_many_by(n, name, found);
        let base = t.frozen.len() as u32;
        if found.iter().all(Option::is_some) {
            out.extend(found.iter().map(|id| id.unwrap_or(WILDCARD)));
            return;
        }
        let mut recent = write(&t.recent);
        missing.clear();
        missing.extend(found.iter().enumerate().filter(|(_, f)| f.is_none()).map(|(i, _)| i));
        recent.get_many_by(missing.len(), |k| missing.get(k).map_or("", |&i| name(i)), in_recent);
        let mut more = in_recent.iter();
        for (i, f) in found.iter().enumerate() {
            let id = match f {
                Some(id) => *id,
                None => match more.next().copied().flatten() {
                    Some(id) => id + base,
                    None => recent.intern(name(i)) + base,
                },
            };
            out.push(id);
        }
        t.has_recent.store(true, Ordering::Release);
    }

    pub fn name(&self, ty: TypeId, id: ObjId) -> String {
        if id == WILDCARD {
            return "*".to_string();
        }
        let Some(t) = self.types.get(ty as usize) else { return "?".to_string() };
        let base = t.frozen.len() as u32;
        if id < base {
            return t.frozen.name(id).unwrap_or("?").to_string();
        }
        read(&t.recent).name(id - base).unwrap_or("?").to_string()
    }

    /// A table with the same names and ids, all frozen.
    pub fn frozen_copy(&self) -> Names {
        let mut types = Vec::with_capacity(self.types.len());
        for t in &self.types {
            let recent = read(&t.recent);
            // After a fresh load every name is recent: a copy of its table, not one insert at
            // a time.
            let mut frozen = if t.frozen.is_empty() { recent.clone() } else { t.frozen.clone() };
            if !t.frozen.is_empty() {
                for id in 0..recent.len() as u32 {
                    frozen.intern(recent.name(id).unwrap_or(""));
                }
            }
            frozen.shrink_to_fit();
            types.push(TypeNames::frozen(frozen));
        }
        Names { types }
    }

    /// Moves every recent name into the frozen part (ids unchanged). Needs the table to
    /// itself: call it on a table no snapshot shares yet.
    pub fn freeze(&mut self) {
        for t in &mut self.types {
            let recent = std::mem::take(match t.recent.get_mut() {
                Ok(r) => r,
                Err(poisoned) => poisoned.into_inner(),
            });
            if t.frozen.is_empty() {
                t.frozen = recent;
            } else {
                for id in 0..recent.len() as u32 {
                    t.frozen.intern(recent.name(id).unwrap_or(""));
                }
            }
            t.frozen.shrink_to_fit();
            *t.has_recent.get_mut() = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_copy_of_recent_names_only() {
        let n = Names::new(2);
        for k in 0..100 {
            assert_eq!(n.intern(1, &format!("n{k}")), k);
        }
        let copy = n.frozen_copy();
        assert!(!copy.types[1].has_recent.load(Ordering::Acquire));
        assert_eq!((copy.types[0].frozen.len(), copy.types[1].frozen.len()), (0, 100));
        for k in 0..100 {
            assert_eq!((copy.get(1, &format!("n{k}")), copy.name(1, k)), (Some(k), format!("n{k}")));
        }
        assert_eq!(copy.intern(1, "new"), 100);
    }

    #[test]
    fn frozen_and_recent_names_keep_their_ids() {
        let mut n = Names::new(2);
        assert_eq!(n.intern(0, "a"), 0);
        assert_eq!(n.intern(0, "b"), 1);
        n.freeze();
        assert_eq!(n.intern(0, "c"), 2);
        assert_eq!(n.intern(0, "a"), 0);
        assert_eq!(n.intern(1, "a"), 0);
        assert_eq!((n.get(0, "b"), n.get(0, "c"), n.get(0, "d")), (Some(1), Some(2), None));
        assert_eq!((n.name(0, 2), n.name(0, 1), n.name(0, WILDCARD)), ("c".into(), "b".into(), "*".into()));
        let g = n.read_all();
        let (arena, ends) = g[0].parts(3);
        assert_eq!((&*arena, &*ends), ("abc", &[1usize, 2, 3][..]));
        let (arena, ends) = g[0].parts(2);
        assert_eq!((&*arena, &*ends), ("ab", &[1usize, 2][..]));
        assert_eq!(g[0].name(2), Some("c"));
        drop(g);
        n.truncate(0, 2);
        assert_eq!((n.get(0, "c"), n.intern(0, "d")), (None, 2));
        n.freeze();
        assert_eq!((n.get(0, "d"), n.name(0, 2), n.intern(0, "e")), (Some(2), "d".into(), 3));
        let copy = n.frozen_copy();
        assert!(!copy.types[0].has_recent.load(Ordering::Acquire));
        assert_eq!((copy.get(0, "e"), copy.get(0, "a"), copy.name(0, 3)), (Some(3), Some(0), "e".into()));
        assert_eq!(copy.types[0].frozen.len(), 4);
    }
}
