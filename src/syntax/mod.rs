//! Text to AST: Purview's schema language, and the SpiceDB and OpenFGA languages it imports.
//!
//! Pest types stay inside this module; callers get [`ast::Schema`] or [`Diagnostics`].

pub mod ast;

/// Placeholder until the parser lands.
pub fn parse_schema(_text: &str) -> Result<ast::Schema, crate::diag::Diagnostics> {
    Err(crate::diag::Diagnostics(vec![]))
}
