//! Validity intervals of relationships, for constraints that must hold at every instant.
//!
//! A relationship holds on the half-open interval `[valid_from, expires_at)`; a missing bound is
//! the beginning or the end of time. Counting how many relationships hold is a step function that
//! changes only where an interval starts or ends, so a sweep over those points answers "at most",
//! "at least", "never together" and "always with" for every instant at once.

use super::TupleAttrs;
use chrono::{DateTime, SecondsFormat, Utc};

pub(crate) type Instant = DateTime<Utc>;
/// The beginning of time: a relationship without `valid_from` holds since then.
pub(crate) const BEGIN: Instant = DateTime::<Utc>::MIN_UTC;
/// The end of time: a relationship without `expires_at` holds until then.
pub(crate) const END: Instant = DateTime::<Utc>::MAX_UTC;

/// `[from, until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interval {
    pub from: Instant,
    pub until: Instant,
}

impl Interval {
    pub fn of(a: &TupleAttrs) -> Interval {
        Interval { from: a.valid_from.unwrap_or(BEGIN), until: a.expires_at.unwrap_or(END) }
    }

    pub fn is_empty(self) -> bool {
        self.from >= self.until
    }

    /// The instants both hold, if any.
    pub fn overlap(self, o: Interval) -> Option<Interval> {
        let i = Interval { from: self.from.max(o.from), until: self.until.min(o.until) };
        (!i.is_empty()).then_some(i)
    }
}

/// How many of `intervals` hold, as steps: from each instant on (until the next step), the count.
/// The first step is at [`BEGIN`].
pub(crate) fn counts(intervals: &[Interval]) -> Vec<(Instant, usize)> {
    let mut events: Vec<(Instant, i8)> =
        intervals.iter().filter(|i| !i.is_empty()).flat_map(|i| [(i.from, 1), (i.until, -1)]).collect();
    // At the same instant, ends (-1) come before starts: the intervals are half-open.
    events.sort_unstable();
    let mut steps: Vec<(Instant, usize)> = vec![(BEGIN, 0)];
    let mut n = 0usize;
    for (t, d) in events {
        n = if d > 0 { n + 1 } else { n.saturating_sub(1) };
        match steps.last_mut() {
            Some(last) if last.0 == t => last.1 = n,
            _ => steps.push((t, n)),
        }
    }
    steps
}

/// The first instant at which more than `max` of `intervals` hold, with how many do.
pub(crate) fn first_over(intervals: &[Interval], max: usize) -> Option<(Instant, usize)> {
    counts(intervals).into_iter().find(|&(_, n)| n > max)
}

/// The stretches of time in which fewer than `min` of `intervals` hold, with how many do.
pub(crate) fn under(intervals: &[Interval], min: usize) -> Vec<(Interval, usize)> {
    let steps = counts(intervals);
    let mut out = Vec::new();
    for (i, &(from, n)) in steps.iter().enumerate() {
        let until = steps.get(i + 1).map_or(END, |s| s.0);
        if n < min && from < until {
            out.push((Interval { from, until }, n));
        }
    }
    out
}

/// The union of `intervals`, as disjoint intervals in time order.
pub(crate) fn union(intervals: &[Interval]) -> Vec<Interval> {
    let mut sorted: Vec<Interval> = intervals.iter().copied().filter(|i| !i.is_empty()).collect();
    sorted.sort_by_key(|i| (i.from, i.until));
    let mut out: Vec<Interval> = Vec::new();
    for i in sorted {
        match out.last_mut() {
            Some(last) if i.from <= last.until => last.until = last.until.max(i.until),
            _ => out.push(i),
        }
    }
    out
}

/// The first instant of `i` that the disjoint, ordered `cover` leaves out, if any.
pub(crate) fn first_uncovered(i: Interval, cover: &[Interval]) -> Option<Instant> {
    if i.is_empty() {
        return None;
    }
    let mut cursor = i.from;
    for c in cover {
        if c.until <= cursor {
            continue;
        }
        if c.from > cursor {
            return Some(cursor);
        }
        cursor = c.until;
        if cursor >= i.until {
            return None;
        }
    }
    (cursor < i.until).then_some(cursor)
}

/// ` from TIME`, or nothing for the beginning of time.
pub(crate) fn from_text(t: Instant) -> String {
    if t == BEGIN {
        String::new()
    } else {
        format!(" from {}", t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// ` [valid:FROM..UNTIL]` as in the relationship text form, or nothing for all of time.
pub(crate) fn interval_text(i: Interval) -> String {
    let t = |x: Instant, edge: Instant| {
        if x == edge {
            String::new()
        } else {
            x.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        }
    };
    if i.from == BEGIN && i.until == END {
        String::new()
    } else {
        format!(" [valid:{}..{}]", t(i.from, BEGIN), t(i.until, END))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Instant {
        super::super::relationship::parse_time(s).unwrap()
    }

    fn iv(from: Option<&str>, until: Option<&str>) -> Interval {
        Interval { from: from.map_or(BEGIN, t), until: until.map_or(END, t) }
    }

    #[test]
    fn a_handover_never_has_two_holders() {
        let old = iv(None, Some("2024-01-01T00:00:00Z"));
        let new = iv(Some("2024-01-01T00:00:00Z"), None);
        assert_eq!(first_over(&[old, new], 1), None);
        let overlapping = iv(Some("2023-12-31T00:00:00Z"), None);
        assert_eq!(first_over(&[old, overlapping], 1), Some((t("2023-12-31T00:00:00Z"), 2)));
    }

    #[test]
    fn gaps_are_found_and_covered() {
        let a = iv(None, Some("2024-01-01T00:00:00Z"));
        let b = iv(Some("2024-02-01T00:00:00Z"), None);
        let gaps = under(&[a, b], 1);
        assert_eq!(gaps, vec![(iv(Some("2024-01-01T00:00:00Z"), Some("2024-02-01T00:00:00Z")), 0)]);
        let cover = union(&[b, a]);
        assert_eq!(first_uncovered(iv(None, None), &cover), Some(t("2024-01-01T00:00:00Z")));
        assert_eq!(first_uncovered(iv(Some("2024-03-01T00:00:00Z"), None), &cover), None);
        assert_eq!(
            first_uncovered(iv(None, None), &union(&[a, iv(Some("2024-01-01T00:00:00Z"), None)])),
            None
        );
    }
}
