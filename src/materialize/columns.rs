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
use super::text::{blocks, bounds, outcome_name};
use super::{MaterializeError, Phase, Target};
use crate::eval::Tri;
use crate::index::IndexData;
use crate::store::{Obj, Revision, Source, Subject};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::ColumnDescPtr;
use rayon::prelude::*;
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
    let bounds = bounds(m);
    let total = m.pairs();
    ctl.start(Phase::Write, total);
    let blocks = blocks(m, total, PAIRS_PER_ROW_GROUP);
    let window = rayon::current_num_threads().max(1);
    for group in blocks.chunks(window) {
        ctl.check()?;
        let encoded: Vec<(Vec<Encoded>, u64)> = group
            .par_iter()
            .map(|b| -> Result<(Vec<Encoded>, u64), MaterializeError> {
                let cols = row_group(data, m, &subjects, permission, &bounds, b.clone())?;
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

/// The name of each row's subject, side by side.
struct SubjectNames {
    bytes: Vec<u8>,
    /// Row `i`'s name is `bytes[ends[i - 1]..ends[i]]` (from 0 for row 0).
    ends: Vec<usize>,
}

impl SubjectNames {
    fn new(data: &IndexData, m: &Materialized) -> Self {
        let t = m.target;
        let names: Vec<String> = m
            .rows
            .par_iter()
            .map(|r| {
                data.subject_ref(Subject { ty: t.subject_type, id: r.subject, rel: t.subject_relation })
                    .to_string()
            })
            .collect();
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

/// The four columns of the row group of the objects in `block`: rows by object, then by
/// subject (the CSV order). Each pair is gathered with its object's offset in the block, then
/// placed by a counting sort on that offset (stable, so a block's subjects stay in row order);
/// dictionaries hold the subjects and objects with a pair in the block, in id order.
fn row_group(
    data: &IndexData,
    m: &Materialized,
    subjects: &SubjectNames,
    permission: &[u8],
    bounds: &[(u32, u32)],
    block: Range<u32>,
) -> Result<[DictColumn; 4], MaterializeError> {
    let span = (block.end - block.start) as usize;
    let mut counts = vec![0u32; span];
    let mut pairs: Vec<u64> = Vec::new();
    let mut subject_dict = Dictionary::default();
    let mut conditional = false;
    for (i, r) in m.rows.iter().enumerate() {
        let (lo, hi) = bounds[i];
        if hi < block.start || lo >= block.end {
            continue;
        }
        let before = pairs.len();
        let next = u64::from(subject_dict.len()) << 1;
        pairs.extend(r.allowed.range(block.clone()).map(|o| (u64::from(o - block.start) << 32) | next));
        let allowed = pairs.len();
        pairs.extend(
            r.conditional.range(block.clone()).map(|o| (u64::from(o - block.start) << 32) | next | 1),
        );
        if pairs.len() > before {
            subject_dict.push(subjects.get(i))?;
            conditional |= pairs.len() > allowed;
        }
    }
    for &p in &pairs {
        counts[(p >> 32) as usize] += 1;
    }
    // Where each object's pairs start, then the pairs in place (subject index << 1 | conditional).
    let mut at = Vec::with_capacity(span);
    let mut sum = 0u32;
    for &c in &counts {
        at.push(sum);
        sum += c;
    }
    let mut placed = vec![0u32; pairs.len()];
    for &p in &pairs {
        let slot = &mut at[(p >> 32) as usize];
        placed[*slot as usize] = p as u32;
        *slot += 1;
    }
    drop(pairs);
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
    let shift = u32::from(any_allowed);
    let outcomes = placed.iter().map(|&p| (p & 1) * shift).collect();
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
            let s = Subject { ty: t.subject_type, id: d.subject, rel: t.subject_relation };
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
