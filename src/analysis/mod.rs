//! Language analysis of one schema text, for editors: every diagnostic at once (the same as
//! `purview validate`), and a symbol table to answer hover, go to definition, find references,
//! completion and rename. It needs only `syntax` and `schema`; the Language Server Protocol
//! itself (`purview lsp`) is in the CLI and speaks in the terms of this module.
//!
//! Positions are byte offsets into the text; [`lines::LineIndex`] converts them to an editor's
//! lines and UTF-16 columns.

mod complete;
pub mod lines;
mod symbols;

pub use complete::{completions, Completion};
pub use symbols::{Symbol, SymbolKind, Symbols};

use crate::diag::{Diagnostic, Diagnostics};
use crate::schema::{self, Schema};
use crate::syntax::ast::{self, Span};
use crate::syntax::{format_schema, layout, openfga, openfga_check, parse_schema, spicedb, SchemaFormat};

/// One schema text, analysed.
#[derive(Clone, Debug)]
pub struct Document {
    pub format: SchemaFormat,
    pub text: String,
    /// Every problem, in source order: syntax errors, or else (as `purview validate` reports
    /// them) OpenFGA's own checks, or else the compiler's.
    pub diagnostics: Vec<Diagnostic>,
    /// The tree, when the text parses (even if it does not compile).
    pub ast: Option<ast::Schema>,
    /// The compiled schema, when there is no problem.
    pub schema: Option<Schema>,
    pub symbols: Symbols,
}

/// A hover: the name it is about and a Markdown text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hover {
    pub span: Span,
    pub markdown: String,
}

/// Why a rename is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenameError {
    #[error("there is no type, relation, permission or condition here to rename")]
    NothingHere,
    #[error("`{0}` is not a name in this schema language")]
    BadName(String),
    #[error("renaming to `{name}` would make the schema invalid: {first}")]
    Breaks { name: String, first: String },
}

impl Document {
    /// Parses and compiles `text`, written in `format`.
    pub fn analyze(format: SchemaFormat, text: impl Into<String>) -> Document {
        let text = text.into();
        let parsed = match format {
            SchemaFormat::Purview => parse_schema(&text),
            SchemaFormat::SpiceDb => spicedb::parse_spicedb(&text),
            SchemaFormat::OpenFgaDsl => openfga::parse_openfga_dsl(&text),
            SchemaFormat::OpenFgaJson => openfga::parse_openfga_json(&text),
        };
        let (ast, diagnostics, schema) = match parsed {
            Err(Diagnostics(d)) => (None, d, None),
            Ok(ast) => {
                let foreign = matches!(format, SchemaFormat::OpenFgaDsl | SchemaFormat::OpenFgaJson);
                match foreign.then(|| openfga_check::validate_openfga(&ast)) {
                    Some(Err(Diagnostics(d))) => (Some(ast), d, None),
                    _ => match schema::compile(&ast) {
                        Ok(s) => (Some(ast), Vec::new(), Some(s)),
                        Err(Diagnostics(d)) => (Some(ast), d, None),
                    },
                }
            }
        };
        let symbols = ast.as_ref().map(|a| Symbols::build(a, &text)).unwrap_or_default();
        let mut diagnostics = diagnostics;
        diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
        Document { format, text, diagnostics, ast, schema, symbols }
    }

    /// Like [`Document::analyze`], but a SpiceDB schema's `import`s are followed: `read` gives a
    /// file's text (relative paths start at `dir`, the document's directory), the files are
    /// compiled together, and the document keeps its own diagnostics; problems inside imported
    /// files are summed up on the document's first `import`, naming the file and place. Names
    /// defined in imported files are known to the compiler, not to hover, definitions and rename.
    pub fn analyze_with_imports(
        format: SchemaFormat,
        text: impl Into<String>,
        dir: &std::path::Path,
        read: impl FnMut(&std::path::Path) -> Result<String, String>,
    ) -> Document {
        let text = text.into();
        let imports = if format == SchemaFormat::SpiceDb && text.contains("import") {
            spicedb::spicedb_imports(&text)
        } else {
            Vec::new()
        };
        let Some((_, first_import)) = imports.first().cloned() else {
            return Document::analyze(format, text);
        };
        const ROOT: &str = "\0document";
        let mut diagnostics = Vec::new();
        let mut elsewhere: Vec<String> = Vec::new();
        let mut split = |parts: Vec<(crate::diag::SourceFile, Diagnostics)>| {
            for (file, ds) in parts {
                if file.name == ROOT {
                    diagnostics.extend(ds.0);
                } else {
                    for d in ds.0 {
                        let (line, col) = file.line_col(d.span.start);
                        elsewhere.push(format!("{}:{line}:{col}: {}", file.name, d.message));
                    }
                }
            }
        };
        let (ast, schema) = match spicedb::imports::read_imports(ROOT, &text, dir, read) {
            Err(e) => {
                split(vec![(e.file, Diagnostics(vec![e.diagnostic]))]);
                (None, None)
            }
            Ok(files) => {
                let modules = files.modules();
                match files.parse() {
                    Err(d) => {
                        split(modules.split(d));
                        (None, None)
                    }
                    Ok(ast) => match schema::compile(&ast) {
                        Ok(s) => (Some(ast), Some(s)),
                        Err(d) => {
                            split(modules.split(d));
                            (Some(ast), None)
                        }
                    },
                }
            }
        };
        if let Some(first) = elsewhere.first() {
            let more = match elsewhere.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            diagnostics.push(Diagnostic::new(
                "imported-file-error",
                first_import,
                format!("an imported file has problems: {first}{more}"),
            ));
        }
        // The document's own items: imported ones have spans past its text.
        let own = ast.map(|mut a| {
            a.items.retain(|i| {
                let name = match i {
                    ast::Item::Type(t) => &t.name,
                    ast::Item::Condition(c) => &c.name,
                };
                text.get(name.span.start..name.span.end) == Some(name.name.as_str())
            });
            a
        });
        let symbols = own.as_ref().map(|a| Symbols::build(a, &text)).unwrap_or_default();
        diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
        Document { format, text, diagnostics, ast: own, schema, symbols }
    }

    /// The definitions the name at `offset` refers to (a name in a definition refers to itself).
    pub fn definitions(&self, offset: usize) -> Vec<&Symbol> {
        let (_, syms) = self.symbols.at(offset);
        syms.iter().filter_map(|&s| self.symbols.symbols.get(s)).collect()
    }

    /// Every place the symbol at `offset` is written, its definition first when asked for.
    pub fn references(&self, offset: usize, include_definition: bool) -> Vec<Span> {
        let (_, syms) = self.symbols.at(offset);
        let defs: Vec<Span> =
            syms.iter().filter_map(|&s| self.symbols.symbols.get(s)).map(|s| s.name_span).collect();
        let mut out: Vec<Span> = if include_definition { defs.clone() } else { Vec::new() };
        for span in self.symbols.spans_of(&syms) {
            if !defs.contains(&span) {
                out.push(span);
            }
        }
        out
    }

    /// What the name at `offset` is: its definition in Purview's language and its doc comment.
    pub fn hover(&self, offset: usize) -> Option<Hover> {
        let (span, syms) = self.symbols.at(offset);
        let span = span?;
        let mut parts = Vec::new();
        for s in syms.iter().filter_map(|&s| self.symbols.symbols.get(s)) {
            let mut md = String::new();
            if let Some(owner) = &s.owner {
                md.push_str(&format!("on type `{owner}`\n\n"));
            }
            md.push_str(&format!("```purview\n{}\n```", s.signature));
            if let Some(doc) = &s.doc {
                md.push_str("\n\n");
                md.push_str(doc);
            }
            if s.kind == SymbolKind::Type {
                let members: Vec<String> = self
                    .symbols
                    .members_of(&s.name)
                    .map(|m| format!("- {} `{}`", m.kind.word(), m.name))
                    .collect();
                if !members.is_empty() {
                    md.push_str("\n\n");
                    md.push_str(&members.join("\n"));
                }
            }
            parts.push(md);
        }
        (!parts.is_empty()).then(|| Hover { span, markdown: parts.join("\n\n---\n\n") })
    }

    /// The span of the name at `offset` if it can be renamed, with its current text.
    pub fn prepare_rename(&self, offset: usize) -> Option<(Span, String)> {
        let (span, syms) = self.symbols.at(offset);
        let span = span?;
        let name = self.symbols.symbols.get(*syms.first()?)?.name.clone();
        Some((span, name))
    }

    /// The edits that rename the symbol at `offset` (and the symbols an arrow links it to)
    /// everywhere in the text. Refused when the new name is not a name of the language or when
    /// the renamed text would have more problems than this one (a clash with another name).
    pub fn rename(&self, offset: usize, new_name: &str) -> Result<Vec<(Span, String)>, RenameError> {
        let (_, syms) = self.symbols.at(offset);
        if syms.is_empty() {
            return Err(RenameError::NothingHere);
        }
        let is_type =
            syms.iter().any(|&s| self.symbols.symbols.get(s).is_some_and(|s| s.kind == SymbolKind::Type));
        if !is_name(self.format, new_name, is_type) {
            return Err(RenameError::BadName(new_name.to_string()));
        }
        let linked = self.symbols.linked(&syms);
        let edits: Vec<(Span, String)> =
            self.symbols.spans_of(&linked).into_iter().map(|s| (s, new_name.to_string())).collect();
        let renamed = Document::analyze(self.format, apply_edits(&self.text, &edits));
        if renamed.diagnostics.len() > self.diagnostics.len() || renamed.ast.is_none() {
            let first = renamed.diagnostics.first().map_or_else(String::new, |d| d.message.clone());
            return Err(RenameError::Breaks { name: new_name.to_string(), first });
        }
        Ok(edits)
    }

    /// The text formatted: a Purview schema canonically (`purview fmt`), a SpiceDB schema or an
    /// OpenFGA model laid out ([`layout::relayout`]: indentation and blank lines only).
    pub fn formatted(&self) -> Result<String, FormatError> {
        let Some(ast) = &self.ast else {
            return Err(FormatError::Invalid);
        };
        match self.format {
            SchemaFormat::Purview => Ok(format_schema(ast)),
            SchemaFormat::SpiceDb | SchemaFormat::OpenFgaDsl => {
                layout::relayout(self.format, &self.text).ok_or(FormatError::Layout)
            }
            SchemaFormat::OpenFgaJson => Err(FormatError::Unsupported(self.format)),
        }
    }
}

/// Why a text is not formatted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the schema has syntax errors; fix them to format it")]
    Invalid,
    #[error("Purview does not format {0} schemas")]
    Unsupported(SchemaFormat),
    #[error("laying out this file would change what it says, so it is left as it is")]
    Layout,
}

/// `text` with each span replaced; the spans must not overlap.
pub fn apply_edits(text: &str, edits: &[(Span, String)]) -> String {
    let mut sorted: Vec<&(Span, String)> = edits.iter().collect();
    sorted.sort_by_key(|(s, _)| s.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (span, new) in sorted {
        if span.start < at {
            continue;
        }
        out.push_str(text.get(at..span.start).unwrap_or(""));
        out.push_str(new);
        at = span.end;
    }
    out.push_str(text.get(at..).unwrap_or(""));
    out
}

/// Whether `name` can be written as a name in `format` (types may carry `/` namespaces).
fn is_name(format: SchemaFormat, name: &str, is_type: bool) -> bool {
    let parts: Vec<&str> = if is_type { name.split('/').collect() } else { vec![name] };
    let reserved: &[&str] = match format {
        SchemaFormat::Purview => &[
            "type",
            "relation",
            "permission",
            "condition",
            "constraint",
            "this",
            "nil",
            "with",
            "and",
            "expiration",
        ],
        SchemaFormat::SpiceDb => &[
            "definition",
            "relation",
            "permission",
            "caveat",
            "nil",
            "with",
            "and",
            "expiration",
            "this",
            "self",
        ],
        SchemaFormat::OpenFgaDsl | SchemaFormat::OpenFgaJson => &[
            "type",
            "relations",
            "define",
            "or",
            "and",
            "but",
            "not",
            "from",
            "with",
            "model",
            "schema",
            "condition",
            "self",
            "this",
        ],
    };
    !name.is_empty()
        && !reserved.contains(&name)
        && parts.iter().all(|p| {
            let b = p.as_bytes();
            b.first().is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                && b.iter().enumerate().all(|(i, c)| match c {
                    b'-' => {
                        format == SchemaFormat::Purview && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
                    }
                    c => c.is_ascii_alphanumeric() || *c == b'_',
                })
        })
}

#[cfg(test)]
mod tests;
