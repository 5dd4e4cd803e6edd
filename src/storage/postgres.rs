//! PostgreSQL as the system of record for many Purview nodes: a second [`Storage`] backend.
//!
//! **Revisions in commit order.** Every write transaction first locks the one row of
//! `purview_head` (`SELECT … FOR UPDATE`), reads the latest revision, and commits revision
//! `latest + 1` while still holding that lock; the lock is released only once the commit is
//! visible. So revisions are assigned in commit order across every node: when revision `R + 1`
//! is visible, so is every revision up to `R`, and a replica reading "the log after `R`" can never
//! skip a transaction that commits later with a smaller number.
//!
//! **Writes serialized, validated on a caught-up index.** Holding that lock, a node first
//! brings its in-memory index up to the latest revision (reading the log it is missing), then
//! validates the batch (preconditions, the schema's constraints: at most N holders, one of,
//! requires, …) exactly as the embedded store does, and writes the rows, the log record and
//! the new head in the same transaction. Constraints therefore hold across nodes without
//! serializable retries; the price is one writing transaction at a time for the whole
//! cluster, which group commit offsets (one transaction carries every batch the node's writers
//! queued while the previous one committed).
//!
//! **Object ids are the same on every node.** Object names get dense ids in the order revisions
//! introduce them, and every node replays the same revisions in the same order, so a row's ids
//! mean the same on each node (the log records the ids it assigns; replay checks them).
//!
//! **Followers.** A node LISTENs on `purview_commits` (each commit NOTIFYs it) and polls as a
//! fallback; on a wake-up it reads the log after its revision in one REPEATABLE READ snapshot
//! (so a schema change or import it has to rebuild for is read consistently) and publishes.
//!
//! The calls of the [`Storage`] trait are synchronous; the connections are driven by a small
//! tokio runtime owned by the backend, and queries are awaited with a plain executor, so the
//! backend can be called from any thread, async or not.

use super::{
    CommitBody, DictName, LogRecord, Row, RowChange, RowKey, RowScope, SchemaRecord, Storage, StorageError,
};
use crate::store::{PortableAttrs, Revision};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures_util::{pin_mut, StreamExt};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

/// The version of the tables this build reads and writes.
pub const SCHEMA_VERSION: i32 = 1;

/// The migrations, in order: (version, what it does, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[(1, "relationships, names, changelog, schemas", MIGRATION_1)];

const MIGRATION_1: &str = r#"
CREATE TABLE purview_meta (key text PRIMARY KEY, value bytea NOT NULL);
INSERT INTO purview_meta VALUES ('store_id', decode(md5(random()::text || clock_timestamp()::text), 'hex'));
CREATE TABLE purview_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision bigint NOT NULL
);
INSERT INTO purview_head VALUES (true, 0);
CREATE TABLE purview_log (
    revision bigint PRIMARY KEY,
    committed_at timestamptz NOT NULL,
    kind text NOT NULL,
    record bytea NOT NULL
);
CREATE TABLE purview_schema (revision bigint PRIMARY KEY, format text NOT NULL, text text NOT NULL);
CREATE TABLE purview_dict (
    kind text NOT NULL,
    owner text NOT NULL,
    name text NOT NULL,
    id integer NOT NULL,
    PRIMARY KEY (kind, owner, name)
);
CREATE TABLE purview_names (
    type_id integer NOT NULL,
    object_id integer NOT NULL,
    name text NOT NULL,
    revision bigint NOT NULL,
    PRIMARY KEY (type_id, object_id)
);
CREATE TABLE purview_rows (
    resource_type integer NOT NULL,
    resource_id integer NOT NULL,
    relation integer NOT NULL,
    subject_type integer NOT NULL,
    subject_id integer NOT NULL,
    subject_relation integer NOT NULL,
    created bigint NOT NULL,
    deleted bigint,
    attrs bytea,
    PRIMARY KEY (resource_type, resource_id, relation, subject_type, subject_id, subject_relation, created)
);
CREATE UNIQUE INDEX purview_rows_live ON purview_rows
    (resource_type, resource_id, relation, subject_type, subject_id, subject_relation) WHERE deleted IS NULL;
CREATE INDEX purview_rows_deleted ON purview_rows (deleted) WHERE deleted IS NOT NULL;
-- The live relationships by name, for people and tools (Purview reads the tables above).
CREATE VIEW purview_relationships AS
SELECT rt.name AS resource_type, rn.name AS resource_id, rl.name AS relation,
       st.name AS subject_type, COALESCE(sn.name, '*') AS subject_id, sr.name AS subject_relation,
       r.attrs IS NOT NULL AS has_attributes, r.created AS created_revision
FROM purview_rows r
JOIN purview_dict rt ON rt.kind = 'type' AND rt.id = r.resource_type
JOIN purview_names rn ON rn.type_id = r.resource_type AND rn.object_id = r.resource_id
JOIN purview_dict rl ON rl.kind = 'relation' AND rl.id = r.relation
JOIN purview_dict st ON st.kind = 'type' AND st.id = r.subject_type
LEFT JOIN purview_names sn ON sn.type_id = r.subject_type AND sn.object_id = r.subject_id
LEFT JOIN purview_dict sr ON sr.kind = 'relation' AND sr.id = r.subject_relation
WHERE r.deleted IS NULL;
"#;

/// The indexes of `purview_names` and `purview_rows` as the migrations create them (an import
/// into the empty tables drops and rebuilds them; keep in step with the migrations).
const INDEXES: &str = "\
    ALTER TABLE purview_names ADD PRIMARY KEY (type_id, object_id); \
    ALTER TABLE purview_rows ADD PRIMARY KEY \
      (resource_type, resource_id, relation, subject_type, subject_id, subject_relation, created); \
    CREATE UNIQUE INDEX purview_rows_live ON purview_rows \
      (resource_type, resource_id, relation, subject_type, subject_id, subject_relation) WHERE deleted IS NULL; \
    CREATE INDEX purview_rows_deleted ON purview_rows (deleted) WHERE deleted IS NOT NULL;";

/// Advisory lock keys ("purview" and a number): migrations, garbage collection.
const MIGRATE_LOCK: i64 = 0x7075_7276_6965_7701;
const GC_LOCK: i64 = 0x7075_7276_6965_7702;
/// The channel every commit notifies.
pub const CHANNEL: &str = "purview_commits";

/// How long a writer waits for the cluster-wide write lock before it gives up.
const LOCK_TIMEOUT: &str = "10s";
/// How long one statement of a write may run (a stuck connection must not hold the lock).
const STATEMENT_TIMEOUT: &str = "60s";
/// How long a writing transaction may sit idle: a node stuck between its statements (its
/// process stalled, its connection half-open) loses the write lock, so that the other nodes go
/// on; its own write then fails.
const IDLE_TIMEOUT: &str = "15s";

fn pg_err(context: &str, e: &tokio_postgres::Error) -> StorageError {
    let detail = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    };
    StorageError::Failed(format!("PostgreSQL: {context}: {detail}"))
}

fn i(v: u32) -> i32 {
    v as i32
}

fn u(v: i32) -> u32 {
    v as u32
}

fn rev(v: i64) -> Result<Revision, StorageError> {
    u64::try_from(v).map_err(|_| StorageError::Corrupt(format!("a negative revision {v}")))
}

fn rev_sql(r: Revision) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

fn encode_attrs(a: &PortableAttrs) -> Option<Vec<u8>> {
    (!a.is_plain() || a.context.is_some()).then(|| super::encode(a))
}

fn decode_attrs(b: Option<&[u8]>) -> Result<PortableAttrs, StorageError> {
    match b {
        None => Ok(PortableAttrs::default()),
        Some(b) => super::decode(b, "a row's attributes"),
    }
}

fn dict_columns(n: &DictName) -> (&'static str, &str, &str) {
    match n {
        DictName::Type(t) => ("type", "", t),
        DictName::Relation(t, r) => ("relation", t, r),
        DictName::Condition(c) => ("condition", "", c),
    }
}

/// Where a database is, for messages (no password).
fn describe(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(c) => {
            let host = c
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_default();
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!("{host}:{port}/{}", c.get_dbname().unwrap_or(""))
        }
        Err(_) => "(an unparsable URL)".to_string(),
    }
}

/// The state of the one writing transaction of this node.
#[derive(Default)]
struct WriteTxn {
    client: Option<Object>,
}

/// Wake-ups from the LISTEN connection.
#[derive(Default)]
struct Notices {
    count: u64,
    stopped: bool,
}

/// The PostgreSQL backend (see the module docs).
pub struct PgStorage {
    /// Owned so that it can be shut down without blocking, from any thread (see `Drop`).
    runtime: Option<tokio::runtime::Runtime>,
    rt: tokio::runtime::Handle,
    pool: Pool,
    url: String,
    target: String,
    write: Mutex<WriteTxn>,
    free: Condvar,
    /// Read snapshots, each owned by the thread that pinned it (only that thread's reads use
    /// it: another thread's read, a fully consistent one say, must see the latest commits).
    pinned: Mutex<Vec<(std::thread::ThreadId, Object)>>,
    notices: Arc<(Mutex<Notices>, Condvar)>,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage").field("target", &self.target).finish()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Runs a future that only talks to tokio-postgres channels (not to tokio itself) on this
/// thread.
fn block<F: Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// A connection for reading: this thread's pinned snapshot (taken out of the list while in use,
/// put back when the reader goes), or one from the pool.
enum Reader<'a> {
    Pinned(Option<Box<Object>>, &'a Mutex<Vec<(std::thread::ThreadId, Object)>>),
    Pooled(Box<Object>),
}

impl Reader<'_> {
    fn client(&self) -> Result<&tokio_postgres::Client, StorageError> {
        match self {
            Reader::Pinned(Some(c), _) => Ok(c),
            Reader::Pinned(None, _) => Err(StorageError::Failed("the read snapshot ended".into())),
            Reader::Pooled(o) => Ok(o),
        }
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Reader::Pinned(c, list) = self {
            if let Some(c) = c.take() {
                locked(list).push((std::thread::current().id(), *c));
            }
        }
    }
}

impl PgStorage {
    /// Connects to the database at `url` (a `postgres://` URL or a libpq key=value string),
    /// checking that it holds Purview's tables at this build's version.
    pub fn connect(url: &str) -> Result<PgStorage, StorageError> {
        let storage = PgStorage::connect_unchecked(url)?;
        match storage.version()? {
            Some(v) if v == SCHEMA_VERSION => Ok(storage),
            Some(v) if v > SCHEMA_VERSION => Err(StorageError::Failed(format!(
                "the database {} was migrated by a newer Purview (table version {v}; this build knows \
                 version {SCHEMA_VERSION}): upgrade Purview",
                storage.target
            ))),
            found => Err(StorageError::Failed(format!(
                "the database {} {}: run `purview datastore migrate '{}'` first",
                storage.target,
                match found {
                    None => "holds no Purview tables".to_string(),
                    Some(v) =>
                        format!("has Purview tables of version {v}, older than this build's {SCHEMA_VERSION}"),
                },
                redact(url)
            ))),
        }
    }

    fn connect_unchecked(url: &str) -> Result<PgStorage, StorageError> {
        let target = describe(url);
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| StorageError::Failed(format!("a bad PostgreSQL URL: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("purview-postgres")
            .enable_all()
            .build()
            .map_err(|e| StorageError::io("cannot start the PostgreSQL runtime", e))?;
        let mut config = config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("purview");
        let manager =
            Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = {
            let _enter = rt.enter();
            Pool::builder(manager)
                .max_size(8)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(Duration::from_secs(10)))
                .create_timeout(Some(Duration::from_secs(5)))
                .recycle_timeout(Some(Duration::from_secs(5)))
                .build()
                .map_err(|e| StorageError::Failed(format!("PostgreSQL pool: {e}")))?
        };
        let storage = PgStorage {
            rt: rt.handle().clone(),
            runtime: Some(rt),
            pool,
            url: url.to_string(),
            target,
            write: Mutex::new(WriteTxn::default()),
            free: Condvar::new(),
            pinned: Mutex::new(Vec::new()),
            notices: Arc::new((Mutex::new(Notices::default()), Condvar::new())),
        };
        // Fail now, clearly, if the database cannot be reached.
        drop(storage.client()?);
        Ok(storage)
    }

    /// Where the database is (host:port/dbname).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `f` on the backend's runtime and waits for it (from any thread).
    fn on_runtime<T: Send + 'static>(
        &self,
        f: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv().map_err(|_| StorageError::Failed("the PostgreSQL runtime stopped".into()))
    }

    fn client(&self) -> Result<Object, StorageError> {
        let pool = self.pool.clone();
        let target = self.target.clone();
        self.on_runtime(async move { pool.get().await })?.map_err(|e| {
            StorageError::Failed(format!("PostgreSQL: cannot connect to {target}: {}", pool_error(&e)))
        })
    }

    fn reader(&self) -> Result<Reader<'_>, StorageError> {
        let me = std::thread::current().id();
        let mut list = locked(&self.pinned);
        if let Some(i) = list.iter().position(|(t, _)| *t == me) {
            let (_, c) = list.swap_remove(i);
            return Ok(Reader::Pinned(Some(Box::new(c)), &self.pinned));
        }
        drop(list);
        Ok(Reader::Pooled(Box::new(self.client()?)))
    }

    /// The version of the tables, `None` when there are none.
    pub fn version(&self) -> Result<Option<i32>, StorageError> {
        let c = self.client()?;
        let exists = block(c.query_one("SELECT to_regclass('purview_migrations') IS NOT NULL", &[]))
            .map_err(|e| pg_err("reading the table version", &e))?;
        if !exists.get::<_, bool>(0) {
            return Ok(None);
        }
        let row = block(c.query_one("SELECT max(version) FROM purview_migrations", &[]))
            .map_err(|e| pg_err("reading the table version", &e))?;
        Ok(row.get::<_, Option<i32>>(0))
    }

    /// Creates or upgrades Purview's tables (see [`migrate`]).
    fn migrate(&self) -> Result<Migrated, StorageError> {
        let mut c = self.client()?;
        let ctx = |e: tokio_postgres::Error| pg_err("migrating", &e);
        let tx = block(c.transaction()).map_err(ctx)?;
        // One migrator at a time, on every node: the second finds the work done.
        block(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])).map_err(ctx)?;
        block(tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS purview_migrations (
                 version integer PRIMARY KEY,
                 description text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        ))
        .map_err(ctx)?;
        let row = block(tx.query_one("SELECT coalesce(max(version), 0) FROM purview_migrations", &[]))
            .map_err(ctx)?;
        let before: i32 = row.get(0);
        if before > SCHEMA_VERSION {
            return Err(StorageError::Failed(format!(
                "the database {} was migrated by a newer Purview (table version {before}; this build knows \
                 version {SCHEMA_VERSION}): nothing was changed",
                self.target
            )));
        }
        let mut applied = Vec::new();
        for (version, description, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > before) {
            block(tx.batch_execute(sql)).map_err(ctx)?;
            block(tx.execute(
                "INSERT INTO purview_migrations (version, description) VALUES ($1, $2)",
                &[version, description],
            ))
            .map_err(ctx)?;
            applied.push(format!("{version}: {description}"));
        }
        block(tx.commit()).map_err(ctx)?;
        Ok(Migrated { before, after: SCHEMA_VERSION, applied })
    }

    /// Holds a REPEATABLE READ snapshot for every read until [`Storage::unpin`].
    fn pin_snapshot(&self) -> Result<(), StorageError> {
        let c = self.client()?;
        block(c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            .map_err(|e| pg_err("starting a read snapshot", &e))?;
        locked(&self.pinned).push((std::thread::current().id(), c));
        Ok(())
    }

    fn with_write<T>(&self, f: impl FnOnce(&Object) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let w = locked(&self.write);
        let Some(c) = w.client.as_ref() else {
            return Err(StorageError::Failed("a write outside a transaction (no begin)".into()));
        };
        f(c)
    }

    /// Ends the writing transaction: commits it (`commit`) or rolls it back, and frees the
    /// write slot. A connection that failed is dropped, not returned to the pool.
    fn end_write(&self, commit: bool) -> Result<(), StorageError> {
        let mut w = locked(&self.write);
        let Some(c) = w.client.take() else { return Ok(()) };
        let sql = if commit { "COMMIT" } else { "ROLLBACK" };
        let result = block(c.batch_execute(sql)).map_err(|e| pg_err("ending a write", &e));
        if result.is_err() || c.is_closed() {
            drop(Object::take(c));
        } else {
            drop(c);
        }
        drop(w);
        self.free.notify_all();
        result
    }

    /// Starts the LISTEN connection (reconnecting with backoff while the backend lives):
    /// every commit of any node wakes [`PgStorage::wait_change`].
    pub fn listen(&self, warn: Arc<dyn Fn(&str) + Send + Sync>) {
        let notices = self.notices.clone();
        let url = self.url.clone();
        self.rt.spawn(async move {
            let mut backoff = Duration::from_millis(50);
            let mut failed_before = false;
            loop {
                if locked(&notices.0).stopped {
                    return;
                }
                match listen_once(&url, &notices).await {
                    Ok(()) => return,
                    Err(e) => {
                        if !failed_before {
                            warn(&format!("lost the PostgreSQL notification connection ({e}); reconnecting"));
                        }
                        failed_before = true;
                        // Wake followers: they poll while the connection is down.
                        {
                            let mut n = locked(&notices.0);
                            n.count += 1;
                        }
                        notices.1.notify_all();
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                    }
                }
            }
        });
    }

    /// Waits until a commit is notified after `seen` (a count from an earlier call), at most
    /// `timeout`; returns the new count, or `None` once the backend is stopping.
    pub fn wait_change(&self, seen: u64, timeout: Duration) -> Option<u64> {
        let (m, cv) = &*self.notices;
        let mut n = locked(m);
        let until = std::time::Instant::now() + timeout;
        while n.count == seen && !n.stopped {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            n = match cv.wait_timeout(n, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        (!n.stopped).then_some(n.count)
    }

    /// Stops the LISTEN connection and wakes followers so that they end.
    pub fn stop(&self) {
        locked(&self.notices.0).stopped = true;
        self.notices.1.notify_all();
    }

    /// Reads the live relationships as (resource type, id, relation, subject type, id,
    /// relation) names, in no particular order: what a test compares a node's export with.
    pub fn relationship_names(&self) -> Result<Vec<[String; 6]>, StorageError> {
        let c = self.client()?;
        let rows = block(c.query(
            "SELECT resource_type, resource_id, relation, subject_type, subject_id, \
             coalesce(subject_relation, '') FROM purview_relationships",
            &[],
        ))
        .map_err(|e| pg_err("reading the relationships", &e))?;
        Ok(rows.iter().map(|r| [r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)]).collect())
    }

    /// Streams the rows of a query to `f` until it returns `false`.
    fn stream(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        f: &mut dyn FnMut(&tokio_postgres::Row) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let reader = self.reader()?;
        let c = reader.client()?;
        let ctx = |e: tokio_postgres::Error| pg_err("reading", &e);
        block(async {
            let stmt = c.prepare(sql).await.map_err(ctx)?;
            let rows = c.query_raw(&stmt, params.iter().copied()).await.map_err(ctx)?;
            pin_mut!(rows);
            while let Some(row) = rows.next().await {
                let row = row.map_err(ctx)?;
                if !f(&row)? {
                    break;
                }
            }
            Ok(())
        })
    }
}

fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(b) => {
            let mut s = b.to_string();
            let mut src = std::error::Error::source(b);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
        other => other.to_string(),
    }
}

/// A URL with its password replaced (for messages).
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, host)) = rest.split_once('@') {
            if let Some((user, _)) = auth.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

async fn listen_once(url: &str, notices: &Arc<(Mutex<Notices>, Condvar)>) -> Result<(), String> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await.map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                    if tx.send(Ok(())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
        let _ = tx.send(Err("the connection closed".to_string()));
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(|e| e.to_string())?;
    // Anything committed while the connection was down: wake the followers once.
    let wake = || {
        locked(&notices.0).count += 1;
        notices.1.notify_all();
    };
    wake();
    loop {
        let stopped = locked(&notices.0).stopped;
        if stopped {
            driver.abort();
            return Ok(());
        }
        match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            Ok(Some(Ok(()))) => wake(),
            Ok(Some(Err(e))) => return Err(e),
            Ok(None) => return Err("the connection closed".to_string()),
            Err(_) => {}
        }
    }
}

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub before: i32,
    pub after: i32,
    pub applied: Vec<String>,
}

/// Creates or upgrades Purview's tables in the database at `url`: versioned, idempotent, safe to
/// run twice or from several processes at once (they take turns on an advisory lock).
pub fn migrate(url: &str) -> Result<Migrated, StorageError> {
    PgStorage::connect_unchecked(url)?.migrate()
}

/// The row changes of a group of commits, merged: rows live before the group that it deletes,
/// and the rows it creates (deleted again within the group, some of them).
struct RowWrites {
    deletes: Vec<(RowKey, Revision)>,
    inserts: Vec<RowInsert>,
}

/// A row to insert: its key, created and (if deleted within the group) deleted revision, and
/// its attributes (`None`: plain).
type RowInsert = (RowKey, Revision, Option<Revision>, Option<Vec<u8>>);

fn merge_rows<'a>(groups: impl Iterator<Item = (Revision, &'a [RowChange])>) -> RowWrites {
    let mut out = RowWrites { deletes: Vec::new(), inserts: Vec::new() };
    let mut pending: HashMap<RowKey, usize> = HashMap::new();
    for (revision, changes) in groups {
        for ch in changes {
            if ch.before.is_some() {
                match pending.remove(&ch.key) {
                    Some(i) => out.inserts[i].2 = Some(revision),
                    None => out.deletes.push((ch.key, revision)),
                }
            }
            if let Some(after) = &ch.after {
                pending.insert(ch.key, out.inserts.len());
                out.inserts.push((ch.key, revision, None, encode_attrs(after)));
            }
        }
    }
    out
}

fn key_columns<'a, T>(rows: impl Iterator<Item = (&'a RowKey, T)>) -> ([Vec<i32>; 6], Vec<T>) {
    let mut cols: [Vec<i32>; 6] = Default::default();
    let mut rest = Vec::new();
    for (k, t) in rows {
        for (c, v) in cols.iter_mut().zip(k.iter()) {
            c.push(i(*v));
        }
        rest.push(t);
    }
    (cols, rest)
}

fn row_of(r: &tokio_postgres::Row) -> Result<Row, StorageError> {
    let key = [u(r.get(0)), u(r.get(1)), u(r.get(2)), u(r.get(3)), u(r.get(4)), u(r.get(5))];
    let created = rev(r.get(6))?;
    let deleted = r.get::<_, Option<i64>>(7).map(rev).transpose()?;
    let attrs = decode_attrs(r.get::<_, Option<&[u8]>>(8))?;
    Ok(Row { key, created, deleted, attrs })
}

const SQL_DICT: &str = "INSERT INTO purview_dict (kind, owner, name, id) \
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[]) ON CONFLICT DO NOTHING";
const SQL_NAMES: &str = "INSERT INTO purview_names (type_id, object_id, name, revision) \
     SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::int8[])";
const SQL_DELETE: &str = "UPDATE purview_rows r SET deleted = d.rev \
     FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[], $7::int8[]) \
       AS d(a, b, c, e, f, g, rev) \
     WHERE r.resource_type = d.a AND r.resource_id = d.b AND r.relation = d.c \
       AND r.subject_type = d.e AND r.subject_id = d.f AND r.subject_relation = d.g AND r.deleted IS NULL";
const SQL_INSERT: &str = "INSERT INTO purview_rows (resource_type, resource_id, relation, subject_type, \
       subject_id, subject_relation, created, deleted, attrs) \
     SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[], \
       $7::int8[], $8::int8[], $9::bytea[])";
const SQL_SCHEMA: &str = "INSERT INTO purview_schema (revision, format, text) VALUES ($1, $2, $3)";
const SQL_LOG: &str = "INSERT INTO purview_log (revision, committed_at, kind, record) \
     SELECT r, to_timestamp(t / 1000000.0), k, rec \
     FROM unnest($1::int8[], $2::int8[], $3::text[], $4::bytea[]) AS x(r, t, k, rec)";
const SQL_HEAD: &str = "UPDATE purview_head SET revision = $1";
const SQL_NOTIFY: &str = "SELECT pg_notify($1, $2)";

const ROW_COLUMNS: &str =
    "resource_type, resource_id, relation, subject_type, subject_id, subject_relation, created, deleted, attrs";

impl Storage for PgStorage {
    fn is_shared(&self) -> bool {
        true
    }

    fn begin(&self) -> Result<Option<Revision>, StorageError> {
        let mut w = locked(&self.write);
        // One writing transaction per node at a time: wait for the previous one to end.
        while w.client.is_some() {
            w = match self.free.wait(w) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
        let c = self.client()?;
        // One round trip: begin, bound the waits, take the lock and read the latest revision.
        let sql = format!(
            "BEGIN; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'; \
             SET LOCAL idle_in_transaction_session_timeout = '{IDLE_TIMEOUT}'; \
             SELECT revision FROM purview_head FOR UPDATE"
        );
        let latest = match block(c.simple_query(&sql)) {
            Ok(messages) => messages.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).and_then(|v| v.parse::<u64>().ok()),
                _ => None,
            }),
            Err(e) => {
                let _ = block(c.batch_execute("ROLLBACK"));
                drop(Object::take(c));
                return Err(pg_err("taking the write lock", &e));
            }
        };
        let Some(latest) = latest else {
            let _ = block(c.batch_execute("ROLLBACK"));
            return Err(StorageError::Corrupt("the database has no head revision".into()));
        };
        w.client = Some(c);
        Ok(Some(latest))
    }

    fn abandon(&self) {
        let _ = self.end_write(false);
    }

    fn pin(&self) -> Result<(), StorageError> {
        self.pin_snapshot()
    }

    fn close(&self) {
        self.stop();
    }

    fn unpin(&self) {
        let me = std::thread::current().id();
        let mine = {
            let mut list = locked(&self.pinned);
            list.iter().position(|(t, _)| *t == me).map(|i| list.swap_remove(i).1)
        };
        if let Some(c) = mine {
            if block(c.batch_execute("COMMIT")).is_err() {
                drop(Object::take(c));
            }
        }
    }

    fn append(&self, commits: &[crate::storage::Commit]) -> Result<(), StorageError> {
        let result = self.with_write(|c| {
            let ctx = |e: tokio_postgres::Error| pg_err("writing", &e);
            let mut dict: [Vec<String>; 3] = Default::default();
            let mut dict_ids: Vec<i32> = Vec::new();
            let (mut n_ty, mut n_id, mut n_name, mut n_rev) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let (mut l_rev, mut l_time, mut l_kind, mut l_rec) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut schemas = Vec::new();
            let mut row_groups: Vec<(Revision, &[RowChange])> = Vec::new();
            for cm in commits {
                for (n, id) in &cm.dict {
                    let (k, o, name) = dict_columns(n);
                    dict[0].push(k.to_string());
                    dict[1].push(o.to_string());
                    dict[2].push(name.to_string());
                    dict_ids.push(i(*id));
                }
                for (ty, id, name) in &cm.names {
                    n_ty.push(i(*ty));
                    n_id.push(i(*id));
                    n_name.push(name.as_str());
                    n_rev.push(rev_sql(cm.revision));
                }
                let (kind, record) = match &cm.body {
                    CommitBody::Write(changes) => {
                        row_groups.push((cm.revision, changes));
                        (
                            "write",
                            LogRecord::Write {
                                time: cm.time,
                                changes: changes.clone(),
                                names: cm.names.clone(),
                            },
                        )
                    }
                    CommitBody::Import { changes, rows, .. } => {
                        row_groups.push((cm.revision, changes));
                        ("import", LogRecord::Import { time: cm.time, count: *rows })
                    }
                    CommitBody::Schema(s) => {
                        schemas.push((rev_sql(cm.revision), s));
                        ("schema", LogRecord::Schema { time: cm.time })
                    }
                };
                l_rev.push(rev_sql(cm.revision));
                l_time.push(cm.time);
                l_kind.push(kind);
                l_rec.push(super::encode(&record));
            }
            let rows = merge_rows(row_groups.iter().map(|(r, ch)| (*r, *ch)));
            let (dk, drevs) = key_columns(rows.deletes.iter().map(|(k, r)| (k, rev_sql(*r))));
            let (ik, rest) = key_columns(rows.inserts.iter().map(|(k, c, d, a)| (k, (c, d, a))));
            let created: Vec<i64> = rest.iter().map(|(c, _, _)| rev_sql(**c)).collect();
            let deleted: Vec<Option<i64>> = rest.iter().map(|(_, d, _)| d.map(rev_sql)).collect();
            let attrs: Vec<Option<&[u8]>> = rest.iter().map(|(_, _, a)| a.as_deref()).collect();
            let last = l_rev.last().copied().unwrap_or(0);
            let note = last.to_string();
            block(async {
                // Prepared once per connection; then every statement of the group is sent at
                // once (pipelined, executed in order): one round trip, not one per statement.
                let mut statements: Vec<(&str, Vec<&(dyn ToSql + Sync)>)> = Vec::new();
                if !dict_ids.is_empty() {
                    statements.push((SQL_DICT, vec![&dict[0], &dict[1], &dict[2], &dict_ids]));
                }
                if !n_ty.is_empty() {
                    statements.push((SQL_NAMES, vec![&n_ty, &n_id, &n_name, &n_rev]));
                }
                let deletes_at = statements.len();
                if !rows.deletes.is_empty() {
                    statements
                        .push((SQL_DELETE, vec![&dk[0], &dk[1], &dk[2], &dk[3], &dk[4], &dk[5], &drevs]));
                }
                if !rows.inserts.is_empty() {
                    statements.push((
                        SQL_INSERT,
                        vec![&ik[0], &ik[1], &ik[2], &ik[3], &ik[4], &ik[5], &created, &deleted, &attrs],
                    ));
                }
                for (r, s) in &schemas {
                    statements.push((SQL_SCHEMA, vec![r, &s.format, &s.text]));
                }
                statements.push((SQL_LOG, vec![&l_rev, &l_time, &l_kind, &l_rec]));
                statements.push((SQL_HEAD, vec![&last]));
                statements.push((SQL_NOTIFY, vec![&CHANNEL, &note]));
                let mut prepared = Vec::with_capacity(statements.len());
                for (sql, _) in &statements {
                    prepared.push(c.prepare_cached(sql).await.map_err(ctx)?);
                }
                let runs =
                    statements.iter().zip(&prepared).map(|((_, params), stmt)| c.execute(stmt, params));
                let counts = futures_util::future::try_join_all(runs).await.map_err(ctx)?;
                if !rows.deletes.is_empty() {
                    let n = counts.get(deletes_at).copied().unwrap_or(0);
                    if n != rows.deletes.len() as u64 {
                        return Err(StorageError::Corrupt(format!(
                            "{} relationships to delete have no live row",
                            rows.deletes.len() as u64 - n
                        )));
                    }
                }
                Ok(())
            })
        });
        if result.is_err() {
            let _ = self.end_write(false);
        }
        result
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.end_write(true)
    }

    fn import_rows(
        &self,
        revision: Revision,
        names: &mut dyn Iterator<Item = (u32, u32, &str)>,
        plain_runs: &[Vec<super::RowBytes>],
        special: &[(RowKey, PortableAttrs)],
    ) -> Result<u64, StorageError> {
        use tokio_postgres::binary_copy::BinaryCopyInWriter;
        use tokio_postgres::types::Type;
        let result = self.with_write(|c| {
            let ctx = |e: tokio_postgres::Error| pg_err("importing", &e);
            let r = rev_sql(revision);
            block(async {
                // A bulk load may take longer than one write's statement limit. The tables are
                // empty (imports of this kind go only into an empty store): drop their indexes,
                // COPY, and build the indexes once by sorting (3M rows by hand: 6.4 s with the
                // indexes, 4.5 s so). All in the writing transaction: a failure leaves the
                // indexes as they were.
                c.batch_execute(
                    "SET LOCAL statement_timeout = 0; SET LOCAL maintenance_work_mem = '512MB'; \
                     ALTER TABLE purview_names DROP CONSTRAINT purview_names_pkey; \
                     ALTER TABLE purview_rows DROP CONSTRAINT purview_rows_pkey; \
                     DROP INDEX purview_rows_live; DROP INDEX purview_rows_deleted;",
                )
                .await
                .map_err(ctx)?;
                let sink = c
                    .copy_in(
                        "COPY purview_names (type_id, object_id, name, revision) FROM STDIN (FORMAT binary)",
                    )
                    .await
                    .map_err(ctx)?;
                let w = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::INT4, Type::TEXT, Type::INT8]);
                pin_mut!(w);
                for (ty, id, name) in names {
                    w.as_mut().write(&[&i(ty), &i(id), &name, &r]).await.map_err(ctx)?;
                }
                w.finish().await.map_err(ctx)?;
                let sink = c
                    .copy_in(
                        "COPY purview_rows (resource_type, resource_id, relation, subject_type, subject_id, \
                         subject_relation, created, attrs) FROM STDIN (FORMAT binary)",
                    )
                    .await
                    .map_err(ctx)?;
                let types = [
                    Type::INT4,
                    Type::INT4,
                    Type::INT4,
                    Type::INT4,
                    Type::INT4,
                    Type::INT4,
                    Type::INT8,
                    Type::BYTEA,
                ];
                let w = BinaryCopyInWriter::new(sink, &types);
                pin_mut!(w);
                let mut specials: HashMap<RowKey, &PortableAttrs> =
                    special.iter().map(|(k, a)| (*k, a)).collect();
                let mut rows = 0u64;
                let mut last: Option<super::RowBytes> = None;
                let mut plain: Vec<&super::RowBytes> = plain_runs.iter().flatten().collect();
                // Runs may repeat keys; within the load a key is written once.
                plain.sort_unstable();
                for kb in plain {
                    if last.as_ref() == Some(kb) {
                        continue;
                    }
                    last = Some(*kb);
                    let key = row_key_of_bytes(kb);
                    let attrs = specials.remove(&key).and_then(encode_attrs);
                    let k: Vec<i32> = key.iter().map(|v| i(*v)).collect();
                    w.as_mut()
                        .write(&[&k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &r, &attrs])
                        .await
                        .map_err(ctx)?;
                    rows += 1;
                }
                for (key, a) in specials {
                    let k: Vec<i32> = key.iter().map(|v| i(*v)).collect();
                    let attrs = encode_attrs(a);
                    w.as_mut()
                        .write(&[&k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &r, &attrs])
                        .await
                        .map_err(ctx)?;
                    rows += 1;
                }
                w.finish().await.map_err(ctx)?;
                c.batch_execute(INDEXES).await.map_err(ctx)?;
                Ok(rows)
            })
        });
        if result.is_err() {
            let _ = self.end_write(false);
        }
        result
    }

    fn roll_back_import(&self) -> Result<Option<Revision>, StorageError> {
        // The import's rows are in the writing transaction: ending it without commit drops them.
        Ok(None)
    }

    fn head(&self) -> Result<Revision, StorageError> {
        let reader = self.reader()?;
        let row = block(reader.client()?.query_one("SELECT revision FROM purview_head", &[]))
            .map_err(|e| pg_err("reading the latest revision", &e))?;
        rev(row.get(0))
    }

    fn log(
        &self,
        after: Revision,
        reverse: bool,
        f: &mut dyn FnMut(Revision, LogRecord) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let sql = if reverse {
            "SELECT revision, record FROM purview_log WHERE revision > $1 ORDER BY revision DESC"
        } else {
            "SELECT revision, record FROM purview_log WHERE revision > $1 ORDER BY revision"
        };
        self.stream(sql, &[&rev_sql(after)], &mut |row| {
            let r = rev(row.get(0))?;
            let rec = super::decode(row.get::<_, &[u8]>(1), &format!("the log record of revision {r}"))?;
            f(r, rec)
        })
    }

    fn names(
        &self,
        f: &mut dyn FnMut(u32, u32, &str) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.stream(
            "SELECT type_id, object_id, name FROM purview_names ORDER BY type_id, object_id",
            &[],
            &mut |r| {
                f(u(r.get(0)), u(r.get(1)), r.get(2))?;
                Ok(true)
            },
        )
    }

    fn rows(
        &self,
        scope: RowScope,
        f: &mut dyn FnMut(Row) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let mut each = |r: &tokio_postgres::Row| f(row_of(r)?);
        match scope {
            RowScope::Live => self.stream(
                &format!("SELECT {ROW_COLUMNS} FROM purview_rows WHERE deleted IS NULL"),
                &[],
                &mut each,
            ),
            RowScope::All => self.stream(
                &format!("SELECT {ROW_COLUMNS} FROM purview_rows ORDER BY deleted IS NOT NULL"),
                &[],
                &mut each,
            ),
            RowScope::Object { ty, id, rel } => {
                let rel = rel.map(i);
                self.stream(
                    &format!(
                        "SELECT {ROW_COLUMNS} FROM purview_rows WHERE resource_type = $1 AND resource_id = $2 \
                         AND ($3::int IS NULL OR relation = $3) \
                         ORDER BY deleted IS NOT NULL, relation, subject_type, subject_id, subject_relation, created"
                    ),
                    &[&i(ty), &i(id), &rel],
                    &mut each,
                )
            }
        }
    }

    fn dict(&self) -> Result<Vec<(DictName, u32)>, StorageError> {
        let mut out = Vec::new();
        self.stream("SELECT kind, owner, name, id FROM purview_dict", &[], &mut |r| {
            let (kind, owner, name): (&str, &str, &str) = (r.get(0), r.get(1), r.get(2));
            let n = match kind {
                "type" => DictName::Type(name.to_string()),
                "relation" => DictName::Relation(owner.to_string(), name.to_string()),
                "condition" => DictName::Condition(name.to_string()),
                other => return Err(StorageError::Corrupt(format!("a dictionary entry of kind `{other}`"))),
            };
            out.push((n, u(r.get(3))));
            Ok(true)
        })?;
        Ok(out)
    }

    fn schemas(&self) -> Result<Vec<(Revision, SchemaRecord)>, StorageError> {
        let mut out = Vec::new();
        self.stream("SELECT revision, format, text FROM purview_schema ORDER BY revision", &[], &mut |r| {
            out.push((rev(r.get(0))?, SchemaRecord { format: r.get(1), text: r.get(2) }));
            Ok(true)
        })?;
        Ok(out)
    }

    fn put_schema(
        &self,
        revision: Revision,
        record: &SchemaRecord,
        dict: &[(DictName, u32)],
    ) -> Result<(), StorageError> {
        let mut c = self.client()?;
        let ctx = |e: tokio_postgres::Error| pg_err("storing the first schema", &e);
        let tx = block(c.transaction()).map_err(ctx)?;
        // Under the write lock, so that two nodes starting on an empty database agree.
        block(tx.query_one("SELECT revision FROM purview_head FOR UPDATE", &[])).map_err(ctx)?;
        let exists = block(tx.query_one("SELECT count(*) FROM purview_schema", &[])).map_err(ctx)?;
        if exists.get::<_, i64>(0) == 0 {
            for (n, id) in dict {
                let (k, o, name) = dict_columns(n);
                block(tx.execute(
                    "INSERT INTO purview_dict (kind, owner, name, id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    &[&k, &o, &name, &i(*id)],
                ))
                .map_err(ctx)?;
            }
            block(tx.execute(
                "INSERT INTO purview_schema (revision, format, text) VALUES ($1, $2, $3)",
                &[&rev_sql(revision), &record.format, &record.text],
            ))
            .map_err(ctx)?;
        }
        block(tx.commit()).map_err(ctx)
    }

    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let reader = self.reader()?;
        let row = block(reader.client()?.query_opt("SELECT value FROM purview_meta WHERE key = $1", &[&key]))
            .map_err(|e| pg_err("reading metadata", &e))?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    }

    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        let c = self.client()?;
        block(c.execute(
            "INSERT INTO purview_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2",
            &[&key, &value],
        ))
        .map_err(|e| pg_err("writing metadata", &e))?;
        Ok(())
    }

    fn gc(&self, upto: Revision) -> Result<(u64, u64), StorageError> {
        let mut c = self.client()?;
        let ctx = |e: tokio_postgres::Error| pg_err("collecting old revisions", &e);
        let tx = block(c.transaction()).map_err(ctx)?;
        // One node at a time collects; the others skip this round.
        let got = block(tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&GC_LOCK])).map_err(ctx)?;
        if !got.get::<_, bool>(0) {
            return Ok((0, 0));
        }
        let upto = rev_sql(upto);
        let records =
            block(tx.execute("DELETE FROM purview_log WHERE revision <= $1", &[&upto])).map_err(ctx)?;
        let rows =
            block(tx.execute("DELETE FROM purview_rows WHERE deleted <= $1", &[&upto])).map_err(ctx)?;
        let value = upto.to_be_bytes().to_vec();
        block(tx.execute(
            "INSERT INTO purview_meta (key, value) VALUES ('gc_revision', $1) \
             ON CONFLICT (key) DO UPDATE SET value = GREATEST(purview_meta.value, $1)",
            &[&value],
        ))
        .map_err(ctx)?;
        block(tx.commit()).map_err(ctx)?;
        Ok((records, rows))
    }

    fn scan_all(&self) -> Result<u64, StorageError> {
        let c = self.client()?;
        let mut n = 0u64;
        for t in
            ["purview_meta", "purview_dict", "purview_names", "purview_rows", "purview_log", "purview_schema"]
        {
            let row = block(c.query_one(&format!("SELECT count(*) FROM {t}"), &[]))
                .map_err(|e| pg_err("counting", &e))?;
            n += u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
        }
        Ok(n)
    }

    fn flush(&self, _wait: bool) -> Result<(), StorageError> {
        Ok(())
    }
}

/// Follows what other nodes commit into `purview` (see the module docs) until its last
/// handle goes: wakes on each notification, or every `poll`, and catches up; on failures
/// (the database restarting) retries with backoff, warning once per outage.
pub(crate) fn spawn_follower(
    purview: crate::api::WeakPurview,
    pg: Arc<PgStorage>,
    warn: Arc<dyn Fn(&str) + Send + Sync>,
    poll: Duration,
) {
    let warn_thread = warn.clone();
    let spawned = std::thread::Builder::new().name("purview-follower".into()).spawn(move || {
        let warn = warn_thread;
        let mut seen = 0;
        let mut backoff = Duration::from_millis(20);
        let mut failing = false;
        loop {
            let Some(now) = pg.wait_change(seen, if failing { backoff } else { poll }) else { return };
            seen = now;
            let Some(pv) = purview.upgrade() else { return };
            match pv.follow() {
                Ok(_) => {
                    if failing {
                        warn(&format!("caught up with {} again", pg.target()));
                    }
                    failing = false;
                    backoff = Duration::from_millis(20);
                }
                Err(e) => {
                    if !failing {
                        warn(&format!("cannot follow {}: {e}; retrying", pg.target()));
                    }
                    failing = true;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    });
    if let Err(e) = spawned {
        warn(&format!("cannot start the follower thread: {e}"));
    }
}

fn row_key_of_bytes(b: &super::RowBytes) -> RowKey {
    let mut k = [0u32; 6];
    for (n, v) in k.iter_mut().enumerate() {
        let mut w = [0u8; 4];
        w.copy_from_slice(&b[n * 4..n * 4 + 4]);
        *v = u32::from_be_bytes(w);
    }
    k
}

impl Drop for PgStorage {
    fn drop(&mut self) {
        self.stop();
        let _ = self.end_write(false);
        // Snapshots still pinned (by threads that failed before unpinning) end with the pool.
        locked(&self.pinned).clear();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
