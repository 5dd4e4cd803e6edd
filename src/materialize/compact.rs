//! The compact form: per-subject roaring bitmaps of object ids, plus the names of the ids.
//!
//! A file is one or more *segments*; the partitions of a job each write one, and concatenated
//! files read as the union of their segments. A segment (integers little-endian):
//!
//! ```text
//! magic    8 bytes   "PVMAT" 0 0 1              (the last byte is the format version)
//! header   u32 n, n bytes of JSON               (see `Header`: permission, types, revision,
//!                                                partition, object range, counts)
//! objects  u32 count, count × (u32 n, n bytes)  names of object ids start, start+1, … end-1
//! rows     u32 count, count × row               subjects with at least one pair, by id
//!   row    u32 subject id, u32 n + n bytes of the subject's name,
//!          u32 n + n bytes: allowed object ids   (roaring portable serialization)
//!          u32 n + n bytes: conditional object ids (disjoint from allowed)
//! trailer  "PVMATEND", u64 pairs, u64 conditional pairs
//! ```
//!
//! Names are object ids without their type (`m1`); the types are in the header. Bitmaps hold
//! absolute object ids of the revision, so segments of one revision merge by plain union. A file
//! cut short fails to read (no trailer), so a truncated copy cannot pass for a complete one.

use super::compute::{Control, Materialized};
use super::{MaterializeError, Phase};
use crate::eval::Tri;
use crate::index::IndexData;
use crate::store::Source;
use rayon::prelude::*;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;

pub const MAGIC: &[u8; 8] = b"PVMAT\0\0\x01";
pub const TRAILER: &[u8; 8] = b"PVMATEND";

/// The JSON header of a segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// `message#view`.
    pub permission: String,
    pub object_type: String,
    pub subject_type: String,
    pub subject_relation: Option<String>,
    pub revision: u64,
    /// `[index, count]`.
    pub partition: [u32; 2],
    /// Object ids covered, `[start, end)`.
    pub objects: [u32; 2],
    /// Subjects evaluated.
    pub subjects: u32,
    pub pairs: u64,
    pub conditional: u64,
}

/// Names per task when encoding the object dictionary.
const NAMES_PER_TASK: u32 = 1 << 14;
/// Rows per task when serializing bitmaps.
const ROWS_PER_TASK: usize = 256;

fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_u32(buf, b.len() as u32);
    buf.extend_from_slice(b);
}

pub(super) fn write(
    data: &IndexData,
    m: &Materialized,
    out: &mut dyn Write,
    ctl: &Control<'_>,
) -> Result<(), MaterializeError> {
    let schema = &data.schema;
    let t = m.target;
    let header = Header {
        permission: t.permission_name(schema),
        object_type: schema.type_def(t.object_type).name.clone(),
        subject_type: schema.type_def(t.subject_type).name.clone(),
        subject_relation: t.subject_relation.map(|r| schema.rel_def(t.subject_type, r).name.clone()),
        revision: m.revision,
        partition: [m.partition.index, m.partition.count],
        objects: [m.objects.start, m.objects.end],
        subjects: m.subjects,
        pairs: m.pairs(),
        conditional: m.conditional(),
    };
    let json = serde_json::to_vec(&header).map_err(|e| MaterializeError::Compact(e.to_string()))?;
    let mut head = MAGIC.to_vec();
    put_bytes(&mut head, &json);
    put_u32(&mut head, m.objects.end - m.objects.start);
    out.write_all(&head)?;
    // Object names, encoded in parallel pieces and written in order.
    let tasks: Vec<u32> = (m.objects.start..m.objects.end).step_by(NAMES_PER_TASK as usize).collect();
    for group in tasks.chunks(rayon::current_num_threads().max(1) * 4) {
        ctl.check()?;
        let bufs: Vec<Vec<u8>> = group
            .par_iter()
            .map(|&first| {
                let last = first.saturating_add(NAMES_PER_TASK).min(m.objects.end);
                let mut buf = Vec::new();
                for id in first..last {
                    put_bytes(&mut buf, data.object_name(t.object_type, id).as_bytes());
                }
                buf
            })
            .collect();
        for b in bufs {
            out.write_all(&b)?;
        }
    }
    // Rows, serialized in parallel pieces and written in order.
    let mut count = Vec::new();
    put_u32(&mut count, m.rows.len() as u32);
    out.write_all(&count)?;
    let total = header.pairs;
    ctl.start(Phase::Write, total);
    for group in m.rows.chunks(ROWS_PER_TASK * rayon::current_num_threads().max(1) * 2) {
        ctl.check()?;
        let bufs: Vec<(Vec<u8>, u64)> = group
            .par_chunks(ROWS_PER_TASK)
            .map(|rows| -> Result<(Vec<u8>, u64), std::io::Error> {
                let mut buf = Vec::new();
                let mut pairs = 0;
                for r in rows {
                    put_u32(&mut buf, r.subject);
                    let s = t.subject(r.subject);
                    put_bytes(&mut buf, data.object_name(s.ty, s.id).as_bytes());
                    for set in [&r.allowed, &r.conditional] {
                        put_u32(&mut buf, set.serialized_size() as u32);
                        set.serialize_into(&mut buf)?;
                    }
                    pairs += r.allowed.len() + r.conditional.len();
                }
                Ok((buf, pairs))
            })
            .collect::<Result<_, _>>()?;
        for (b, pairs) in bufs {
            out.write_all(&b)?;
            ctl.advance(Phase::Write, pairs, total);
        }
    }
    let mut tail = TRAILER.to_vec();
    tail.extend_from_slice(&header.pairs.to_le_bytes());
    tail.extend_from_slice(&header.conditional.to_le_bytes());
    out.write_all(&tail)?;
    Ok(())
}

/// One subject's pairs, read back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompactRow {
    pub name: String,
    pub allowed: RoaringBitmap,
    pub conditional: RoaringBitmap,
}

/// A compact file read back: the headers of its segments and the union of their contents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Compact {
    pub segments: Vec<Header>,
    /// Object id → name.
    pub objects: BTreeMap<u32, String>,
    /// Subject id → pairs.
    pub rows: BTreeMap<u32, CompactRow>,
}

impl Compact {
    /// Every pair as `("user:ann", "message:m1", outcome)` (userset subjects as
    /// `usergroup:g1#member`), by subject id then object id.
    pub fn triples(&self) -> Vec<(String, String, Tri)> {
        let Some(h) = self.segments.first() else { return Vec::new() };
        let subject = |name: &str| match &h.subject_relation {
            Some(r) => format!("{}:{name}#{r}", h.subject_type),
            None => format!("{}:{name}", h.subject_type),
        };
        let object = |id: u32| format!("{}:{}", h.object_type, self.objects.get(&id).map_or("?", |s| s));
        let mut out = Vec::new();
        for row in self.rows.values() {
            let s = subject(&row.name);
            let mut v: Vec<(u32, Tri)> = row.allowed.iter().map(|o| (o, Tri::True)).collect();
            v.extend(row.conditional.iter().map(|o| (o, Tri::Cond)));
            v.sort_unstable();
            out.extend(v.into_iter().map(|(o, t)| (s.clone(), object(o), t)));
        }
        out
    }

    pub fn pairs(&self) -> u64 {
        self.rows.values().map(|r| r.allowed.len() + r.conditional.len()).sum()
    }
}

struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

fn bad(what: impl Into<String>) -> MaterializeError {
    MaterializeError::Compact(what.into())
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], MaterializeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| bad(format!("cut short at byte {} (no trailer)", self.bytes.len())))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, MaterializeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, MaterializeError> {
        let lo = u64::from(self.u32()?);
        let hi = u64::from(self.u32()?);
        Ok(lo | (hi << 32))
    }

    fn bytes(&mut self) -> Result<&'b [u8], MaterializeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, MaterializeError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("a name is not UTF-8"))
    }

    fn bitmap(&mut self) -> Result<RoaringBitmap, MaterializeError> {
        RoaringBitmap::deserialize_from(self.bytes()?).map_err(|e| bad(format!("a bitmap is invalid: {e}")))
    }
}

/// Reads a compact file (one or more segments of the same permission and revision).
pub fn read(bytes: &[u8]) -> Result<Compact, MaterializeError> {
    let mut r = Reader { bytes, at: 0 };
    let mut out = Compact::default();
    while r.at < bytes.len() {
        if r.take(8)? != MAGIC {
            return Err(bad(format!("no segment starts at byte {}", r.at - 8)));
        }
        let header: Header =
            serde_json::from_slice(r.bytes()?).map_err(|e| bad(format!("the header is invalid: {e}")))?;
        if let Some(first) = out.segments.first() {
            if (&first.permission, &first.subject_type, first.revision)
                != (&header.permission, &header.subject_type, header.revision)
            {
                return Err(bad("segments of different permissions, subject types or revisions"));
            }
        }
        let start = header.objects[0];
        for i in 0..r.u32()? {
            out.objects.insert(start.saturating_add(i), r.string()?);
        }
        let (mut pairs, mut conditional) = (0, 0);
        for _ in 0..r.u32()? {
            let id = r.u32()?;
            let name = r.string()?;
            let (allowed, cond) = (r.bitmap()?, r.bitmap()?);
            pairs += allowed.len() + cond.len();
            conditional += cond.len();
            let row = out.rows.entry(id).or_default();
            row.name = name;
            row.allowed |= allowed;
            row.conditional |= cond;
        }
        if r.take(8)? != TRAILER {
            return Err(bad("the segment has no trailer"));
        }
        if (r.u64()?, r.u64()?) != (pairs, conditional)
            || (header.pairs, header.conditional) != (pairs, conditional)
        {
            return Err(bad("the pair counts do not match the bitmaps"));
        }
        out.segments.push(header);
    }
    if out.segments.is_empty() {
        return Err(bad("the file is empty"));
    }
    Ok(out)
}
