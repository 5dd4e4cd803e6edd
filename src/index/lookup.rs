//! `what` and `who` on the index, by bitmap algebra over whole sets.
//!
//! - `what` (objects a subject has a relation on) runs bottom-up: for each relation it computes
//!   the set of objects at once, from reverse lists; recursive relations (a strongly connected
//!   component of the schema graph) are iterated to their least fixpoint.
//! - `who` (subjects that have a relation on an object) runs top-down over forward lists, with
//!   sets of subjects as bitmaps; wildcards and their exclusions are a default membership.
//!
//! Both carry three-valued membership: `yes` (allowed) and `maybe` (allowed or conditional).

use super::check::IndexEval;
use super::gather::TriGather;
use super::lists::ListRef;
use super::plan::{FastPath, SlotId, SlotKind};
use crate::eval::{EvalError, Tri};
use crate::schema::{RelId, Rewrite, TypeId};
use crate::store::{Obj, Subject, TupleAttrs};
use crate::syntax::ast::ArrowMode;
use roaring::RoaringBitmap;
use std::collections::HashMap;

/// A set of object ids with three-valued membership: `yes ⊆ maybe`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TriBits {
    pub yes: RoaringBitmap,
    pub maybe: RoaringBitmap,
}

impl TriBits {
    pub fn get(&self, id: u32) -> Tri {
        if self.yes.contains(id) {
            Tri::True
        } else if self.maybe.contains(id) {
            Tri::Cond
        } else {
            Tri::False
        }
    }

    fn add(&mut self, id: u32, t: Tri) {
        if t >= Tri::Cond {
            self.maybe.insert(id);
        }
        if t == Tri::True {
            self.yes.insert(id);
        }
    }

    fn union_with(&mut self, o: &TriBits) {
        self.yes |= &o.yes;
        self.maybe |= &o.maybe;
    }

    fn intersect_with(&mut self, o: &TriBits) {
        self.yes &= &o.yes;
        self.maybe &= &o.maybe;
    }

    fn exclude(&mut self, o: &TriBits) {
        self.yes -= &o.maybe;
        self.maybe -= &o.yes;
    }
}

impl super::IndexData {
    /// Whether `what` over objects of `ty` can be computed window by window (see
    /// [`IndexEval::what_in`]): no relation of the schema takes `ty` as a subject.
    pub fn what_windowable(&self, ty: TypeId) -> bool {
        let schema = &self.schema;
        schema.types.iter().all(|t| t.relations.iter().all(|r| r.allowed.iter().all(|a| a.ty != ty)))
    }
}

impl IndexEval<'_> {
    /// Every object of `ty` on which `subject` has `rel`.
    pub fn what(&mut self, subject: Subject, ty: TypeId, rel: RelId) -> Result<TriBits, EvalError> {
        let mut memo = HashMap::new();
        self.w(subject, ty, rel, &mut memo)
    }

    /// The objects of `ty` on which `subject` satisfies `rw`, an expression in the definition
    /// of `ty#rel` (`this` in it stands for `rel`'s relationships). A part of a definition is
    /// evaluated the way the whole is: `what` of `ty#rel` is this with `rw` its rewrite, less the
    /// userset subject itself (`group:g#member` is a member of `group:g`).
    pub fn what_expr(
        &mut self,
        subject: Subject,
        ty: TypeId,
        rel: RelId,
        rw: &Rewrite,
    ) -> Result<TriBits, EvalError> {
        let mut memo = HashMap::new();
        self.w_rewrite(subject, ty, rel, rw, &mut memo)
    }

    /// [`IndexEval::what`] for the objects with ids in `range` only (others may or may not be
    /// in the answer). When no relation of the schema takes `ty` as a subject, an object's
    /// membership depends on no other object of `ty`, so the reverse lists of `ty` are cut to
    /// the range before they are unioned: work in proportion to the range (a partition).
    pub fn what_in(
        &mut self,
        subject: Subject,
        ty: TypeId,
        rel: RelId,
        range: std::ops::Range<u32>,
    ) -> Result<TriBits, EvalError> {
        self.clip = self.data.what_windowable(ty).then_some((ty, range));
        let out = self.what(subject, ty, rel);
        self.clip = None;
        out
    }

    /// The id range the sets of `ty` may be cut to.
    fn clip_of(&self, ty: TypeId) -> Option<std::ops::Range<u32>> {
        self.clip.as_ref().filter(|(t, _)| *t == ty).map(|(_, r)| r.clone())
    }

    fn w(
        &mut self,
        s: Subject,
        ty: TypeId,
        rel: RelId,
        memo: &mut HashMap<(TypeId, RelId), TriBits>,
    ) -> Result<TriBits, EvalError> {
        if let Some(v) = memo.get(&(ty, rel)) {
            return Ok(v.clone());
        }
        let data = self.data;
        let graph = &data.plan.graph;
        if graph.reaches_negative_cycle((ty, rel)) {
            let v = self.w_by_checks(s, ty, rel)?;
            memo.insert((ty, rel), v.clone());
            return Ok(v);
        }
        if !graph.in_cycle((ty, rel)) {
            let v = self.w_node(s, ty, rel, memo)?;
            memo.insert((ty, rel), v.clone());
            return Ok(v);
        }
        // A recursive relation with a closure answers at once.
        if let Some(v) = self.w_closure(s, ty, rel, memo)? {
            memo.insert((ty, rel), v.clone());
            return Ok(v);
        }
        // A recursive component: start every member empty and iterate to the fixpoint.
        let members = graph.component((ty, rel));
        for &m in &members {
            memo.insert(m, TriBits::default());
        }
        loop {
            let mut changed = false;
            for &(mt, mr) in &members {
                let v = self.w_node(s, mt, mr, memo)?;
                if memo.get(&(mt, mr)) != Some(&v) {
                    memo.insert((mt, mr), v);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        Ok(memo.get(&(ty, rel)).cloned().unwrap_or_default())
    }

    /// `what` for a relation that may depend on a recursion through an exclusion: one check per
    /// object (top-down, so data that cycles through the exclusion is found as it is in `check`;
    /// a bottom-up fixpoint would not be well defined).
    fn w_by_checks(&mut self, s: Subject, ty: TypeId, rel: RelId) -> Result<TriBits, EvalError> {
        let range = self.clip_of(ty).unwrap_or(0..self.data.object_count(ty));
        let mut out = TriBits::default();
        for id in range.start..range.end.min(self.data.object_count(ty)) {
            out.add(id, self.check(Obj { ty, id }, rel, s)?);
        }
        Ok(out)
    }

    fn w_node(
        &mut self,
        s: Subject,
        ty: TypeId,
        rel: RelId,
        memo: &mut HashMap<(TypeId, RelId), TriBits>,
    ) -> Result<TriBits, EvalError> {
        let data = self.data;
        let mut v = self.w_rewrite(s, ty, rel, &data.schema.rel_def(ty, rel).rewrite, memo)?;
        if s.ty == ty && s.rel == Some(rel) {
            v.add(s.id, Tri::True);
        }
        Ok(v)
    }

    pub(super) fn w_rewrite(
        &mut self,
        s: Subject,
        ty: TypeId,
        rel: RelId,
        rw: &Rewrite,
        memo: &mut HashMap<(TypeId, RelId), TriBits>,
    ) -> Result<TriBits, EvalError> {
        Ok(match rw {
            Rewrite::Nil => TriBits::default(),
            Rewrite::SelfRef => {
                let mut v = TriBits::default();
                if s.ty == ty && s.rel.is_none() && !s.is_wildcard() {
                    v.add(s.id, Tri::True);
                }
                v
            }
            Rewrite::Computed(r) => self.w(s, ty, *r, memo)?,
            Rewrite::Union(items) => {
                let mut acc = TriBits::default();
                for i in items {
                    acc.union_with(&self.w_rewrite(s, ty, rel, i, memo)?);
                }
                acc
            }
            Rewrite::Intersection(items) => {
                let mut acc: Option<TriBits> = None;
                for i in items {
                    let v = self.w_rewrite(s, ty, rel, i, memo)?;
                    match &mut acc {
                        None => acc = Some(v),
                        Some(a) => a.intersect_with(&v),
                    }
                }
                acc.unwrap_or_default()
            }
            Rewrite::Exclusion(a, b) => {
                let mut a = self.w_rewrite(s, ty, rel, a, memo)?;
                if !a.maybe.is_empty() {
                    a.exclude(&self.w_rewrite(s, ty, rel, b, memo)?);
                }
                a
            }
            Rewrite::This => self.w_this(s, ty, rel, memo)?,
            Rewrite::Arrow { tupleset, targets, mode, .. } => match mode {
                ArrowMode::Any => self.w_arrow_any(s, ty, *tupleset, targets, memo)?,
                ArrowMode::All => self.w_arrow_all(s, ty, *tupleset, targets, memo)?,
            },
        })
    }

    fn w_this(
        &mut self,
        s: Subject,
        ty: TypeId,
        rel: RelId,
        memo: &mut HashMap<(TypeId, RelId), TriBits>,
    ) -> Result<TriBits, EvalError> {
        let data = self.data;
        let mut acc = TriGather::new(self.clip_of(ty));
        for &slot in data.plan.slots_of(ty, rel) {
            let info = data.plan.info(slot);
            match info.kind {
                SlotKind::Direct if s.rel.is_none() && s.ty == info.subject_ty && !s.is_wildcard() => {
                    acc.yes.add(data.rev(slot, s.id));
                }
                SlotKind::Wildcard if s.rel.is_none() && s.ty == info.subject_ty => {
                    acc.yes.add(data.rev(slot, 0));
                }
                SlotKind::Userset(r) => {
                    if s.ty == info.subject_ty && s.rel == Some(r) {
                        acc.yes.add(data.rev(slot, s.id));
                    }
                    let sub = self.w(s, info.subject_ty, r, memo)?;
                    acc.add_lists(&sub, |x| data.rev(slot, x));
                }
                _ => {}
            }
        }
        let mut out = acc.finish();
        let specials: Vec<(u32, Subject, TupleAttrs)> =
            data.special_of_rel(ty, rel).map(|(k, a)| (k.2, k.3, a.clone())).collect();
        for (oid, sub, attrs) in specials {
            let direct = sub == s || (sub.is_wildcard() && sub.ty == s.ty && s.rel.is_none());
            let v = match (direct, sub.rel) {
                (true, _) => self.tuple_tri(&attrs)?,
                (false, Some(r)) => {
                    let e = self.tuple_tri(&attrs)?;
                    if e == Tri::False {
                        continue;
                    }
                    e.and(self.w(s, sub.ty, r, memo)?.get(sub.id))
                }
                (false, None) => continue,
            };
            out.add(oid, v);
        }
        Ok(out)
    }

    fn w_arrow_any(
        &mut self,
        s: Subject,
        ty: TypeId,
        tupleset: RelId,
        targets: &[Option<RelId>],
        memo: &mut HashMap<(TypeId, RelId), TriBits>,
    ) -> Result<TriBits, EvalError> {
        let data = self.data;
        let mut acc = TriGather::new(self.clip_of(ty));
        for &slot in data.plan.slots_of(ty, tupleset) {
            let info = data.plan.info(slot);
            if info.kind == SlotKind::Wildcard {
                continue;
            }
            let Some(target) = targets.get(info.subject_ty as usize).copied().flatten() else { continue };
            let sub = self.w(s, info.subject_ty, target, memo)?;
            acc.add_lists(&sub, |x| data.rev(slot, x));
        }
        let mut out = acc.finish();
        let specials: Vec<(u32, Subject, TupleAttrs)> =
            data.special_of_rel(ty, tupleset).map(|(k, a)| (k.2, k.3, a.clone())).collect();
        for (oid, sub, attrs) in specials {
            if sub.is_wildcard() {
                continue;
            }
            let Some(target) = targets.get(sub.ty as usize).copied().flatten() else { continue };
            let e = self.tuple_tri(&attrs)?;
            if e == Tri::False {
                continue;
            }
            let v = e.and(self.w(s, sub.ty, target, memo)?.get(sub.id));
            out.add(oid, v);
        }
        Ok(out)
    }

    fn w_arrow_all(
        &mut self,
        s: Subject,
        ty: TypeId,
        tupleset: RelId,
        targets: &[Option<RelId>],
        memo: &mut HashMap<(TypeId, RelId), TriBits>,
    ) -> Result<TriBits, EvalError> {
        let data = self.data;
        // Candidates: objects with at least one followed relationship whose target may hold.
        let mut candidates = RoaringBitmap::new();
        let mut target_sets: HashMap<TypeId, TriBits> = HashMap::new();
        for &slot in data.plan.slots_of(ty, tupleset) {
            let info = data.plan.info(slot);
            if info.kind == SlotKind::Wildcard {
                continue;
            }
            let Some(target) = targets.get(info.subject_ty as usize).copied().flatten() else { continue };
            let sub = self.w(s, info.subject_ty, target, memo)?;
            for x in &sub.maybe {
                data.rev(slot, x).union_into(&mut candidates);
            }
            target_sets.insert(info.subject_ty, sub);
        }
        let specials: Vec<(u32, Subject)> =
            data.special_of_rel(ty, tupleset).map(|(k, _)| (k.2, k.3)).collect();
        for (oid, sub) in specials {
            candidates.insert(oid);
            if let (false, Some(target)) =
                (target_sets.contains_key(&sub.ty), targets.get(sub.ty as usize).copied().flatten())
            {
                let set = self.w(s, sub.ty, target, memo)?;
                target_sets.insert(sub.ty, set);
            }
        }
        let mut out = TriBits::default();
        for o in &candidates {
            let object = Obj { ty, id: o };
            let mut all = Tri::True;
            let mut seen = false;
            for (sub, attrs) in data.tuples_of(object, tupleset) {
                if sub.is_wildcard() || !self.cond.in_force(&attrs) {
                    continue;
                }
                let c = self.cond.condition(&attrs)?;
                let v = match targets.get(sub.ty as usize).copied().flatten() {
                    Some(_) => target_sets.get(&sub.ty).map(|t| t.get(sub.id)).unwrap_or(Tri::False),
                    None => Tri::False,
                };
                seen = true;
                all = all.and(c.and(v));
                if all == Tri::False {
                    break;
                }
            }
            if seen {
                out.add(o, all);
            }
        }
        Ok(out)
    }
}

/// A set of subjects (ids of one type) with three-valued membership: `t ⊆ c ⊆ keys` are the
/// named subjects that are members (`t`) or at least conditional members (`c`); every subject
/// outside `keys` has membership `default` (a reached wildcard).
///
/// While nothing is conditional and no wildcard was reached (the common case) `c` and `keys`
/// are `t` itself, not copies: one bitmap, and the set algebra runs once, not three times.
#[derive(Clone, Debug, Default)]
pub struct SubjectBits {
    pub default: Tri,
    t: RoaringBitmap,
    /// `None`: equal to `t` (nothing conditional).
    c: Option<RoaringBitmap>,
    /// `None`: equal to `c`. Always `None` when `default` is false.
    keys: Option<RoaringBitmap>,
}

impl PartialEq for SubjectBits {
    fn eq(&self, o: &SubjectBits) -> bool {
        self.default == o.default && self.t == o.t && self.c() == o.c() && self.keys() == o.keys()
    }
}

impl SubjectBits {
    /// The subjects that are members outright (named ones only, when a wildcard was reached).
    pub fn t(&self) -> &RoaringBitmap {
        &self.t
    }

    /// The named subjects that are at least conditional members.
    pub fn c(&self) -> &RoaringBitmap {
        self.c.as_ref().unwrap_or(&self.t)
    }

    /// The named subjects (the rest have membership `default`).
    pub fn keys(&self) -> &RoaringBitmap {
        self.keys.as_ref().unwrap_or_else(|| self.c())
    }

    /// The members outright, taken out of the set.
    pub fn into_t(self) -> RoaringBitmap {
        self.t
    }

    /// Whether some named subject is a conditional member.
    pub fn has_conditional(&self) -> bool {
        self.c.is_some()
    }

    /// Membership of `keys`-or-more restricted to `k`, as (true, at-least-conditional).
    fn view(&self, k: &RoaringBitmap) -> (RoaringBitmap, RoaringBitmap) {
        let mut t = self.t.clone();
        let mut c = self.c().clone();
        if self.default != Tri::False {
            let outside = k - self.keys();
            if self.default == Tri::True {
                t |= &outside;
            }
            c |= outside;
        }
        (t, c)
    }

    /// The set from its three bitmaps, each kept only where it differs from the next smaller.
    fn from_parts(default: Tri, keys: RoaringBitmap, t: RoaringBitmap, c: RoaringBitmap) -> SubjectBits {
        // `t ⊆ c ⊆ keys`: equal lengths mean equal sets.
        let keys = (default != Tri::False && keys.len() != c.len()).then_some(keys);
        let c = (c.len() != t.len()).then_some(c);
        SubjectBits { default, t, c, keys }
    }

    fn combine(&self, o: &SubjectBits, op: Op) -> SubjectBits {
        if self.default == Tri::False && o.default == Tri::False {
            // No wildcard on either side: plain set algebra on the members.
            if self.c.is_none() && o.c.is_none() {
                let t = match op {
                    Op::Union => &self.t | &o.t,
                    Op::Intersect => &self.t & &o.t,
                    Op::Exclude => &self.t - &o.t,
                };
                return SubjectBits { default: Tri::False, t, c: None, keys: None };
            }
            let (t, c) = match op {
                Op::Union => (&self.t | &o.t, self.c() | o.c()),
                Op::Intersect => (&self.t & &o.t, self.c() & o.c()),
                Op::Exclude => (&self.t - o.c(), self.c() - &o.t),
            };
            return SubjectBits::from_parts(Tri::False, RoaringBitmap::new(), t, c);
        }
        let keys = self.keys() | o.keys();
        let (at, ac) = self.view(&keys);
        let (bt, bc) = o.view(&keys);
        let (t, c, default) = match op {
            Op::Union => (at | bt, ac | bc, self.default.or(o.default)),
            Op::Intersect => (at & bt, ac & bc, self.default.and(o.default)),
            Op::Exclude => (at - bc, ac - bt, self.default.and(o.default.not())),
        };
        SubjectBits::from_parts(default, keys, t, c)
    }

    pub fn union(&self, o: &SubjectBits) -> SubjectBits {
        self.combine(o, Op::Union)
    }

    pub fn intersect(&self, o: &SubjectBits) -> SubjectBits {
        self.combine(o, Op::Intersect)
    }

    pub fn exclude(&self, o: &SubjectBits) -> SubjectBits {
        self.combine(o, Op::Exclude)
    }

    /// Pointwise `and` with a constant.
    pub fn and_with(&self, x: Tri) -> SubjectBits {
        match x {
            Tri::True => self.clone(),
            Tri::False => SubjectBits::default(),
            Tri::Cond => SubjectBits::from_parts(
                self.default.and(Tri::Cond),
                self.keys().clone(),
                RoaringBitmap::new(),
                self.c().clone(),
            ),
        }
    }

    /// Pointwise `or` with a constant.
    pub fn or_with(&self, x: Tri) -> SubjectBits {
        match x {
            Tri::False => self.clone(),
            Tri::True => SubjectBits::from_parts(
                Tri::True,
                self.keys().clone(),
                self.keys().clone(),
                self.keys().clone(),
            ),
            Tri::Cond => SubjectBits::from_parts(
                self.default.or(Tri::Cond),
                self.keys().clone(),
                self.t.clone(),
                self.keys().clone(),
            ),
        }
    }

    /// Adds one subject with membership `x` (or-ed with what it had).
    pub fn add(&mut self, id: u32, x: Tri) {
        let v = self.get(id).or(x);
        if v == Tri::False {
            return;
        }
        if let Some(keys) = &mut self.keys {
            keys.insert(id);
        }
        if v == Tri::True {
            self.t.insert(id);
            if let Some(c) = &mut self.c {
                c.insert(id);
            }
        } else if !self.t.contains(id) {
            self.c.get_or_insert_with(|| self.t.clone()).insert(id);
        }
        self.canon();
    }

    /// Drops `c` or `keys` when it has become equal to the next smaller set (`t ⊆ c ⊆ keys`:
    /// equal lengths mean equal sets), so that [`SubjectBits::has_conditional`] is exact.
    fn canon(&mut self) {
        if self.c.as_ref().is_some_and(|c| c.len() == self.t.len()) {
            self.c = None;
        }
        if self.keys.as_ref().is_some_and(|k| k.len() == self.c().len()) {
            self.keys = None;
        }
    }

    /// Adds subjects that are members outright.
    pub fn add_all(&mut self, ids: &RoaringBitmap) {
        if let Some(keys) = &mut self.keys {
            *keys |= ids;
        }
        self.t |= ids;
        if let Some(c) = &mut self.c {
            *c |= ids;
        }
        self.canon();
    }

    pub fn is_empty(&self) -> bool {
        self.default == Tri::False && self.c().is_empty()
    }

    pub fn get(&self, id: u32) -> Tri {
        if !self.keys().contains(id) {
            self.default
        } else if self.t.contains(id) {
            Tri::True
        } else if self.c().contains(id) {
            Tri::Cond
        } else {
            Tri::False
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Union,
    Intersect,
    Exclude,
}

/// Memo for `who`: per `(object, relation)` for one subject filter.
pub(super) type WhoMemo = rustc_hash::FxHashMap<(Obj, RelId), SubjectBits>;

/// The intermediate sets of many `who` questions on one revision, kept between them (bulk
/// jobs ask about many objects that share groups, parents, …). Holds one subject filter at a
/// time; asking with another filter starts it afresh.
#[derive(Debug, Default)]
pub struct WhoCache {
    memo: WhoMemo,
    filter: Option<(TypeId, Option<RelId>)>,
}

impl IndexEval<'_> {
    /// Every subject of type `fty` (usersets: with relation `frel`) that has `rel` on `object`.
    pub fn who(
        &mut self,
        object: Obj,
        rel: RelId,
        fty: TypeId,
        frel: Option<RelId>,
    ) -> Result<SubjectBits, EvalError> {
        let mut memo = WhoMemo::default();
        self.v(object, rel, fty, frel, &mut memo)
    }

    /// [`IndexEval::who`], keeping intermediate sets in `cache` for the next questions. Use a
    /// cache with one revision only.
    pub fn who_cached(
        &mut self,
        object: Obj,
        rel: RelId,
        fty: TypeId,
        frel: Option<RelId>,
        cache: &mut WhoCache,
    ) -> Result<SubjectBits, EvalError> {
        if cache.filter != Some((fty, frel)) {
            cache.memo.clear();
            cache.filter = Some((fty, frel));
        }
        self.v(object, rel, fty, frel, &mut cache.memo)
    }

    fn v(
        &mut self,
        object: Obj,
        rel: RelId,
        fty: TypeId,
        frel: Option<RelId>,
        memo: &mut WhoMemo,
    ) -> Result<SubjectBits, EvalError> {
        if let Some(v) = memo.get(&(object, rel)) {
            return Ok(v.clone());
        }
        let mut out = SubjectBits::default();
        if fty == object.ty && frel == Some(rel) {
            out.add(object.id, Tri::True);
        }
        let Some(saved) = self.enter(object, rel)? else {
            if self.rec.cut_value() != Tri::False {
                return Err(self.cycle_error(object, rel));
            }
            return Ok(out);
        };
        let data = self.data;
        let result = match data.plan.fast_path(object.ty, rel) {
            Some((id, FastPath::Membership { closure })) => {
                self.v_membership(object, rel, *id, *closure, fty, frel, memo)
            }
            _ => self.v_rewrite(object, rel, &data.schema.rel_def(object.ty, rel).rewrite, fty, frel, memo),
        };
        let exact = self.leave(saved);
        let result = match result {
            // Named after the question asked (where the cycle was met depends on the order).
            Err(EvalError::ExclusionCycle { .. }) if self.at_top() => Err(self.cycle_error(object, rel)),
            r => r,
        };
        let result = result?;
        let set = if out.is_empty() { result } else { out.union(&result) };
        // The outermost answer is not needed again: keeping it would copy it.
        if exact && !self.at_top() {
            memo.insert((object, rel), set.clone());
        }
        let limit = self.opts.limits.max_results;
        if set.c().len() > limit as u64 {
            return Err(EvalError::TooManyResults { limit });
        }
        Ok(set)
    }

    fn v_rewrite(
        &mut self,
        object: Obj,
        rel: RelId,
        rw: &Rewrite,
        fty: TypeId,
        frel: Option<RelId>,
        memo: &mut WhoMemo,
    ) -> Result<SubjectBits, EvalError> {
        Ok(match rw {
            Rewrite::Nil => SubjectBits::default(),
            Rewrite::SelfRef => {
                let mut v = SubjectBits::default();
                if fty == object.ty && frel.is_none() {
                    v.add(object.id, Tri::True);
                }
                v
            }
            Rewrite::Computed(r) => self.v(object, *r, fty, frel, memo)?,
            Rewrite::Union(items) => {
                let mut acc = SubjectBits::default();
                for i in items {
                    acc = acc.union(&self.v_rewrite(object, rel, i, fty, frel, memo)?);
                }
                acc
            }
            Rewrite::Intersection(items) => {
                let mut acc: Option<SubjectBits> = None;
                for i in items {
                    let s = self.v_rewrite(object, rel, i, fty, frel, memo)?;
                    acc = Some(match acc {
                        None => s,
                        Some(a) => a.intersect(&s),
                    });
                }
                acc.unwrap_or_default()
            }
            Rewrite::Exclusion(a, b) => {
                let a = self.v_rewrite(object, rel, a, fty, frel, memo)?;
                if a.is_empty() {
                    a
                } else {
                    self.rec.negate(1);
                    let b = self.v_rewrite(object, rel, b, fty, frel, memo);
                    self.rec.negate(-1);
                    a.exclude(&b?)
                }
            }
            Rewrite::This => self.v_this(object, rel, fty, frel, memo, None)?,
            Rewrite::Arrow { tupleset, targets, mode, .. } => {
                self.v_arrow(object, *tupleset, targets, *mode, fty, frel, memo)?
            }
        })
    }

    /// Who holds a relation that nests through its own usersets: the plain lists of the whole
    /// nest are unioned at once; only nodes with other kinds of relationships are walked.
    #[allow(clippy::too_many_arguments)]
    fn v_membership(
        &mut self,
        object: Obj,
        rel: RelId,
        fast_id: usize,
        closure: SlotId,
        fty: TypeId,
        frel: Option<RelId>,
        memo: &mut WhoMemo,
    ) -> Result<SubjectBits, EvalError> {
        let data = self.data;
        let Some(c) = data.closure(closure) else {
            return self.v_this(object, rel, fty, frel, memo, None);
        };
        let nest = c.down.get(object.id);
        let nodes = || std::iter::once(object.id).chain(nest.iter());
        let lists: Vec<SlotId> = data
            .plan
            .slots_of(object.ty, rel)
            .iter()
            .copied()
            .filter(|&slot| {
                let info = data.plan.info(slot);
                info.subject_ty == fty
                    && match info.kind {
                        SlotKind::Direct => frel.is_none(),
                        SlotKind::Userset(r) => frel == Some(r),
                        SlotKind::Wildcard => false,
                    }
            })
            .collect();
        let universe = data.object_count(fty);
        let self_userset = fty == object.ty && frel == Some(rel);
        let gather = |ns: &mut dyn Iterator<Item = u32>| {
            let mut acc = Accumulator::new(universe);
            for n in ns {
                for &slot in &lists {
                    acc.add_list(data.fwd(slot, n));
                }
                if self_userset {
                    acc.add(n);
                }
            }
            acc.finish()
        };
        // A large nest is gathered on all cores, a chunk of nodes per task.
        let members = if nest.len() < 512 {
            gather(&mut nodes())
        } else {
            use rayon::prelude::*;
            let all: Vec<u32> = nodes().collect();
            all.par_chunks(256)
                .map(|c| gather(&mut c.iter().copied()))
                .reduce(RoaringBitmap::new, |a, b| a | b)
        };
        let mut out = SubjectBits::default();
        out.add_all(&members);
        let others = data.others(fast_id);
        if !others.is_empty() {
            for n in nodes().filter(|n| others.contains(*n)).collect::<Vec<_>>() {
                let sub = self.v_this(Obj { ty: object.ty, id: n }, rel, fty, frel, memo, Some(closure))?;
                out = out.union(&sub);
            }
        }
        Ok(out)
    }

    fn v_this(
        &mut self,
        object: Obj,
        rel: RelId,
        fty: TypeId,
        frel: Option<RelId>,
        memo: &mut WhoMemo,
        skip: Option<SlotId>,
    ) -> Result<SubjectBits, EvalError> {
        let data = self.data;
        let mut acc = SubjectBits::default();
        let mut wildcard = false;
        for &slot in data.plan.slots_of(object.ty, rel) {
            if Some(slot) == skip {
                continue;
            }
            let info = data.plan.info(slot);
            let list = data.fwd(slot, object.id);
            match info.kind {
                SlotKind::Direct if info.subject_ty == fty && frel.is_none() => {
                    acc.add_all(&list.to_bitmap())
                }
                SlotKind::Wildcard if info.subject_ty == fty && frel.is_none() => {
                    wildcard |= !list.is_empty()
                }
                SlotKind::Userset(r) => {
                    if info.subject_ty == fty && frel == Some(r) {
                        acc.add_all(&list.to_bitmap());
                    }
                    for x in list.iter() {
                        let sub = self.v(Obj { ty: info.subject_ty, id: x }, r, fty, frel, memo)?;
                        acc = acc.union(&sub);
                    }
                }
                _ => {}
            }
        }
        if wildcard {
            acc = acc.or_with(Tri::True);
        }
        let specials: Vec<(Subject, TupleAttrs)> =
            data.special_of(object, rel).map(|(k, a)| (k.3, a.clone())).collect();
        for (s, attrs) in specials {
            let e = self.tuple_tri(&attrs)?;
            if e == Tri::False {
                continue;
            }
            if s.ty == fty && s.rel == frel {
                if s.is_wildcard() {
                    acc = acc.or_with(e);
                } else {
                    acc.add(s.id, e);
                }
            }
            if let Some(r) = s.rel {
                let sub = self.v(s.object(), r, fty, frel, memo)?;
                acc = acc.union(&sub.and_with(e));
            }
        }
        Ok(acc)
    }

    #[allow(clippy::too_many_arguments)]
    fn v_arrow(
        &mut self,
        object: Obj,
        tupleset: RelId,
        targets: &[Option<RelId>],
        mode: ArrowMode,
        fty: TypeId,
        frel: Option<RelId>,
        memo: &mut WhoMemo,
    ) -> Result<SubjectBits, EvalError> {
        let data = self.data;
        let mut any = SubjectBits::default();
        let mut all: Option<SubjectBits> = None;
        for (s, attrs) in data.tuples_of(object, tupleset) {
            if s.is_wildcard() || !self.cond.in_force(&attrs) {
                continue;
            }
            let c = self.cond.condition(&attrs)?;
            if c == Tri::False && mode == ArrowMode::Any {
                continue;
            }
            let sub = match targets.get(s.ty as usize).copied().flatten() {
                Some(target) => self.v(s.object(), target, fty, frel, memo)?,
                None => SubjectBits::default(),
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
        Ok(match mode {
            ArrowMode::Any => any,
            ArrowMode::All => all.unwrap_or_default(),
        })
    }
}

/// Collects many sorted lists into one bitmap: into a dense bit array when the result may be
/// large (one store per id, then one pass to build the bitmap), else into the bitmap directly.
struct Accumulator {
    universe: u32,
    dense: Option<Vec<u64>>,
    sparse: RoaringBitmap,
    seen: usize,
}

impl Accumulator {
    /// Past this many ids, a dense array is cheaper than bitmap inserts.
    const DENSE_AFTER: usize = 4096;

    fn new(universe: u32) -> Accumulator {
        Accumulator { universe, dense: None, sparse: RoaringBitmap::new(), seen: 0 }
    }

    fn go_dense(&mut self) {
        let mut words = vec![0u64; (self.universe as usize).div_ceil(64) + 1];
        for v in &self.sparse {
            if let Some(w) = words.get_mut(v as usize / 64) {
                *w |= 1 << (v % 64);
            }
        }
        self.sparse = RoaringBitmap::new();
        self.dense = Some(words);
    }

    fn add(&mut self, v: u32) {
        match &mut self.dense {
            Some(words) if v < self.universe => {
                if let Some(w) = words.get_mut(v as usize / 64) {
                    *w |= 1 << (v % 64);
                }
            }
            _ => {
                self.sparse.insert(v);
            }
        }
    }

    fn add_list(&mut self, list: ListRef<'_>) {
        self.seen += list.len();
        if self.dense.is_none() && self.seen > Self::DENSE_AFTER && self.universe > 0 {
            self.go_dense();
        }
        let universe = self.universe;
        let set = |words: &mut Vec<u64>, v: u32| {
            if v < universe {
                if let Some(w) = words.get_mut((v >> 6) as usize) {
                    *w |= 1 << (v & 63);
                }
            }
        };
        match (&mut self.dense, list) {
            (None, ListRef::Big(b)) => self.sparse |= b,
            (None, ListRef::Small(s)) => self.sparse.extend(s.iter().copied()),
            (None, ListRef::Narrow(..)) => self.sparse.extend(list.iter()),
            (Some(words), ListRef::Small(s)) => {
                for &v in s {
                    set(words, v);
                }
            }
            (Some(words), ListRef::Narrow(..)) => {
                for v in list.iter() {
                    set(words, v);
                }
            }
            (Some(words), ListRef::Big(b)) => {
                for v in b {
                    set(words, v);
                }
            }
        }
    }

    fn finish(self) -> RoaringBitmap {
        match self.dense {
            None => self.sparse,
            Some(words) => {
                let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                let mut out = RoaringBitmap::from_lsb0_bytes(0, &bytes);
                out |= self.sparse;
                out
            }
        }
    }
}
