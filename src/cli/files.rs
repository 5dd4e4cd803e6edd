//! `validate`, `fmt` and `test`: commands on files rather than on questions.

use super::error::{CliError, CliResult, Exit};
use super::load;
use purview::api::Engine;
use purview::diag::SourceFile;
use purview::query::{parse_queries, validate_queries};
use purview::schema::Schema;
use purview::syntax::{detect, SchemaFormat};
use purview::testfile::{run_paths, RunOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Checks every file and reports every problem; `ok` lines go to standard output. Schemas are
/// read as `format`, or in the language detected for each.
pub(super) fn validate(
    files: &[PathBuf],
    schema: Option<&Path>,
    format: Option<SchemaFormat>,
) -> CliResult<Exit> {
    let schema = match schema {
        Some(p) => Some(load::schema_file(p, format)?),
        None => None,
    };
    let mut failed: Vec<CliError> = Vec::new();
    let mut out = std::io::stdout().lock();
    for f in files {
        match validate_one(f, schema.as_ref(), format) {
            Ok(summary) => {
                let _ = writeln!(out, "{}: ok ({summary})", f.display());
            }
            Err(e) => failed.push(e),
        }
    }
    let _ = out.flush();
    if failed.is_empty() {
        return Ok(Exit::Success);
    }
    let n = failed.len();
    let mut all = CliError::diagnostics(String::new(), Vec::new());
    let mut messages = Vec::new();
    for e in failed {
        all.sources.extend(e.sources);
        if !e.message.is_empty() {
            messages.push(e.message);
        }
    }
    messages.push(format!(
        "{n} of {} file{} invalid",
        files.len(),
        if files.len() == 1 { " is" } else { "s are" }
    ));
    all.message = messages.join("\nerror: ");
    Err(all)
}

fn validate_one(path: &Path, schema: Option<&Schema>, format: Option<SchemaFormat>) -> CliResult<String> {
    let text = load::read(path)?;
    let name = path.display().to_string();
    match path.extension().and_then(|e| e.to_str()) {
        Some("q") => {
            let queries = parse_queries(&text).map_err(|d| {
                CliError::diagnostics(String::new(), vec![(SourceFile::new(&name, &*text), d)])
            })?;
            if let Some(s) = schema {
                validate_queries(s, &queries).map_err(|d| {
                    CliError::diagnostics(String::new(), vec![(SourceFile::new(&name, &*text), d)])
                })?;
            }
            Ok(plural(queries.len(), "query", "queries"))
        }
        Some("rels") => {
            let n = load::check_relationships(&name, &text, schema)?;
            Ok(plural(n, "relationship", "relationships"))
        }
        _ if load::is_manifest(path) => {
            let s = load::modules_schema(path)?;
            Ok(format!(
                "OpenFGA modular model: {}, {}",
                plural(s.types.len(), "type", "types"),
                plural(s.conditions.len(), "condition", "conditions")
            ))
        }
        _ => {
            let format = load::schema_format(path, &text, format);
            let s = if load::has_imports(format, &text) {
                // With the files its `import`s name.
                load::spicedb_files_schema(path, text.to_string())?
            } else {
                load::schema_from_text(format, &name, &text)?
            };
            if !s.warnings.is_empty() {
                let file = SourceFile::new(&name, &*text);
                let mut err = std::io::stderr().lock();
                for w in &s.warnings {
                    let _ = writeln!(err, "{}", w.render(&file));
                }
            }
            let language = match format {
                SchemaFormat::Purview => "",
                SchemaFormat::SpiceDb => "SpiceDB schema: ",
                SchemaFormat::OpenFgaDsl | SchemaFormat::OpenFgaJson => "OpenFGA model: ",
            };
            let warnings = match s.warnings.len() {
                0 => String::new(),
                n => format!(", {}", plural(n, "warning", "warnings")),
            };
            Ok(format!(
                "{language}{}, {}{warnings}",
                plural(s.types.len(), "type", "types"),
                plural(s.conditions.len(), "condition", "conditions")
            ))
        }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Prints, rewrites (`--write`) or checks (`--check`) the canonical formatting of a schema (of
/// a SpiceDB schema or an OpenFGA model: its layout).
pub(super) fn fmt(file: &Path, write: bool, check: bool) -> CliResult<Exit> {
    let text = load::read(file)?;
    let name = file.display().to_string();
    let formatted = match detect(Some(file), &text) {
        SchemaFormat::Purview => format_schema(&name, &text)?,
        // SpiceDB and OpenFGA: the layout only (indentation and blank lines).
        format @ (SchemaFormat::SpiceDb | SchemaFormat::OpenFgaDsl) => {
            purview::syntax::parse_as(format, &text)
                .map_err(|d| CliError::diagnostics(String::new(), vec![(SourceFile::new(&name, &*text), d)]))?;
            purview::syntax::layout::relayout(format, &text).ok_or_else(|| {
                CliError::input(format!(
                    "laying out `{name}` would change what it says, so it is left as it is"
                ))
                .with_help("this is a bug in Purview, please report it")
            })?
        }
        SchemaFormat::OpenFgaJson => {
            return Err(CliError::input(format!(
                "`{name}` is an OpenFGA model in JSON; `purview fmt` formats Purview, SpiceDB and OpenFGA DSL schemas"
            ))
            .with_help(format!("print it in Purview's language with `purview import openfga {name}`")))
        }
    };
    // A safety net: the formatter keeps every comment, and a file is never rewritten without one.
    let lost = lost_comments(&text, &formatted);
    if !lost.is_empty() && !check {
        let lines: Vec<String> = lost.iter().map(ToString::to_string).collect();
        let e = CliError::input(format!(
            "formatting `{}` would drop the `//` comments on line{} {}",
            file.display(),
            if lost.len() == 1 { "" } else { "s" },
            lines.join(", ")
        ))
        .with_help(
            "the formatter is meant to keep every comment; this is a bug in Purview, please report it",
        );
        if write {
            return Err(e);
        }
        e.report(super::error::ErrorFormat::Human);
    }
    if check {
        if formatted == text {
            return Ok(Exit::Success);
        }
        let _ = writeln!(std::io::stderr(), "{}: not formatted (run `purview fmt --write`)", file.display());
        return Ok(Exit::Denied);
    }
    if write {
        if formatted != text {
            std::fs::write(file, formatted)
                .map_err(|e| CliError::input(format!("cannot write `{}`: {e}", file.display())))?;
        }
        return Ok(Exit::Success);
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(formatted.as_bytes());
    Ok(Exit::Success)
}

/// The canonical text of a schema.
fn format_schema(name: &str, text: &str) -> CliResult<String> {
    let ast = purview::syntax::parse_schema(text)
        .map_err(|d| CliError::diagnostics(String::new(), vec![(SourceFile::new(name, text), d)]))?;
    Ok(purview::syntax::format_schema(&ast))
}

/// The lines of `source` whose `//` comment does not survive in `formatted`.
pub(super) fn lost_comments(source: &str, formatted: &str) -> Vec<usize> {
    source
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let at = line.find("//")?;
            let comment = line[at..].trim();
            let doc = comment.starts_with("///");
            let kept = formatted.lines().any(|l| l.trim_end().ends_with(comment));
            (!doc && !kept).then_some(i + 1)
        })
        .collect()
}

/// Runs test files; prints each failure, then `N passed, M failed`.
pub(super) fn test(paths: &[PathBuf], engine: Engine) -> CliResult<Exit> {
    let options = RunOptions { engine, ..RunOptions::default() };
    let report = run_paths(paths, &options).map_err(|e| CliError::input(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    for f in &report.failures {
        let _ = writeln!(out, "FAIL {}: {}", Path::new(&f.file).display(), f.assertion);
        for line in f.message.to_string().lines() {
            let _ = writeln!(out, "     {line}");
        }
    }
    let _ = writeln!(out, "{} passed, {} failed", report.passed, report.failed);
    let _ = out.flush();
    Ok(if report.failed > 0 { Exit::Denied } else { Exit::Success })
}
