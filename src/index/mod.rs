//! The compiled index: relationships as persistent adjacency lists over dense ids, answering
//! check, who and what without scanning, and taking writes incrementally.
//!
//! - [`plan::Plan`] splits every stored relation into *slots* by subject kind and keeps the
//!   schema graph (petgraph) used to plan recursion.
//! - [`IndexData`] holds, per slot, forward lists (object → subjects) and reverse lists
//!   (subject → objects) in [`lists::Lists`], plus the *special* relationships (those with a
//!   condition or time bounds), which are evaluated exactly at query time.
//! - A write copies the [`IndexData`] (O(1): everything inside is persistent), applies the batch
//!   with the same validation as the reference store, and publishes the copy as the next
//!   snapshot. Readers keep whatever snapshot they hold; nothing blocks them.

mod check;
pub mod closure;
mod gather;
pub mod lists;
mod lookup;
mod names;
pub mod permsets;
pub mod persist;
pub mod plan;
mod replan;
mod what_closure;

pub use check::IndexEval;
pub use lookup::{SubjectBits, TriBits, WhoCache};
pub use names::{InternScratch, Names};
pub use replan::Orphans;

use crate::schema::{RelId, Schema, TypeId};
use crate::store::{
    apply_batch, Obj, ObjId, Revision, Subject, TupleAttrs, TupleStore, WriteError, WriteOp, WILDCARD,
};
use closure::Closure;
use lists::{ListRef, Lists};
use plan::{FastPath, Plan, SlotId, SlotKind};
use roaring::RoaringBitmap;
use std::sync::Arc;

/// Key of a special relationship: `(type, relation, object, subject)`.
pub type SpecialKey = (TypeId, RelId, ObjId, Subject);

/// One revision of the index. Cloning is cheap (all parts are persistent or shared).
#[derive(Clone, Debug)]
pub struct IndexData {
    pub schema: Arc<Schema>,
    pub plan: Arc<Plan>,
    names: Arc<Names>,
    /// Number of object ids of each type that exist at this revision.
    counts: Vec<u32>,
    fwd: Vec<Lists>,
    rev: Vec<Lists>,
    special: imbl::OrdMap<SpecialKey, TupleAttrs>,
    /// Number of special relationships per relation (by [`Plan::flat`]), to skip empty ranges.
    special_count: Vec<u32>,
    /// For each userset slot: the objects that have at least one plain relationship in it (a
    /// bitmap test is cheaper than looking up an empty list).
    userset_keys: Vec<Option<Arc<RoaringBitmap>>>,
    /// Closures of the self-edge slots, by slot.
    closures: Vec<Option<Closure>>,
    /// Per fast path: the nodes it must evaluate individually (see [`plan::FastPath`]).
    others: Vec<Arc<RoaringBitmap>>,
    /// The relations arrows point at, with their per-subject sets (see [`permsets`]).
    permsets: Arc<Vec<permsets::PermEntry>>,
    len: usize,
    pub revision: Revision,
}

const MIN_SUBJECT: Subject = Subject { ty: 0, id: 0, rel: None };
const MAX_SUBJECT: Subject = Subject { ty: u32::MAX, id: u32::MAX, rel: Some(u32::MAX) };

fn is_plain(a: &TupleAttrs) -> bool {
    a.caveat.is_none() && a.valid_from.is_none() && a.expires_at.is_none()
}

/// The attributes of a relationship with no condition and no time bounds.
pub const PLAIN: TupleAttrs = TupleAttrs { caveat: None, valid_from: None, expires_at: None };

impl IndexData {
    pub fn new(schema: Arc<Schema>) -> IndexData {
        let plan = Arc::new(Plan::new(&schema));
        let n = plan.slots.len();
        IndexData {
            names: Arc::new(Names::new(schema.types.len())),
            counts: vec![0; schema.types.len()],
            fwd: vec![Lists::default(); n],
            rev: vec![Lists::default(); n],
            special: imbl::OrdMap::new(),
            special_count: vec![0; plan.relation_count()],
            userset_keys: plan
                .slots
                .iter()
                .map(|i| matches!(i.kind, SlotKind::Userset(_)).then(|| Arc::new(RoaringBitmap::new())))
                .collect(),
            closures: (0..n)
                .map(|s| plan.closure_slots.contains(&(s as SlotId)).then(Closure::default))
                .collect(),
            others: (0..plan.fast.len()).map(|_| Arc::new(RoaringBitmap::new())).collect(),
            permsets: Arc::new(permsets::entries(&schema, |t, r| plan.flat(t, r), plan.relation_count())),
            len: 0,
            revision: 0,
            schema,
            plan,
        }
    }

    /// Whether `object` may have plain relationships in userset slot `slot` (always `true` for
    /// other kinds of slot).
    pub fn has_usersets(&self, slot: SlotId, object: ObjId) -> bool {
        match self.userset_keys.get(slot as usize) {
            Some(Some(keys)) => keys.contains(object),
            _ => true,
        }
    }

    fn note_userset_key(&mut self, slot: SlotId, object: ObjId) {
        let non_empty = !self.fwd[slot as usize].get(object).is_empty();
        if let Some(Some(keys)) = self.userset_keys.get_mut(slot as usize) {
            if keys.contains(object) != non_empty {
                let keys = Arc::make_mut(keys);
                if non_empty {
                    keys.insert(object);
                } else {
                    keys.remove(object);
                }
            }
        }
    }

    pub fn closure(&self, slot: SlotId) -> Option<&Closure> {
        self.closures.get(slot as usize).and_then(|c| c.as_ref())
    }

    /// The nodes a fast path must evaluate one by one.
    pub fn others(&self, fast_id: usize) -> &RoaringBitmap {
        &self.others[fast_id]
    }

    /// Recomputes whether `object` is one of the "others" of the fast paths that depend on `rel`.
    fn update_others(&mut self, object: Obj, rel: RelId) {
        let Some(deps) = self.plan.others_deps.get(&(object.ty, rel)) else { return };
        for &(id, key) in deps {
            let is_other = match self.plan.fast_path(key.0, key.1).map(|(_, fp)| fp) {
                Some(FastPath::Membership { closure }) => {
                    self.plan.slots_of(object.ty, rel).iter().any(|&slot| {
                        let kind = self.plan.info(slot).kind;
                        slot != *closure
                            && kind != SlotKind::Direct
                            && !self.fwd[slot as usize].get(object.id).is_empty()
                    }) || self.special_of(object, rel).next().is_some()
                }
                Some(FastPath::ArrowChain { .. }) => self.special_of(object, rel).next().is_some(),
                None => false,
            };
            let cur = self.others[id].contains(object.id);
            if cur != is_other {
                let bm = Arc::make_mut(&mut self.others[id]);
                if is_other {
                    bm.insert(object.id);
                } else {
                    bm.remove(object.id);
                }
            }
        }
    }

    fn closure_insert(&mut self, slot: SlotId, a: u32, b: u32) {
        if let Some(Some(c)) = self.closures.get_mut(slot as usize) {
            c.on_insert(a, b);
        }
    }

    fn closure_remove(&mut self, slot: SlotId, a: u32, b: u32) {
        let (fwd, rev) = (&self.fwd[slot as usize], &self.rev[slot as usize]);
        if let Some(Some(c)) = self.closures.get_mut(slot as usize) {
            c.on_remove(fwd, rev, a, b);
        }
    }

    /// Number of stored relationships.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Objects of a type that exist at this revision have ids `0..object_count(ty)`.
    pub fn object_count(&self, ty: TypeId) -> u32 {
        self.counts.get(ty as usize).copied().unwrap_or(0)
    }

    /// Forgets names interned past this index's object counts: names a change interned and
    /// that were never committed (a write refused, or whose commit failed). Call it only on the
    /// latest state, under the writer lock: no snapshot sees those ids. Needed before replaying
    /// revisions another process committed, which number their own new names.
    pub fn forget_uncommitted_names(&self) {
        for (ty, &count) in self.counts.iter().enumerate() {
            self.names.truncate(ty as TypeId, count);
        }
    }

    /// The id of an object name at this revision.
    pub fn object_id(&self, ty: TypeId, name: &str) -> Option<ObjId> {
        if name == "*" {
            return Some(WILDCARD);
        }
        self.names.get(ty, name).filter(|&id| id < self.object_count(ty))
    }

    /// The ids of two object names (a question's object and subject), looked up together.
    pub fn object_id_pair(&self, a: (TypeId, &str), b: (TypeId, &str)) -> (Option<ObjId>, Option<ObjId>) {
        let (x, y) = self.names.get_pair(a, b);
        let at = |id: Option<ObjId>, (ty, name): (TypeId, &str)| {
            if name == "*" {
                Some(WILDCARD)
            } else {
                id.filter(|&id| id < self.object_count(ty))
            }
        };
        (at(x, a), at(y, b))
    }

    pub fn fwd(&self, slot: SlotId, object: ObjId) -> ListRef<'_> {
        self.fwd[slot as usize].get(object)
    }

    pub fn rev(&self, slot: SlotId, subject: ObjId) -> ListRef<'_> {
        self.rev[slot as usize].get(subject)
    }

    /// The special relationships of `object#rel`.
    pub fn special_of(&self, object: Obj, rel: RelId) -> impl Iterator<Item = (&SpecialKey, &TupleAttrs)> {
        let range = (object.ty, rel, object.id, MIN_SUBJECT)..=(object.ty, rel, object.id, MAX_SUBJECT);
        self.has_special(object.ty, rel).then(|| self.special.range(range)).into_iter().flatten()
    }

    /// Every special relationship of `type#rel`.
    pub fn special_of_rel(&self, ty: TypeId, rel: RelId) -> impl Iterator<Item = (&SpecialKey, &TupleAttrs)> {
        let range = (ty, rel, 0, MIN_SUBJECT)..=(ty, rel, u32::MAX, MAX_SUBJECT);
        self.has_special(ty, rel).then(|| self.special.range(range)).into_iter().flatten()
    }

    /// Whether `type#rel` has any special relationship.
    pub fn has_special(&self, ty: TypeId, rel: RelId) -> bool {
        self.special_count.get(self.plan.flat(ty, rel)).is_some_and(|&n| n > 0)
    }

    fn count_special(&mut self, ty: TypeId, rel: RelId, delta: i32) {
        let i = self.plan.flat(ty, rel);
        if let Some(c) = self.special_count.get_mut(i) {
            *c = c.saturating_add_signed(delta);
        }
    }

    fn slot_for(&self, object: Obj, rel: RelId, subject: Subject) -> Option<(SlotId, u32)> {
        let (kind, value) = match (subject.id == WILDCARD, subject.rel) {
            (true, _) => (SlotKind::Wildcard, 0),
            (false, Some(r)) => (SlotKind::Userset(r), subject.id),
            (false, None) => (SlotKind::Direct, subject.id),
        };
        self.plan.slot(object.ty, rel, subject.ty, kind).map(|s| (s, value))
    }

    /// Every stored relationship of `object#rel` with its attributes, plain ones first.
    pub fn tuples_of(&self, object: Obj, rel: RelId) -> Vec<(Subject, TupleAttrs)> {
        let mut out = Vec::new();
        for &slot in self.plan.slots_of(object.ty, rel) {
            let info = self.plan.info(slot);
            for v in self.fwd(slot, object.id).iter() {
                let subject = match info.kind {
                    SlotKind::Direct => Subject { ty: info.subject_ty, id: v, rel: None },
                    SlotKind::Wildcard => Subject { ty: info.subject_ty, id: WILDCARD, rel: None },
                    SlotKind::Userset(r) => Subject { ty: info.subject_ty, id: v, rel: Some(r) },
                };
                out.push((subject, PLAIN));
            }
        }
        out.extend(self.special_of(object, rel).map(|(k, a)| (k.3, a.clone())));
        out
    }

    /// Calls `f` for every stored relationship: plain ones slot by slot (in object order within
    /// a slot), then the special ones.
    pub fn for_each_tuple(&self, mut f: impl FnMut(Obj, RelId, Subject, &TupleAttrs)) {
        for (slot, info) in self.plan.slots.iter().enumerate() {
            let lists = &self.fwd[slot];
            for key in 0..lists.key_bound() {
                for v in lists.get(key).iter() {
                    let subject = match info.kind {
                        SlotKind::Direct => Subject { ty: info.subject_ty, id: v, rel: None },
                        SlotKind::Wildcard => Subject { ty: info.subject_ty, id: WILDCARD, rel: None },
                        SlotKind::Userset(r) => Subject { ty: info.subject_ty, id: v, rel: Some(r) },
                    };
                    f(Obj { ty: info.ty, id: key }, info.rel, subject, &PLAIN);
                }
            }
        }
        for (&(ty, rel, id, subject), attrs) in &self.special {
            f(Obj { ty, id }, rel, subject, attrs);
        }
    }

    /// Makes every name of this index frozen (read with no lock): in place if no other
    /// revision shares the table, else in a copy this index then uses (ids unchanged).
    pub fn freeze_names(&mut self) {
        match Arc::get_mut(&mut self.names) {
            Some(names) => names.freeze(),
            None => self.names = Arc::new(self.names.frozen_copy()),
        }
    }

    /// Whether a relationship starts or expires in `(after, until]`: evaluations at the two
    /// times may differ only then (conditions aside).
    pub fn time_bound_between(
        &self,
        after: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        self.next_time_bound(after).is_some_and(|t| t <= until)
    }

    /// The earliest time after `after` at which a relationship starts or expires.
    pub fn next_time_bound(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.special
            .values()
            .flat_map(|a| [a.valid_from, a.expires_at])
            .flatten()
            .filter(|t| *t > after)
            .min()
    }

    /// Loads plain relationships given by ids (their objects already interned) into an empty
    /// index: the lists are built sorted, in parallel, instead of one insert at a time.
    pub fn bulk_load_plain(&mut self, tuples: &[(Obj, RelId, Subject)]) {
        let mut per_slot: Vec<Vec<(u32, u32)>> = vec![Vec::new(); self.plan.slots.len()];
        for &(o, r, s) in tuples {
            if let Some((slot, v)) = self.slot_for(o, r, s) {
                per_slot[slot as usize].push((o.id, v));
            }
        }
        self.build_lists(per_slot);
    }

    /// [`IndexData::bulk_load_plain`] of runs of relationships of one shape (resource type,
    /// relation, subject type and relation), each as (resource id, subject id) pairs.
    pub fn bulk_load_runs<'a>(
        &mut self,
        runs: impl Iterator<Item = ((TypeId, RelId, TypeId, Option<RelId>), &'a [(ObjId, ObjId)])>,
    ) {
        let slots_of = |(ty, rel, sty, srel): (TypeId, RelId, TypeId, Option<RelId>)| {
            let o = Obj { ty, id: 0 };
            let slot = |id| self.slot_for(o, rel, Subject { ty: sty, id, rel: srel }).map(|(slot, _)| slot);
            (slot(0), slot(WILDCARD))
        };
        let mut per_slot: Vec<Vec<(u32, u32)>> = vec![Vec::new(); self.plan.slots.len()];
        for (shape, pairs) in runs {
            let (plain, wildcard) = slots_of(shape);
            for &(o, s) in pairs {
                let (slot, v) = if s == WILDCARD { (wildcard, 0) } else { (plain, s) };
                if let Some(list) = slot.and_then(|slot| per_slot.get_mut(slot as usize)) {
                    list.push((o, v));
                }
            }
        }
        self.build_lists(per_slot);
    }

    /// Builds an index from relationships given by ids (used by bulk loads); faster than
    /// writing them one by one. Special relationships are stored as such.
    pub fn bulk_load(&mut self, tuples: Vec<(Obj, RelId, Subject, TupleAttrs)>) {
        let mut per_slot: Vec<Vec<(u32, u32)>> = vec![Vec::new(); self.plan.slots.len()];
        let mut rest = Vec::new();
        for (o, r, s, a) in tuples {
            match (is_plain(&a), self.slot_for(o, r, s)) {
                (true, Some((slot, v))) => per_slot[slot as usize].push((o.id, v)),
                _ => rest.push((o, r, s, a)),
            }
        }
        self.build_lists(per_slot);
        for (o, r, s, a) in rest {
            self.insert(o, r, s, a);
        }
    }

    /// Replaces every slot's lists with ones built from `(object, subject)` pairs, then the
    /// closures and fast-path state.
    fn build_lists(&mut self, per_slot: Vec<Vec<(u32, u32)>>) {
        use rayon::prelude::*;
        self.invalidate_all_sets();
        // A fresh build owns its names: freeze them, so reads of them take no lock.
        if let Some(names) = Arc::get_mut(&mut self.names) {
            names.freeze();
        }
        let built: Vec<(Lists, Lists)> = per_slot
            .into_par_iter()
            .map(|mut pairs| {
                pairs.par_sort_unstable();
                pairs.dedup();
                let fwd = Lists::from_sorted(pairs.iter().copied());
                for p in &mut pairs {
                    *p = (p.1, p.0);
                }
                pairs.par_sort_unstable();
                (fwd, Lists::from_sorted(pairs))
            })
            .collect();
        for (i, (f, r)) in built.into_iter().enumerate() {
            if let Some(Some(keys)) = self.userset_keys.get_mut(i) {
                let mut bm = RoaringBitmap::new();
                for key in 0..f.key_bound() {
                    if !f.get(key).is_empty() {
                        bm.insert(key);
                    }
                }
                *keys = Arc::new(bm);
            }
            self.fwd[i] = f;
            self.rev[i] = r;
        }
        self.len = self.fwd.iter().map(|l| l.entries() as usize).sum::<usize>() + self.special.len();
        for &slot in &self.plan.closure_slots.clone() {
            let c = Closure::build(&self.fwd[slot as usize], &self.rev[slot as usize]);
            self.closures[slot as usize] = Some(c);
        }
        self.rebuild_others();
    }

    /// Approximate heap bytes of the index's structures besides the names: the adjacency lists,
    /// the closures of nested relations and the key sets of usersets and fast paths (not the
    /// permission sets, a cache filled on demand).
    pub fn heap_bytes(&self) -> usize {
        let lists: usize = self.fwd.iter().chain(&self.rev).map(Lists::heap_bytes).sum();
        let closures: usize =
            self.closures.iter().flatten().map(|c| c.down.heap_bytes() + c.up.heap_bytes()).sum();
        let sets: usize =
            self.userset_keys.iter().flatten().chain(&self.others).map(|b| b.serialized_size()).sum();
        lists + closures + sets
    }

    /// Approximate heap bytes of the object names (shared by every revision).
    pub fn names_heap_bytes(&self) -> usize {
        self.names.heap_bytes()
    }
}

impl IndexData {
    /// The names table itself, for interning on another thread (see
    /// [`IndexData::count_interned`]).
    pub(crate) fn shared_names(&self) -> Arc<Names> {
        self.names.clone()
    }

    /// Counts objects of `ty` interned in this index's names table elsewhere (`ids` from
    /// [`Names::intern_many_with`] on [`IndexData::shared_names`]).
    pub(crate) fn count_interned(&mut self, ty: TypeId, ids: &[ObjId]) {
        let most = ids.iter().copied().filter(|&id| id != WILDCARD).max();
        if let (Some(c), Some(most)) = (self.counts.get_mut(ty as usize), most) {
            *c = (*c).max(most + 1);
        }
    }
}

impl TupleStore for IndexData {
    fn intern(&mut self, ty: TypeId, name: &str) -> ObjId {
        if name == "*" {
            return WILDCARD;
        }
        let id = self.names.intern(ty, name);
        if let Some(c) = self.counts.get_mut(ty as usize) {
            *c = (*c).max(id + 1);
        }
        id
    }

    fn object_name(&self, ty: TypeId, id: ObjId) -> String {
        self.names.name(ty, id)
    }

    fn lookup(&self, ty: TypeId, name: &str) -> Option<ObjId> {
        self.object_id(ty, name)
    }

    fn get(&self, object: Obj, rel: RelId, subject: Subject) -> Option<TupleAttrs> {
        let key = (object.ty, rel, object.id, subject);
        if let Some(a) = self.has_special(object.ty, rel).then(|| self.special.get(&key)).flatten() {
            return Some(a.clone());
        }
        let (slot, v) = self.slot_for(object, rel, subject)?;
        self.fwd[slot as usize].contains(object.id, v).then_some(PLAIN)
    }

    fn insert(&mut self, object: Obj, rel: RelId, subject: Subject, attrs: TupleAttrs) {
        self.remove(object, rel, subject);
        if is_plain(&attrs) {
            if let Some((slot, v)) = self.slot_for(object, rel, subject) {
                self.fwd[slot as usize].insert(object.id, v);
                self.rev[slot as usize].insert(v, object.id);
                self.len += 1;
                self.note_userset_key(slot, object.id);
                self.closure_insert(slot, object.id, v);
                self.update_others(object, rel);
                self.sets_written(object, rel, subject, true);
                return;
            }
        }
        self.special.insert((object.ty, rel, object.id, subject), attrs);
        self.count_special(object.ty, rel, 1);
        self.len += 1;
        self.update_others(object, rel);
        self.sets_written(object, rel, subject, false);
    }

    fn remove(&mut self, object: Obj, rel: RelId, subject: Subject) -> Option<TupleAttrs> {
        if self.special.contains_key(&(object.ty, rel, object.id, subject)) {
            self.sets_written(object, rel, subject, false);
        } else if self.get(object, rel, subject).is_some() {
            // Before the removal: the subjects it may change are found while it holds.
            self.sets_written(object, rel, subject, true);
        }
        if let Some(a) = self.special.remove(&(object.ty, rel, object.id, subject)) {
            self.count_special(object.ty, rel, -1);
            self.len -= 1;
            self.update_others(object, rel);
            return Some(a);
        }
        let (slot, v) = self.slot_for(object, rel, subject)?;
        if self.fwd[slot as usize].remove(object.id, v) {
            self.rev[slot as usize].remove(v, object.id);
            self.len -= 1;
            self.note_userset_key(slot, object.id);
            self.closure_remove(slot, object.id, v);
            self.update_others(object, rel);
            return Some(PLAIN);
        }
        None
    }

    fn referencing(&self, object: Obj) -> Vec<TupleAttrs> {
        let mut out = Vec::new();
        for (slot, info) in self.plan.slots.iter().enumerate() {
            if info.subject_ty == object.ty && info.kind != SlotKind::Wildcard {
                out.extend(self.rev(slot as SlotId, object.id).iter().map(|_| PLAIN));
            }
        }
        let special = self.special.iter().filter(|(k, _)| !k.3.is_wildcard() && k.3.object() == object);
        out.extend(special.map(|(_, a)| a.clone()));
        out
    }

    fn stored(&self, object: Obj, rel: RelId) -> Vec<(Subject, TupleAttrs)> {
        let mut v = self.tuples_of(object, rel);
        v.sort_by_key(|(s, _)| *s);
        v
    }
}

/// The writer side of the index: applies write batches and publishes snapshots.
#[derive(Clone, Debug)]
pub struct Index {
    current: Arc<IndexData>,
}

impl Index {
    pub fn new(schema: Arc<Schema>) -> Index {
        Index { current: Arc::new(IndexData::new(schema)) }
    }

    pub fn from_data(data: IndexData) -> Index {
        Index { current: Arc::new(data) }
    }

    /// The latest revision, for reading.
    pub fn snapshot(&self) -> Arc<IndexData> {
        self.current.clone()
    }

    /// Applies a batch atomically: all of it, or (on any error) nothing.
    pub fn write(&mut self, ops: &[WriteOp]) -> Result<Revision, WriteError> {
        let mut next = (*self.current).clone();
        apply_batch(&self.current.schema.clone(), &mut next, ops)?;
        next.revision += 1;
        self.current = Arc::new(next);
        Ok(self.current.revision)
    }
}

impl crate::store::Source for IndexData {
    fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }
    fn revision(&self) -> Revision {
        self.revision
    }
    fn tuples(&self, object: Obj, rel: RelId) -> Vec<(Subject, TupleAttrs)> {
        self.tuples_of(object, rel)
    }
    fn object_count(&self, ty: TypeId) -> u32 {
        IndexData::object_count(self, ty)
    }
    fn object_id(&self, ty: TypeId, name: &str) -> Option<ObjId> {
        IndexData::object_id(self, ty, name)
    }
    fn object_name(&self, ty: TypeId, id: ObjId) -> String {
        self.names.name(ty, id)
    }
}
