//! Cuts a query file into statements, so that each is parsed (and each error reported) on its own.
//!
//! A statement ends at a newline or `;` that is outside strings, JSON braces and comments. Comments
//! follow the grammar: `//` to the end of the line, or `#` followed by a space, a tab, `;` or the
//! end of the line. A `{` never closed is reported, and cutting resumes on the line after it so the
//! queries below it are still read.

use crate::diag::Diagnostic;
use crate::syntax::ast::Span;

/// A statement's byte range, or an unclosed brace.
pub(super) enum Piece {
    Statement(Span),
    Unclosed(Diagnostic),
}

/// The statements of `text` that hold something besides whitespace and comments, in order.
pub(super) fn split(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut from = 0;
    while from < text.len() {
        from = split_from(text, from, &mut out);
    }
    out
}

/// Cuts from `from` to the end, or to just after the line of an unclosed brace; returns where
/// to go on.
fn split_from(text: &str, from: usize, out: &mut Vec<Piece>) -> usize {
    let bytes = text.as_bytes();
    let mut start = from;
    let mut content = false;
    let mut in_string = false;
    let mut escape = false;
    // Positions of the open braces and brackets.
    let mut open: Vec<usize> = Vec::new();
    let mut i = from;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                _ if escape => escape = false,
                b'\\' => escape = true,
                b'"' => in_string = false,
                // JSON strings cannot hold a raw line break: the string is broken, not the line.
                b'\n' => in_string = false,
                _ => {}
            }
            if b != b'\n' {
                i += 1;
                continue;
            }
        }
        let at_top = open.is_empty();
        match b {
            b'"' => {
                in_string = true;
                content = true;
            }
            b'{' | b'[' => {
                open.push(i);
                content = true;
            }
            b'}' | b']' => {
                open.pop();
                content = true;
            }
            b'/' if at_top && bytes.get(i + 1) == Some(&b'/') => {
                i = line_end(bytes, i);
                continue;
            }
            b'#' if at_top
                && matches!(bytes.get(i + 1), None | Some(b' ' | b'\t' | b'\r' | b'\n' | b';')) =>
            {
                i = line_end(bytes, i);
                continue;
            }
            b'\n' | b';' if at_top => {
                if content {
                    out.push(Piece::Statement(Span::new(start, i)));
                }
                start = i + 1;
                content = false;
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => content = true,
        }
        i += 1;
    }
    if let Some(&brace) = open.first() {
        let what = if bytes[brace] == b'{' { "`{`" } else { "`[`" };
        out.push(Piece::Unclosed(
            Diagnostic::new("query-syntax", Span::new(brace, brace + 1), format!("unclosed {what}"))
                .with_label("opened here and never closed")
                .with_help("close the JSON object of `with` on the same query"),
        ));
        return line_end(bytes, brace).saturating_add(1).max(from + 1);
    }
    if content {
        out.push(Piece::Statement(Span::new(start, bytes.len())));
    }
    bytes.len()
}

fn line_end(bytes: &[u8], from: usize) -> usize {
    bytes[from..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| from + p)
}
