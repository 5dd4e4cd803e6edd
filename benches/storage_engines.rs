//! Compares two embedded key-value crates, `redb` 5 and `fjall` 3, as Purview's durable store.
//!
//! Run: `cargo bench --bench storage_engines` (scale 1.0: about 10.3M relationships and 3.5M
//! names; a few minutes on 2 cores, about 4 GB of disk in the temp dir and ~3 GB of memory).
//! `PURVIEW_BENCH_SCALE=0.1` for a quick run. Prints a markdown table and notes; no criterion.
//!
//! Layout (the one the store will use), the same in both engines:
//! - `live`: key = 24 bytes big-endian `[obj_type][obj_id][rel][subj_type][subj_id][subj_rel]`
//!   (u32 each, `subj_rel = u32::MAX` for none); value = creating revision as LEB128 + a flags
//!   byte 0. redb key type `&[u8; 24]` (fixed width), value `&[u8]`.
//! - `names`: key = `[type u32 BE][id u32 BE]`, value = the object name (UTF-8).
//! - `log`: key = revision u64 BE, value = 35 bytes for a single-relationship write: time (u64),
//!   an op tag byte, the 24-byte key and 2 flag bytes.
//!
//! Data: the eComms dataset of `datasets.rs`, read back from the built index by dense ids
//! (types in id order, objects in id order, relations in id order, subjects as the index lists
//! them), which happens to be ascending key order; the bench checks and prints that. Names come
//! first, then relationships; revision of a row = its position in that stream / 100k + 1.
//!
//! Method, per engine, each in a fresh `tempfile` dir, default engine options:
//! 1. Import variants (each a full import in its own dir): (a) dataset order, (b) keys sorted
//!    first (sort time included) — for fjall this one uses the ingestion API
//!    (`Keyspace::start_ingestion`, which writes fsynced tables directly, bypassing the journal),
//!    (c) relationships shuffled (a deterministic permutation, made outside the timing) to show
//!    what unsorted input costs. Batches of 100k rows (names + live); redb: one write transaction
//!    per batch, `Durability::None` except `Durability::Immediate` on the last; fjall:
//!    `WriteBatch` per batch (journal writes buffered), then one `persist(PersistMode::SyncAll)`.
//!    The import time stops when the data is durable. fjall then "settles": memtables rotated and
//!    flushed, waiting until no flush or compaction has run for 1 s; reported separately. The
//!    fastest variant's store is kept for the remaining steps.
//! 2. Size: the store is closed (redb `Database::close`, fjall dropped after settling) and the
//!    sizes of all files under the dir are summed (apparent length; allocated blocks in notes —
//!    fjall preallocates its journal to 64 MiB sparse).
//! 3. Clean open: open + read one `live` key (page cache warm), right after the import and again
//!    after the write steps (fjall then replays its active journal, which holds up to ~64 MB).
//!    A child process (this binary re-executed with `PURVIEW_STORAGE_CHILD`) tries to open the
//!    store while it is open, to see whether the engine locks it. After the write steps the
//!    store is closed and a child opens it, writes 1,000 relationships in one synced commit and
//!    calls `std::process::abort()`; the reopen (+ reading the child's last key) is timed. For
//!    redb twice: the child commits without and with `set_quick_repair(true)`.
//! 4. Durable single writes, after a system-wide `sync` (so the dirty pages the imports left are
//!    not written back during the measurement): 2,000 sequential commits of one `live` + one
//!    `log` insert. redb: one write transaction each, `Durability::Immediate` (the default;
//!    again with `set_quick_repair(true)`, in the notes). fjall: one `WriteBatch` each with
//!    `.durability(Some(PersistMode::SyncAll))` (fsync of the journal inside the commit);
//!    `SyncData` (fdatasync) is measured too, in the notes.
//! 5. Group commit: 64 threads × 300 single-relationship writes (live + log), each thread waits
//!    until its write is durable. redb: leader/follower queue — a writer that finds no leader
//!    takes every queued write, commits them in one `Durability::Immediate` transaction, and wakes
//!    the followers; the next waiting writer becomes leader. fjall: (a) every writer commits its
//!    batch with `durability(Some(SyncAll))`; (b) writers commit without sync and one syncer
//!    thread repeatedly calls `persist(SyncAll)` and releases every writer committed before the
//!    call. The table shows the faster fjall method; both are in the notes.
//!
//! Also: a tiny store of each engine has its format version bumped by one byte to see how the
//! engine reacts to a newer on-disk format.
//!
//! API notes (redb 5.0.0, fjall 3.1.13): redb 5 has two durability levels, `None` and
//! `Immediate` (fdatasync before `commit` returns). fjall writes default to `PersistMode::Buffer`
//! (OS buffers only: survives a process crash, not power loss); durability needs
//! `persist(SyncAll)` or a batch with `durability(Some(..))`, and `persist` holds the journal
//! lock during the fsync, so other writers cannot append meanwhile. fjall's ingestion `write`
//! panics (an `assert!`) unless keys are strictly ascending. The fsync figures depend on the
//! disk; on a VM they vary a lot from run to run.

// Benchmarks panic on purpose when their fixed data is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "datasets.rs"]
mod datasets;

use datasets::{ecomms, Rng};
use fjall::{KeyspaceCreateOptions, PersistMode};
use purview::store::Obj;
use redb::{Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const BATCH: usize = 100_000;
const SINGLE_WRITES: usize = 2_000;
const WRITERS: usize = 64;
const PER_WRITER: usize = 300;
const ABORT_BATCH: u32 = 1_000;
const NONE_REL: u32 = u32::MAX;
const CHILD_ENV: &str = "PURVIEW_STORAGE_CHILD";

const LIVE: TableDefinition<&[u8; 24], &[u8]> = TableDefinition::new("live");
const NAMES: TableDefinition<&[u8; 8], &[u8]> = TableDefinition::new("names");
const LOG: TableDefinition<&[u8; 8], &[u8]> = TableDefinition::new("log");

fn scale() -> f64 {
    std::env::var("PURVIEW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0)
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn live_key(ot: u32, oid: u32, rel: u32, st: u32, sid: u32, srel: u32) -> [u8; 24] {
    let mut k = [0u8; 24];
    for (i, v) in [ot, oid, rel, st, sid, srel].into_iter().enumerate() {
        k[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    k
}

fn name_key(ty: u32, id: u32) -> [u8; 8] {
    let mut k = [0u8; 8];
    k[..4].copy_from_slice(&ty.to_be_bytes());
    k[4..].copy_from_slice(&id.to_be_bytes());
    k
}

/// Creating revision as LEB128, then a flags byte 0. Returns the buffer and the used length.
fn live_value(mut rev: u64) -> ([u8; 11], usize) {
    let mut b = [0u8; 11];
    let mut n = 0;
    loop {
        let byte = (rev & 0x7f) as u8;
        rev >>= 7;
        if rev == 0 {
            b[n] = byte;
            n += 1;
            break;
        }
        b[n] = byte | 0x80;
        n += 1;
    }
    b[n] = 0;
    (b, n + 1)
}

/// A log record for a single-relationship write: time, op tag, key, 2 flag bytes (35 bytes).
fn log_value(key: &[u8; 24]) -> [u8; 35] {
    let mut v = [0u8; 35];
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    v[..8].copy_from_slice(&now.to_be_bytes());
    v[8] = 1; // op: touch
    v[9..33].copy_from_slice(key);
    v
}

/// Revision of the row at `pos` in the import stream (names, then relationships).
fn import_rev(pos: usize) -> u64 {
    (pos / BATCH) as u64 + 1
}

/// The ids a write step uses to make new relationships: `message:<new id>#tagged@usergroup:<g>`.
#[derive(Clone, Copy)]
struct NewRels {
    msg_ty: u32,
    tagged: u32,
    group_ty: u32,
    groups: u32,
    first_new_msg: u32,
}

impl NewRels {
    fn key(&self, n: u32) -> [u8; 24] {
        live_key(self.msg_ty, self.first_new_msg + n, self.tagged, self.group_ty, n % self.groups, NONE_REL)
    }
    fn encode(&self) -> String {
        format!("{}:{}:{}:{}:{}", self.msg_ty, self.tagged, self.group_ty, self.groups, self.first_new_msg)
    }
    fn decode(s: &str) -> NewRels {
        let v: Vec<u32> = s.split(':').map(|x| x.parse().unwrap()).collect();
        NewRels { msg_ty: v[0], tagged: v[1], group_ty: v[2], groups: v[3], first_new_msg: v[4] }
    }
}

// ---------------------------------------------------------------------------------------------
// Dataset

struct Rows {
    names: Vec<([u8; 8], Box<str>)>,
    live: Vec<[u8; 24]>,
    new: NewRels,
}

fn load_rows(scale: f64) -> (Rows, usize) {
    let t = Instant::now();
    let (ds, shape) = ecomms(scale);
    let data = &ds.data;
    let schema = data.schema.clone();
    let mut names = Vec::new();
    let mut live = Vec::with_capacity(data.len());
    for (t, tdef) in schema.types.iter().enumerate() {
        let t = t as u32;
        for id in 0..data.object_count(t) {
            names.push((name_key(t, id), data.names().name(t, id).into_boxed_str()));
            for r in 0..tdef.relations.len() as u32 {
                for (s, _) in data.tuples_of(Obj { ty: t, id }, r) {
                    live.push(live_key(t, id, r, s.ty, s.id, s.rel.unwrap_or(NONE_REL)));
                }
            }
        }
    }
    let msg_ty = schema.type_id("message").unwrap();
    let (group_ty, _) = schema.relation("usergroup", "member").unwrap();
    let (_, tagged) = schema.relation("message", "tagged").unwrap();
    let new = NewRels {
        msg_ty,
        tagged,
        group_ty,
        groups: shape.groups as u32,
        first_new_msg: data.object_count(msg_ty) + 1_000,
    };
    eprintln!(
        "[dataset] scale {scale}: {} relationships in the index ({} generated before dedup), {} names; \
         built and read back in {:.1?}",
        live.len(),
        ds.relationships,
        names.len(),
        t.elapsed()
    );
    (Rows { names, live, new }, data.len())
}

/// The `(names range, live range, revision)` of each 100k-row batch of the import stream.
fn batches(n_names: usize, n_live: usize) -> Vec<(std::ops::Range<usize>, std::ops::Range<usize>, u64)> {
    let total = n_names + n_live;
    (0..total)
        .step_by(BATCH)
        .map(|start| {
            let end = (start + BATCH).min(total);
            let names = start.min(n_names)..end.min(n_names);
            let live = start.max(n_names) - n_names..end.max(n_names) - n_names;
            (names, live, import_rev(start))
        })
        .collect()
}

fn dir_size(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut apparent, mut allocated) = (0, 0);
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.is_dir() {
                let (a, b) = dir_size(&e.path());
                apparent += a;
                allocated += b;
            } else {
                apparent += m.len();
                allocated += m.blocks() * 512;
            }
        }
    }
    (apparent, allocated)
}

/// Writes back the page cache the imports left dirty, so that the write steps' fsyncs do not pay
/// for it.
fn os_sync() {
    let _ = Command::new("sync").status();
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// redb

fn redb_import(path: &Path, names: &[([u8; 8], Box<str>)], live: &[[u8; 24]]) -> Res<Duration> {
    let t = Instant::now();
    let db = redb::Database::create(path)?;
    let plan = batches(names.len(), live.len());
    let last = plan.len() - 1;
    for (i, (nr, lr, rev)) in plan.into_iter().enumerate() {
        let mut tx = db.begin_write()?;
        tx.set_durability(if i == last { Durability::Immediate } else { Durability::None })?;
        {
            let mut tn = tx.open_table(NAMES)?;
            for (k, name) in &names[nr] {
                tn.insert(k, name.as_bytes())?;
            }
            let mut tl = tx.open_table(LIVE)?;
            let (v, n) = live_value(rev);
            for k in &live[lr] {
                tl.insert(k, &v[..n])?;
            }
            // The log table exists from the start.
            tx.open_table(LOG)?;
        }
        tx.commit()?;
    }
    let took = t.elapsed();
    db.close()?;
    Ok(took)
}

fn redb_open_and_read(path: &Path, key: &[u8; 24]) -> Res<(redb::Database, Duration)> {
    let t = Instant::now();
    let db = redb::Database::open(path)?;
    {
        let tx = db.begin_read()?;
        let table = tx.open_table(LIVE)?;
        assert!(table.get(key)?.is_some(), "redb: key not found after open");
    }
    Ok((db, t.elapsed()))
}

fn redb_single_writes(
    db: &redb::Database,
    new: NewRels,
    first: u32,
    rev: &AtomicU64,
    quick_repair: bool,
) -> Res<Vec<Duration>> {
    let mut lat = Vec::with_capacity(SINGLE_WRITES);
    for i in 0..SINGLE_WRITES as u32 {
        let key = new.key(first + i);
        let t = Instant::now();
        let r = rev.fetch_add(1, Ordering::Relaxed);
        let mut tx = db.begin_write()?; // Durability::Immediate is the default
        tx.set_quick_repair(quick_repair);
        {
            let (v, n) = live_value(r);
            tx.open_table(LIVE)?.insert(&key, &v[..n])?;
            tx.open_table(LOG)?.insert(&r.to_be_bytes(), &log_value(&key)[..])?;
        }
        tx.commit()?;
        lat.push(t.elapsed());
    }
    Ok(lat)
}

#[derive(Default)]
struct Queue {
    ops: Vec<[u8; 24]>,
    leader: bool,
    next_ticket: u64,
    done: u64,
    groups: u64,
}

/// 64 writers, leader/follower group commit. Returns (relationships/s, mean group size).
fn redb_group(db: &redb::Database, new: NewRels, first: u32, rev: &AtomicU64) -> Res<(f64, f64)> {
    let q = Mutex::new(Queue::default());
    let cv = Condvar::new();
    let commit = |ops: &[[u8; 24]]| -> Res<()> {
        let tx = db.begin_write()?;
        {
            let mut tl = tx.open_table(LIVE)?;
            let mut tg = tx.open_table(LOG)?;
            for key in ops {
                let r = rev.fetch_add(1, Ordering::Relaxed);
                let (v, n) = live_value(r);
                tl.insert(key, &v[..n])?;
                tg.insert(&r.to_be_bytes(), &log_value(key)[..])?;
            }
        }
        tx.commit()?;
        Ok(())
    };
    let t = Instant::now();
    std::thread::scope(|s| {
        for w in 0..WRITERS as u32 {
            let (q, cv, commit) = (&q, &cv, &commit);
            s.spawn(move || {
                for i in 0..PER_WRITER as u32 {
                    let key = new.key(first + w * PER_WRITER as u32 + i);
                    let mut g = q.lock().unwrap();
                    g.next_ticket += 1;
                    let ticket = g.next_ticket;
                    g.ops.push(key);
                    loop {
                        if g.done >= ticket {
                            break;
                        }
                        if !g.leader {
                            g.leader = true;
                            let ops = std::mem::take(&mut g.ops);
                            let upto = g.next_ticket;
                            drop(g);
                            commit(&ops).unwrap();
                            g = q.lock().unwrap();
                            g.done = upto;
                            g.leader = false;
                            g.groups += 1;
                            cv.notify_all();
                            continue;
                        }
                        g = cv.wait(g).unwrap();
                    }
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let groups = q.lock().unwrap().groups;
    let n = (WRITERS * PER_WRITER) as f64;
    Ok((n / secs, n / groups as f64))
}

/// Child: open, write `ABORT_BATCH` relationships in one synced commit, abort.
fn redb_child_abort(path: &Path, new: NewRels, first: u32, quick: bool) -> Res<()> {
    let db = redb::Database::open(path)?;
    let mut tx = db.begin_write()?;
    tx.set_quick_repair(quick);
    {
        let mut tl = tx.open_table(LIVE)?;
        let mut tg = tx.open_table(LOG)?;
        for i in 0..ABORT_BATCH {
            let key = new.key(first + i);
            let r = u64::MAX / 2 + u64::from(i);
            let (v, n) = live_value(r);
            tl.insert(&key, &v[..n])?;
            tg.insert(&r.to_be_bytes(), &log_value(&key)[..])?;
        }
    }
    tx.commit()?; // Durability::Immediate
    std::process::abort();
}

// ---------------------------------------------------------------------------------------------
// fjall

struct Fjall {
    db: fjall::Database,
    live: fjall::Keyspace,
    names: fjall::Keyspace,
    log: fjall::Keyspace,
}

fn fjall_open(path: &Path) -> Res<Fjall> {
    let db = fjall::Database::builder(path).open()?;
    let live = db.keyspace("live", KeyspaceCreateOptions::default)?;
    let names = db.keyspace("names", KeyspaceCreateOptions::default)?;
    let log = db.keyspace("log", KeyspaceCreateOptions::default)?;
    Ok(Fjall { db, live, names, log })
}

fn fjall_import_batches(
    path: &Path,
    names: &[([u8; 8], Box<str>)],
    live: &[[u8; 24]],
) -> Res<(Fjall, Duration)> {
    let t = Instant::now();
    let f = fjall_open(path)?;
    for (nr, lr, rev) in batches(names.len(), live.len()) {
        let mut b = f.db.batch();
        for (k, name) in &names[nr] {
            b.insert(&f.names, &k[..], name.as_bytes());
        }
        let (v, n) = live_value(rev);
        for k in &live[lr] {
            b.insert(&f.live, &k[..], &v[..n]);
        }
        b.commit()?;
    }
    f.db.persist(PersistMode::SyncAll)?;
    Ok((f, t.elapsed()))
}

/// Ingestion API: keys must be strictly ascending; tables are written and fsynced directly.
fn fjall_import_ingest(
    path: &Path,
    names: &[([u8; 8], Box<str>)],
    live: &[[u8; 24]],
) -> Res<(Fjall, Duration)> {
    let t = Instant::now();
    let f = fjall_open(path)?;
    let mut ing = f.names.start_ingestion()?;
    for (k, name) in names {
        ing.write(&k[..], name.as_bytes())?;
    }
    ing.finish()?;
    let mut ing = f.live.start_ingestion()?;
    for (j, k) in live.iter().enumerate() {
        let (v, n) = live_value(import_rev(names.len() + j));
        ing.write(&k[..], &v[..n])?;
    }
    ing.finish()?;
    Ok((f, t.elapsed()))
}

/// Flushes memtables and waits until no flush or compaction has been seen for 1 s. Returns the
/// time until the last busy observation, then closes the store.
fn fjall_settle_and_close(f: Fjall) -> Res<Duration> {
    let t = Instant::now();
    for ks in [&f.names, &f.live, &f.log] {
        ks.rotate_memtable_and_wait()?;
    }
    let mut last_busy = t.elapsed();
    let mut quiet = 0;
    while quiet < 10 {
        std::thread::sleep(Duration::from_millis(100));
        if f.db.outstanding_flushes() == 0 && f.db.active_compactions() == 0 {
            quiet += 1;
        } else {
            quiet = 0;
            last_busy = t.elapsed();
        }
    }
    drop(f);
    Ok(last_busy)
}

fn fjall_open_and_read(path: &Path, key: &[u8; 24]) -> Res<(Fjall, Duration)> {
    let t = Instant::now();
    let f = fjall_open(path)?;
    assert!(f.live.get(key)?.is_some(), "fjall: key not found after open");
    Ok((f, t.elapsed()))
}

fn fjall_single_writes(
    f: &Fjall,
    new: NewRels,
    first: u32,
    rev: &AtomicU64,
    mode: PersistMode,
) -> Res<Vec<Duration>> {
    let mut lat = Vec::with_capacity(SINGLE_WRITES);
    for i in 0..SINGLE_WRITES as u32 {
        let key = new.key(first + i);
        let t = Instant::now();
        let r = rev.fetch_add(1, Ordering::Relaxed);
        let (v, n) = live_value(r);
        let mut b = f.db.batch().durability(Some(mode));
        b.insert(&f.live, &key[..], &v[..n]);
        b.insert(&f.log, &r.to_be_bytes()[..], &log_value(&key)[..]);
        b.commit()?;
        lat.push(t.elapsed());
    }
    Ok(lat)
}

/// 64 writers, each commits its batch with `durability(Some(SyncAll))`. Returns relationships/s.
fn fjall_group_each(f: &Fjall, new: NewRels, first: u32, rev: &AtomicU64) -> Res<f64> {
    let t = Instant::now();
    std::thread::scope(|s| {
        for w in 0..WRITERS as u32 {
            s.spawn(move || {
                for i in 0..PER_WRITER as u32 {
                    let key = new.key(first + w * PER_WRITER as u32 + i);
                    let r = rev.fetch_add(1, Ordering::Relaxed);
                    let (v, n) = live_value(r);
                    let mut b = f.db.batch().durability(Some(PersistMode::SyncAll));
                    b.insert(&f.live, &key[..], &v[..n]);
                    b.insert(&f.log, &r.to_be_bytes()[..], &log_value(&key)[..]);
                    b.commit().unwrap();
                }
            });
        }
    });
    Ok((WRITERS * PER_WRITER) as f64 / t.elapsed().as_secs_f64())
}

#[derive(Default)]
struct SyncState {
    committed: u64,
    synced: u64,
    syncs: u64,
    stop: bool,
}

/// 64 writers commit without sync; one syncer thread persists (SyncAll) and releases every
/// writer that committed before the call. Returns (relationships/s, mean writes per sync).
fn fjall_group_syncer(f: &Fjall, new: NewRels, first: u32, rev: &AtomicU64) -> Res<(f64, f64)> {
    let st = Mutex::new(SyncState::default());
    let (work, durable) = (Condvar::new(), Condvar::new());
    let t = Instant::now();
    std::thread::scope(|s| {
        let (st, work, durable) = (&st, &work, &durable);
        let syncer = s.spawn(move || loop {
            let mut g = st.lock().unwrap();
            while g.committed == g.synced && !g.stop {
                g = work.wait(g).unwrap();
            }
            if g.committed == g.synced && g.stop {
                break;
            }
            let c = g.committed;
            drop(g);
            f.db.persist(PersistMode::SyncAll).unwrap();
            let mut g = st.lock().unwrap();
            g.synced = c;
            g.syncs += 1;
            durable.notify_all();
        });
        let writers: Vec<_> = (0..WRITERS as u32)
            .map(|w| {
                s.spawn(move || {
                    for i in 0..PER_WRITER as u32 {
                        let key = new.key(first + w * PER_WRITER as u32 + i);
                        let r = rev.fetch_add(1, Ordering::Relaxed);
                        let (v, n) = live_value(r);
                        let mut b = f.db.batch().durability(None);
                        b.insert(&f.live, &key[..], &v[..n]);
                        b.insert(&f.log, &r.to_be_bytes()[..], &log_value(&key)[..]);
                        b.commit().unwrap();
                        let mut g = st.lock().unwrap();
                        g.committed += 1;
                        let ticket = g.committed;
                        work.notify_one();
                        while g.synced < ticket {
                            g = durable.wait(g).unwrap();
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        st.lock().unwrap().stop = true;
        work.notify_one();
        syncer.join().unwrap();
    });
    let secs = t.elapsed().as_secs_f64();
    let n = (WRITERS * PER_WRITER) as f64;
    let syncs = st.lock().unwrap().syncs;
    Ok((n / secs, n / syncs as f64))
}

fn fjall_child_abort(path: &Path, new: NewRels, first: u32) -> Res<()> {
    let f = fjall_open(path)?;
    let mut b = f.db.batch().durability(Some(PersistMode::SyncAll));
    for i in 0..ABORT_BATCH {
        let key = new.key(first + i);
        let r = u64::MAX / 2 + u64::from(i);
        let (v, n) = live_value(r);
        b.insert(&f.live, &key[..], &v[..n]);
        b.insert(&f.log, &r.to_be_bytes()[..], &log_value(&key)[..]);
    }
    b.commit()?;
    std::process::abort();
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// `PURVIEW_STORAGE_CHILD=<kind>|<engine>|<path>|<newrels>|<first>`; kind = probe, abort,
/// abort-quick. A probe prints how opening a store another process holds went.
fn child(spec: &str) -> Res<()> {
    let parts: Vec<&str> = spec.split('|').collect();
    let (kind, engine, path) = (parts[0], parts[1], Path::new(parts[2]));
    match (kind, engine) {
        ("probe", "redb") => match redb::Database::open(path) {
            Ok(_) => println!("opened (no lock)"),
            Err(e) => println!("refused: {e}"),
        },
        ("probe", "fjall") => {
            let t = Instant::now();
            match fjall::Database::builder(path).open() {
                Ok(_) => println!("opened (no lock)"),
                Err(e) => println!("refused after {:.0?}: {e} ({e:?})", t.elapsed()),
            }
        }
        (_, _) => {
            let new = NewRels::decode(parts[3]);
            let first: u32 = parts[4].parse()?;
            match (kind, engine) {
                ("abort", "redb") => redb_child_abort(path, new, first, false)?,
                ("abort-quick", "redb") => redb_child_abort(path, new, first, true)?,
                ("abort", "fjall") => fjall_child_abort(path, new, first)?,
                _ => return Err(format!("unknown child spec {spec}").into()),
            }
        }
    }
    Ok(())
}

fn spawn_child(spec: &str) -> Res<(std::process::ExitStatus, String)> {
    let out = Command::new(std::env::current_exe()?).env(CHILD_ENV, spec).output()?;
    let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let err = String::from_utf8_lossy(&out.stderr);
    if !err.trim().is_empty() {
        text.push_str(&format!(" [stderr: {}]", err.trim()));
    }
    Ok((out.status, text))
}

fn probe_lock(engine: &str, path: &Path) -> Res<String> {
    let (_, text) = spawn_child(&format!("probe|{engine}|{}", path.display()))?;
    Ok(text)
}

/// Runs the abort child, then times reopen + reading the child's last key.
fn abort_and_reopen(kind: &str, engine: &str, path: &Path, new: NewRels, first: u32) -> Res<(f64, String)> {
    let (status, text) =
        spawn_child(&format!("{kind}|{engine}|{}|{}|{first}", path.display(), new.encode()))?;
    let last = new.key(first + ABORT_BATCH - 1);
    let t = Instant::now();
    let found = if engine == "redb" {
        let db = redb::Database::open(path)?;
        let tx = db.begin_read()?;
        let found = tx.open_table(LIVE)?.get(&last)?.is_some();
        drop(tx);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        db.close()?;
        (found, ms)
    } else {
        let f = fjall_open(path)?;
        let found = f.live.get(last)?.is_some();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        drop(f);
        (found, ms)
    };
    Ok((found.1, format!("child {status} {text}; child's synced batch present after reopen: {}", found.0)))
}

// ---------------------------------------------------------------------------------------------
// Newer-format probe

fn format_probe() -> Res<(String, String)> {
    let dir = tempfile::tempdir()?;
    let key = live_key(1, 2, 3, 4, 5, NONE_REL);
    // redb: the version byte is the first byte of each commit slot (offsets 64 and 192).
    let rp = dir.path().join("r.redb");
    {
        let db = redb::Database::create(&rp)?;
        let tx = db.begin_write()?;
        tx.open_table(LIVE)?.insert(&key, &[1u8, 0][..])?;
        tx.commit()?;
        db.close()?;
    }
    let mut bytes = std::fs::read(&rp)?;
    let (v0, v1) = (bytes[64], bytes[192]);
    bytes[64] = v0 + 1;
    bytes[192] = v1 + 1;
    std::fs::write(&rp, &bytes)?;
    let redb = match redb::Database::open(&rp) {
        Ok(_) => format!("version byte {v0}->{}: opened", v0 + 1),
        Err(e) => format!("version byte {v0}->{}: {e} ({e:?})", v0 + 1),
    };
    // fjall: the `version` file is "FJL" + format byte.
    let fp = dir.path().join("f");
    {
        let f = fjall_open(&fp)?;
        f.live.insert(key, [1u8, 0])?;
        f.db.persist(PersistMode::SyncAll)?;
    }
    let vp = fp.join("version");
    let mut bytes = std::fs::read(&vp)?;
    let v = bytes[3];
    bytes[3] = v + 1;
    std::fs::write(&vp, &bytes)?;
    let fjall = match fjall::Database::builder(&fp).open() {
        Ok(_) => format!("version byte {v}->{}: opened", v + 1),
        Err(e) => format!("version byte {v}->{}: {e} ({e:?})", v + 1),
    };
    Ok((redb, fjall))
}

// ---------------------------------------------------------------------------------------------
// Driver

struct Variant {
    name: &'static str,
    import: Duration,
    settle: Option<Duration>,
    apparent: u64,
    allocated: u64,
}

#[derive(Default)]
struct EngineResult {
    engine: String,
    variant: String,
    import_rate: f64,
    settle: Option<Duration>,
    bytes_per_rel: f64,
    open_clean_ms: f64,
    open_after_writes_ms: f64,
    open_abort_ms: f64,
    p50: f64,
    p99: f64,
    group_rate: f64,
    notes: Vec<String>,
}

fn run_redb(rows: &Rows, shuffled: &[[u8; 24]], rev0: u64) -> Res<EngineResult> {
    let n = rows.live.len() as f64;
    let mut variants = Vec::new();
    let mut dirs = Vec::new();
    for name in ["dataset order", "sorted first", "shuffled"] {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store.redb");
        let t = Instant::now();
        let sorted;
        let live: &[[u8; 24]] = match name {
            "sorted first" => {
                let mut v = rows.live.clone();
                v.sort_unstable();
                sorted = v;
                &sorted
            }
            "shuffled" => shuffled,
            _ => &rows.live,
        };
        let sort_time = t.elapsed();
        let import = redb_import(&path, &rows.names, live)? + sort_time;
        let (apparent, allocated) = dir_size(dir.path());
        eprintln!("[redb] {name}: import {import:.1?}, {:.1} MB", apparent as f64 / 1e6);
        variants.push(Variant { name, import, settle: None, apparent, allocated });
        dirs.push(dir);
    }
    let best = (0..variants.len()).min_by_key(|&i| variants[i].import).unwrap();
    let mut r = EngineResult { engine: "redb 5.0.0".into(), ..Default::default() };
    for v in &variants {
        r.notes.push(format!(
            "redb import, {}: {:.0} rels/s ({:.1?}); {:.1} bytes/rel apparent, {:.1} allocated",
            v.name,
            n / v.import.as_secs_f64(),
            v.import,
            v.apparent as f64 / n,
            v.allocated as f64 / n
        ));
    }
    let v = &variants[best];
    r.variant = v.name.into();
    r.import_rate = n / v.import.as_secs_f64();
    r.bytes_per_rel = v.apparent as f64 / n;
    let dir = dirs.swap_remove(best);
    drop(dirs);
    let path = dir.path().join("store.redb");

    let (db, open) = redb_open_and_read(&path, &rows.live[rows.live.len() / 2])?;
    r.open_clean_ms = open.as_secs_f64() * 1e3;
    r.notes.push(format!("redb second process opening the open store: {}", probe_lock("redb", &path)?));

    os_sync();
    let rev = AtomicU64::new(rev0);
    let mut lat = redb_single_writes(&db, rows.new, 0, &rev, false)?;
    lat.sort();
    (r.p50, r.p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let mut lat = redb_single_writes(&db, rows.new, 3_000, &rev, true)?;
    lat.sort();
    r.notes.push(format!(
        "redb single writes with set_quick_repair(true): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    ));
    let (rate, group) = redb_group(&db, rows.new, 10_000, &rev)?;
    r.group_rate = rate;
    r.notes.push(format!("redb group commit: {rate:.0} rels/s, {group:.1} writes per transaction"));
    db.close()?;
    let (db, open) = redb_open_and_read(&path, &rows.live[0])?;
    r.open_after_writes_ms = open.as_secs_f64() * 1e3;
    db.close()?;

    let (ms, text) = abort_and_reopen("abort", "redb", &path, rows.new, 100_000)?;
    r.open_abort_ms = ms;
    r.notes.push(format!("redb reopen after abort (quick_repair off): {ms:.0} ms; {text}"));
    let (ms2, text) = abort_and_reopen("abort-quick", "redb", &path, rows.new, 200_000)?;
    r.notes
        .push(format!("redb reopen after abort (child committed with quick_repair on): {ms2:.0} ms; {text}"));
    let (_, again) = redb_open_and_read(&path, &rows.live[0])?;
    r.notes.push(format!("redb clean reopen once more: {:.1} ms", again.as_secs_f64() * 1e3));
    Ok(r)
}

fn run_fjall(rows: &Rows, shuffled: &[[u8; 24]], rev0: u64) -> Res<EngineResult> {
    let n = rows.live.len() as f64;
    let mut variants = Vec::new();
    let mut dirs = Vec::new();
    for name in ["dataset order", "sorted first + ingestion API", "shuffled"] {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("store");
        let (f, import) = match name {
            "sorted first + ingestion API" => {
                let t = Instant::now();
                let mut v = rows.live.clone();
                v.sort_unstable();
                let sort_time = t.elapsed();
                let (f, d) = fjall_import_ingest(&path, &rows.names, &v)?;
                (f, d + sort_time)
            }
            "shuffled" => fjall_import_batches(&path, &rows.names, shuffled)?,
            _ => fjall_import_batches(&path, &rows.names, &rows.live)?,
        };
        let settle = fjall_settle_and_close(f)?;
        let (apparent, allocated) = dir_size(dir.path());
        eprintln!(
            "[fjall] {name}: import {import:.1?} + settle {settle:.1?}, {:.1} MB",
            apparent as f64 / 1e6
        );
        variants.push(Variant { name, import, settle: Some(settle), apparent, allocated });
        dirs.push(dir);
    }
    let best = (0..variants.len()).min_by_key(|&i| variants[i].import).unwrap();
    let mut r = EngineResult { engine: "fjall 3.1.13".into(), ..Default::default() };
    for v in &variants {
        let settle = v.settle.unwrap_or_default();
        r.notes.push(format!(
            "fjall import, {}: {:.0} rels/s to durable ({:.1?}), then {:.1?} of background flush/compaction \
             ({:.0} rels/s including it); {:.1} bytes/rel apparent, {:.1} allocated",
            v.name,
            n / v.import.as_secs_f64(),
            v.import,
            settle,
            n / (v.import + settle).as_secs_f64(),
            v.apparent as f64 / n,
            v.allocated as f64 / n
        ));
    }
    let v = &variants[best];
    r.variant = v.name.into();
    r.import_rate = n / v.import.as_secs_f64();
    r.settle = v.settle;
    r.bytes_per_rel = v.apparent as f64 / n;
    let dir = dirs.swap_remove(best);
    drop(dirs);
    let path = dir.path().join("store");

    let (f, open) = fjall_open_and_read(&path, &rows.live[rows.live.len() / 2])?;
    r.open_clean_ms = open.as_secs_f64() * 1e3;
    r.notes.push(format!("fjall second process opening the open store: {}", probe_lock("fjall", &path)?));

    os_sync();
    let rev = AtomicU64::new(rev0);
    let mut lat = fjall_single_writes(&f, rows.new, 0, &rev, PersistMode::SyncAll)?;
    lat.sort();
    (r.p50, r.p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let mut lat = fjall_single_writes(&f, rows.new, 3_000, &rev, PersistMode::SyncData)?;
    lat.sort();
    r.notes.push(format!(
        "fjall single writes with SyncData (fdatasync): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    ));
    let each = fjall_group_each(&f, rows.new, 10_000, &rev)?;
    let (syncer, per_sync) = fjall_group_syncer(&f, rows.new, 40_000, &rev)?;
    r.notes.push(format!(
        "fjall group commit: each writer commits with SyncAll {each:.0} rels/s; one syncer thread \
         {syncer:.0} rels/s ({per_sync:.1} writes per persist)"
    ));
    r.group_rate = each.max(syncer);
    let settle = fjall_settle_and_close(f)?;
    r.notes.push(format!("fjall settle after the write steps: {settle:.1?}"));
    let (f, open) = fjall_open_and_read(&path, &rows.live[0])?;
    r.open_after_writes_ms = open.as_secs_f64() * 1e3;
    drop(f);

    let (ms, text) = abort_and_reopen("abort", "fjall", &path, rows.new, 100_000)?;
    r.open_abort_ms = ms;
    r.notes.push(format!("fjall reopen after abort: {ms:.0} ms; {text}"));
    let (_, again) = fjall_open_and_read(&path, &rows.live[0])?;
    r.notes
        .push(format!("fjall clean reopen once more (after recovery): {:.1} ms", again.as_secs_f64() * 1e3));
    Ok(r)
}

fn main() -> Res<()> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return child(&spec);
    }
    let scale = scale();
    let (rows, index_len) = load_rows(scale);
    let sorted = rows.live.windows(2).all(|w| w[0] < w[1]);
    let names_sorted = rows.names.windows(2).all(|w| w[0].0 < w[1].0);
    eprintln!("[dataset] relationships in ascending key order: {sorted}; names: {names_sorted}");
    let mut shuffled = rows.live.clone();
    let mut rng = Rng::new(99);
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let rev0 = import_rev(rows.names.len() + rows.live.len()) + 1;
    let (redb_fmt, fjall_fmt) = format_probe()?;

    let results = [run_redb(&rows, &shuffled, rev0)?, run_fjall(&rows, &shuffled, rev0)?];

    println!();
    println!(
        "eComms at scale {scale}: {} relationships (index len {index_len}), {} names; {} cores; temp dir {}",
        rows.live.len(),
        rows.names.len(),
        std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        std::env::temp_dir().display()
    );
    println!();
    println!(
        "| engine | import rels/s | bytes/rel on disk | open ms (clean: after import / after writes) | open ms (after abort) | write p50/p99 ms | {WRITERS}-writer rels/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &results {
        let settle = r.settle.map(|s| format!(" (+{:.1?} bg settle)", s)).unwrap_or_default();
        println!(
            "| {} ({}) | {:.0}{} | {:.1} | {:.1} / {:.1} | {:.0} | {:.2} / {:.2} | {:.0} |",
            r.engine,
            r.variant,
            r.import_rate,
            settle,
            r.bytes_per_rel,
            r.open_clean_ms,
            r.open_after_writes_ms,
            r.open_abort_ms,
            r.p50,
            r.p99,
            r.group_rate
        );
    }
    println!();
    println!("Notes:");
    for r in &results {
        for n in &r.notes {
            println!("- {n}");
        }
    }
    println!("- redb opening a store with a newer format: {redb_fmt}");
    println!("- fjall opening a store with a newer format: {fjall_fmt}");
    Ok(())
}
