//! Diagnostics: an error with a place in a source file, a caret under it and a hint.
//!
//! Every stage that reads user text reports through [`Diagnostic`]; [`Diagnostics`] collects all
//! of a pass so a user sees every mistake at once. Rendering is plain text in the style of rustc:
//!
//! ```text
//! error: unknown relation `viewr` on type `document`
//!  --> schema.pv:12:21
//!    |
//! 12 |   permission view = viewr + editor
//!    |                     ^^^^^
//!    = help: did you mean `viewer`?
//! ```

use crate::syntax::ast::Span;
use serde::Serialize;
use std::fmt::Write as _;

/// One problem in a source text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// A short stable identifier of the kind of problem (`unknown-relation`, `syntax`, ...).
    pub code: &'static str,
    /// Lowercase, no trailing period, user input in backticks.
    pub message: String,
    pub span: Span,
    /// Label printed under the caret.
    pub label: Option<String>,
    /// A suggestion of what to do.
    pub help: Option<String>,
    /// Other places that matter (the first definition of a duplicate, ...).
    pub related: Vec<(Span, String)>,
    /// An error stops the pass; a warning is reported and the pass goes on.
    pub severity: Severity,
}

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Error,
    Warning,
}

impl Diagnostic {
    pub fn new(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span,
            label: None,
            help: None,
            related: Vec::new(),
            severity: Severity::Error,
        }
    }

    /// A warning: reported, but not failing the pass.
    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::new(code, span, message) }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    pub fn with_related(mut self, span: Span, note: impl Into<String>) -> Self {
        self.related.push((span, note.into()));
        self
    }

    /// Renders the diagnostic against the source it points into.
    pub fn render(&self, file: &SourceFile) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        self.render_level(file, level)
    }

    /// Renders the diagnostic as a warning (`warning[code]: ...`).
    pub fn render_warning(&self, file: &SourceFile) -> String {
        self.render_level(file, "warning")
    }

    fn render_level(&self, file: &SourceFile, level: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{level}[{}]: {}", self.code, self.message);
        render_snippet(&mut out, file, self.span, self.label.as_deref(), "-->");
        for (span, note) in &self.related {
            render_snippet(&mut out, file, *span, Some(note), "::: note");
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }

    /// The 1-based line and column of the start of the span in `file`.
    pub fn line_col(&self, file: &SourceFile) -> (usize, usize) {
        file.line_col(self.span.start)
    }
}

fn render_snippet(out: &mut String, file: &SourceFile, span: Span, label: Option<&str>, arrow: &str) {
    let (line, col) = file.line_col(span.start);
    let _ = writeln!(out, " {arrow} {}:{line}:{col}", file.name);
    let text = file.line_text(line);
    let width = line.to_string().len();
    let pad = " ".repeat(width);
    let _ = writeln!(out, " {pad} |");
    let _ = writeln!(out, " {line} | {text}");
    // The caret covers the span on its first line (at least one column).
    let line_start = file.line_start(line);
    let start_in_line = span.start.saturating_sub(line_start).min(text.len());
    let end_in_line = span.end.saturating_sub(line_start).min(text.len());
    let prefix: String =
        text.get(..start_in_line).unwrap_or("").chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let carets = text.get(start_in_line..end_in_line).map(|s| s.chars().count()).unwrap_or(0).max(1);
    let _ = write!(out, " {pad} | {prefix}{}", "^".repeat(carets));
    match label {
        Some(l) => {
            let _ = writeln!(out, " {l}");
        }
        None => out.push('\n'),
    }
}

/// A named source text with a line index.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile { name: name.into(), text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let col = self.text.get(start..offset).map(|s| s.chars().count()).unwrap_or(0) + 1;
        (line + 1, col)
    }

    /// Byte offset where 1-based `line` starts.
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts.get(line.saturating_sub(1)).copied().unwrap_or(self.text.len())
    }

    /// The text of 1-based `line` without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_start(line);
        let end = self.line_starts.get(line).map(|e| e.saturating_sub(1)).unwrap_or(self.text.len());
        self.text.get(start..end.max(start)).unwrap_or("").trim_end_matches('\r')
    }
}

/// All the problems one pass found; never empty when returned as an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn render(&self, file: &SourceFile) -> String {
        let mut out = String::new();
        for d in &self.0 {
            out.push_str(&d.render(file));
            out.push('\n');
        }
        let n = self.0.len();
        let _ = writeln!(out, "{n} error{}", if n == 1 { "" } else { "s" });
        out
    }
}

/// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(name, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let max = (name.chars().count().max(c.chars().count()) / 3).max(1);
    (d <= max).then(|| format!("did you mean `{c}`?"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let f = SourceFile::new("a", "ab\ncd\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(4), (2, 2));
        assert_eq!(f.line_text(2), "cd");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("viewr", ["viewer", "editor"]).as_deref(), Some("did you mean `viewer`?"));
        assert_eq!(did_you_mean("zzz", ["viewer", "editor"]), None);
    }
}
