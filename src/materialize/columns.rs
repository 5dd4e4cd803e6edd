//! Parquet output, for data warehouses (DuckDB, Spark, Trino, Polars): the columns `subject`,
//! `permission`, `object`, `outcome` (deltas: `change` first), strings, dictionary-encoded and
//! zstd-compressed, one row group per block of objects, rows in the order of the CSV output
//! (object, then subject).
//!
//! A row group's columns are built as dictionary indices straight from the dense ids (the
//! subjects and objects with a pair in the block, in id order, are its dictionaries), encoded
//! by `chunk.rs` below the `parquet` crate's column writer, blocks in parallel, then spliced
//! into the file in order. The file's key-value metadata records the permission, the subject
//! type, the revision the pairs reflect and the partition.

use super::chunk::{self, DictColumn, Dictionary, Encoded};
use super::compute::{Control, Materialized};
use super::delta::DeltaIds;
use super::text::{blocks, outcome_name};
use super::{MaterializeError, Phase, Target};
use crate::eval::Tri;
use crate::index::IndexData;
use crate::store::{Obj, Revision, Source};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::ColumnDescPtr;
use rayon::prelude::*;
use roaring::RoaringBitmap;
use std::collections::hash_map::{Entry, HashMap};
use std::hash::Hash;
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

/// About this many pairs go into one row group.
const PAIRS_PER_ROW_GROUP: u64 = 1 << 19;

const PAIRS_SCHEMA: &str = "message pairs {
    required binary subject (STRING);
    required binary permission (STRING);
    required binary object (STRING);
    required binary outcome (STRING);
}";

const DELTAS_SCHEMA: &str = "message deltas {
    required binary change (STRING);
    required binary subject (STRING);
    required binary permission (STRING);
    required binary object (STRING);
    required binary outcome (STRING);
}";

impl From<parquet::errors::ParquetError> for MaterializeError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        match e {
            parquet::errors::ParquetError::External(e) => match e.downcast::<std::io::Error>() {
                Ok(io) => MaterializeError::Io(*io),
                Err(e) => MaterializeError::Parquet(e.to_string()),
            },
            e => MaterializeError::Parquet(e.to_string()),
        }
    }
}

fn writer<W: Write + Send>(
    out: W,
    schema: &str,
    metadata: Vec<(&str, String)>,
) -> Result<SerializedFileWriter<W>, MaterializeError> {
    let schema = Arc::new(parse_message_type(schema)?);
    let props = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_created_by(format!("purview {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(
            metadata.into_iter().map(|(k, v)| KeyValue::new(format!("purview.{k}"), v)).collect(),
        ))
        .build();
    Ok(SerializedFileWriter::new(out, schema, Arc::new(props))?)
}

fn header(data: &IndexData, t: &Target, revision: Revision) -> Vec<(&'static str, String)> {
    vec![
        ("permission", t.permission_name(&data.schema)),
        ("subject_type", t.subject_name(&data.schema)),
        ("revision", revision.to_string()),
    ]
}

/// Writes every pair of `m` as one Parquet file.
pub(super) fn write(
    data: &IndexData,
    m: &Materialized,
    out: &mut (dyn Write + Send),
    ctl: &Control<'_>,
) -> Result<(), MaterializeError> {
    write_groups(data, m, out, ctl, PAIRS_PER_ROW_GROUP)
}

/// [`write`] with about `per_row_group` pairs a row group (blocks span at least 64 objects).
fn write_groups(
    data: &IndexData,
    m: &Materialized,
    out: &mut (dyn Write + Send),
    ctl: &Control<'_>,
    per_row_group: u64,
) -> Result<(), MaterializeError> {
    let t = m.target;
    let mut metadata = header(data, &t, m.revision);
    metadata.push(("partition", format!("{}/{}", m.partition.index, m.partition.count)));
    metadata.push(("objects", format!("{}..{}", m.objects.start, m.objects.end)));
    let mut w = writer(out, PAIRS_SCHEMA, metadata)?;
    let columns: Vec<ColumnDescPtr> = w.schema_descr().columns().to_vec();
    if m.rows.len() >= 1 << 31 {
        return Err(MaterializeError::Parquet("more than 2^31 subjects in one file".into()));
    }
    let subjects = SubjectNames::new(data, m);
    let permission = t.relation_name(&data.schema).as_bytes();
    let total = m.pairs();
    ctl.start(Phase::Write, total);
    let blocks = blocks(m, total, per_row_group);
    let threads = rayon::current_num_threads().max(1);
    let mut cursors: Vec<Cursor<'_>> = m
        .rows
        .iter()
        .map(|r| Cursor { allowed: Buffered::new(&r.allowed), conditional: Buffered::new(&r.conditional) })
        .collect();
    // Rows in this many slices, each gathered by one task.
    let slices = threads * 4;
    let slice = m.rows.len().div_ceil(slices).max(1);
    // What one slice gathers for one block, about.
    let expected = (total / blocks.len().max(1) as u64 / slices as u64) as usize * 5 / 4;
    for window in blocks.chunks(threads * 2) {
        ctl.check()?;
        // Each slice of rows moves its cursors past the window, its pairs bucketed by block.
        let gathered: Vec<Vec<Vec<u64>>> = cursors
            .par_chunks_mut(slice)
            .enumerate()
            .map(|(n, rows)| gather(rows, n * slice, window, expected))
            .collect();
        let encoded: Vec<(Vec<Encoded>, u64)> = window
            .par_iter()
            .enumerate()
            .map(|(b, block)| -> Result<(Vec<Encoded>, u64), MaterializeError> {
                let parts = gathered.iter().map(|g| g[b].as_slice());
                let cols = row_group(data, m, &subjects, permission, block.clone(), parts)?;
                let pairs = cols[0].indices.len() as u64;
                if pairs == 0 {
                    return Ok((Vec::new(), 0));
                }
                let chunks = cols
                    .iter()
                    .zip(&columns)
                    .map(|(col, descr)| chunk::encode(descr.clone(), col))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((chunks, pairs))
            })
            .collect::<Result<_, _>>()?;
        drop(gathered);
        for (chunks, pairs) in encoded {
            if pairs == 0 {
                continue;
            }
            let mut g = w.next_row_group()?;
            for (bytes, close) in chunks {
                g.append_column(&bytes, close)?;
            }
            g.close()?;
            ctl.advance(Phase::Write, pairs, total);
        }
    }
    w.close()?;
    Ok(())
}

/// A row's objects not yet written, allowed and conditional, each in id order.
struct Cursor<'a> {
    allowed: Buffered<'a>,
    conditional: Buffered<'a>,
}

/// A bitmap's iterator, read a few values at a time (`next_many` copies a container's values
/// in bulk, much faster than one call per value).
struct Buffered<'a> {
    it: roaring::bitmap::Iter<'a>,
    buf: [u32; 16],
    at: u8,
    len: u8,
}

impl<'a> Buffered<'a> {
    fn new(bitmap: &'a RoaringBitmap) -> Self {
        Buffered { it: bitmap.iter(), buf: [0; 16], at: 0, len: 0 }
    }

    /// Calls `f` with each next value below `hi`, in order.
    fn drain_below(&mut self, hi: u32, mut f: impl FnMut(u32)) {
        loop {
            for &o in &self.buf[usize::from(self.at)..usize::from(self.len)] {
                if o >= hi {
                    return;
                }
                f(o);
                self.at += 1;
            }
            let n = self.it.next_many(&mut self.buf).len();
            if n == 0 {
                return;
            }
            (self.at, self.len) = (0, n as u8);
        }
    }
}

/// Moves the cursors of `rows` (the first is row `first`) past the objects of `window`
/// (consecutive blocks), returning for each block its pairs `offset in the block << 32 | row
/// << 1 | conditional`, by row, a row's allowed pairs before its conditional ones. Cursors
/// advance monotonically, so each row's bitmaps are iterated once over the whole output.
fn gather(rows: &mut [Cursor<'_>], first: usize, window: &[Range<u32>], expected: usize) -> Vec<Vec<u64>> {
    let mut out: Vec<Vec<u64>> = window.iter().map(|_| Vec::with_capacity(expected)).collect();
    let (Some(lo), Some(hi)) = (window.first().map(|b| b.start), window.last().map(|b| b.end)) else {
        return out;
    };
    for (i, cursor) in rows.iter_mut().enumerate() {
        let row = ((first + i) as u64) << 1;
        for (it, conditional) in [(&mut cursor.allowed, 0), (&mut cursor.conditional, 1)] {
            // Block `b` of the window holds the objects from `window[b].start`; blocks are
            // visited in order as the row's objects ascend.
            let mut b = 0;
            it.drain_below(hi, |o| {
                if o >= lo {
                    while o >= window[b].end {
                        b += 1;
                    }
                    out[b].push((u64::from(o - window[b].start) << 32) | row | conditional);
                }
            });
        }
    }
    out
}

/// The name of each row's subject, side by side.
struct SubjectNames {
    bytes: Vec<u8>,
    /// Row `i`'s name is `bytes[ends[i - 1]..ends[i]]` (from 0 for row 0).
    ends: Vec<usize>,
}

impl SubjectNames {
    fn new(data: &IndexData, m: &Materialized) -> Self {
        let t = m.target;
        let names: Vec<String> =
            m.rows.par_iter().map(|r| data.subject_ref(t.subject(r.subject)).to_string()).collect();
        let mut bytes = Vec::with_capacity(names.iter().map(String::len).sum());
        let ends = names
            .iter()
            .map(|n| {
                bytes.extend_from_slice(n.as_bytes());
                bytes.len()
            })
            .collect();
        SubjectNames { bytes, ends }
    }

    fn get(&self, row: usize) -> &[u8] {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.bytes[start..self.ends[row]]
    }
}

/// The four columns of the row group of the objects in `block`, from its pairs as [`gather`]
/// gives them (`parts`, in row order): rows by object, then by subject (the CSV order). The
/// pairs are placed by a counting sort on the object (stable, so an object's subjects stay in
/// row order); dictionaries hold the subjects and objects with a pair in the block, in id
/// order.
fn row_group<'p>(
    data: &IndexData,
    m: &Materialized,
    subjects: &SubjectNames,
    permission: &[u8],
    block: Range<u32>,
    parts: impl Iterator<Item = &'p [u64]> + Clone,
) -> Result<[DictColumn; 4], MaterializeError> {
    let span = (block.end - block.start) as usize;
    let mut counts = vec![0u32; span];
    let mut subject_dict = Dictionary::default();
    let (mut last_row, mut len, mut conditional) = (u64::MAX, 0usize, false);
    for p in parts.clone().flatten() {
        counts[(p >> 32) as usize] += 1;
        let row = (p & 0xffff_ffff) >> 1;
        if row != last_row {
            subject_dict.push(subjects.get(row as usize))?;
            last_row = row;
        }
        conditional |= p & 1 == 1;
        len += 1;
    }
    // Where each object's pairs start.
    let mut at = Vec::with_capacity(span);
    let mut sum = 0u32;
    for &c in &counts {
        at.push(sum);
        sum += c;
    }
    // The pairs in place: the subject's index in the dictionary << 1 | conditional.
    let mut placed = vec![0u32; len];
    let (mut last_row, mut index) = (u64::MAX, 0u32);
    for p in parts.flatten() {
        let row = (p & 0xffff_ffff) >> 1;
        if row != last_row {
            index = if last_row == u64::MAX { 0 } else { index + 1 };
            last_row = row;
        }
        let slot = &mut at[(p >> 32) as usize];
        placed[*slot as usize] = (index << 1) | (p & 1) as u32;
        *slot += 1;
    }
    let mut object_dict = Dictionary::default();
    let mut objects = Vec::with_capacity(placed.len());
    for (offset, &c) in counts.iter().enumerate().filter(|(_, &c)| c > 0) {
        let name =
            data.object_ref(Obj { ty: m.target.object_type, id: block.start + offset as u32 }).to_string();
        let index = object_dict.push(name.as_bytes())?;
        objects.extend(std::iter::repeat_n(index, c as usize));
    }
    let mut permission_dict = Dictionary::default();
    if !placed.is_empty() {
        permission_dict.push(permission)?;
    }
    // Outcomes: `allowed` is index 0 if any pair is allowed; `conditional` follows.
    let mut outcome_dict = Dictionary::default();
    let any_allowed = placed.iter().any(|&p| p & 1 == 0);
    if any_allowed {
        outcome_dict.push(outcome_name(false).as_bytes())?;
    }
    if conditional {
        outcome_dict.push(outcome_name(true).as_bytes())?;
    }
    let conditional_index = u32::from(any_allowed);
    let outcomes = placed.iter().map(|&p| (p & 1) * conditional_index).collect();
    let permissions = vec![0; placed.len()];
    for p in &mut placed {
        *p >>= 1;
    }
    Ok([
        DictColumn { dictionary: subject_dict, indices: placed },
        DictColumn { dictionary: permission_dict, indices: permissions },
        DictColumn { dictionary: object_dict, indices: objects },
        DictColumn { dictionary: outcome_dict, indices: outcomes },
    ])
}

/// Writes deltas (sorted as [`super::deltas`] returns them) as one Parquet file: a `change`
/// column (`added` / `removed`) before the pair's columns. `data` names the ids (the later
/// revision).
pub fn write_deltas(
    data: &IndexData,
    t: &Target,
    revisions: (Revision, Revision),
    deltas: &[DeltaIds],
    out: &mut (dyn Write + Send),
) -> Result<(), MaterializeError> {
    let mut metadata = header(data, t, revisions.1);
    metadata.push(("since_revision", revisions.0.to_string()));
    let mut w = writer(out, DELTAS_SCHEMA, metadata)?;
    let columns: Vec<ColumnDescPtr> = w.schema_descr().columns().to_vec();
    let permission = t.relation_name(&data.schema);
    for chunk in deltas.chunks(PAIRS_PER_ROW_GROUP as usize) {
        let (mut change, mut subject) = (Interned::default(), Interned::default());
        let (mut perm, mut object, mut outcome) =
            (Interned::default(), Interned::default(), Interned::default());
        for d in chunk {
            let s = t.subject(d.subject);
            change.push(d.change.name(), || d.change.name().to_string())?;
            subject.push(d.subject, || data.subject_ref(s).to_string())?;
            perm.push((), || permission.to_string())?;
            object.push(d.object, || data.object_ref(Obj { ty: t.object_type, id: d.object }).to_string())?;
            let conditional = d.outcome == Tri::Cond;
            outcome.push(conditional, || outcome_name(conditional).to_string())?;
        }
        let mut g = w.next_row_group()?;
        let cols = [change.column, subject.column, perm.column, object.column, outcome.column];
        for (col, descr) in cols.iter().zip(&columns) {
            let (bytes, close) = chunk::encode(descr.clone(), col)?;
            g.append_column(&bytes, close)?;
        }
        g.close()?;
    }
    w.close()?;
    Ok(())
}

/// A column built value by value, each distinct key named once in its dictionary.
struct Interned<K> {
    ids: HashMap<K, u32>,
    column: DictColumn,
}

impl<K> Default for Interned<K> {
    fn default() -> Self {
        Interned {
            ids: HashMap::new(),
            column: DictColumn { dictionary: Dictionary::default(), indices: Vec::new() },
        }
    }
}

impl<K: Hash + Eq> Interned<K> {
    fn push(&mut self, key: K, name: impl FnOnce() -> String) -> Result<(), MaterializeError> {
        let index = match self.ids.entry(key) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => *e.insert(self.column.dictionary.push(name().as_bytes())?),
        };
        self.column.indices.push(index);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
