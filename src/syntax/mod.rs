//! Text to AST: Purview's schema language, and the SpiceDB and OpenFGA languages it imports.
//!
//! Pest types stay inside this module; callers get [`ast::Schema`] or [`Diagnostics`].

pub mod ast;
mod import_diag;
pub mod openfga;
pub mod openfga_check;
pub mod spicedb;
