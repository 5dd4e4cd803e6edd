//! Comments and blank lines between and inside the pieces the driver parses, in the stored form of
//! [`Trivia`](crate::syntax::ast::Trivia), whose documentation states where each one is attached.
//!
//! The grammar skips comments; they are read here from the text, with the lexer's rules.

use super::lexer::{trivium, Lexer, Trivium};
use crate::syntax::cel_text::strip_blanks;

/// The comments between a token and the next one.
#[derive(Debug, Default)]
pub(super) struct Gap {
    /// One-line comments on the line where the token ends, after it: they trail the token's node.
    pub same_line: Vec<String>,
    /// The comments after those, with `""` for a blank line: they lead whatever comes next.
    pub lines: Vec<String>,
}

/// The gap from `from` to the next token. `from` is the end of a token, unless `after_token` is
/// false (at the start of the text), in which case nothing counts as on its line.
pub(super) fn gap(text: &str, from: usize, after_token: bool) -> Gap {
    let mut gap = Gap::default();
    let mut on_line = after_token;
    let mut pos = from;
    while let Some((piece, next)) = trivium(text, pos) {
        match piece {
            Trivium::Space { breaks } => {
                if breaks > 0 {
                    on_line = false;
                }
                if breaks > 1 && gap.lines.last().is_none_or(|l| !l.is_empty()) {
                    gap.lines.push(String::new());
                }
            }
            Trivium::Comment { start, text: comment } => {
                let stored = stored_comment(text, start, comment);
                if on_line && !comment.contains(['\n', '\r']) {
                    gap.same_line.push(stored);
                } else {
                    on_line = false;
                    gap.lines.push(stored);
                }
            }
        }
        pos = next;
    }
    gap
}

/// The comments between the tokens of `text[from..to]`, which starts at a token.
pub(super) fn comments_within(text: &str, from: usize, to: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = from;
    while pos < to {
        while let Some((piece, next)) = trivium(text, pos) {
            if let Trivium::Comment { start, text: comment } = piece {
                if next <= to {
                    out.push(stored_comment(text, start, comment));
                }
            }
            pos = next;
        }
        let token = Lexer::new(text, pos).next();
        if token.is_end() || token.end <= pos {
            break;
        }
        pos = token.end;
    }
    out
}

/// The end of the last token that starts at or after `from` and ends by `to`; `from` if none does.
pub(super) fn last_token_end(text: &str, from: usize, to: usize) -> usize {
    let mut lx = Lexer::new(text, from);
    let mut end = from;
    loop {
        let t = lx.next();
        if t.is_end() || t.end > to {
            return end;
        }
        end = t.end;
    }
}

/// Drops blank lines at the front and at the back (as asked), and runs of them down to one.
pub(super) fn trim_blanks(lines: &mut Vec<String>, front: bool, back: bool) {
    lines.dedup_by(|a, b| a.is_empty() && b.is_empty());
    if front && lines.first().is_some_and(String::is_empty) {
        lines.remove(0);
    }
    if back && lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
}

/// The stored form of the comment `comment` that starts at `start` in `text`: lines without trailing
/// whitespace; lines after the first without the blanks up to the column of the comment's start.
pub(crate) fn stored_comment(text: &str, start: usize, comment: &str) -> String {
    let before = text.get(..start).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count();
    let lines: Vec<&str> = comment
        .split('\n')
        .enumerate()
        .map(|(k, line)| if k == 0 { line } else { strip_blanks(line, column) }.trim_end())
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_splits_at_the_first_line_break() {
        let text = "x /* a */ // b\n\n  // c\n  /* d\n     e */ /* f */\ny";
        let g = gap(text, 1, true);
        assert_eq!(g.same_line, ["/* a */", "// b"]);
        assert_eq!(g.lines, ["", "// c", "/* d\n   e */", "/* f */"]);
        assert!(gap(text, 0, false).same_line.is_empty());
    }

    #[test]
    fn a_comment_over_several_lines_never_trails() {
        let g = gap("x /* a\n */ /* b */ y", 1, true);
        assert!(g.same_line.is_empty());
        assert_eq!(g.lines, ["/* a\n*/", "/* b */"]);
    }

    #[test]
    fn comments_within_skip_tokens_and_docs() {
        let text = "/// doc\n// c\nrelation /* a */ x: user // b\n";
        let end = last_token_end(text, 0, text.len());
        assert_eq!(&text[..end], "/// doc\n// c\nrelation /* a */ x: user");
        assert_eq!(comments_within(text, 0, end), ["// c", "/* a */"]);
    }

    #[test]
    fn blank_lines_are_trimmed() {
        let mut lines = vec![String::new(), String::new(), "// a".into(), String::new()];
        trim_blanks(&mut lines, false, false);
        assert_eq!(lines, ["", "// a", ""]);
        trim_blanks(&mut lines, true, true);
        assert_eq!(lines, ["// a"]);
    }
}
