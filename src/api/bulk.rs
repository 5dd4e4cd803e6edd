//! Bulk operations through the facade: streaming bulk loads and schema changes on live data.
//!
//! A bulk load validates every relationship exactly as a write does, then builds the index's
//! lists in one sorted pass instead of one insert at a time, and hands the whole load to the
//! journal as one revision. Plain relationships wait in a batch per shape (types and relations,
//! validated once) and have their names interned a batch at a time, full batches on other
//! threads while the loader reads on; shapes may alternate line by line without stalling it. A
//! schema change re-validates every stored relationship against the new schema and refuses the
//! change, listing what blocks it, if any would no longer fit.

use super::purview::{Change, Purview, RowEncoder, WriterGuard};
use super::{compile_schema_as, SchemaError};
use crate::index::IndexData;
use crate::schema::{RelId, Schema, TypeId};
use crate::store::relationship::RelRef;
pub use crate::store::relationship_of;
use crate::store::RelationshipSyntaxError;
use crate::store::{
    apply_batch, Key, Obj, ObjId, Relationship, Revision, Subject, TupleAttrs, TupleStore, WriteError,
    WriteOp,
};
use crate::syntax::formats::SchemaFormat;
use interning::{Interning, Lost, Pending, Scratch, BATCH};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod interning;

/// Threads interning a load's names, at most (each type's names go to one of them).
const MAX_WORKERS: usize = 4;

/// Why a bulk load was refused. Nothing of it was written.
#[derive(Debug, thiserror::Error)]
pub enum BulkError<E> {
    /// The input failed at item `index` (0-based), e.g. a line that does not parse.
    #[error("item {index}: {error}")]
    Source { index: usize, error: E },
    /// Item `index` (0-based) is not a valid write (or breaks a schema constraint).
    #[error("item {index}: {error}")]
    Invalid { index: usize, error: Box<WriteError> },
    /// The store could not make the load durable.
    #[error(transparent)]
    Storage(WriteError),
}

/// What a bulk load wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkLoad {
    pub revision: Revision,
    /// Relationships read (duplicates included).
    pub relationships: usize,
}

/// Why a schema change was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum SchemaChangeError {
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error("the new schema does not fit the stored relationships:\n{}", blockers_text(.0))]
    Blocked(Vec<Blocker>),
    #[error(transparent)]
    Storage(WriteError),
}

/// One reason a schema change is refused, with how many stored relationships it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub reason: String,
    pub count: usize,
    /// One of the relationships concerned.
    pub example: String,
}

fn blockers_text(b: &[Blocker]) -> String {
    b.iter()
        .map(|b| {
            let s = if b.count == 1 { "" } else { "s" };
            format!("  - {} ({} relationship{s}, e.g. `{}`)", b.reason, b.count, b.example)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The relationships of a bulk load by dense ids, split as the index keeps them. When one is
/// given more than once, the last copy wins, as in a sequence of touches.
#[derive(Debug, Default)]
pub struct Resolved {
    /// Relationships with no condition and no time bounds (duplicates possible), as recorded:
    /// runs of one shape, 8 bytes a relationship. Each shape's are in push order; shapes
    /// interleave batch by batch (every special relationship is recorded after the plain ones
    /// pushed before it, which is the only order that matters).
    plain: Vec<PlainRun>,
    plain_len: usize,
    /// The others, with their attributes, in push order (see [`Resolved::specials`]).
    special: Vec<(Key, TupleAttrs)>,
    /// Per key, the special copy in effect: the last one, unless a plain copy came after it.
    special_at: HashMap<Key, usize>,
}

/// A shape of plain relationships: resource type, relation, subject type and relation.
pub(crate) type ShapeIds = (TypeId, RelId, TypeId, Option<RelId>);

/// Consecutive plain relationships of one shape, as (resource id, subject id) pairs.
#[derive(Debug)]
struct PlainRun {
    shape: ShapeIds,
    pairs: Vec<(ObjId, ObjId)>,
}

impl PlainRun {
    fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        let (ty, rel, sty, srel) = self.shape;
        self.pairs.iter().map(move |&(o, s)| (Obj { ty, id: o }, rel, Subject { ty: sty, id: s, rel: srel }))
    }
}

impl Resolved {
    pub fn push(&mut self, key: Key, attrs: TupleAttrs) {
        if attrs.caveat.is_none() && attrs.valid_from.is_none() && attrs.expires_at.is_none() {
            let (o, rel, s) = key;
            self.push_plain((o.ty, rel, s.ty, s.rel), &[o.id], &[s.id]);
        } else {
            self.special_at.insert(key, self.special.len());
            self.special.push((key, attrs));
        }
    }

    /// Plain relationships of one shape: resource `rids[i]` with subject `sids[i]`.
    pub(crate) fn push_plain(&mut self, shape: ShapeIds, rids: &[ObjId], sids: &[ObjId]) {
        let pairs = rids.iter().copied().zip(sids.iter().copied());
        if !self.special_at.is_empty() {
            // A plain copy after a special one replaces it.
            let (ty, rel, sty, srel) = shape;
            for (o, s) in pairs.clone() {
                self.special_at.remove(&(Obj { ty, id: o }, rel, Subject { ty: sty, id: s, rel: srel }));
            }
        }
        match self.plain.last_mut() {
            Some(run) if run.shape == shape => run.pairs.extend(pairs),
            _ => self.plain.push(PlainRun { shape, pairs: pairs.collect() }),
        }
        self.plain_len += rids.len().min(sids.len());
    }

    /// How many plain relationships were pushed (duplicates included).
    pub fn plain_len(&self) -> usize {
        self.plain_len
    }

    /// The plain relationships from the `from`th recorded on.
    pub fn plain_from(&self, from: usize) -> impl Iterator<Item = Key> + '_ {
        let mut skip = from;
        self.plain.iter().flat_map(move |run| {
            let k = skip.min(run.pairs.len());
            skip -= k;
            run.keys().skip(k)
        })
    }

    /// The special relationships in effect (each later than any plain copy of its key), in
    /// push order.
    pub fn specials(&self) -> impl Iterator<Item = &(Key, TupleAttrs)> {
        let mut at: Vec<usize> = self.special_at.values().copied().collect();
        at.sort_unstable();
        at.into_iter().map(|i| &self.special[i])
    }

    /// Every relationship with its attributes (plain ones first, then the specials in effect,
    /// which replace a plain copy).
    pub fn tuples(&self) -> impl Iterator<Item = (Obj, RelId, Subject, TupleAttrs)> + '_ {
        let plain = self.plain_from(0).map(|(o, r, s)| (o, r, s, crate::index::PLAIN));
        plain.chain(self.specials().map(|&((o, r, s), ref a)| (o, r, s, a.clone())))
    }

    /// Builds `data` (fresh, its names interned) from the relationships.
    pub fn build_into(&self, data: &mut IndexData) {
        data.bulk_load_runs(self.plain.iter().map(|run| (run.shape, run.pairs.as_slice())));
        for ((o, r, s), a) in self.specials() {
            data.insert(*o, *r, *s, a.clone());
        }
    }
}

fn has_constraints(schema: &Schema) -> bool {
    schema.types.iter().any(|t| !t.constraints.is_empty())
}

/// A bulk load in progress (see [`Purview::bulk_loader`]): push relationships one at a time,
/// then [`BulkLoader::finish`]. Holds the writer lock; dropped without `finish`, it writes
/// nothing.
pub struct BulkLoader<'p> {
    pv: &'p Purview,
    w: WriterGuard<'p>,
    head: Arc<IndexData>,
    next: IndexData,
    resolved: Resolved,
    /// With schema constraints, the whole load is checked as one write batch at the end.
    ops: Option<Vec<WriteOp>>,
    read: usize,
    /// The last name interned per type (see [`Recent`]).
    recent: Vec<Option<(String, ObjId)>>,
    /// The shapes of plain relationships validated so far (at most [`SHAPES`]), the last one
    /// matched first, each with its relationships whose names are not interned yet.
    shapes: Vec<Shape>,
    /// On a durable Purview loading into an empty store: the journal's row order, and the
    /// plain keys sorted by it so far, run by run on other threads (see [`super::Journal::row_encoder`]).
    encoder: Option<RowEncoder>,
    runs: Vec<std::thread::JoinHandle<Vec<[u8; 24]>>>,
    /// Plain keys handed to `runs`.
    sent: usize,
    /// Plain keys per run.
    run: usize,
    /// Full batches being interned on other threads, started with the first one.
    interning: Option<Interning>,
    /// Batches whose names were interned, their buffers kept for reuse.
    spare: Vec<Pending>,
    /// Whether an interning thread ended with batches out (a bug): the load is refused.
    lost: bool,
    /// For batches interned on this thread.
    scratch: Scratch,
    /// Whether this thread interns every batch (one core, or no threads to be had).
    alone: bool,
    /// Threads interning names, if chosen ([`BulkLoader::with_interning_threads`]).
    workers: Option<usize>,
}

/// Shapes of plain relationships remembered at once: a load that interleaves more (each
/// object's relationships of many kinds together) interns names on the loader's thread.
const SHAPES: usize = 16;

/// Plain keys per sorted run of a bulk load.
const RUN: usize = 1 << 18;

/// Encodes and sorts `keys` on another thread.
fn sort_run(encoder: &RowEncoder, keys: Vec<Key>) -> std::thread::JoinHandle<Vec<[u8; 24]>> {
    let encoder = encoder.clone();
    std::thread::spawn(move || {
        let mut run: Vec<[u8; 24]> = keys.iter().map(|k| encoder(k)).collect();
        run.sort_unstable();
        run
    })
}

/// What the validity of a plain relationship depends on: its types, relation, subject relation
/// and whether its subject is a wildcard.
#[derive(Debug)]
struct Shape {
    resource_ty: String,
    relation: String,
    subject_ty: String,
    subject_relation: Option<String>,
    wildcard: bool,
    ids: ShapeIds,
    /// Its relationships waiting to have their names interned.
    pending: Pending,
}

impl Shape {
    fn of(r: &RelRef<'_>, ids: ShapeIds, pending: Pending) -> Shape {
        Shape {
            resource_ty: r.resource_ty.to_string(),
            relation: r.relation.to_string(),
            subject_ty: r.subject_ty.to_string(),
            subject_relation: r.subject_relation.map(str::to_string),
            wildcard: r.subject_id == "*",
            ids,
            pending,
        }
    }

    fn matches(&self, r: &RelRef<'_>) -> bool {
        self.relation == r.relation
            && self.resource_ty == r.resource_ty
            && self.subject_ty == r.subject_ty
            && self.subject_relation.as_deref() == r.subject_relation
            && self.wildcard == (r.subject_id == "*")
    }
}

/// The index being loaded, remembering the last name interned per type: consecutive lines of a
/// load often name the same object, and a hash lookup among millions of names is a cache miss.
struct Recent<'a> {
    data: &'a mut IndexData,
    last: &'a mut [Option<(String, ObjId)>],
}

impl TupleStore for Recent<'_> {
    fn intern(&mut self, ty: TypeId, name: &str) -> ObjId {
        if let Some(Some((n, id))) = self.last.get(ty as usize) {
            if n == name {
                return *id;
            }
        }
        let id = self.data.intern(ty, name);
        match self.last.get_mut(ty as usize) {
            Some(Some((n, i))) => {
                n.clear();
                n.push_str(name);
                *i = id;
            }
            Some(slot) => *slot = Some((name.to_string(), id)),
            None => {}
        }
        id
    }
    fn lookup(&self, ty: TypeId, name: &str) -> Option<ObjId> {
        self.data.lookup(ty, name)
    }
    fn object_name(&self, ty: TypeId, id: ObjId) -> String {
        TupleStore::object_name(&*self.data, ty, id)
    }
    fn get(&self, object: Obj, rel: RelId, subject: Subject) -> Option<TupleAttrs> {
        self.data.get(object, rel, subject)
    }
    fn insert(&mut self, object: Obj, rel: RelId, subject: Subject, attrs: TupleAttrs) {
        self.data.insert(object, rel, subject, attrs)
    }
    fn remove(&mut self, object: Obj, rel: RelId, subject: Subject) -> Option<TupleAttrs> {
        self.data.remove(object, rel, subject)
    }
    fn stored(&self, object: Obj, rel: RelId) -> Vec<(Subject, TupleAttrs)> {
        self.data.stored(object, rel)
    }
    fn referencing(&self, object: Obj) -> Vec<TupleAttrs> {
        self.data.referencing(object)
    }
}

impl std::fmt::Debug for BulkLoader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkLoader").field("read", &self.read).finish()
    }
}

/// Why a line pushed to a [`BulkLoader`] was refused.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error(transparent)]
    Syntax(#[from] RelationshipSyntaxError),
    #[error(transparent)]
    Invalid(#[from] WriteError),
}

impl BulkLoader<'_> {
    /// Validates one relationship (exactly as a write would) and adds it to the load.
    pub fn push(&mut self, r: &Relationship) -> Result<(), WriteError> {
        self.push_ref(&RelRef::of(r))
    }

    fn push_ref(&mut self, r: &RelRef<'_>) -> Result<(), WriteError> {
        let plain = r.caveat.is_none() && r.valid_from.is_none() && r.expires_at.is_none();
        // A plain relationship of a shape validated before needs only its names interned:
        // whether it is valid depends on nothing else.
        if plain {
            if let Some(k) = self.shapes.iter().position(|sh| sh.matches(r)) {
                // Loads often alternate between a few shapes (an object's relationships of
                // each kind): the last one matched is tried first.
                self.shapes[..=k].rotate_right(1);
                let ids = self.shapes[0].ids;
                if self.ops.is_none() {
                    // Interned later, with the others of its shape's batch.
                    let p = &mut self.shapes[0].pending;
                    p.text.push_str(r.resource_id);
                    let at = p.text.len();
                    p.text.push_str(r.subject_id);
                    p.ends.push((at, p.text.len()));
                    if p.ends.len() >= BATCH {
                        self.hand_off(0);
                    }
                    return Ok(());
                }
                let mut data = Recent { data: &mut self.next, last: &mut self.recent };
                let o = Obj { ty: ids.0, id: data.intern(ids.0, r.resource_id) };
                let s = Subject { ty: ids.2, id: data.intern(ids.2, r.subject_id), rel: ids.3 };
                return self.record(r, (o, ids.1, s), crate::index::PLAIN);
            }
        }
        // A new shape, or a relationship with a condition or times: validated in full, its
        // names interned here, after everything pushed before it.
        self.flush();
        let schema = self.head.schema.clone();
        let mut data = Recent { data: &mut self.next, last: &mut self.recent };
        let (o, rel, s, a) = crate::store::write::resolve_ref(&schema, &mut data, r)?;
        if plain {
            if self.shapes.len() >= SHAPES {
                // Nothing is pending after the flush.
                self.spare.extend(self.shapes.drain(..).map(|sh| sh.pending));
            }
            let ids = (o.ty, rel, s.ty, s.rel);
            let mut p = self.spare.pop().unwrap_or_default();
            (p.ids, p.wildcard) = (Some(ids), r.subject_id == "*");
            self.shapes.insert(0, Shape::of(r, ids, p));
        }
        self.record(r, (o, rel, s), a)
    }

    /// Interns every pending relationship's names and records them, after every batch handed
    /// off (shape by shape, the last matched first): nothing is pending when this returns.
    fn flush(&mut self) {
        self.drain();
        for k in 0..self.shapes.len() {
            if let Some(p) = self.take_batch(k) {
                self.intern_here(p);
            }
        }
    }

    /// Shape `k`'s pending relationships, if any, replaced by an empty batch of the shape.
    fn take_batch(&mut self, k: usize) -> Option<Pending> {
        let pending = self.shapes.get_mut(k).map(|sh| &mut sh.pending).filter(|p| !p.ends.is_empty())?;
        let mut next = self.spare.pop().unwrap_or_default();
        (next.ids, next.wildcard) = (pending.ids, pending.wildcard);
        Some(std::mem::replace(pending, next))
    }

    /// Interns a batch's names on this thread and records it.
    fn intern_here(&mut self, mut p: Pending) {
        let names = self.next.shared_names();
        p.intern(&names, &mut self.scratch);
        drop(names);
        self.interned(p);
    }

    /// Sends shape `k`'s pending batch (full) to the interning workers, or interns it here if
    /// there are none; records the batches that came back.
    fn hand_off(&mut self, k: usize) {
        if self.interning.is_none() && !self.alone {
            let n = self.workers.unwrap_or_else(|| {
                // Asked once a load (it reads the process's CPU limits).
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                if cores > 1 {
                    cores.min(MAX_WORKERS)
                } else {
                    0
                }
            });
            if n > 0 {
                self.interning = Interning::start(self.next.shared_names(), n);
            }
            self.alone = self.interning.is_none();
        }
        let Some(p) = self.take_batch(k) else { return };
        let Some(interning) = &mut self.interning else { return self.intern_here(p) };
        match interning.send(p) {
            Ok(ready) => {
                for done in ready {
                    self.interned(done);
                }
            }
            Err(Lost) => self.lose(),
        }
    }

    /// Waits for every batch handed off and records them.
    fn drain(&mut self) {
        let Some(interning) = &mut self.interning else { return };
        match interning.drain() {
            Ok(ready) => {
                for done in ready {
                    self.interned(done);
                }
            }
            Err(Lost) => self.lose(),
        }
    }

    /// A worker failed with batches out (a bug): they are lost, and so is the load.
    fn lose(&mut self) {
        self.lost = true;
        self.interning = None;
    }

    /// Records a batch whose names have ids.
    fn interned(&mut self, mut p: Pending) {
        let Some(ids @ (rty, _, sty, _)) = p.ids else { return };
        self.next.count_interned(rty, &p.rids);
        self.next.count_interned(sty, &p.sids);
        self.resolved.push_plain(ids, &p.rids, &p.sids);
        self.read += p.rids.len().min(p.sids.len());
        self.sort_full_run();
        // The buffers are kept for a later batch.
        if let Some(interning) = &mut self.interning {
            interning.recycle(std::mem::take(&mut p.rids));
            interning.recycle(std::mem::take(&mut p.sids));
        }
        p.text.clear();
        p.ends.clear();
        p.ids = None;
        self.spare.push(p);
    }

    fn record(&mut self, r: &RelRef<'_>, key: Key, a: TupleAttrs) -> Result<(), WriteError> {
        if let Some(ops) = &mut self.ops {
            ops.push(WriteOp::Touch(r.to_owned()));
        }
        self.add(key, a);
        Ok(())
    }

    fn add(&mut self, (o, rel, s): Key, a: TupleAttrs) {
        self.resolved.push((o, rel, s), a);
        self.read += 1;
        self.sort_full_run();
    }

    /// On a durable load, sorts the plain keys not sent yet on another thread once there are
    /// a run's worth.
    fn sort_full_run(&mut self) {
        if let Some(encoder) = &self.encoder {
            if self.resolved.plain_len() - self.sent >= self.run {
                let chunk = self.resolved.plain_from(self.sent).collect();
                self.sent = self.resolved.plain_len();
                self.runs.push(sort_run(encoder, chunk));
            }
        }
    }

    /// Parses one line in the notation of relationship files (a relationship without a
    /// condition or times is parsed without allocating) and pushes it.
    pub fn push_text(&mut self, line: &str) -> Result<(), LineError> {
        match RelRef::parse_plain(line) {
            Some(r) => Ok(self.push_ref(&r)?),
            None => {
                let r = Relationship::parse(line)?;
                Ok(self.push(&r)?)
            }
        }
    }

    /// Sorts the load's rows in runs of `n` relationships (default 2^18): for tests of the
    /// merge of many runs.
    #[doc(hidden)]
    pub fn with_run_size(mut self, n: usize) -> Self {
        self.run = n.max(1);
        self
    }

    /// Interns names on `n` threads besides the loader's (default: one per core, at most four,
    /// none on one core); `0` interns them on the loader's thread. Ids do not depend on it: each
    /// type's names are interned by one thread, batch by batch in the order the batches were
    /// handed over.
    pub fn with_interning_threads(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// Relationships pushed so far.
    pub fn len(&self) -> usize {
        let pending: usize = self.shapes.iter().map(|sh| sh.pending.ends.len()).sum();
        self.read + pending + self.interning.as_ref().map_or(0, |i| i.items())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the schema's constraints on the whole load, builds the index, makes the load
    /// durable (one revision) and publishes it. `Invalid` errors give the position of the
    /// relationship blamed (0-based, in push order).
    pub fn finish<E>(mut self) -> Result<BulkLoad, BulkError<E>> {
        self.flush();
        // The thread's share of the names table goes with it.
        self.interning = None;
        if self.lost {
            return Err(BulkError::Storage(WriteError::Storage {
                message: "interning the load's names failed".into(),
                unknown_outcome: false,
            }));
        }
        let BulkLoader { pv, w, head, mut next, resolved, ops, read, encoder, runs, sent, .. } = self;
        let schema = head.schema.clone();
        if let Some(ops) = &ops {
            // Constraints are judged on the whole batch: the write path does exactly that.
            let mut check = (*head).clone();
            if let Err(error) = apply_batch(&schema, &mut check, ops) {
                let index = blame(&error, ops);
                return Err(BulkError::Invalid { index, error: Box::new(error) });
            }
        }
        let journal = pv.journal().cloned();
        // Build the index and (on a durable Purview) write the rows at the same time.
        let fresh = head.is_empty();
        if fresh {
            // Every name of a fresh load is read without a lock from now on.
            next.freeze_names();
        }
        let names = next.clone();
        // The last run, then every run, sorted.
        let mut runs = runs;
        if let Some(encoder) = &encoder {
            if resolved.plain_len() > sent {
                runs.push(sort_run(encoder, resolved.plain_from(sent).collect()));
            }
        }
        let mut sorted = Vec::with_capacity(runs.len());
        for r in runs {
            sorted.push(r.join().map_err(|_| {
                BulkError::Storage(WriteError::Storage {
                    message: "sorting a run of the load failed".into(),
                    unknown_outcome: false,
                })
            })?);
        }
        let (_, rows_written) = rayon::join(
            || {
                if fresh {
                    resolved.build_into(&mut next);
                } else {
                    for (o, r, s, a) in resolved.tuples() {
                        next.insert(o, r, s, a);
                    }
                }
            },
            || match &journal {
                Some(j) => j.begin_import(&head, &names, &resolved, sorted),
                None => Ok(false),
            },
        );
        let rows_written = rows_written
            .map_err(|message| BulkError::Storage(WriteError::Storage { message, unknown_outcome: false }))?;
        next.revision = head.revision + 1;
        let after = Arc::new(next);
        let change = Change::Import { before: &head, after: &after, load: &resolved, rows_written };
        if let Err(e) = pv.commit(w, change) {
            if rows_written {
                if let Some(j) = &journal {
                    j.abort_import();
                }
            }
            return Err(BulkError::Storage(e));
        }
        Ok(BulkLoad { revision: after.revision, relationships: read })
    }
}

impl Purview {
    /// Starts a streaming bulk load (see [`BulkLoader`]); holds the writer lock until it is
    /// finished or dropped. Needs the index engine.
    pub fn bulk_loader(&self) -> Result<BulkLoader<'_>, WriteError> {
        let (w, head) = self.lock_index()?;
        let next = (*head).clone();
        let ops = has_constraints(&head.schema).then(Vec::new);
        let recent = vec![None; head.schema.types.len()];
        let fresh = head.is_empty() && (0..head.schema.types.len() as u32).all(|t| head.object_count(t) == 0);
        let encoder = if fresh { self.journal().and_then(|j| j.row_encoder()) } else { None };
        Ok(BulkLoader {
            pv: self,
            w,
            head,
            next,
            resolved: Resolved::default(),
            ops,
            read: 0,
            recent,
            shapes: Vec::new(),
            encoder,
            runs: Vec::new(),
            sent: 0,
            run: RUN,
            interning: None,
            spare: Vec::new(),
            lost: false,
            scratch: Scratch::default(),
            alone: false,
            workers: None,
        })
    }

    /// Loads relationships as one atomic revision (each one touched: written, or its condition
    /// and times replaced), streaming: items are validated as they come, exactly as a write
    /// validates them, and the index is built in one pass. On the first bad item nothing is
    /// written, and the error names its position. Needs the index engine.
    ///
    /// Items may be owned or borrowed (`rels.iter().map(Ok)`): a loader of relationships the
    /// caller keeps needs no copy of them.
    pub fn bulk_load<R: std::borrow::Borrow<Relationship>, E>(
        &self,
        items: impl IntoIterator<Item = Result<R, E>>,
    ) -> Result<BulkLoad, BulkError<E>> {
        let mut loader = self.bulk_loader().map_err(BulkError::Storage)?;
        for (index, item) in items.into_iter().enumerate() {
            let r = item.map_err(|error| BulkError::Source { index, error })?;
            loader.push(r.borrow()).map_err(|error| BulkError::Invalid { index, error: Box::new(error) })?;
        }
        loader.finish()
    }

    /// Replaces the schema. Every stored relationship is validated against the new schema (its
    /// relation still exists and is a relation, its subject type, condition and expiration are
    /// still allowed, and the new schema's constraints hold); if any does not fit, nothing
    /// changes and the error lists each reason with how many relationships it concerns.
    pub fn set_schema(
        &self,
        format: SchemaFormat,
        name: &str,
        text: &str,
    ) -> Result<Revision, SchemaChangeError> {
        let schema = Arc::new(compile_schema_as(format, name, text)?);
        let (w, head) = self.lock_index().map_err(SchemaChangeError::Storage)?;
        let next = rebuild_under(&head, schema)?;
        let after = Arc::new(next);
        self.commit(w, Change::Schema { before: &head, after: &after, text, format })
            .map_err(SchemaChangeError::Storage)?;
        Ok(after.revision)
    }
}

impl Purview {
    /// Whether [`Purview::set_schema`] would accept this schema on the current relationships:
    /// the same checks, and nothing changes (`purview store schema --dry-run`).
    pub fn check_schema_change(
        &self,
        format: SchemaFormat,
        name: &str,
        text: &str,
    ) -> Result<(), SchemaChangeError> {
        let schema = Arc::new(compile_schema_as(format, name, text)?);
        let (_unchanged, head) = self.lock_index().map_err(SchemaChangeError::Storage)?;
        rebuild_under(&head, schema).map(|_| ())
    }
}

/// `head`'s relationships re-validated and rebuilt under `schema`, at the next revision.
pub(crate) fn rebuild_under(head: &IndexData, schema: Arc<Schema>) -> Result<IndexData, SchemaChangeError> {
    let mut next = IndexData::new(schema.clone());
    // Keep object ids where the type survives, so names and ids stay stable across the change.
    for (new_ty, t) in schema.types.iter().enumerate() {
        if let Some(old_ty) = head.schema.type_id(&t.name) {
            for id in 0..head.object_count(old_ty) {
                next.intern(new_ty as u32, &head.names().name(old_ty, id));
            }
        }
    }
    let mut blockers: BTreeMap<String, Blocker> = BTreeMap::new();
    let mut resolved = Resolved::default();
    let mut ops = Vec::new();
    let constrained = has_constraints(&schema);
    head.for_each_tuple(|o, r, s, a| {
        let rel = relationship_of(head, o, r, s, a);
        match crate::store::write::resolve(&schema, &mut next, &rel) {
            Ok((o, r, s, a)) => {
                resolved.push((o, r, s), a);
                if constrained {
                    ops.push(WriteOp::Touch(rel));
                }
            }
            Err(e) => {
                let reason = blocker_reason(&e);
                let b = blockers.entry(reason.clone()).or_insert(Blocker {
                    reason,
                    count: 0,
                    example: rel.to_string(),
                });
                b.count += 1;
            }
        }
    });
    if blockers.is_empty() && constrained {
        let mut check = IndexData::new(schema.clone());
        if let Err(e) = apply_batch(&schema, &mut check, &ops) {
            let example = match &e {
                WriteError::Constraint { relationship, .. } => relationship.clone(),
                _ => String::new(),
            };
            let reason = match &e {
                WriteError::Constraint { constraint, reason, .. } => {
                    format!("constraint `{constraint}`: {reason}")
                }
                other => other.to_string(),
            };
            blockers.insert(reason.clone(), Blocker { reason, count: 1, example });
        }
    }
    if !blockers.is_empty() {
        return Err(SchemaChangeError::Blocked(blockers.into_values().collect()));
    }
    resolved.build_into(&mut next);
    next.revision = head.revision + 1;
    Ok(next)
}

/// The reason of a write error without the relationship it names, so that errors of one kind
/// group together.
fn blocker_reason(e: &WriteError) -> String {
    match e {
        WriteError::UnknownType { name, .. } => format!("type `{name}` is removed"),
        WriteError::UnknownRelation { ty, relation, .. } => format!("relation `{ty}#{relation}` is removed"),
        WriteError::Permission { ty, relation, .. } => {
            format!("`{ty}#{relation}` becomes a permission, which stores nothing")
        }
        WriteError::SubjectNotAllowed { ty, relation, reason, .. } => {
            format!("`{ty}#{relation}`: {reason}")
        }
        WriteError::InvalidCondition { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Which op of `ops` an error names (the last one with that relationship text).
fn blame(e: &WriteError, ops: &[WriteOp]) -> usize {
    let Some(named) = e.relationship() else { return 0 };
    ops.iter().rposition(|op| op.relationship().to_string() == named).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "type user {}\ntype group { relation member: user | group#member }\ntype doc { relation viewer: user | group#member\n permission view = viewer }";

    #[test]
    fn bulk_load_matches_writes() {
        let text = "group:g#member@user:a\ndoc:d#viewer@group:g#member\ndoc:e#viewer@user:b";
        let pv = Purview::from_schema_text("s", SCHEMA)
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let rels = crate::api::parse_relationships(text).unwrap_or_default();
        let loaded = pv.bulk_load(rels.into_iter().map(Ok::<_, String>)).map_err(|e| e.to_string());
        assert_eq!(loaded.map(|l| l.relationships), Ok(3));
        let written = Purview::from_schema_text("s", SCHEMA).unwrap_or_else(|e| panic!("{e}"));
        assert!(written.write_text(text).is_ok());
        let a = pv.snapshot().relationship_lines();
        assert_eq!(a, written.snapshot().relationship_lines());
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn bad_item_writes_nothing() {
        let pv = Purview::from_schema_text("s", SCHEMA).unwrap_or_else(|e| panic!("{e}"));
        let items =
            vec![Relationship::parse("doc:d#viewer@user:a"), Relationship::parse("doc:d#viewr@user:a")];
        match pv.bulk_load(items) {
            Err(BulkError::Invalid { index: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(pv.revision(), 0);
        assert!(pv.snapshot().relationship_lines().is_empty());
    }

    #[test]
    fn schema_change_refused_when_it_orphans() {
        let pv = Purview::from_schema_text("s", SCHEMA).unwrap_or_else(|e| panic!("{e}"));
        assert!(pv
            .write_text("doc:d#viewer@user:a\ndoc:e#viewer@user:b\ndoc:e#viewer@group:g#member")
            .is_ok());
        let narrower = "type user {}\ntype group { relation member: user | group#member }\ntype doc { relation viewer: user\n permission view = viewer }";
        match pv.set_schema(SchemaFormat::Purview, "new", narrower) {
            Err(SchemaChangeError::Blocked(b)) => {
                assert_eq!(b.len(), 1, "{b:?}");
                assert_eq!(b[0].count, 1);
            }
            other => panic!("{other:?}"),
        }
        let wider = "type user {}\ntype team {}\ntype group { relation member: user | group#member }\ntype doc { relation owner: user\n relation viewer: user | group#member\n permission view = viewer + owner }";
        assert_eq!(pv.set_schema(SchemaFormat::Purview, "new", wider).map_err(|e| e.to_string()), Ok(2));
        assert_eq!(pv.snapshot().relationship_lines().len(), 3);
        assert!(pv.schema().type_id("team").is_some());
    }
}
