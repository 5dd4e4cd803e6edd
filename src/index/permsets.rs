//! Permission sets: for the relations that arrows point at (`tagged->supervise` points at
//! `usergroup#supervise`), the set of objects each subject has that relation on, kept per
//! subject as a bitmap — the Leopard idea taken one step further. A check through such an arrow
//! is then one lookup of the subject's set and a membership test per arrow edge, instead of a
//! walk up the group hierarchy.
//!
//! - Sets are computed by `what` the first time a subject is asked about, for relations of types
//!   with at most 131,072 objects (or for every subject at once by
//!   [`IndexData::precompute_sets`], at any size) and shared by every revision. Writes to other
//!   relations (tagging a message) keep the sets.
//! - They are maintained incrementally, like the closures: a write to a relation a set depends
//!   on changes the sets of only some subjects — the members of the written subject (`user:ann`
//!   itself, or every member of `group:g#member`), or, for a relation an arrow walks, the
//!   members of the arrow's target on the written object. The new revision's cache is a layer
//!   over the old one that reads through it for every other subject and marks those as stale
//!   (recomputed when next asked). A write whose affected subjects cannot be bounded that way (a
//!   wildcard, an `all` arrow, a conditional or timed relationship, more than 4,096 subjects)
//!   starts the relation's cache afresh, as does a chain of more than 16 layers (flattened).
//! - Only definite answers are kept: a revision holding any conditional or timed relationship
//!   does not use the sets at all (its answers may depend on context or on the time), and a set
//!   whose `what` had conditional members is not stored.
//! - The index differential tests check every answer against the reference evaluator with the
//!   sets in use (random schemas, graphs and write sequences).

use super::IndexData;
use crate::eval::{EvalOptions, Tri};
use crate::schema::{AllowedKind, RelId, Rewrite, Schema, TypeId};
use crate::store::{Obj, Subject};
use crate::syntax::ast::ArrowMode;
use roaring::RoaringBitmap;
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard};

/// At most this many subjects' sets per relation (a cache that stops growing, not an error).
const MAX_SUBJECTS: usize = 1 << 20;
/// Sets are computed on first use only for relations of types with at most this many objects
/// (groups, folders of a small tree): a subject's set over a large type may take milliseconds,
/// which a first check should not pay. [`IndexData::precompute_sets`] has no such limit.
const LAZY_MAX_OBJECTS: u32 = 1 << 17;

/// At most this many subjects marked stale by one revision's writes; past it the cache starts
/// afresh.
const MAX_STALE: usize = 4096;
/// At most this many layers before a cache is flattened into one.
const MAX_DEPTH: usize = 16;

/// The cached sets of one relation at one revision (see the module documentation).
#[derive(Debug, Default)]
pub struct SetCache {
    /// By subject: the objects it has the relation on (`None`: not definite, do not use).
    sets: RwLock<FxHashMap<Subject, Option<Arc<RoaringBitmap>>>>,
    /// Every subject of `complete_for` not stale is in `sets` or below (absent means the empty
    /// set).
    complete_for: RwLock<Option<TypeId>>,
    /// The cache of an earlier revision, read through for every subject not in `stale`.
    base: Option<Arc<SetCache>>,
    /// Subjects whose sets the writes since `base` (or since a flattened chain) may have
    /// changed.
    stale: FxHashSet<Subject>,
    /// Layers below this one.
    depth: usize,
}

/// What a cache knows of one subject's set.
enum Cached {
    Set(Option<Arc<RoaringBitmap>>),
    /// Absent from a complete cache: the empty set.
    Empty,
    /// Not known; `stale` when a write made it so (compute it, whatever the size of the type).
    Missing {
        stale: bool,
    },
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    match l.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl SetCache {
    fn lookup(&self, subject: &Subject) -> Cached {
        let complete = *read(&self.complete_for) == Some(subject.ty);
        let mut layer = self;
        loop {
            if let Some(found) = read(&layer.sets).get(subject) {
                return Cached::Set(found.clone());
            }
            if layer.stale.contains(subject) {
                return Cached::Missing { stale: true };
            }
            match &layer.base {
                Some(b) => layer = b,
                None => break,
            }
        }
        if complete {
            Cached::Empty
        } else {
            Cached::Missing { stale: false }
        }
    }

    /// A cache for the next revision: `below`'s sets but those of `stale`.
    fn layer_over(below: &Arc<SetCache>, stale: FxHashSet<Subject>) -> SetCache {
        let complete_for = RwLock::new(*read(&below.complete_for));
        if below.depth + 1 < MAX_DEPTH {
            return SetCache {
                sets: RwLock::default(),
                complete_for,
                base: Some(below.clone()),
                stale,
                depth: below.depth + 1,
            };
        }
        // Flattened into one layer: the bottom layer's map copied (no rehashing), then each
        // layer above applied in order (its stale subjects dropped, its sets put in).
        let mut chain: Vec<&SetCache> = Vec::with_capacity(below.depth + 1);
        let mut layer: &SetCache = below;
        loop {
            chain.push(layer);
            match &layer.base {
                Some(b) => layer = b,
                None => break,
            }
        }
        let mut sets: FxHashMap<Subject, Option<Arc<RoaringBitmap>>> = FxHashMap::default();
        // Subjects whose sets are unknown (so that a complete cache does not read them as empty).
        let mut gone: FxHashSet<Subject> = FxHashSet::default();
        for (i, layer) in chain.iter().rev().enumerate() {
            if i == 0 {
                sets = read(&layer.sets).clone();
            } else {
                for s in &layer.stale {
                    sets.remove(s);
                }
            }
            gone.extend(layer.stale.iter().copied());
            if i > 0 {
                for (s, set) in read(&layer.sets).iter() {
                    sets.insert(*s, set.clone());
                }
            }
            gone.retain(|s| !sets.contains_key(s));
        }
        for s in &stale {
            sets.remove(s);
        }
        gone.extend(stale);
        SetCache { sets: RwLock::new(sets), complete_for, base: None, stale: gone, depth: 0 }
    }

    /// Whether no layer holds a set or is complete (nothing worth carrying over).
    fn holds_nothing(&self) -> bool {
        let mut layer = self;
        loop {
            if !read(&layer.sets).is_empty() || read(&layer.complete_for).is_some() {
                return false;
            }
            match &layer.base {
                Some(b) => layer = b,
                None => return true,
            }
        }
    }
}

/// An arrow met on the way to a cached relation: writes to its tupleset change the sets of the
/// members of its targets on the written object.
#[derive(Clone, Debug)]
struct ArrowDep {
    tupleset: usize,
    targets: Vec<Option<RelId>>,
    all: bool,
}

/// A relation that arrows point at: its dependencies and its cache.
#[derive(Clone, Debug)]
pub struct PermEntry {
    pub ty: TypeId,
    pub rel: RelId,
    /// Stored relations (by the plan's flat numbering) its value depends on.
    deps: Arc<Vec<bool>>,
    /// Stored relations whose subjects it reads (as opposed to arrows walking them).
    direct: Arc<Vec<bool>>,
    arrows: Arc<Vec<ArrowDep>>,
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
            let mut d =
                Deps { any: vec![false; relations], direct: vec![false; relations], arrows: Vec::new() };
            let mut seen = vec![false; relations];
            depends(schema, &flat, ty, rel, &mut d, &mut seen);
            PermEntry {
                ty,
                rel,
                deps: Arc::new(d.any),
                direct: Arc::new(d.direct),
                arrows: Arc::new(d.arrows),
                cache: Arc::new(SetCache::default()),
            }
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

/// What the value of a relation reads.
struct Deps {
    any: Vec<bool>,
    direct: Vec<bool>,
    arrows: Vec<ArrowDep>,
}

/// Marks in `deps` every stored relation the value of `ty#rel` reads.
fn depends(
    schema: &Schema,
    flat: &impl Fn(TypeId, RelId) -> usize,
    ty: TypeId,
    rel: RelId,
    deps: &mut Deps,
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
    deps: &mut Deps,
    seen: &mut [bool],
) {
    match rw {
        Rewrite::This => {
            let f = flat(ty, rel);
            if let Some(d) = deps.any.get_mut(f) {
                *d = true;
            }
            if let Some(d) = deps.direct.get_mut(f) {
                *d = true;
            }
            for a in &schema.rel_def(ty, rel).allowed {
                if let AllowedKind::Userset(r) = a.kind {
                    depends(schema, flat, a.ty, r, deps, seen);
                }
            }
        }
        Rewrite::Computed(r) => depends(schema, flat, ty, *r, deps, seen),
        Rewrite::Arrow { tupleset, targets, mode, .. } => {
            let f = flat(ty, *tupleset);
            if let Some(d) = deps.any.get_mut(f) {
                *d = true;
            }
            deps.arrows.push(ArrowDep {
                tupleset: f,
                targets: targets.clone(),
                all: *mode == ArrowMode::All,
            });
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
        match cache.lookup(&subject) {
            Cached::Set(found) => return found,
            Cached::Empty => return Some(Arc::new(RoaringBitmap::new())),
            // A set a write made stale is recomputed whatever the type's size: it was there.
            Cached::Missing { stale: true } => {}
            Cached::Missing { stale: false } => {
                if read(&cache.sets).len() >= MAX_SUBJECTS || self.object_count(ty) > LAZY_MAX_OBJECTS {
                    return None;
                }
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
            if who.default != Tri::False || who.has_conditional() {
                return None;
            }
            for s in who.t() {
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

    /// After a write of `object#rel@subject` (called with the relationship present: after
    /// an insert, before a removal): the sets depending on it are marked stale for the subjects
    /// it may change, or start afresh (see the module documentation). `plain`: the relationship
    /// has no condition and no time bounds.
    pub(super) fn sets_written(&mut self, object: Obj, rel: RelId, subject: Subject, plain: bool) {
        let f = self.plan.flat(object.ty, rel);
        if !self.permsets.iter().any(|e| e.depends_on(f)) {
            return;
        }
        if !plain || !self.sets_usable() {
            self.invalidate_sets(object.ty, rel);
            return;
        }
        let mut plans: Vec<(usize, Option<FxHashSet<Subject>>)> = Vec::new();
        for (i, e) in self.permsets.iter().enumerate() {
            if !e.depends_on(f) {
                continue;
            }
            // Nothing to carry over: start afresh without looking for whom the write changes.
            let stale = if e.cache.holds_nothing() { None } else { self.affected(e, f, subject) };
            plans.push((i, stale));
        }
        let entries = Arc::make_mut(&mut self.permsets);
        for (i, stale) in plans {
            let Some(e) = entries.get_mut(i) else { continue };
            match stale {
                None => e.cache = Arc::new(SetCache::default()),
                Some(stale) => {
                    if let Some(own) = Arc::get_mut(&mut e.cache).filter(|c| c.base.is_some()) {
                        // A layer this batch made: more subjects are stale.
                        own.stale.extend(stale);
                        if own.stale.len() > MAX_STALE {
                            e.cache = Arc::new(SetCache::default());
                        }
                    } else {
                        e.cache = Arc::new(SetCache::layer_over(&e.cache, stale));
                    }
                }
            }
        }
    }

    /// The subjects whose set of `e` a write of `…@subject` to the stored relation
    /// numbered `f` may change, evaluated on this revision; `None` when they cannot be
    /// bounded.
    fn affected(&self, e: &PermEntry, f: usize, subject: Subject) -> Option<FxHashSet<Subject>> {
        let mut out = FxHashSet::default();
        if subject.is_wildcard() {
            return None;
        }
        if e.direct.get(f).copied().unwrap_or(false) {
            match subject.rel {
                None => {
                    out.insert(subject);
                }
                Some(srel) => self.members(subject.object(), srel, &mut out)?,
            }
        }
        for a in e.arrows.iter().filter(|a| a.tupleset == f) {
            // With `all`, a new edge can take the relation away from anyone.
            if a.all {
                return None;
            }
            if let Some(target) = a.targets.get(subject.ty as usize).copied().flatten() {
                self.members(subject.object(), target, &mut out)?;
            }
        }
        (out.len() <= MAX_STALE).then_some(out)
    }

    /// Adds every plain subject that has `rel` on `object` (of any type) to `out`; `None` if
    /// the answer is not definite or too large.
    fn members(&self, object: Obj, rel: RelId, out: &mut FxHashSet<Subject>) -> Option<()> {
        let opts = EvalOptions::default();
        for ty in 0..self.schema.types.len() as TypeId {
            let mut ev = super::IndexEval::new(self, &opts);
            // Sets must not be read or computed here: this revision is being written.
            ev.use_sets = false;
            let who = ev.who(object, rel, ty, None).ok()?;
            if who.default != Tri::False || who.has_conditional() {
                return None;
            }
            if out.len() as u64 + who.t().len() > MAX_STALE as u64 {
                return None;
            }
            out.extend(who.t().iter().map(|id| Subject { ty, id, rel: None }));
        }
        Some(())
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
