//! [`Durable`]: the [`Journal`] of a store. Turns validated changes into commits, makes them
//! durable with group commit, keeps the index snapshot fresh in the background, collects old
//! history, and answers as-of reads.
//!
//! **Group commit.** `stage` (under the facade's writer lock) queues a commit. `wait` either
//! finds its commit already durable, or waits while another writer syncs, or becomes the
//! *leader*: it takes every queued commit, appends them as one atomic backend batch, syncs once,
//! marks them all durable and wakes the others. So one sync serves every writer that staged
//! while the previous sync ran, and no write returns before its own commit is synced.

use super::dict::{Dict, Mapping};
use super::{
    now_micros, snapshot, Commit, CommitBody, LogRecord, Row, RowChange, SchemaRecord, Storage, StorageError,
    StoreOptions,
};
use crate::api::{Caught, Change, Journal, Resolved, Ticket};
use crate::eval::EvalError;
use crate::index::IndexData;
use crate::schema::Schema;
use crate::store::{Key, Revision, TupleAttrs, TupleStore};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The schema side of the store: stable ids and the current mapping.
#[derive(Debug)]
pub(crate) struct Names {
    pub dict: Dict,
    pub mapping: Mapping,
    pub schema_revision: Revision,
}

#[derive(Debug, Default)]
struct Queue {
    staged: Vec<Commit>,
    /// Every commit up to this revision is durable.
    durable: Revision,
    syncing: bool,
    failed: Option<String>,
    /// On a shared store: the last group whose commit failed (its last revision, why). The
    /// store stays usable; those writers learn that their outcome is unknown.
    lost: Option<(Revision, String)>,
    /// Writers parked until their revision is durable (or until they are to lead).
    waiters: Vec<(Revision, std::thread::Thread)>,
}

/// Changes since the last snapshot.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    pub changes: u64,
    /// An import or schema change since the snapshot (replay cannot cross it).
    pub needs_rebuild: bool,
    /// Bumped by each import or schema change.
    pub generation: u64,
    pub snapshot_revision: Revision,
    /// Changes since the backend was last asked to flush its buffers.
    pub since_flush: u64,
}

/// Ask the backend to flush its buffers (bounding its own replay at open) every this many
/// relationship changes.
const FLUSH_EVERY: u64 = 20_000;

/// What the journal, its background threads and the store's operations share.
#[derive(Debug)]
pub(crate) struct Inner {
    /// Where index snapshots go (`None`: a node that keeps none and loads from the database).
    pub dir: Option<PathBuf>,
    pub storage: Arc<dyn Storage>,
    pub store_id: [u8; 16],
    pub options: StoreOptions,
    pub names: Mutex<Names>,
    queue: Mutex<Queue>,
    pub tail: Mutex<Tail>,
    /// The latest published index.
    pub last: Mutex<Arc<IndexData>>,
    snapshotting: AtomicBool,
    /// Rows written by the last `begin_import`.
    imported_rows: Mutex<usize>,
    /// Held while a snapshot is written (the background thread, GC and close may all try).
    snapshot_writer: Mutex<()>,
    history_cache: Mutex<Vec<Arc<IndexData>>>,
    schemas: Mutex<HashMap<Revision, Arc<Schema>>>,
}

/// The journal of an open store (see the module docs).
#[derive(Debug)]
pub struct Durable {
    pub(crate) inner: Arc<Inner>,
    snapshot_thread: Mutex<Option<JoinHandle<()>>>,
    gc: Mutex<Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl Durable {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        dir: Option<PathBuf>,
        storage: Arc<dyn Storage>,
        store_id: [u8; 16],
        options: StoreOptions,
        names: Names,
        tail: Tail,
        head: Arc<IndexData>,
        durable: Revision,
    ) -> Durable {
        let gc_interval = options.gc_interval;
        let inner = Arc::new(Inner {
            dir,
            storage,
            store_id,
            options,
            names: Mutex::new(names),
            queue: Mutex::new(Queue { durable, ..Queue::default() }),
            tail: Mutex::new(tail),
            last: Mutex::new(head),
            snapshotting: AtomicBool::new(false),
            imported_rows: Mutex::new(0),
            snapshot_writer: Mutex::new(()),
            history_cache: Mutex::new(Vec::new()),
            schemas: Mutex::new(HashMap::new()),
        });
        let gc = gc_interval.map(|every| {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let inner = inner.clone();
            let handle = std::thread::spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    if let Err(e) = inner.gc_now() {
                        (inner.options.warn)(&format!("history collection failed: {e}"));
                    }
                }
            });
            (tx, handle)
        });
        Durable { inner, snapshot_thread: Mutex::new(None), gc: Mutex::new(gc) }
    }

    /// Writes a snapshot of the latest published index now (waiting for one in progress).
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        if let Some(h) = lock(&self.snapshot_thread).take() {
            let _ = h.join();
        }
        let head = lock(&self.inner.last).clone();
        self.inner.write_snapshot(&head)
    }
}

/// The object names `after` has and `before` had not: ids `[before count, after count)` per type.
fn new_names(before: &IndexData, after: &IndexData, m: &Mapping) -> Vec<(u32, u32, String)> {
    let types = 0..after.schema.types.len() as u32;
    names_between(after, types.map(|ty| (before.object_count(ty), after.object_count(ty))), m)
}

/// The names of ids `[from, to)` of each type (`ranges` by type id), read from `index`.
fn names_between(
    index: &IndexData,
    ranges: impl Iterator<Item = (u32, u32)>,
    m: &Mapping,
) -> Vec<(u32, u32, String)> {
    let mut out = Vec::new();
    for (ty, (from, to)) in (0u32..).zip(ranges) {
        for id in from..to {
            out.push((m.type_sid(ty), id, index.names().name(ty, id)));
        }
    }
    out
}

/// The net change of every relationship among `keys`, from `before` to `after`.
fn diff(
    before: &IndexData,
    after: &IndexData,
    keys: impl Iterator<Item = Key>,
    m: &Mapping,
) -> Vec<RowChange> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let portable = |a: TupleAttrs| a.to_portable(|c| m.cond_sid(c));
    for k in keys {
        if !seen.insert(k) {
            continue;
        }
        let (b, a) = (before.get(k.0, k.1, k.2), after.get(k.0, k.1, k.2));
        if b != a {
            out.push(RowChange { key: m.row_key(k), before: b.map(portable), after: a.map(portable) });
        }
    }
    out
}

impl Journal for Durable {
    fn store_id(&self) -> Option<[u8; 16]> {
        Some(self.inner.store_id)
    }

    fn stage(&self, change: Change<'_>) -> Result<Ticket, String> {
        let inner = &self.inner;
        {
            let q = lock(&inner.queue);
            if let Some(f) = &q.failed {
                return Err(f.clone());
            }
        }
        let mut names = lock(&inner.names);
        let time = now_micros();
        let commit = match change {
            Change::Batch { after, revision, batch } => {
                let m = &names.mapping;
                let portable = |a: &Option<TupleAttrs>| a.clone().map(|a| a.to_portable(|c| m.cond_sid(c)));
                let changes: Vec<RowChange> = batch
                    .rows
                    .iter()
                    .map(|r| RowChange {
                        key: m.row_key(r.key),
                        before: portable(&r.before),
                        after: portable(&r.after),
                    })
                    .collect();
                let ranges = batch.names_from.iter().copied().zip(batch.names_to.iter().copied());
                let new = names_between(after, ranges, m);
                {
                    let mut t = lock(&inner.tail);
                    t.changes += changes.len() as u64;
                    t.since_flush += changes.len().max(1) as u64;
                }
                Commit { revision, time, names: new, dict: Vec::new(), body: CommitBody::Write(changes) }
            }
            Change::Import { before, after, load, rows_written } => {
                let new = new_names(before, after, &names.mapping);
                {
                    let mut t = lock(&inner.tail);
                    t.needs_rebuild = true;
                    t.generation += 1;
                }
                let rows = *lock(&inner.imported_rows) as u64;
                let body = if rows_written {
                    CommitBody::Import { changes: Vec::new(), rows, rows_written: true }
                } else {
                    let keys = load.plain_from(0).chain(load.specials().map(|(k, _)| *k));
                    let changes = diff(before, after, keys, &names.mapping);
                    let rows = changes.len() as u64;
                    CommitBody::Import { changes, rows, rows_written: false }
                };
                // Names of a load whose rows are written are in the names table already.
                let new = if rows_written { Vec::new() } else { new };
                Commit { revision: after.revision, time, names: new, dict: Vec::new(), body }
            }
            Change::Schema { after, text, format, .. } => {
                let (mapping, added) = names.dict.map(&after.schema);
                names.mapping = mapping;
                names.schema_revision = after.revision;
                {
                    let mut t = lock(&inner.tail);
                    t.needs_rebuild = true;
                    t.generation += 1;
                }
                let record = SchemaRecord { format: format.to_string(), text: text.to_string() };
                Commit {
                    revision: after.revision,
                    time,
                    names: Vec::new(),
                    dict: added,
                    body: CommitBody::Schema(record),
                }
            }
        };
        drop(names);
        let revision = commit.revision;
        lock(&inner.queue).staged.push(commit);
        Ok(Ticket(revision))
    }

    fn wait(&self, ticket: Ticket) -> Result<(), String> {
        let inner = &self.inner;
        let mut q = lock(&inner.queue);
        loop {
            if q.durable >= ticket.0 {
                return Ok(());
            }
            if let Some(f) = &q.failed {
                return Err(f.clone());
            }
            if let Some((last, why)) = &q.lost {
                if ticket.0 <= *last {
                    return Err(why.clone());
                }
            }
            if q.syncing {
                // Park until a leader wakes this writer: its commit is durable, or it is to lead
                // the next sync. Only those writers wake (no thundering herd).
                q.waiters.push((ticket.0, std::thread::current()));
                drop(q);
                std::thread::park();
                q = lock(&inner.queue);
                let me = std::thread::current().id();
                q.waiters.retain(|(_, t)| t.id() != me);
                continue;
            }
            // Lead: make everything staged so far durable with one append and one sync.
            let group = std::mem::take(&mut q.staged);
            let last = group.last().map_or(q.durable, |c| c.revision);
            q.syncing = true;
            drop(q);
            let result = inner.storage.append(&group).and_then(|()| inner.storage.sync());
            q = lock(&inner.queue);
            q.syncing = false;
            match result {
                Ok(()) => q.durable = q.durable.max(last),
                Err(e) if inner.storage.is_shared() => {
                    q.lost = Some((last, format!("the write's outcome is unknown: {e}")));
                }
                Err(e) => q.failed = Some(e.to_string()),
            }
            let (durable, failed) =
                (q.durable, q.failed.is_some() || q.lost.as_ref().is_some_and(|(l, _)| *l >= last));
            let waiters = std::mem::take(&mut q.waiters);
            let (ready, rest): (Vec<_>, Vec<_>) =
                waiters.into_iter().partition(|(r, _)| *r <= durable || failed);
            for (_, t) in &ready {
                t.unpark();
            }
            // The earliest writer still waiting leads the next sync.
            if let Some((_, next)) = rest.iter().min_by_key(|(r, _)| *r) {
                next.unpark();
            }
            q.waiters = rest;
        }
    }

    fn view_at(&self, head: &Arc<IndexData>, revision: Revision) -> Result<Arc<IndexData>, EvalError> {
        self.inner.view_at(head, revision)
    }

    fn begin(&self, head: &Arc<IndexData>) -> Result<Option<Caught>, String> {
        let inner = &self.inner;
        let Some(latest) = inner.storage.begin().map_err(|e| e.to_string())? else { return Ok(None) };
        // The previous group's commit ended (that freed the write transaction) but its leader may
        // not have recorded the outcome yet: wait for it.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let confirmed = loop {
            let mut q = lock(&inner.queue);
            if !q.syncing {
                // A failed group's writers have their answer (on a shared store each group has
                // one waiter, its leader); the revisions it would have used are numbered again
                // from here, so its failure must not answer the new group's wait.
                q.lost = None;
                break q.durable;
            }
            drop(q);
            if std::time::Instant::now() > until {
                // Never hold the cluster-wide lock waiting on this process.
                inner.storage.abandon();
                return Err("the previous write of this node has not finished; retry".to_string());
            }
            std::thread::sleep(std::time::Duration::from_micros(20));
        };
        let refuse = |why: String| {
            inner.storage.abandon();
            Err(why)
        };
        if head.revision > confirmed {
            return refuse(format!(
                "the outcome of an earlier write (revision {}) is unknown; this node resynchronises: retry",
                head.revision
            ));
        }
        if latest < head.revision {
            return refuse(format!(
                "the database is at revision {latest}, behind this node's {}: was it restored from an older \
                 backup? Restart the node",
                head.revision
            ));
        }
        if latest == head.revision {
            return Ok(None);
        }
        match inner.catch_up(head) {
            Ok(caught) => {
                let mut q = lock(&inner.queue);
                if let Some(c) = &caught {
                    q.durable = q.durable.max(c.head.revision);
                }
                Ok(caught)
            }
            Err(e) => refuse(e.to_string()),
        }
    }

    fn abandon(&self) {
        let q = lock(&self.inner.queue);
        if q.staged.is_empty() && !q.syncing {
            self.inner.storage.abandon();
        }
    }

    fn catch_up(&self, head: &Arc<IndexData>) -> Result<Option<Caught>, String> {
        let inner = &self.inner;
        if !inner.storage.is_shared() {
            return Ok(None);
        }
        inner.storage.pin().map_err(|e| e.to_string())?;
        let caught = inner.catch_up(head);
        inner.storage.unpin();
        let caught = caught.map_err(|e| e.to_string())?;
        if let Some(c) = &caught {
            let mut q = lock(&inner.queue);
            q.durable = q.durable.max(c.head.revision);
        }
        Ok(caught)
    }

    fn committed_revision(&self) -> Option<Result<Revision, String>> {
        let storage = &self.inner.storage;
        storage.is_shared().then(|| storage.head().map_err(|e| e.to_string()))
    }

    fn is_shared(&self) -> bool {
        self.inner.storage.is_shared()
    }

    fn schema_text(&self) -> Option<Result<String, String>> {
        let storage = &self.inner.storage;
        storage.is_shared().then(|| match storage.schemas() {
            Ok(s) => {
                s.last().map(|(_, r)| r.text.clone()).ok_or_else(|| "the store holds no schema".to_string())
            }
            Err(e) => Err(e.to_string()),
        })
    }

    fn changes_between(
        &self,
        head: &Arc<IndexData>,
        after: Revision,
        until: Revision,
    ) -> Option<Result<Vec<crate::api::ChangeSet>, String>> {
        Some(self.inner.changes_between(head, after, until).map_err(|e| e.to_string()))
    }

    fn row_encoder(&self) -> Option<crate::api::RowEncoder> {
        let mapping = lock(&self.inner.names).mapping.clone();
        Some(Arc::new(move |k: &Key| super::row_bytes(&mapping.row_key(*k))))
    }

    fn begin_import(
        &self,
        before: &Arc<IndexData>,
        names: &IndexData,
        load: &Resolved,
        runs: Vec<Vec<[u8; 24]>>,
    ) -> Result<bool, String> {
        let fresh =
            before.is_empty() && (0..before.schema.types.len() as u32).all(|t| before.object_count(t) == 0);
        if !fresh {
            return Ok(false);
        }
        // Everything staged before must be durable first (the rows go straight to the tables).
        self.flush()?;
        let inner = &self.inner;
        let mapping = lock(&inner.names).mapping.clone();
        let portable = |a: &TupleAttrs| a.to_portable(|c| mapping.cond_sid(c));
        // The loader sorted the plain keys in runs as it read; if it did not, sort them here.
        let runs = if runs.iter().map(Vec::len).sum::<usize>() == load.plain_len() {
            runs
        } else {
            use rayon::slice::ParallelSliceMut;
            let mut all: Vec<[u8; 24]> =
                load.plain_from(0).map(|k| super::row_bytes(&mapping.row_key(k))).collect();
            all.par_sort_unstable();
            vec![all]
        };
        let special: Vec<_> = load.specials().map(|(k, a)| (mapping.row_key(*k), portable(a))).collect();
        // Names in key order: types by stable id, then ids.
        let guards = names.names().read_all();
        let mut types: Vec<u32> = (0..names.schema.types.len() as u32).collect();
        types.sort_by_key(|&t| mapping.type_sid(t));
        let mapping = &mapping;
        let mut iter = types.into_iter().flat_map(|t| {
            let (count, sid, g) = (names.object_count(t), mapping.type_sid(t), &guards[t as usize]);
            (0..count).filter_map(move |id| g.name(id).map(|n| (sid, id, n)))
        });
        let rows = inner
            .storage
            .import_rows(before.revision + 1, &mut iter, &runs, &special)
            .map_err(|e| e.to_string())?;
        *lock(&inner.imported_rows) = rows as usize;
        Ok(true)
    }

    fn abort_import(&self) {
        if let Err(e) = self.inner.storage.roll_back_import() {
            (self.inner.options.warn)(&format!("could not roll back an import: {e}"));
        }
    }

    fn published(&self, head: &Arc<IndexData>) {
        let inner = &self.inner;
        {
            let mut last = lock(&inner.last);
            if last.revision < head.revision {
                *last = head.clone();
            }
        }
        let (due, flush) = {
            let mut t = lock(&inner.tail);
            let flush = t.since_flush >= FLUSH_EVERY;
            if flush {
                t.since_flush = 0;
            }
            let due = inner.dir.is_some() && (t.needs_rebuild || t.changes >= inner.options.snapshot_after);
            (due, flush)
        };
        if flush {
            if let Err(e) = inner.storage.flush(false) {
                (inner.options.warn)(&format!("could not flush the store's buffers: {e}"));
            }
        }
        if due && !inner.snapshotting.swap(true, Ordering::AcqRel) {
            let mut slot = lock(&self.snapshot_thread);
            if let Some(h) = slot.take() {
                let _ = h.join();
            }
            let inner = inner.clone();
            let head = head.clone();
            *slot = Some(std::thread::spawn(move || {
                if let Err(e) = inner.write_snapshot(&head) {
                    (inner.options.warn)(&format!("could not write the index snapshot: {e}"));
                }
                inner.snapshotting.store(false, Ordering::Release);
            }));
        }
    }
}

impl Durable {
    /// Makes everything staged durable (leading a sync if needed).
    fn flush(&self) -> Result<(), String> {
        let last = {
            let q = lock(&self.inner.queue);
            q.staged.last().map(|c| c.revision)
        };
        match last {
            Some(r) => self.wait(Ticket(r)),
            None => Ok(()),
        }
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        if let Some((tx, h)) = lock(&self.gc).take() {
            let _ = tx.send(());
            let _ = h.join();
        }
        if let Some(h) = lock(&self.snapshot_thread).take() {
            let _ = h.join();
        }
        let due = {
            let t = lock(&self.inner.tail);
            t.needs_rebuild || t.changes >= self.inner.options.snapshot_after.min(10_000)
        };
        let failed = lock(&self.inner.queue).failed.is_some();
        if due && !failed {
            let head = lock(&self.inner.last).clone();
            if let Err(e) = self.inner.write_snapshot(&head) {
                (self.inner.options.warn)(&format!("could not write the index snapshot at close: {e}"));
            }
        }
        if !failed {
            // So that the next open does not replay the backend's journal.
            let _ = self.inner.storage.flush(true);
        }
        self.inner.storage.close();
    }
}

impl Inner {
    /// Writes `head` as the snapshot and forgets the changes it covers.
    pub(crate) fn write_snapshot(&self, head: &Arc<IndexData>) -> Result<(), StorageError> {
        let _one_at_a_time = lock(&self.snapshot_writer);
        let (changes, generation) = {
            let t = lock(&self.tail);
            if t.snapshot_revision >= head.revision && !t.needs_rebuild {
                return Ok(());
            }
            (t.changes, t.generation)
        };
        let schema_revision = lock(&self.names).schema_revision;
        if schema_revision > head.revision {
            return Ok(()); // a schema change is being committed; the next snapshot will do
        }
        let Some(dir) = &self.dir else { return Ok(()) };
        snapshot::write(dir, self.store_id, schema_revision, head)?;
        self.storage.flush(false)?;
        let mut t = lock(&self.tail);
        t.changes = t.changes.saturating_sub(changes);
        if t.generation == generation {
            t.needs_rebuild = false;
        }
        t.snapshot_revision = t.snapshot_revision.max(head.revision);
        Ok(())
    }

    /// The oldest revision still readable.
    pub(crate) fn gc_revision(&self) -> Result<Revision, StorageError> {
        Ok(self
            .storage
            .meta_get("gc_revision")?
            .and_then(|v| v.get(..8)?.try_into().ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Collects history older than the window; returns (revision collected up to, log records,
    /// deleted rows dropped).
    pub(crate) fn gc_now(&self) -> Result<(Revision, u64, u64), StorageError> {
        let horizon =
            now_micros() - i64::try_from(self.options.history_window.as_micros()).unwrap_or(i64::MAX);
        let head = self.storage.head()?;
        let mut upto = 0;
        self.storage.log(self.gc_revision()?, false, &mut |rev, rec| {
            if rec.time() <= horizon && rev < head {
                upto = rev;
                Ok(true)
            } else {
                Ok(false)
            }
        })?;
        if upto <= self.gc_revision()? {
            return Ok((self.gc_revision()?, 0, 0));
        }
        // Replay from the snapshot needs the log after it: bring the snapshot forward first.
        let snapshot_revision = lock(&self.tail).snapshot_revision;
        if snapshot_revision < upto {
            let last = lock(&self.last).clone();
            self.write_snapshot(&last)?;
        }
        let (records, rows) = self.storage.gc(upto)?;
        lock(&self.history_cache).retain(|v| v.revision >= upto);
        Ok((upto, records, rows))
    }

    /// The schema in effect at `revision`.
    pub(crate) fn schema_at(&self, revision: Revision) -> Result<(Revision, Arc<Schema>), StorageError> {
        let schemas = self.storage.schemas()?;
        let Some((at, record)) = schemas.into_iter().rev().find(|(r, _)| *r <= revision) else {
            return Err(StorageError::Corrupt(format!("no schema is stored for revision {revision}")));
        };
        if let Some(s) = lock(&self.schemas).get(&at) {
            return Ok((at, s.clone()));
        }
        let schema = super::load::compile_record(at, &record)?;
        lock(&self.schemas).insert(at, schema.clone());
        Ok((at, schema))
    }

    fn view_at(&self, head: &Arc<IndexData>, revision: Revision) -> Result<Arc<IndexData>, EvalError> {
        let unavailable =
            |e: StorageError| EvalError::HistoryUnavailable { requested: revision, reason: e.to_string() };
        let oldest = self.gc_revision().map_err(unavailable)?;
        if revision < oldest {
            return Err(EvalError::RevisionCollected { requested: revision, oldest });
        }
        if let Some(v) = lock(&self.history_cache).iter().find(|v| v.revision == revision) {
            return Ok(v.clone());
        }
        // Undo the changes after `revision`, newest first, unless an import or a schema change
        // is among them (then rebuild from the rows as they were).
        let mut records = Vec::new();
        let mut rebuild = false;
        self.storage
            .log(revision, true, &mut |rev, rec| {
                if rev > head.revision {
                    return Ok(true);
                }
                match rec {
                    LogRecord::Write { changes, .. } => {
                        records.push(changes);
                        Ok(true)
                    }
                    _ => {
                        rebuild = true;
                        Ok(false)
                    }
                }
            })
            .map_err(unavailable)?;
        let view = if rebuild || records.len() as u64 != head.revision - revision {
            self.rebuild_at(revision).map_err(unavailable)?
        } else {
            let mapping = lock(&self.names).mapping.clone();
            let mut data = (**head).clone();
            for changes in &records {
                for ch in changes.iter().rev() {
                    let key = mapping.key(&ch.key).ok_or_else(|| {
                        unavailable(StorageError::Corrupt("a logged relationship has no relation".into()))
                    })?;
                    match &ch.before {
                        None => {
                            data.remove(key.0, key.1, key.2);
                        }
                        Some(p) => {
                            let a = TupleAttrs::from_portable(p, |c| mapping.cond_of(c))
                                .map_err(|e| unavailable(StorageError::Corrupt(e)))?;
                            data.insert(key.0, key.1, key.2, a);
                        }
                    }
                }
            }
            data.revision = revision;
            Arc::new(data)
        };
        let mut cache = lock(&self.history_cache);
        if cache.len() >= 4 {
            cache.remove(0);
        }
        cache.push(view.clone());
        Ok(view)
    }

    /// The changelog after `after` (up to `until`) as change sets named through `head`. A
    /// relationship whose relation no longer exists under the head's schema cannot be named:
    /// then this fails (a subscriber must re-read the data).
    pub(crate) fn changes_between(
        &self,
        head: &Arc<IndexData>,
        after: Revision,
        until: Revision,
    ) -> Result<Vec<crate::api::ChangeSet>, StorageError> {
        let oldest = self.gc_revision()?;
        if after < oldest {
            return Err(StorageError::Failed(format!(
                "history before revision {oldest} was garbage-collected"
            )));
        }
        let mapping = lock(&self.names).mapping.clone();
        let mut out = Vec::new();
        let mut failed = None;
        self.storage.log(after, false, &mut |rev, rec| {
            if rev > until {
                return Ok(false);
            }
            match change_set(head, &mapping, rev, rec) {
                Ok(set) => {
                    out.push(set);
                    Ok(true)
                }
                Err(e) => {
                    failed = Some(e);
                    Ok(false)
                }
            }
        })?;
        match failed {
            Some(reason) => Err(StorageError::Failed(reason)),
            None => Ok(out),
        }
    }

    /// What the store committed after `head`, read as the storage sees it now (under its write
    /// lock, or in a pinned snapshot): the new head replayed from the log, or rebuilt from the
    /// rows when an import, a schema change or collected history is among the new revisions.
    pub(crate) fn catch_up(&self, head: &Arc<IndexData>) -> Result<Option<Caught>, StorageError> {
        let latest = self.storage.head()?;
        if latest <= head.revision {
            return Ok(None);
        }
        let mut records = Vec::new();
        self.storage.log(head.revision, false, &mut |rev, rec| {
            if rev > latest {
                return Ok(false);
            }
            records.push((rev, rec));
            Ok(true)
        })?;
        let contiguous = records.first().map(|(r, _)| *r) == Some(head.revision + 1)
            && records.len() as u64 == latest - head.revision;
        let rebuild = !contiguous || records.iter().any(|(_, r)| !matches!(r, LogRecord::Write { .. }));
        let data = if rebuild {
            let schemas = self.storage.schemas()?;
            let Some((schema_revision, record)) = schemas.last().cloned() else {
                return Err(StorageError::Corrupt("the store holds no schema".into()));
            };
            let schema = super::load::compile_record(schema_revision, &record)?;
            let mut dict = Dict::from_entries(self.storage.dict()?);
            let (mapping, added) = dict.map(&schema);
            if !added.is_empty() {
                return Err(StorageError::Corrupt(
                    "the dictionary of stable ids lacks names of the schema".into(),
                ));
            }
            let data = super::load::build(&*self.storage, schema, &mapping, latest, |_| true)?;
            let mut names = lock(&self.names);
            names.dict = dict;
            names.mapping = mapping;
            names.schema_revision = schema_revision;
            let mut t = lock(&self.tail);
            t.needs_rebuild = true;
            t.generation += 1;
            data
        } else {
            let mapping = lock(&self.names).mapping.clone();
            // Names this process interned for changes it never committed would take the ids
            // the new revisions give their names.
            head.forget_uncommitted_names();
            let mut data = (**head).clone();
            let mut n = 0u64;
            for (rev, rec) in &records {
                super::load::replay(&mut data, &mapping, *rev, rec).map_err(StorageError::Corrupt)?;
                if let LogRecord::Write { changes, .. } = rec {
                    n += changes.len() as u64;
                }
            }
            lock(&self.tail).changes += n;
            data
        };
        let data = Arc::new(data);
        let mapping = lock(&self.names).mapping.clone();
        let changes = records
            .into_iter()
            .map(|(rev, rec)| {
                change_set(&data, &mapping, rev, rec).unwrap_or(crate::api::ChangeSet {
                    revision: rev,
                    updates: Vec::new(),
                    schema_changed: false,
                    truncated: true,
                })
            })
            .collect();
        Ok(Some(Caught { head: data, changes }))
    }

    /// The index at `revision`, built from the rows live then, under the schema of then.
    pub(crate) fn rebuild_at(&self, revision: Revision) -> Result<Arc<IndexData>, StorageError> {
        let (_, schema) = self.schema_at(revision)?;
        let mut dict = lock(&self.names).dict.clone();
        let (mapping, _) = dict.map(&schema);
        let data = super::load::build(&*self.storage, schema, &mapping, revision, |row: &Row| {
            row.created <= revision && row.deleted.is_none_or(|d| d > revision)
        })?;
        Ok(Arc::new(data))
    }
}

/// What a logged revision changed, named through `head` (whose names include every name the
/// revision used); an error when the current schema cannot name one of its relationships.
fn change_set(
    head: &IndexData,
    mapping: &Mapping,
    rev: Revision,
    rec: LogRecord,
) -> Result<crate::api::ChangeSet, String> {
    use crate::api::{ChangeSet, Update, UpdateKind};
    let mut set = ChangeSet { revision: rev, updates: Vec::new(), schema_changed: false, truncated: false };
    match rec {
        LogRecord::Write { changes, .. } => {
            for ch in &changes {
                let Some((o, r, s)) = mapping.key(&ch.key) else {
                    return Err(format!("revision {rev} names a relation the current schema does not have"));
                };
                let (kind, attrs) = match (&ch.before, &ch.after) {
                    (_, Some(a)) => (UpdateKind::Touch, a),
                    (Some(b), None) => (UpdateKind::Delete, b),
                    (None, None) => continue,
                };
                let attrs = TupleAttrs::from_portable(attrs, |c| mapping.cond_of(c))?;
                set.updates
                    .push(Update { kind, relationship: crate::api::relationship_of(head, o, r, s, &attrs) });
            }
        }
        LogRecord::Import { .. } => set.truncated = true,
        LogRecord::Schema { .. } => set.schema_changed = true,
    }
    Ok(set)
}
