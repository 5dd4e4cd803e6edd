//! The seed products of `examples/`: every example's test file passes (through
//! `purview::testfile::run_paths`, as `purview test examples/` runs them) and names every rule of
//! its product; both engines give the same answers on the example data; the rules enforced on
//! write reject what they forbid on the example's own schema and data, leaving it unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers may panic; clippy.toml's allow-*-in-tests covers only #[test] functions"
)]

mod delegation;
mod explain;
mod writes;

use purview::api::{Engine, SubjectFilter};
use purview::eval::EvalOptions;
use purview::store::Obj;
use purview::testfile::{run_paths, RunOptions};
use std::path::{Path, PathBuf};

/// The rules of PRODUCT.md, by example directory.
const RULES: &[(&str, &str, usize)] =
    &[("ses", "SES", 9), ("ethicontrol", "ETH", 11), ("ecomms", "ECM", 6), ("insurance", "INS", 6)];

fn dir(example: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(example)
}

#[test]
fn every_rule_is_named_in_its_test_file() {
    for &(example, prefix, n) in RULES {
        let text: String = std::fs::read_dir(dir(example))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        for i in 1..=n {
            let id = format!("{prefix}-{i}");
            let named = text
                .match_indices(&id)
                .any(|(at, _)| !text[at + id.len()..].starts_with(|c: char| c.is_ascii_digit()));
            assert!(named, "{example}: no assertion is marked with {id}");
        }
    }
}

#[test]
fn every_example_test_file_passes() {
    for &(example, ..) in RULES {
        let report = run_paths(&[dir(example)], &RunOptions::default()).unwrap();
        let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
        assert!(report.is_success(), "{example}:\n{}", failures.join("\n"));
        assert!(report.passed >= 40, "{example}: only {} assertions", report.passed);
    }
}

/// On the example data, the index and the reference evaluator agree on `who` for every
/// relation and permission of every object, and on `check` for every user.
#[test]
fn both_engines_agree_on_the_examples() {
    for &(example, ..) in RULES {
        let index = writes::example(example, Engine::Index).snapshot();
        let reference = writes::example(example, Engine::Reference).snapshot();
        let opts = EvalOptions::default();
        let schema = index.schema().clone();
        let users = schema.type_id("user").unwrap();
        let user_count = reference.source().object_count(users);
        for (ty, tdef) in schema.types.iter().enumerate() {
            for id in 0..reference.source().object_count(ty as u32) {
                let object = reference.source().object_ref(Obj { ty: ty as u32, id });
                for rel in &tdef.relations {
                    let filter = SubjectFilter::parse("user");
                    let a = index.who(&object, &rel.name, &filter, &opts);
                    let b = reference.who(&object, &rel.name, &filter, &opts);
                    assert_eq!(a, b, "{example}: who {object}#{}", rel.name);
                    for u in 0..user_count {
                        let user = reference.source().subject_ref(purview::store::Subject {
                            ty: users,
                            id: u,
                            rel: None,
                        });
                        let a = index.check(&object, &rel.name, &user, &opts);
                        let b = reference.check(&object, &rel.name, &user, &opts);
                        assert_eq!(a, b, "{example}: check {object}#{}@{user}", rel.name);
                    }
                }
            }
        }
    }
}
