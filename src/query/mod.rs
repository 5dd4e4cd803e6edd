//! Purview's query language: a readable text form of every read operation.
//!
//! Text → statements ([`split`]) → pest → query AST ([`ast`]) → names checked against a schema
//! ([`validate_queries`]) → answered on a snapshot ([`run_query`]) → [`QueryOutput`] (serde, or
//! [`QueryOutput::render`] for people). The grammar, with every form, is `grammar/query.pest`.
//!
//! ```text
//! check   document:readme#view@user:ann        # primary form: the relationship notation
//! check   user:ann can view document:readme    # alias: an English sentence
//! who     document:readme#view@user
//! what    document#view@user:ann limit 10 after 42
//! expand  document:readme#view
//! subset  role:auditor#grants in user:ann#exercise  # is every member one ann may exercise?
//! explain document:readme#view@user:ann with {"ip": "10.0.0.1"} at 2024-05-01T00:00:00Z
//! ```
//!
//! ```
//! use purview::query::{parse_queries, Op};
//! let qs = parse_queries("check user:ann can view document:readme; who document:readme#view@user")?;
//! assert!(matches!(qs[0].op, Op::Check(_)));
//! assert_eq!(qs[0].to_string(), "check document:readme#view@user:ann");
//! # Ok::<(), purview::diag::Diagnostics>(())
//! ```

pub mod ast;
mod errors;
mod parse;
mod resolve;
mod run;
mod split;

pub use ast::{Clauses, Op, Query, SetExpr, Spanned, Triple};
pub use parse::{parse_queries, OPERATIONS};
pub use resolve::validate_queries;
pub use run::{render_decision, run_query, FailureKind, QueryFailure, QueryOutput, WhatOfType};

#[cfg(test)]
mod tests;
