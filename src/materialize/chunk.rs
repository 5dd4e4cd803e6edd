//! Parquet column chunks encoded from dictionary indices, below the `parquet` crate's column
//! writer: the caller already knows each row's value as a dense index into a small dictionary
//! (subject and object ids, one permission, two outcomes), so nothing is hashed per row.
//!
//! A chunk is a dictionary page (the distinct values, PLAIN: each a 4-byte little-endian length
//! and its bytes) then data pages of `RLE_DICTIONARY` indices (Parquet's RLE/bit-packed hybrid:
//! a repeated index as one run, the rest bit-packed in groups of eight), format v2 data pages
//! with no levels (the columns are `required`), zstd-compressed (data pages only where that
//! shrinks them by an eighth). The chunk's metadata (sizes, page offsets, encodings, and
//! min/max statistics taken from the dictionary) is built here, and
//! [`parquet::file::writer::SerializedRowGroupWriter::append_column`] splices it in.

use super::MaterializeError;
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::file::metadata::ColumnChunkMetaData;
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use std::ops::Range;

/// At most this many values go into one data page.
const VALUES_PER_PAGE: usize = 1 << 17;

/// A bit-packed run holds at most this many groups of eight values (its header is one byte).
const MAX_GROUPS: usize = 63;

/// A repeated value is written as a run when it repeats at least this many times.
const MIN_RUN: usize = 8;

/// The zstd level of every page (as the `parquet` crate's default).
pub(super) const ZSTD_LEVEL: i32 = 1;

/// The distinct values of one column chunk, in the order of their indices.
#[derive(Default)]
pub(super) struct Dictionary {
    /// PLAIN-encoded values.
    plain: Vec<u8>,
    len: u32,
    /// Where the least and the greatest value (byte order) lie in `plain`.
    min: Range<usize>,
    max: Range<usize>,
}

impl Dictionary {
    /// Appends a value and returns its index.
    pub fn push(&mut self, value: &[u8]) -> Result<u32, MaterializeError> {
        let len = u32::try_from(value.len())
            .map_err(|_| MaterializeError::Parquet("a name longer than 4 GiB".into()))?;
        self.plain.extend_from_slice(&len.to_le_bytes());
        let at = self.plain.len()..self.plain.len() + value.len();
        self.plain.extend_from_slice(value);
        if self.len == 0 || value < &self.plain[self.min.clone()] {
            self.min = at.clone();
        }
        if self.len == 0 || value > &self.plain[self.max.clone()] {
            self.max = at;
        }
        self.len += 1;
        Ok(self.len - 1)
    }
}

/// One column of a row group: its dictionary and each row's index into it.
pub(super) struct DictColumn {
    pub dictionary: Dictionary,
    pub indices: Vec<u32>,
}

/// One column chunk encoded in memory, and the metadata to splice it with.
pub(super) type Encoded = (Bytes, ColumnCloseResult);

/// Encodes `column` as the chunk of column `descr` (a `required` byte array column).
pub(super) fn encode(descr: ColumnDescPtr, column: &DictColumn) -> Result<Encoded, MaterializeError> {
    let DictColumn { dictionary, indices } = column;
    if dictionary.len == 0 && !indices.is_empty() {
        return Err(MaterializeError::Parquet("indices into an empty dictionary".into()));
    }
    let mut zstd = zstd::bulk::Compressor::new(ZSTD_LEVEL)?;
    let mut buf = TrackedWrite::new(Vec::with_capacity(indices.len() * 2 + dictionary.plain.len() / 2));
    let (mut compressed, mut uncompressed) = (0usize, 0usize);
    let mut data_offset = None;
    {
        let mut pages = SerializedPageWriter::new(&mut buf);
        let page = Page::DictionaryPage {
            buf: Bytes::from(zstd.compress(&dictionary.plain)?),
            num_values: dictionary.len,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        let spec = pages.write_page(CompressedPage::new(page, dictionary.plain.len()))?;
        (compressed, uncompressed) =
            (compressed + spec.compressed_size, uncompressed + spec.uncompressed_size);
        let width = bit_width(dictionary.len);
        let mut raw = Vec::new();
        // Indices that zstd does not shrink by an eighth (bit-packed subjects, mostly) are
        // stored as they are: the first page decides for the chunk.
        let mut compress = true;
        // An empty chunk still has one (empty) data page.
        let empty: &[u32] = &[];
        let mut chunks = indices.chunks(VALUES_PER_PAGE).peekable();
        let first = chunks.peek().is_none().then_some(empty);
        for values in first.into_iter().chain(chunks) {
            raw.clear();
            hybrid(values, width, &mut raw);
            let n = u32::try_from(values.len()).unwrap_or(u32::MAX);
            let mut packed = None;
            if compress {
                let z = zstd.compress(&raw)?;
                compress = z.len() * 8 <= raw.len() * 7;
                packed = compress.then_some(z);
            }
            let page = Page::DataPageV2 {
                is_compressed: packed.is_some(),
                buf: Bytes::from(packed.unwrap_or_else(|| raw.clone())),
                num_values: n,
                encoding: Encoding::RLE_DICTIONARY,
                num_nulls: 0,
                num_rows: n,
                def_levels_byte_len: 0,
                rep_levels_byte_len: 0,
                statistics: None,
            };
            let spec = pages.write_page(CompressedPage::new(page, raw.len()))?;
            data_offset.get_or_insert(spec.offset);
            (compressed, uncompressed) =
                (compressed + spec.compressed_size, uncompressed + spec.uncompressed_size);
        }
        pages.close()?;
    }
    let bytes = Bytes::from(buf.into_inner()?);
    let rows = indices.len() as u64;
    let mut meta = ColumnChunkMetaData::builder(descr)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_encodings(vec![Encoding::PLAIN, Encoding::RLE_DICTIONARY])
        .set_num_values(rows as i64)
        .set_total_compressed_size(compressed as i64)
        .set_total_uncompressed_size(uncompressed as i64)
        .set_dictionary_page_offset(Some(0))
        .set_data_page_offset(data_offset.unwrap_or(0) as i64);
    if dictionary.len > 0 {
        let value = |r: &Range<usize>| ByteArray::from(dictionary.plain[r.clone()].to_vec());
        let (min, max) = (value(&dictionary.min), value(&dictionary.max));
        meta = meta.set_statistics(Statistics::byte_array(Some(min), Some(max), None, Some(0), false));
    }
    let close = ColumnCloseResult {
        bytes_written: bytes.len() as u64,
        rows_written: rows,
        metadata: meta.build()?,
        bloom_filter: None,
        column_index: None,
        offset_index: None,
    };
    Ok((bytes, close))
}

/// Bits per index for a dictionary of `len` values (at least 1).
fn bit_width(len: u32) -> u32 {
    (u32::BITS - len.saturating_sub(1).leading_zeros()).max(1)
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `values` as dictionary indices of `width` bits: the width in one byte, then the
/// RLE/bit-packed hybrid.
fn hybrid(values: &[u32], width: u32, out: &mut Vec<u8>) {
    out.push(width as u8);
    let (mut i, mut literal) = (0, 0);
    while i < values.len() {
        let v = values[i];
        let run = values[i..].iter().take_while(|&&x| x == v).count();
        if run >= MIN_RUN {
            bit_packed(&values[literal..i], width, out);
            varint(out, (run as u64) << 1);
            out.extend_from_slice(&v.to_le_bytes()[..width.div_ceil(8) as usize]);
            i += run;
            literal = i;
        } else {
            i = (i + 8).min(values.len());
        }
    }
    bit_packed(&values[literal..], width, out);
}

/// Appends `values` as bit-packed runs (the last group padded with zeros).
fn bit_packed(values: &[u32], width: u32, out: &mut Vec<u8>) {
    for run in values.chunks(MAX_GROUPS * 8) {
        let groups = run.len().div_ceil(8);
        varint(out, ((groups as u64) << 1) | 1);
        out.reserve(groups * width as usize);
        for group in run.chunks(8) {
            // Eight values of `width` bits are `width` bytes; taken 32 bits at a time.
            let end = out.len() + width as usize;
            let (mut acc, mut bits) = (0u64, 0u32);
            for &v in group {
                acc |= u64::from(v) << bits;
                bits += width;
                if bits >= 32 {
                    out.extend_from_slice(&(acc as u32).to_le_bytes());
                    acc >>= 32;
                    bits -= 32;
                }
            }
            out.extend_from_slice(&acc.to_le_bytes()[..bits.div_ceil(8) as usize]);
            // The padding values (of a last group shorter than eight) are zeros.
            out.resize(end, 0);
        }
    }
}

#[cfg(test)]
mod tests;
