//! Test files: schema, relationships and the answers expected of them, run as assertions.
//!
//! Four formats are understood (see each module for its layout):
//!
//! | format | module | evaluation semantics |
//! |---|---|---|
//! | Purview native test files | [`native`] | missing condition parameters make an answer *conditional* |
//! | SpiceDB validation files | [`spicedb`] | as SpiceDB: conditional answers, evaluation time = now |
//! | OpenFGA consolidated tests (`tests:` with `stages:`) | [`openfga`] | as OpenFGA: missing parameters are an error (code 2000), depth limit 25 |
//! | OpenFGA store files (`*.fga.yaml`) | [`openfga_store`] | as OpenFGA |
//!
//! # Format detection
//!
//! [`RunOptions::format`] overrides detection. Otherwise the top level of the YAML document
//! decides, in this order:
//!
//! 1. a `purview:` key (e.g. `purview: 1`) marks a Purview native file;
//! 2. `tests:` whose entries have `stages:` is an OpenFGA consolidated test file;
//! 3. `model:` or `model_file:`, or `tests:` whose entries have `check:`, `list_objects:` or
//!    `list_users:`, is an OpenFGA store file;
//! 4. `schema:` (or `schemaFile:`) is looked at: the first top-level keyword of the schema text
//!    decides — `definition` or `caveat` means SpiceDB, `type` or `condition` means Purview;
//!    a `schemaFile:` ending in `.zed` is SpiceDB and one ending in `.pv` is Purview;
//! 5. failing that, a `validation:` key means SpiceDB and `who:` or `what:` means Purview.
//!
//! A file that matches none of these is reported as one failed assertion.
//!
//! # Counting
//!
//! Every assertion is one pass or one failure. A file that cannot be run at all (its schema does
//! not compile, its relationships are invalid, its layout is wrong) counts as one failure that
//! carries the reason, rendered diagnostics included. Only unreadable files and text that is not
//! YAML at all are a [`TestFileError`]. SpiceDB files also get one assertion per asserted
//! `type#permission` that the lookups agree with check (see [`spicedb`]); OpenFGA single-stage
//! tests are run twice, the second time with their tuples passed as contextual tuples (the
//! assertions of that run are named `<test>_ctxTuples`).

mod common;
mod consistency;
mod embed;
mod expected;
mod fga;
pub mod native;
pub mod openfga;
pub mod openfga_store;
pub mod spicedb;
#[cfg(test)]
mod tests;

use crate::schema::Schema;
use crate::syntax;
use crate::syntax::SchemaFormat;
use serde::Serialize;
use serde_yaml_ng::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How to run test files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Run every file as this format instead of detecting it.
    pub format: Option<Format>,
    /// The evaluator that answers (the index by default; the reference evaluator to compare).
    pub engine: crate::api::Engine,
}

/// The layout of a test file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// Purview's own test files.
    Purview,
    /// SpiceDB validation files (`zed validate`).
    SpiceDb,
    /// OpenFGA's consolidated test files (`tests:` with `stages:`).
    OpenFgaTests,
    /// OpenFGA CLI store files (`*.fga.yaml`).
    OpenFgaStore,
}

impl Format {
    pub const NAMES: [&'static str; 4] = ["purview", "spicedb", "openfga-tests", "openfga-store"];
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Purview => "purview",
            Format::SpiceDb => "spicedb",
            Format::OpenFgaTests => "openfga-tests",
            Format::OpenFgaStore => "openfga-store",
        })
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "purview" | "native" => Ok(Format::Purview),
            "spicedb" | "zed" => Ok(Format::SpiceDb),
            "openfga-tests" | "openfga" => Ok(Format::OpenFgaTests),
            "openfga-store" | "fga" => Ok(Format::OpenFgaStore),
            _ => Err(format!("unknown test file format `{s}`; expected one of {}", Format::NAMES.join(", "))),
        }
    }
}

/// The outcome of running test files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    pub failures: Vec<Failure>,
}

impl Report {
    /// Whether nothing failed.
    pub fn is_success(&self) -> bool {
        self.failed == 0
    }

    /// Adds another report's counts and failures to this one.
    pub fn merge(&mut self, other: Report) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.failures.extend(other.failures);
    }
}

/// One assertion that did not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The test file, as given (or found under a given directory).
    pub file: String,
    /// Which assertion: its text, prefixed with where it stands in the file.
    pub assertion: String,
    /// What was expected and what was found, or why it could not be evaluated.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.assertion, self.message)
    }
}

/// A test file that could not be read as YAML at all.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum TestFileError {
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not valid YAML: {message}")]
    #[diagnostic(help("test files are YAML documents; check the indentation near the reported line"))]
    Yaml { path: String, message: String },
}

/// Runs every test file given; a directory runs every `*.yaml` and `*.yml` file under it,
/// recursively, in sorted order.
pub fn run_paths(paths: &[PathBuf], opts: &RunOptions) -> Result<Report, TestFileError> {
    let mut report = Report::default();
    for p in paths {
        let mut files = Vec::new();
        collect(p, &mut files)?;
        for f in files {
            report.merge(run_file(&f, opts)?);
        }
    }
    Ok(report)
}

/// Runs one test file.
pub fn run_file(path: &Path, opts: &RunOptions) -> Result<Report, TestFileError> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|source| TestFileError::Io { path: name.clone(), source })?;
    run_text(path, &text, opts)
}

/// Runs a test file's text; `path` names it and anchors relative file references.
pub(crate) fn run_text(path: &Path, text: &str, opts: &RunOptions) -> Result<Report, TestFileError> {
    let name = path.display().to_string();
    let doc: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| TestFileError::Yaml { path: name.clone(), message: e.to_string() })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let format = match opts.format {
        Some(f) => f,
        None => match detect(&doc, dir) {
            Ok(f) => f,
            Err(message) => {
                let mut t = common::Tally::new(&name);
                t.fail("file", message);
                return Ok(t.finish());
            }
        },
    };
    let file = FileCtx { name, dir: dir.to_path_buf(), text: text.to_string(), engine: opts.engine };
    Ok(match format {
        Format::Purview => native::run(&file, doc),
        Format::SpiceDb => spicedb::run(&file, doc),
        Format::OpenFgaTests => openfga::run(&file, doc),
        Format::OpenFgaStore => openfga_store::run(&file, doc),
    })
}

/// The test file being run: its display name and the directory relative paths start from.
pub(crate) struct FileCtx {
    pub name: String,
    pub dir: PathBuf,
    /// The test file's text.
    pub text: String,
    /// The evaluator to run the file on.
    pub engine: crate::api::Engine,
}

impl FileCtx {
    /// Reads a file named relative to the test file.
    pub fn read(&self, rel: &str) -> Result<(String, String), String> {
        let p = self.dir.join(rel);
        let shown = p.display().to_string();
        std::fs::read_to_string(&p)
            .map(|t| (shown.clone(), t))
            .map_err(|e| format!("cannot read `{shown}`: {e}"))
    }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), TestFileError> {
    let io = |source| TestFileError::Io { path: path.display().to_string(), source };
    if !path.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for e in entries {
        let is_dir = std::fs::symlink_metadata(&e).map(|m| m.is_dir()).unwrap_or(false);
        if is_dir {
            collect(&e, out)?;
        } else if e.is_file() && matches!(e.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
            out.push(e);
        }
    }
    Ok(())
}

/// Decides the format of a parsed test file (see the module documentation).
pub(crate) fn detect(doc: &Value, dir: &Path) -> Result<Format, String> {
    let Value::Mapping(m) = doc else {
        return Err("not a test file: the document is not a mapping of keys to values".into());
    };
    let has = |k: &str| m.contains_key(k);
    if has("purview") {
        return Ok(Format::Purview);
    }
    let tests: &[Value] = match m.get("tests") {
        Some(Value::Sequence(s)) => s,
        _ => &[],
    };
    let test_has = |k: &str| tests.iter().any(|t| t.get(k).is_some());
    if test_has("stages") {
        return Ok(Format::OpenFgaTests);
    }
    if has("model")
        || has("model_file")
        || test_has("check")
        || test_has("list_objects")
        || test_has("list_users")
    {
        return Ok(Format::OpenFgaStore);
    }
    if let Some(Value::String(s)) = m.get("schema") {
        if let Some(f) = sniff_schema(s) {
            return Ok(f);
        }
    }
    if let Some(Value::String(f)) = m.get("schemaFile") {
        if f.ends_with(".zed") {
            return Ok(Format::SpiceDb);
        }
        if f.ends_with(".pv") {
            return Ok(Format::Purview);
        }
        if let Some(f) = std::fs::read_to_string(dir.join(f)).ok().and_then(|t| sniff_schema(&t)) {
            return Ok(f);
        }
    }
    if has("validation") {
        return Ok(Format::SpiceDb);
    }
    if has("who") || has("what") {
        return Ok(Format::Purview);
    }
    Err("cannot tell the format of this test file: expected `purview: 1` (Purview), `schema:` with a \
         SpiceDB or Purview schema, `tests:` with `stages:` (OpenFGA tests) or `model:` (OpenFGA store)"
        .into())
}

/// The language of a schema text, by its first top-level keyword.
fn sniff_schema(text: &str) -> Option<Format> {
    let mut in_block_comment = false;
    for line in text.lines() {
        let t = line.trim();
        if in_block_comment {
            in_block_comment = !t.contains("*/");
            continue;
        }
        if t.starts_with("/*") {
            in_block_comment = !t.contains("*/");
            continue;
        }
        let word = t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
        match word {
            "definition" | "caveat" => return Some(Format::SpiceDb),
            "type" | "condition" => return Some(Format::Purview),
            _ => {}
        }
    }
    None
}

/// Where a schema text comes from, for diagnostics.
pub(crate) enum Origin<'a> {
    /// A file of its own, by the name to show.
    File(&'a str),
    /// Written inside the test file, as the value `label` names; its literal block is looked for
    /// from line `from_line` on.
    Inline { file: &'a FileCtx, label: &'a str, from_line: usize },
}

/// Parses and compiles a SpiceDB schema, following its `import`s as `zed validate` does: relative
/// to `dir` (the directory of the file the schema is written in: the test file for an inline
/// schema, the schema file for `schemaFile`). Without imports, as [`compile`].
pub(crate) fn compile_spicedb(text: &str, origin: Origin<'_>, dir: &Path) -> Result<Schema, String> {
    if !text.contains("import") || syntax::spicedb::spicedb_imports(text).is_empty() {
        return compile(SchemaFormat::SpiceDb, text, origin);
    }
    let root = origin.name();
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| e.to_string());
    let render = |parts: Vec<(crate::diag::SourceFile, crate::diag::Diagnostics)>| {
        let mut out = String::from("the schema does not compile:\n");
        for (file, d) in parts {
            if file.name == root {
                // The importing schema, rendered where it is written (inline in the test file).
                out += &render_in(&origin, text, d);
            } else {
                out += &d.render(&file);
            }
        }
        out
    };
    let files = syntax::spicedb::imports::read_imports(&root, text, dir, read)
        .map_err(|e| render(vec![(e.file, crate::diag::Diagnostics(vec![e.diagnostic]))]))?;
    let modules = files.modules();
    let ast = files.parse().map_err(|d| render(modules.split(d)))?;
    crate::schema::compile(&ast).map_err(|d| render(modules.split(d)))
}

/// Diagnostics of a schema text, rendered where the text is written.
fn render_in(origin: &Origin<'_>, text: &str, d: crate::diag::Diagnostics) -> String {
    let block = match origin {
        Origin::File(_) => None,
        Origin::Inline { file, from_line, .. } => {
            embed::locate(&file.text, text, *from_line).map(|b| (file.name.as_str(), file.text.as_str(), b))
        }
    };
    embed::render(&d, text, &origin.name(), block)
}

impl Origin<'_> {
    /// The name diagnostics give the schema: its file, or `test.yaml (schema)`.
    fn name(&self) -> String {
        match self {
            Origin::File(name) => name.to_string(),
            Origin::Inline { file, label, .. } => format!("{} ({label})", file.name),
        }
    }
}

/// Parses and compiles a schema; the error is the rendered diagnostics.
pub(crate) fn compile(lang: SchemaFormat, text: &str, origin: Origin<'_>) -> Result<Schema, String> {
    let ast = syntax::parse_as(lang, text);
    let render = |d: crate::diag::Diagnostics| {
        if d.0.is_empty() {
            format!("the schema in `{}` does not compile", origin.name())
        } else {
            format!("the schema does not compile:\n{}", render_in(&origin, text, d))
        }
    };
    let ast = ast.map_err(render)?;
    crate::schema::compile(&ast).map_err(render)
}
