//! The schema language: golden files for accepted and rejected schemas, and properties of the parser
//! and the formatter on generated schemas.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers may panic; clippy.toml's allow-*-in-tests covers only #[test] functions"
)]

mod golden;
mod props;
