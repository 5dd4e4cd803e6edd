//! The chunk encoder against the `parquet` crate's own reader: files of one string column,
//! written a row group at a time by [`encode`], read back value by value.

use super::*;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::RowAccessor;
use parquet::schema::parser::parse_message_type;
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Writes `groups` (each a row group's values) with the encoder and reads every value back,
/// checking each row group's row count and min/max statistics on the way.
fn round_trip(groups: &[Vec<String>]) -> Vec<String> {
    let schema = Arc::new(parse_message_type("message t { required binary v (STRING); }").unwrap());
    let props = Arc::new(WriterProperties::builder().build());
    let mut w = SerializedFileWriter::new(Vec::new(), schema, props).unwrap();
    let descr = w.schema_descr().column(0);
    for values in groups {
        let mut ids = HashMap::new();
        let mut column = DictColumn { dictionary: Dictionary::default(), indices: Vec::new() };
        for v in values {
            let index = match ids.get(v) {
                Some(&i) => i,
                None => {
                    let i = column.dictionary.push(v.as_bytes()).unwrap();
                    ids.insert(v.clone(), i);
                    i
                }
            };
            column.indices.push(index);
        }
        let (bytes, close) = encode(descr.clone(), &column).unwrap();
        let mut g = w.next_row_group().unwrap();
        g.append_column(&bytes, close).unwrap();
        g.close().unwrap();
    }
    let file = Bytes::from(w.into_inner().unwrap());
    let reader = SerializedFileReader::new(file).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.num_row_groups(), groups.len());
    for (i, values) in groups.iter().enumerate() {
        let rg = meta.row_group(i);
        assert_eq!(rg.num_rows(), values.len() as i64);
        let col = rg.column(0);
        assert_eq!(col.num_values(), values.len() as i64);
        let Some(Statistics::ByteArray(s)) = col.statistics() else {
            panic!("row group {i}: no byte array statistics");
        };
        let min = values.iter().min().unwrap();
        let max = values.iter().max().unwrap();
        assert_eq!(s.min_opt().map(|b| b.data()), Some(min.as_bytes()), "row group {i} min");
        assert_eq!(s.max_opt().map(|b| b.data()), Some(max.as_bytes()), "row group {i} max");
        assert_eq!(s.null_count_opt(), Some(0));
    }
    reader.get_row_iter(None).unwrap().map(|row| row.unwrap().get_string(0).unwrap().clone()).collect()
}

fn check(groups: Vec<Vec<String>>) {
    let expected: Vec<String> = groups.concat();
    assert_eq!(round_trip(&groups), expected);
}

/// Names of several shapes: empty, long, non-ASCII.
fn name(i: u32) -> String {
    match i % 4 {
        0 => format!("user:u{i}"),
        1 => format!("message:{}", "m".repeat(i as usize % 300)),
        2 => format!("ü{i}✓"),
        _ if i == 3 => String::new(),
        _ => format!("{i:x}"),
    }
}

#[test]
fn empty_file_has_no_row_groups() {
    assert!(round_trip(&[]).is_empty());
}

#[test]
fn one_row_and_one_value() {
    check(vec![vec![name(7)]]);
    check(vec![vec![name(3)], vec![name(1); 100_000], vec![name(2)]]);
}

#[test]
fn more_than_two_to_the_sixteen_distinct_values() {
    // 70,000 distinct values need 17 bits an index; runs and literals interleaved.
    let mut values: Vec<String> = (0..70_000).map(|i| format!("user:u{i}")).collect();
    values.extend(std::iter::repeat_n("user:u69999".to_string(), 1000));
    values.extend((0..70_000).rev().step_by(3).map(|i| format!("user:u{i}")));
    check(vec![values, vec!["x".into()]]);
}

#[test]
fn bit_widths_and_padding() {
    assert_eq!(bit_width(0), 1);
    assert_eq!(bit_width(1), 1);
    assert_eq!(bit_width(2), 1);
    assert_eq!(bit_width(3), 2);
    assert_eq!(bit_width(256), 8);
    assert_eq!(bit_width(257), 9);
    assert_eq!(bit_width(u32::MAX), 32);
    // A run of 8 then three literals: width, RLE header + value, bit-packed header + one group.
    let mut out = Vec::new();
    hybrid(&[1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0], 1, &mut out);
    assert_eq!(out, vec![1, 8 << 1, 1, (1 << 1) | 1, 0b010]);
}

/// Row groups of runs of random lengths over dictionaries of various sizes.
fn groups() -> impl Strategy<Value = Vec<Vec<String>>> {
    let group = prop_oneof![Just(1u32), Just(2), Just(300), Just(5000)].prop_flat_map(|distinct| {
        prop::collection::vec((0..distinct, prop_oneof![Just(1usize), 1usize..20, 1usize..600]), 1..60)
    });
    prop::collection::vec(group, 0..5).prop_map(|groups| {
        groups
            .into_iter()
            .map(|runs| runs.into_iter().flat_map(|(v, n)| std::iter::repeat_n(name(v), n)).collect())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn reads_back_what_was_written(groups in groups()) {
        check(groups);
    }
}

/// Bit-packing, bit by bit: value `i`'s bit `b` is bit `i * width + b` of the output.
fn packed_bit_by_bit(values: &[u32], width: u32) -> Vec<u8> {
    let mut out = vec![0u8; values.len().div_ceil(8) * width as usize];
    for (i, &v) in values.iter().enumerate() {
        for b in 0..width {
            let at = i * width as usize + b as usize;
            out[at / 8] |= (((v >> b) & 1) as u8) << (at % 8);
        }
    }
    out
}

proptest! {
    #[test]
    fn bit_packing_of_every_width(width in 1u32..=32, raw in prop::collection::vec(any::<u32>(), 1..100)) {
        let values: Vec<u32> = raw.iter().map(|v| if width == 32 { *v } else { v & ((1 << width) - 1) }).collect();
        let mut out = Vec::new();
        bit_packed(&values, width, &mut out);
        // One run (fewer than 504 values): its header, then the packed groups.
        let mut expected = Vec::new();
        varint(&mut expected, ((values.len().div_ceil(8) as u64) << 1) | 1);
        expected.extend(packed_bit_by_bit(&values, width));
        prop_assert_eq!(out, expected);
    }
}
