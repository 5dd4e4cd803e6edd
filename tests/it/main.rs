//! The one integration-test binary: every area is a module.

mod cli;
mod eval_props;
mod gen;
mod query;
