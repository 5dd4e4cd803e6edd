//! The seed products of `examples/`: every example's test file passes on both engines, names every
//! rule of its product, and the rules enforced on write reject what they forbid on the example's
//! own schema and data, leaving the data unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers may panic; clippy.toml's allow-*-in-tests covers only #[test] functions"
)]

mod delegation;
mod explain;
mod runner;
mod writes;

use std::path::Path;

/// The rules of PRODUCT.md, by example directory.
const RULES: &[(&str, &str, usize)] =
    &[("ses", "SES", 9), ("ethicontrol", "ETH", 11), ("ecomms", "ECM", 6), ("insurance", "INS", 6)];

#[test]
fn every_rule_is_named_in_its_test_file() {
    for &(dir, prefix, n) in RULES {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(dir);
        let text: String = std::fs::read_dir(&path)
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
            assert!(named, "{dir}: no assertion is marked with {id}");
        }
    }
}

#[test]
fn ses_test_file_passes() {
    runner::passes("ses");
}

#[test]
fn ethicontrol_test_file_passes() {
    runner::passes("ethicontrol");
}

#[test]
fn ecomms_test_file_passes() {
    runner::passes("ecomms");
}

#[test]
fn insurance_test_file_passes() {
    runner::passes("insurance");
}
