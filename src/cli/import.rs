//! `purview import spicedb|openfga FILE`: a SpiceDB or OpenFGA schema, printed in Purview's
//! language.
//!
//! The file is parsed and compiled as it is (problems point into it), then printed with
//! [`purview::syntax::printable::to_purview`], which refuses names Purview cannot write instead
//! of printing a schema that would not parse back.

use super::error::{CliError, CliResult, Exit};
use super::{load, ImportFrom};
use purview::diag::{Diagnostics, SourceFile};
use purview::syntax::printable::{check_names, to_purview};
use purview::syntax::{detect, parse_as, warnings, SchemaFormat};
use std::io::Write as _;
use std::path::Path;

/// Prints the schema in `file`, written in `from`, in Purview's language.
pub(super) fn run(from: ImportFrom, file: &Path) -> CliResult<Exit> {
    if matches!(from, ImportFrom::Openfga) && load::is_manifest(file) {
        return modular(file);
    }
    let text = load::read(file)?;
    let name = file.display().to_string();
    let format = match from {
        ImportFrom::Spicedb => SchemaFormat::SpiceDb,
        ImportFrom::Openfga => match detect(Some(file), &text) {
            SchemaFormat::OpenFgaJson => SchemaFormat::OpenFgaJson,
            _ => SchemaFormat::OpenFgaDsl,
        },
    };
    let problems = |message: String, d: Diagnostics| {
        CliError::diagnostics(message, vec![(SourceFile::new(&name, &*text), d)])
    };
    let ast = parse_as(format, &text).map_err(|d| problems(String::new(), d))?;
    let source = SourceFile::new(&name, &*text);
    for w in warnings(format, &text) {
        eprint!("{}", w.render_warning(&source));
    }
    // Both passes report at once: what does not compile, and the names Purview cannot write.
    let mut found = purview::schema::compile(&ast).err().map(|d| d.0).unwrap_or_default();
    let compiles = found.is_empty();
    found.extend(check_names(&ast).err().map(|d| d.0).unwrap_or_default());
    if !found.is_empty() {
        let message = if compiles { unwritable(&name) } else { String::new() };
        found.sort_by_key(|d| d.span);
        return Err(problems(message, Diagnostics(found)));
    }
    let printed = to_purview(&ast).map_err(|d| problems(unwritable(&name), d))?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(printed.as_bytes());
    let _ = out.flush();
    Ok(Exit::Success)
}

/// An OpenFGA modular model (`fga.mod`): the combined model, printed in Purview's language.
fn modular(file: &Path) -> CliResult<Exit> {
    let (ast, modules) = load::modules_ast(file)?;
    let name = file.display().to_string();
    let problems = |message: String, d: Diagnostics| CliError::diagnostics(message, modules.split(d));
    purview::schema::compile(&ast).map_err(|d| problems(String::new(), d))?;
    check_names(&ast).map_err(|d| problems(unwritable(&name), d))?;
    let printed = to_purview(&ast).map_err(|d| problems(unwritable(&name), d))?;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(printed.as_bytes());
    let _ = out.flush();
    Ok(Exit::Success)
}

fn unwritable(name: &str) -> String {
    format!("`{name}` cannot be written in Purview's language")
}
