//! Gathering many adjacency lists into one bitmap, for `what`.

use super::lists::ListRef;
use super::lookup::TriBits;
use roaring::RoaringBitmap;

/// Collects many lists into one bitmap: long lists are unioned all at once at the end, short ones
/// gathered and sorted once (or-ing or inserting them one by one into a growing bitmap costs the
/// bitmap's size every time).
#[derive(Default)]
pub(super) struct Gather<'a> {
    big: Vec<&'a RoaringBitmap>,
    /// Long lists cut to `clip`.
    cut: Vec<RoaringBitmap>,
    values: Vec<u32>,
    /// Only values in this range need to be kept.
    clip: Option<std::ops::Range<u32>>,
}

impl<'a> Gather<'a> {
    pub(super) fn add(&mut self, list: ListRef<'a>) {
        match (list, &self.clip) {
            (ListRef::Big(b), None) => self.big.push(b),
            (ListRef::Small(s), None) => self.values.extend_from_slice(s),
            (ListRef::Big(b), Some(r)) => match (b.min(), b.max()) {
                (Some(lo), Some(hi)) if r.start <= lo && hi < r.end => self.big.push(b),
                _ => self.cut.push(RoaringBitmap::from_sorted_iter(b.range(r.clone())).unwrap_or_default()),
            },
            (ListRef::Small(s), Some(r)) => {
                let (lo, hi) = (s.partition_point(|&v| v < r.start), s.partition_point(|&v| v < r.end));
                self.values.extend_from_slice(&s[lo..hi]);
            }
            (ListRef::Narrow(..), None) => self.values.extend(list.iter()),
            (ListRef::Narrow(..), Some(r)) => self.values.extend(list.iter().filter(|v| r.contains(v))),
        }
    }

    pub(super) fn finish(mut self) -> RoaringBitmap {
        use roaring::MultiOps;
        let mut bits = match (self.big.len(), self.cut.len()) {
            (0, 0) => RoaringBitmap::new(),
            (1, 0) => self.big[0].clone(),
            (0, 1) => self.cut.pop().unwrap_or_default(),
            _ => self.big.into_iter().chain(self.cut.iter()).union(),
        };
        if !self.values.is_empty() {
            self.values.sort_unstable();
            self.values.dedup();
            let small = RoaringBitmap::from_sorted_iter(self.values).unwrap_or_default();
            if bits.is_empty() {
                return small;
            }
            bits |= small;
        }
        bits
    }
}

/// [`Gather`] for three-valued sets: lists reached through a `yes` member go to `yes`, lists
/// reached only conditionally to `cond`.
pub(super) struct TriGather<'a> {
    pub(super) yes: Gather<'a>,
    cond: Gather<'a>,
}

impl<'a> TriGather<'a> {
    pub(super) fn new(clip: Option<std::ops::Range<u32>>) -> Self {
        TriGather {
            yes: Gather { clip: clip.clone(), ..Gather::default() },
            cond: Gather { clip, ..Gather::default() },
        }
    }

    /// Adds `list(x)` for every member `x` of `sub`, as `sub` holds `x`.
    pub(super) fn add_lists(&mut self, sub: &TriBits, list: impl Fn(u32) -> ListRef<'a>) {
        for x in &sub.yes {
            self.yes.add(list(x));
        }
        if sub.maybe.len() > sub.yes.len() {
            for x in &(&sub.maybe - &sub.yes) {
                self.cond.add(list(x));
            }
        }
    }

    pub(super) fn finish(self) -> TriBits {
        let yes = self.yes.finish();
        let mut maybe = self.cond.finish();
        maybe |= &yes;
        TriBits { yes, maybe }
    }
}
