//! Two nodes in one process on one database, through the library API: writers on both at once,
//! with deletes and a constrained relation. Both nodes end equal to the rows in PostgreSQL, the
//! constraint held, and each node's change feed lists every revision once, in order, so that
//! replaying it gives the final state: a follower never skipped a commit.

use super::Pg;
use purview::api::{SchemaFormat, UpdateKind, View};
use purview::storage::{open_postgres, postgres, Store, StoreOptions};
use purview::store::{Relationship, WriteError, WriteOp};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub const SCHEMA: &str = "\
type user {}

type doc {
  relation owner: user
  relation viewer: user
  permission view = viewer + owner
  constraint at most 1 owner
}
";

fn quiet() -> StoreOptions {
    StoreOptions { warn: Arc::new(|_| {}), ..StoreOptions::default() }
}

pub fn node(url: &str) -> Store {
    open_postgres(url, None, quiet(), Duration::from_millis(50)).unwrap()
}

fn export(store: &Store) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    purview::storage::export(store, None, &mut |r| {
        out.insert(r.to_string());
        Ok(())
    })
    .unwrap();
    out
}

fn parse(text: &str) -> Relationship {
    purview::api::parse_relationships(text).unwrap().remove(0)
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn two_nodes_converge_keep_constraints_and_follow_every_revision_in_order() {
    let pg = Pg::start();
    postgres::migrate(&pg.url).unwrap();
    let a = node(&pg.url);
    a.purview().set_schema(SchemaFormat::Purview, "schema", SCHEMA).unwrap();
    let b = node(&pg.url);
    assert!(b.purview().is_shared());
    // B learns of A's schema change (from the notification or its next poll).
    assert!(super::eventually(Duration::from_secs(10), || b.purview().revision() == a.purview().revision()));
    let start = b.purview().revision();
    b.purview().keep_changes(1_000_000);
    let nodes = [a.purview().clone(), b.purview().clone()];
    let mut threads = Vec::new();
    for w in 0..8u64 {
        let pv = nodes[(w % 2) as usize].clone();
        threads.push(std::thread::spawn(move || {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w + 1));
            let mut refused = 0;
            for _ in 0..150 {
                let doc = rng.next(12);
                let user = rng.next(12);
                let op = match rng.next(4) {
                    0 => WriteOp::Delete(parse(&format!("doc:d{doc}#viewer@user:u{user}"))),
                    1 => WriteOp::Touch(parse(&format!("doc:d{doc}#owner@user:u{user}"))),
                    2 => WriteOp::Delete(parse(&format!("doc:d{doc}#owner@user:u{user}"))),
                    _ => WriteOp::Touch(parse(&format!("doc:d{doc}#viewer@user:u{user}"))),
                };
                match pv.write(&[op]) {
                    Ok(_) => {}
                    Err(WriteError::Storage { message, .. }) => panic!("a write failed: {message}"),
                    Err(_) => refused += 1,
                }
            }
            refused
        }));
    }
    let refused: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(refused > 0, "some second owners were written concurrently and refused");
    let latest_a = a.purview().snapshot_latest(Duration::from_secs(10)).unwrap().revision();
    let latest_b = b.purview().snapshot_latest(Duration::from_secs(10)).unwrap().revision();
    assert_eq!(latest_a, latest_b);
    let (ea, eb) = (export(&a), export(&b));
    assert_eq!(ea, eb, "both nodes hold the same relationships");
    // … which are the rows PostgreSQL holds (read through its own view, by name).
    let rows: BTreeSet<String> = pg
        .psql("SELECT resource_type || ':' || resource_id || '#' || relation || '@' || subject_type || ':' || subject_id FROM purview_relationships")
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(ea, rows);
    // At most one owner per document.
    let owners: Vec<&String> = ea.iter().filter(|r| r.contains("#owner@")).collect();
    let docs: BTreeSet<&str> = owners.iter().map(|r| r.split('#').next().unwrap()).collect();
    assert_eq!(owners.len(), docs.len(), "a document has two owners: {owners:?}");
    // B's feed: every revision after `start`, once, in order; replayed, the final state.
    let feed = b.purview().changes_after(start).unwrap();
    let revisions: Vec<u64> = feed.iter().map(|c| c.revision).collect();
    let expected: Vec<u64> = (start + 1..=latest_b).collect();
    assert_eq!(revisions, expected, "node B's feed skipped or repeated revisions");
    let mut model = BTreeSet::new();
    for set in &feed {
        for u in &set.updates {
            let text = u.relationship.to_string();
            match u.kind {
                UpdateKind::Touch => model.insert(text),
                UpdateKind::Delete => model.remove(&text),
            };
        }
    }
    assert_eq!(model, eb, "replaying node B's feed gives its state");
    // The revisions in PostgreSQL's log are contiguous too.
    let logged = pg.psql("SELECT count(*), min(revision), max(revision) FROM purview_log");
    let n: Vec<u64> = logged.trim().split('|').map(|v| v.parse().unwrap()).collect();
    assert_eq!(n[2] - n[1] + 1, n[0], "the log has gaps: {logged}");
    assert_eq!(n[2], latest_a);
    let View::Index(_) = b.purview().snapshot() else { panic!("index engine") };
}

const WIDER: &str = "\
type user {}

type doc {
  relation owner: user
  relation viewer: user
  relation editor: user
  permission view = viewer + owner + editor
  constraint at most 1 owner
}
";

#[test]
fn imports_schema_changes_and_history_collection_reach_every_node() {
    let pg = Pg::start();
    postgres::migrate(&pg.url).unwrap();
    let a = node(&pg.url);
    a.purview().set_schema(SchemaFormat::Purview, "schema", SCHEMA).unwrap();
    let b = node(&pg.url);
    // A bulk load into the empty database (rows and names by COPY, one revision).
    let rels: Vec<Result<Relationship, std::convert::Infallible>> =
        (0..5000).map(|i| Ok(parse(&format!("doc:d{}#viewer@user:u{}", i % 250, i / 250)))).collect();
    let loaded = a.purview().bulk_load(rels).unwrap();
    assert_eq!(loaded.relationships, 5000);
    assert!(super::eventually(Duration::from_secs(10), || b.purview().revision() == loaded.revision));
    assert_eq!(export(&a), export(&b));
    assert_eq!(pg.psql("SELECT count(*) FROM purview_relationships").trim(), "5000");

    // A schema change that would orphan stored relationships is refused; nothing changes.
    let before = a.purview().revision();
    let narrower = SCHEMA.replace("  relation viewer: user\n", "").replace("viewer + ", "");
    let refused = a.purview().set_schema(SchemaFormat::Purview, "schema", &narrower).unwrap_err();
    assert!(refused.to_string().contains("5000"), "{refused}");
    assert_eq!(a.purview().snapshot_latest(Duration::from_secs(5)).unwrap().revision(), before);

    // An accepted one reaches the other node (schema, its text), which can write with it.
    let r = a.purview().set_schema(SchemaFormat::Purview, "schema", WIDER).unwrap();
    assert!(super::eventually(Duration::from_secs(10), || b.purview().revision() >= r));
    assert!(b.purview().schema().relation("doc", "editor").is_some());
    assert!(b.purview().shared_schema_text().unwrap().unwrap().contains("relation editor"));
    b.purview().write(&[WriteOp::Touch(parse("doc:d1#editor@user:zed"))]).unwrap();
    let latest = a.purview().snapshot_latest(Duration::from_secs(5)).unwrap();
    assert!(export(&a).contains("doc:d1#editor@user:zed"));
    assert_eq!(latest.revision(), b.purview().revision());

    // History collection, from two nodes at once (one at a time takes the advisory lock): the
    // log is cut, every node still answers, and a new node loads from the rows.
    for i in 0..20 {
        a.purview().write(&[WriteOp::Delete(parse(&format!("doc:d{i}#viewer@user:u0")))]).unwrap();
    }
    let short = || StoreOptions { history_window: Duration::ZERO, ..quiet() };
    let (ga, gb) = (
        open_postgres(&pg.url, None, short(), Duration::from_millis(50)).unwrap(),
        open_postgres(&pg.url, None, short(), Duration::from_millis(50)).unwrap(),
    );
    std::thread::sleep(Duration::from_millis(20));
    let (ra, rb) = std::thread::scope(|s| {
        let ta = s.spawn(|| purview::storage::gc(&ga).unwrap());
        let tb = s.spawn(|| purview::storage::gc(&gb).unwrap());
        (ta.join().unwrap(), tb.join().unwrap())
    });
    assert!(ra.log_records + rb.log_records > 0, "old revisions were collected: {ra:?} {rb:?}");
    let upto = ra.oldest_readable_revision.max(rb.oldest_readable_revision);
    let kept = pg.psql(&format!("SELECT count(*) FROM purview_rows WHERE deleted <= {upto}"));
    assert_eq!(kept.trim(), "0", "deleted rows older than revision {upto} are gone");
    let logged = pg.psql(&format!("SELECT count(*) FROM purview_log WHERE revision <= {upto}"));
    assert_eq!(logged.trim(), "0");
    let c = node(&pg.url);
    assert_eq!(export(&c), export(&a));
    assert_eq!(export(&b), export(&a));
}

/// A fully consistent read on one node sees every write another node acknowledged before it,
/// even while the reading node's follower is catching up (its read snapshot is its own).
#[test]
fn fully_consistent_reads_see_every_acknowledged_write_of_another_node() {
    let pg = Pg::start();
    postgres::migrate(&pg.url).unwrap();
    let a = node(&pg.url);
    a.purview().set_schema(SchemaFormat::Purview, "schema", SCHEMA).unwrap();
    let b = node(&pg.url);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (pv, stop) = (a.purview().clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                pv.write(&[WriteOp::Touch(parse(&format!("doc:d{i}#viewer@user:u{i}")))]).unwrap();
                i += 1;
            }
        })
    };
    for _ in 0..1500 {
        // Every revision A has published was acknowledged before this read began.
        let acknowledged = a.purview().revision();
        let seen = b.purview().snapshot_latest(Duration::from_secs(5)).unwrap().revision();
        assert!(
            seen >= acknowledged,
            "A acknowledged revision {acknowledged}, a fully consistent read on B saw {seen}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}
