//! What a store offers besides the facade: export, history (audit), information, garbage
//! collection and verification.

use super::journal::lock;
use super::load::Store;
use super::{snapshot, RowScope, StorageError};
use crate::api::relationship_of;
use crate::api::View;
use crate::eval::EvalError;
use crate::index::IndexData;
use crate::store::{Relationship, Revision, Source, TupleAttrs};
use std::sync::Arc;

/// Calls `f` with every relationship at `at` (default: the current revision), in the notation of
/// relationship files; returns the revision exported.
pub fn export(
    store: &Store,
    at: Option<Revision>,
    f: &mut dyn FnMut(&Relationship) -> std::io::Result<()>,
) -> Result<Revision, ExportError> {
    let view = match at {
        None => store.purview().snapshot(),
        Some(r) => store.purview().view_at(r)?,
    };
    let View::Index(data) = &view else { return Ok(view.revision()) };
    let mut failed = None;
    data.for_each_tuple(|o, r, s, a| {
        if failed.is_none() {
            if let Err(e) = f(&relationship_of(&**data, o, r, s, a)) {
                failed = Some(e);
            }
        }
    });
    match failed {
        Some(e) => Err(ExportError::Io(e)),
        None => Ok(data.revision),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Revision(#[from] EvalError),
    #[error("cannot write the export: {0}")]
    Io(std::io::Error),
}

/// One change to a relationship, as `history` lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    pub revision: Revision,
    /// RFC 3339, UTC (microseconds).
    pub time: String,
    /// `added` or `removed`.
    pub change: &'static str,
    pub relationship: String,
}

/// The changes that touched `object` (and `relation`, if given) since `since` (a revision),
/// oldest first: when each relationship was added and, if it was, removed, within the history
/// kept (live relationships keep the revision that added them for ever).
pub fn history(
    store: &Store,
    object: &crate::store::ObjectRef,
    relation: Option<&str>,
    since: Since,
) -> Result<Vec<HistoryEntry>, StorageError> {
    let inner = store.inner();
    let head = store.head();
    let schema = head.schema.clone();
    let names = lock(&inner.names);
    let mapping = names.mapping.clone();
    drop(names);
    let bad = |m: String| StorageError::Failed(m);
    let ty = schema.type_id(&object.ty).ok_or_else(|| bad(format!("unknown type `{}`", object.ty)))?;
    let rel = match relation {
        None => None,
        Some(r) => Some(
            schema
                .type_def(ty)
                .relation_id(r)
                .ok_or_else(|| bad(format!("type `{}` has no relation `{r}`", object.ty)))?,
        ),
    };
    let Some(id) = head.names().get(ty, &object.id) else { return Ok(Vec::new()) };
    let scope = RowScope::Object {
        ty: mapping.type_sid(ty),
        id,
        rel: rel.map(|r| {
            mapping.row_key((
                crate::store::Obj { ty, id },
                r,
                crate::store::Subject { ty: 0, id: 0, rel: None },
            ))[2]
        }),
    };
    // Times of revisions, from the log (revisions older than the history have none).
    let mut events: Vec<(Revision, &'static str, Relationship)> = Vec::new();
    inner.storage.rows(scope, &mut |row| {
        let Some(key) = mapping.key(&row.key) else { return Ok(true) };
        let attrs =
            TupleAttrs::from_portable(&row.attrs, |c| mapping.cond_of(c)).map_err(StorageError::Corrupt)?;
        let text = relationship_of(&*head as &dyn Source, key.0, key.1, key.2, &attrs);
        events.push((row.created, "added", text.clone()));
        if let Some(d) = row.deleted {
            events.push((d, "removed", text));
        }
        Ok(true)
    })?;
    let times = revision_times(store)?;
    let since_rev = match since {
        Since::Revision(r) => r,
        Since::Time(t) => times.iter().find(|(_, time)| *time >= t).map_or(Revision::MAX, |(r, _)| *r),
        Since::Beginning => 0,
    };
    events.retain(|(r, ..)| *r >= since_rev);
    events.sort_by_cached_key(|(r, change, rel)| (*r, *change == "added", rel.to_string()));
    Ok(events
        .into_iter()
        .map(|(revision, change, rel)| HistoryEntry {
            revision,
            time: times
                .binary_search_by_key(&revision, |(r, _)| *r)
                .ok()
                .and_then(|i| chrono::DateTime::from_timestamp_micros(times[i].1))
                .map_or_else(
                    || "before the kept history".to_string(),
                    |t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                ),
            change,
            relationship: rel.to_string(),
        })
        .collect())
}

/// Where a history listing starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    Beginning,
    Revision(Revision),
    /// Unix microseconds.
    Time(i64),
}

/// Every revision in the log with its time (unix microseconds), in order.
fn revision_times(store: &Store) -> Result<Vec<(Revision, i64)>, StorageError> {
    let mut out = Vec::new();
    store.inner().storage.log(0, false, &mut |rev, rec| {
        out.push((rev, rec.time()));
        Ok(true)
    })?;
    Ok(out)
}

/// Facts about a store.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StoreInfo {
    pub dir: String,
    pub store_id: String,
    pub revision: Revision,
    pub relationships: usize,
    pub schema_revision: Revision,
    /// The oldest revision still readable.
    pub oldest_readable_revision: Revision,
    pub log_records: u64,
    pub snapshot_revision: Option<Revision>,
    pub bytes_on_disk: u64,
}

/// Facts about the store: revisions, sizes, the snapshot.
pub fn info(store: &Store) -> Result<StoreInfo, StorageError> {
    let inner = store.inner();
    let head = store.head();
    let mut log_records = 0;
    inner.storage.log(0, false, &mut |_, _| {
        log_records += 1;
        Ok(true)
    })?;
    let snapshot_revision =
        store.dir().and_then(|d| snapshot::read_header(d).ok().flatten()).map(|h| h.revision);
    Ok(StoreInfo {
        dir: store.dir().map_or_else(|| "(none)".to_string(), |d| d.display().to_string()),
        store_id: inner.store_id.iter().map(|b| format!("{b:02x}")).collect(),
        revision: head.revision,
        relationships: head.len(),
        schema_revision: lock(&inner.names).schema_revision,
        oldest_readable_revision: inner.gc_revision()?,
        log_records,
        snapshot_revision,
        bytes_on_disk: store.dir().map_or(0, dir_bytes),
    })
}

/// The size of every file under `dir`.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// What a collection dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GcReport {
    /// Revisions before this one are no longer readable.
    pub oldest_readable_revision: Revision,
    pub log_records: u64,
    pub deleted_rows: u64,
}

/// Collects history older than the store's history window.
pub fn gc(store: &Store) -> Result<GcReport, StorageError> {
    let (upto, log_records, deleted_rows) = store.inner().gc_now()?;
    Ok(GcReport { oldest_readable_revision: upto, log_records, deleted_rows })
}

/// Checks the store: every backend checksum (by reading every entry), every log record, the
/// snapshot's checksum, and that the index answers as one rebuilt from the stored relationships.
/// Returns what is wrong (empty when all is well).
pub fn verify(store: &Store) -> Result<Vec<String>, StorageError> {
    let inner = store.inner();
    let mut problems = Vec::new();
    if let Err(e) = inner.storage.scan_all() {
        problems.push(e.to_string());
        return Ok(problems);
    }
    let mut last = None;
    if let Err(e) = inner.storage.log(0, false, &mut |rev, _| {
        if let Some(prev) = last {
            if rev != prev + 1 {
                problems.push(format!("the log jumps from revision {prev} to {rev}"));
            }
        }
        last = Some(rev);
        Ok(true)
    }) {
        problems.push(e.to_string());
    }
    if let Some(Err(e)) = store.dir().map(snapshot::read_checked) {
        problems.push(e.to_string());
    }
    let head: Arc<IndexData> = store.head();
    let rebuilt = inner.rebuild_at(head.revision)?;
    for d in head.differences(&rebuilt) {
        problems.push(format!("the index differs from the stored relationships: {d}"));
    }
    Ok(problems)
}

/// The current schema as it was written: its language and text.
pub fn schema_text(store: &Store) -> Result<(crate::syntax::formats::SchemaFormat, String), StorageError> {
    let schemas = store.inner().storage.schemas()?;
    let Some((revision, record)) = schemas.into_iter().next_back() else {
        return Err(StorageError::Corrupt("the store holds no schema".into()));
    };
    let format = record.format.parse().map_err(|_| {
        StorageError::Corrupt(format!("the schema of revision {revision} has an unknown language"))
    })?;
    Ok((format, record.text))
}
