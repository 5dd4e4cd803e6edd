//! [`Purview`]: the writer side of an embedded Purview, shared by every thread of a host.
//!
//! A `Purview` is a handle (cloning it gives another handle on the same data). Writes are
//! serialized by one lock held only while a batch is validated and applied to a copy of the
//! latest state (microseconds); readers take the published [`View`] without any lock a writer
//! holds. A durable Purview ([`Purview::with_journal`], opened by [`crate::storage`]) hands each
//! validated batch to its [`Journal`] before publishing it: the batch is *staged* under the
//! writer lock (in revision order), then the writer waits, without the lock, until the journal
//! has made it durable. Batches staged while another writer waits are made durable by the same
//! sync (group commit), and only then become visible to readers and return.

use super::bulk::Resolved;
use super::feed::Feed;
use super::{LoadError, SchemaError, View};
use crate::eval::{EvalError, EvalOptions};
use crate::index::{Index, IndexData};
use crate::schema::Schema;
use crate::store::{Key, Relationship, Revision, Store, TupleAttrs, TupleStore, WriteError, WriteOp};
use crate::syntax::formats::SchemaFormat;
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{compile_schema, parse_relationships, Engine};

/// A place in a journal's queue of staged changes: [`Journal::wait`] returns once it is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// A validated change, handed to the [`Journal`] before it is published.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// A write batch that made `revision`: what it changed (see [`BatchChanges`]). `after` is
    /// the state after it or after a later batch applied with it (a write group is applied to
    /// one copy and published once): a journal reads only names from it, which later batches
    /// never change.
    Batch { after: &'a Arc<IndexData>, revision: Revision, batch: &'a BatchChanges },
    /// A bulk load: the relationships of `load` were touched (written, or their attributes
    /// replaced). `rows_written` when [`Journal::begin_import`] already wrote them.
    Import { before: &'a Arc<IndexData>, after: &'a Arc<IndexData>, load: &'a Resolved, rows_written: bool },
    /// A new schema; `after` is the whole index rebuilt under it.
    Schema { before: &'a Arc<IndexData>, after: &'a Arc<IndexData>, text: &'a str, format: SchemaFormat },
}

/// What one write batch changed, found while it was applied: the net change of each
/// relationship it named, and the objects first named by it (ids from `names_from[ty]` to
/// `names_to[ty]` for each type).
#[derive(Debug, Clone, Default)]
pub struct BatchChanges {
    /// Each relationship whose state differs before and after the batch (batch order).
    pub rows: Vec<RowDelta>,
    pub names_from: Vec<u32>,
    pub names_to: Vec<u32>,
}

/// A relationship's state before and after a batch (`None`: absent); the two differ.
#[derive(Debug, Clone, PartialEq)]
pub struct RowDelta {
    pub key: Key,
    pub before: Option<TupleAttrs>,
    pub after: Option<TupleAttrs>,
}

impl Change<'_> {
    /// The revision the change makes.
    pub fn revision(&self) -> Revision {
        match self {
            Change::Batch { revision, .. } => *revision,
            Change::Import { after, .. } | Change::Schema { after, .. } => after.revision,
        }
    }

    /// The state after the change (for a [`Change::Batch`], possibly a later one: see there).
    pub fn after(&self) -> &Arc<IndexData> {
        match self {
            Change::Batch { after, .. } | Change::Import { after, .. } | Change::Schema { after, .. } => {
                after
            }
        }
    }
}

/// Encodes a relationship's key as the bytes a journal sorts its rows by.
pub type RowEncoder = Arc<dyn Fn(&Key) -> [u8; 24] + Send + Sync>;

/// What makes a [`Purview`] durable: implemented by [`crate::storage`]'s stores.
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// Queues a change for durability. Called under the writer lock, in revision order, with
    /// revisions one apart. On error nothing of the change was queued.
    fn stage(&self, change: Change<'_>) -> Result<Ticket, String>;
    /// Returns once the change of `ticket` is durable. One sync covers every change staged so
    /// far. An error means the outcome of the change is unknown; the journal then refuses all
    /// further changes.
    fn wait(&self, ticket: Ticket) -> Result<(), String>;
    /// The index as it was at `revision` (at most the head's).
    fn view_at(&self, head: &Arc<IndexData>, revision: Revision) -> Result<Arc<IndexData>, EvalError>;
    /// Called after a change was published: a chance to write a snapshot in the background.
    fn published(&self, _head: &Arc<IndexData>) {}
    /// Called by a bulk load while the index is being built (in parallel): the journal may write
    /// the load's rows now, returning `true`; `names` is the index with every name of the load
    /// interned. The load then comes to [`Journal::stage`] with `rows_written`. If the load is
    /// not staged afterwards, the journal must forget the rows (see `abort_import`).
    fn begin_import(
        &self,
        _before: &Arc<IndexData>,
        _names: &IndexData,
        _load: &Resolved,
        _runs: Vec<Vec<[u8; 24]>>,
    ) -> Result<bool, String> {
        Ok(false)
    }
    /// How the journal orders the rows of an import (see [`Journal::begin_import`]): a bulk
    /// load into an empty store encodes and sorts its plain relationships with it in runs, on
    /// another thread while it reads, and hands the sorted runs to `begin_import`.
    fn row_encoder(&self) -> Option<RowEncoder> {
        None
    }
    /// Forgets rows written by `begin_import` for a load that was not staged.
    fn abort_import(&self) {}
    /// What the revisions after `after` (up to `until`, at most the head's) changed, from the
    /// journal's own log: lets a change feed reach back before the process started. `None` when
    /// the journal keeps no such log.
    fn changes_between(
        &self,
        _head: &Arc<IndexData>,
        _after: Revision,
        _until: Revision,
    ) -> Option<Result<Vec<super::ChangeSet>, String>> {
        None
    }
    /// The store's id, which names its data (see [`Purview::id`]).
    fn store_id(&self) -> Option<[u8; 16]> {
        None
    }
    /// Called under the writer lock before a change is computed from `head`. A journal shared
    /// with other processes (a database several nodes write to) takes its cluster-wide write
    /// lock here, until the change is durable or [`Journal::abandon`] is called, and returns
    /// what the others committed after `head`: that becomes the head (it is committed already,
    /// so it is published at once) and the change is computed from it.
    fn begin(&self, _head: &Arc<IndexData>) -> Result<Option<Caught>, String> {
        Ok(None)
    }
    /// Ends a [`Journal::begin`] after which nothing was staged (a no-op once something was:
    /// [`Journal::wait`] ends it then). Called under the writer lock.
    fn abandon(&self) {}
    /// What other processes committed after `head` (without taking the write lock): how a
    /// follower keeps up. `Ok(None)` when nothing is new.
    fn catch_up(&self, _head: &Arc<IndexData>) -> Result<Option<Caught>, String> {
        Ok(None)
    }
    /// The latest revision committed by any process sharing the journal, when others may
    /// write to it: what a fully consistent read must see. `None` for a journal only this
    /// process writes (its published revision is the latest).
    fn committed_revision(&self) -> Option<Result<Revision, String>> {
        None
    }
    /// Whether other processes write to the journal too (a shared database). Such a journal
    /// stays usable after a failed [`Journal::wait`]: the next [`Journal::begin`] finds out what
    /// was committed. A journal only this process writes (a local store) refuses every further
    /// change after a failed sync.
    fn is_shared(&self) -> bool {
        false
    }
    /// The text of the latest schema as written, for a shared journal (another process may
    /// have replaced it).
    fn schema_text(&self) -> Option<Result<String, String>> {
        None
    }
}

/// Revisions committed by other processes, as a journal read them: the new head and what each
/// revision changed (for the change feed).
#[derive(Debug, Clone)]
pub struct Caught {
    pub head: Arc<IndexData>,
    pub changes: Vec<super::ChangeSet>,
}

/// The writer lock, taken for a write: on a shared journal it holds the journal's write lock
/// too (see [`Journal::begin`]), given back when the guard goes unless a change was staged.
pub(crate) struct WriterGuard<'a> {
    guard: MutexGuard<'a, Writer>,
    journal: Option<&'a Arc<dyn Journal>>,
}

impl std::ops::Deref for WriterGuard<'_> {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        &self.guard
    }
}

impl std::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut Writer {
        &mut self.guard
    }
}

impl Drop for WriterGuard<'_> {
    fn drop(&mut self) {
        if let Some(j) = self.journal {
            j.abandon();
        }
    }
}

/// A schema and its relationships: the writer side of an embedded Purview. Cloning gives another
/// handle on the same data (use [`Purview::fork`] for an independent copy).
#[derive(Debug, Clone)]
pub struct Purview {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// What readers see: the latest durable revision.
    published: ArcSwap<View>,
    writer: Mutex<Writer>,
    journal: Option<Arc<dyn Journal>>,
    /// Durable writes waiting for a combiner (see [`Purview::write`]).
    requests: Mutex<Vec<Arc<Request>>>,
    /// What recent revisions changed, when a host asked for it (see `feed.rs`).
    feed: Mutex<Feed>,
    /// Names this Purview's data: the store's id, or a random one for an in-memory Purview.
    id: [u8; 16],
}

/// One durable write, waiting for a combiner to apply it and for its sync.
#[derive(Debug)]
struct Request {
    ops: Vec<WriteOp>,
    thread: std::thread::Thread,
    result: Mutex<Option<Result<Revision, WriteError>>>,
}

/// The error of a durable or bulk operation on a Purview answered by the reference engine.
fn no_index() -> WriteError {
    WriteError::Storage { message: "this needs the index engine".into(), unknown_outcome: false }
}

/// `ops` applied to a copy of `before`: the next revision, and what the batch changed.
fn apply(before: &Arc<IndexData>, ops: &[WriteOp]) -> Result<(Arc<IndexData>, BatchChanges), WriteError> {
    let mut next = (**before).clone();
    let batch = apply_in_place(&mut next, ops)?;
    Ok((Arc::new(next), batch))
}

/// Applies `ops` to `work` itself as its next revision and returns what they changed. On error
/// `work` may be partly changed (and must be thrown away).
fn apply_in_place(work: &mut IndexData, ops: &[WriteOp]) -> Result<BatchChanges, WriteError> {
    let schema = work.schema.clone();
    let counts = |work: &IndexData| (0..schema.types.len() as u32).map(|ty| work.object_count(ty)).collect();
    let names_from = counts(work);
    let priors = crate::store::apply_batch_logged(&schema, work, ops)?;
    let rows = priors
        .into_iter()
        .filter_map(|(key, before)| {
            let after = work.get(key.0, key.1, key.2);
            (before != after).then_some(RowDelta { key, before, after })
        })
        .collect();
    work.revision += 1;
    Ok(BatchChanges { rows, names_from, names_to: counts(work) })
}

/// The state `base` with the `ops` of each batch applied in turn, on one copy: the batches of a
/// write group that passed on their own, applied again after one of the group failed part-way.
fn reapply<'o>(base: &IndexData, ops: impl Iterator<Item = &'o [WriteOp]>) -> Result<IndexData, WriteError> {
    let mut work = base.clone();
    for ops in ops {
        crate::store::apply_batch(&base.schema, &mut work, ops)?;
        work.revision += 1;
    }
    Ok(work)
}

fn lock_of<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

#[derive(Debug)]
pub(crate) struct Writer {
    /// The latest validated state; ahead of `published` while batches wait for their sync.
    head: Head,
    /// Set when the journal failed: further writes are refused.
    failed: Option<String>,
}

impl Writer {
    pub(crate) fn head_revision(&self) -> Revision {
        match &self.head {
            Head::Reference(s) => s.revision(),
            Head::Index(i) => i.revision,
        }
    }
}

/// A random id (not cryptographic: it tells stores and processes apart).
pub(crate) fn random_id() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; 16];
    for (i, half) in out.chunks_mut(8).enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

#[derive(Debug, Clone)]
enum Head {
    Reference(Store),
    Index(Arc<IndexData>),
}

impl Head {
    fn view(&self) -> View {
        match self {
            Head::Reference(s) => View::Reference(s.snapshot()),
            Head::Index(i) => View::Index(i.clone()),
        }
    }
}

/// A handle that does not keep a [`Purview`] alive (see [`Purview::downgrade`]).
#[derive(Debug, Clone)]
pub struct WeakPurview(std::sync::Weak<Shared>);

impl WeakPurview {
    pub fn upgrade(&self) -> Option<Purview> {
        self.0.upgrade().map(|shared| Purview { shared })
    }
}

impl Purview {
    /// A handle for background work that must end when the last `Purview` handle goes.
    pub fn downgrade(&self) -> WeakPurview {
        WeakPurview(Arc::downgrade(&self.shared))
    }

    pub fn new(schema: Schema) -> Self {
        Purview::with_engine(schema, Engine::default())
    }

    pub fn with_engine(schema: Schema, engine: Engine) -> Self {
        let schema = Arc::new(schema);
        let head = match engine {
            Engine::Reference => Head::Reference(Store::new(schema)),
            Engine::Index => Head::Index(Index::new(schema).snapshot()),
        };
        Purview::from_head(head, None)
    }

    /// An index-backed Purview starting at `head`, whose changes go through `journal` before
    /// they are published (see [`crate::storage`]).
    pub fn with_journal(head: Arc<IndexData>, journal: Arc<dyn Journal>) -> Self {
        Purview::from_head(Head::Index(head), Some(journal))
    }

    fn from_head(head: Head, journal: Option<Arc<dyn Journal>>) -> Self {
        let published = ArcSwap::from_pointee(head.view());
        let id = journal.as_ref().and_then(|j| j.store_id()).unwrap_or_else(random_id);
        Purview {
            shared: Arc::new(Shared {
                published,
                writer: Mutex::new(Writer { head, failed: None }),
                journal,
                requests: Mutex::new(Vec::new()),
                feed: Mutex::new(Feed::default()),
                id,
            }),
        }
    }

    /// Names the data behind this handle: a durable store's id (the same across restarts), or
    /// an id drawn at random for an in-memory Purview. Tokens carry it, so that a revision of one
    /// store is never taken for a revision of another.
    pub fn id(&self) -> [u8; 16] {
        self.shared.id
    }

    pub(crate) fn feed(&self) -> MutexGuard<'_, Feed> {
        lock_of(&self.shared.feed)
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.lock()
    }

    /// The writer lock, for a write: refused once the journal failed; on a shared journal,
    /// holds its write lock too, and the head is first brought up to what other processes
    /// committed (see [`Journal::begin`]).
    pub(crate) fn for_write<'a>(
        &'a self,
        guard: MutexGuard<'a, Writer>,
    ) -> Result<WriterGuard<'a>, WriteError> {
        let mut w = WriterGuard { guard, journal: None };
        if let Some(reason) = &w.failed {
            return Err(WriteError::Storage { message: reason.clone(), unknown_outcome: false });
        }
        let Some(journal) = &self.shared.journal else { return Ok(w) };
        let mut retried = false;
        loop {
            let Head::Index(head) = &w.head else { return Ok(w) };
            let head = head.clone();
            match journal.begin(&head) {
                Ok(caught) => {
                    w.journal = Some(journal);
                    if let Some(c) = caught {
                        self.take_caught(&mut w, c);
                    }
                    return Ok(w);
                }
                Err(message) => {
                    // The journal holds nothing now. A head ahead of what readers see is a
                    // write whose commit failed (its outcome unknown): go back to what is known
                    // committed, and try once more from there.
                    self.resync(&mut w);
                    let moved = matches!(&w.head, Head::Index(h) if h.revision != head.revision);
                    if retried || !moved {
                        return Err(WriteError::Storage { message, unknown_outcome: false });
                    }
                    retried = true;
                }
            }
        }
    }

    /// Makes revisions other processes committed the head, and publishes them.
    fn take_caught(&self, w: &mut Writer, c: Caught) {
        {
            let mut feed = self.feed();
            for set in c.changes {
                feed.record_set(set);
            }
        }
        w.head = Head::Index(c.head.clone());
        self.publish(&c.head);
        if let Some(j) = &self.shared.journal {
            j.published(&c.head);
        }
    }

    /// Brings this Purview up to what other processes sharing its journal committed (a
    /// follower calls it when told of a commit, or from time to time); returns the revision
    /// readers see. A no-op on a journal only this process writes, and while a write of this
    /// process is being committed (that write brings the head up itself).
    pub fn follow(&self) -> Result<Revision, WriteError> {
        let Some(journal) = &self.shared.journal else { return Ok(self.revision()) };
        let mut w = self.lock();
        let Head::Index(head) = &w.head else { return Ok(self.revision()) };
        let head = head.clone();
        if head.revision != self.revision() || w.failed.is_some() {
            return Ok(self.revision());
        }
        match journal.catch_up(&head) {
            Ok(Some(c)) => self.take_caught(&mut w, c),
            Ok(None) => {}
            Err(message) => return Err(WriteError::Storage { message, unknown_outcome: false }),
        }
        Ok(self.revision())
    }

    /// The latest committed state. On a Purview sharing its journal with other processes
    /// (see [`Journal::committed_revision`]), asks the journal for the latest revision and
    /// waits (at most `within`) until this process has caught up with it.
    pub fn snapshot_latest(&self, within: std::time::Duration) -> Result<View, WriteError> {
        let Some(latest) = self.shared.journal.as_ref().and_then(|j| j.committed_revision()) else {
            return Ok(self.snapshot());
        };
        let latest = latest.map_err(|message| WriteError::Storage { message, unknown_outcome: false })?;
        let until = std::time::Instant::now() + within;
        loop {
            let view = self.snapshot();
            if view.revision() >= latest {
                return Ok(view);
            }
            self.follow()?;
            if self.revision() >= latest {
                continue;
            }
            if std::time::Instant::now() >= until {
                return Err(WriteError::Storage {
                    message: format!(
                        "this node has not caught up with revision {latest} (it is at {})",
                        self.revision()
                    ),
                    unknown_outcome: false,
                });
            }
            // A write of this process is being committed; it publishes soon.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Applies the batch `make_ops` computes from the latest state, under the writer lock (so
    /// nothing changes between reading the state and writing): the way to write something that
    /// depends on what is stored (preconditions, deletes by filter). An empty batch writes
    /// nothing and returns the current revision.
    pub(crate) fn write_computed<E: From<WriteError>>(
        &self,
        make_ops: impl FnOnce(&Arc<IndexData>) -> Result<Vec<WriteOp>, E>,
    ) -> Result<Revision, E> {
        let w = self.for_write(self.lock())?;
        let before = match &w.head {
            Head::Index(i) => i.clone(),
            Head::Reference(_) => return Err(E::from(no_index())),
        };
        let ops = make_ops(&before)?;
        if ops.is_empty() {
            drop(w);
            // The head may be ahead of what readers see while a sync is under way.
            return Ok(before.revision);
        }
        let (after, batch) = apply(&before, &ops)?;
        self.commit(w, Change::Batch { after: &after, revision: after.revision, batch: &batch })
            .map_err(E::from)?;
        Ok(after.revision)
    }

    pub fn from_schema_text(name: &str, text: &str) -> Result<Self, SchemaError> {
        Ok(Purview::new(compile_schema(name, text)?))
    }

    /// An independent in-memory copy of the current state (never durable): writes to the copy
    /// do not reach this Purview, nor its store.
    pub fn fork(&self) -> Purview {
        let head = match self.snapshot() {
            View::Reference(s) => Head::Reference(Store::from_snapshot(s)),
            View::Index(i) => Head::Index(i),
        };
        Purview::from_head(head, None)
    }

    pub fn engine(&self) -> Engine {
        match self.snapshot() {
            View::Reference(_) => Engine::Reference,
            View::Index(_) => Engine::Index,
        }
    }

    /// Whether other processes (nodes on a shared database) write to the same data.
    pub fn is_shared(&self) -> bool {
        self.shared.journal.as_ref().is_some_and(|j| j.is_shared())
    }

    /// The latest schema's text as written, when other processes may have replaced it (see
    /// [`Purview::is_shared`]); `None` otherwise.
    pub fn shared_schema_text(&self) -> Option<Result<String, String>> {
        self.shared.journal.as_ref().and_then(|j| j.schema_text())
    }

    /// Whether writes are made durable before they return.
    pub fn is_durable(&self) -> bool {
        self.shared.journal.is_some()
    }

    pub fn schema(&self) -> Arc<Schema> {
        self.snapshot().schema().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        match self.shared.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Applies a batch atomically and returns the new revision. A durable Purview returns only
    /// once the batch is durable; concurrent writers share syncs.
    pub fn write(&self, ops: &[WriteOp]) -> Result<Revision, WriteError> {
        if self.shared.journal.is_some() {
            return self.write_combined(ops);
        }
        {
            let mut w = self.lock();
            if let Head::Reference(store) = &mut w.head {
                let revision = store.write(ops)?;
                let view = w.head.view();
                self.shared.published.store(Arc::new(view));
                return Ok(revision);
            }
        }
        self.write_with(ops, |_, _| Ok::<(), WriteError>(())).map(|(r, ())| r)
    }

    /// A durable write by *flat combining*: the writer queues its batch; whichever writer gets
    /// the writer lock applies and stages every queued batch in order (each validated on its
    /// own: a bad batch fails alone), releases the lock, leads one sync for all of them, then
    /// publishes and hands each writer its result. The others sleep once and wake once, so many
    /// writers on few cores spend their time writing, not switching.
    fn write_combined(&self, ops: &[WriteOp]) -> Result<Revision, WriteError> {
        let me =
            Arc::new(Request { ops: ops.to_vec(), thread: std::thread::current(), result: Mutex::new(None) });
        lock_of(&self.shared.requests).push(me.clone());
        loop {
            if let Some(r) = lock_of(&me.result).take() {
                return r;
            }
            let Ok(w) = self.shared.writer.try_lock() else {
                // A combiner is at work; it (or the next one) wakes this writer.
                std::thread::park_timeout(std::time::Duration::from_millis(2));
                continue;
            };
            if lock_of(&self.shared.requests).is_empty() {
                // This writer's batch was taken by a combiner that is now syncing it (it released
                // the writer lock first): sleep until it hands over the result, instead of
                // spinning on the free lock and taking the CPU the combiner needs.
                drop(w);
                std::thread::park_timeout(std::time::Duration::from_millis(2));
                continue;
            }
            // On a shared journal `for_write` may wait for the previous commit: the batch is
            // taken after it, so that it holds every write queued meanwhile.
            let w = self.for_write(w);
            let batch = std::mem::take(&mut *lock_of(&self.shared.requests));
            match w {
                Ok(w) => self.combine(w, &batch),
                Err(e) => {
                    for r in &batch {
                        *lock_of(&r.result) = Some(Err(e.clone()));
                        r.thread.unpark();
                    }
                }
            }
            // Someone who queued meanwhile leads the next round.
            if let Some(next) = lock_of(&self.shared.requests).first() {
                next.thread.unpark();
            }
        }
    }

    /// Applies, stages, syncs and publishes `group` (see [`Purview::write_combined`]). The
    /// batches are applied in turn to one copy of the head, each validated on its own; the
    /// copy is published once, when the sync has made them all durable.
    fn combine(&self, mut w: WriterGuard<'_>, group: &[Arc<Request>]) {
        let finish = |r: &Request, result: Result<Revision, WriteError>| {
            *lock_of(&r.result) = Some(result);
            r.thread.unpark();
        };
        let Some(journal) = self.shared.journal.clone() else {
            group.iter().for_each(|r| finish(r, Err(no_index())));
            return;
        };
        if let Some(reason) = &w.failed {
            let e = WriteError::Storage { message: reason.clone(), unknown_outcome: false };
            group.iter().for_each(|r| finish(r, Err(e.clone())));
            return;
        }
        let Head::Index(base) = &w.head else {
            group.iter().for_each(|r| finish(r, Err(no_index())));
            return;
        };
        let base = base.clone();
        // Apply: a batch that fails may have changed the copy part-way, so the copy is made
        // again from the head with the batches that passed (rare: a refused write).
        let mut work = (*base).clone();
        let mut passed: Vec<(&Arc<Request>, BatchChanges)> = Vec::with_capacity(group.len());
        for r in group {
            match apply_in_place(&mut work, &r.ops) {
                Ok(b) => passed.push((r, b)),
                Err(e) => {
                    finish(r, Err(e));
                    match reapply(&base, passed.iter().map(|(r, _)| &r.ops[..])) {
                        Ok(again) => work = again,
                        Err(e) => {
                            // Cannot happen (the same batches on the same state); refuse them
                            // rather than publish a state that is not theirs.
                            passed.drain(..).for_each(|(r, _)| finish(r, Err(e.clone())));
                            work = (*base).clone();
                        }
                    }
                }
            }
        }
        if passed.is_empty() {
            return;
        }
        let mut after = Arc::new(work);
        // Stage, in revision order. A journal that refuses one refuses what follows it too (it
        // was applied on top): the head becomes the state of the batches staged before it.
        let mut staged = 0;
        let mut last = None;
        let mut refused = None;
        for (i, (_, b)) in passed.iter().enumerate() {
            let change = Change::Batch { after: &after, revision: base.revision + i as u64 + 1, batch: b };
            match journal.stage(change) {
                Ok(ticket) => {
                    self.feed().record(&change);
                    staged += 1;
                    last = Some(ticket);
                }
                Err(message) => {
                    refused = Some(message);
                    break;
                }
            }
        }
        if let Some(message) = refused {
            let e = WriteError::Storage { message, unknown_outcome: false };
            passed[staged..].iter().for_each(|(r, _)| finish(r, Err(e.clone())));
            passed.truncate(staged);
            match reapply(&base, passed.iter().map(|(r, _)| &r.ops[..])) {
                Ok(again) => after = Arc::new(again),
                Err(e) => {
                    // Cannot happen; the staged batches' outcome is then unknown.
                    let e = WriteError::Storage { message: e.to_string(), unknown_outcome: true };
                    passed.iter().for_each(|(r, _)| finish(r, Err(e.clone())));
                    w.failed = Some(e.to_string());
                    return;
                }
            }
        }
        let Some(ticket) = last else { return };
        w.head = Head::Index(after.clone());
        drop(w);
        let settled = self.settle(&*journal, ticket, &after);
        for (i, (r, _)) in passed.iter().enumerate() {
            finish(r, settled.clone().map(|()| base.revision + i as u64 + 1));
        }
    }

    /// Applies a batch like [`Purview::write`]; `inspect` sees the states before and after it
    /// (before anything is published) and may refuse it. Needs the index engine for `inspect`
    /// to be called with both states; on the reference engine it is not called.
    pub(crate) fn write_with<T, E: From<WriteError>>(
        &self,
        ops: &[WriteOp],
        inspect: impl FnOnce(&Arc<IndexData>, &Arc<IndexData>) -> Result<T, E>,
    ) -> Result<(Revision, T), E> {
        let w = self.for_write(self.lock())?;
        let before = match &w.head {
            Head::Index(i) => i.clone(),
            Head::Reference(_) => return Err(E::from(no_index())),
        };
        let (after, batch) = apply(&before, ops)?;
        let extra = inspect(&before, &after)?;
        self.commit(w, Change::Batch { after: &after, revision: after.revision, batch: &batch })
            .map_err(E::from)?;
        Ok((after.revision, extra))
    }

    /// Stages `change` (whose `after` becomes the head), waits until it is durable and
    /// publishes it. Takes the writer lock guard and releases it before waiting.
    pub(crate) fn commit(&self, mut w: WriterGuard<'_>, change: Change<'_>) -> Result<(), WriteError> {
        let after = change.after().clone();
        let Some(journal) = &self.shared.journal else {
            self.feed().record(&change);
            w.head = Head::Index(after.clone());
            self.publish(&after);
            return Ok(());
        };
        let mut feed = self.feed();
        let ticket = journal
            .stage(change)
            .map_err(|message| WriteError::Storage { message, unknown_outcome: false })?;
        feed.record(&change);
        drop(feed);
        w.head = Head::Index(after.clone());
        drop(w);
        self.settle(&**journal, ticket, &after)
    }

    /// Waits until `ticket` is durable, then publishes `after`; a failed sync fails the store
    /// (see [`Purview::fail`]) and leaves the outcome of every staged change unknown.
    fn settle(
        &self,
        journal: &dyn Journal,
        ticket: Ticket,
        after: &Arc<IndexData>,
    ) -> Result<(), WriteError> {
        match journal.wait(ticket) {
            Ok(()) => {
                self.publish(after);
                journal.published(after);
                Ok(())
            }
            Err(message) => {
                let mut w = self.lock();
                if !journal.is_shared() && w.failed.is_none() {
                    w.failed = Some(message.clone());
                }
                self.resync(&mut w);
                Err(WriteError::Storage { message, unknown_outcome: true })
            }
        }
    }

    /// After a failed sync: forgets every staged state (the head goes back to what readers
    /// see). A journal that does not recover from a failure (a local store) also refuses every
    /// further write, with the failure's message.
    fn resync(&self, w: &mut Writer) {
        if let View::Index(i) = &**self.shared.published.load() {
            w.head = Head::Index(i.clone());
            self.feed().forget_after(i.revision);
        }
    }

    /// Makes `after` what readers see, unless a later revision already is.
    fn publish(&self, after: &Arc<IndexData>) {
        let previous = self.shared.published.rcu(|current| {
            if current.revision() >= after.revision {
                current.clone()
            } else {
                Arc::new(View::Index(after.clone()))
            }
        });
        if previous.revision() < after.revision {
            for listener in self.feed().listeners() {
                listener(after.revision);
            }
        }
    }

    /// Applies a batch like [`Purview::write`] and returns, for each watched permission, the
    /// (subject, object) pairs it added and removed, sorted by permission, object and subject
    /// (see [`crate::materialize::delta`]). All or nothing: if the batch is invalid or the deltas
    /// cannot be computed, nothing is written. Needs the index engine.
    pub fn write_with_deltas(
        &self,
        ops: &[WriteOp],
        watched: &[crate::materialize::Target],
        opts: &EvalOptions,
    ) -> Result<(Revision, Vec<crate::materialize::Delta>), crate::materialize::MaterializeError> {
        use crate::materialize::{delta, Partition, Strategy};
        if self.engine() != Engine::Index {
            return Err(crate::materialize::MaterializeError::NeedsIndex);
        }
        self.write_with(ops, |before, after| {
            let expanded = crate::store::expand_replacements(&before.schema, &**before, ops)?;
            let mut out = Vec::new();
            for t in watched {
                let ids =
                    delta::deltas(before, after, &expanded, t, opts, Strategy::Auto, Partition::default())?;
                out.extend(ids.iter().map(|d| delta::name(after, t, d)));
            }
            Ok(out)
        })
    }

    /// Touches every relationship in the text (one per line), as one atomic batch.
    pub fn write_text(&self, text: &str) -> Result<Revision, LoadError> {
        let ops: Vec<WriteOp> = parse_relationships(text)?.into_iter().map(WriteOp::Touch).collect();
        Ok(self.write(&ops)?)
    }

    /// The current state, for reading. Cheap; unaffected by later writes.
    pub fn snapshot(&self) -> View {
        (**self.shared.published.load()).clone()
    }

    pub fn revision(&self) -> Revision {
        self.snapshot().revision()
    }

    /// The current state if it includes `revision` (a token a write returned): a reader that
    /// was handed a token after a write asks for at least that revision.
    pub fn snapshot_at_least(&self, revision: Revision) -> Result<View, EvalError> {
        let view = self.snapshot();
        let current = view.revision();
        if current < revision {
            return Err(EvalError::RevisionNotVisible { requested: revision, current });
        }
        Ok(view)
    }

    /// The data as it was at `revision`: from the store's history on a durable Purview (within
    /// its history window), the current state if `revision` is the current one.
    pub fn view_at(&self, revision: Revision) -> Result<View, EvalError> {
        let view = self.snapshot();
        let current = view.revision();
        if revision > current {
            return Err(EvalError::RevisionNotVisible { requested: revision, current });
        }
        if revision == current {
            return Ok(view);
        }
        match (&self.shared.journal, &view) {
            (Some(journal), View::Index(head)) => Ok(View::Index(journal.view_at(head, revision)?)),
            _ => Err(EvalError::HistoryUnavailable {
                requested: revision,
                reason: "an in-memory Purview keeps no history (open a store for as-of reads)".to_string(),
            }),
        }
    }

    /// The journal, if this Purview is durable.
    pub(crate) fn journal(&self) -> Option<&Arc<dyn Journal>> {
        self.shared.journal.as_ref()
    }

    /// The writer lock and the current index head, for bulk operations (see `bulk.rs`).
    pub(crate) fn lock_index(&self) -> Result<(WriterGuard<'_>, Arc<IndexData>), WriteError> {
        let w = self.for_write(self.lock())?;
        match &w.head {
            Head::Index(i) => {
                let i = i.clone();
                Ok((w, i))
            }
            Head::Reference(_) => Err(no_index()),
        }
    }

    /// Touches the relationships, one batch, like [`Purview::write`] (used by loaders that
    /// already parsed them).
    pub fn touch(&self, rels: impl IntoIterator<Item = Relationship>) -> Result<Revision, WriteError> {
        let ops: Vec<WriteOp> = rels.into_iter().map(WriteOp::Touch).collect();
        self.write(&ops)
    }
}
