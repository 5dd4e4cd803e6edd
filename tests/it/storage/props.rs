//! Random valid and invalid batches, with reopens at random points: the store after reopen
//! equals an in-memory model of the accepted batches.

use super::basics::{init, quiet, SCHEMA};
use proptest::prelude::*;
use purview::api::Engine;
use purview::{Purview, Relationship, WriteOp};

fn op_strategy() -> impl Strategy<Value = WriteOp> {
    let rel = (0u8..4, 0u8..5, 0u8..6, any::<bool>()).prop_map(|(kind, d, u, valid)| {
        let text = match kind {
            0 => format!("doc:d{d}#viewer@user:u{u}"),
            1 => format!("doc:d{d}#owner@user:u{u}"),
            2 => format!("group:g{d}#member@user:u{u}"),
            _ => format!("doc:d{d}#viewer@group:g{u}#member"),
        };
        // Invalid: a relation that does not exist, or a subject type it does not allow.
        let text = if valid {
            text
        } else if d % 2 == 0 {
            text.replace("viewer", "viewr")
        } else {
            text.replace("owner@user", "owner@group")
        };
        Relationship::parse(&text).unwrap()
    });
    (0u8..4, rel).prop_map(|(k, r)| match k {
        0 => WriteOp::Delete(r),
        1 => WriteOp::Replace(r),
        2 => WriteOp::Create(r),
        _ => WriteOp::Touch(r),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn reopened_store_equals_the_model(
        batches in prop::collection::vec((prop::collection::vec(op_strategy(), 1..5), any::<bool>()), 1..25)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let mut pv = init(&path);
        let schema = purview::api::compile_schema("s.pv", SCHEMA).unwrap();
        let model = Purview::with_engine(schema, Engine::Reference);
        for (ops, reopen) in batches {
            let got = pv.write(&ops);
            let want = model.write(&ops);
            prop_assert_eq!(got.is_ok(), want.is_ok(), "{:?} / {:?}", got, want);
            if let (Ok(a), Ok(b)) = (&got, &want) {
                prop_assert_eq!(a, b);
            }
            if reopen {
                drop(pv);
                pv = Purview::open(&path, quiet()).unwrap();
            }
            prop_assert_eq!(pv.snapshot().relationship_lines(), model.snapshot().relationship_lines());
        }
        drop(pv);
        let pv = Purview::open(&path, quiet()).unwrap();
        prop_assert_eq!(pv.revision(), model.revision());
        prop_assert_eq!(pv.snapshot().relationship_lines(), model.snapshot().relationship_lines());
    }
}

const LOAD_SCHEMA: &str = r#"
type user {}
type group { relation member: user | group#member }
type doc {
  relation viewer: user | user with expiration | group#member | user:*
  permission view = viewer
}
"#;

fn load_line() -> impl Strategy<Value = String> {
    (0u8..5, 0u8..4, 0u8..5).prop_map(|(kind, d, u)| match kind {
        0 => format!("doc:d{d}#viewer@user:u{u}"),
        1 => format!("doc:d{d}#viewer@user:u{u}[expiration:2030-01-0{}T00:00:00Z]", u + 1),
        2 => format!("doc:d{d}#viewer@group:g{u}#member"),
        3 => format!("group:g{d}#member@user:u{u}"),
        _ => format!("doc:d{d}#viewer@user:*"),
    })
}

/// Runs of one shape, long enough that the loader interns full batches on its second thread,
/// with names from small pools (repeats, names first seen in a batch, wildcards, conditions
/// between runs).
fn load_runs() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec((0u8..5, 1usize..1400, 0u64..1000), 0..8).prop_map(|runs| {
        let mut lines = Vec::new();
        for (kind, n, seed) in runs {
            for k in 0..n as u64 {
                let (d, u) = ((seed + k / 3) % 700, (seed * 7 + k * 13) % 900);
                lines.push(match kind {
                    0 => format!("doc:d{d}#viewer@user:u{u}"),
                    1 if k % 50 == 0 => format!("doc:d{d}#viewer@user:u{u}[expiration:2030-01-01T00:00:00Z]"),
                    1 => format!("doc:d{d}#viewer@user:v{u}"),
                    2 => format!("doc:d{d}#viewer@group:g{u}#member"),
                    3 => format!("group:g{d}#member@user:u{u}"),
                    _ => format!("doc:d{d}#viewer@user:*"),
                });
            }
        }
        lines
    })
}

/// Relationships of every shape interleaved line by line (as a load sorted by resource gives
/// them: an object's relationships of each kind together), enough of each shape for full
/// batches, with a condition now and then.
fn load_interleaved() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec((0u8..5, 0u64..700, 0u64..900, 0u8..60), 0..4000).prop_map(|picks| {
        picks
            .into_iter()
            .map(|(kind, d, u, special)| match kind {
                0 => format!("doc:d{d}#viewer@user:u{u}"),
                1 if special == 0 => format!("doc:d{d}#viewer@user:u{u}[expiration:2030-01-01T00:00:00Z]"),
                1 => format!("doc:d{d}#viewer@user:v{u}"),
                2 => format!("doc:d{d}#viewer@group:g{u}#member"),
                3 => format!("group:g{d}#member@user:u{u}"),
                _ => format!("doc:d{d}#viewer@user:*"),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Large loads (names interned a batch at a time on a second thread) give what one batch
    /// of touches gives, with the same names, in memory and in a store.
    #[test]
    fn large_bulk_load_equals_a_batch_of_touches(lines in load_runs()) {
        loads_equal_touches(&lines, 700)?;
    }

    /// The same when shapes alternate line by line: each shape's relationships wait in a batch
    /// of their own, none flushed by the others.
    #[test]
    fn interleaved_bulk_load_equals_a_batch_of_touches(lines in load_interleaved()) {
        loads_equal_touches(&lines, 900)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A bulk load (streamed lines, duplicates and conditions included) gives what one batch of
    /// touches gives, in memory and in a store, before and after reopen.
    #[test]
    fn bulk_load_equals_a_batch_of_touches(lines in prop::collection::vec(load_line(), 0..40), run in 1usize..9) {
        // Small runs, so that the store merges many sorted runs of rows.
        loads_equal_touches(&lines, run)?;
    }
}

/// `lines` bulk loaded (in memory, and into a store whose rows are sorted in runs of `run`,
/// before and after reopen) give what one batch of touches gives on the reference engine.
fn loads_equal_touches(lines: &[String], run: usize) -> Result<(), TestCaseError> {
    let schema = purview::api::compile_schema("s.pv", LOAD_SCHEMA).unwrap();
    let model = Purview::with_engine(schema.clone(), Engine::Reference);
    let ops: Vec<WriteOp> = lines.iter().map(|l| WriteOp::Touch(Relationship::parse(l).unwrap())).collect();
    model.write(&ops).unwrap();
    let want = model.snapshot().relationship_lines();
    let memory = Purview::new(schema);
    let mut loader = memory.bulk_loader().unwrap();
    for (k, l) in lines.iter().enumerate() {
        loader.push_text(l).unwrap();
        prop_assert_eq!(loader.len(), k + 1);
    }
    loader.finish::<String>().unwrap();
    prop_assert_eq!(memory.snapshot().relationship_lines(), want.clone());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let store =
        purview::storage::init(&path, purview::api::SchemaFormat::Purview, "s.pv", LOAD_SCHEMA, quiet())
            .unwrap();
    let mut loader = store.purview().bulk_loader().unwrap().with_run_size(run);
    for l in lines {
        loader.push_text(l).unwrap();
    }
    loader.finish::<String>().unwrap();
    prop_assert_eq!(store.purview().snapshot().relationship_lines(), want.clone());
    drop(store);
    let pv = Purview::open(&path, quiet()).unwrap();
    prop_assert_eq!(pv.snapshot().relationship_lines(), want);
    Ok(())
}
