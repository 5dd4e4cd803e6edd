//! CSV and JSONL output, object-major: lines are ordered by object id, then subject id, so the
//! outputs of partitions (contiguous object ranges) concatenate to the unpartitioned output.
//!
//! The per-subject rows are transposed a block of objects at a time: every row contributes its
//! objects in the block, the pairs are sorted by (object, subject), and blocks are formatted in
//! parallel and written in order.

use super::compute::{Control, Materialized};
use super::{Format, MaterializeError, Phase};
use crate::index::IndexData;
use crate::store::{Obj, Source};
use rayon::prelude::*;
use std::io::Write;
use std::ops::Range;

/// About this many pairs are formatted per block.
const PAIRS_PER_BLOCK: u64 = 1 << 17;

/// A name as a CSV field: quoted when it holds a comma, a quote or a line break.
pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A name as a JSON string literal.
pub(super) fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Escapes a name for the format.
pub(super) fn field(format: Format, s: &str) -> String {
    match format {
        Format::Jsonl => json_string(s),
        _ => csv_field(s),
    }
}

/// Appends one line.
pub(super) fn line(buf: &mut Vec<u8>, format: Format, fields: [&str; 4]) {
    let [subject, permission, object, outcome] = fields;
    match format {
        Format::Jsonl => {
            buf.extend_from_slice(b"{\"subject\":");
            buf.extend_from_slice(subject.as_bytes());
            buf.extend_from_slice(b",\"permission\":");
            buf.extend_from_slice(permission.as_bytes());
            buf.extend_from_slice(b",\"object\":");
            buf.extend_from_slice(object.as_bytes());
            buf.extend_from_slice(b",\"outcome\":\"");
            buf.extend_from_slice(outcome.as_bytes());
            buf.extend_from_slice(b"\"}\n");
        }
        _ => {
            for (i, f) in [subject, permission, object, outcome].into_iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(f.as_bytes());
            }
            buf.push(b'\n');
        }
    }
}

pub(super) fn outcome_name(conditional: bool) -> &'static str {
    if conditional {
        "conditional"
    } else {
        "allowed"
    }
}

pub(super) fn write(
    data: &IndexData,
    m: &Materialized,
    format: Format,
    out: &mut dyn Write,
    ctl: &Control<'_>,
) -> Result<(), MaterializeError> {
    let t = m.target;
    let permission = field(format, t.relation_name(&data.schema));
    let subjects: Vec<String> = m
        .rows
        .par_iter()
        .map(|r| {
            let s = t.subject(r.subject);
            field(format, &data.subject_ref(s).to_string())
        })
        .collect();
    let bounds = bounds(m);
    if format == Format::Csv && m.partition.is_first() {
        out.write_all(b"subject,permission,object,outcome\n")?;
    }
    write_blocks(m, out, ctl, |b| render(data, m, format, &permission, &subjects, &bounds, b))
}

/// Renders the pairs of `m` block by block (a window of blocks at a time, in parallel) and
/// writes the blocks in order, reporting progress; `render` gives a block's bytes and pairs.
pub(super) fn write_blocks(
    m: &Materialized,
    out: &mut dyn Write,
    ctl: &Control<'_>,
    render: impl Fn(Range<u32>) -> (Vec<u8>, u64) + Sync,
) -> Result<(), MaterializeError> {
    let total = m.pairs();
    ctl.start(Phase::Write, total);
    let blocks = blocks(m, total, PAIRS_PER_BLOCK);
    let window = rayon::current_num_threads().max(1) * 2;
    for group in blocks.chunks(window) {
        ctl.check()?;
        let rendered: Vec<(Vec<u8>, u64)> = group.par_iter().map(|b| render(b.clone())).collect();
        for (buf, pairs) in rendered {
            out.write_all(&buf)?;
            ctl.advance(Phase::Write, pairs, total);
        }
    }
    Ok(())
}

/// The lines of the objects in `block`, and how many.
fn render(
    data: &IndexData,
    m: &Materialized,
    format: Format,
    permission: &str,
    subjects: &[String],
    bounds: &[(u32, u32)],
    block: Range<u32>,
) -> (Vec<u8>, u64) {
    let keys = block_keys(m, bounds, block);
    let mut buf = Vec::with_capacity(keys.len() * 48);
    let mut current = (u32::MAX, String::new());
    for &k in &keys {
        let object = (k >> 32) as u32;
        if object != current.0 {
            let name = data.object_ref(Obj { ty: m.target.object_type, id: object }).to_string();
            current = (object, field(format, &name));
        }
        let row = ((k & 0xffff_ffff) >> 1) as usize;
        let subject = subjects.get(row).map(String::as_str).unwrap_or("");
        line(&mut buf, format, [subject, permission, &current.1, outcome_name(k & 1 == 1)]);
    }
    (buf, keys.len() as u64)
}

/// The first and last object of each row, to skip rows quickly.
pub(super) fn bounds(m: &Materialized) -> Vec<(u32, u32)> {
    m.rows
        .iter()
        .map(|r| {
            let lo = r.allowed.min().into_iter().chain(r.conditional.min()).min().unwrap_or(u32::MAX);
            let hi = r.allowed.max().into_iter().chain(r.conditional.max()).max().unwrap_or(0);
            (lo, hi)
        })
        .collect()
}

/// The object range of `m` cut into blocks of about `per_block` pairs (of `total`), in order.
pub(super) fn blocks(m: &Materialized, total: u64, per_block: u64) -> Vec<Range<u32>> {
    let span = u64::from(m.objects.end - m.objects.start);
    let per_block = (span * per_block).checked_div(total).map_or(span.max(1), |n| n.clamp(64, 1 << 16));
    (0..span.div_ceil(per_block))
        .map(|b| {
            let lo = u64::from(m.objects.start) + b * per_block;
            lo as u32..(lo + per_block).min(u64::from(m.objects.end)) as u32
        })
        .collect()
}

/// The pairs of the objects in `block`, sorted by object then subject: `object << 32 | row << 1
/// | conditional`, where `row` indexes `m.rows`.
pub(super) fn block_keys(m: &Materialized, bounds: &[(u32, u32)], block: Range<u32>) -> Vec<u64> {
    let mut keys: Vec<u64> = Vec::new();
    for (i, r) in m.rows.iter().enumerate() {
        let (lo, hi) = bounds[i];
        if hi < block.start || lo >= block.end {
            continue;
        }
        let i = (i as u64) << 1;
        keys.extend(r.allowed.range(block.clone()).map(|o| (u64::from(o) << 32) | i));
        keys.extend(r.conditional.range(block.clone()).map(|o| (u64::from(o) << 32) | i | 1));
    }
    keys.sort_unstable();
    keys
}

/// Every pair of `m` in blocks of about `per_block` pairs, in the CSV output's order (object,
/// then subject): `(object id, index into m.rows, conditional)`. Blocks are computed lazily,
/// so a caller streams them.
pub fn pair_blocks(m: &Materialized, per_block: u64) -> impl Iterator<Item = Vec<(u32, u32, bool)>> + '_ {
    let bounds = bounds(m);
    blocks(m, m.pairs(), per_block).into_iter().map(move |b| {
        block_keys(m, &bounds, b)
            .into_iter()
            .map(|k| ((k >> 32) as u32, ((k & 0xffff_ffff) >> 1) as u32, k & 1 == 1))
            .collect()
    })
}
