#![doc = include_str!("../README.md")]

pub mod analysis;
pub mod api;
pub mod diag;
pub mod eval;
pub mod index;
pub mod materialize;
pub mod picture;
pub mod query;
pub mod schema;
#[cfg(feature = "postgres")]
pub mod sink;
pub mod storage;
pub mod store;
pub mod syntax;
pub mod testfile;

pub use api::{Purview, SchemaError};
pub use eval::{Decision, EvalError, EvalOptions, Tri};
pub use store::{ObjectRef, Relationship, Snapshot, SubjectRef, WriteOp};
#[cfg(feature = "server")]
pub mod server;
