//! String interning: object ids to dense `u32` per type, compactly.
//!
//! Names live back to back in one arena string with an end offset each, and the lookup table
//! holds only ids (hashing the name they point to), so an interned name costs its bytes plus
//! about 9 bytes, with no allocation per name.

use hashbrown::HashTable;
use std::hash::{BuildHasher, Hasher};

/// Maps names to dense ids `0..len` and back. Ids are never reused or removed.
#[derive(Clone, Default)]
pub struct Interner {
    arena: String,
    /// `ends[i]` is where name `i` ends in `arena` (it starts where name `i - 1` ends).
    ends: Vec<usize>,
    table: HashTable<u32>,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner").field("len", &self.ends.len()).finish()
    }
}

fn hash(name: &str) -> u64 {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(name.as_bytes());
    h.finish()
}

impl Interner {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.get(name) {
            return id;
        }
        let id = self.ends.len() as u32;
        self.arena.push_str(name);
        self.ends.push(self.arena.len());
        let (arena, ends) = (&self.arena, &self.ends);
        let name_of = |id: u32| name_in(arena, ends, id);
        self.table.insert_unique(hash(name), id, |&i| hash(name_of(i)));
        id
    }

    /// Forgets the names with ids `len` and up (names interned by a change that was never
    /// committed).
    pub fn truncate(&mut self, len: u32) {
        let len = len as usize;
        if len >= self.ends.len() {
            return;
        }
        for id in (len..self.ends.len()).rev() {
            let h = hash(name_in(&self.arena, &self.ends, id as u32));
            if let Ok(entry) = self.table.find_entry(h, |&i| i as usize == id) {
                entry.remove();
            }
        }
        let end = if len == 0 { 0 } else { self.ends[len - 1] };
        self.ends.truncate(len);
        self.arena.truncate(end);
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.table.find(hash(name), |&i| name_in(&self.arena, &self.ends, i) == name).copied()
    }

    pub fn name(&self, id: u32) -> Option<&str> {
        ((id as usize) < self.ends.len()).then(|| name_in(&self.arena, &self.ends, id))
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The names back to back and where each ends (see [`Interner::from_parts`]).
    pub fn parts(&self) -> (&str, &[usize]) {
        (&self.arena, &self.ends)
    }

    /// An interner from [`Interner::parts`]; `None` if the ends do not fit the arena (names
    /// must end in order, within the arena, on character boundaries) or a name repeats.
    pub fn from_parts(arena: String, ends: Vec<usize>) -> Option<Interner> {
        let mut start = 0;
        for &end in &ends {
            if end < start || arena.get(start..end).is_none() {
                return None;
            }
            start = end;
        }
        if start != arena.len() {
            return None;
        }
        let mut table = HashTable::with_capacity(ends.len());
        for id in 0..ends.len() as u32 {
            let name = name_in(&arena, &ends, id);
            let h = hash(name);
            if table.find(h, |&i| name_in(&arena, &ends, i) == name).is_some() {
                return None;
            }
            table.insert_unique(h, id, |&i| hash(name_in(&arena, &ends, i)));
        }
        Some(Interner { arena, ends, table })
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 8 + self.table.capacity() * 5
    }
}

fn name_in<'a>(arena: &'a str, ends: &[usize], id: u32) -> &'a str {
    let i = id as usize;
    let end = ends.get(i).copied().unwrap_or(0);
    let start = if i == 0 { 0 } else { ends.get(i - 1).copied().unwrap_or(0) };
    arena.get(start..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_and_resolves() {
        let mut i = Interner::default();
        let names: Vec<String> = (0..1000).map(|n| format!("n{n}")).collect();
        for (k, n) in names.iter().enumerate() {
            assert_eq!(i.intern(n), k as u32);
        }
        for (k, n) in names.iter().enumerate() {
            assert_eq!(i.intern(n), k as u32);
            assert_eq!(i.get(n), Some(k as u32));
            assert_eq!(i.name(k as u32), Some(n.as_str()));
        }
        assert_eq!(i.get("missing"), None);
        assert_eq!(i.name(5000), None);
    }
}
