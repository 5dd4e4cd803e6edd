//! Helpers shared by the SpiceDB and OpenFGA front ends: pest errors as [`Diagnostic`]s, the
//! nesting limit, and small text utilities.

use crate::diag::Diagnostic;
use crate::syntax::ast::Span;
use crate::syntax::parser::stored_comment;
use pest::error::{Error, ErrorVariant, InputLocation};
use pest::RuleType;

/// How deeply parentheses may nest in an imported expression before the import is refused.
pub(crate) const MAX_NESTING: usize = 64;

/// A pest failure as a `syntax` diagnostic: what was expected at the furthest point the parser
/// reached, and what it found there.
///
/// `describe` names a rule for a user (`` `{` ``, `a relation name`); rules it maps to `None` are
/// left out of the list.
pub(crate) fn syntax_error<R: RuleType>(
    err: &Error<R>,
    text: &str,
    describe: impl Fn(&R) -> Option<&'static str>,
) -> Diagnostic {
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let (span, found) = token_at(text, pos);
    match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut expected: Vec<&'static str> = Vec::new();
            for r in positives {
                if let Some(d) = describe(r) {
                    if !expected.contains(&d) {
                        expected.push(d);
                    }
                }
            }
            let message = if expected.is_empty() {
                format!("unexpected {found}")
            } else {
                format!("expected {}, found {found}", one_of(&expected))
            };
            Diagnostic::new("syntax", span, message).with_label("unexpected here")
        }
        ErrorVariant::CustomError { message } if message.contains("limit reached") => {
            Diagnostic::new("nesting-too-deep", span, "the input nests too deeply to parse")
                .with_help(format!("keep parentheses and braces fewer than {MAX_NESTING} levels deep"))
        }
        ErrorVariant::CustomError { message } => Diagnostic::new("syntax", span, message.to_lowercase()),
    }
}

/// `a`, `a or b`, `one of a, b or c`.
pub(crate) fn one_of(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [a] => (*a).to_string(),
        [a, b] => format!("{a} or {b}"),
        [init @ .., last] => format!("one of {} or {last}", init.join(", ")),
    }
}

/// The token at byte `pos` for an error message, and its span: a word, one character, or the end
/// of a line or of the input.
pub(crate) fn token_at(text: &str, pos: usize) -> (Span, String) {
    let pos = floor_char_boundary(text, pos.min(text.len()));
    let rest = text.get(pos..).unwrap_or("");
    let Some(c) = rest.chars().next() else {
        return (Span::new(pos, pos), "end of input".to_string());
    };
    if c == '\n' || c == '\r' {
        return (Span::new(pos, pos + c.len_utf8()), "end of line".to_string());
    }
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '-');
    let len = if is_word(c) {
        rest.char_indices().find(|&(_, c)| !is_word(c)).map_or(rest.len(), |(i, _)| i)
    } else {
        c.len_utf8()
    };
    let token = rest.get(..len).unwrap_or("");
    (Span::new(pos, pos + len), format!("`{}`", token.escape_debug()))
}

fn floor_char_boundary(text: &str, mut pos: usize) -> usize {
    while pos > 0 && !text.is_char_boundary(pos) {
        pos -= 1;
    }
    pos
}

/// The text of the doc comments (`/** ... */` and `///` lines) in `text[from..to]`, a stretch that
/// holds only whitespace, separators and comments, without their markers.
pub(crate) fn doc_comments(text: &str, from: usize, to: usize) -> Option<String> {
    let docs: Vec<String> = comments(text, from, to)
        .into_iter()
        .filter_map(|(_, c)| match c.strip_prefix("/**").filter(|_| c != "/**/") {
            Some(body) => Some(block_doc(body.strip_suffix("*/").unwrap_or(body))),
            None => c
                .strip_prefix("///")
                .filter(|_| !c.starts_with("////"))
                .map(|doc| doc.strip_prefix(' ').unwrap_or(doc).trim_end().to_string()),
        })
        .collect();
    let joined = docs.join("\n");
    (!joined.trim().is_empty()).then_some(joined)
}

/// The plain (not doc) `//` and closed `/* */` comments in `text[from..to]`, a stretch that holds
/// only whitespace, separators and comments, in the form [`Trivia`] stores them.
///
/// [`Trivia`]: crate::syntax::ast::Trivia
pub(crate) fn plain_comments(text: &str, from: usize, to: usize) -> Vec<String> {
    comments(text, from, to)
        .into_iter()
        .filter(|(_, c)| {
            let doc =
                (c.starts_with("/**") && *c != "/**/") || (c.starts_with("///") && !c.starts_with("////"));
            let closed = !c.starts_with("/*") || (c.len() >= 4 && c.ends_with("*/"));
            !doc && closed
        })
        .map(|(start, c)| {
            let stored = stored_comment(text, start, c);
            // A lone `\r` inside a SpiceDB `//` comment would end a Purview one.
            if c.starts_with("//") {
                stored.replace('\r', " ")
            } else {
                stored
            }
        })
        .collect()
}

/// The comments in `text[from..to]`, a stretch that holds only whitespace, separators and comments,
/// with their offsets. A `//` comment runs up to the next `\n`, as in SpiceDB.
fn comments(text: &str, from: usize, to: usize) -> Vec<(usize, &str)> {
    let Some(gap) = text.get(from..to) else { return Vec::new() };
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = gap.get(at..).and_then(|rest| rest.find('/')) {
        let start = at + i;
        let tail = gap.get(start..).unwrap_or("");
        let len = if tail.starts_with("/*") {
            tail.get(2..).and_then(|t| t.find("*/")).map_or(tail.len(), |e| e + 4)
        } else if tail.starts_with("//") {
            tail.find('\n').unwrap_or(tail.len())
        } else {
            at = start + 1;
            continue;
        };
        out.push((from + start, tail.get(..len).unwrap_or("")));
        at = start + len;
    }
    out
}

/// The body of a `/** ... */` comment without the leading `*` of each line, blank edges dropped.
fn block_doc(body: &str) -> String {
    let lines: Vec<&str> = body
        .lines()
        .map(|l| {
            let l = l.trim();
            let l = l.strip_prefix('*').unwrap_or(l);
            l.strip_prefix(' ').unwrap_or(l).trim_end()
        })
        .collect();
    let first = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let last = lines.iter().rposition(|l| !l.is_empty()).map_or(first, |i| i + 1);
    lines.get(first..last).unwrap_or(&[]).join("\n")
}

/// `text[span]` trimmed, with the span of what is left.
pub(crate) fn trimmed(text: &str, span: Span) -> (String, Span) {
    let raw = text.get(span.start..span.end).unwrap_or("");
    let lead = raw.len() - raw.trim_start().len();
    let body = raw.trim();
    (body.to_string(), Span::new(span.start + lead, span.start + lead + body.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_comments_strip_markers() {
        let text = "/**\n * user is a user\n * of things\n */\n// plain\n/// more\n";
        assert_eq!(doc_comments(text, 0, text.len()).as_deref(), Some("user is a user\nof things\nmore"));
        assert_eq!(doc_comments("// plain\n/* block */", 0, 20), None);
        assert_eq!(doc_comments("/**/", 0, 4), None);
    }

    #[test]
    fn plain_comments_keep_their_markers() {
        let text = "/** doc */ // a  \r\n  /* b\n     c */ /// doc\n//// d\r/* e */\n/**/ /* open";
        let want = ["// a", "/* b\n   c */", "//// d /* e */", "/**/"];
        assert_eq!(plain_comments(text, 0, text.len()), want);
    }

    #[test]
    fn tokens_for_messages() {
        assert_eq!(token_at("a foo(", 2).1, "`foo`");
        assert_eq!(token_at("a (", 2).1, "`(`");
        assert_eq!(token_at("a\n", 1).1, "end of line");
        assert_eq!(token_at("a", 1).1, "end of input");
        assert_eq!(token_at("é", 1).0, Span::new(0, 2));
    }

    #[test]
    fn lists_read_naturally() {
        assert_eq!(one_of(&["`a`"]), "`a`");
        assert_eq!(one_of(&["`a`", "`b`"]), "`a` or `b`");
        assert_eq!(one_of(&["`a`", "`b`", "`c`"]), "one of `a`, `b` or `c`");
    }
}
