//! A store keeps what it acknowledged, across reopen, with history.

use purview::api::{SchemaFormat, UpdateKind};
use purview::storage::{self, StoreOptions};
use purview::{EvalOptions, Purview, Relationship, WriteOp};
use std::path::Path;

pub const SCHEMA: &str = r#"
type user {}
type group {
  relation member: user | group#member
}
type doc {
  relation owner: user
  relation viewer: user | group#member | user:*
  permission view = viewer + owner
}
"#;

pub fn quiet() -> StoreOptions {
    StoreOptions { warn: std::sync::Arc::new(|_| {}), gc_interval: None, ..StoreOptions::default() }
}

pub fn init(dir: &Path) -> Purview {
    storage::init(dir, SchemaFormat::Purview, "schema.pv", SCHEMA, quiet()).unwrap().into_purview()
}

fn ops(text: &str) -> Vec<WriteOp> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let l = l.trim();
            match l.strip_prefix('-') {
                Some(r) => WriteOp::Delete(Relationship::parse(r).unwrap()),
                None => WriteOp::Touch(Relationship::parse(l.trim_start_matches('+')).unwrap()),
            }
        })
        .collect()
}

#[test]
fn reopen_keeps_every_acknowledged_write_and_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let pv = init(&path);
    let r1 = pv.write(&ops("group:eng#member@user:ann\ndoc:d1#viewer@group:eng#member")).unwrap();
    let r2 = pv.write(&ops("doc:d1#owner@user:bob\n-group:eng#member@user:ann")).unwrap();
    let r3 = pv
        .write(&ops("doc:d2#viewer@user:*\ndoc:d3#viewer@user:cat[expiration:2030-01-01T00:00:00Z]"))
        .unwrap_err();
    assert!(r3.to_string().contains("expiration"), "{r3}");
    assert_eq!((r1, r2), (1, 2));
    let before = pv.snapshot().relationship_lines();
    drop(pv);
    let pv = Purview::open(&path, quiet()).unwrap();
    assert_eq!(pv.revision(), 2);
    assert_eq!(pv.snapshot().relationship_lines(), before);
    let at1 = pv.view_at(1).unwrap();
    assert_eq!(
        at1.relationship_lines(),
        ["doc:d1#viewer@group:eng#member", "group:eng#member@user:ann"].map(String::from)
    );
    let opts = EvalOptions::default();
    assert_eq!(at1.check_str("doc:d1", "view", "user:ann", &opts).unwrap(), purview::Decision::Allowed);
    assert_eq!(
        pv.snapshot().check_str("doc:d1", "view", "user:ann", &opts).unwrap(),
        purview::Decision::Denied
    );
    assert!(pv.view_at(0).unwrap().relationship_lines().is_empty());
    assert!(pv.view_at(3).is_err());
    // New names after reopen continue the ids.
    pv.write(&ops("doc:d9#viewer@user:zed")).unwrap();
    drop(pv);
    let pv = Purview::open(&path, quiet()).unwrap();
    assert!(pv.snapshot().relationship_lines().contains(&"doc:d9#viewer@user:zed".to_string()));
}

#[test]
fn a_second_open_is_refused_naming_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let _pv = init(&path);
    let err = Purview::open(&path, quiet()).unwrap_err().to_string();
    assert!(err.contains("in use") && err.contains("store"), "{err}");
}

#[test]
fn concurrent_writers_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let pv = init(&path);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let pv = pv.clone();
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| pv.write(&ops(&format!("doc:d{t}#viewer@user:u{i}"))).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut revisions: Vec<u64> = threads.into_iter().flat_map(|h| h.join().unwrap()).collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=200).collect::<Vec<_>>());
    drop(pv);
    let pv = Purview::open(&path, quiet()).unwrap();
    assert_eq!(pv.snapshot().relationship_lines().len(), 200);
    assert_eq!(pv.revision(), 200);
}

#[test]
fn bulk_load_and_schema_changes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let pv = init(&path);
    let rels: Vec<_> =
        (0..500).map(|i| Relationship::parse(&format!("doc:d{i}#viewer@user:u{}", i % 7))).collect();
    let loaded = pv.bulk_load(rels).unwrap();
    assert_eq!((loaded.revision, loaded.relationships), (1, 500));
    pv.write(&ops("doc:d1#owner@user:ann")).unwrap();
    let narrower = SCHEMA.replace("relation owner: user\n", "").replace(" + owner", "");
    let err = pv.set_schema(SchemaFormat::Purview, "new.pv", &narrower).unwrap_err().to_string();
    assert!(err.contains("doc#owner") && err.contains("1 relationship"), "{err}");
    let wider = SCHEMA.replace("type doc {", "type folder {}\ntype doc {\n  relation parent: folder");
    assert_eq!(pv.set_schema(SchemaFormat::Purview, "new.pv", &wider).unwrap(), 3);
    pv.write(&ops("doc:d1#parent@folder:f")).unwrap();
    let lines = pv.snapshot().relationship_lines();
    drop(pv);
    let store = storage::open(&path, quiet()).unwrap();
    assert_eq!(store.purview().snapshot().relationship_lines(), lines);
    assert!(store.purview().schema().type_id("folder").is_some());
    // Before the schema change and the import, history is rebuilt from the rows.
    assert_eq!(store.purview().view_at(1).unwrap().relationship_lines().len(), 500);
    assert!(store.purview().view_at(0).unwrap().relationship_lines().is_empty());
    assert!(storage::verify(&store).unwrap().is_empty());
}

#[test]
fn history_lists_who_was_given_access_and_gc_collects_old_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store = storage::init(&path, SchemaFormat::Purview, "schema.pv", SCHEMA, quiet()).unwrap();
    let pv = store.purview();
    pv.write(&ops("doc:case1#owner@user:ann\ndoc:case1#viewer@user:bob\ndoc:other#viewer@user:bob")).unwrap();
    pv.write(&ops("-doc:case1#viewer@user:bob")).unwrap();
    pv.write(&[WriteOp::Replace(Relationship::parse("doc:case1#owner@user:cat").unwrap())]).unwrap();
    let object = purview::ObjectRef::new("doc", "case1");
    let h = storage::history(&store, &object, None, storage::Since::Beginning).unwrap();
    let lines: Vec<String> =
        h.iter().map(|e| format!("{} {} {}", e.revision, e.change, e.relationship)).collect();
    assert_eq!(
        lines,
        [
            "1 added doc:case1#owner@user:ann",
            "1 added doc:case1#viewer@user:bob",
            "2 removed doc:case1#viewer@user:bob",
            "3 removed doc:case1#owner@user:ann",
            "3 added doc:case1#owner@user:cat",
        ]
    );
    let owners = storage::history(&store, &object, Some("owner"), storage::Since::Revision(2)).unwrap();
    assert_eq!(owners.len(), 2);
    assert!(owners.iter().all(|e| e.time.ends_with('Z')));
    drop(store);
    // A zero window: everything but the latest revision is collected.
    let opts = StoreOptions { history_window: std::time::Duration::ZERO, ..quiet() };
    let store = storage::open(&path, opts).unwrap();
    let report = storage::gc(&store).unwrap();
    assert_eq!(report.oldest_readable_revision, 2);
    assert!(report.deleted_rows >= 1 && report.log_records == 2, "{report:?}");
    let pv = store.purview();
    let err = pv.view_at(1).unwrap_err();
    assert!(matches!(err, purview::EvalError::RevisionCollected { requested: 1, oldest: 2 }), "{err}");
    assert_eq!(pv.view_at(2).unwrap().relationship_lines().len(), 2);
    // Live relationships keep the revision that added them.
    let h = storage::history(&store, &object, None, storage::Since::Beginning).unwrap();
    assert!(h.iter().any(|e| e.revision == 3 && e.relationship == "doc:case1#owner@user:cat"));
    assert!(storage::verify(&store).unwrap().is_empty());
    drop(store);
    let pv = Purview::open(&path, quiet()).unwrap();
    assert_eq!(pv.revision(), 3);
    assert_eq!(pv.snapshot().relationship_lines().len(), 2);
}

#[test]
fn a_schema_change_that_would_break_a_constraint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let pv = init(&path);
    pv.write(&ops("doc:d1#owner@user:ann\ndoc:d1#owner@user:bob\ndoc:d2#owner@user:ann")).unwrap();
    let constrained = SCHEMA.replace(
        "permission view = viewer + owner",
        "permission view = viewer + owner\n  constraint at most 1 owner",
    );
    let err = pv.set_schema(SchemaFormat::Purview, "new.pv", &constrained).unwrap_err().to_string();
    assert!(err.contains("at most 1 owner"), "{err}");
    assert_eq!(pv.revision(), 1);
    pv.write(&[WriteOp::Replace(Relationship::parse("doc:d1#owner@user:bob").unwrap())]).unwrap();
    assert_eq!(pv.set_schema(SchemaFormat::Purview, "new.pv", &constrained).unwrap(), 3);
    drop(pv);
    // The constraint holds for later writes, after reopen too.
    let pv = Purview::open(&path, quiet()).unwrap();
    let err = pv.write(&ops("doc:d2#owner@user:cat")).unwrap_err().to_string();
    assert!(err.contains("at most 1 owner"), "{err}");
    drop(pv);
    let store = storage::open(&path, quiet()).unwrap();
    let (format, text) = storage::schema_text(&store).unwrap();
    assert_eq!((format, text.as_str()), (SchemaFormat::Purview, constrained.as_str()));
}

#[test]
fn concurrent_writers_with_bad_batches_in_the_mix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let pv = init(&path);
    pv.write(&ops("doc:taken#viewer@user:x")).unwrap();
    pv.keep_changes(1000);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let pv = pv.clone();
            std::thread::spawn(move || {
                let mut good = Vec::new();
                for i in 0..30 {
                    let rel = format!("doc:d{t}#viewer@user:u{i}");
                    let batch = match i % 3 {
                        // A good relationship and a bad one: nothing of the batch may be written.
                        1 => ops(&format!("{rel}\ndoc:d{t}#viewr@user:u{i}")),
                        // Creating what exists fails after a good touch in the same batch.
                        2 => vec![
                            WriteOp::Touch(Relationship::parse(&rel).unwrap()),
                            WriteOp::Create(Relationship::parse("doc:taken#viewer@user:x").unwrap()),
                        ],
                        _ => ops(&rel),
                    };
                    match pv.write(&batch) {
                        Ok(_) => {
                            assert_eq!(i % 3, 0, "a bad batch was accepted: {batch:?}");
                            good.push(rel);
                        }
                        Err(e) => assert_ne!(i % 3, 0, "a good batch failed: {e}"),
                    }
                }
                good
            })
        })
        .collect();
    let mut good: Vec<String> = threads.into_iter().flat_map(|h| h.join().unwrap()).collect();
    good.push("doc:taken#viewer@user:x".to_string());
    good.sort();
    assert_eq!(pv.snapshot().relationship_lines(), good);
    assert_eq!(pv.revision(), good.len() as u64);
    // Batches applied together (one copy per group) still get one revision each, and the feed
    // and the changelog say exactly what each one wrote: one new relationship a revision.
    let changes = pv.changes_after(1).unwrap();
    assert_eq!(changes.len(), good.len() - 1);
    let mut fed = Vec::new();
    for (set, revision) in changes.iter().zip(2..) {
        assert_eq!(set.revision, revision);
        assert_eq!(set.updates.len(), 1, "{set:?}");
        assert_eq!(set.updates[0].kind, UpdateKind::Touch);
        fed.push(set.updates[0].relationship.to_string());
    }
    drop(pv);
    let pv = Purview::open(&path, quiet()).unwrap();
    assert_eq!(pv.snapshot().relationship_lines(), good);
    assert_eq!(pv.view_at(1).unwrap().relationship_lines(), ["doc:taken#viewer@user:x"]);
    for (revision, rel) in (2..).zip(&fed) {
        let lines = pv.view_at(revision).unwrap().relationship_lines();
        assert_eq!(lines.len() as u64, revision);
        assert!(lines.contains(rel) && !pv.view_at(revision - 1).unwrap().relationship_lines().contains(rel));
    }
}

/// A journal that keeps staged batches in memory, holding the writer lock for a while at its
/// first stage so that the writers started meanwhile queue up and are applied as one group.
#[derive(Debug, Default)]
struct SlowJournal {
    staged: std::sync::Mutex<Vec<(u64, usize)>>,
}

impl purview::api::Journal for SlowJournal {
    fn stage(&self, change: purview::api::Change<'_>) -> Result<purview::api::Ticket, String> {
        let purview::api::Change::Batch { revision, batch, .. } = change else {
            return Err("only write batches here".into());
        };
        let mut staged = self.staged.lock().unwrap();
        if staged.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(400));
        }
        staged.push((revision, batch.rows.len()));
        Ok(purview::api::Ticket(revision))
    }
    fn wait(&self, _: purview::api::Ticket) -> Result<(), String> {
        Ok(())
    }
    fn view_at(
        &self,
        head: &std::sync::Arc<purview::index::IndexData>,
        revision: u64,
    ) -> Result<std::sync::Arc<purview::index::IndexData>, purview::EvalError> {
        assert_eq!(revision, head.revision, "no history here");
        Ok(head.clone())
    }
}

#[test]
fn a_write_group_with_refused_batches_in_it_publishes_only_the_good_ones() {
    let memory = Purview::from_schema_text("s.pv", SCHEMA).unwrap();
    let purview::api::View::Index(head) = memory.snapshot() else { panic!("the index engine") };
    let journal = std::sync::Arc::new(SlowJournal::default());
    let pv = Purview::with_journal(head, journal.clone());
    // The first write holds the writer lock in its stage; the others queue in this order.
    let first = {
        let pv = pv.clone();
        std::thread::spawn(move || pv.write(&ops("doc:taken#viewer@user:x")).unwrap())
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut writers = Vec::new();
    for i in 0..12 {
        let pv = pv.clone();
        let rel = format!("doc:d{i}#viewer@user:u{i}");
        let batch = match i % 3 {
            // A touch applied before the batch fails: the group's copy is changed part-way.
            1 => vec![
                WriteOp::Touch(Relationship::parse(&rel).unwrap()),
                WriteOp::Create(Relationship::parse("doc:taken#viewer@user:x").unwrap()),
            ],
            // A new name interned before an unknown relation is found.
            2 => ops(&format!("doc:n{i}#viewer@user:new{i}\ndoc:d{i}#viewr@user:u{i}")),
            _ => ops(&rel),
        };
        writers.push(std::thread::spawn(move || (i, rel, pv.write(&batch))));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(first.join().unwrap(), 1);
    let mut good = vec!["doc:taken#viewer@user:x".to_string()];
    let mut revisions = vec![1];
    for w in writers {
        let (i, rel, result) = w.join().unwrap();
        match result {
            Ok(revision) => {
                assert_eq!(i % 3, 0, "a bad batch was accepted");
                good.push(rel);
                revisions.push(revision);
            }
            Err(e) => assert_ne!(i % 3, 0, "a good batch failed: {e}"),
        }
    }
    good.sort();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=good.len() as u64).collect::<Vec<_>>());
    assert_eq!(pv.snapshot().relationship_lines(), good);
    // Each staged batch: its own revision, one relationship changed.
    let staged = journal.staged.lock().unwrap().clone();
    assert_eq!(staged, (1..=good.len() as u64).map(|r| (r, 1)).collect::<Vec<_>>());
}
