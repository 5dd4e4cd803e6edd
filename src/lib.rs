//! Purview: an embeddable relationship-based access (ReBAC) graph engine.

pub mod diag;
pub mod syntax;
