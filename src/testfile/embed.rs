//! Schemas written inside a test file: diagnostics that point at the test file's own lines.
//!
//! A schema in a YAML literal block (`schema: |`) is the block's lines with the block's
//! indentation removed, so a place in the schema text is a place in the file: the same line
//! offset from the block's first line, the same column plus the indentation. [`locate`] finds the
//! block that holds a given text; [`render`] renders diagnostics there, or against the bare schema
//! text when the block cannot be found (a folded `>` block, a quoted string).

use crate::diag::{Diagnostics, SourceFile};
use crate::syntax::ast::Span;

/// Where a literal block starts in a file: its first content line (0-based) and its indentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Block {
    pub first_line: usize,
    pub indent: usize,
}

/// Finds the first literal block at or after line `from` whose content is `value`.
pub(crate) fn locate(file: &str, value: &str, from: usize) -> Option<Block> {
    let lines: Vec<&str> = file.lines().collect();
    let want = value.trim_end();
    for (i, line) in lines.iter().enumerate().skip(from) {
        if !is_literal_header(line) {
            continue;
        }
        let first = i + 1;
        let indent = lines.get(first..)?.iter().find(|l| !l.trim().is_empty()).map(|l| indentation(l))?;
        if indent <= indentation(line) {
            continue;
        }
        let mut content = Vec::new();
        for l in lines.get(first..).unwrap_or(&[]) {
            if l.trim().is_empty() {
                content.push("");
            } else if indentation(l) >= indent {
                content.push(l.get(indent..).unwrap_or(""));
            } else {
                break;
            }
        }
        if content.join("\n").trim_end() == want {
            return Some(Block { first_line: first, indent });
        }
    }
    None
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// `key: |`, `- key: |-`, `key: |+2 # comment` and the like.
fn is_literal_header(line: &str) -> bool {
    let line = match line.find(" #") {
        Some(i) => &line[..i],
        None => line,
    };
    let Some(indicator) = line.trim_end().rsplit([' ', '\t']).next() else { return false };
    indicator.starts_with('|')
        && indicator[1..].chars().all(|c| matches!(c, '+' | '-' | '0'..='9'))
        && (line.trim_end().len() == indicator.len() || line.trim_end().ends_with(&format!(": {indicator}")))
}

/// Renders `diags` (spans in `text`) at their place in the test file when `text` is a literal
/// block of it, else against `text` itself under `fallback_name`.
pub(crate) fn render(
    diags: &Diagnostics,
    text: &str,
    fallback_name: &str,
    file: Option<(&str, &str, Block)>,
) -> String {
    if let Some((name, file_text, block)) = file {
        if let Some(moved) = move_spans(diags, text, file_text, block) {
            return moved.render(&SourceFile::new(name, file_text));
        }
    }
    diags.render(&SourceFile::new(fallback_name, text))
}

fn move_spans(diags: &Diagnostics, text: &str, file_text: &str, block: Block) -> Option<Diagnostics> {
    let schema_starts = line_starts(text);
    let file_starts = line_starts(file_text);
    let map = |offset: usize| -> Option<usize> {
        let offset = offset.min(text.len());
        let line = schema_starts.partition_point(|&s| s <= offset).checked_sub(1)?;
        let col = offset - schema_starts.get(line)?;
        let out = file_starts.get(block.first_line + line)? + block.indent + col;
        (out <= file_text.len()).then_some(out)
    };
    let span = |s: Span| Some(Span::new(map(s.start)?, map(s.end)?));
    let mut out = diags.clone();
    for d in &mut out.0 {
        d.span = span(d.span)?;
        for (s, _) in &mut d.related {
            *s = span(*s)?;
        }
    }
    Some(out)
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literal_blocks_by_content() {
        let file =
            "a: 1\nschema: |\n  type user {}\n\n  type doc {}\nmodels:\n  - model: |-\n      type user {}\n";
        assert_eq!(
            locate(file, "type user {}\n\ntype doc {}\n", 0),
            Some(Block { first_line: 2, indent: 2 })
        );
        assert_eq!(locate(file, "type user {}", 0), Some(Block { first_line: 7, indent: 6 }));
        assert_eq!(locate(file, "type user {}", 8), None);
        assert_eq!(locate(file, "nothing", 0), None);
        assert!(is_literal_header("schema: |+2 # keep"));
        assert!(!is_literal_header("a: b|"));
    }
}
