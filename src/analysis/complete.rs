//! Completion of names while typing: after `:` or `|` (or `[` and `,` in OpenFGA) a subject
//! type, after `type#` a relation of that type, after `rel->` (or `rel.all(`) a member of the
//! types `rel` reaches, after `with` a condition, and elsewhere in a type a member of that type.
//!
//! The text being typed rarely parses, so the context is read from the text before the cursor
//! and the names come from a symbol table of the last version that parsed.

use super::symbols::{Symbol, SymbolKind, Symbols};

/// One candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    pub label: String,
    pub kind: SymbolKind,
    /// The definition in one line (see [`Symbol::signature`]).
    pub detail: String,
    pub doc: Option<String>,
}

impl Completion {
    fn of(s: &Symbol) -> Completion {
        Completion { label: s.name.clone(), kind: s.kind, detail: s.signature.clone(), doc: s.doc.clone() }
    }
}

/// The names that fit at byte `offset` of `text`, from `symbols` (of this text or an earlier
/// version of it). Names already partly typed are not filtered: editors do that.
pub fn completions(text: &str, offset: usize, symbols: &Symbols) -> Vec<Completion> {
    let offset = floor_boundary(text, offset.min(text.len()));
    let before = text.get(..offset).unwrap_or("");
    // The name being typed, then what stands before it.
    let typed = before.len() - before.trim_end_matches(is_name_char).len();
    let head = before.get(..before.len() - typed).unwrap_or("");
    let trimmed = head.trim_end_matches([' ', '\t']);
    let mut out: Vec<Completion> = Vec::new();
    if let Some(rest) = trimmed.strip_suffix('#') {
        // `team#mem|`: the relations of `team`.
        let ty = last_name(rest);
        out.extend(symbols.members_of(ty).filter(|s| s.kind != SymbolKind::Type).map(Completion::of));
    } else if let Some(via) = trimmed.strip_suffix("->").or_else(|| arrow_call(trimmed)) {
        // `parent->vi|` or `parent.all(vi|`: what `parent` reaches.
        let ty = enclosing_type(head);
        let reach = ty.and_then(|t| symbols.member(t, last_name(via))).map(|s| s.subject_types.clone());
        for t in reach.unwrap_or_default() {
            for m in symbols.members_of(&t) {
                if !out.iter().any(|c| c.label == m.name) {
                    out.push(Completion::of(m));
                }
            }
        }
    } else if last_name(trimmed) == "with" || last_name(trimmed) == "and" {
        out.extend(symbols.of_kind(SymbolKind::Condition).map(Completion::of));
    } else if trimmed.ends_with([':', '|', '[', ',']) && !in_expression(head) {
        out.extend(symbols.of_kind(SymbolKind::Type).map(Completion::of));
    } else if in_expression(head) {
        if let Some(ty) = enclosing_type(head) {
            out.extend(symbols.members_of(ty).map(Completion::of));
        }
    }
    out
}

/// Names in every language Purview reads: letters, digits, `_`, `-` and `/` namespaces.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/')
}

/// The name at the end of `text`.
fn last_name(text: &str) -> &str {
    let t = text.trim_end_matches([' ', '\t']);
    let start = t.trim_end_matches(is_name_char).len();
    t.get(start..).unwrap_or("")
}

/// `rel.all(` or `rel.any(` at the end of `text`: what stands before the `.`.
fn arrow_call(text: &str) -> Option<&str> {
    let t = text.strip_suffix('(')?.trim_end();
    t.strip_suffix(".all").or_else(|| t.strip_suffix(".any"))
}

/// Whether the line before the cursor is in a permission or rewrite expression: after `=`
/// (Purview, SpiceDB), or after `define name:` past its `]` or one of OpenFGA's operator words.
fn in_expression(head: &str) -> bool {
    let line = head.rsplit('\n').next().unwrap_or("");
    if line.contains('=') {
        return true;
    }
    let t = line.trim_start();
    t.starts_with("define ")
        && (line.contains(']') || [" or ", " and ", " not ", " from "].iter().any(|w| line.contains(w)))
}

/// The name of the type whose definition encloses the end of `head`: the last line that
/// starts with `type NAME` or `definition NAME`.
fn enclosing_type(head: &str) -> Option<&str> {
    head.lines().rev().find_map(|l| {
        let t = l.trim_start();
        let rest = t.strip_prefix("type ").or_else(|| t.strip_prefix("definition "))?;
        let rest = rest.trim_start();
        let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
        rest.get(..end).filter(|n| !n.is_empty())
    })
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}
