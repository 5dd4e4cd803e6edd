//! The change feed (behind Watch): replaying the changes after any revision onto that revision's
//! relationships gives the latest relationships, for random write sequences, in memory and on a
//! store (whose changelog answers for revisions from before the feed started).

use purview::api::{Precondition, RelationshipFilter, UpdateKind};
use purview::storage::{self, StoreOptions};
use purview::{Purview, Relationship, WriteOp};
use std::collections::BTreeSet;

const SCHEMA: &str = "type user {}\ntype group { relation member: user | group#member }\ntype doc {\n  relation viewer: user | group#member\n  relation owner: user\n  permission view = viewer + owner\n}\n";

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn batch(rng: &mut Rng) -> Vec<WriteOp> {
    (0..1 + rng.below(4))
        .map(|_| {
            let text = match rng.below(3) {
                0 => format!("doc:d{}#viewer@user:u{}", rng.below(5), rng.below(6)),
                1 => format!("doc:d{}#viewer@group:g{}#member", rng.below(5), rng.below(3)),
                _ => format!("group:g{}#member@user:u{}", rng.below(3), rng.below(6)),
            };
            let r = Relationship::parse(&text).unwrap();
            if rng.below(3) == 0 {
                WriteOp::Delete(r)
            } else {
                WriteOp::Touch(r)
            }
        })
        .collect()
}

fn lines(pv: &Purview, revision: u64) -> BTreeSet<String> {
    pv.view_at(revision).unwrap().relationship_lines().into_iter().collect()
}

fn check_replay(pv: &Purview, from: u64) {
    let mut state = lines(pv, from);
    for set in pv.changes_after(from).unwrap() {
        for u in &set.updates {
            let text = u.relationship.to_string();
            match u.kind {
                UpdateKind::Touch => state.insert(text),
                UpdateKind::Delete => state.remove(&text),
            };
        }
    }
    assert_eq!(state, lines(pv, pv.revision()), "replaying the changes after revision {from}");
}

#[test]
fn replaying_the_feed_after_any_revision_gives_the_latest_relationships() {
    for seed in 0..8 {
        let pv = Purview::from_schema_text("s.pv", SCHEMA).unwrap();
        pv.keep_changes(1000);
        let start = pv.revision();
        let mut rng = Rng(seed);
        let mut snapshots = vec![(start, pv.snapshot())];
        for _ in 0..30 {
            if pv.write(&batch(&mut rng)).is_ok() {
                snapshots.push((pv.revision(), pv.snapshot()));
            }
        }
        // In memory there is no history: replay onto each kept snapshot instead.
        for (rev, view) in &snapshots {
            let mut state: BTreeSet<String> = view.relationship_lines().into_iter().collect();
            for set in pv.changes_after(*rev).unwrap() {
                for u in &set.updates {
                    let text = u.relationship.to_string();
                    match u.kind {
                        UpdateKind::Touch => state.insert(text),
                        UpdateKind::Delete => state.remove(&text),
                    };
                }
            }
            let latest: BTreeSet<String> = pv.snapshot().relationship_lines().into_iter().collect();
            assert_eq!(state, latest, "seed {seed}, from revision {rev}");
        }
    }
}

#[test]
fn a_store_answers_for_revisions_before_the_feed_started_and_guarded_writes_are_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = storage::init(
        dir.path(),
        purview::syntax::SchemaFormat::Purview,
        "s.pv",
        SCHEMA,
        StoreOptions::default(),
    )
    .unwrap();
    let pv = store.purview().clone();
    let mut rng = Rng(7);
    for _ in 0..20 {
        let _ = pv.write(&batch(&mut rng));
    }
    let before_feed = pv.revision();
    // The feed starts now; a delete by filter and a guarded write come after.
    pv.keep_changes(3);
    let filter = RelationshipFilter {
        resource_type: Some("doc".into()),
        resource_id: Some("d1".into()),
        ..Default::default()
    };
    pv.delete_where(&filter, &[], None, false).unwrap();
    let must = Precondition { must_exist: false, filter: filter.clone() };
    pv.write_if(&[must], &[WriteOp::Touch(Relationship::parse("doc:d1#owner@user:u9").unwrap())]).unwrap();
    for _ in 0..10 {
        let _ = pv.write(&batch(&mut rng));
    }
    // Revisions from the start of the store, most of them before the feed (or out of its 3).
    for from in 1..=pv.revision() {
        check_replay(&pv, from);
    }
    assert!(before_feed > 1);
}
