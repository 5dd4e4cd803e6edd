//! Durable storage: a data directory that survives restarts and crashes.
//!
//! A store holds the schema with its history, every relationship with the revision that wrote
//! it and (once deleted) the revision that deleted it, the changelog of revisions, the object
//! names, and a checksummed snapshot of the compiled index. [`Purview::open`] gives the same
//! facade as an in-memory Purview; a write returns once it is durable.
//!
//! - [`Storage`] is what a backend provides (rows, log, names, schemas, by *stable ids*); the
//!   embedded backend is [`fjall::FjallStorage`]. Stable ids number types, relations and
//!   conditions by name once and for ever ([`dict`]), so rows survive schema changes that
//!   renumber the schema's own ids.
//! - [`journal::Durable`] is the [`crate::api::Journal`] over a backend: it turns each validated
//!   change into a [`Commit`], group-commits, writes index snapshots in the background and
//!   answers as-of reads from the history.
//! - [`snapshot`] is the index snapshot file; [`load`] opens a store (snapshot + replay of the
//!   changelog after it, or a rebuild from the rows when the snapshot is missing, stale or
//!   damaged).
//!
//! Layout of `DIR`: `FORMAT` (the store format, text), `kv/` (the backend's files),
//! `index.snapshot` (the latest index snapshot).

pub mod dict;
pub mod fjall;
mod journal;
mod load;
pub mod ops;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod snapshot;

pub use journal::Durable;
#[cfg(feature = "postgres")]
pub use load::open_postgres;
pub use load::{init, open, InitError, OpenReport, Store};
pub use ops::{
    export, gc, history, info, schema_text, verify, ExportError, GcReport, HistoryEntry, Since, StoreInfo,
};

use crate::store::{PortableAttrs, Revision};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The store format this build reads and writes (the `FORMAT` file).
pub const FORMAT_VERSION: u32 = 1;

/// A relationship by stable ids: object type, object id, relation, subject type, subject id,
/// subject relation ([`NO_RELATION`] for none). Object ids are the index's dense ids.
pub type RowKey = [u32; 6];
/// The subject relation of a [`RowKey`] whose subject is an object or a wildcard.
pub const NO_RELATION: u32 = u32::MAX;

/// A [`RowKey`] as bytes: six big-endian u32, so that byte order is key order.
pub type RowBytes = [u8; 24];

/// The bytes of a row key.
pub fn row_bytes(k: &RowKey) -> RowBytes {
    let mut out = [0u8; 24];
    for (i, v) in k.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// A name that has a stable id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DictName {
    Type(String),
    Relation(String, String),
    Condition(String),
}

/// How a relationship changed in a commit (`None` = absent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowChange {
    pub key: RowKey,
    pub before: Option<PortableAttrs>,
    pub after: Option<PortableAttrs>,
}

/// A schema as stored: its language and text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRecord {
    pub format: String,
    pub text: String,
}

/// One revision, as a journal hands it to a backend.
#[derive(Clone, Debug)]
pub struct Commit {
    pub revision: Revision,
    /// Unix time in microseconds.
    pub time: i64,
    /// Object names first used by this revision: (stable type id, object id, name).
    pub names: Vec<(u32, u32, String)>,
    /// Stable ids first given by this revision.
    pub dict: Vec<(DictName, u32)>,
    pub body: CommitBody,
}

#[derive(Clone, Debug)]
pub enum CommitBody {
    Write(Vec<RowChange>),
    /// A bulk load: its row changes, or (when `rows_written`) none because
    /// [`Storage::import_rows`] wrote its rows already.
    Import {
        changes: Vec<RowChange>,
        rows: u64,
        rows_written: bool,
    },
    Schema(SchemaRecord),
}

/// A changelog entry as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogRecord {
    /// A write batch: what changed, and the object names it introduced.
    Write { time: i64, changes: Vec<RowChange>, names: Vec<(u32, u32, String)> },
    /// A bulk import: its rows are the ones created at this revision.
    Import { time: i64, count: u64 },
    /// A schema change (the schema is in the schema table).
    Schema { time: i64 },
}

impl LogRecord {
    pub fn time(&self) -> i64 {
        match self {
            LogRecord::Write { time, .. } | LogRecord::Import { time, .. } | LogRecord::Schema { time } => {
                *time
            }
        }
    }
}

/// A stored relationship row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: RowKey,
    pub created: Revision,
    /// `None` while the relationship is live.
    pub deleted: Option<Revision>,
    pub attrs: PortableAttrs,
}

/// Which rows to scan.
#[derive(Clone, Copy, Debug)]
pub enum RowScope {
    /// Live rows only.
    Live,
    /// Live rows, then deleted rows still in the history.
    All,
    /// Live then deleted rows of one object (and relation), by stable ids.
    Object { ty: u32, id: u32, rel: Option<u32> },
}

/// What a storage backend provides. Everything is by stable ids; the journal and the loader
/// translate to and from the schema's ids. Appends are not durable until [`Storage::sync`].
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Writes commits atomically (all or none), in order. Not durable until `sync`.
    fn append(&self, commits: &[Commit]) -> Result<(), StorageError>;
    /// Makes every append so far durable.
    fn sync(&self) -> Result<(), StorageError>;
    /// Writes the rows (created at `revision`) and names of an import into a store that holds no
    /// relationship and no name, durably, marked as pending: the import only counts once its
    /// commit (`CommitBody::Import` with `rows_written`) is appended; until then a crash, or
    /// `roll_back_import`, removes them. Returns the number of rows.
    /// `plain_runs` are sorted runs of plain row keys (duplicates allowed); a key in `special`
    /// (the copies in effect, later than any plain copy) takes its attributes from there.
    fn import_rows(
        &self,
        revision: Revision,
        names: &mut dyn Iterator<Item = (u32, u32, &str)>,
        plain_runs: &[Vec<RowBytes>],
        special: &[(RowKey, PortableAttrs)],
    ) -> Result<u64, StorageError>;
    /// Rolls back an import whose commit was never appended; returns its revision if there was
    /// one.
    fn roll_back_import(&self) -> Result<Option<Revision>, StorageError>;
    /// The latest revision in the log (0 for none).
    fn head(&self) -> Result<Revision, StorageError>;
    /// Log records after `after`, in order (or from the newest when `reverse`), until `f`
    /// returns `false`.
    fn log(
        &self,
        after: Revision,
        reverse: bool,
        f: &mut dyn FnMut(Revision, LogRecord) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError>;
    /// Every object name, by (stable type id, object id) order.
    fn names(
        &self,
        f: &mut dyn FnMut(u32, u32, &str) -> Result<(), StorageError>,
    ) -> Result<(), StorageError>;
    /// Rows in `scope`, until `f` returns `false`.
    fn rows(
        &self,
        scope: RowScope,
        f: &mut dyn FnMut(Row) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError>;
    fn dict(&self) -> Result<Vec<(DictName, u32)>, StorageError>;
    /// Every schema with the revision it took effect at.
    fn schemas(&self) -> Result<Vec<(Revision, SchemaRecord)>, StorageError>;
    /// Stores the first schema of a new store (no log record), durably.
    fn put_schema(
        &self,
        revision: Revision,
        record: &SchemaRecord,
        dict: &[(DictName, u32)],
    ) -> Result<(), StorageError>;
    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    /// Stores a metadata value durably.
    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StorageError>;
    /// Drops log records and deleted rows at or before `upto`; returns (records, rows) dropped.
    fn gc(&self, upto: Revision) -> Result<(u64, u64), StorageError>;
    /// Reads every stored entry (verifying the backend's own checksums); returns how many.
    fn scan_all(&self) -> Result<u64, StorageError>;
    /// Moves buffered writes into the backend's tables so that its next open replays little
    /// (for fjall: rotates the memtables, so the journal can be dropped once they are flushed).
    /// With `wait`, returns once that is done.
    fn flush(&self, wait: bool) -> Result<(), StorageError>;
    /// Whether other processes write to the same store (a database shared by several nodes).
    /// Then every write goes `begin` → `append` → `sync` (or `abandon`), and reads of a
    /// consistent state go between `pin` and `unpin`.
    fn is_shared(&self) -> bool {
        false
    }
    /// Starts the one writing transaction of this process, taking the store's cluster-wide
    /// write lock (held until `sync` commits or `abandon` rolls back), and returns the latest
    /// committed revision. `None` for a store only this process writes.
    fn begin(&self) -> Result<Option<Revision>, StorageError> {
        Ok(None)
    }
    /// Rolls back the writing transaction, if one is open.
    fn abandon(&self) {}
    /// Makes every read until `unpin` see one consistent state.
    fn pin(&self) -> Result<(), StorageError> {
        Ok(())
    }
    fn unpin(&self) {}
    /// The store is being closed (its journal dropped): stop background work.
    fn close(&self) {}
}

/// How a store is opened.
#[derive(Clone)]
pub struct StoreOptions {
    /// Sync to disk before a write returns (default). Without it a crash of the machine (not of
    /// the process) can lose acknowledged writes.
    pub sync: bool,
    /// How long history stays readable (as-of reads, `history`); default 24 hours.
    pub history_window: Duration,
    /// How often a long-running process collects history older than the window; `None` for
    /// never (then only `purview store gc` collects). Default: every 10 minutes.
    pub gc_interval: Option<Duration>,
    /// Write a new index snapshot (in the background) once this many relationship changes were
    /// made since the last one. Default 100,000.
    pub snapshot_after: u64,
    /// Called with each warning (a snapshot that was rebuilt, …); default: standard error.
    pub warn: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sync: true,
            history_window: Duration::from_secs(24 * 3600),
            gc_interval: Some(Duration::from_secs(600)),
            snapshot_after: 100_000,
            warn: Arc::new(|w| eprintln!("purview: warning: {w}")),
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("sync", &self.sync)
            .field("history_window", &self.history_window)
            .field("gc_interval", &self.gc_interval)
            .field("snapshot_after", &self.snapshot_after)
            .finish()
    }
}

/// Why a store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("`{}` is not a Purview store (it has no FORMAT file); create one with `purview store init`", .dir.display())]
    NotAStore { dir: PathBuf },
    #[error("`{}` already holds a store", .dir.display())]
    AlreadyExists { dir: PathBuf },
    #[error("`{}` was written by a newer Purview (store format {found}; this build reads format {supported})", .dir.display())]
    NewerFormat { dir: PathBuf, found: String, supported: u32 },
    #[error("the store `{dir}` is in use by another process (one process at a time may open a store)")]
    Locked { dir: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("the store is damaged: {0}")]
    Corrupt(String),
    #[error("the store failed: {0}")]
    Failed(String),
    #[error("the stored schema of revision {revision} does not compile with this build:\n{error}")]
    Schema { revision: Revision, error: crate::api::SchemaError },
}

impl StorageError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> StorageError {
        StorageError::Io { context: context.into(), source }
    }
}

/// Encodes with bincode's standard configuration.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

/// Decodes with bincode's standard configuration; `what` names the value in the error.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, StorageError> {
    match bincode::serde::decode_from_slice(bytes, bincode::config::standard()) {
        Ok((v, n)) if n == bytes.len() => Ok(v),
        Ok(_) => Err(StorageError::Corrupt(format!("{what} has trailing bytes"))),
        Err(e) => Err(StorageError::Corrupt(format!("{what} does not decode: {e}"))),
    }
}

/// Unix time in microseconds.
pub(crate) fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
