//! Text to AST: Purview's schema language, and the SpiceDB and OpenFGA languages it imports.
//!
//! Pest types stay inside this module; callers get [`ast::Schema`] or [`Diagnostics`].
//!
//! [`Diagnostics`]: crate::diag::Diagnostics

pub mod ast;
mod cel_text;
pub mod format;
pub mod formats;
mod import_diag;
pub mod layout;
pub mod openfga;
pub mod openfga_check;
pub mod parser;
pub mod printable;
pub mod spicedb;

pub use format::format_schema;
pub use formats::{detect, parse_as, parse_openfga_modules, warnings, SchemaFormat};
pub use parser::parse_schema;
