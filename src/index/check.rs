//! Check on the index: the rewrite rules evaluated top-down, with stored relationships found by
//! binary search or bitmap membership instead of scans.
//!
//! Recursion is handled as in the reference evaluator (a stack of the relations being
//! evaluated; re-entering one is "not by this path"; results that did not depend on such a cut
//! are memoized), so both compute the same least fixpoint.

use super::plan::{FastPath, SlotId, SlotKind};
use super::IndexData;
use crate::eval::{Conditions, Decision, Entered, EvalError, EvalOptions, Recursion, Tri};
use crate::schema::{RelId, Rewrite, TypeId};
use crate::store::{Obj, Source as _, Subject, TupleAttrs};
use crate::syntax::ast::ArrowMode;
use rustc_hash::FxHashMap;

/// Evaluates questions against one index revision.
pub struct IndexEval<'a> {
    pub data: &'a IndexData,
    pub opts: &'a EvalOptions,
    /// The relations being evaluated, and the cycles met (as in the reference evaluator).
    pub(super) rec: Recursion,
    memo: FxHashMap<(Obj, RelId, Subject), Tri>,
    /// Time windows and conditions of the relationships met, and what was missing.
    pub cond: Conditions<'a>,
    /// While `what_in` runs: the object type and id range its bottom-up sets may be cut to.
    pub(super) clip: Option<(TypeId, std::ops::Range<u32>)>,
    /// Whether arrows may be answered from permission sets (not while a revision is being
    /// written: see [`super::permsets`]).
    pub(super) use_sets: bool,
}

impl<'a> IndexEval<'a> {
    pub fn new(data: &'a IndexData, opts: &'a EvalOptions) -> Self {
        IndexEval {
            data,
            opts,
            rec: Recursion::default(),
            memo: FxHashMap::default(),
            cond: Conditions::new(&data.schema, opts),
            clip: None,
            use_sets: true,
        }
    }

    pub fn decide(&self, t: Tri) -> Result<Decision, EvalError> {
        self.cond.decide(t)
    }

    /// Whether a special relationship holds now: its time window and its condition.
    pub fn tuple_tri(&mut self, attrs: &TupleAttrs) -> Result<Tri, EvalError> {
        self.cond.holds(attrs)
    }

    pub(super) fn enter(&mut self, object: Obj, rel: RelId) -> Result<Option<Entered>, EvalError> {
        self.rec.enter(object, rel, self.opts.limits.max_depth)
    }

    /// Whether no relation is being evaluated (the caller's own question is the next one).
    pub(super) fn at_top(&self) -> bool {
        self.rec.is_empty()
    }

    pub(super) fn leave(&mut self, saved: Entered) -> bool {
        self.rec.leave(saved)
    }

    /// The error for data that cycles through an exclusion at `object#rel`.
    pub(super) fn cycle_error(&self, object: Obj, rel: RelId) -> EvalError {
        EvalError::ExclusionCycle {
            object: self.data.object_ref(object).to_string(),
            relation: self.data.schema.rel_def(object.ty, rel).name.clone(),
        }
    }

    /// Whether `subject` has `rel` on `object`.
    pub fn check(&mut self, object: Obj, rel: RelId, subject: Subject) -> Result<Tri, EvalError> {
        if subject.rel == Some(rel) && subject.object() == object {
            return Ok(Tri::True);
        }
        if let Some(&t) = self.memo.get(&(object, rel, subject)) {
            return Ok(t);
        }
        let Some(saved) = self.enter(object, rel)? else { return Ok(self.rec.cut_value()) };
        let data = self.data;
        let result = match data.plan.fast_path(object.ty, rel) {
            Some((id, FastPath::Membership { closure })) => {
                self.check_membership(object, rel, *id, *closure, subject)
            }
            Some((id, FastPath::ArrowChain { closure, tupleset, arrow })) => {
                self.check_chain(object, rel, *id, *closure, *tupleset, *arrow, subject)
            }
            None => self.check_rewrite(object, rel, &data.schema.rel_def(object.ty, rel).rewrite, subject),
        };
        let exact = self.leave(saved);
        let t = result?;
        if exact && !self.at_top() {
            self.memo.insert((object, rel, subject), t);
        }
        let data = self.data;
        self.rec.finish(
            t,
            || data.object_ref(object).to_string(),
            || data.schema.rel_def(object.ty, rel).name.clone(),
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
            Rewrite::SelfRef => Tri::from_bool(crate::eval::is_self(object, subject)),
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
                self.check_arrow(object, *tupleset, targets, *mode, subject)?
            }
        })
    }

    fn check_arrow(
        &mut self,
        object: Obj,
        tupleset: RelId,
        targets: &[Option<RelId>],
        mode: ArrowMode,
        subject: Subject,
    ) -> Result<Tri, EvalError> {
        let data = self.data;
        if mode == ArrowMode::Any && self.use_sets && data.sets_usable() {
            if let Some(t) = self.arrow_by_sets(object, tupleset, targets, subject) {
                return Ok(t);
            }
        }
        let mut acc = ArrowAcc { any: Tri::False, all: Tri::True, seen: false, mode };
        'outer: for &slot in data.plan.slots_of(object.ty, tupleset) {
            let info = data.plan.info(slot);
            if info.kind == SlotKind::Wildcard {
                continue;
            }
            for y in data.fwd(slot, object.id).iter() {
                let target_obj = Obj { ty: info.subject_ty, id: y };
                let v = self.arrow_target(target_obj, targets, subject)?;
                if acc.step(Tri::True, v) {
                    break 'outer;
                }
            }
        }
        if !acc.done() {
            let specials: Vec<(Subject, TupleAttrs)> =
                data.special_of(object, tupleset).map(|(k, a)| (k.3, a.clone())).collect();
            for (s, attrs) in specials {
                if s.is_wildcard() || !self.cond.in_force(&attrs) {
                    continue;
                }
                let c = self.cond.condition(&attrs)?;
                if c == Tri::False && mode == ArrowMode::Any {
                    continue;
                }
                let v = self.arrow_target(s.object(), targets, subject)?;
                if acc.step(c, v) {
                    break;
                }
            }
        }
        Ok(acc.result())
    }

    /// An `any` arrow answered from permission sets (see [`super::permsets`]): the subject's
    /// set of each target relation, tested against the arrow's edges. `None` when a set is not
    /// available (the caller walks).
    fn arrow_by_sets(
        &mut self,
        object: Obj,
        tupleset: RelId,
        targets: &[Option<RelId>],
        subject: Subject,
    ) -> Option<Tri> {
        let data = self.data;
        for &slot in data.plan.slots_of(object.ty, tupleset) {
            let info = data.plan.info(slot);
            if info.kind == SlotKind::Wildcard {
                continue;
            }
            let Some(target) = targets.get(info.subject_ty as usize).copied().flatten() else { continue };
            let edges = data.fwd(slot, object.id);
            if edges.is_empty() {
                continue;
            }
            let set = data.perm_set(info.subject_ty, target, subject, self.opts)?;
            if super::permsets::any_in(&set, edges.iter()) {
                return Some(Tri::True);
            }
        }
        Some(Tri::False)
    }

    fn arrow_target(
        &mut self,
        target_obj: Obj,
        targets: &[Option<RelId>],
        subject: Subject,
    ) -> Result<Tri, EvalError> {
        match targets.get(target_obj.ty as usize).copied().flatten() {
            Some(t) => self.check(target_obj, t, subject),
            None => Ok(Tri::False),
        }
    }

    /// `rel` nests through its own usersets: one intersection answers the plain part for the
    /// whole nest; only the nodes with other kinds of relationships are evaluated one by one.
    fn check_membership(
        &mut self,
        object: Obj,
        rel: RelId,
        fast_id: usize,
        closure: SlotId,
        subject: Subject,
    ) -> Result<Tri, EvalError> {
        let data = self.data;
        let Some(c) = data.closure(closure) else {
            return self.check_rewrite(object, rel, &Rewrite::This, subject);
        };
        let nest = c.down.get(object.id);
        // Plain relationships naming the subject (directly, or as the same userset).
        let kind = match subject.rel {
            None if !subject.is_wildcard() => Some(SlotKind::Direct),
            Some(r) => Some(SlotKind::Userset(r)),
            None => None,
        };
        if let Some(slot) = kind.and_then(|k| data.plan.slot(object.ty, rel, subject.ty, k)) {
            let holders = data.rev(slot, subject.id);
            if holders.contains(object.id) || nest.iter().any(|n| holders.contains(n)) {
                return Ok(Tri::True);
            }
        }
        let others = data.others(fast_id);
        if others.is_empty() {
            return Ok(Tri::False);
        }
        let mut acc = Tri::False;
        let nodes = std::iter::once(object.id).chain(nest.iter()).filter(|n| others.contains(*n));
        for n in nodes.collect::<Vec<_>>() {
            acc = acc.or(self.check_this_except(
                Obj { ty: object.ty, id: n },
                rel,
                subject,
                Some(closure),
                false,
            )?);
            if acc == Tri::True {
                break;
            }
        }
        Ok(acc)
    }

    /// `rel = ... + tupleset->rel` over a chain of objects of one type: the other branches are
    /// evaluated on the object and on everything its chain reaches.
    #[allow(clippy::too_many_arguments)]
    fn check_chain(
        &mut self,
        object: Obj,
        rel: RelId,
        fast_id: usize,
        closure: SlotId,
        tupleset: RelId,
        arrow: usize,
        subject: Subject,
    ) -> Result<Tri, EvalError> {
        let data = self.data;
        let rewrite = &data.schema.rel_def(object.ty, rel).rewrite;
        let (Some(c), Rewrite::Union(items)) = (data.closure(closure), rewrite) else {
            return self.check_rewrite(object, rel, rewrite, subject);
        };
        let others = data.others(fast_id);
        let down = c.down.get(object.id);
        let nodes = || std::iter::once(object.id).chain(down.iter());
        // `rel` of any node of the chain is a member of `rel` here (a userset contains itself).
        if subject.ty == object.ty && subject.rel == Some(rel) && nodes().any(|n| n == subject.id) {
            return Ok(Tri::True);
        }
        // Branches that are plain relations (not recursive themselves) are answered for the
        // whole chain at once: one reverse list of the subject against the chain's nodes.
        let plain = |r: &Rewrite| match r {
            Rewrite::Computed(r)
                if data.schema.rel_def(object.ty, *r).rewrite == Rewrite::This
                    && !data.plan.graph.in_cycle((object.ty, *r)) =>
            {
                Some(*r)
            }
            _ => None,
        };
        for (i, item) in items.iter().enumerate() {
            if let (true, Some(r)) = (i != arrow, plain(item)) {
                if self.direct_hit_any(object.ty, r, nodes(), subject) {
                    return Ok(Tri::True);
                }
            }
        }
        let mut acc = Tri::False;
        for n in nodes() {
            let node = Obj { ty: object.ty, id: n };
            for (i, item) in items.iter().enumerate() {
                if i == arrow {
                    continue;
                }
                let v = match plain(item) {
                    Some(r) => self.check_this_except(node, r, subject, None, true)?,
                    None => self.check_rewrite(node, rel, item, subject)?,
                };
                acc = acc.or(v);
                if acc == Tri::True {
                    return Ok(acc);
                }
            }
            if others.contains(n) {
                let specials: Vec<(Subject, TupleAttrs)> =
                    data.special_of(node, tupleset).map(|(k, a)| (k.3, a.clone())).collect();
                for (s, attrs) in specials {
                    let e = self.tuple_tri(&attrs)?;
                    if e == Tri::False || s.ty != object.ty {
                        continue;
                    }
                    acc = acc.or(e.and(self.check(s.object(), rel, subject)?));
                    if acc == Tri::True {
                        return Ok(acc);
                    }
                }
            }
        }
        Ok(acc)
    }

    /// Whether a plain relationship of `ty#rel` on any of `nodes` names `subject` directly (as
    /// an object, through a wildcard, or as the same userset), or `subject` is `ty#rel` of one
    /// of the nodes itself (a userset is a member of itself).
    fn direct_hit_any(
        &self,
        ty: TypeId,
        rel: RelId,
        nodes: impl Iterator<Item = u32> + Clone,
        subject: Subject,
    ) -> bool {
        if subject.ty == ty && subject.rel == Some(rel) && nodes.clone().any(|n| n == subject.id) {
            return true;
        }
        let data = self.data;
        for &slot in data.plan.slots_of(ty, rel) {
            let info = data.plan.info(slot);
            if info.subject_ty != subject.ty {
                continue;
            }
            let key = match info.kind {
                SlotKind::Direct if subject.rel.is_none() && !subject.is_wildcard() => subject.id,
                SlotKind::Wildcard if subject.rel.is_none() => 0,
                SlotKind::Userset(r) if subject.rel == Some(r) => subject.id,
                _ => continue,
            };
            let holders = data.rev(slot, key);
            if !holders.is_empty() && nodes.clone().any(|n| holders.contains(n)) {
                return true;
            }
        }
        false
    }

    fn check_this(&mut self, object: Obj, rel: RelId, subject: Subject) -> Result<Tri, EvalError> {
        self.check_this_except(object, rel, subject, None, false)
    }

    /// The stored relationships of `object#rel`, leaving out the plain ones of slot `skip`
    /// (whose contribution a closure already gave).
    fn check_this_except(
        &mut self,
        object: Obj,
        rel: RelId,
        subject: Subject,
        skip: Option<SlotId>,
        direct_done: bool,
    ) -> Result<Tri, EvalError> {
        let data = self.data;
        let slots = data.plan.slots_of(object.ty, rel);
        // Direct hits first: one lookup each (unless the caller already looked).
        for &slot in slots.iter().filter(|_| !direct_done) {
            let info = data.plan.info(slot);
            if info.subject_ty != subject.ty {
                continue;
            }
            let hit = match info.kind {
                SlotKind::Direct => subject.rel.is_none() && data.fwd(slot, object.id).contains(subject.id),
                SlotKind::Wildcard => subject.rel.is_none() && data.fwd(slot, object.id).contains(0),
                SlotKind::Userset(r) => {
                    subject.rel == Some(r) && data.fwd(slot, object.id).contains(subject.id)
                }
            };
            if hit {
                return Ok(Tri::True);
            }
        }
        let mut acc = Tri::False;
        for &slot in slots {
            let info = data.plan.info(slot);
            let SlotKind::Userset(r) = info.kind else { continue };
            if Some(slot) == skip || !data.has_usersets(slot, object.id) {
                continue;
            }
            for x in data.fwd(slot, object.id).iter() {
                acc = acc.or(self.check(Obj { ty: info.subject_ty, id: x }, r, subject)?);
                if acc == Tri::True {
                    return Ok(acc);
                }
            }
        }
        let specials: Vec<(Subject, TupleAttrs)> =
            data.special_of(object, rel).map(|(k, a)| (k.3, a.clone())).collect();
        for (s, attrs) in specials {
            let direct = s == subject || (s.is_wildcard() && s.ty == subject.ty && subject.rel.is_none());
            if !direct && s.rel.is_none() {
                continue;
            }
            let exists = self.tuple_tri(&attrs)?;
            if exists == Tri::False {
                continue;
            }
            let v = match (direct, s.rel) {
                (true, _) => exists,
                (false, Some(r)) => exists.and(self.check(s.object(), r, subject)?),
                (false, None) => Tri::False,
            };
            acc = acc.or(v);
            if acc == Tri::True {
                break;
            }
        }
        Ok(acc)
    }
}

/// Accumulates an arrow's value over the relationships it follows (in force at the evaluation
/// time). Any: one of them holds (condition and target). All: there is one, and every one holds
/// (as SpiceDB: a relationship whose condition is false still counts, and fails the `all`).
struct ArrowAcc {
    any: Tri,
    all: Tri,
    seen: bool,
    mode: ArrowMode,
}

impl ArrowAcc {
    /// Adds one followed relationship with condition `c` whose target evaluated to `v`; returns
    /// whether the answer is settled.
    fn step(&mut self, c: Tri, v: Tri) -> bool {
        self.seen = true;
        match self.mode {
            ArrowMode::Any => self.any = self.any.or(c.and(v)),
            ArrowMode::All => self.all = self.all.and(c.and(v)),
        }
        self.done()
    }

    fn done(&self) -> bool {
        match self.mode {
            ArrowMode::Any => self.any == Tri::True,
            ArrowMode::All => self.all == Tri::False,
        }
    }

    fn result(&self) -> Tri {
        match self.mode {
            ArrowMode::Any => self.any,
            ArrowMode::All if self.seen => self.all,
            ArrowMode::All => Tri::False,
        }
    }
}
