//! Exit codes, and errors reported as text or JSON.

use purview::diag::{Diagnostic, Diagnostics, SourceFile};
use serde::Serialize;
use std::io::Write as _;

/// The exit status of `purview`. Scripts can tell "denied" from "broken".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exit {
    /// 0: allowed (`check`, `explain`), or the command succeeded.
    Success = 0,
    /// 1: denied (`check`, `explain`), or a test assertion failed, or a file is not formatted.
    Denied = 1,
    /// 2: conditional (`check`, `explain`): allowed only with context that was not given.
    Conditional = 2,
    /// 3: usage error: unknown flag, missing argument, wrong number of queries.
    Usage = 3,
    /// 4: input error: a schema, relationships, query, test file or flag value is invalid, or a
    /// file cannot be read.
    Input = 4,
    /// 5: evaluation error: a limit was reached, a condition failed, context was required.
    Evaluation = 5,
    /// 6: store failure: a store is damaged, or could not be read or written (I/O); a write
    /// that fails so may or may not have been applied (the message says which).
    Store = 6,
}

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  allowed (check, explain), or success
  1  denied (check, explain), or a test failed, or `fmt --check` found unformatted files, or
     `store verify` found problems, or `diff` (`store schema --dry-run`) found access changes, or an
     `lsp` client left without `shutdown`
  2  conditional (check, explain): allowed only with context that was not given
  3  usage error
  4  input error: invalid schema, relationships, query or flag value, an unreadable file, a
     schema change the stored relationships block, or a directory that is not a store (or a
     store of a newer format, or one another process has open); nothing was written
  5  evaluation error: a limit was reached, or a condition could not be evaluated
  6  store failure: the store is damaged or could not be read or written; a write that failed
     so may or may not have been applied (the message says which)";

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

/// How errors are printed on standard error.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ErrorFormat {
    /// Text with file:line:col, the source line, a caret and a hint.
    #[default]
    Human,
    /// One JSON object: `{"error": {"kind", "exit_code", "message", "diagnostics": [...]}}`.
    Json,
}

/// A command that failed: its kind sets the exit code.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    /// A short stable identifier, when there is one (`depth-exceeded`, ...).
    pub code: Option<&'static str>,
    pub message: String,
    /// Diagnostics, each group with the source it points into.
    pub sources: Vec<(SourceFile, Diagnostics)>,
    pub help: Option<String>,
}

pub type CliResult<T> = Result<T, CliError>;

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError { exit, code: None, message: message.into(), sources: Vec::new(), help: None }
    }
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::new(Exit::Usage, message)
    }
    pub fn input(message: impl Into<String>) -> Self {
        CliError::new(Exit::Input, message)
    }
    /// An I/O or other failure with its context chain (`cannot read x: no such file`).
    pub fn from_anyhow(exit: Exit, e: &anyhow::Error) -> Self {
        CliError::new(exit, format!("{e:#}"))
    }
    /// Problems found in source texts.
    pub fn diagnostics(message: impl Into<String>, sources: Vec<(SourceFile, Diagnostics)>) -> Self {
        CliError { exit: Exit::Input, code: None, message: message.into(), sources, help: None }
    }
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Prints the error on standard error in `format`.
    pub fn report(&self, format: ErrorFormat) {
        let text = match format {
            ErrorFormat::Human => self.render_human(),
            ErrorFormat::Json => self.render_json(),
        };
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
    }

    fn render_human(&self) -> String {
        let mut out = String::new();
        for (file, diags) in &self.sources {
            out.push_str(&diags.render(file));
        }
        if self.sources.is_empty() || !self.message.is_empty() {
            match self.code {
                Some(c) => out.push_str(&format!("error[{c}]: {}\n", self.message)),
                None => out.push_str(&format!("error: {}\n", self.message)),
            }
        }
        if let Some(h) = &self.help {
            out.push_str(&format!("  = help: {h}\n"));
        }
        out
    }

    fn render_json(&self) -> String {
        let diagnostics: Vec<JsonDiagnostic<'_>> = self
            .sources
            .iter()
            .flat_map(|(file, ds)| ds.0.iter().map(move |d| JsonDiagnostic::new(file, d)))
            .collect();
        let body = JsonError {
            kind: self.exit,
            exit_code: self.exit as u8,
            code: self.code,
            message: &self.message,
            help: self.help.as_deref(),
            diagnostics,
        };
        let v = serde_json::json!({ "error": body });
        format!("{v}\n")
    }
}

#[derive(Serialize)]
struct JsonError<'a> {
    kind: Exit,
    exit_code: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    #[serde(flatten)]
    diagnostic: &'a Diagnostic,
}

impl<'a> JsonDiagnostic<'a> {
    fn new(file: &'a SourceFile, d: &'a Diagnostic) -> Self {
        let (line, column) = d.line_col(file);
        JsonDiagnostic { file: &file.name, line, column, diagnostic: d }
    }
}

/// Finds `--error-format` in raw arguments, for errors found before the arguments are parsed.
pub fn error_format_in(args: &[std::ffi::OsString]) -> ErrorFormat {
    let mut it = args.iter().filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        let value = match a.strip_prefix("--error-format") {
            Some("") => it.next(),
            Some(v) => v.strip_prefix('='),
            None => None,
        };
        if value == Some("json") {
            return ErrorFormat::Json;
        }
    }
    ErrorFormat::Human
}
