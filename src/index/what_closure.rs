//! `what` through a closure: a recursive relation with a fast path (see [`super::plan::FastPath`])
//! is answered with one union of closure lists instead of iterating its fixpoint.
//!
//! - `Membership` (`group#member@group#member`): the groups a subject is in are the groups it is
//!   directly in, plus every group that reaches one of them (`up`).
//! - `ArrowChain` (`supervise = supervisor + parent->supervise`): the objects where the other
//!   branches hold, plus every object whose chain reaches one of them (`up`).
//!
//! Only when the index keeps no node aside for individual evaluation (the fast path's "others")
//! and the relation has no conditional or time-bound relationships; otherwise `None`, and the
//! caller iterates to the fixpoint.

use super::check::IndexEval;
use super::gather::Gather;
use super::lookup::TriBits;
use super::plan::{FastPath, SlotKind};
use crate::eval::EvalError;
use crate::schema::{RelId, Rewrite, TypeId};
use crate::store::Subject;
use roaring::RoaringBitmap;
use std::collections::HashMap;

impl IndexEval<'_> {
    pub(super) fn w_closure(
        &mut self,
        s: Subject,
        ty: TypeId,
        rel: RelId,
        memo: &mut HashMap<(TypeId, RelId), TriBits>,
    ) -> Result<Option<TriBits>, EvalError> {
        let data = self.data;
        let Some((fast_id, fast)) = data.plan.fast_path(ty, rel) else { return Ok(None) };
        if !data.others(*fast_id).is_empty() {
            return Ok(None);
        }
        let own = s.ty == ty && s.rel == Some(rel);
        match fast {
            FastPath::Membership { closure } => {
                let Some(c) = data.closure(*closure).filter(|_| !data.has_special(ty, rel)) else {
                    return Ok(None);
                };
                // The nodes whose stored relationships name the subject.
                let mut base = Gather::default();
                for &slot in data.plan.slots_of(ty, rel) {
                    let info = data.plan.info(slot);
                    if info.subject_ty != s.ty {
                        continue;
                    }
                    match info.kind {
                        SlotKind::Direct if s.rel.is_none() && !s.is_wildcard() => {
                            base.add(data.rev(slot, s.id))
                        }
                        SlotKind::Wildcard if s.rel.is_none() => base.add(data.rev(slot, 0)),
                        SlotKind::Userset(r) if s.rel == Some(r) => base.add(data.rev(slot, s.id)),
                        _ => {}
                    }
                }
                let mut base = base.finish();
                if own {
                    base.insert(s.id);
                }
                let yes = close_up(&base, |n| c.up.get(n));
                Ok(Some(TriBits { maybe: yes.clone(), yes }))
            }
            FastPath::ArrowChain { closure, tupleset, arrow } => {
                let rewrite = &data.schema.rel_def(ty, rel).rewrite;
                let (Some(c), Rewrite::Union(items)) = (data.closure(*closure), rewrite) else {
                    return Ok(None);
                };
                // The plan checked that the other branches do not lead back to `rel` through
                // other relations; `this` (whose usersets the plan does not follow) stays with
                // the fixpoint.
                let uses_this = items.iter().enumerate().any(|(i, item)| i != *arrow && has_this(item));
                if data.has_special(ty, *tupleset) || uses_this {
                    return Ok(None);
                }
                let mut start = TriBits::default();
                for (i, item) in items.iter().enumerate() {
                    if i != *arrow {
                        let v = self.w_rewrite(s, ty, rel, item, memo)?;
                        start.yes |= v.yes;
                        start.maybe |= v.maybe;
                    }
                }
                if own {
                    start.yes.insert(s.id);
                    start.maybe.insert(s.id);
                }
                let yes = close_up(&start.yes, |n| c.up.get(n));
                let mut maybe = close_up(&(&start.maybe - &start.yes), |n| c.up.get(n));
                maybe |= &yes;
                Ok(Some(TriBits { yes, maybe }))
            }
        }
    }
}

/// `nodes` and every node that reaches one of them.
fn close_up<'a>(nodes: &RoaringBitmap, up: impl Fn(u32) -> super::lists::ListRef<'a>) -> RoaringBitmap {
    let mut g = Gather::default();
    for n in nodes {
        g.add(up(n));
    }
    let mut out = g.finish();
    out |= nodes;
    out
}

fn has_this(rw: &Rewrite) -> bool {
    match rw {
        Rewrite::This => true,
        Rewrite::Union(v) | Rewrite::Intersection(v) => v.iter().any(has_this),
        Rewrite::Exclusion(a, b) => has_this(a) || has_this(b),
        Rewrite::Computed(_) | Rewrite::Arrow { .. } | Rewrite::Nil | Rewrite::SelfRef => false,
    }
}
