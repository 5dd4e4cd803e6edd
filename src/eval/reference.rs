//! The reference evaluator: the oracle every faster path is tested against.
//!
//! It walks the rewrite rules top-down over the store, keeps the relations it is inside of on a
//! stack, and treats re-entering one as "not by this path" (least fixpoint), so cycles in the data
//! terminate with the right answer. Results that did not depend on such a cut are memoized.
//! Deeper recursion than `limits.max_depth` is an error, never a silent "denied".
//!
//! Re-entering a relation through the right side of an exclusion (the data cycles through `-`)
//! is different: the relation would depend on its own negation. See [`super::Recursion`].

use super::{Conditions, Decision, EvalError, EvalOptions, Recursion, SubjectSet, Tri};
use crate::schema::{RelId, Rewrite};
use crate::store::{Obj, Source, Subject, TupleAttrs};
use crate::syntax::ast::ArrowMode;
use std::collections::HashMap;

/// Evaluates one question against one snapshot.
pub struct Reference<'a> {
    pub snap: &'a dyn Source,
    pub opts: &'a EvalOptions,
    /// The relations being evaluated, and the cycles met.
    rec: Recursion,
    check_memo: HashMap<(Obj, RelId, Subject), Tri>,
    lookup_memo: HashMap<(Obj, RelId, u32, Option<RelId>), SubjectSet>,
    /// Time windows and conditions of the relationships met, and what was missing.
    pub cond: Conditions<'a>,
}

impl<'a> Reference<'a> {
    pub fn new(snap: &'a dyn Source, opts: &'a EvalOptions) -> Self {
        Reference {
            snap,
            opts,
            rec: Recursion::default(),
            check_memo: HashMap::new(),
            lookup_memo: HashMap::new(),
            cond: Conditions::new(snap.schema(), opts),
        }
    }

    /// Turns a three-valued result into a decision, honouring the missing-context policy.
    pub fn decide(&self, t: Tri) -> Result<Decision, EvalError> {
        self.cond.decide(t)
    }

    /// Whether a stored relationship holds now: its time window and its condition.
    pub fn tuple_tri(&mut self, attrs: &TupleAttrs) -> Result<Tri, EvalError> {
        self.cond.holds(attrs)
    }

    // ---- check -------------------------------------------------------------------------------

    /// Whether `subject` has `rel` on `object`.
    pub fn check(&mut self, object: Obj, rel: RelId, subject: Subject) -> Result<Tri, EvalError> {
        if subject.rel == Some(rel) && subject.object() == object {
            return Ok(Tri::True);
        }
        if let Some(&t) = self.check_memo.get(&(object, rel, subject)) {
            return Ok(t);
        }
        let Some(saved) = self.rec.enter(object, rel, self.opts.limits.max_depth)? else {
            return Ok(self.rec.cut_value());
        };
        let rewrite = &self.snap.schema().rel_def(object.ty, rel).rewrite;
        let result = self.check_rewrite(object, rel, rewrite, subject);
        let exact = self.rec.leave(saved);
        let t = result?;
        if exact {
            self.check_memo.insert((object, rel, subject), t);
        }
        let (snap, schema) = (self.snap, self.snap.schema());
        self.rec.finish(
            t,
            || snap.object_ref(object).to_string(),
            || schema.rel_def(object.ty, rel).name.clone(),
        )
    }

    fn check_rewrite(
        &mut self,
        object: Obj,
        rel: RelId,
        rw: &Rewrite,
        subject: Subject,
    ) -> Result<Tri, EvalError> {
        Ok(match rw {
            Rewrite::Nil => Tri::False,
            Rewrite::SelfRef => Tri::from_bool(super::is_self(object, subject)),
            Rewrite::This => self.check_this(object, rel, subject)?,
            Rewrite::Computed(r) => self.check(object, *r, subject)?,
            Rewrite::Union(items) => {
                let mut acc = Tri::False;
                for i in items {
                    acc = acc.or(self.check_rewrite(object, rel, i, subject)?);
                    if acc == Tri::True {
                        break;
                    }
                }
                acc
            }
            Rewrite::Intersection(items) => {
                let mut acc = Tri::True;
                for i in items {
                    acc = acc.and(self.check_rewrite(object, rel, i, subject)?);
                    if acc == Tri::False {
                        break;
                    }
                }
                acc
            }
            Rewrite::Exclusion(a, b) => {
                let a = self.check_rewrite(object, rel, a, subject)?;
                if a == Tri::False {
                    Tri::False
                } else {
                    self.rec.negate(1);
                    let b = self.check_rewrite(object, rel, b, subject);
                    self.rec.negate(-1);
                    a.and(b?.not())
                }
            }
            Rewrite::Arrow { tupleset, targets, mode, .. } => {
                let tuples: Vec<(Subject, TupleAttrs)> = self.snap.tuples(object, *tupleset);
                // Any: some followed relationship holds and leads to the target.
                // All: there is a relationship in force, and every one of them holds (its
                // condition too, as in SpiceDB) and leads to the target.
                let mut any = Tri::False;
                let mut all = Tri::True;
                let mut seen = false;
                for (s, attrs) in tuples {
                    if s.is_wildcard() || !self.cond.in_force(&attrs) {
                        continue;
                    }
                    let c = self.cond.condition(&attrs)?;
                    if c == Tri::False && *mode == ArrowMode::Any {
                        continue;
                    }
                    let v = match targets.get(s.ty as usize).copied().flatten() {
                        Some(target) => self.check(s.object(), target, subject)?,
                        None => Tri::False,
                    };
                    seen = true;
                    match mode {
                        ArrowMode::Any => any = any.or(c.and(v)),
                        ArrowMode::All => all = all.and(c.and(v)),
                    }
                    if any == Tri::True || all == Tri::False {
                        break;
                    }
                }
                match mode {
                    ArrowMode::Any => any,
                    ArrowMode::All if seen => all,
                    ArrowMode::All => Tri::False,
                }
            }
        })
    }

    fn cycle_error(&self, object: Obj, rel: RelId) -> EvalError {
        EvalError::ExclusionCycle {
            object: self.snap.object_ref(object).to_string(),
            relation: self.snap.schema().rel_def(object.ty, rel).name.clone(),
        }
    }

    /// Evaluates one rewrite node of `object#rel` for `subject` (used by explain).
    pub fn check_rewrite_pub(
        &mut self,
        object: Obj,
        rel: RelId,
        rw: &Rewrite,
        subject: Subject,
    ) -> Result<Tri, EvalError> {
        self.check_rewrite(object, rel, rw, subject)
    }

    fn check_this(&mut self, object: Obj, rel: RelId, subject: Subject) -> Result<Tri, EvalError> {
        let tuples: Vec<(Subject, TupleAttrs)> = self.snap.tuples(object, rel);
        let mut acc = Tri::False;
        for (s, attrs) in tuples {
            let direct = s == subject || (s.is_wildcard() && s.ty == subject.ty && subject.rel.is_none());
            let via_userset = s.rel.is_some() && !direct;
            if !direct && !via_userset {
                continue;
            }
            let exists = self.tuple_tri(&attrs)?;
            if exists == Tri::False {
                continue;
            }
            let v = if direct {
                exists
            } else {
                let r = s.rel.unwrap_or_default();
                exists.and(self.check(s.object(), r, subject)?)
            };
            acc = acc.or(v);
            if acc == Tri::True {
                break;
            }
        }
        Ok(acc)
    }

    // ---- who (lookup subjects) ---------------------------------------------------------------

    /// Every subject of type `filter_ty` (with relation `filter_rel`, for usersets) that has
    /// `rel` on `object`.
    pub fn lookup_subjects(
        &mut self,
        object: Obj,
        rel: RelId,
        filter_ty: u32,
        filter_rel: Option<RelId>,
    ) -> Result<SubjectSet, EvalError> {
        if let Some(s) = self.lookup_memo.get(&(object, rel, filter_ty, filter_rel)) {
            return Ok(s.clone());
        }
        let mut out = SubjectSet::empty();
        if filter_ty == object.ty && filter_rel == Some(rel) {
            out.add(Subject { ty: object.ty, id: object.id, rel: Some(rel) }, Tri::True);
        }
        let Some(saved) = self.rec.enter(object, rel, self.opts.limits.max_depth)? else {
            if self.rec.cut_value() != Tri::False {
                return Err(self.cycle_error(object, rel));
            }
            return Ok(out);
        };
        let rewrite = &self.snap.schema().rel_def(object.ty, rel).rewrite;
        let result = self.lookup_rewrite(object, rel, rewrite, filter_ty, filter_rel);
        let exact = self.rec.leave(saved);
        let result = match result {
            // Named after the question asked (where the cycle was met depends on the order).
            Err(EvalError::ExclusionCycle { .. }) if self.rec.is_empty() => {
                Err(self.cycle_error(object, rel))
            }
            r => r,
        };
        let set = out.union(&result?);
        if exact {
            self.lookup_memo.insert((object, rel, filter_ty, filter_rel), set.clone());
        }
        self.check_result_limit(&set)?;
        Ok(set)
    }

    fn check_result_limit(&self, set: &SubjectSet) -> Result<(), EvalError> {
        let limit = self.opts.limits.max_results;
        if set.explicit.len() > limit {
            return Err(EvalError::TooManyResults { limit });
        }
        Ok(())
    }

    fn lookup_rewrite(
        &mut self,
        object: Obj,
        rel: RelId,
        rw: &Rewrite,
        fty: u32,
        frel: Option<RelId>,
    ) -> Result<SubjectSet, EvalError> {
        Ok(match rw {
            Rewrite::Nil => SubjectSet::empty(),
            Rewrite::SelfRef => {
                let mut s = SubjectSet::empty();
                if fty == object.ty && frel.is_none() {
                    s.add(Subject { ty: object.ty, id: object.id, rel: None }, Tri::True);
                }
                s
            }
            Rewrite::Computed(r) => self.lookup_subjects(object, *r, fty, frel)?,
            Rewrite::Union(items) => {
                let mut acc = SubjectSet::empty();
                for i in items {
                    acc = acc.union(&self.lookup_rewrite(object, rel, i, fty, frel)?);
                }
                acc
            }
            Rewrite::Intersection(items) => {
                let mut acc: Option<SubjectSet> = None;
                for i in items {
                    let s = self.lookup_rewrite(object, rel, i, fty, frel)?;
                    acc = Some(match acc {
                        None => s,
                        Some(a) => a.intersect(&s),
                    });
                }
                acc.unwrap_or_default()
            }
            Rewrite::Exclusion(a, b) => {
                let a = self.lookup_rewrite(object, rel, a, fty, frel)?;
                if a.is_empty() {
                    a
                } else {
                    self.rec.negate(1);
                    let b = self.lookup_rewrite(object, rel, b, fty, frel);
                    self.rec.negate(-1);
                    a.exclude(&b?)
                }
            }
            Rewrite::This => {
                let tuples: Vec<(Subject, TupleAttrs)> = self.snap.tuples(object, rel);
                let mut acc = SubjectSet::empty();
                for (s, attrs) in tuples {
                    let exists = self.tuple_tri(&attrs)?;
                    if exists == Tri::False {
                        continue;
                    }
                    if s.ty == fty && s.rel == frel {
                        if s.is_wildcard() {
                            acc.add_wildcard(exists);
                        } else {
                            acc.add(s, exists);
                        }
                    }
                    if let Some(r) = s.rel {
                        let sub = self.lookup_subjects(s.object(), r, fty, frel)?;
                        acc = acc.union(&sub.and_with(exists));
                    }
                }
                acc
            }
            Rewrite::Arrow { tupleset, targets, mode, .. } => {
                let tuples: Vec<(Subject, TupleAttrs)> = self.snap.tuples(object, *tupleset);
                let mut any = SubjectSet::empty();
                let mut all: Option<SubjectSet> = None;
                for (s, attrs) in tuples {
                    if s.is_wildcard() || !self.cond.in_force(&attrs) {
                        continue;
                    }
                    let c = self.cond.condition(&attrs)?;
                    if c == Tri::False && *mode == ArrowMode::Any {
                        continue;
                    }
                    let sub = match targets.get(s.ty as usize).copied().flatten() {
                        Some(target) => self.lookup_subjects(s.object(), target, fty, frel)?,
                        None => SubjectSet::empty(),
                    };
                    let term = sub.and_with(c);
                    match mode {
                        ArrowMode::Any => any = any.union(&term),
                        ArrowMode::All => {
                            all = Some(match all {
                                None => term,
                                Some(a) => a.intersect(&term),
                            })
                        }
                    }
                }
                match mode {
                    ArrowMode::Any => any,
                    ArrowMode::All => all.unwrap_or_default(),
                }
            }
        })
    }
}
