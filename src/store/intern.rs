//! String interning: object ids to dense `u32` per type, compactly.
//!
//! Names live back to back in one arena string with an end offset each. The lookup table is an
//! open-addressing table (linear probing) of 8-byte slots, each holding an id and 32 bits of
//! its name's hash, so an interned name costs its bytes plus about 20 bytes, with no allocation
//! per name.
//!
//! Lookups among millions of names are cache misses, not computation: a lookup reads its slot,
//! then the name's end offsets, then the name's bytes, each depending on the one before. The
//! hash bits in the slot mean a lookup touches the offsets and the bytes of the one name that
//! almost surely matches, and [`Interner::get_many`] (and [`Probe`], for lookups across
//! interners) run each of those three steps for several names before the next step, so that
//! their misses overlap instead of queueing one behind another.

use std::hash::{BuildHasher, Hasher};

/// Maps names to dense ids `0..len` and back. Ids are never reused or removed.
#[derive(Clone, Default)]
pub struct Interner {
    arena: String,
    /// `ends[i]` is where name `i` ends in `arena` (it starts where name `i - 1` ends).
    ends: Vec<usize>,
    /// Any length (the top 32 bits of a hash, scaled to the length, choose a name's first
    /// slot); `0` is a free slot, anything else `(tag << 32) | (id + 1)`.
    slots: Vec<u64>,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner").field("len", &self.ends.len()).finish()
    }
}

/// A name's hash, mixed so that its top bits (the slot) and its low 32 bits (the tag stored in
/// the slot) are both well spread.
fn hash(name: &str) -> u64 {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(name.as_bytes());
    h.finish().wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn tag_of(h: u64) -> u32 {
    h as u32
}

fn slot_tag(s: u64) -> u32 {
    (s >> 32) as u32
}

fn slot_id(s: u64) -> u32 {
    (s as u32).wrapping_sub(1)
}

/// Slots for `len` names while names are being added: at most three quarters in use, and
/// half after the table grows.
fn slots_for(len: usize) -> usize {
    (len.saturating_mul(4) / 3 + 1).next_power_of_two().max(16)
}

/// Slots for `len` names that will not grow soon: four fifths in use.
fn slots_snug(len: usize) -> usize {
    (len.saturating_mul(5) / 4 + 1).max(16)
}

impl Interner {
    /// The first slot to try for hash `h` (the table is not empty).
    fn home(&self, h: u64) -> usize {
        (((h >> 32) * self.slots.len() as u64) >> 32) as usize
    }

    /// The slot after `i`, wrapping around.
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    pub fn intern(&mut self, name: &str) -> u32 {
        let h = hash(name);
        if let Some(id) = self.find(h, name) {
            return id;
        }
        let id = self.ends.len() as u32;
        self.arena.push_str(name);
        self.ends.push(self.arena.len());
        if self.ends.len() * 4 > self.slots.len() * 3 {
            self.rebuild(slots_for(self.ends.len()));
        } else {
            self.place(h, id);
        }
        id
    }

    /// Puts `id` (hash `h`) in the first free slot from its home.
    fn place(&mut self, h: u64, id: u32) {
        let mut i = self.home(h);
        while self.slots[i] != 0 {
            i = self.next(i);
        }
        self.slots[i] = (u64::from(tag_of(h)) << 32) | u64::from(id + 1);
    }

    /// A table of `n` slots holding every name.
    fn rebuild(&mut self, n: usize) {
        self.slots = vec![0; n];
        for id in 0..self.ends.len() as u32 {
            let h = hash(name_in(&self.arena, &self.ends, id));
            self.place(h, id);
        }
    }

    fn find(&self, h: u64, name: &str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = tag_of(h);
        let mut i = self.home(h);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if slot_tag(s) == tag && name_in(&self.arena, &self.ends, slot_id(s)) == name {
                return Some(slot_id(s));
            }
            i = self.next(i);
        }
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
            let mut i = self.home(h);
            while self.slots[i] != 0 && slot_id(self.slots[i]) as usize != id {
                i = self.next(i);
            }
            if self.slots[i] != 0 {
                self.remove_slot(i);
            }
        }
        let end = if len == 0 { 0 } else { self.ends[len - 1] };
        self.ends.truncate(len);
        self.arena.truncate(end);
    }

    /// Frees slot `i`, moving later slots of the same run back so that every name stays
    /// reachable from its home (deletion by backward shift).
    fn remove_slot(&mut self, mut i: usize) {
        self.slots[i] = 0;
        let mut j = i;
        loop {
            j = self.next(j);
            let s = self.slots[j];
            if s == 0 {
                return;
            }
            let home = self.home(hash(name_in(&self.arena, &self.ends, slot_id(s))));
            // The entry at `j` may move to `i` unless its home lies cyclically in (i, j].
            let stays = if i <= j { i < home && home <= j } else { i < home || home <= j };
            if !stays {
                self.slots[i] = s;
                self.slots[j] = 0;
                i = j;
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.find(hash(name), name)
    }

    /// Looks up many names at once (see the module documentation): `out[i]` is the id of
    /// `names[i]`. Much faster than one [`Interner::get`] after another when the table is
    /// larger than the caches.
    pub fn get_many(&self, names: &[&str], out: &mut Vec<Option<u32>>) {
        out.clear();
        out.reserve(names.len());
        const K: usize = 16;
        for chunk in names.chunks(K) {
            let mut probes = [Probe::EMPTY; K];
            for (p, name) in probes.iter_mut().zip(chunk) {
                *p = Probe::start(self, name);
            }
            for p in probes.iter_mut().take(chunk.len()) {
                p.locate(self);
            }
            for (p, name) in probes.iter().zip(chunk) {
                out.push(p.finish(self, name));
            }
        }
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
        let mut i = Interner { arena, ends, slots: Vec::new() };
        i.slots = vec![0; slots_snug(i.ends.len())];
        for id in 0..i.ends.len() as u32 {
            let name = name_in(&i.arena, &i.ends, id);
            let h = hash(name);
            if i.find(h, name).is_some() {
                return None;
            }
            i.place(h, id);
        }
        Some(i)
    }

    /// Gives back spare capacity (after a bulk build: the arena, the offsets and the table grew
    /// by doubling).
    pub fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
        let n = slots_snug(self.ends.len());
        if n < self.slots.len() {
            self.rebuild(n);
        }
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 8 + self.slots.capacity() * 8
    }
}

/// One lookup in progress, in three steps ([`Probe::start`], [`Probe::locate`],
/// [`Probe::finish`]), so that several lookups, in one interner or several, can take each step
/// together and overlap their cache misses.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    hash: u64,
    /// The slot read first (its home), then the candidate's slot.
    at: usize,
    slot: u64,
    /// The candidate's end offset (read to bring it into the cache).
    end: usize,
}

impl Probe {
    const EMPTY: Probe = Probe { hash: 0, at: 0, slot: 0, end: 0 };

    /// Hashes `name` and reads its home slot.
    pub fn start(interner: &Interner, name: &str) -> Probe {
        let hash = hash(name);
        if interner.slots.is_empty() {
            return Probe { hash, at: 0, slot: 0, end: 0 };
        }
        let at = interner.home(hash);
        Probe { hash, at, slot: interner.slots[at], end: 0 }
    }

    /// Finds the first slot with the name's tag (or a free one) and reads the candidate's
    /// end offset.
    pub fn locate(&mut self, interner: &Interner) {
        if interner.slots.is_empty() {
            return;
        }
        let tag = tag_of(self.hash);
        while self.slot != 0 && slot_tag(self.slot) != tag {
            self.at = interner.next(self.at);
            self.slot = interner.slots[self.at];
        }
        if self.slot != 0 {
            self.end = interner.ends.get(slot_id(self.slot) as usize).copied().unwrap_or(0);
        }
    }

    /// Compares the candidate's text: the id, or `None` when `name` is not interned.
    pub fn finish(&self, interner: &Interner, name: &str) -> Option<u32> {
        if self.slot == 0 {
            return None;
        }
        let id = slot_id(self.slot);
        let start = if id == 0 { 0 } else { interner.ends.get(id as usize - 1).copied().unwrap_or(0) };
        if interner.arena.get(start..self.end) == Some(name) {
            return Some(id);
        }
        // Another name with the same 32 hash bits: rare, so look the slow way.
        interner.find(self.hash, name)
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
    use std::collections::HashMap;

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

    proptest::proptest! {
        /// Interning, truncating, shrinking and rebuilding from parts agree with a map, and
        /// batched lookups with one-at-a-time ones.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u8..8, 0u16..300), 0..600)) {
            let mut i = Interner::default();
            let mut model: HashMap<String, u32> = HashMap::new();
            let mut order: Vec<String> = Vec::new();
            for (op, n) in ops {
                let name = format!("x{n}");
                match op {
                    0 => {
                        let keep = (n as usize).min(order.len());
                        i.truncate(keep as u32);
                        for gone in order.drain(keep..) {
                            model.remove(&gone);
                        }
                    }
                    1 => i.shrink_to_fit(),
                    2 => {
                        let (arena, ends) = i.parts();
                        i = Interner::from_parts(arena.to_string(), ends.to_vec()).expect("valid parts");
                    }
                    _ => {
                        let id = i.intern(&name);
                        let want = *model.entry(name.clone()).or_insert_with(|| {
                            order.push(name.clone());
                            order.len() as u32 - 1
                        });
                        proptest::prop_assert_eq!(id, want);
                    }
                }
                proptest::prop_assert_eq!(i.len(), order.len());
            }
            let asked: Vec<String> = (0..320).map(|n| format!("x{n}")).collect();
            let refs: Vec<&str> = asked.iter().map(String::as_str).collect();
            let mut got = Vec::new();
            i.get_many(&refs, &mut got);
            for (name, id) in asked.iter().zip(got) {
                proptest::prop_assert_eq!(id, model.get(name).copied());
                proptest::prop_assert_eq!(i.get(name), model.get(name).copied());
                if let Some(id) = id {
                    proptest::prop_assert_eq!(i.name(id), Some(name.as_str()));
                }
            }
        }
    }

    #[test]
    fn from_parts_refuses_repeats_and_bad_ends() {
        assert!(Interner::from_parts("abab".into(), vec![2, 4]).is_none());
        assert!(Interner::from_parts("abc".into(), vec![2]).is_none());
        assert!(Interner::from_parts("abc".into(), vec![2, 1, 3]).is_none());
        assert!(Interner::from_parts("abc".into(), vec![1, 3]).is_some());
    }
}
