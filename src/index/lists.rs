//! Persistent adjacency lists: `key → sorted set of u32`, cheap to snapshot, cheap to update.
//!
//! Keys are dense ids grouped in chunks of [`CHUNK`]. A chunk keeps its short lists packed in
//! one array (CSR: 2-byte offsets inline in the chunk; the values as 2-byte offsets from a base
//! when they span at most 65,536, else 4 bytes each) and its long lists as roaring bitmaps. The
//! chunks sit in a two-level persistent array of `Arc`s (pages of [`PAGE`] chunks), so cloning
//! [`Lists`] (taking a snapshot) is O(1), and a write copies one chunk at most (nothing when no
//! snapshot shares it). Chunks with no list share one allocation.

use roaring::RoaringBitmap;
use std::sync::Arc;

/// Keys per chunk.
pub const CHUNK: usize = 128;
/// Chunks per page of the two-level chunk array.
pub const PAGE: usize = 256;
/// Lists longer than this are kept as roaring bitmaps.
pub const BIG: usize = 64;

// A chunk's short lists hold at most `CHUNK * BIG` entries in all, so `u16` offsets reach them.
const _: () = assert!(CHUNK * BIG <= u16::MAX as usize);

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Chunk {
    /// `offsets[k]..offsets[k + 1]` is the short list of key `k` in `items` (inline: a chunk is
    /// one allocation besides its items).
    #[serde(with = "offsets_blob")]
    offsets: [u16; CHUNK + 1],
    items: Items,
    /// Long lists, by key within the chunk, sorted by key. Their range in `items` is empty.
    big: Vec<(u16, Arc<RoaringBitmap>)>,
}

/// A chunk's short lists back to back: as 2-byte offsets from a base when all of them fit in
/// 65,536 values (lists of groups, accounts, tags: small id spaces), else as 4-byte values.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Items {
    /// Values `base + x`.
    Narrow {
        base: u32,
        #[serde(with = "crate::index::persist::u16_blob")]
        v: Vec<u16>,
    },
    Wide(#[serde(with = "crate::index::persist::u32_blob")] Vec<u32>),
}

impl Items {
    const EMPTY: Items = Items::Narrow { base: 0, v: Vec::new() };

    fn len(&self) -> usize {
        match self {
            Items::Narrow { v, .. } => v.len(),
            Items::Wide(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Items::Narrow { v, .. } => v.capacity() * 2,
            Items::Wide(v) => v.capacity() * 4,
        }
    }

    fn list(&self, a: usize, b: usize) -> ListRef<'_> {
        match self {
            Items::Narrow { base, v } => ListRef::Narrow(*base, &v[a..b]),
            Items::Wide(v) => ListRef::Small(&v[a..b]),
        }
    }

    /// Where `x` is (or would go) in the sorted range `a..b`, relative to `a`.
    fn search(&self, a: usize, b: usize, x: u32) -> Result<usize, usize> {
        match self {
            Items::Narrow { base, v } => {
                let s = &v[a..b];
                match x.checked_sub(*base) {
                    None => Err(0),
                    Some(d) => match u16::try_from(d) {
                        Ok(d) => s.binary_search(&d),
                        Err(_) => Err(s.len()),
                    },
                }
            }
            Items::Wide(v) => v[a..b].binary_search(&x),
        }
    }

    fn widen(&mut self) -> &mut Vec<u32> {
        if let Items::Narrow { base, v } = self {
            let base = *base;
            *self = Items::Wide(v.iter().map(|&d| base + u32::from(d)).collect());
        }
        match self {
            Items::Wide(v) => v,
            Items::Narrow { .. } => unreachable!("made wide above"),
        }
    }

    /// Makes room for values in `lo..=hi` beside those held: in the narrow form (a lower base
    /// when `lo` is below it) while everything spans at most 65,536, else wide.
    fn admit(&mut self, lo: u32, hi: u32) {
        let Items::Narrow { base, v } = self else { return };
        if v.is_empty() {
            if hi - lo <= u32::from(u16::MAX) {
                *base = lo;
            } else {
                self.widen();
            }
            return;
        }
        if lo >= *base && hi - *base <= u32::from(u16::MAX) {
            return;
        }
        // Only now the largest value held is needed (a scan).
        let held = v.iter().copied().max().unwrap_or(0);
        let low = (*base).min(lo);
        let top = (*base + u32::from(held)).max(hi);
        if top - low > u32::from(u16::MAX) {
            self.widen();
        } else if low < *base {
            let up = (*base - low) as u16;
            for d in v.iter_mut() {
                *d += up;
            }
            *base = low;
        }
    }

    fn insert(&mut self, at: usize, x: u32) {
        self.admit(x, x);
        match self {
            Items::Narrow { base, v } => v.insert(at, (x - *base) as u16),
            Items::Wide(v) => v.insert(at, x),
        }
    }

    fn remove(&mut self, at: usize) {
        match self {
            Items::Narrow { v, .. } => {
                v.remove(at);
            }
            Items::Wide(v) => {
                v.remove(at);
            }
        }
    }

    /// Removes the range `a..b`, returning its values.
    fn take(&mut self, a: usize, b: usize) -> Vec<u32> {
        match self {
            Items::Narrow { base, v } => {
                let base = *base;
                v.drain(a..b).map(|d| base + u32::from(d)).collect()
            }
            Items::Wide(v) => v.drain(a..b).collect(),
        }
    }

    /// Puts sorted `xs` at `a`.
    fn put(&mut self, a: usize, xs: &[u32]) {
        let (Some(&lo), Some(&hi)) = (xs.first(), xs.last()) else { return };
        self.admit(lo, hi);
        match self {
            Items::Narrow { base, v } => {
                let base = *base;
                v.splice(a..a, xs.iter().map(|&x| (x - base) as u16));
            }
            Items::Wide(v) => {
                v.splice(a..a, xs.iter().copied());
            }
        }
    }

    /// Exact capacity, narrow when the values fit.
    fn seal(&mut self) {
        if let Items::Wide(v) = self {
            if let (Some(&lo), Some(&hi)) = (v.iter().min(), v.iter().max()) {
                if hi - lo <= u32::from(u16::MAX) {
                    *self = Items::Narrow { base: lo, v: v.iter().map(|&x| (x - lo) as u16).collect() };
                    return;
                }
            }
        }
        match self {
            Items::Narrow { v, .. } => v.shrink_to_fit(),
            Items::Wide(v) => v.shrink_to_fit(),
        }
    }
}

/// A chunk's offsets as one byte string of little-endian `u16`s.
mod offsets_blob {
    use super::CHUNK;
    use serde::de::Error;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u16; CHUNK + 1], s: S) -> Result<S::Ok, S::Error> {
        crate::index::persist::blob::serialize(v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u16; CHUNK + 1], D::Error> {
        let v: Vec<u16> = crate::index::persist::blob::deserialize(d)?;
        v.try_into().map_err(|_| D::Error::custom("a list chunk's offsets have the wrong length"))
    }
}

impl Chunk {
    fn new() -> Chunk {
        Chunk { offsets: [0; CHUNK + 1], items: Items::EMPTY, big: Vec::new() }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.big.is_empty()
    }

    fn get(&self, k: usize) -> ListRef<'_> {
        // A long list's range in `items` is empty: a short one is found without reading `big`.
        let (a, b) = (self.offsets[k] as usize, self.offsets[k + 1] as usize);
        if a == b && !self.big.is_empty() {
            if let Ok(i) = self.big.binary_search_by_key(&(k as u16), |(key, _)| *key) {
                return ListRef::Big(&self.big[i].1);
            }
        }
        self.items.list(a, b)
    }

    fn shift(&mut self, k: usize, delta: i64) {
        for o in &mut self.offsets[k + 1..] {
            *o = (i64::from(*o) + delta) as u16;
        }
    }

    fn insert(&mut self, k: usize, v: u32) -> bool {
        if let Ok(i) = self.big.binary_search_by_key(&(k as u16), |(key, _)| *key) {
            return Arc::make_mut(&mut self.big[i].1).insert(v);
        }
        let (a, b) = (self.offsets[k] as usize, self.offsets[k + 1] as usize);
        match self.items.search(a, b, v) {
            Ok(_) => false,
            Err(pos) => {
                if b - a >= BIG {
                    let mut bm: RoaringBitmap = self.items.take(a, b).into_iter().collect();
                    bm.insert(v);
                    self.shift(k, -((b - a) as i64));
                    let at = self.big.partition_point(|(key, _)| (*key as usize) < k);
                    self.big.insert(at, (k as u16, Arc::new(bm)));
                } else {
                    self.items.insert(a + pos, v);
                    self.shift(k, 1);
                }
                true
            }
        }
    }

    fn remove(&mut self, k: usize, v: u32) -> bool {
        if let Ok(i) = self.big.binary_search_by_key(&(k as u16), |(key, _)| *key) {
            let removed = Arc::make_mut(&mut self.big[i].1).remove(v);
            if self.big[i].1.len() <= (BIG / 2) as u64 {
                let (_, bm) = self.big.remove(i);
                let a = self.offsets[k] as usize;
                let xs: Vec<u32> = bm.iter().collect();
                self.items.put(a, &xs);
                self.shift(k, xs.len() as i64);
            }
            return removed;
        }
        let (a, b) = (self.offsets[k] as usize, self.offsets[k + 1] as usize);
        match self.items.search(a, b, v) {
            Ok(pos) => {
                self.items.remove(a + pos);
                self.shift(k, -1);
                true
            }
            Err(_) => false,
        }
    }
}

/// A read-only view of one list.
#[derive(Clone, Copy, Debug)]
pub enum ListRef<'a> {
    Small(&'a [u32]),
    /// Values `base + x`, ascending.
    Narrow(u32, &'a [u16]),
    Big(&'a RoaringBitmap),
}

impl<'a> ListRef<'a> {
    pub const EMPTY: ListRef<'static> = ListRef::Small(&[]);

    pub fn contains(&self, v: u32) -> bool {
        match self {
            ListRef::Small(s) => s.binary_search(&v).is_ok(),
            ListRef::Narrow(base, s) => v
                .checked_sub(*base)
                .and_then(|d| u16::try_from(d).ok())
                .is_some_and(|d| s.binary_search(&d).is_ok()),
            ListRef::Big(b) => b.contains(v),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ListRef::Small(s) => s.len(),
            ListRef::Narrow(_, s) => s.len(),
            ListRef::Big(b) => b.len() as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values in ascending order.
    pub fn iter(&self) -> ListIter<'a> {
        match *self {
            ListRef::Small(s) => ListIter::Small(s.iter()),
            ListRef::Narrow(base, s) => ListIter::Narrow(base, s.iter()),
            ListRef::Big(b) => ListIter::Big(b.iter()),
        }
    }

    pub fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            ListRef::Big(b) => (*b).clone(),
            _ => RoaringBitmap::from_sorted_iter(self.iter()).unwrap_or_default(),
        }
    }

    /// Adds the values to `out`.
    pub fn union_into(&self, out: &mut RoaringBitmap) {
        match self {
            ListRef::Big(b) => *out |= *b,
            _ => out.extend(self.iter()),
        }
    }

    /// Whether the list and the bitmap share a value.
    pub fn intersects(&self, other: &RoaringBitmap) -> bool {
        match self {
            ListRef::Big(b) => !b.is_disjoint(other),
            _ => self.iter().any(|v| other.contains(v)),
        }
    }
}

#[derive(Clone)]
pub enum ListIter<'a> {
    Small(std::slice::Iter<'a, u32>),
    Narrow(u32, std::slice::Iter<'a, u16>),
    Big(roaring::bitmap::Iter<'a>),
}

impl Iterator for ListIter<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        match self {
            ListIter::Small(i) => i.next().copied(),
            ListIter::Narrow(base, i) => i.next().map(|&d| *base + u32::from(d)),
            ListIter::Big(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            ListIter::Small(i) => i.size_hint(),
            ListIter::Narrow(_, i) => i.size_hint(),
            ListIter::Big(i) => i.size_hint(),
        }
    }
}

/// `key → sorted set of u32`, persistent. Serialized as its chunks in order.
#[derive(Clone, Debug, Default)]
pub struct Lists {
    /// Pages of chunks: chunk `c` is `pages[c / PAGE][c % PAGE]`. A lookup is two pointer hops;
    /// a write copies one page of `Arc`s and one chunk (neither when nothing shares them).
    pages: Vec<Arc<Vec<Arc<Chunk>>>>,
    chunk_count: usize,
    entries: u64,
}

impl Lists {
    pub fn get(&self, key: u32) -> ListRef<'_> {
        let (c, k) = (key as usize / CHUNK, key as usize % CHUNK);
        match self.pages.get(c / PAGE).and_then(|p| p.get(c % PAGE)) {
            Some(chunk) => chunk.get(k),
            None => ListRef::EMPTY,
        }
    }

    pub fn contains(&self, key: u32, v: u32) -> bool {
        self.get(key).contains(v)
    }

    /// Number of `(key, value)` entries.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// One past the largest key that may have a list.
    pub fn key_bound(&self) -> u32 {
        (self.chunk_count * CHUNK) as u32
    }

    fn chunk_mut(&mut self, key: u32) -> &mut Chunk {
        let c = key as usize / CHUNK;
        if self.chunk_count <= c {
            // New chunks share one empty chunk until written (the write below copies it).
            let empty = Arc::new(Chunk::new());
            while self.chunk_count <= c {
                if self.chunk_count.is_multiple_of(PAGE) {
                    self.pages.push(Arc::new(Vec::with_capacity(PAGE)));
                }
                let last = self.pages.len() - 1;
                Arc::make_mut(&mut self.pages[last]).push(empty.clone());
                self.chunk_count += 1;
            }
        }
        Arc::make_mut(&mut Arc::make_mut(&mut self.pages[c / PAGE])[c % PAGE])
    }

    pub fn insert(&mut self, key: u32, v: u32) -> bool {
        let added = self.chunk_mut(key).insert(key as usize % CHUNK, v);
        self.entries += u64::from(added);
        added
    }

    pub fn remove(&mut self, key: u32, v: u32) -> bool {
        if key as usize / CHUNK >= self.chunk_count {
            return false;
        }
        let removed = self.chunk_mut(key).remove(key as usize % CHUNK, v);
        self.entries -= u64::from(removed);
        removed
    }

    /// Builds from `(key, value)` pairs sorted by key then value (duplicates are skipped).
    pub fn from_sorted(pairs: impl IntoIterator<Item = (u32, u32)>) -> Lists {
        // A built chunk keeps exact capacities; chunks with no list share one allocation.
        let empty = Arc::new(Chunk::new());
        let sealed = |mut c: Chunk, empty: &Arc<Chunk>| {
            if c.is_empty() {
                return empty.clone();
            }
            c.items.seal();
            c.big.shrink_to_fit();
            Arc::new(c)
        };
        let mut chunks: Vec<Arc<Chunk>> = Vec::new();
        let mut cur = Chunk::new();
        let mut cur_idx = 0usize;
        let mut entries = 0u64;
        let mut run: Vec<u32> = Vec::new();
        let mut run_key: Option<u32> = None;
        let flush_run = |cur: &mut Chunk, key: u32, run: &mut Vec<u32>| {
            let k = key as usize % CHUNK;
            if run.len() > BIG {
                let bm = RoaringBitmap::from_sorted_iter(run.iter().copied()).unwrap_or_default();
                cur.big.push((k as u16, Arc::new(bm)));
            } else {
                cur.items.widen().extend_from_slice(run);
            }
            // Offsets of the keys after `k` start where this run ends (at most `CHUNK * BIG`).
            let end = cur.items.len() as u16;
            for o in &mut cur.offsets[k + 1..] {
                *o = end;
            }
            run.clear();
        };
        for (key, v) in pairs {
            if run_key != Some(key) {
                if let Some(rk) = run_key {
                    flush_run(&mut cur, rk, &mut run);
                }
                let c = key as usize / CHUNK;
                while cur_idx < c {
                    chunks.push(sealed(std::mem::replace(&mut cur, Chunk::new()), &empty));
                    cur_idx += 1;
                }
                run_key = Some(key);
            }
            if run.last() != Some(&v) {
                run.push(v);
                entries += 1;
            }
        }
        if let Some(rk) = run_key {
            flush_run(&mut cur, rk, &mut run);
            chunks.push(sealed(cur, &empty));
        }
        let chunk_count = chunks.len();
        let pages = chunks.chunks(PAGE).map(|p| Arc::new(p.to_vec())).collect();
        Lists { pages, chunk_count, entries }
    }

    /// Whether both hold the same lists (whatever their chunk layout).
    pub fn same_as(&self, other: &Lists) -> bool {
        let bound = self.key_bound().max(other.key_bound());
        self.entries == other.entries && (0..bound).all(|k| self.get(k).iter().eq(other.get(k).iter()))
    }

    /// Approximate heap bytes.
    pub fn heap_bytes(&self) -> usize {
        self.pages
            .iter()
            .flat_map(|p| p.iter())
            .map(|c| {
                // Chunks with no list share one allocation: a pointer each.
                let own = if c.is_empty() {
                    0
                } else {
                    c.items.heap_bytes()
                        + c.big.iter().map(|(_, b)| b.serialized_size()).sum::<usize>()
                        + std::mem::size_of::<Chunk>()
                };
                own + std::mem::size_of::<Arc<Chunk>>()
            })
            .sum()
    }
}

impl serde::Serialize for Lists {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let chunks: Vec<&Chunk> = self.pages.iter().flat_map(|p| p.iter().map(|c| &**c)).collect();
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.entries)?;
        t.serialize_element(&chunks)?;
        t.end()
    }
}

impl<'de> serde::Deserialize<'de> for Lists {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (entries, chunks): (u64, Vec<Chunk>) = serde::Deserialize::deserialize(d)?;
        for c in &chunks {
            let ok = c.offsets.windows(2).all(|w| w[0] <= w[1])
                && c.offsets.last().is_some_and(|&e| e as usize == c.items.len())
                && c.big.iter().all(|(k, _)| (*k as usize) < CHUNK)
                && match &c.items {
                    Items::Narrow { base, v } => {
                        v.iter().max().is_none_or(|&d| base.checked_add(u32::from(d)).is_some())
                    }
                    Items::Wide(_) => true,
                };
            if !ok {
                return Err(serde::de::Error::custom("a list chunk is malformed"));
            }
        }
        let chunk_count = chunks.len();
        let mut pages = Vec::with_capacity(chunk_count.div_ceil(PAGE));
        let empty = Arc::new(Chunk::new());
        let mut it = chunks.into_iter().map(|c| if c.is_empty() { empty.clone() } else { Arc::new(c) });
        loop {
            let page: Vec<Arc<Chunk>> = it.by_ref().take(PAGE).collect();
            if page.is_empty() {
                break;
            }
            pages.push(Arc::new(page));
        }
        Ok(Lists { pages, chunk_count, entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn keys_across_pages_and_snapshots() {
        let span = (CHUNK * PAGE * 3) as u32;
        let mut lists = Lists::default();
        for k in (0..span).step_by(97) {
            lists.insert(k, k % 7);
        }
        let snapshot = lists.clone();
        for k in (0..span).step_by(97 * 3) {
            lists.remove(k, k % 7);
            lists.insert(k, 1000);
        }
        for k in (0..span).step_by(97) {
            assert!(snapshot.contains(k, k % 7), "the snapshot keeps key {k}");
            let moved = k % (97 * 3) == 0;
            assert_eq!(lists.contains(k, 1000), moved);
            assert_eq!(lists.contains(k, k % 7), !moved || k % 7 == 1000);
        }
        let pairs: Vec<(u32, u32)> = (0..span).step_by(97).map(|k| (k, k % 7)).collect();
        let built = Lists::from_sorted(pairs);
        for k in (0..span).step_by(97) {
            assert_eq!(built.get(k).iter().collect::<Vec<_>>(), vec![k % 7]);
        }
        assert_eq!(built.get(span + 5).len(), 0);
    }

    #[test]
    fn a_chunk_full_of_short_lists() {
        // Every key of one chunk at the longest short list: the offsets' largest values.
        let mut lists = Lists::default();
        for k in 0..CHUNK as u32 {
            for v in 0..BIG as u32 {
                lists.insert(k, v * 3);
            }
        }
        let pairs: Vec<(u32, u32)> =
            (0..CHUNK as u32).flat_map(|k| (0..BIG as u32).map(move |v| (k, v * 3))).collect();
        let built = Lists::from_sorted(pairs);
        assert!(built.same_as(&lists));
        assert_eq!(lists.get(CHUNK as u32 - 1).iter().last(), Some((BIG as u32 - 1) * 3));
        // One more entry makes the last key's list a bitmap; removing entries makes it short again.
        assert!(lists.insert(CHUNK as u32 - 1, 1));
        assert!(matches!(lists.get(CHUNK as u32 - 1), ListRef::Big(_)));
        for v in 0..BIG as u32 {
            lists.remove(CHUNK as u32 - 1, v * 3);
        }
        assert_eq!(lists.get(CHUNK as u32 - 1).iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(lists.get(0).len(), BIG);
        assert_eq!(lists.entries(), (CHUNK * BIG - BIG + 1) as u64);
    }

    /// Values mostly close together (a chunk's lists stay narrow), some far apart or at the top
    /// of the range (the wildcard's id), so that chunks change form.
    fn value() -> impl Strategy<Value = u32> {
        prop_oneof![
            8 => 0u32..200,
            1 => 65_400u32..65_800,
            1 => 200_000u32..200_100,
            1 => (u32::MAX - 3)..=u32::MAX,
        ]
    }

    /// Applies `ops` (insert or remove `(key, value)`) to lists and to a map of sets, then
    /// `more` to the lists built from the map and to the map; every form (mutated, built,
    /// decoded from a snapshot) must hold what the map holds.
    fn agree(ops: &[(bool, u32, u32)], more: &[(bool, u32, u32)], keys: u32) -> Result<(), TestCaseError> {
        let mut lists = Lists::default();
        let mut model: BTreeMap<u32, BTreeSet<u32>> = BTreeMap::new();
        let snapshot = lists.clone();
        let apply =
            |lists: &mut Lists, model: &mut BTreeMap<u32, BTreeSet<u32>>, ops: &[(bool, u32, u32)]| {
                for &(ins, k, v) in ops {
                    if ins {
                        prop_assert_eq!(lists.insert(k, v), model.entry(k).or_default().insert(v));
                    } else {
                        prop_assert_eq!(lists.remove(k, v), model.entry(k).or_default().remove(&v));
                    }
                }
                Ok(())
            };
        let same = |lists: &Lists, model: &BTreeMap<u32, BTreeSet<u32>>| {
            for k in 0..keys {
                let got: Vec<u32> = lists.get(k).iter().collect();
                let want: Vec<u32> = model.get(&k).map(|s| s.iter().copied().collect()).unwrap_or_default();
                prop_assert_eq!(lists.get(k).len(), want.len());
                for &v in want.iter().take(8) {
                    prop_assert!(lists.contains(k, v));
                    prop_assert!(v == u32::MAX || lists.contains(k, v + 1) == want.contains(&(v + 1)));
                }
                prop_assert_eq!(got, want);
            }
            prop_assert_eq!(lists.entries(), model.values().map(|s| s.len() as u64).sum::<u64>());
            let cfg = bincode::config::standard();
            let bytes =
                bincode::serde::encode_to_vec(lists, cfg).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (back, _): (Lists, usize) = bincode::serde::decode_from_slice(&bytes, cfg)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(back.same_as(lists));
            Ok(())
        };
        apply(&mut lists, &mut model, ops)?;
        same(&lists, &model)?;
        prop_assert_eq!(snapshot.entries(), 0);
        let pairs: Vec<(u32, u32)> =
            model.iter().flat_map(|(k, s)| s.iter().map(move |v| (*k, *v))).collect();
        let mut built = Lists::from_sorted(pairs);
        same(&built, &model)?;
        let before = built.clone();
        let frozen = model.clone();
        apply(&mut built, &mut model, more)?;
        same(&built, &model)?;
        same(&before, &frozen)
    }

    proptest! {
        #[test]
        fn behaves_like_a_map_of_sets(
            ops in prop::collection::vec((any::<bool>(), 0u32..400, value()), 0..600),
            more in prop::collection::vec((any::<bool>(), 0u32..400, value()), 0..100),
        ) {
            agree(&ops, &more, 400)?;
        }

        /// Long lists of any values shrunk to short ones, beside short lists or alone in their
        /// chunk.
        #[test]
        fn long_lists_shrink_into_short_ones(
            from in prop_oneof![Just(0u32), Just(65_400), Just(u32::MAX - 400)],
            values in prop::collection::vec((0u32..2, 0u32..400), 70..200),
            keep in 0usize..40,
            other in prop::collection::vec(value(), 0..3),
        ) {
            let values: Vec<(u32, u32)> = values.iter().map(|&(k, v)| (k, from + v)).collect();
            let mut ops: Vec<(bool, u32, u32)> = values.iter().map(|&(k, v)| (true, k, v)).collect();
            ops.extend(other.iter().map(|&v| (true, 2, v)));
            ops.extend(values.iter().skip(keep).map(|&(k, v)| (false, k, v)));
            agree(&ops, &[], 3)?;
        }

        /// Few keys, many values: lists turn into bitmaps and back.
        #[test]
        fn long_lists_behave_like_sets(
            ops in prop::collection::vec((prop::bool::weighted(0.7), 0u32..3, value()), 0..800),
            more in prop::collection::vec((any::<bool>(), 0u32..3, value()), 0..300),
        ) {
            agree(&ops, &more, 3)?;
        }
    }
}
