//! The one integration-test binary: every area is a module.

mod eval_props;
mod gen;
mod query;
