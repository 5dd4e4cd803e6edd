//! The CEL body of a condition as text: where it ends and how it is indented.
//!
//! The syntax layer does not parse CEL; it only needs to skip string literals (`"…"`, `'…'`, triple
//! quoted, raw `r"…"`) and `//` comments so that braces inside them do not count, and to know which
//! lines begin inside a multi-line string, whose whitespace belongs to the string.
//!
//! A condition stores its CEL text trimmed, with the body's own indentation removed from the lines
//! after the first ([`normalize`]); the formatter indents it again ([`indent`]). The two are inverse,
//! so formatting and parsing again gives the same text.

/// Where the body that begins at `from` (just after its `{`) ends.
///
/// `Ok` is the offset of the `}` that balances the `{`. `Err` is where scanning gave up: the end of
/// the text, or the start of a line that begins a new item (`type name` or `condition name`), which
/// means the `}` is missing.
pub(crate) fn body_end(text: &str, from: usize) -> Result<usize, usize> {
    let mut depth = 1usize;
    let mut i = from;
    let mut line_start = false;
    while i < text.len() {
        if line_start && starts_item(&text[i..]) {
            return Err(i);
        }
        let (piece, next) = step(text, i);
        line_start = false;
        match piece {
            Piece::Code('{') => depth += 1,
            Piece::Code('}') => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            Piece::Code('\n') => line_start = true,
            _ => {}
        }
        i = next;
    }
    Err(text.len())
}

/// The stored form of a CEL body: `expr` is the trimmed text, whose first character stood in column
/// `first_col` (counted in characters). Lines after the first lose up to `first_col` leading blanks;
/// every line loses its trailing whitespace. Lines inside multi-line strings stay as written.
pub(crate) fn normalize(expr: &str, first_col: usize) -> String {
    map_lines(expr, |k, line, ends_in_string| {
        let line = if k == 0 { line } else { strip_blanks(line, first_col) };
        if ends_in_string {
            line.to_string()
        } else {
            line.trim_end().to_string()
        }
    })
}

/// `expr` with `prefix` before every non-empty line outside multi-line strings, and without trailing
/// whitespace.
pub(crate) fn indent(expr: &str, prefix: &str) -> String {
    map_lines(expr.trim(), |_, line, ends_in_string| {
        let line = if ends_in_string { line } else { line.trim_end() };
        if line.is_empty() {
            String::new()
        } else {
            format!("{prefix}{line}")
        }
    })
}

/// Joins `f(index, line, ends_in_string)` over the lines of `expr` with `\n`; lines that begin inside
/// a string literal are kept unchanged.
fn map_lines(expr: &str, mut f: impl FnMut(usize, &str, bool) -> String) -> String {
    let in_string = lines_in_string(expr);
    let mut out = Vec::new();
    for (k, line) in expr.split('\n').enumerate() {
        let starts_in = in_string.get(k).copied().unwrap_or(false);
        let ends_in = in_string.get(k + 1).copied().unwrap_or(false);
        out.push(if starts_in { line.to_string() } else { f(k, line, ends_in) });
    }
    out.join("\n")
}

/// For every line of `expr`, whether it begins inside a string literal.
fn lines_in_string(expr: &str) -> Vec<bool> {
    let mut flags = vec![false];
    let mut i = 0;
    while i < expr.len() {
        let (piece, next) = step(expr, i);
        match piece {
            Piece::Code('\n') => flags.push(false),
            Piece::Skipped => flags.extend(expr[i..next].matches('\n').map(|_| true)),
            Piece::Code(_) => {}
        }
        i = next;
    }
    flags
}

/// `line` without up to `max` leading blanks (spaces or tabs).
pub(crate) fn strip_blanks(line: &str, max: usize) -> &str {
    let n = line.chars().take(max).take_while(|c| *c == ' ' || *c == '\t').count();
    &line[n..]
}

/// `type name` or `condition name` after optional blanks: the start of an item.
fn starts_item(line: &str) -> bool {
    let line = line.trim_start_matches([' ', '\t']);
    ["type", "condition"].iter().any(|kw| {
        line.strip_prefix(kw).is_some_and(|rest| {
            let name = rest.trim_start_matches([' ', '\t']);
            name.len() < rest.len() && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        })
    })
}

enum Piece {
    Code(char),
    /// A string literal or a `//` comment (without its line break).
    Skipped,
}

/// The piece of CEL text at `i` (a char boundary) and the offset after it.
fn step(text: &str, i: usize) -> (Piece, usize) {
    let rest = &text[i..];
    match rest.chars().next() {
        Some(q @ ('"' | '\'')) => (Piece::Skipped, i + string_len(rest, q, is_raw(&text[..i]))),
        Some(_) if rest.starts_with("//") => (Piece::Skipped, i + rest.find('\n').unwrap_or(rest.len())),
        Some(c) => (Piece::Code(c), i + c.len_utf8()),
        None => (Piece::Skipped, text.len()),
    }
}

/// Whether a quote after `before` opens a raw string: it follows `r`, `R`, `br` or `rb` (any case)
/// that is not the end of a longer name.
fn is_raw(before: &str) -> bool {
    let mut rev = before.chars().rev();
    let name_char = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let (a, b) = (rev.next(), rev.next());
    let raw = |c: Option<char>| matches!(c, Some('r' | 'R'));
    let bytes = |c: Option<char>| matches!(c, Some('b' | 'B'));
    if (raw(a) && bytes(b)) || (bytes(a) && raw(b)) {
        !name_char(rev.next())
    } else {
        raw(a) && !name_char(b)
    }
}

/// Length of the string literal at the start of `s` (which starts with `quote`). A one-line string
/// without its closing quote ends before the line break; a triple-quoted one at the end of the text.
fn string_len(s: &str, quote: char, raw: bool) -> usize {
    let triple: String = [quote; 3].iter().collect();
    let (open, multiline) = if s.starts_with(&triple) { (3, true) } else { (1, false) };
    let mut chars = s[open..].char_indices();
    while let Some((j, c)) = chars.next() {
        let at = open + j;
        if c == '\\' && !raw {
            if s[at + 1..].starts_with('\n') && !multiline {
                return at + 1;
            }
            chars.next();
        } else if c == '\n' && !multiline {
            return at;
        } else if multiline && s[at..].starts_with(&triple) {
            return at + 3;
        } else if !multiline && c == quote {
            return at + 1;
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_in_strings_and_comments_do_not_count() {
        let text = r#"{ {"a}": 1}["a}"] == 1 // }
  && '}' != r"\" }"#;
        assert_eq!(body_end(text, 1), Ok(text.len() - 1));
    }

    #[test]
    fn stops_at_the_next_item_when_the_brace_is_missing() {
        let text = "{ x > 1\n\ntype user {}";
        assert_eq!(body_end(text, 1), Err(9));
        let text = "{ type(x) == int\n  type(y) }";
        assert_eq!(body_end(text, 1), Ok(text.len() - 1));
    }

    #[test]
    fn normalize_and_indent_are_inverse() {
        let src = "a &&\n      b ||   \n\n    \"\"\"x\n  y\"\"\"";
        let stored = normalize(src, 4);
        assert_eq!(stored, "a &&\n  b ||\n\n\"\"\"x\n  y\"\"\"");
        assert_eq!(normalize(indent(&stored, "  ").trim(), 2), stored);
    }
}
