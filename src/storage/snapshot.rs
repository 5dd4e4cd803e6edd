//! The index snapshot file: the compiled index at one revision, checksummed.
//!
//! ```text
//! magic     "PVSNAP\r\n"                     8 bytes
//! version   u32 LE                           the snapshot format (2; 1 had u32 list offsets)
//! store     16 bytes                         the store id: a snapshot of another store is refused
//! revision  u64 LE                           the revision of the index
//! schema    u64 LE                           the revision of the schema it was built with
//! length    u64 LE                           payload bytes
//! checksum  u64 LE                           XXH3-64 of the payload
//! payload   4 × u64 LE section lengths, then the sections: bincode (standard) of the names, the
//!           forward lists, the reverse lists and the rest of the index (see `index::persist`),
//!           encoded and decoded in parallel
//! ```
//!
//! Written to `index.snapshot.tmp`, synced, renamed over `index.snapshot`, and the directory
//! synced, so a crash leaves the old snapshot or the new one, never a mix. Reading checks every
//! field; any mismatch is an error (the caller rebuilds from the rows and says why).

use super::StorageError;
use crate::index::IndexData;
use crate::schema::Schema;
use crate::store::Revision;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"PVSNAP\r\n";
const VERSION: u32 = 2;
const HEADER: usize = 8 + 4 + 16 + 8 + 8 + 8 + 8;

pub fn path(dir: &Path) -> PathBuf {
    dir.join("index.snapshot")
}

/// What a snapshot header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub store: [u8; 16],
    pub revision: Revision,
    pub schema_revision: Revision,
}

/// Writes `data` as the snapshot of `dir`, atomically and durably; returns its size in bytes.
pub fn write(
    dir: &Path,
    store: [u8; 16],
    schema_revision: Revision,
    data: &IndexData,
) -> Result<u64, StorageError> {
    let sections = data
        .encode_parts()
        .map_err(|e| StorageError::Failed(format!("cannot encode the index snapshot: {e}")))?;
    let mut payload = Vec::with_capacity(32 + sections.iter().map(Vec::len).sum::<usize>());
    for s in &sections {
        payload.extend_from_slice(&(s.len() as u64).to_le_bytes());
    }
    for s in &sections {
        payload.extend_from_slice(s);
    }
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&store);
    head.extend_from_slice(&data.revision.to_le_bytes());
    head.extend_from_slice(&schema_revision.to_le_bytes());
    head.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    head.extend_from_slice(&xxhash_rust::xxh3::xxh3_64(&payload).to_le_bytes());
    let target = path(dir);
    let tmp = dir.join("index.snapshot.tmp");
    let ctx = |what: &str| format!("cannot {what} the index snapshot `{}`", tmp.display());
    let mut f = std::fs::File::create(&tmp).map_err(|e| StorageError::io(ctx("create"), e))?;
    f.write_all(&head).and_then(|()| f.write_all(&payload)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        StorageError::io(ctx("write"), e)
    })?;
    f.sync_all().map_err(|e| StorageError::io(ctx("sync"), e))?;
    drop(f);
    std::fs::rename(&tmp, &target).map_err(|e| StorageError::io(ctx("rename"), e))?;
    sync_dir(dir)?;
    Ok((HEADER + payload.len()) as u64)
}

/// Syncs a directory, so that a rename in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(format!("cannot sync the directory `{}`", dir.display()), e))
}

fn bad(why: &str) -> StorageError {
    StorageError::Corrupt(format!("the index snapshot {why}"))
}

/// Checks a header's fields; returns it with the payload length and checksum it announces.
fn parse_header(bytes: &[u8]) -> Result<(Header, u64, u64), StorageError> {
    if bytes.len() < HEADER {
        return Err(bad("is cut short"));
    }
    if &bytes[..8] != MAGIC {
        return Err(bad("does not start with the snapshot magic"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap_or_default());
    if version != VERSION {
        return Err(bad(&format!("has format version {version}, not {VERSION}")));
    }
    let mut store = [0u8; 16];
    store.copy_from_slice(&bytes[12..28]);
    Ok((Header { store, revision: u64_at(28), schema_revision: u64_at(36) }, u64_at(44), u64_at(52)))
}

/// Reads only the header of the snapshot of `dir` (no checksum: for information, never to load).
pub fn read_header(dir: &Path) -> Result<Option<Header>, StorageError> {
    use std::io::Read;
    let p = path(dir);
    let mut f = match std::fs::File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(format!("cannot read `{}`", p.display()), e)),
    };
    let mut head = [0u8; HEADER];
    match f.read_exact(&mut head) {
        Ok(()) => parse_header(&head).map(|(h, _, _)| Some(h)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(bad("is cut short")),
        Err(e) => Err(StorageError::io(format!("cannot read `{}`", p.display()), e)),
    }
}

/// Reads and checks the header and checksum of the snapshot of `dir`. `Ok(None)` if there is
/// none; an error says what is wrong with it.
pub fn read_checked(dir: &Path) -> Result<Option<(Header, Payload)>, StorageError> {
    let p = path(dir);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(format!("cannot read `{}`", p.display()), e)),
    };
    let (header, len, sum) = parse_header(&bytes)?;
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(bad(&format!("holds {} payload bytes where its header says {len}", payload.len())));
    }
    if xxhash_rust::xxh3::xxh3_64(payload) != sum {
        return Err(bad("fails its checksum"));
    }
    Ok(Some((header, Payload(bytes))))
}

/// The checked bytes of a snapshot file.
pub struct Payload(Vec<u8>);

impl Payload {
    /// Size of the file in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Decodes a checked payload into the index for `schema`.
pub fn decode(schema: Arc<Schema>, payload: &Payload) -> Result<IndexData, StorageError> {
    let bad = |why: String| StorageError::Corrupt(format!("the index snapshot: {why}"));
    let body = payload.0.get(HEADER..).unwrap_or_default();
    let mut lens = [0usize; 4];
    for (i, l) in lens.iter_mut().enumerate() {
        let b = body.get(i * 8..i * 8 + 8).ok_or_else(|| bad("its section table is cut short".into()))?;
        *l = usize::try_from(u64::from_le_bytes(b.try_into().unwrap_or_default())).unwrap_or(usize::MAX);
    }
    let mut at = 32usize;
    let mut sections: [&[u8]; 4] = [&[]; 4];
    for (i, l) in lens.iter().enumerate() {
        let end = at.checked_add(*l).ok_or_else(|| bad("a section is too long".into()))?;
        sections[i] = body.get(at..end).ok_or_else(|| bad("a section runs past the end".into()))?;
        at = end;
    }
    if at != body.len() {
        return Err(bad("it has bytes after its sections".into()));
    }
    IndexData::decode_parts(schema, sections).map_err(bad)
}
