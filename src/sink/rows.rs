//! The rows the visibility table is written with: a full load's binary `COPY` stream, in the
//! order that makes its subject index cheap to build, and a batch's removed pairs grouped into
//! the statements PostgreSQL runs fastest.
//!
//! - **Full loads.** Rows are sent subject by subject, the subjects in bytewise order (the
//!   order of the subject index, whose operator class compares bytewise, see [`indexes`]), so
//!   the heap is already in `(subject, permission)` order: building that index finds its input
//!   sorted (one pass instead of a sort of every row), and a subject's rows share heap pages,
//!   which is what a user's group move deletes. The binary `COPY` format is written directly from names rendered once
//!   per subject and per object.
//! - **Removed pairs.** Deleting pairs one index probe at a time costs several microseconds a
//!   pair; when one subject loses many pairs (a user leaves a group), one statement over that
//!   subject's rows (an index range, hash-joined with the objects lost) is several times faster;
//!   likewise an object that loses many subjects. The remaining pairs are deleted by pair.

use crate::materialize::Materialized;
use crate::Tri;
use bytes::{BufMut, BytesMut};
use std::collections::HashMap;

/// The generation's two indexes, for `CREATE INDEX` in one batch. Both compare bytewise
/// (`text_pattern_ops`): under a libc locale other than `C` (such as `C.UTF-8` or
/// `en_US.UTF-8`), the default operator class compares every pair of keys with `strcoll`, which
/// makes the index builds and every descent of a follower's inserts and deletes slower; the
/// pattern operator class compares with `memcmp` and still serves the plain `=` of the deletes,
/// of list queries and of row-level-security policies (its operator family includes text's `=`).
/// The columns keep the database's default collation, so joins with application columns work.
pub(super) fn indexes(table: &str) -> String {
    format!(
        "CREATE INDEX {table}_subject ON {table} (subject text_pattern_ops, permission text_pattern_ops); \
         CREATE INDEX {table}_object ON {table} (object text_pattern_ops, permission text_pattern_ops);"
    )
}

/// The positions of `names` in bytewise order (the order of the subject index, see
/// [`indexes`]).
pub(super) fn byte_order(names: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_unstable_by(|&a, &b| names[a].as_bytes().cmp(names[b].as_bytes()).then(a.cmp(&b)));
    order
}

/// The binary `COPY` header (signature, flags, header extension length).
pub(super) fn copy_header(buf: &mut BytesMut) {
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0);
    buf.put_i32(0);
}

/// The binary `COPY` trailer.
pub(super) fn copy_trailer(buf: &mut BytesMut) {
    buf.put_i16(-1);
}

/// One row of four text fields in binary `COPY` format.
pub(super) fn copy_row(buf: &mut BytesMut, fields: [&[u8]; 4]) {
    buf.put_i16(4);
    for f in fields {
        // Names are far below 2 GiB (PostgreSQL's limit for a field is 1 GB).
        buf.put_i32(f.len() as i32);
        buf.put_slice(f);
    }
}

/// Names of the objects `first..first + count`, rendered once: `name(i)` is object `first + i`.
pub(super) struct Names {
    text: String,
    ends: Vec<usize>,
}

impl Names {
    pub(super) fn new(count: usize, mut name: impl FnMut(usize, &mut String)) -> Names {
        let mut n = Names { text: String::new(), ends: Vec::with_capacity(count) };
        for i in 0..count {
            name(i, &mut n.text);
            n.ends.push(n.text.len());
        }
        n
    }

    pub(super) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends.get(i - 1).copied().unwrap_or(0) };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or("")
    }
}

/// Every pair of `m` as binary `COPY` rows, subject by subject in `order` (indexes into
/// `m.rows`), handed to `flush` in chunks of about `chunk` bytes; the header first, the trailer
/// last.
pub(super) fn encode_pairs<E>(
    m: &Materialized,
    order: &[usize],
    subjects: &[String],
    objects: &Names,
    permission: &str,
    chunk: usize,
    mut flush: impl FnMut(BytesMut) -> Result<(), E>,
) -> Result<(), E> {
    let mut buf = BytesMut::with_capacity(chunk + 4096);
    copy_header(&mut buf);
    for &i in order {
        let (Some(row), Some(subject)) = (m.rows.get(i), subjects.get(i)) else { continue };
        for (set, outcome) in [(&row.allowed, "allowed"), (&row.conditional, "conditional")] {
            for o in set {
                let object = objects.get(o.wrapping_sub(m.objects.start) as usize);
                copy_row(
                    &mut buf,
                    [subject.as_bytes(), permission.as_bytes(), object.as_bytes(), outcome.as_bytes()],
                );
                if buf.len() >= chunk {
                    flush(buf.split())?;
                }
            }
        }
    }
    copy_trailer(&mut buf);
    flush(buf)
}

/// A subject or an object that loses many pairs, and what it loses: `(the other side, outcome)`.
pub(super) type Group = (u32, Vec<(u32, Tri)>);

/// Removed pairs `(subject, object, outcome)` sorted into the statements that delete them.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Removals {
    /// Subjects losing at least `min` pairs: `(subject, [(object, outcome)])`.
    pub by_subject: Vec<Group>,
    /// Objects losing at least `min` subjects (among the rest): `(object, [(subject, outcome)])`.
    pub by_object: Vec<Group>,
    /// The rest, by pair: `(subject, object, outcome)`.
    pub pairs: Vec<(u32, u32, Tri)>,
}

/// Groups removed pairs: a subject losing at least `min` pairs gets one statement, then an
/// object losing at least `min` of the remaining pairs; the rest are deleted by pair.
pub(super) fn group_removals(removed: &[(u32, u32, Tri)], min: usize) -> Removals {
    let mut per_subject: HashMap<u32, usize> = HashMap::new();
    for &(s, _, _) in removed {
        *per_subject.entry(s).or_default() += 1;
    }
    let mut out = Removals::default();
    let mut subjects: HashMap<u32, usize> = HashMap::new();
    let mut rest = Vec::new();
    for &(s, o, c) in removed {
        if per_subject.get(&s).is_some_and(|&n| n >= min) {
            let at = *subjects.entry(s).or_insert_with(|| {
                out.by_subject.push((s, Vec::new()));
                out.by_subject.len() - 1
            });
            out.by_subject[at].1.push((o, c));
        } else {
            rest.push((s, o, c));
        }
    }
    let mut per_object: HashMap<u32, usize> = HashMap::new();
    for &(_, o, _) in &rest {
        *per_object.entry(o).or_default() += 1;
    }
    let mut objects: HashMap<u32, usize> = HashMap::new();
    for (s, o, c) in rest {
        if per_object.get(&o).is_some_and(|&n| n >= min) {
            let at = *objects.entry(o).or_insert_with(|| {
                out.by_object.push((o, Vec::new()));
                out.by_object.len() - 1
            });
            out.by_object[at].1.push((s, c));
        } else {
            out.pairs.push((s, o, c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_losing_many_pairs_gets_one_statement() {
        let mut removed: Vec<(u32, u32, Tri)> = (0..5).map(|o| (7, o, Tri::True)).collect();
        removed.push((8, 1, Tri::Cond));
        removed.extend((10..13).map(|s| (s, 40, Tri::True)));
        let r = group_removals(&removed, 3);
        assert_eq!(r.by_subject, vec![(7, (0..5).map(|o| (o, Tri::True)).collect())]);
        assert_eq!(r.by_object, vec![(40, (10..13).map(|s| (s, Tri::True)).collect())]);
        assert_eq!(r.pairs, vec![(8, 1, Tri::Cond)]);
        // Every pair is deleted exactly once.
        let count = r.by_subject.iter().chain(&r.by_object).map(|g| g.1.len()).sum::<usize>() + r.pairs.len();
        assert_eq!(count, removed.len());
        assert_eq!(group_removals(&removed, usize::MAX).pairs, removed);
    }

    #[test]
    fn subjects_are_sent_in_bytewise_order() {
        let names: Vec<String> = ["user:u10", "user:u2", "user:U1", "user:u1", "user:é", "user:e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let sorted: Vec<&str> = byte_order(&names).iter().map(|&i| names[i].as_str()).collect();
        assert_eq!(sorted, ["user:U1", "user:e", "user:u1", "user:u10", "user:u2", "user:é"]);
    }

    #[test]
    fn names_are_rendered_once_and_found_by_position() {
        let n = Names::new(3, |i, s| s.push_str(["a", "", "ccc"][i]));
        assert_eq!((n.get(0), n.get(1), n.get(2), n.get(3)), ("a", "", "ccc", ""));
    }
}
