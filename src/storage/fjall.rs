//! The embedded backend: one [fjall](https://docs.rs/fjall) database (an LSM tree with a
//! write-ahead journal) in `DIR/kv`.
//!
//! Keyspaces (all keys big-endian so that byte order is numeric order):
//!
//! | keyspace | key | value |
//! |---|---|---|
//! | `meta`   | a name (`store_id`, `gc_revision`, `pending_import`) | bytes |
//! | `dict`   | stable name (`t:TYPE`, `r:TYPE#REL`, `c:COND`) | stable id, u32 |
//! | `names`  | type id u32, object id u32 | the object's name |
//! | `live`   | [`RowKey`] (24 bytes) | creating revision (varint) + attributes if any |
//! | `dead`   | [`RowKey`] + creating revision u64 | deleting revision (varint) + attributes if any |
//! | `log`    | revision u64 | [`LogRecord`] (bincode) |
//! | `schema` | revision u64 | [`SchemaRecord`] (bincode) |
//!
//! A group of commits is one fjall write batch (atomic), followed by one journal sync.

use super::{
    Commit, CommitBody, DictName, LogRecord, Row, RowKey, RowScope, SchemaRecord, Storage, StorageError,
};
use crate::store::{PortableAttrs, Revision};
use ::fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const KEYSPACES: [&str; 7] = ["meta", "dict", "names", "live", "dead", "log", "schema"];

/// The fjall-backed [`Storage`].
pub struct FjallStorage {
    path: PathBuf,
    db: Database,
    meta: Keyspace,
    dict: Keyspace,
    names: Keyspace,
    live: Keyspace,
    dead: Keyspace,
    log: Keyspace,
    schema: Keyspace,
    sync: bool,
    /// Serializes appends (fjall batches are atomic, but reading the live rows a group
    /// deletes must see the previous group).
    append_lock: Mutex<()>,
}

impl std::fmt::Debug for FjallStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStorage").field("path", &self.path).finish()
    }
}

pub(super) fn err(context: &str, e: ::fjall::Error) -> StorageError {
    match e {
        ::fjall::Error::Locked => StorageError::Locked { dir: context.to_string() },
        ::fjall::Error::Io(source) => StorageError::Io { context: context.to_string(), source },
        ::fjall::Error::Poisoned => StorageError::Failed(format!(
            "{context}: an earlier write to the disk failed; reopen the store to recover"
        )),
        ::fjall::Error::InvalidVersion(v) => StorageError::Corrupt(format!(
            "{context}: the key-value files have an unsupported format version ({v:?})"
        )),
        other => StorageError::Corrupt(format!("{context}: {other}")),
    }
}

fn u64_key(r: Revision) -> [u8; 8] {
    r.to_be_bytes()
}

fn read_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// The keys of sorted runs, merged in order (duplicates kept).
fn merged(runs: &[Vec<super::RowBytes>]) -> impl Iterator<Item = super::RowBytes> + '_ {
    use std::cmp::Reverse;
    let mut heap: std::collections::BinaryHeap<Reverse<(super::RowBytes, usize, usize)>> =
        runs.iter().enumerate().filter_map(|(r, run)| run.first().map(|k| Reverse((*k, r, 0)))).collect();
    std::iter::from_fn(move || {
        let Reverse((k, r, i)) = heap.pop()?;
        if let Some(next) = runs[r].get(i + 1) {
            heap.push(Reverse((*next, r, i + 1)));
        }
        Some(k)
    })
}

fn row_key_of(b: &[u8]) -> Option<RowKey> {
    let mut k = [0u32; 6];
    for (i, v) in k.iter_mut().enumerate() {
        *v = u32::from_be_bytes(b.get(i * 4..i * 4 + 4)?.try_into().ok()?);
    }
    Some(k)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((v, &b[i + 1..]));
        }
    }
    None
}

/// A revision and, unless plain, the attributes.
fn row_value(revision: Revision, attrs: &PortableAttrs) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    put_varint(&mut out, revision);
    if !attrs.is_plain() {
        out.extend(super::encode(attrs));
    }
    out
}

fn row_value_of(b: &[u8]) -> Result<(Revision, PortableAttrs), StorageError> {
    let (rev, rest) =
        get_varint(b).ok_or_else(|| StorageError::Corrupt("a row value is cut short".into()))?;
    let attrs =
        if rest.is_empty() { PortableAttrs::default() } else { super::decode(rest, "a row's attributes")? };
    Ok((rev, attrs))
}

fn dict_key(n: &DictName) -> Vec<u8> {
    match n {
        DictName::Type(t) => format!("t:{t}"),
        DictName::Relation(t, r) => format!("r:{t}#{r}"),
        DictName::Condition(c) => format!("c:{c}"),
    }
    .into_bytes()
}

fn dict_name_of(b: &[u8]) -> Option<DictName> {
    let s = std::str::from_utf8(b).ok()?;
    let (kind, rest) = s.split_once(':')?;
    match kind {
        "t" => Some(DictName::Type(rest.to_string())),
        "r" => rest.split_once('#').map(|(t, r)| DictName::Relation(t.to_string(), r.to_string())),
        "c" => Some(DictName::Condition(rest.to_string())),
        _ => None,
    }
}

impl FjallStorage {
    /// Opens (or creates) the database in `path`.
    pub fn open(path: &Path, sync: bool) -> Result<FjallStorage, StorageError> {
        let ctx = path.display().to_string();
        let db = Database::builder(path).open().map_err(|e| err(&ctx, e))?;
        let ks = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default).map_err(|e| err(&ctx, e));
        let [meta, dict, names, live, dead, log, schema] = [
            ks(KEYSPACES[0])?,
            ks(KEYSPACES[1])?,
            ks(KEYSPACES[2])?,
            ks(KEYSPACES[3])?,
            ks(KEYSPACES[4])?,
            ks(KEYSPACES[5])?,
            ks(KEYSPACES[6])?,
        ];
        Ok(FjallStorage {
            path: path.to_path_buf(),
            db,
            meta,
            dict,
            names,
            live,
            dead,
            log,
            schema,
            sync,
            append_lock: Mutex::new(()),
        })
    }

    fn ctx(&self) -> String {
        self.path.display().to_string()
    }

    /// Makes every write so far durable. `fdatasync` (as PostgreSQL's default `wal_sync_method`
    /// on Linux): the journal's data and what is needed to read it back (its length), without
    /// the timestamps a full `fsync` also writes.
    fn persist(&self) -> Result<(), StorageError> {
        let mode = if self.sync { PersistMode::SyncData } else { PersistMode::Buffer };
        self.db.persist(mode).map_err(|e| err(&self.ctx(), e))
    }

    /// Adds the row changes of one commit to `batch`; `fresh` holds the creating revision of
    /// rows written earlier in the same group (not readable from the keyspace yet).
    fn stage_rows(
        &self,
        batch: &mut ::fjall::OwnedWriteBatch,
        c: &Commit,
        changes: &[super::RowChange],
        fresh: &mut HashMap<RowKey, Revision>,
    ) -> Result<(), StorageError> {
        for ch in changes {
            let kb = super::row_bytes(&ch.key);
            if let Some(before) = &ch.before {
                let created = match fresh.get(&ch.key) {
                    Some(&r) => r,
                    None => match self.live.get(kb).map_err(|e| err(&self.ctx(), e))? {
                        Some(v) => row_value_of(&v)?.0,
                        None => {
                            return Err(StorageError::Corrupt(format!(
                                "revision {}: a relationship to delete has no live row",
                                c.revision
                            )))
                        }
                    },
                };
                let mut dk = kb.to_vec();
                dk.extend_from_slice(&u64_key(created));
                batch.insert(&self.dead, dk, row_value(c.revision, before));
                batch.remove(&self.live, kb.to_vec());
                fresh.remove(&ch.key);
            }
            if let Some(after) = &ch.after {
                batch.insert(&self.live, kb.to_vec(), row_value(c.revision, after));
                fresh.insert(ch.key, c.revision);
            }
        }
        Ok(())
    }
}

impl Storage for FjallStorage {
    fn append(&self, commits: &[Commit]) -> Result<(), StorageError> {
        let _g = match self.append_lock.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut batch = self.db.batch();
        let mut fresh = HashMap::new();
        for c in commits {
            for (n, id) in &c.dict {
                batch.insert(&self.dict, dict_key(n), id.to_be_bytes().to_vec());
            }
            for (ty, id, name) in &c.names {
                let mut k = ty.to_be_bytes().to_vec();
                k.extend_from_slice(&id.to_be_bytes());
                batch.insert(&self.names, k, name.as_bytes().to_vec());
            }
            let record = match &c.body {
                CommitBody::Write(changes) => {
                    self.stage_rows(&mut batch, c, changes, &mut fresh)?;
                    LogRecord::Write { time: c.time, changes: changes.clone(), names: c.names.clone() }
                }
                CommitBody::Import { changes, rows, rows_written } => {
                    self.stage_rows(&mut batch, c, changes, &mut fresh)?;
                    if *rows_written {
                        batch.remove(&self.meta, b"pending_import".to_vec());
                    }
                    LogRecord::Import { time: c.time, count: *rows }
                }
                CommitBody::Schema(s) => {
                    batch.insert(&self.schema, u64_key(c.revision).to_vec(), super::encode(s));
                    LogRecord::Schema { time: c.time }
                }
            };
            batch.insert(&self.log, u64_key(c.revision).to_vec(), super::encode(&record));
        }
        batch.commit().map_err(|e| err(&self.ctx(), e))
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.persist()
    }

    fn import_rows(
        &self,
        revision: Revision,
        names: &mut dyn Iterator<Item = (u32, u32, &str)>,
        plain_runs: &[Vec<super::RowBytes>],
        special: &[(RowKey, PortableAttrs)],
    ) -> Result<u64, StorageError> {
        let ctx = self.ctx();
        // 1. Mark the import, so that a crash before its commit is rolled back at open.
        self.meta.insert("pending_import", u64_key(revision).to_vec()).map_err(|e| err(&ctx, e))?;
        self.persist()?;
        // 2. Names (given in key order), then the rows: the plain runs merged, each key once,
        // its special copy (if any) in place of the plain one.
        let mut ing = self.names.start_ingestion().map_err(|e| err(&ctx, e))?;
        let mut last: Option<[u8; 8]> = None;
        for (ty, id, n) in names {
            let mut k = [0u8; 8];
            k[..4].copy_from_slice(&ty.to_be_bytes());
            k[4..].copy_from_slice(&id.to_be_bytes());
            if last.is_some_and(|l| l >= k) {
                return Err(StorageError::Failed("import names are not in key order".into()));
            }
            last = Some(k);
            ing.write(&k[..], n.as_bytes()).map_err(|e| err(&ctx, e))?;
        }
        ing.finish().map_err(|e| err(&ctx, e))?;
        let mut specials: Vec<(super::RowBytes, usize)> =
            special.iter().enumerate().map(|(i, (k, _))| (super::row_bytes(k), i)).collect();
        specials.sort_unstable();
        let plain_value = row_value(revision, &PortableAttrs::default());
        let mut ing = self.live.start_ingestion().map_err(|e| err(&ctx, e))?;
        let mut rows = 0u64;
        let mut plain = merged(plain_runs).peekable();
        let mut si = 0;
        loop {
            let next_plain = plain.peek().copied();
            let next_special = specials.get(si).map(|(k, _)| *k);
            let key = match (next_plain, next_special) {
                (None, None) => break,
                (Some(p), None) => p,
                (None, Some(s)) => s,
                (Some(p), Some(s)) => p.min(s),
            };
            while plain.peek() == Some(&key) {
                plain.next();
            }
            let mut chosen = None;
            while specials.get(si).is_some_and(|(k, _)| *k == key) {
                chosen = Some(specials[si].1);
                si += 1;
            }
            let written = match chosen {
                None => ing.write(&key[..], plain_value.as_slice()),
                Some(i) => ing.write(&key[..], row_value(revision, &special[i].1)),
            };
            written.map_err(|e| err(&ctx, e))?;
            rows += 1;
        }
        ing.finish().map_err(|e| err(&ctx, e))?;
        self.persist()?;
        Ok(rows)
    }

    fn roll_back_import(&self) -> Result<Option<Revision>, StorageError> {
        let ctx = self.ctx();
        let Some(v) = self.meta.get("pending_import").map_err(|e| err(&ctx, e))? else { return Ok(None) };
        let revision = read_u64(&v).ok_or_else(|| StorageError::Corrupt("a bad import mark".into()))?;
        if self.log.get(u64_key(revision)).map_err(|e| err(&ctx, e))?.is_none() {
            // Imports of this kind only go into stores that hold nothing: clear what it wrote.
            self.live.clear().map_err(|e| err(&ctx, e))?;
            self.dead.clear().map_err(|e| err(&ctx, e))?;
            self.names.clear().map_err(|e| err(&ctx, e))?;
        }
        self.meta.remove("pending_import").map_err(|e| err(&ctx, e))?;
        self.persist()?;
        Ok(Some(revision))
    }

    fn head(&self) -> Result<Revision, StorageError> {
        match self.log.last_key_value() {
            None => Ok(0),
            Some(g) => {
                let k = g.key().map_err(|e| err(&self.ctx(), e))?;
                read_u64(&k).ok_or_else(|| StorageError::Corrupt("a bad log key".into()))
            }
        }
    }

    fn log(
        &self,
        after: Revision,
        reverse: bool,
        f: &mut dyn FnMut(Revision, LogRecord) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let start = after.saturating_add(1);
        let iter = self.log.range(u64_key(start)..);
        let mut each = |g: ::fjall::Guard| -> Result<bool, StorageError> {
            let (k, v) = g.into_inner().map_err(|e| err(&self.ctx(), e))?;
            let rev = read_u64(&k).ok_or_else(|| StorageError::Corrupt("a bad log key".into()))?;
            f(rev, super::decode(&v, &format!("the log record of revision {rev}"))?)
        };
        if reverse {
            for g in iter.rev() {
                if !each(g)? {
                    break;
                }
            }
        } else {
            for g in iter {
                if !each(g)? {
                    break;
                }
            }
        }
        Ok(())
    }

    fn names(
        &self,
        f: &mut dyn FnMut(u32, u32, &str) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        for g in self.names.iter() {
            let (k, v) = g.into_inner().map_err(|e| err(&self.ctx(), e))?;
            let (ty, id) = match (k.get(..4), k.get(4..8)) {
                (Some(a), Some(b)) if k.len() == 8 => (
                    u32::from_be_bytes(a.try_into().unwrap_or_default()),
                    u32::from_be_bytes(b.try_into().unwrap_or_default()),
                ),
                _ => return Err(StorageError::Corrupt("a bad name key".into())),
            };
            let name =
                std::str::from_utf8(&v).map_err(|_| StorageError::Corrupt("a name is not UTF-8".into()))?;
            f(ty, id, name)?;
        }
        Ok(())
    }

    fn rows(
        &self,
        scope: RowScope,
        f: &mut dyn FnMut(Row) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let prefix: Vec<u8> = match scope {
            RowScope::Live | RowScope::All => Vec::new(),
            RowScope::Object { ty, id, rel } => {
                let mut p = ty.to_be_bytes().to_vec();
                p.extend_from_slice(&id.to_be_bytes());
                if let Some(r) = rel {
                    p.extend_from_slice(&r.to_be_bytes());
                }
                p
            }
        };
        for g in self.live.prefix(&prefix) {
            let (k, v) = g.into_inner().map_err(|e| err(&self.ctx(), e))?;
            let key = row_key_of(&k).ok_or_else(|| StorageError::Corrupt("a bad row key".into()))?;
            let (created, attrs) = row_value_of(&v)?;
            if !f(Row { key, created, deleted: None, attrs })? {
                return Ok(());
            }
        }
        if matches!(scope, RowScope::Live) {
            return Ok(());
        }
        for g in self.dead.prefix(&prefix) {
            let (k, v) = g.into_inner().map_err(|e| err(&self.ctx(), e))?;
            let key = row_key_of(&k).ok_or_else(|| StorageError::Corrupt("a bad row key".into()))?;
            let created = k
                .get(24..)
                .and_then(read_u64)
                .ok_or_else(|| StorageError::Corrupt("a bad row key".into()))?;
            let (deleted, attrs) = row_value_of(&v)?;
            if !f(Row { key, created, deleted: Some(deleted), attrs })? {
                return Ok(());
            }
        }
        Ok(())
    }

    fn dict(&self) -> Result<Vec<(DictName, u32)>, StorageError> {
        let mut out = Vec::new();
        for g in self.dict.iter() {
            let (k, v) = g.into_inner().map_err(|e| err(&self.ctx(), e))?;
            let name =
                dict_name_of(&k).ok_or_else(|| StorageError::Corrupt("a bad dictionary key".into()))?;
            let id = v
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| StorageError::Corrupt("a bad dictionary value".into()))?;
            out.push((name, id));
        }
        Ok(out)
    }

    fn schemas(&self) -> Result<Vec<(Revision, SchemaRecord)>, StorageError> {
        let mut out = Vec::new();
        for g in self.schema.iter() {
            let (k, v) = g.into_inner().map_err(|e| err(&self.ctx(), e))?;
            let rev = read_u64(&k).ok_or_else(|| StorageError::Corrupt("a bad schema key".into()))?;
            out.push((rev, super::decode(&v, &format!("the schema of revision {rev}"))?));
        }
        Ok(out)
    }

    fn put_schema(
        &self,
        revision: Revision,
        record: &SchemaRecord,
        dict: &[(DictName, u32)],
    ) -> Result<(), StorageError> {
        let mut batch = self.db.batch();
        for (n, id) in dict {
            batch.insert(&self.dict, dict_key(n), id.to_be_bytes().to_vec());
        }
        batch.insert(&self.schema, u64_key(revision).to_vec(), super::encode(record));
        batch.commit().map_err(|e| err(&self.ctx(), e))?;
        self.persist()
    }

    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.meta.get(key).map_err(|e| err(&self.ctx(), e))?.map(|v| v.to_vec()))
    }

    fn meta_put(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.meta.insert(key, value.to_vec()).map_err(|e| err(&self.ctx(), e))?;
        self.persist()
    }

    fn gc(&self, upto: Revision) -> Result<(u64, u64), StorageError> {
        let ctx = self.ctx();
        let mut batch = self.db.batch();
        let (mut records, mut rows) = (0u64, 0u64);
        for g in self.log.range(..=u64_key(upto)) {
            let k = g.key().map_err(|e| err(&ctx, e))?;
            batch.remove(&self.log, k.to_vec());
            records += 1;
        }
        for g in self.dead.iter() {
            let (k, v) = g.into_inner().map_err(|e| err(&ctx, e))?;
            let (deleted, _) = row_value_of(&v)?;
            if deleted <= upto {
                batch.remove(&self.dead, k.to_vec());
                rows += 1;
            }
        }
        batch.insert(&self.meta, b"gc_revision".to_vec(), u64_key(upto).to_vec());
        batch.commit().map_err(|e| err(&ctx, e))?;
        self.persist()?;
        Ok((records, rows))
    }

    fn flush(&self, wait: bool) -> Result<(), StorageError> {
        let all = [&self.meta, &self.dict, &self.names, &self.live, &self.dead, &self.log, &self.schema];
        for ks in all {
            ks.rotate_memtable().map_err(|e| err(&self.ctx(), e))?;
        }
        // Waiting is bounded: a flush that keeps failing (a full disk) must not hang a close.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while wait
            && all.iter().any(|ks| ks.sealed_memtable_count() > 0)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(())
    }

    fn scan_all(&self) -> Result<u64, StorageError> {
        let mut n = 0u64;
        for ks in [&self.meta, &self.dict, &self.names, &self.live, &self.dead, &self.log, &self.schema] {
            for g in ks.iter() {
                g.into_inner().map_err(|e| err(&self.ctx(), e))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
