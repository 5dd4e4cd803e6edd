//! Reading a schema and relationship files into a store, reporting every problem with its place.

use super::error::{CliError, CliResult, Exit};
use anyhow::Context as _;
use purview::api::{compile_schema_as, Engine};
use purview::diag::{Diagnostic, Diagnostics, SourceFile};
use purview::schema::Schema;
use purview::store::{Relationship, WriteError};
use purview::syntax::ast::Span;
use purview::syntax::openfga::modules::{read_modules, Modules};
use purview::syntax::spicedb::imports::{read_imports, ImportedFiles};
use purview::syntax::{detect, parse_openfga_modules, SchemaFormat};
use purview::{Purview, WriteOp};
use std::io::Write as _;
use std::path::Path;

/// Reads a file as UTF-8 text.
pub fn read(path: &Path) -> CliResult<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))
        .map_err(|e| CliError::from_anyhow(Exit::Input, &e))
}

/// Compiles the schema in `text`, written in `format`; `name` is used in diagnostics.
/// Warnings (an OpenFGA model's repeated operand or unused condition) go to standard error.
pub fn schema_from_text(format: SchemaFormat, name: &str, text: &str) -> CliResult<Schema> {
    let warnings = purview::syntax::warnings(format, text);
    if !warnings.is_empty() {
        let file = SourceFile::new(name, text);
        let mut err = std::io::stderr().lock();
        for w in &warnings {
            let _ = write!(err, "{}", w.render_warning(&file));
        }
    }
    compile_schema_as(format, name, text).map_err(|e| {
        let n = e.diagnostics.0.len();
        let message = if n == 0 { format!("the schema `{name}` is invalid") } else { String::new() };
        CliError::diagnostics(message, vec![(e.file, e.diagnostics)])
    })
}

/// The language of a schema file: `format` when given, else detected from its name and text.
pub fn schema_format(path: &Path, text: &str, format: Option<SchemaFormat>) -> SchemaFormat {
    format.unwrap_or_else(|| detect(Some(path), text))
}

/// Whether `path` is an OpenFGA modular model's manifest (`fga.mod`, or any `*.mod`).
pub fn is_manifest(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "mod")
}

/// Reads an `fga.mod` manifest and its modules (paths relative to the manifest), combines and
/// checks them; warnings go to standard error. Diagnostics point into the module files.
pub fn modules_ast(path: &Path) -> CliResult<(purview::syntax::ast::Schema, Modules)> {
    let text = read(path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let modules = read_modules(&text, |rel| {
        let p = dir.join(rel);
        std::fs::read_to_string(&p)
            .map(|t| (p.display().to_string(), t))
            .map_err(|e| format!("cannot read `{}`: {e}", p.display()))
    })
    .map_err(|e| CliError::input(format!("`{}`: {e}", path.display())))?;
    let (ast, warnings) = parse_openfga_modules(&modules)
        .map_err(|d| CliError::diagnostics(String::new(), modules.split(d)))?;
    let mut err = std::io::stderr().lock();
    for (file, ds) in modules.split(Diagnostics(warnings)) {
        for w in &ds.0 {
            let _ = write!(err, "{}", w.render_warning(&file));
        }
    }
    Ok((ast, modules))
}

/// Compiles an OpenFGA modular model from its `fga.mod` manifest.
pub fn modules_schema(path: &Path) -> CliResult<Schema> {
    let (ast, modules) = modules_ast(path)?;
    purview::schema::compile(&ast).map_err(|d| CliError::diagnostics(String::new(), modules.split(d)))
}

/// Reads and compiles a schema file, in `format` or the detected language; an `fga.mod`
/// manifest reads the modules of an OpenFGA modular model.
pub fn schema_file(path: &Path, format: Option<SchemaFormat>) -> CliResult<Schema> {
    if is_manifest(path) {
        return modules_schema(path);
    }
    let text = read(path)?;
    let format = schema_format(path, &text, format);
    if has_imports(format, &text) {
        return spicedb_files_schema(path, text);
    }
    schema_from_text(format, &path.display().to_string(), &text)
}

/// Whether a schema's text imports other files (SpiceDB's `import`; a text that never says
/// `import` is not parsed for it).
pub fn has_imports(format: SchemaFormat, text: &str) -> bool {
    format == SchemaFormat::SpiceDb
        && text.contains("import")
        && !purview::syntax::spicedb::spicedb_imports(text).is_empty()
}

/// A SpiceDB schema file and every file its `import`s name (each relative to the file that
/// imports it; a file imported twice is read once).
fn spicedb_files(path: &Path, text: String) -> CliResult<ImportedFiles> {
    let dir = path.parent().unwrap_or(Path::new("."));
    read_imports(&path.display().to_string(), &text, dir, |p| {
        std::fs::read_to_string(p).map_err(|e| e.to_string())
    })
    .map_err(|e| CliError::diagnostics(String::new(), vec![(e.file, Diagnostics(vec![e.diagnostic]))]))
}

/// Reads a SpiceDB schema file and every file its `import`s name, lays them out as one schema and
/// compiles it. Diagnostics point into the files.
pub fn spicedb_files_schema(path: &Path, text: String) -> CliResult<Schema> {
    let files = spicedb_files(path, text)?;
    let modules = files.modules();
    let ast = files.parse().map_err(|d| CliError::diagnostics(String::new(), modules.split(d)))?;
    purview::schema::compile(&ast).map_err(|d| CliError::diagnostics(String::new(), modules.split(d)))
}

/// A schema file as one self-contained text, for what keeps a schema as text (a store, the
/// server's `ReadSchema`): the file as written, in `format` or the detected language; a SpiceDB
/// schema that imports files, flattened (every file read as [`schema_file`] reads them); an
/// OpenFGA `fga.mod` manifest's combined model, written in Purview's language. The text is
/// checked to compile as the files do.
pub fn schema_source(path: &Path, format: Option<SchemaFormat>) -> CliResult<(SchemaFormat, String)> {
    if is_manifest(path) {
        let (ast, modules) = modules_ast(path)?;
        purview::schema::compile(&ast).map_err(|d| CliError::diagnostics(String::new(), modules.split(d)))?;
        let text = purview::syntax::printable::to_purview(&ast).map_err(|d| {
            CliError::diagnostics(
                format!("the modular model `{}` cannot be kept as one schema text", path.display()),
                modules.split(d),
            )
        })?;
        return Ok((SchemaFormat::Purview, text));
    }
    let text = read(path)?;
    let format = schema_format(path, &text, format);
    if !has_imports(format, &text) {
        return Ok((format, text));
    }
    spicedb_files_schema(path, text.clone())?;
    let flat = spicedb_files(path, text)?.flatten();
    schema_from_text(format, &format!("{} (with its imports)", path.display()), &flat)?;
    Ok((format, flat))
}

/// A relationship and where it was written.
struct Located {
    rel: Relationship,
    file: usize,
    span: Span,
}

/// A schema and the relationships of the data files, written as one batch, answered by `engine`.
pub fn store(schema: Schema, data: &[(String, String)], engine: Engine) -> CliResult<Purview> {
    let files: Vec<SourceFile> = data.iter().map(|(name, text)| SourceFile::new(name, text)).collect();
    let mut rels: Vec<Located> = Vec::new();
    let mut errors: Vec<(usize, Diagnostic)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        read_relationships(i, &f.text, &mut rels, &mut errors);
    }
    if !errors.is_empty() {
        return Err(grouped(&files, errors));
    }
    let pv = Purview::with_engine(schema, engine);
    let ops: Vec<WriteOp> = rels.iter().map(|l| WriteOp::Touch(l.rel.clone())).collect();
    if let Err(e) = pv.write(&ops) {
        let Some(at) = locate(&e, &rels) else {
            return Err(CliError::input(e.to_string()));
        };
        let d = Diagnostic::new(e.code(), at.span, e.to_string());
        return Err(grouped(&files, vec![(at.file, d)]));
    }
    Ok(pv)
}

/// Parses one relationship a line; blank lines and `//` or `# ` comments are skipped (as
/// [`purview::api::parse_relationships`] does).
fn read_relationships(
    file: usize,
    text: &str,
    out: &mut Vec<Located>,
    errors: &mut Vec<(usize, Diagnostic)>,
) {
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let body = line.trim();
        if body.is_empty() || body.starts_with("//") || body.starts_with("# ") || body == "#" {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let span = Span::new(start + indent, start + indent + body.len());
        match Relationship::parse(body) {
            Ok(rel) => out.push(Located { rel, file, span }),
            Err(e) => {
                let at = (span.start + e.offset).min(span.end.saturating_sub(1)).max(span.start);
                let d = Diagnostic::new("relationship-syntax", Span::new(at, span.end), e.reason)
                    .with_help("write `type:id#relation@type:id[#relation]`, optionally followed by `[condition:{...}]` or `[expiration:2024-05-01T00:00:00Z]`");
                errors.push((file, d));
            }
        }
    }
}

/// The relationship a write error names.
fn locate<'a>(e: &WriteError, rels: &'a [Located]) -> Option<&'a Located> {
    let text = e.relationship()?;
    rels.iter().rev().find(|l| l.rel.to_string() == text)
}

fn grouped(files: &[SourceFile], errors: Vec<(usize, Diagnostic)>) -> CliError {
    let mut sources: Vec<(SourceFile, Diagnostics)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let ds: Vec<Diagnostic> = errors.iter().filter(|(j, _)| *j == i).map(|(_, d)| d.clone()).collect();
        if !ds.is_empty() {
            sources.push((f.clone(), Diagnostics(ds)));
        }
    }
    CliError::diagnostics(String::new(), sources)
}

/// Reads the schema file (in `format`, or the detected language) and the data files.
pub fn from_files(
    schema: &Path,
    format: Option<SchemaFormat>,
    data: &[std::path::PathBuf],
    engine: Engine,
) -> CliResult<Purview> {
    let compiled = schema_file(schema, format)?;
    from_schema(compiled, data, engine)
}

/// A compiled schema and the data files, answered by `engine`.
pub fn from_schema(schema: Schema, data: &[std::path::PathBuf], engine: Engine) -> CliResult<Purview> {
    let mut texts = Vec::new();
    for d in data {
        texts.push((d.display().to_string(), read(d)?));
    }
    store(schema, &texts, engine)
}

/// Checks a relationships file: its syntax, and against `schema` when given. Returns the count.
pub fn check_relationships(name: &str, text: &str, schema: Option<&Schema>) -> CliResult<usize> {
    let files = vec![SourceFile::new(name, text)];
    let mut rels = Vec::new();
    let mut errors = Vec::new();
    read_relationships(0, text, &mut rels, &mut errors);
    if !errors.is_empty() {
        return Err(grouped(&files, errors));
    }
    if let Some(s) = schema {
        store(s.clone(), &[(name.to_string(), text.to_string())], Engine::default())?;
    }
    Ok(rels.len())
}
