//! The pairs writer with small row groups (many blocks, several windows of them), read back
//! by the `parquet` crate's reader against the pairs of the materialization in the CSV order.

use super::*;
use crate::api::View;
use crate::materialize::Job;
use crate::Purview;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;
use std::sync::atomic::AtomicU64;

const SCHEMA: &str = "\
type user {}
type usergroup {
  relation member: user
}
type message {
  relation tagged: usergroup
  relation reviewer: user with in_hours
  permission view = tagged->member + reviewer
}
condition in_hours(hour: int) {
  hour >= 8 && hour < 18
}
";

#[test]
fn small_row_groups_hold_every_pair_in_the_csv_order() {
    // 40 users in 8 groups; 1,000 messages tagged with one or two groups, some with a reviewer
    // (conditional, as no context is given); some messages have no pair at all.
    let mut rels = String::new();
    for u in 0..40 {
        rels += &format!("usergroup:g{}#member@user:u{u}\n", u % 8);
    }
    for m in 0..1000 {
        if m % 97 == 0 {
            continue;
        }
        rels += &format!("message:m{m}#tagged@usergroup:g{}\n", m % 8);
        if m % 3 == 0 {
            rels += &format!("message:m{m}#tagged@usergroup:g{}\n", (m / 3) % 8);
        }
        if m % 5 == 0 {
            rels += &format!("message:m{m}#reviewer@user:u{}[in_hours]\n", (m + 1) % 40);
        }
    }
    let pv = Purview::from_schema_text("s.pv", SCHEMA).unwrap();
    pv.write_text(&rels).unwrap();
    let View::Index(data) = pv.snapshot() else { panic!("an index engine") };
    let target = Target::resolve(&data.schema, "message#view", "user").unwrap();
    let m = Job::new(&data, target).compute().unwrap();
    // The expected rows: by object, then by row (the CSV order).
    let mut pairs: Vec<(u32, usize, bool)> = Vec::new();
    for (i, r) in m.rows.iter().enumerate() {
        pairs.extend(r.allowed.iter().map(|o| (o, i, false)));
        pairs.extend(r.conditional.iter().map(|o| (o, i, true)));
    }
    pairs.sort_unstable();
    assert!(pairs.iter().any(|p| p.2), "some pairs are conditional");
    let expected: Vec<[String; 4]> = pairs
        .iter()
        .map(|&(o, i, c)| {
            let s = target.subject(m.rows[i].subject);
            [
                data.subject_ref(s).to_string(),
                "view".to_string(),
                data.object_ref(Obj { ty: target.object_type, id: o }).to_string(),
                outcome_name(c).to_string(),
            ]
        })
        .collect();
    let ctl = Control { cancel: None, progress: None, done: AtomicU64::new(0) };
    let mut out = Vec::new();
    // Blocks of 64 objects: 16 row groups, in windows of 2 × threads blocks.
    write_groups(&data, &m, &mut out, &ctl, 1).unwrap();
    let reader = SerializedFileReader::new(bytes::Bytes::from(out)).unwrap();
    assert!(reader.num_row_groups() >= 15, "{} row groups", reader.num_row_groups());
    let rows: Vec<[String; 4]> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            [0, 1, 2, 3].map(|i| r.get_string(i).unwrap().clone())
        })
        .collect();
    assert_eq!(rows.len(), expected.len());
    assert_eq!(rows, expected);
}

#[test]
fn no_pairs_make_a_file_without_row_groups() {
    let pv = Purview::from_schema_text("s.pv", SCHEMA).unwrap();
    pv.write_text("usergroup:g1#member@user:u1\n").unwrap();
    let View::Index(data) = pv.snapshot() else { panic!("an index engine") };
    let target = Target::resolve(&data.schema, "message#view", "user").unwrap();
    let m = Job::new(&data, target).compute().unwrap();
    assert_eq!(m.pairs(), 0);
    let ctl = Control { cancel: None, progress: None, done: AtomicU64::new(0) };
    let mut out = Vec::new();
    write(&data, &m, &mut out, &ctl).unwrap();
    let reader = SerializedFileReader::new(bytes::Bytes::from(out)).unwrap();
    assert_eq!(reader.num_row_groups(), 0);
    assert_eq!(reader.metadata().file_metadata().schema_descr().num_columns(), 4);
    assert_eq!(reader.get_row_iter(None).unwrap().count(), 0);
}
