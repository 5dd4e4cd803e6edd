//! The one integration-test binary: every area of Purview is a module.

// Helpers outside `#[test]` functions panic on purpose: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authzen;
mod cli;
mod cli_store;
mod conformance;
mod constraints;
mod eval_props;
mod examples;
mod feed;
mod gen;
mod ids;
mod import_format;
mod import_props;
mod index_diff;
mod materialize;
mod peer_parse;
mod postgres;
mod query;
mod schema_check;
mod seeds;
mod server;
mod sinks;
mod storage;
mod subset;
mod syntax;
mod testfile;
mod valid_time;
