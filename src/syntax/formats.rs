//! The languages a schema can be written in, telling them apart, and parsing any of them into
//! Purview's AST.
//!
//! Every language lowers into the same [`ast::Schema`], whose spans point into the text that was
//! parsed: diagnostics of later stages (the compiler) point into the original `.zed` or `.fga`
//! file, not into a translation of it.

use crate::diag::Diagnostics;
use crate::syntax::{ast, openfga, openfga_check, parse_schema, spicedb};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The language a schema is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchemaFormat {
    /// Purview's own language (`.pv`).
    Purview,
    /// A SpiceDB schema (`.zed`).
    SpiceDb,
    /// An OpenFGA model in the DSL, schema 1.1 (`.fga`).
    OpenFgaDsl,
    /// An OpenFGA authorization model as JSON (`.json`).
    OpenFgaJson,
}

impl SchemaFormat {
    /// The names [`FromStr`] accepts and [`fmt::Display`] prints.
    pub const NAMES: [&'static str; 4] = ["purview", "spicedb", "openfga", "openfga-json"];

    /// The format a file extension names, if any: `pv`, `zed`, `fga` or `json`.
    pub fn from_extension(ext: &str) -> Option<SchemaFormat> {
        match ext {
            "pv" => Some(SchemaFormat::Purview),
            "zed" => Some(SchemaFormat::SpiceDb),
            "fga" => Some(SchemaFormat::OpenFgaDsl),
            "json" => Some(SchemaFormat::OpenFgaJson),
            _ => None,
        }
    }
}

impl fmt::Display for SchemaFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemaFormat::Purview => "purview",
            SchemaFormat::SpiceDb => "spicedb",
            SchemaFormat::OpenFgaDsl => "openfga",
            SchemaFormat::OpenFgaJson => "openfga-json",
        })
    }
}

impl FromStr for SchemaFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "purview" | "pv" => Ok(SchemaFormat::Purview),
            "spicedb" | "zed" => Ok(SchemaFormat::SpiceDb),
            "openfga" | "openfga-dsl" | "fga" => Ok(SchemaFormat::OpenFgaDsl),
            "openfga-json" | "json" => Ok(SchemaFormat::OpenFgaJson),
            _ => Err(format!("unknown schema format `{s}`; expected one of {}", Self::NAMES.join(", "))),
        }
    }
}

/// The language of a schema: by the extension of `path` (`.pv`, `.zed`, `.fga`, `.json`), else by
/// the first word of `text` after comments: `definition`, `caveat`, `use`, `partial` or `import`
/// is SpiceDB, `model` (followed by `schema 1.x`) or `module` is the OpenFGA DSL, `{` is OpenFGA
/// JSON, and anything else Purview.
pub fn detect(path: Option<&Path>, text: &str) -> SchemaFormat {
    let by_extension =
        path.and_then(|p| p.extension()).and_then(|e| e.to_str()).and_then(SchemaFormat::from_extension);
    if let Some(f) = by_extension {
        return f;
    }
    let rest = skip_comments(text);
    if rest.starts_with('{') {
        return SchemaFormat::OpenFgaJson;
    }
    match first_word(rest) {
        "definition" | "caveat" | "use" | "partial" | "import" => SchemaFormat::SpiceDb,
        "model" | "module" => SchemaFormat::OpenFgaDsl,
        _ => SchemaFormat::Purview,
    }
}

/// `text` from its first character that is not white space or inside a comment (`//` and `#`
/// to the end of the line, `/* … */`).
fn skip_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if text.starts_with("//") || text.starts_with('#') {
            text = text.find('\n').map_or("", |i| &text[i..]);
        } else if let Some(body) = text.strip_prefix("/*") {
            text = body.find("*/").map_or("", |i| &body[i + 2..]);
        } else {
            return text;
        }
    }
}

fn first_word(text: &str) -> &str {
    let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
    &text[..end]
}

/// Parses `text` as `format` into Purview's AST, with every problem found. OpenFGA models are
/// also checked as OpenFGA's server checks them ([`openfga_check::check_openfga`]; its warnings
/// are left to [`warnings`]).
pub fn parse_as(format: SchemaFormat, text: &str) -> Result<ast::Schema, Diagnostics> {
    let schema = match format {
        SchemaFormat::Purview => return parse_schema(text),
        SchemaFormat::SpiceDb => return spicedb::parse_spicedb(text),
        SchemaFormat::OpenFgaDsl => openfga::parse_openfga_dsl(text)?,
        SchemaFormat::OpenFgaJson => openfga::parse_openfga_json(text)?,
    };
    openfga_check::check_openfga(&schema)?;
    Ok(openfga_check::without_repeated_restrictions(schema))
}

/// Combines the modules of a modular OpenFGA model and checks the model as OpenFGA's server
/// does; `Ok` holds the warnings too. Spans are offsets in the modules' layout
/// ([`openfga::modules::Modules::split`] maps them to the files).
pub fn parse_openfga_modules(
    modules: &openfga::modules::Modules,
) -> Result<(ast::Schema, Vec<crate::diag::Diagnostic>), Diagnostics> {
    // As openfga/language, the model is checked even when combining found problems.
    let (schema, mut errors) = modules.combine();
    let warnings = match openfga_check::check_openfga(&schema) {
        Ok(w) => w,
        Err(d) => {
            errors.extend(d.0);
            Vec::new()
        }
    };
    if errors.is_empty() {
        Ok((openfga_check::without_repeated_restrictions(schema), warnings))
    } else {
        Err(Diagnostics(errors))
    }
}

/// The warnings on a schema that [`parse_as`] accepts: for an OpenFGA model, what OpenFGA's own
/// validator calls an error but its server accepts (an operand or type restriction given twice,
/// an unused condition). Empty for other languages and for a text that does not parse.
pub fn warnings(format: SchemaFormat, text: &str) -> Vec<crate::diag::Diagnostic> {
    let schema = match format {
        SchemaFormat::Purview | SchemaFormat::SpiceDb => return Vec::new(),
        SchemaFormat::OpenFgaDsl => openfga::parse_openfga_dsl(text),
        SchemaFormat::OpenFgaJson => openfga::parse_openfga_json(text),
    };
    schema.ok().and_then(|s| openfga_check::check_openfga(&s).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests;
