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
