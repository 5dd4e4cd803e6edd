//! SpiceDB's `import`: the files a schema imports, read as `zed` reads them, laid out as one
//! schema, and written back as one self-contained text.
//!
//! Each path is relative to the file that imports it (an inline schema's imports are relative to
//! the file it is written in: `zed validate` roots them at the validation file's directory); a file
//! imported twice, or in a cycle, is read once. Reading is the caller's (`read`), so editors can
//! serve open documents and tests can serve memory.

use super::{parse_spicedb_imported, spicedb_imports, use_and_import_spans};
use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::syntax::ast::Schema;
use crate::syntax::openfga::modules::Modules;
use std::path::{Component, Path, PathBuf};

/// A schema and the files it imports: `(name, text)`, the importing schema first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedFiles {
    pub files: Vec<(String, String)>,
}

/// An import that could not be read: the file it is written in, and where.
#[derive(Clone, Debug)]
pub struct ImportError {
    pub file: SourceFile,
    pub diagnostic: Diagnostic,
}

/// `a/b/../c` as `a/c`, without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Reads the files `text` (named `name`; its imports relative to `dir`) imports, and theirs.
/// `read` gives a file's text or why it cannot. The files' names are their paths as joined.
pub fn read_imports(
    name: &str,
    text: &str,
    dir: &Path,
    mut read: impl FnMut(&Path) -> Result<String, String>,
) -> Result<ImportedFiles, Box<ImportError>> {
    let mut files = vec![(name.to_string(), text.to_string())];
    let mut dirs = vec![dir.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    seen.insert(normalize(&dir.join(Path::new(name).file_name().unwrap_or_default())));
    let mut k = 0;
    while k < files.len() {
        let (from_name, from_text) = files[k].clone();
        for (rel, span) in spicedb_imports(&from_text) {
            let p = dirs[k].join(&rel);
            if !seen.insert(normalize(&p)) {
                continue;
            }
            match read(&p) {
                Ok(t) => {
                    dirs.push(p.parent().unwrap_or(Path::new(".")).to_path_buf());
                    files.push((p.display().to_string(), t));
                }
                Err(e) => {
                    let diagnostic = Diagnostic::new(
                        "import-not-found",
                        span,
                        format!("cannot read `{}`: {e}", p.display()),
                    )
                    .with_help("an import names a file relative to the file that imports it");
                    return Err(Box::new(ImportError {
                        file: SourceFile::new(from_name, from_text),
                        diagnostic,
                    }));
                }
            }
        }
        k += 1;
    }
    Ok(ImportedFiles { files })
}

impl ImportedFiles {
    /// Whether anything was imported.
    pub fn imports_any(&self) -> bool {
        self.files.len() > 1
    }

    /// The files laid out as one schema and parsed; diagnostics point into the layout (split them
    /// with [`ImportedFiles::modules`]).
    pub fn parse(&self) -> Result<Schema, Diagnostics> {
        let layout: String = self.files.iter().map(|(_, t)| format!("{t}\n")).collect();
        let mut starts = Vec::with_capacity(self.files.len());
        let mut at = 0;
        for (_, t) in &self.files {
            starts.push(at);
            at += t.len() + 1;
        }
        parse_spicedb_imported(&layout, &starts)
    }

    /// The layout, for splitting diagnostics by file.
    pub fn modules(&self) -> Modules {
        Modules::new(self.files.clone())
    }

    /// One self-contained schema text: every file's `use` flags once at the top (without
    /// `use import`), then each file without its `use` flags and `import` statements. What a
    /// store keeps, and what `ReadSchema` returns, for a schema that imports files.
    pub fn flatten(&self) -> String {
        let mut flags: Vec<String> = Vec::new();
        let mut bodies = Vec::new();
        for (_, text) in &self.files {
            let (uses, imports) = use_and_import_spans(text);
            let mut body = text.clone().into_bytes();
            for (flag, span) in &uses {
                if flag != "import" && !flags.contains(flag) {
                    flags.push(flag.clone());
                }
                blank(&mut body, span.start, span.end);
            }
            for span in &imports {
                blank(&mut body, span.start, span.end);
            }
            bodies.push(String::from_utf8_lossy(&body).trim().to_string());
        }
        let mut out: String = flags.iter().map(|f| format!("use {f}\n")).collect();
        for b in bodies.iter().filter(|b| !b.is_empty()) {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(b);
            out.push('\n');
        }
        out
    }
}

/// Replaces `start..end` by spaces, keeping line breaks.
fn blank(bytes: &mut [u8], start: usize, end: usize) {
    for b in bytes.iter_mut().take(end).skip(start) {
        if *b != b'\n' {
            *b = b' ';
        }
    }
}
