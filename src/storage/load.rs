//! Creating and opening stores: the `FORMAT` file, the index from its snapshot plus the
//! changelog after it, or rebuilt from the rows when the snapshot cannot be trusted.

use super::dict::{Dict, Mapping};
use super::fjall::FjallStorage;
use super::journal::{lock, Durable, Names, Tail};
use super::{
    snapshot, LogRecord, Row, RowScope, SchemaRecord, Storage, StorageError, StoreOptions, FORMAT_VERSION,
};
use crate::api::bulk::Resolved;
use crate::api::{compile_schema_as, random_id, Purview};
use crate::index::IndexData;
use crate::schema::Schema;
use crate::store::{Revision, TupleAttrs, TupleStore};
use crate::syntax::formats::SchemaFormat;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An open store: the [`Purview`] facade and the store's own operations.
#[derive(Debug, Clone)]
pub struct Store {
    purview: Purview,
    pub(crate) durable: Arc<Durable>,
    pub report: OpenReport,
}

/// How a store was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The revision of the snapshot used, if one was.
    pub snapshot_revision: Option<Revision>,
    /// Log records replayed after the snapshot.
    pub replayed: u64,
    /// Why the index was rebuilt from the rows, if it was.
    pub rebuilt: Option<String>,
    /// The whole open.
    pub took: Duration,
    /// Opening the backend (for fjall: replaying its own journal).
    pub backend: Duration,
    /// Reading, checking and decoding the snapshot.
    pub snapshot: Duration,
    /// Replaying the changelog after the snapshot into the index.
    pub replay: Duration,
}

impl Store {
    /// The facade (a handle: clones share the store).
    pub fn purview(&self) -> &Purview {
        &self.purview
    }

    pub fn into_purview(self) -> Purview {
        self.purview
    }

    /// The store's directory (for a node on a shared database: where it keeps index
    /// snapshots, if anywhere).
    pub fn dir(&self) -> Option<&Path> {
        self.durable.inner.dir.as_deref()
    }

    /// Writes an index snapshot of the current state now.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        self.durable.checkpoint()
    }
}

impl Purview {
    /// Opens the store in `dir` (see [`crate::storage`]): the same facade as an in-memory
    /// Purview, whose writes return once durable.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Purview, StorageError> {
        Ok(open(dir.as_ref(), options)?.into_purview())
    }
}

fn format_path(dir: &Path) -> PathBuf {
    dir.join("FORMAT")
}

/// Reads and checks the `FORMAT` file.
fn check_format(dir: &Path) -> Result<(), StorageError> {
    let p = format_path(dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StorageError::NotAStore { dir: dir.to_path_buf() })
        }
        Err(e) => return Err(StorageError::io(format!("cannot read `{}`", p.display()), e)),
    };
    let version = text.trim().strip_prefix("purview-store ").map(str::trim);
    match version.map(str::parse::<u32>) {
        Some(Ok(v)) if v == FORMAT_VERSION => Ok(()),
        Some(Ok(v)) if v > FORMAT_VERSION => Err(StorageError::NewerFormat {
            dir: dir.to_path_buf(),
            found: v.to_string(),
            supported: FORMAT_VERSION,
        }),
        _ => Err(StorageError::Corrupt(format!(
            "`{}` does not name a store format: {:?}",
            p.display(),
            text.trim()
        ))),
    }
}

/// Why `init` refused.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Schema(#[from] crate::api::SchemaError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creates a store in `dir` (which must not exist, or be empty) with a schema, and opens it.
pub fn init(
    dir: &Path,
    format: SchemaFormat,
    name: &str,
    text: &str,
    options: StoreOptions,
) -> Result<Store, InitError> {
    let schema = compile_schema_as(format, name, text)?;
    if format_path(dir).exists() {
        return Err(StorageError::AlreadyExists { dir: dir.to_path_buf() }.into());
    }
    let ctx = |e| StorageError::io(format!("cannot create the store `{}`", dir.display()), e);
    if dir.exists() && std::fs::read_dir(dir).map_err(ctx)?.next().is_some() {
        return Err(StorageError::io(
            format!("cannot create the store `{}`", dir.display()),
            std::io::Error::other("the directory is not empty"),
        )
        .into());
    }
    std::fs::create_dir_all(dir).map_err(ctx)?;
    {
        let storage = FjallStorage::open(&dir.join("kv"), true)?;
        storage.meta_put("store_id", &random_id())?;
        let (_, added) = Dict::default().map(&schema);
        let record = SchemaRecord { format: format.to_string(), text: text.to_string() };
        storage.put_schema(0, &record, &added)?;
    }
    // The FORMAT file last: a directory without it is not a store (a crash before is harmless).
    let tmp = dir.join("FORMAT.tmp");
    std::fs::write(&tmp, format!("purview-store {FORMAT_VERSION}\n")).map_err(ctx)?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(ctx)?;
    std::fs::rename(&tmp, format_path(dir)).map_err(ctx)?;
    snapshot::sync_dir(dir)?;
    Ok(open(dir, options)?)
}

/// Compiles a stored schema.
pub(super) fn compile_record(revision: Revision, r: &SchemaRecord) -> Result<Arc<Schema>, StorageError> {
    let format = r.format.parse::<SchemaFormat>().ok().ok_or_else(|| {
        StorageError::Corrupt(format!(
            "the schema of revision {revision} has an unknown language `{}`",
            r.format
        ))
    })?;
    compile_schema_as(format, &format!("schema@{revision}"), &r.text)
        .map(Arc::new)
        .map_err(|error| StorageError::Schema { revision, error })
}

/// Builds the index of `schema` from the names and the rows `keep` selects.
pub(super) fn build(
    storage: &dyn Storage,
    schema: Arc<Schema>,
    mapping: &Mapping,
    revision: Revision,
    keep: impl Fn(&Row) -> bool,
) -> Result<IndexData, StorageError> {
    let mut data = IndexData::new(schema);
    storage.names(&mut |tsid, id, name| {
        let Some(ty) = mapping.type_of(tsid) else { return Ok(()) };
        let got = data.intern(ty, name);
        if got != id {
            return Err(StorageError::Corrupt(format!("object name `{name}` has id {id} but comes {got}th")));
        }
        Ok(())
    })?;
    let mut resolved = Resolved::default();
    let head = storage.head()?;
    // At the head the live rows are the rows; before it, deleted rows may have been live then.
    let scope = if revision >= head { RowScope::Live } else { RowScope::All };
    storage.rows(scope, &mut |row| {
        if !keep(&row) {
            return Ok(true);
        }
        let key = mapping.key(&row.key).ok_or_else(|| {
            StorageError::Corrupt(format!(
                "a stored relationship {:?} has no type or relation in the schema",
                row.key
            ))
        })?;
        let attrs =
            TupleAttrs::from_portable(&row.attrs, |c| mapping.cond_of(c)).map_err(StorageError::Corrupt)?;
        if key.0.id >= data.object_count(key.0.ty)
            || (!key.2.is_wildcard() && key.2.id >= data.object_count(key.2.ty))
        {
            return Err(StorageError::Corrupt(format!(
                "a stored relationship {:?} names an object with no name",
                row.key
            )));
        }
        resolved.push(key, attrs);
        Ok(true)
    })?;
    resolved.build_into(&mut data);
    data.revision = revision;
    Ok(data)
}

/// Applies a logged write to `data`; an error means the log does not fit the index.
pub(super) fn replay(
    data: &mut IndexData,
    mapping: &Mapping,
    rev: Revision,
    rec: &LogRecord,
) -> Result<(), String> {
    let LogRecord::Write { changes, names, .. } = rec else {
        return Err(format!("revision {rev} is an import or a schema change"));
    };
    for (tsid, id, name) in names {
        let ty = mapping.type_of(*tsid).ok_or("a logged name has an unknown type")?;
        if data.object_count(ty) != *id {
            return Err(format!(
                "revision {rev} names object id {id} where the index has {}",
                data.object_count(ty)
            ));
        }
        if data.intern(ty, name) != *id {
            return Err(format!("revision {rev}: object name `{name}` is already known"));
        }
    }
    for ch in changes {
        let (o, r, s) = mapping.key(&ch.key).ok_or("a logged relationship has no relation")?;
        match &ch.after {
            None => {
                data.remove(o, r, s);
            }
            Some(p) => {
                let a = TupleAttrs::from_portable(p, |c| mapping.cond_of(c))?;
                data.insert(o, r, s, a);
            }
        }
    }
    data.revision = rev;
    Ok(())
}

/// Opens the store in `dir`.
pub fn open(dir: &Path, options: StoreOptions) -> Result<Store, StorageError> {
    let started = Instant::now();
    check_format(dir)?;
    let storage = FjallStorage::open(&dir.join("kv"), options.sync).map_err(|e| match e {
        StorageError::Locked { .. } => StorageError::Locked { dir: dir.display().to_string() },
        other => other,
    })?;
    let storage: Arc<dyn Storage> = Arc::new(storage);
    let report = OpenReport { backend: started.elapsed(), ..OpenReport::default() };
    if let Some(r) = storage.roll_back_import()? {
        (options.warn)(&format!("an import (revision {r}) was interrupted; it was rolled back"));
    }
    assemble(storage, Some(dir), options, started, report)
}

/// The store over `storage`: the index from the snapshot in `dir` plus the log after it, or
/// rebuilt from the rows. Reads one consistent state (see [`Storage::pin`]).
fn assemble(
    storage: Arc<dyn Storage>,
    dir: Option<&Path>,
    options: StoreOptions,
    started: Instant,
    mut report: OpenReport,
) -> Result<Store, StorageError> {
    storage.pin()?;
    let loaded = load_state(&storage, dir, &options, &mut report);
    storage.unpin();
    let (store_id, names, data, snapshot_revision, head) = loaded?;
    let data = Arc::new(data);
    let mut tail = Tail { snapshot_revision, ..Tail::default() };
    tail.changes = report.replayed;
    let rebuilt = report.rebuilt.is_some() && !data.is_empty();
    let durable = Arc::new(Durable::new(
        dir.map(Path::to_path_buf),
        storage,
        store_id,
        options.clone(),
        names,
        tail,
        data.clone(),
        head,
    ));
    if rebuilt {
        if let Err(e) = durable.inner.write_snapshot(&data) {
            (options.warn)(&format!("could not write the index snapshot: {e}"));
        }
    }
    report.took = started.elapsed();
    let purview = Purview::with_journal(data, durable.clone());
    Ok(Store { purview, durable, report })
}

type Loaded = ([u8; 16], Names, IndexData, Revision, Revision);

fn load_state(
    storage: &Arc<dyn Storage>,
    dir: Option<&Path>,
    options: &StoreOptions,
    report: &mut OpenReport,
) -> Result<Loaded, StorageError> {
    let store_id: [u8; 16] = storage
        .meta_get("store_id")?
        .and_then(|v| v.as_slice().try_into().ok())
        .ok_or_else(|| StorageError::Corrupt("the store has no id".into()))?;
    let mut dict = Dict::from_entries(storage.dict()?);
    let schemas = storage.schemas()?;
    let Some((schema_revision, record)) = schemas.last().cloned() else {
        return Err(StorageError::Corrupt("the store holds no schema".into()));
    };
    let schema = compile_record(schema_revision, &record)?;
    let (mapping, added) = dict.map(&schema);
    if !added.is_empty() {
        return Err(StorageError::Corrupt("the dictionary of stable ids lacks names of the schema".into()));
    }
    let head = storage.head()?;
    let from_snapshot = match dir {
        Some(dir) => {
            load_snapshot(dir, &**storage, &schema, &mapping, store_id, schema_revision, head, report)
        }
        None => Err("this node keeps no index snapshot".to_string()),
    };
    let (data, snapshot_revision) = match from_snapshot {
        Ok(pair) => pair,
        Err(why) => {
            if dir.is_some_and(|d| head > 0 || snapshot::path(d).exists()) {
                (options.warn)(&format!("rebuilding the index from the stored relationships: {why}"));
            }
            report.rebuilt = Some(why);
            let data = build(&**storage, schema.clone(), &mapping, head, |_| true)?;
            (data, 0)
        }
    };
    Ok((store_id, Names { dict, mapping, schema_revision }, data, snapshot_revision, head))
}

/// Opens a node on the PostgreSQL database at `url` (migrated with
/// [`super::postgres::migrate`]): loads the state at the latest revision (from the index
/// snapshot in `snapshot_dir` plus the changes since, when there is one, else from the
/// database), then follows what other nodes commit (LISTEN/NOTIFY, polling every
/// `poll` as the fallback). A database that holds no schema yet starts with an empty one.
#[cfg(feature = "postgres")]
pub fn open_postgres(
    url: &str,
    snapshot_dir: Option<&Path>,
    options: StoreOptions,
    poll: Duration,
) -> Result<Store, StorageError> {
    use super::postgres::PgStorage;
    let started = Instant::now();
    let pg = Arc::new(PgStorage::connect(url)?);
    pg.listen(options.warn.clone());
    if pg.schemas()?.is_empty() {
        let schema = compile_schema_as(SchemaFormat::Purview, "schema", "")
            .map_err(|error| StorageError::Schema { revision: 0, error })?;
        let (_, added) = Dict::default().map(&schema);
        let record = SchemaRecord { format: SchemaFormat::Purview.to_string(), text: String::new() };
        pg.put_schema(0, &record, &added)?;
    }
    if let Some(d) = snapshot_dir {
        std::fs::create_dir_all(d)
            .map_err(|e| StorageError::io(format!("cannot create `{}`", d.display()), e))?;
    }
    let report = OpenReport { backend: started.elapsed(), ..OpenReport::default() };
    let storage: Arc<dyn Storage> = pg.clone();
    let store = assemble(storage, snapshot_dir, options.clone(), started, report)?;
    super::postgres::spawn_follower(store.purview.downgrade(), pg, options.warn.clone(), poll);
    // What was committed after the state was read.
    store.purview.follow().map_err(|e| StorageError::Failed(e.to_string()))?;
    Ok(store)
}

/// The index from the snapshot plus the log after it, or why not.
#[allow(clippy::too_many_arguments)]
fn load_snapshot(
    dir: &Path,
    storage: &dyn Storage,
    schema: &Arc<Schema>,
    mapping: &Mapping,
    store_id: [u8; 16],
    schema_revision: Revision,
    head: Revision,
    report: &mut OpenReport,
) -> Result<(IndexData, Revision), String> {
    let started = Instant::now();
    let Some((header, payload)) = snapshot::read_checked(dir).map_err(|e| e.to_string())? else {
        return Err("there is no index snapshot".to_string());
    };
    if header.store != store_id {
        return Err("the index snapshot belongs to another store".to_string());
    }
    if header.revision > head {
        return Err(format!(
            "the index snapshot is at revision {}, after the log's last ({head})",
            header.revision
        ));
    }
    if header.schema_revision != schema_revision {
        return Err("the index snapshot was built with another schema".to_string());
    }
    let mut data = snapshot::decode(schema.clone(), &payload).map_err(|e| e.to_string())?;
    drop(payload);
    if data.revision != header.revision {
        return Err("the index snapshot's revision does not match its header".to_string());
    }
    let snapshot_revision = header.revision;
    report.snapshot = started.elapsed();
    let started = Instant::now();
    let mut expected = header.revision + 1;
    let mut problem = None;
    storage
        .log(header.revision, false, &mut |rev, rec| {
            if rev != expected {
                problem =
                    Some(format!("the log after the snapshot starts at revision {rev}, not {expected}"));
                return Ok(false);
            }
            if let Err(e) = replay(&mut data, mapping, rev, &rec) {
                problem = Some(e);
                return Ok(false);
            }
            report.replayed += 1;
            expected += 1;
            Ok(true)
        })
        .map_err(|e| e.to_string())?;
    if let Some(p) = problem {
        return Err(p);
    }
    if data.revision != head {
        return Err(format!("replay ended at revision {}, not {head}", data.revision));
    }
    report.snapshot_revision = Some(snapshot_revision);
    report.replay = started.elapsed();
    Ok((data, snapshot_revision))
}

impl Store {
    pub(crate) fn inner(&self) -> &super::journal::Inner {
        &self.durable.inner
    }

    /// The latest published index.
    pub fn head(&self) -> Arc<IndexData> {
        lock(&self.inner().last).clone()
    }
}
