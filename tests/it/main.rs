//! The one integration-test binary: every area of Purview is a module.

// Helpers outside `#[test]` functions panic on purpose: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authzen;
mod cli;
mod cli_store;
mod conformance;
mod constraints;
mod diff;
mod eval_props;
mod examples;
mod exclusion_cycles;
mod expected_relations;
mod feed;
mod fga_diff;
mod gen;
mod graph;
mod ids;
mod import_format;
mod import_props;
mod index_diff;
mod lsp;
mod materialize;
mod openfga_gaps;
mod peer_parse;
mod permsets;
mod playground;
mod postgres;
mod query;
mod schema_check;
mod schema_imports;
mod seeds;
mod server;
mod sinks;
mod storage;
mod subject_bits;
mod subset;
mod syntax;
mod testfile;
mod userset_self;
mod valid_time;
