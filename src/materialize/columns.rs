//! Parquet output, for data warehouses (DuckDB, Spark, Trino, Polars): the columns `subject`,
//! `permission`, `object`, `outcome` (deltas: `change` first), strings, dictionary-encoded and
//! zstd-compressed, one row group per block of objects, rows in the order of the CSV output
//! (object, then subject).
//!
//! Blocks are gathered and encoded in parallel (each column chunk of a row group into memory,
//! dictionary and zstd included), then spliced into the file in order. The file's key-value metadata records the permission, the subject type,
//! the revision the pairs reflect and the partition.

use super::compute::{Control, Materialized};
use super::delta::DeltaIds;
use super::text::{block_keys, blocks, bounds, outcome_name};
use super::{MaterializeError, Phase, Target};
use crate::eval::Tri;
use crate::index::IndexData;
use crate::store::{Obj, Revision, Source, Subject};
use parquet::basic::{Compression, ZstdLevel};
use parquet::column::writer::{get_column_writer, ColumnCloseResult, ColumnWriter};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterPropertiesPtr;
use parquet::file::properties::{WriterProperties, WriterVersion};
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::{ColumnDescPtr, SchemaDescriptor};
use rayon::prelude::*;
use std::io::Write;
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

/// The columns of one row group, in the schema's order.
type Columns = Vec<Vec<ByteArray>>;

fn writer<W: Write + Send>(
    out: W,
    schema: &str,
    metadata: Vec<(&str, String)>,
) -> Result<SerializedFileWriter<W>, MaterializeError> {
    let schema = Arc::new(parse_message_type(schema)?);
    let props = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .set_dictionary_enabled(true)
        // Room for every subject's name in one dictionary (else the column falls back to plain).
        .set_dictionary_page_size_limit(64 << 20)
        .set_data_page_size_limit(1 << 20)
        .set_created_by(format!("purview {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(
            metadata.into_iter().map(|(k, v)| KeyValue::new(format!("purview.{k}"), v)).collect(),
        ))
        .build();
    Ok(SerializedFileWriter::new(out, schema, Arc::new(props))?)
}

fn write_row_group<W: Write + Send>(
    w: &mut SerializedFileWriter<W>,
    columns: &Columns,
) -> Result<(), MaterializeError> {
    let mut group = w.next_row_group()?;
    for values in columns {
        let Some(mut col) = group.next_column()? else {
            return Err(MaterializeError::Parquet("the schema has fewer columns than written".into()));
        };
        col.typed::<ByteArrayType>().write_batch(values, None, None)?;
        col.close()?;
    }
    group.close()?;
    Ok(())
}

/// One column chunk encoded in memory, and what closing its writer reported.
type Encoded = (bytes::Bytes, ColumnCloseResult);

/// Encodes column `i` of one row group on its own (dictionary, pages, zstd).
fn encode(
    descr: &SchemaDescriptor,
    i: usize,
    props: &WriterPropertiesPtr,
    values: &[ByteArray],
) -> Result<Encoded, MaterializeError> {
    let col: ColumnDescPtr = descr.column(i);
    let mut buf = TrackedWrite::new(Vec::with_capacity(values.len()));
    let close = {
        let pages = Box::new(SerializedPageWriter::new(&mut buf));
        let ColumnWriter::ByteArrayColumnWriter(mut w) = get_column_writer(col, props.clone(), pages) else {
            return Err(MaterializeError::Parquet("a string column expected".into()));
        };
        w.write_batch(values, None, None)?;
        w.close()?
    };
    Ok((bytes::Bytes::from(buf.into_inner()?), close))
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
    let (descr, props) = (w.schema_descr().clone(), w.properties().clone());
    let permission = ByteArray::from(t.relation_name(&data.schema).as_bytes().to_vec());
    let outcomes = [ByteArray::from(&b"allowed"[..]), ByteArray::from(&b"conditional"[..])];
    let subjects: Vec<ByteArray> = m
        .rows
        .par_iter()
        .map(|r| {
            let s = Subject { ty: t.subject_type, id: r.subject, rel: t.subject_relation };
            ByteArray::from(data.subject_ref(s).to_string().into_bytes())
        })
        .collect();
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
                let keys = block_keys(m, &bounds, b.clone());
                let mut cols: Columns = (0..4).map(|_| Vec::with_capacity(keys.len())).collect();
                let mut current = (u32::MAX, ByteArray::new());
                for &k in &keys {
                    let object = (k >> 32) as u32;
                    if object != current.0 {
                        let name = data.object_ref(Obj { ty: t.object_type, id: object }).to_string();
                        current = (object, ByteArray::from(name.into_bytes()));
                    }
                    let row = ((k & 0xffff_ffff) >> 1) as usize;
                    cols[0].push(subjects.get(row).cloned().unwrap_or_default());
                    cols[1].push(permission.clone());
                    cols[2].push(current.1.clone());
                    cols[3].push(outcomes[(k & 1) as usize].clone());
                }
                let pairs = cols[0].len() as u64;
                if pairs == 0 {
                    return Ok((Vec::new(), 0));
                }
                let chunks = cols
                    .iter()
                    .enumerate()
                    .map(|(i, values)| encode(&descr, i, &props, values))
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
    let permission = ByteArray::from(t.relation_name(&data.schema).as_bytes().to_vec());
    for chunk in deltas.chunks(PAIRS_PER_ROW_GROUP as usize) {
        let mut cols: Columns = (0..5).map(|_| Vec::with_capacity(chunk.len())).collect();
        let mut object = (u32::MAX, ByteArray::new());
        for d in chunk {
            if d.object != object.0 {
                let name = data.object_ref(Obj { ty: t.object_type, id: d.object }).to_string();
                object = (d.object, ByteArray::from(name.into_bytes()));
            }
            let s = Subject { ty: t.subject_type, id: d.subject, rel: t.subject_relation };
            cols[0].push(ByteArray::from(d.change.name().as_bytes()));
            cols[1].push(ByteArray::from(data.subject_ref(s).to_string().into_bytes()));
            cols[2].push(permission.clone());
            cols[3].push(object.1.clone());
            cols[4].push(ByteArray::from(outcome_name(d.outcome == Tri::Cond).as_bytes()));
        }
        write_row_group(&mut w, &cols)?;
    }
    w.close()?;
    Ok(())
}
