//! Permission sets: for the relations that arrows point at (`tagged->supervise` points at
//! `usergroup#supervise`), the set of objects each subject has that relation on, kept per
//! subject as a bitmap — the Leopard idea taken one step further. A check through such an arrow
//! is then one lookup of the subject's set and a membership test per arrow edge, instead of a
//! walk up the group hierarchy.
//!
//! - Sets are computed by `what` the first time a subject is asked about, for relations of types
//!   with at most 131,072 objects (or for every subject at once by
//!   [`IndexData::precompute_sets`], at any size) and shared by every revision until a write
//!   touches a relation the set depends on: that revision starts an empty cache for it (older
//!   revisions keep theirs). Writes to other relations (tagging a message) keep the sets.
//! - Only definite answers are kept: a revision holding any conditional or timed relationship
//!   does not use the sets at all (its answers may depend on context or on the time), and a set
//!   whose `what` had conditional members is not stored.
//! - The index differential tests check every answer against the reference evaluator with the
//!   sets in use (random schemas, graphs and write sequences).

use super::IndexData;
use crate::eval::{EvalOptions, Tri};
use crate::schema::{AllowedKind, RelId, Rewrite, Schema, TypeId};
use crate::store::Subject;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::sync::{Arc, RwLock};

/// At most this many subjects' sets per relation (a cache that stops growing, not an error).
const MAX_SUBJECTS: usize = 1 << 20;
/// Sets are computed on first use only for relations of types with at most this many objects
/// (groups, folders of a small tree): a subject's set over a large type may take milliseconds,
/// which a first check should not pay. [`IndexData::precompute_sets`] has no such limit.
const LAZY_MAX_OBJECTS: u32 = 1 << 17;

/// The cached sets of one relation.
#[derive(Debug, Default)]
pub struct SetCache {
    /// By subject: the objects it has the relation on (`None`: not definite, do not use).
    sets: RwLock<FxHashMap<Subject, Option<Arc<RoaringBitmap>>>>,
    /// Every subject of `complete_for` is in `sets` (absent means the empty set).
    complete_for: RwLock<Option<TypeId>>,
}

/// A relation that arrows point at: its dependencies and its cache.
#[derive(Clone, Debug)]
pub struct PermEntry {
    pub ty: TypeId,
    pub rel: RelId,
    /// Stored relations (by the plan's flat numbering) its value depends on.
    deps: Arc<Vec<bool>>,
    pub cache: Arc<SetCache>,
}

/// The relations arrows point at, with what each depends on.
pub fn entries(schema: &Schema, flat: impl Fn(TypeId, RelId) -> usize, relations: usize) -> Vec<PermEntry> {
    let mut targets = Vec::new();
    for (t, tdef) in schema.types.iter().enumerate() {
        for rdef in &tdef.relations {
            collect_targets(&rdef.rewrite, &mut targets);
        }
        let _ = t;
    }
    targets.sort_unstable();
    targets.dedup();
    // A relation that may depend on a recursion through an exclusion is only checked top-down.
    let graph = crate::schema::SchemaGraph::build(schema);
    targets
        .into_iter()
        .filter(|&n| !graph.reaches_negative_cycle(n))
        .map(|(ty, rel)| {
            let mut deps = vec![false; relations];
            let mut seen = vec![false; relations];
            depends(schema, &flat, ty, rel, &mut deps, &mut seen);
            PermEntry { ty, rel, deps: Arc::new(deps), cache: Arc::new(SetCache::default()) }
        })
        .collect()
}

fn collect_targets(rw: &Rewrite, out: &mut Vec<(TypeId, RelId)>) {
    match rw {
        Rewrite::Arrow { targets, .. } => {
            out.extend(targets.iter().enumerate().filter_map(|(t, r)| r.map(|r| (t as TypeId, r))))
        }
        Rewrite::Union(items) | Rewrite::Intersection(items) => {
            items.iter().for_each(|i| collect_targets(i, out))
        }
        Rewrite::Exclusion(a, b) => {
            collect_targets(a, out);
            collect_targets(b, out);
        }
        Rewrite::This | Rewrite::Computed(_) | Rewrite::Nil | Rewrite::SelfRef => {}
    }
}

/// Marks in `deps` every stored relation the value of `ty#rel` reads.
fn depends(
    schema: &Schema,
    flat: &impl Fn(TypeId, RelId) -> usize,
    ty: TypeId,
    rel: RelId,
    deps: &mut [bool],
    seen: &mut [bool],
) {
    let f = flat(ty, rel);
    if seen.get(f).copied().unwrap_or(true) {
        return;
    }
    seen[f] = true;
    let rdef = schema.rel_def(ty, rel);
    walk(schema, flat, ty, rel, &rdef.rewrite, deps, seen);
}

fn walk(
    schema: &Schema,
    flat: &impl Fn(TypeId, RelId) -> usize,
    ty: TypeId,
    rel: RelId,
    rw: &Rewrite,
    deps: &mut [bool],
    seen: &mut [bool],
) {
    match rw {
        Rewrite::This => {
            if let Some(d) = deps.get_mut(flat(ty, rel)) {
                *d = true;
            }
            for a in &schema.rel_def(ty, rel).allowed {
                if let AllowedKind::Userset(r) = a.kind {
                    depends(schema, flat, a.ty, r, deps, seen);
                }
            }
        }
        Rewrite::Computed(r) => depends(schema, flat, ty, *r, deps, seen),
        Rewrite::Arrow { tupleset, targets, .. } => {
            if let Some(d) = deps.get_mut(flat(ty, *tupleset)) {
                *d = true;
            }
            // The tupleset's own usersets do not matter (arrows follow direct subjects), but
            // its stored relationships do, which the line above covers.
            for (t, r) in targets.iter().enumerate() {
                if let Some(r) = r {
                    depends(schema, flat, t as TypeId, *r, deps, seen);
                }
            }
        }
        Rewrite::Union(items) | Rewrite::Intersection(items) => {
            items.iter().for_each(|i| walk(schema, flat, ty, rel, i, deps, seen))
        }
        Rewrite::Exclusion(a, b) => {
            walk(schema, flat, ty, rel, a, deps, seen);
            walk(schema, flat, ty, rel, b, deps, seen);
        }
        Rewrite::Nil | Rewrite::SelfRef => {}
    }
}

impl PermEntry {
    pub fn depends_on(&self, flat: usize) -> bool {
        self.deps.get(flat).copied().unwrap_or(false)
    }
}

impl IndexData {
    /// The cache entry of `ty#rel`, if arrows point at it.
    pub(super) fn perm_entry(&self, ty: TypeId, rel: RelId) -> Option<&PermEntry> {
        self.permsets.iter().find(|e| e.ty == ty && e.rel == rel)
    }

    /// Whether this revision may answer from permission sets (no conditional or timed
    /// relationship anywhere).
    pub(super) fn sets_usable(&self) -> bool {
        self.special.is_empty()
    }

    /// The objects of `ty` on which `subject` has `rel`, from the cache or computed (and kept);
    /// `None` when the answer is not definite or cannot be computed (the caller walks instead).
    pub(super) fn perm_set(
        &self,
        ty: TypeId,
        rel: RelId,
        subject: Subject,
        opts: &EvalOptions,
    ) -> Option<Arc<RoaringBitmap>> {
        if !self.sets_usable() || subject.rel.is_some() || subject.id >= self.object_count(subject.ty) {
            return None;
        }
        let entry = self.perm_entry(ty, rel)?;
        let cache = &entry.cache;
        {
            let sets = match cache.sets.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if let Some(found) = sets.get(&subject) {
                return found.clone();
            }
            let complete = match cache.complete_for.read() {
                Ok(g) => *g,
                Err(p) => *p.into_inner(),
            };
            if complete == Some(subject.ty) {
                return Some(Arc::new(RoaringBitmap::new()));
            }
            if sets.len() >= MAX_SUBJECTS || self.object_count(ty) > LAZY_MAX_OBJECTS {
                return None;
            }
        }
        // Computed with a fresh evaluator: the set is the relation's value, whatever question
        // the caller is in the middle of.
        let computed = super::IndexEval::new(self, opts).what(subject, ty, rel).ok();
        let set = computed.and_then(|bits| {
            let mut yes = bits.yes;
            yes.remove_range(self.object_count(ty)..);
            let mut maybe = bits.maybe;
            maybe.remove_range(self.object_count(ty)..);
            (maybe == yes).then(|| Arc::new(yes))
        });
        let mut sets = match cache.sets.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        sets.insert(subject, set.clone());
        set
    }

    /// Computes the sets of `ty#rel` for every subject of type `subject_ty` at once (from `who`
    /// on each object: cheap when the type has few objects, such as groups), so that checks
    /// through arrows pointing at it never walk. Returns the number of subjects with a
    /// non-empty set, or `None` when the relation is not one arrows point at, or its answers
    /// are not all definite (conditions, times, a wildcard), and nothing was stored.
    pub fn precompute_sets(
        &self,
        ty: TypeId,
        rel: RelId,
        subject_ty: TypeId,
        opts: &EvalOptions,
    ) -> Option<usize> {
        if !self.sets_usable() {
            return None;
        }
        let entry = self.perm_entry(ty, rel)?;
        let mut per_subject: FxHashMap<u32, RoaringBitmap> = FxHashMap::default();
        for object in 0..self.object_count(ty) {
            let mut ev = super::IndexEval::new(self, opts);
            let who = ev.who(crate::store::Obj { ty, id: object }, rel, subject_ty, None).ok()?;
            if who.default != Tri::False || who.c != who.t {
                return None;
            }
            for s in &who.t {
                per_subject.entry(s).or_default().insert(object);
            }
        }
        let n = per_subject.len();
        let mut sets = match entry.cache.sets.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        for (id, set) in per_subject {
            sets.insert(Subject { ty: subject_ty, id, rel: None }, Some(Arc::new(set)));
        }
        drop(sets);
        match entry.cache.complete_for.write() {
            Ok(mut g) => *g = Some(subject_ty),
            Err(p) => *p.into_inner() = Some(subject_ty),
        }
        Some(n)
    }

    /// After a write to `ty#rel`: the sets depending on it start afresh in this revision.
    pub(super) fn invalidate_sets(&mut self, ty: TypeId, rel: RelId) {
        let f = self.plan.flat(ty, rel);
        if !self.permsets.iter().any(|e| e.depends_on(f)) {
            return;
        }
        let mut entries = (*self.permsets).clone();
        for e in &mut entries {
            if e.depends_on(f) {
                e.cache = Arc::new(SetCache::default());
            }
        }
        self.permsets = Arc::new(entries);
    }

    /// After lists were rebuilt wholesale: every set starts afresh.
    pub(super) fn invalidate_all_sets(&mut self) {
        let mut entries = (*self.permsets).clone();
        for e in &mut entries {
            e.cache = Arc::new(SetCache::default());
        }
        self.permsets = Arc::new(entries);
    }
}

/// Whether `subject` is in the set of some object of `edges` (the arrow's targets).
pub(super) fn any_in(set: &RoaringBitmap, edges: impl Iterator<Item = u32>) -> bool {
    let mut edges = edges;
    edges.any(|y| set.contains(y))
}
