//! Bulk visibility where it is consumed: Parquet read back by the parquet crate and by DuckDB,
//! object-major JSON lines against the CSV output, and a PostgreSQL visibility table (full
//! loads, deltas, a follower killed with SIGKILL, row-level security) against fresh full runs.

mod objects;
mod parquet;
mod postgres;

use purview::api::View;
use purview::index::IndexData;
use purview::materialize::{Format, Job, Target};
use purview::Purview;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Groups nest, messages are tagged with groups, reviewers need context (so some pairs are
/// conditional), some viewers expire.
pub const SCHEMA: &str = "\
type user {}

type usergroup {
  relation member: user | usergroup#member
}

type message {
  relation tagged: usergroup
  relation viewer: user | user with expiration
  relation reviewer: user with in_hours
  permission view = tagged->member + viewer + reviewer
}

condition in_hours(hour: int) {
  hour >= 8 && hour < 18
}
";

/// A small deterministic generator (xorshift).
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One random relationship of the schema above, over `n` users, groups and messages.
pub fn random_relationship(rng: &mut Rng, n: u64) -> String {
    match rng.next(10) {
        0..=2 => format!("usergroup:g{}#member@user:u{}", rng.next(n / 4 + 1), rng.next(n)),
        3 => format!("usergroup:g{}#member@usergroup:g{}#member", rng.next(n / 4 + 1), rng.next(n / 4 + 1)),
        4..=6 => format!("message:m{}#tagged@usergroup:g{}", rng.next(n), rng.next(n / 4 + 1)),
        7 => format!("message:m{}#reviewer@user:u{}[in_hours]", rng.next(n), rng.next(n)),
        8 => {
            format!("message:m{}#viewer@user:u{}[expiration:2099-01-01T00:00:00Z]", rng.next(n), rng.next(n))
        }
        _ => format!("message:m{}#viewer@user:u{}", rng.next(n), rng.next(n)),
    }
}

/// `count` random relationships, one a line.
pub fn random_data(seed: u64, n: u64, count: usize) -> String {
    let mut rng = Rng(seed);
    (0..count).map(|_| random_relationship(&mut rng, n) + "\n").collect()
}

pub fn loaded(data: &str) -> Purview {
    let pv = Purview::from_schema_text("s.pv", SCHEMA).unwrap();
    pv.write_text(data).unwrap();
    pv
}

pub fn index_of(pv: &Purview) -> Arc<IndexData> {
    match pv.snapshot() {
        View::Index(d) => d,
        View::Reference(_) => panic!("an index engine"),
    }
}

pub fn view_target(data: &IndexData) -> Target {
    Target::resolve(&data.schema, "message#view", "user").unwrap()
}

pub fn output(data: &IndexData, format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    Job::new(data, view_target(data)).threads(2).write_to(format, &mut out).unwrap();
    out
}

/// Parses CSV (RFC 4180 quoting) into rows of fields, without the header.
pub fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        let mut fields = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    fields.last_mut().unwrap().push('"');
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(String::new()),
                (c, _) => fields.last_mut().unwrap().push(c),
            }
        }
        rows.push(fields);
    }
    rows
}

/// The CSV output as object → (allowed subjects, conditional subjects), in output order.
pub fn csv_by_object(text: &str) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let mut out: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for row in csv_rows(text) {
        let e = out.entry(row[2].clone()).or_default();
        if row[3] == "conditional" { &mut e.1 } else { &mut e.0 }.push(row[0].clone());
    }
    out
}
