//! The subjects a full expansion of `object#relation` reaches, each with the relations it was
//! found under: what SpiceDB's developer API computes for a validation file's expected relations
//! (`zed validate`: `[user:tom] is <document:doc1#viewer>`).
//!
//! The expansion follows SpiceDB's recursive expand: a relation's stored relationships are a leaf
//! (every subject, usersets included, found under `object#relation`), each userset subject is
//! expanded in turn, arrows follow their relationships, `self` finds the object itself under the
//! permission that says `self`. Relationships out of force at the evaluation time are left out, as
//! SpiceDB's datastore leaves out expired ones; a relationship with a condition is *caveated*,
//! whatever its condition would say (SpiceDB's expand never evaluates caveats), and so is what
//! is reached through it. The subjects are then combined by the same set algebra as SpiceDB's
//! `developmentmembership` package (`TrackingSubjectSet` over `BaseSubjectSet`): per subject type
//! and relation, concrete subjects and at most one wildcard with its exclusions; union,
//! intersection and exclusion as there, carrying caveats only as "has one or not" (all that the
//! comparison looks at) and the relations each subject was found under (the union of those of
//! every subject it was combined from).
//!
//! Where the data cycles (a userset that reaches itself), SpiceDB's expand fails with its depth
//! limit; here the cycle is cut where it re-enters a relation already being expanded (the least
//! fixpoint, as check does). Deeper nesting than `limits.max_depth` is
//! [`EvalError::DepthExceeded`].

use super::reference::Reference;
use super::EvalError;
use crate::schema::{RelId, Rewrite, TypeId};
use crate::store::{Obj, ObjId, Subject, WILDCARD};
use crate::syntax::ast::ArrowMode;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A relation of an object, as a place a subject was found: `document:doc1#viewer`.
pub type Place = (Obj, RelId);

/// One subject an expansion found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The subject; a wildcard has `id == WILDCARD`.
    pub subject: Subject,
    /// Whether a condition (caveat) stands between the object and the subject.
    pub caveated: bool,
    /// For a wildcard: the subjects it excludes, each with its caveated mark.
    pub excluded: Vec<(Subject, bool)>,
    /// The relations the subject was found under (SpiceDB's "parent resources").
    pub places: BTreeSet<Place>,
}

/// The subjects an expansion of `object#rel` found, in (type, relation, id) order.
pub fn membership(ev: &mut Reference<'_>, object: Obj, rel: RelId) -> Result<Vec<Found>, EvalError> {
    let mut walk = Walk { ev, stack: Vec::new(), cuts: 0, memo: HashMap::new() };
    let set = walk.relation(object, rel)?;
    let mut out = Vec::new();
    for ((ty, srel), base) in set.0 {
        let subject = |id: ObjId| Subject { ty, id, rel: srel };
        for (id, fs) in base.concrete {
            out.push(Found {
                subject: subject(id),
                caveated: fs.cav,
                excluded: Vec::new(),
                places: fs.places,
            });
        }
        if let Some(w) = base.wildcard {
            let mut excluded: Vec<(Subject, bool)> =
                w.excluded.iter().map(|e| (subject(e.id), e.cav)).collect();
            excluded.sort();
            out.push(Found { subject: subject(WILDCARD), caveated: w.cav, excluded, places: w.places });
        }
    }
    Ok(out)
}

// ---- the set algebra (SpiceDB's `BaseSubjectSet`) ----------------------------------------------

/// A found subject inside one (type, relation) set: SpiceDB's `FoundSubject`.
#[derive(Clone, Debug, Default)]
struct Fs {
    id: ObjId,
    /// SpiceDB's caveat expression, as "is there one".
    cav: bool,
    /// A wildcard's exclusions (never nested).
    excluded: Vec<Fs>,
    places: BTreeSet<Place>,
}

impl Fs {
    fn is_wildcard(&self) -> bool {
        self.id == WILDCARD
    }
}

/// SpiceDB's constructor: a subject combined from `sources` carries all their places.
fn make(id: ObjId, cav: bool, excluded: Vec<Fs>, sources: &[&Fs]) -> Fs {
    let mut places = BTreeSet::new();
    for s in sources {
        places.extend(s.places.iter().copied());
    }
    Fs { id, cav, excluded, places }
}

/// The concrete subjects and the wildcard of one subject type and relation.
#[derive(Clone, Debug, Default)]
struct Base {
    concrete: BTreeMap<ObjId, Fs>,
    wildcard: Option<Fs>,
}

impl Base {
    fn as_slice(&self) -> Vec<Fs> {
        self.concrete.values().cloned().chain(self.wildcard.clone()).collect()
    }

    fn set_concrete(&mut self, id: ObjId, fs: Option<Fs>) {
        match fs {
            Some(f) => {
                self.concrete.insert(id, f);
            }
            None => {
                self.concrete.remove(&id);
            }
        }
    }

    fn add(&mut self, fs: Fs) {
        if fs.is_wildcard() {
            let mut updated = Some(union_wildcards(self.wildcard.take(), fs));
            for c in self.concrete.values() {
                updated = union_wildcard_concrete(updated, c);
            }
            self.wildcard = updated;
            return;
        }
        let existing = self.concrete.remove(&fs.id);
        let id = fs.id;
        self.wildcard = union_wildcard_concrete(self.wildcard.take(), &fs);
        self.set_concrete(id, union_concretes(existing, Some(fs)));
    }

    fn union_with(&mut self, other: &Base) {
        for fs in other.as_slice() {
            self.add(fs);
        }
    }

    fn subtract(&mut self, r: &Fs) {
        if r.is_wildcard() {
            let ids: Vec<ObjId> = self.concrete.keys().copied().collect();
            for id in ids {
                let c = self.concrete.remove(&id);
                if let Some(c) = c {
                    self.set_concrete(id, subtract_wildcard_from_concrete(c, r));
                }
            }
            let (w, concretes) = subtract_wildcard_from_wildcard(self.wildcard.take(), r);
            self.wildcard = w;
            for c in concretes {
                self.concrete.insert(c.id, c);
            }
            return;
        }
        if let Some(existing) = self.concrete.remove(&r.id) {
            self.set_concrete(r.id, subtract_concretes(existing, r));
        }
        if let Some(w) = self.wildcard.take() {
            self.wildcard = Some(subtract_concrete_from_wildcard(w, r));
        }
    }

    fn subtract_all(&mut self, other: &Base) {
        for fs in other.as_slice() {
            self.subtract(&fs);
        }
    }

    fn intersect(&mut self, other: &Base) {
        let existing_wildcard = self.wildcard.take();
        self.wildcard = intersect_wildcards(existing_wildcard.as_ref(), other.wildcard.as_ref());
        let mut updated: BTreeMap<ObjId, Fs> = BTreeMap::new();
        for c in self.concrete.values() {
            let both = other.concrete.get(&c.id).map(|o| make(c.id, c.cav || o.cav, Vec::new(), &[c, o]));
            let through_wildcard = intersect_concrete_wildcard(c, other.wildcard.as_ref());
            if let Some(r) = union_concretes(both, through_wildcard) {
                updated.insert(c.id, r);
            }
        }
        if let Some(ew) = &existing_wildcard {
            for o in other.concrete.values() {
                let through = intersect_concrete_wildcard(o, Some(ew));
                let merged = union_concretes(updated.remove(&o.id), through);
                if let Some(m) = merged {
                    updated.insert(o.id, m);
                }
            }
        }
        self.concrete = updated;
    }

    fn with_parent_caveat(&mut self) {
        if let Some(w) = self.wildcard.take() {
            self.wildcard = Some(make(WILDCARD, true, w.excluded.clone(), &[&w]));
        }
        for c in self.concrete.values_mut() {
            *c = make(c.id, true, Vec::new(), &[c]);
        }
    }
}

/// `{*} ∪ {*}`: caveated only if both are; exclusions intersected.
fn union_wildcards(existing: Option<Fs>, adding: Fs) -> Fs {
    let Some(e) = existing else { return adding };
    let mut ours = Base::default();
    for x in &e.excluded {
        ours.add(x.clone());
    }
    let mut theirs = Base::default();
    for x in &adding.excluded {
        theirs.add(x.clone());
    }
    ours.intersect(&theirs);
    make(WILDCARD, e.cav && adding.cav, ours.as_slice(), &[&e, &adding])
}

/// A concrete subject added beside a wildcard lifts (or, caveated, weakens) its exclusion.
fn union_wildcard_concrete(existing: Option<Fs>, adding: &Fs) -> Option<Fs> {
    let w = existing?;
    let mut excluded = Vec::with_capacity(w.excluded.len());
    for x in &w.excluded {
        if x.id == adding.id {
            if !adding.cav {
                continue;
            }
            excluded.push(make(adding.id, true, Vec::new(), &[x, adding]));
        } else {
            excluded.push(x.clone());
        }
    }
    Some(make(WILDCARD, w.cav, excluded, &[&w]))
}

fn union_concretes(existing: Option<Fs>, adding: Option<Fs>) -> Option<Fs> {
    match (existing, adding) {
        (None, a) => a,
        (e, None) => e,
        (Some(e), Some(a)) => Some(make(e.id, e.cav && a.cav, Vec::new(), &[&e, &a])),
    }
}

/// `{*} − {*}`: the remaining wildcard (if any) and the concrete subjects the second one's
/// exclusions leave.
fn subtract_wildcard_from_wildcard(existing: Option<Fs>, r: &Fs) -> (Option<Fs>, Vec<Fs>) {
    let Some(e) = existing else { return (None, Vec::new()) };
    if !r.cav && r.excluded.is_empty() {
        return (None, Vec::new());
    }
    let mut concretes = Vec::new();
    for x in &r.excluded {
        let ours = e.excluded.iter().find(|o| o.id == x.id);
        if ours.is_none_or(|o| o.cav) {
            let cav = e.cav || r.cav || x.cav || ours.is_some();
            concretes.push(make(x.id, cav, Vec::new(), &[x]));
        }
    }
    if e.cav || r.cav {
        (Some(make(WILDCARD, true, e.excluded.clone(), &[&e, r])), concretes)
    } else {
        (None, concretes)
    }
}

fn subtract_wildcard_from_concrete(c: Fs, w: &Fs) -> Option<Fs> {
    match w.excluded.iter().find(|x| x.id == c.id) {
        None if !w.cav => None,
        None => Some(make(c.id, true, Vec::new(), &[&c])),
        Some(x) if !x.cav => Some(c),
        Some(_) => Some(make(c.id, true, Vec::new(), &[&c])),
    }
}

fn subtract_concretes(e: Fs, r: &Fs) -> Option<Fs> {
    if !r.cav {
        return None;
    }
    Some(make(e.id, true, Vec::new(), &[&e, r]))
}

fn subtract_concrete_from_wildcard(w: Fs, c: &Fs) -> Fs {
    let mut excluded = Vec::with_capacity(w.excluded.len() + 1);
    let mut found = false;
    for x in &w.excluded {
        if x.id == c.id {
            excluded.push(make(c.id, x.cav && c.cav, Vec::new(), &[x, c]));
            found = true;
        } else {
            excluded.push(x.clone());
        }
    }
    if !found {
        excluded.push(c.clone());
    }
    make(WILDCARD, w.cav, excluded, &[&w])
}

fn intersect_wildcards(a: Option<&Fs>, b: Option<&Fs>) -> Option<Fs> {
    let (a, b) = (a?, b?);
    let mut excluded = Base::default();
    for x in a.excluded.iter().chain(&b.excluded) {
        excluded.add(x.clone());
    }
    Some(make(WILDCARD, a.cav || b.cav, excluded.as_slice(), &[a, b]))
}

fn intersect_concrete_wildcard(c: &Fs, w: Option<&Fs>) -> Option<Fs> {
    let w = w?;
    match w.excluded.iter().find(|x| x.id == c.id) {
        None if !w.cav => Some(c.clone()),
        None => Some(make(c.id, true, Vec::new(), &[c, w])),
        Some(x) if !x.cav => None,
        Some(x) => Some(make(c.id, true, Vec::new(), &[c, w, x])),
    }
}

// ---- per subject type and relation (SpiceDB's `TrackingSubjectSet`) ---------------------------

type Key = (TypeId, Option<RelId>);

#[derive(Clone, Debug, Default)]
struct Tracking(BTreeMap<Key, Base>);

impl Tracking {
    fn add(&mut self, key: Key, fs: Fs) {
        self.0.entry(key).or_default().add(fs);
    }

    fn add_from(&mut self, other: &Tracking) {
        for (k, b) in &other.0 {
            self.0.entry(*k).or_default().union_with(b);
        }
    }

    fn exclude(&mut self, other: &Tracking) {
        for (k, b) in &mut self.0 {
            if let Some(o) = other.0.get(k) {
                b.subtract_all(o);
            }
        }
    }

    fn intersect(&mut self, other: &Tracking) {
        self.0.retain(|k, _| other.0.contains_key(k));
        for (k, b) in &mut self.0 {
            if let Some(o) = other.0.get(k) {
                b.intersect(o);
            }
        }
    }

    fn with_parent_caveat(&mut self, caveated: bool) {
        if caveated {
            for b in self.0.values_mut() {
                b.with_parent_caveat();
            }
        }
    }
}

// ---- the expansion -----------------------------------------------------------------------------

struct Walk<'r, 'a> {
    ev: &'r mut Reference<'a>,
    stack: Vec<Place>,
    /// How many times a cycle was cut so far.
    cuts: usize,
    /// Expansions that cut no cycle (so mean the same wherever they are met).
    memo: HashMap<Place, Tracking>,
}

impl Walk<'_, '_> {
    /// Expands `o#rel` (SpiceDB dispatches one expansion per relation of an object).
    fn relation(&mut self, o: Obj, rel: RelId) -> Result<Tracking, EvalError> {
        if let Some(t) = self.memo.get(&(o, rel)) {
            return Ok(t.clone());
        }
        if self.stack.contains(&(o, rel)) {
            self.cuts += 1;
            return Ok(Tracking::default());
        }
        if self.stack.len() >= self.ev.opts.limits.max_depth as usize {
            return Err(EvalError::DepthExceeded { limit: self.ev.opts.limits.max_depth });
        }
        let cuts = self.cuts;
        self.stack.push((o, rel));
        let rewrite = self.ev.snap.schema().rel_def(o.ty, rel).rewrite.clone();
        let out = self.rewrite(o, rel, &rewrite);
        self.stack.pop();
        let out = out?;
        if self.cuts == cuts {
            self.memo.insert((o, rel), out.clone());
        }
        Ok(out)
    }

    /// The relationships of `o#rel` in force, with whether each has a condition.
    fn tuples(&self, o: Obj, rel: RelId) -> Vec<(Subject, bool)> {
        if o.id >= self.ev.snap.object_count(o.ty) {
            return Vec::new(); // an object no relationship names
        }
        let mut out: Vec<(Subject, bool)> = self
            .ev
            .snap
            .tuples(o, rel)
            .into_iter()
            .filter(|(_, a)| self.ev.cond.in_force(a))
            .map(|(s, a)| (s, a.caveat.is_some()))
            .collect();
        out.sort();
        out
    }

    fn rewrite(&mut self, o: Obj, rel: RelId, rw: &Rewrite) -> Result<Tracking, EvalError> {
        match rw {
            Rewrite::This => self.direct(o, rel),
            Rewrite::Computed(r) => self.relation(o, *r),
            Rewrite::Nil => Ok(Tracking::default()),
            Rewrite::SelfRef => {
                let mut t = Tracking::default();
                let fs = Fs { id: o.id, places: BTreeSet::from([(o, rel)]), ..Fs::default() };
                t.add((o.ty, None), fs);
                Ok(t)
            }
            Rewrite::Union(items) => {
                let mut t = Tracking::default();
                for i in items {
                    let child = self.rewrite(o, rel, i)?;
                    t.add_from(&child);
                }
                Ok(t)
            }
            Rewrite::Intersection(items) => {
                let Some((first, rest)) = items.split_first() else { return Ok(Tracking::default()) };
                let mut t = Tracking::default();
                t.add_from(&self.rewrite(o, rel, first)?);
                for i in rest {
                    let child = self.rewrite(o, rel, i)?;
                    t.intersect(&child);
                }
                Ok(t)
            }
            Rewrite::Exclusion(a, b) => {
                let mut t = Tracking::default();
                t.add_from(&self.rewrite(o, rel, a)?);
                let excluded = self.rewrite(o, rel, b)?;
                t.exclude(&excluded);
                Ok(t)
            }
            Rewrite::Arrow { tupleset, targets, mode, .. } => {
                let mut children = Vec::new();
                for (s, caveated) in self.tuples(o, *tupleset) {
                    if s.is_wildcard() {
                        continue;
                    }
                    let mut child = match targets.get(s.ty as usize).copied().flatten() {
                        Some(target) => self.relation(s.object(), target)?,
                        None => Tracking::default(),
                    };
                    child.with_parent_caveat(caveated);
                    children.push(child);
                }
                let mut t = Tracking::default();
                match mode {
                    ArrowMode::Any => {
                        for c in &children {
                            t.add_from(c);
                        }
                    }
                    ArrowMode::All => {
                        if let Some((first, rest)) = children.split_first() {
                            t.add_from(first);
                            for c in rest {
                                t.intersect(c);
                            }
                        }
                    }
                }
                Ok(t)
            }
        }
    }

    /// The stored relationships of `o#rel`: every subject is found under `o#rel`, and each
    /// userset subject is expanded in turn (through its relationship's condition).
    fn direct(&mut self, o: Obj, rel: RelId) -> Result<Tracking, EvalError> {
        let tuples = self.tuples(o, rel);
        let mut t = Tracking::default();
        for (s, caveated) in &tuples {
            let Some(r) = s.rel else { continue };
            let mut child = self.relation(s.object(), r)?;
            child.with_parent_caveat(*caveated);
            t.add_from(&child);
        }
        let mut leaf = Tracking::default();
        for (s, caveated) in tuples {
            let fs = Fs { id: s.id, cav: caveated, excluded: Vec::new(), places: BTreeSet::from([(o, rel)]) };
            leaf.add((s.ty, s.rel), fs);
        }
        t.add_from(&leaf);
        Ok(t)
    }
}
