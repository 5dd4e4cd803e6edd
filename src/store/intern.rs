//! String interning: object ids to dense `u32` per type, compactly.
//!
//! Names live back to back in one heap string, each as an *entry*: a short header (its id and
//! its length, in ASCII bytes, so that the heap stays a `str`) followed by the name's bytes.
//! The lookup table is an open-addressing table (linear probing) of 8-byte slots, each holding
//! where an entry starts and 24 bits of its name's hash; a start offset per id serves the other
//! direction (id to name). An interned name costs its bytes plus about 20 bytes, with no
//! allocation per name. A slot's hash bits also give its first slot to try (its *home*), so the
//! table grows, shrinks and deletes without reading a name again.
//!
//! Lookups among millions of names are cache misses, not computation: a lookup reads its slot,
//! then the entry it points at, the second depending on the first (two misses: the slot leads
//! straight to the text, whose header holds the id). The hash bits in the slot mean a lookup
//! touches the entry of the one name that almost surely matches, and [`Interner::get_many`]
//! (and [`Probe`], for lookups across interners) run each step for several names before the
//! next step, so that their misses overlap instead of queueing one behind another.

use std::hash::{BuildHasher, Hasher};

/// Maps names to dense ids `0..len` and back. Ids are never reused or removed.
#[derive(Clone, Default)]
pub struct Interner {
    /// The entries in id order: each name's header ([`push_header`]) then its bytes.
    heap: String,
    /// The low 32 bits of where entry `i` starts in `heap`.
    starts: Vec<u32>,
    /// `wraps[k]` is the first id whose entry starts at or after `(k + 1) << 32` (empty while
    /// the heap is under 4 GiB).
    wraps: Vec<u32>,
    /// Any length (a name's tag, the top 24 bits of its hash, scaled to the length, chooses
    /// its first slot); `0` is a free slot, anything else `(tag << 40) | (start + 1)`.
    slots: Slots,
}

/// The table's memory: a vector, or from 2 MiB on an anonymous mapping asked to be backed by
/// huge pages (on Linux), so that a lookup's first cache miss does not also miss the TLB: a
/// table of millions of names spans thousands of 4 KiB pages.
enum Slots {
    Vec(Vec<u64>),
    Map(memmap2::MmapMut),
}

/// Tables of at least this many bytes are mapped (see [`Slots`]).
const MAP_FROM: usize = 1 << 21;

impl Slots {
    /// `n` free slots.
    fn zeroed(n: usize) -> Slots {
        if n.saturating_mul(8) >= MAP_FROM {
            if let Ok(m) = memmap2::MmapMut::map_anon(n * 8) {
                // A mapping starts on a page boundary, so it holds u64s.
                if bytemuck::try_cast_slice::<u8, u64>(&m).is_ok() {
                    // Advice only: without huge pages the table works the same.
                    #[cfg(target_os = "linux")]
                    let _ = m.advise(memmap2::Advice::HugePage);
                    return Slots::Map(m);
                }
            }
        }
        Slots::Vec(vec![0; n])
    }
}

impl Default for Slots {
    fn default() -> Slots {
        Slots::Vec(Vec::new())
    }
}

impl Clone for Slots {
    fn clone(&self) -> Slots {
        let mut copy = Slots::zeroed(self.len());
        copy.copy_from_slice(self);
        copy
    }
}

impl std::ops::Deref for Slots {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        match self {
            Slots::Vec(v) => v,
            // Never empty: a mapping is only kept if it casts (see `zeroed`).
            Slots::Map(m) => bytemuck::try_cast_slice(m).unwrap_or(&[]),
        }
    }
}

impl std::ops::DerefMut for Slots {
    fn deref_mut(&mut self) -> &mut [u64] {
        match self {
            Slots::Vec(v) => v,
            Slots::Map(m) => bytemuck::try_cast_slice_mut(m).unwrap_or(&mut []),
        }
    }
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interner").field("len", &self.starts.len()).finish()
    }
}

/// A name's hash, mixed so that its top bits (the tag stored in its slot, which also chooses
/// the slot) are well spread.
fn hash(name: &str) -> u64 {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(name.as_bytes());
    h.finish().wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Bits of a slot holding the entry's start (plus one): a heap of up to 1 TiB.
const START_BITS: u32 = 40;
const START_MASK: u64 = (1 << START_BITS) - 1;

const TAG_BITS: u32 = 64 - START_BITS;

fn tag_of(h: u64) -> u64 {
    h >> START_BITS
}

fn slot_tag(s: u64) -> u64 {
    s >> START_BITS
}

/// Where the entry of a used slot starts.
fn slot_start(s: u64) -> usize {
    ((s & START_MASK) as usize).wrapping_sub(1)
}

fn slot_of(h: u64, start: usize) -> u64 {
    (tag_of(h) << START_BITS) | ((start as u64 + 1) & START_MASK)
}

/// Bytes of an id in a header: 7 bits each.
const ID_BYTES: usize = 5;

/// Appends an entry's header: `id` in five bytes of 7 bits (low first), then `len` in bytes of
/// 6 bits (low first), `0x40` marking that another follows. Every byte is ASCII.
fn push_header(heap: &mut String, id: u32, len: usize) {
    let mut head = [0u8; ID_BYTES + 11];
    for (k, b) in head.iter_mut().take(ID_BYTES).enumerate() {
        *b = ((id >> (7 * k)) & 0x7F) as u8;
    }
    let mut n = ID_BYTES;
    let mut len = len;
    while len >= 0x40 {
        head[n] = 0x40 | (len & 0x3F) as u8;
        len >>= 6;
        n += 1;
    }
    head[n] = len as u8;
    // ASCII bytes are one character each.
    for &b in &head[..=n] {
        heap.push(char::from(b));
    }
}

/// The entry at `start`: its id and its name (`None` if the heap holds no entry there).
fn entry_at(heap: &str, start: usize) -> Option<(u32, &str)> {
    entry_from(heap, start, *heap.as_bytes().get(start)?)
}

/// [`entry_at`], its first byte already read (`first`).
fn entry_from(heap: &str, start: usize, first: u8) -> Option<(u32, &str)> {
    let b = heap.as_bytes();
    let mut id = u32::from(first);
    for k in 1..ID_BYTES {
        id |= u32::from(*b.get(start + k)?) << (7 * k);
    }
    let (mut len, mut shift, mut at) = (0usize, 0u32, start + ID_BYTES);
    loop {
        let x = *b.get(at)?;
        at += 1;
        len |= usize::from(x & 0x3F).checked_shl(shift)?;
        if x & 0x40 == 0 {
            break;
        }
        shift += 6;
    }
    Some((id, heap.get(at..at.checked_add(len)?)?))
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
    /// The first slot to try for a name with tag `tag` (the table is not empty). Tables of
    /// more than 2^24 slots have homes only every few slots: runs a little longer, within a
    /// cache line.
    fn home(&self, tag: u64) -> usize {
        ((tag * self.slots.len() as u64) >> TAG_BITS) as usize
    }

    /// The slot after `i`, wrapping around.
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// Where the entry of `id` starts (`id` is interned).
    fn start_of(&self, id: u32) -> usize {
        let low = self.starts.get(id as usize).copied().unwrap_or(0) as usize;
        let high = self.wraps.partition_point(|&w| w <= id);
        (high << 32) | low
    }

    pub fn intern(&mut self, name: &str) -> u32 {
        let h = hash(name);
        if let Some(id) = self.find(h, name) {
            return id;
        }
        let id = self.starts.len() as u32;
        let start = self.heap.len();
        while (start >> 32) > self.wraps.len() {
            self.wraps.push(id);
        }
        self.starts.push(start as u32);
        push_header(&mut self.heap, id, name.len());
        self.heap.push_str(name);
        if self.starts.len() * 4 > self.slots.len() * 3 {
            self.rebuild(slots_for(self.starts.len()));
        }
        self.place(h, start);
        id
    }

    /// Puts the entry at `start` (hash `h`) in the first free slot from its home.
    fn place(&mut self, h: u64, start: usize) {
        self.place_slot(slot_of(h, start));
    }

    /// Puts a used slot's value in the first free slot from its home.
    fn place_slot(&mut self, s: u64) {
        let mut i = self.home(slot_tag(s));
        while self.slots[i] != 0 {
            i = self.next(i);
        }
        self.slots[i] = s;
    }

    /// The table with `n` slots (at least one more than it holds), its slots moved over.
    fn rebuild(&mut self, n: usize) {
        let old = std::mem::replace(&mut self.slots, Slots::zeroed(n));
        for &s in old.iter().filter(|&&s| s != 0) {
            self.place_slot(s);
        }
    }

    fn find(&self, h: u64, name: &str) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let tag = tag_of(h);
        let mut i = self.home(tag);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return None;
            }
            if slot_tag(s) == tag {
                if let Some((id, found)) = entry_at(&self.heap, slot_start(s)) {
                    if found == name {
                        return Some(id);
                    }
                }
            }
            i = self.next(i);
        }
    }

    /// Forgets the names with ids `len` and up (names interned by a change that was never
    /// committed).
    pub fn truncate(&mut self, len: u32) {
        let len = len as usize;
        if len >= self.starts.len() {
            return;
        }
        for id in (len..self.starts.len()).rev() {
            let start = self.start_of(id as u32);
            let h = hash(entry_at(&self.heap, start).map_or("", |(_, name)| name));
            let mut i = self.home(tag_of(h));
            while self.slots[i] != 0 && slot_start(self.slots[i]) != start {
                i = self.next(i);
            }
            if self.slots[i] != 0 {
                self.remove_slot(i);
            }
        }
        let end = self.start_of(len as u32);
        self.starts.truncate(len);
        self.wraps.retain(|&w| (w as usize) < len);
        self.heap.truncate(end);
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
            let home = self.home(slot_tag(s));
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
        self.get_many_by(names.len(), |i| names.get(i).copied().unwrap_or(""), out);
    }

    /// [`Interner::get_many`] of the `n` names `name(0)`, `name(1)`, …
    pub fn get_many_by<'a>(&self, n: usize, name: impl Fn(usize) -> &'a str, out: &mut Vec<Option<u32>>) {
        out.clear();
        out.reserve(n);
        const K: usize = 16;
        for from in (0..n).step_by(K) {
            let k = K.min(n - from);
            let mut probes = [Probe::EMPTY; K];
            for (i, p) in probes.iter_mut().take(k).enumerate() {
                *p = Probe::start(self, name(from + i));
            }
            for p in probes.iter_mut().take(k) {
                p.locate(self);
            }
            for (i, p) in probes.iter().take(k).enumerate() {
                out.push(p.finish(self, name(from + i)));
            }
        }
    }

    pub fn name(&self, id: u32) -> Option<&str> {
        if id as usize >= self.starts.len() {
            return None;
        }
        entry_at(&self.heap, self.start_of(id)).map(|(_, name)| name)
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The first `n` names (all, if fewer) back to back and where each ends: the form
    /// [`Interner::from_parts`] reads (a snapshot's).
    pub fn parts(&self, n: usize) -> (String, Vec<usize>) {
        let n = n.min(self.len());
        let mut arena = String::with_capacity(self.heap.len().saturating_sub(n * (ID_BYTES + 1)));
        let mut ends = Vec::with_capacity(n);
        for id in 0..n as u32 {
            arena.push_str(self.name(id).unwrap_or(""));
            ends.push(arena.len());
        }
        (arena, ends)
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
        let mut i = Interner {
            heap: String::with_capacity(arena.len() + ends.len() * (ID_BYTES + 1)),
            starts: Vec::with_capacity(ends.len()),
            wraps: Vec::new(),
            slots: Slots::zeroed(slots_snug(ends.len())),
        };
        // The names' hashes, on every core.
        let hashes: Vec<u64> = {
            use rayon::prelude::*;
            (0..ends.len())
                .into_par_iter()
                .map(|id| {
                    let from = if id == 0 { 0 } else { ends[id - 1] };
                    arena.get(from..ends[id]).map_or(0, hash)
                })
                .collect()
        };
        let mut keyed: Vec<(u64, usize)> = Vec::with_capacity(ends.len());
        let mut from = 0;
        for (id, (&end, &h)) in ends.iter().zip(&hashes).enumerate() {
            let name = arena.get(from..end)?;
            from = end;
            let at = i.heap.len();
            while (at >> 32) > i.wraps.len() {
                i.wraps.push(id as u32);
            }
            i.starts.push(at as u32);
            push_header(&mut i.heap, id as u32, name.len());
            i.heap.push_str(name);
            keyed.push((h, at));
        }
        drop(hashes);
        // Placed in the order of their homes (a home grows with the hash), the table fills
        // from one end to the other instead of at random places; equal names are neighbours.
        {
            use rayon::prelude::*;
            keyed.par_sort_unstable();
        }
        let mut run = 0;
        for (k, &(h, at)) in keyed.iter().enumerate() {
            if keyed[run].0 != h {
                run = k;
            }
            // Names are read only when their hashes are equal (almost never).
            if run < k {
                let name = entry_at(&i.heap, at).map(|(_, n)| n);
                if keyed[run..k].iter().any(|&(_, other)| entry_at(&i.heap, other).map(|(_, n)| n) == name) {
                    return None;
                }
            }
            i.place(h, at);
        }
        Some(i)
    }

    /// Gives back spare capacity (after a bulk build: the heap, the offsets and the table grew
    /// by doubling).
    pub fn shrink_to_fit(&mut self) {
        self.heap.shrink_to_fit();
        self.starts.shrink_to_fit();
        let n = slots_snug(self.starts.len());
        if n < self.slots.len() {
            self.rebuild(n);
        }
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.heap.capacity() + self.starts.capacity() * 4 + self.wraps.capacity() * 4 + self.slots.len() * 8
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
    /// The candidate entry's first byte (read to bring it into the cache).
    first: u8,
}

impl Probe {
    const EMPTY: Probe = Probe { hash: 0, at: 0, slot: 0, first: 0 };

    /// Hashes `name` and reads its home slot.
    pub fn start(interner: &Interner, name: &str) -> Probe {
        let hash = hash(name);
        if interner.slots.is_empty() {
            return Probe { hash, at: 0, slot: 0, first: 0 };
        }
        let at = interner.home(tag_of(hash));
        Probe { hash, at, slot: interner.slots[at], first: 0 }
    }

    /// Finds the first slot with the name's tag (or a free one) and reads the first byte of
    /// the candidate's entry.
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
            self.first = interner.heap.as_bytes().get(slot_start(self.slot)).copied().unwrap_or(0);
        }
    }

    /// Compares the candidate's text: the id, or `None` when `name` is not interned.
    pub fn finish(&self, interner: &Interner, name: &str) -> Option<u32> {
        if self.slot == 0 {
            return None;
        }
        match entry_from(&interner.heap, slot_start(self.slot), self.first) {
            Some((id, found)) if found == name => Some(id),
            // Another name with the same 24 hash bits: rare, so look the slow way.
            _ => interner.find(self.hash, name),
        }
    }
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
                let name = name_of(n);
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
                        let (arena, ends) = i.parts(usize::MAX);
                        i = Interner::from_parts(arena, ends).expect("valid parts");
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
            let asked: Vec<String> = (0..320).map(name_of).collect();
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
            // Every id names its name, and the parts hold the names in id order.
            for (id, name) in order.iter().enumerate() {
                proptest::prop_assert_eq!(i.name(id as u32), Some(name.as_str()));
            }
            let (arena, ends) = i.parts(usize::MAX);
            proptest::prop_assert_eq!(arena, order.concat());
            let mut end = 0;
            for (e, name) in ends.iter().zip(&order) {
                end += name.len();
                proptest::prop_assert_eq!(*e, end);
            }
            proptest::prop_assert_eq!(i.parts(order.len() / 2).1.len(), order.len() / 2);
        }
    }

    /// Names of every length class a header encodes (one, two and three length bytes), some
    /// not ASCII, one empty.
    fn name_of(n: u16) -> String {
        match n % 5 {
            0 => format!("x{n}"),
            1 => format!("é{n}{}", "y".repeat(usize::from(n) % 130)),
            2 => format!("{n}{}", "z".repeat(4090 + usize::from(n) % 20)),
            3 if n == 3 => String::new(),
            _ => format!("{}ü{n}", "w".repeat(usize::from(n) % 70)),
        }
    }

    #[test]
    fn headers_round_trip() {
        for (id, len) in [(0, 0), (1, 63), (127, 64), (128, 4095), (u32::MAX, 4096), (77_777, 1 << 20)] {
            let mut heap = String::new();
            push_header(&mut heap, id, len);
            let name = "a".repeat(len);
            heap.push_str(&name);
            assert!(heap.is_ascii());
            assert_eq!(entry_at(&heap, 0), Some((id, name.as_str())));
            // A truncated entry is no entry.
            assert_eq!(entry_at(&heap[..heap.len() - 1], 0), None);
        }
        assert_eq!(entry_at("", 0), None);
    }

    /// A table large enough to be mapped (see [`Slots`]): lookups, names, a clone, a truncation
    /// and a shrink back under the mapping's size.
    #[test]
    fn mapped_tables() {
        let mut i = Interner::default();
        let names: Vec<String> = (0..300_000).map(|n| format!("name-{n}")).collect();
        for (k, n) in names.iter().enumerate() {
            assert_eq!(i.intern(n), k as u32);
        }
        assert!(matches!(i.slots, Slots::Map(_)));
        let copy = i.clone();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut got = Vec::new();
        copy.get_many(&refs, &mut got);
        assert!(got.iter().enumerate().all(|(k, id)| *id == Some(k as u32)));
        assert_eq!((i.get("name-299999"), i.name(299_999)), (Some(299_999), Some("name-299999")));
        i.truncate(1_000);
        i.shrink_to_fit();
        assert!(matches!(i.slots, Slots::Vec(_)));
        assert_eq!((i.get("name-999"), i.get("name-1000"), i.len()), (Some(999), None, 1_000));
        assert_eq!(copy.get("name-1000"), Some(1_000));
    }

    #[test]
    fn starts_past_4_gib() {
        // The offsets' high part: ids from `wraps[k]` on start `k + 1` times 4 GiB further.
        let i = Interner { starts: vec![7, 5, 9], wraps: vec![1, 2], ..Interner::default() };
        assert_eq!((i.start_of(0), i.start_of(1), i.start_of(2)), (7, (1 << 32) | 5, (2 << 32) | 9));
    }

    #[test]
    fn from_parts_refuses_repeats_and_bad_ends() {
        assert!(Interner::from_parts("abab".into(), vec![2, 4]).is_none());
        assert!(Interner::from_parts("abc".into(), vec![2]).is_none());
        assert!(Interner::from_parts("abc".into(), vec![2, 1, 3]).is_none());
        assert!(Interner::from_parts("abc".into(), vec![1, 3]).is_some());
        // Many names, one repeated far from its first use: refused; without it, every name is
        // found under its id.
        let names: Vec<String> = (0..20_000).map(|k| format!("n{k}")).collect();
        let parts = |names: &[String]| {
            let mut ends = Vec::new();
            let mut arena = String::new();
            for n in names {
                arena.push_str(n);
                ends.push(arena.len());
            }
            (arena, ends)
        };
        let (arena, ends) = parts(&names);
        let built = Interner::from_parts(arena, ends).expect("distinct names");
        for (id, n) in names.iter().enumerate() {
            assert_eq!(built.get(n), Some(id as u32));
            assert_eq!(built.name(id as u32), Some(n.as_str()));
        }
        assert_eq!(built.get("n20000"), None);
        let mut repeated = names.clone();
        repeated.push("n7".into());
        let (arena, ends) = parts(&repeated);
        assert!(Interner::from_parts(arena, ends).is_none());
    }
}
