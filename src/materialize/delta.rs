//! Incremental recomputation: the pairs a write batch added and removed, with work proportional
//! to what the batch can reach rather than to the whole graph.
//!
//! Two ways, chosen per batch ([`Strategy::Auto`]):
//!
//! - **by objects**: the objects whose permission can read a changed relationship (walking the
//!   schema's dependencies backwards from each change, with reverse lists, in both revisions);
//!   `who` before and after for each, sharing intermediate sets between objects.
//! - **by subjects**: the subjects a changed relationship can matter to (the user it names, the
//!   members of the userset it names, the holders of the arrow target it points to); `what`
//!   before and after for each. A user moving between groups touches one subject and thousands
//!   of objects, so this is the cheap side there; retagging one message is the opposite.
//!
//! Either way the result is exact: before + deltas = after (tested against full recomputation).
//! Subjects and objects created by the batch are included (a new user reached by a wildcard).

use super::compute::row;
use super::deps::{Changed, Deps, Walk};
use super::{MaterializeError, Partition, Target};
use crate::eval::{EvalOptions, MissingContext, Tri};
use crate::index::{IndexData, IndexEval, SubjectBits, WhoCache};
use crate::store::{Obj, ObjectRef, Source, Subject, SubjectRef, TupleStore, WriteOp, WILDCARD};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::HashSet;
use std::ops::Range;

/// Whether a pair appeared or disappeared. A pair whose outcome changed (allowed ↔
/// conditional) is removed with the old outcome and added with the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Removed,
    Added,
}

impl Change {
    pub fn name(self) -> &'static str {
        match self {
            Change::Removed => "removed",
            Change::Added => "added",
        }
    }
}

/// A changed pair by ids. Sorts by object, subject, removals first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeltaIds {
    pub object: u32,
    pub subject: u32,
    pub change: Change,
    pub outcome: Tri,
}

/// A changed pair by name, as [`crate::Purview::write_with_deltas`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delta {
    pub change: Change,
    pub subject: SubjectRef,
    /// `view` (the object names the type).
    pub permission: String,
    pub object: ObjectRef,
    pub outcome: Tri,
}

/// How to find the changed pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Whichever of the two below reaches fewer nodes.
    #[default]
    Auto,
    /// `who` before and after for every affected object.
    Objects,
    /// `what` before and after for every affected subject; falls back to objects when every
    /// subject is affected (a wildcard, an `all` arrow).
    Subjects,
}

/// One `what` costs about as much as this many visited nodes plus `who` answers.
const SUBJECT_COST: usize = 64;
/// Subjects or objects per parallel task.
const PER_TASK: usize = 32;

/// The relationships `ops` changed between `before` and `after` (same index, consecutive
/// revisions), by ids. Touches that rewrote a relationship as it was are left out.
pub fn changed(before: &IndexData, after: &IndexData, ops: &[WriteOp]) -> Vec<Changed> {
    let schema = &after.schema;
    let mut out = Vec::new();
    for op in ops {
        let r = op.relationship();
        let resolved = (|| {
            let (ty, rel) = schema.relation(&r.resource.ty, &r.relation)?;
            let sty = schema.type_id(&r.subject.ty)?;
            let srel = match &r.subject.relation {
                Some(n) => Some(schema.type_def(sty).relation_id(n)?),
                None => None,
            };
            let object = Obj { ty, id: after.object_id(ty, &r.resource.id)? };
            let subject = Subject { ty: sty, id: after.object_id(sty, &r.subject.id)?, rel: srel };
            Some((object, rel, subject))
        })();
        if let Some((o, rel, s)) = resolved {
            if before.get(o, rel, s) != after.get(o, rel, s) && !out.contains(&(o, rel, s)) {
                out.push((o, rel, s));
            }
        }
    }
    out
}

/// The pairs of `target` that differ between `before` and `after`, restricted to the objects of
/// `partition`, sorted. `ops` is the batch that led from one to the other.
pub fn deltas(
    before: &IndexData,
    after: &IndexData,
    ops: &[WriteOp],
    target: &Target,
    opts: &EvalOptions,
    strategy: Strategy,
    partition: Partition,
) -> Result<Vec<DeltaIds>, MaterializeError> {
    let mut opts = opts.clone();
    opts.missing_context = MissingContext::Conditional;
    opts.limits.max_results = usize::MAX;
    let t = *target;
    let changes = changed(before, after, ops);
    let counts = |d: &IndexData| (d.object_count(t.object_type), d.object_count(t.subject_type));
    let ((objects_a, subjects_a), (objects_b, subjects_b)) = (counts(before), counts(after));
    let mut new_subjects = RoaringBitmap::new();
    new_subjects.insert_range(subjects_a..subjects_b);
    let mut new_objects = RoaringBitmap::new();
    new_objects.insert_range(objects_a..objects_b);
    let deps = Deps::new(&after.schema);
    let relevant: HashSet<_> = after.plan.graph.reachable((t.object_type, t.permission));
    let walk = Walk { deps: &deps, relevant: &relevant, target: t };

    // The subjects side, unless every subject is affected.
    let mut subjects = new_subjects.clone();
    let mut bounded = true;
    if strategy != Strategy::Objects {
        for d in [before, after] {
            bounded = bounded && walk.affected_subjects(d, &opts, &changes, &mut subjects)?;
        }
    }
    // The objects side, when it is not more work (or when it is the only way).
    let mut objects = new_objects;
    let by_subjects = match (strategy, bounded) {
        (Strategy::Objects, _) | (_, false) => None,
        (Strategy::Subjects, true) => Some(subjects),
        (Strategy::Auto, true) => {
            let budget = (subjects.len() as usize).saturating_mul(SUBJECT_COST) + 256;
            let mut walked = objects.clone();
            let cheaper =
                [before, after].iter().all(|d| walk.affected_objects(d, &changes, budget, &mut walked));
            if cheaper {
                objects = walked;
                None
            } else {
                Some(subjects)
            }
        }
    };
    let out = match by_subjects {
        Some(subjects) => by_subject(before, after, &t, &opts, &subjects, partition)?,
        None => {
            if strategy != Strategy::Auto || !bounded {
                for d in [before, after] {
                    walk.affected_objects(d, &changes, usize::MAX, &mut objects);
                }
            }
            let range = partition.range(objects_b);
            objects.remove_range(..range.start);
            objects.remove_range(range.end..);
            by_object(before, after, &t, &opts, &objects, &new_subjects, partition)?
        }
    };
    Ok(out)
}

/// Appends the differences between two rows (allowed, conditional) of one subject or object.
pub(super) fn diff(
    before: (&RoaringBitmap, &RoaringBitmap),
    after: (&RoaringBitmap, &RoaringBitmap),
    mut emit: impl FnMut(u32, Change, Tri),
) {
    for (a, b, outcome) in [(before.0, after.0, Tri::True), (before.1, after.1, Tri::Cond)] {
        for x in a - b {
            emit(x, Change::Removed, outcome);
        }
        for x in b - a {
            emit(x, Change::Added, outcome);
        }
    }
}

/// `what` of one subject on one revision, clipped to `objects` (empty for a subject the
/// revision does not have).
pub(super) fn what_row(
    data: &IndexData,
    t: &Target,
    opts: &EvalOptions,
    subject: u32,
    objects: &Range<u32>,
) -> Result<(RoaringBitmap, RoaringBitmap), MaterializeError> {
    if subject >= data.object_count(t.subject_type) || objects.is_empty() {
        return Ok(Default::default());
    }
    let s = t.subject(subject);
    let bits = IndexEval::new(data, opts).what_in(s, t.object_type, t.permission, objects.clone())?;
    Ok(row(subject, bits.yes, bits.maybe, objects).map(|r| (r.allowed, r.conditional)).unwrap_or_default())
}

fn clip(partition: Partition, objects: u32, full: u32) -> Range<u32> {
    let r = partition.range(full);
    r.start.min(objects)..r.end.min(objects)
}

fn by_subject(
    before: &IndexData,
    after: &IndexData,
    t: &Target,
    opts: &EvalOptions,
    subjects: &RoaringBitmap,
    partition: Partition,
) -> Result<Vec<DeltaIds>, MaterializeError> {
    let full = after.object_count(t.object_type);
    let range_a = clip(partition, before.object_count(t.object_type), full);
    let range_b = partition.range(full);
    rows_compared((before, t, range_a), (after, t, range_b), opts, subjects)
}

/// The pairs that differ for each of `subjects`: its row (the objects of a range) on each side,
/// compared; sorted. Sides may differ in data, target and range (a schema diff compares two
/// schemas' targets).
pub(super) fn rows_compared(
    (da, ta, ra): (&IndexData, &Target, Range<u32>),
    (db, tb, rb): (&IndexData, &Target, Range<u32>),
    opts: &EvalOptions,
    subjects: &RoaringBitmap,
) -> Result<Vec<DeltaIds>, MaterializeError> {
    let ids: Vec<u32> = subjects.iter().collect();
    let parts: Vec<Vec<DeltaIds>> = ids
        .par_chunks(PER_TASK)
        .map(|chunk| -> Result<Vec<DeltaIds>, MaterializeError> {
            let mut out = Vec::new();
            for &s in chunk {
                let a = what_row(da, ta, opts, s, &ra)?;
                let b = what_row(db, tb, opts, s, &rb)?;
                diff((&a.0, &a.1), (&b.0, &b.1), |o, change, outcome| {
                    out.push(DeltaIds { object: o, subject: s, change, outcome })
                });
            }
            Ok(out)
        })
        .collect::<Result<_, _>>()?;
    let mut out: Vec<DeltaIds> = parts.into_iter().flatten().collect();
    out.sort_unstable();
    Ok(out)
}

/// A `who` answer as (allowed, conditional) subject ids below `count`.
fn expand(set: &SubjectBits, count: u32) -> (RoaringBitmap, RoaringBitmap) {
    let mut allowed = set.t().clone();
    let mut cond = if set.has_conditional() { set.c() - set.t() } else { RoaringBitmap::new() };
    if set.default != Tri::False {
        let mut rest = RoaringBitmap::new();
        rest.insert_range(0..count);
        rest -= set.keys();
        match set.default {
            Tri::True => allowed |= rest,
            _ => cond |= rest,
        }
    }
    for s in [&mut allowed, &mut cond] {
        s.remove_range(count..);
        s.remove(WILDCARD);
    }
    (allowed, cond)
}

fn by_object(
    before: &IndexData,
    after: &IndexData,
    t: &Target,
    opts: &EvalOptions,
    objects: &RoaringBitmap,
    new_subjects: &RoaringBitmap,
    partition: Partition,
) -> Result<Vec<DeltaIds>, MaterializeError> {
    let ids: Vec<u32> = objects.iter().collect();
    let (fty, frel) = (t.subject_type, t.subject_relation);
    // Few large tasks: each keeps its `who` caches for all its objects (they share groups).
    let per_task = ids.len().div_ceil(rayon::current_num_threads().max(1) * 4).max(PER_TASK);
    let parts: Vec<Vec<DeltaIds>> = ids
        .par_chunks(per_task)
        .map(|chunk| -> Result<Vec<DeltaIds>, MaterializeError> {
            let mut out = Vec::new();
            let (mut ev_a, mut ev_b) = (IndexEval::new(before, opts), IndexEval::new(after, opts));
            let (mut cache_a, mut cache_b) = (WhoCache::default(), WhoCache::default());
            for &x in chunk {
                let o = Obj { ty: t.object_type, id: x };
                let a = if x < before.object_count(t.object_type) {
                    expand(
                        &ev_a.who_cached(o, t.permission, fty, frel, &mut cache_a)?,
                        before.object_count(fty),
                    )
                } else {
                    Default::default()
                };
                let b = expand(
                    &ev_b.who_cached(o, t.permission, fty, frel, &mut cache_b)?,
                    after.object_count(fty),
                );
                diff((&a.0, &a.1), (&b.0, &b.1), |s, change, outcome| {
                    out.push(DeltaIds { object: x, subject: s, change, outcome })
                });
            }
            Ok(out)
        })
        .collect::<Result<_, _>>()?;
    let mut out: Vec<DeltaIds> = parts.into_iter().flatten().collect();
    // Subjects the batch created have no pairs before; their pairs on the objects not walked
    // above (a wildcard reaches them) are all new.
    let range = partition.range(after.object_count(t.object_type));
    for s in new_subjects {
        let (allowed, cond) = what_row(after, t, opts, s, &range)?;
        for (set, outcome) in [(allowed, Tri::True), (cond, Tri::Cond)] {
            for o in set - objects {
                out.push(DeltaIds { object: o, subject: s, change: Change::Added, outcome });
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Names a delta.
pub fn name(data: &IndexData, t: &Target, d: &DeltaIds) -> Delta {
    Delta {
        change: d.change,
        subject: data.subject_ref(t.subject(d.subject)),
        permission: t.relation_name(&data.schema).to_string(),
        object: data.object_ref(Obj { ty: t.object_type, id: d.object }),
        outcome: d.outcome,
    }
}
