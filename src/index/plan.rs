//! The evaluation plan derived from a compiled schema: adjacency slots and recursion facts.
//!
//! A *slot* holds the plain relationships (no condition, no time bounds) of one stored relation
//! with one kind of subject: `document#viewer@user`, `document#viewer@user:*`,
//! `document#viewer@group#member`. Each slot has forward (object → subjects) and reverse
//! (subject → objects) lists.

use crate::schema::{AllowedKind, RelId, RelKind, Rewrite, Schema, SchemaGraph, TypeId};
use crate::syntax::ast::ArrowMode;
use std::collections::HashMap;

pub type SlotId = u32;

/// A fast path's dense index and the `(type, relation)` it answers.
pub type FastRef = (usize, (TypeId, RelId));

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotKind {
    Direct,
    Wildcard,
    Userset(RelId),
}

impl From<AllowedKind> for SlotKind {
    fn from(k: AllowedKind) -> Self {
        match k {
            AllowedKind::Direct => SlotKind::Direct,
            AllowedKind::Wildcard => SlotKind::Wildcard,
            AllowedKind::Userset(r) => SlotKind::Userset(r),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    pub ty: TypeId,
    pub rel: RelId,
    pub subject_ty: TypeId,
    pub kind: SlotKind,
}

/// A recursive relation answered through a closure instead of a walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FastPath {
    /// `relation R: ... | T#R` whose value is `this`: membership nests through `T#R` usersets.
    /// `closure` is the self-userset slot `T#R@T#R`.
    Membership { closure: SlotId },
    /// `permission P = ... + TS->P` where `TS` only leads to `T` itself: `P` holds on an object if
    /// the other branches hold on it or on anything reachable through `TS`. `closure` is the
    /// slot `T#TS@T`; `arrow` the position of the arrow in the union.
    ArrowChain { closure: SlotId, tupleset: RelId, arrow: usize },
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub slots: Vec<SlotInfo>,
    /// Fast paths by `(type, relation)`, with their dense index (for per-path state).
    pub fast: HashMap<(TypeId, RelId), (usize, FastPath)>,
    /// The same, by [`Plan::flat`] id, for the hot path.
    fast_flat: Vec<Option<(usize, FastPath)>>,
    /// Slots that keep a closure.
    pub closure_slots: Vec<SlotId>,
    /// `(type, relation)` whose relationships decide which nodes a fast path must look at
    /// individually (its "others"), with the fast paths concerned.
    pub others_deps: rustc_hash::FxHashMap<(TypeId, RelId), Vec<FastRef>>,
    /// `[type][relation]` → its slots.
    by_rel: Vec<Vec<Vec<SlotId>>>,
    /// `rel_base[type] + relation` numbers every relation of every type densely.
    rel_base: Vec<usize>,
    pub graph: SchemaGraph,
}

impl Plan {
    pub fn new(schema: &Schema) -> Plan {
        let mut slots = Vec::new();
        let mut lookup = HashMap::new();
        let mut by_rel = Vec::new();
        for (t, tdef) in schema.types.iter().enumerate() {
            let mut rels = Vec::new();
            for (r, rdef) in tdef.relations.iter().enumerate() {
                let mut mine = Vec::new();
                if rdef.kind == RelKind::Relation {
                    for a in &rdef.allowed {
                        let key = (t as TypeId, r as RelId, a.ty, SlotKind::from(a.kind));
                        if let std::collections::hash_map::Entry::Vacant(e) = lookup.entry(key) {
                            let id = slots.len() as SlotId;
                            e.insert(id);
                            slots.push(SlotInfo { ty: key.0, rel: key.1, subject_ty: key.2, kind: key.3 });
                            mine.push(id);
                        }
                    }
                }
                rels.push(mine);
            }
            by_rel.push(rels);
        }
        let mut rel_base = Vec::new();
        let mut n = 0;
        for tdef in &schema.types {
            rel_base.push(n);
            n += tdef.relations.len();
        }
        let mut plan = Plan {
            slots,
            by_rel,
            rel_base,
            graph: SchemaGraph::build(schema),
            fast: HashMap::new(),
            fast_flat: Vec::new(),
            closure_slots: Vec::new(),
            others_deps: Default::default(),
        };
        plan.find_fast_paths(schema);
        plan.fast_flat = vec![None; plan.relation_count()];
        for (&(t, r), fp) in &plan.fast {
            let i = plan.flat(t, r);
            plan.fast_flat[i] = Some(fp.clone());
        }
        plan
    }

    /// The fast path of `type#rel`, if any, with its dense index.
    pub fn fast_path(&self, ty: TypeId, rel: RelId) -> Option<&(usize, FastPath)> {
        self.fast_flat.get(self.flat(ty, rel)).and_then(|f| f.as_ref())
    }

    fn find_fast_paths(&mut self, schema: &Schema) {
        for (t, tdef) in schema.types.iter().enumerate() {
            let t = t as TypeId;
            for (r, rdef) in tdef.relations.iter().enumerate() {
                let r = r as RelId;
                if self.graph.in_negative_cycle((t, r)) {
                    continue; // evaluated top-down only (see `eval::Recursion`)
                }
                let found = match &rdef.rewrite {
                    Rewrite::This => self
                        .slot(t, r, t, SlotKind::Userset(r))
                        .map(|closure| (FastPath::Membership { closure }, (t, r))),
                    Rewrite::Union(items) => self.arrow_chain(schema, t, r, items),
                    _ => None,
                };
                if let Some((fp, dep)) = found {
                    let id = self.fast.len();
                    let closure = match fp {
                        FastPath::Membership { closure } | FastPath::ArrowChain { closure, .. } => closure,
                    };
                    if !self.closure_slots.contains(&closure) {
                        self.closure_slots.push(closure);
                    }
                    self.others_deps.entry(dep).or_default().push((id, (t, r)));
                    self.fast.insert((t, r), (id, fp));
                }
            }
        }
        self.closure_slots.sort_unstable();
    }

    fn arrow_chain(
        &self,
        schema: &Schema,
        t: TypeId,
        p: RelId,
        items: &[Rewrite],
    ) -> Option<(FastPath, (TypeId, RelId))> {
        let mut found = None;
        for (i, item) in items.iter().enumerate() {
            if let Rewrite::Arrow { tupleset, targets, mode: ArrowMode::Any, .. } = item {
                if targets.get(t as usize).copied().flatten() == Some(p) {
                    if found.is_some() {
                        return None;
                    }
                    found = Some((i, *tupleset));
                }
            }
        }
        let (arrow, tupleset) = found?;
        // The tupleset must lead only to the same type, as plain objects.
        let ts = schema.rel_def(t, tupleset);
        if ts.allowed.iter().any(|a| a.ty != t || a.kind != AllowedKind::Direct) {
            return None;
        }
        let closure = self.slot(t, tupleset, t, SlotKind::Direct)?;
        // The other branches must not lead back to `p`.
        for (i, item) in items.iter().enumerate() {
            if i != arrow && rewrite_reaches(self, t, item, (t, p)) {
                return None;
            }
        }
        Some((FastPath::ArrowChain { closure, tupleset, arrow }, (t, tupleset)))
    }

    /// A dense number for `(type, relation)`, below [`Plan::relation_count`].
    pub fn flat(&self, ty: TypeId, rel: RelId) -> usize {
        self.rel_base.get(ty as usize).copied().unwrap_or(0) + rel as usize
    }

    pub fn relation_count(&self) -> usize {
        self.by_rel.iter().map(|r| r.len()).sum()
    }

    pub fn slots_of(&self, ty: TypeId, rel: RelId) -> &[SlotId] {
        self.by_rel.get(ty as usize).and_then(|r| r.get(rel as usize)).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// The slot of `ty#rel@subject_ty` of this kind: one of the few slots of the relation (a
    /// scan, no hashing: a bulk build asks once per relationship).
    pub fn slot(&self, ty: TypeId, rel: RelId, subject_ty: TypeId, kind: SlotKind) -> Option<SlotId> {
        self.slots_of(ty, rel).iter().copied().find(|&s| {
            let info = &self.slots[s as usize];
            info.subject_ty == subject_ty && info.kind == kind
        })
    }

    pub fn info(&self, slot: SlotId) -> SlotInfo {
        self.slots[slot as usize]
    }
}

/// Whether evaluating `rw` on type `t` may evaluate `target`.
fn rewrite_reaches(plan: &Plan, t: TypeId, rw: &Rewrite, target: (TypeId, RelId)) -> bool {
    let reaches = |n: (TypeId, RelId)| plan.graph.reachable(n).contains(&target);
    match rw {
        Rewrite::This | Rewrite::Nil | Rewrite::SelfRef => false,
        Rewrite::Computed(r) => reaches((t, *r)),
        Rewrite::Arrow { tupleset, targets, .. } => {
            reaches((t, *tupleset))
                || targets.iter().enumerate().any(|(st, tr)| tr.is_some_and(|tr| reaches((st as TypeId, tr))))
        }
        Rewrite::Union(v) | Rewrite::Intersection(v) => v.iter().any(|x| rewrite_reaches(plan, t, x, target)),
        Rewrite::Exclusion(a, b) => {
            rewrite_reaches(plan, t, a, target) || rewrite_reaches(plan, t, b, target)
        }
    }
}
