//! Syntax errors in words a reader can act on: what was expected, what was found, and — when a
//! small rewrite of the query parses — the rewrite.

use super::parse::{is_query, operation_hint, OPERATIONS};
use crate::diag::Diagnostic;
use crate::syntax::ast::Span;

/// The diagnostic for a statement `src` (at `base` in the file) that failed to parse at `pos`.
pub(super) fn syntax_diagnostic(src: &str, base: usize, pos: usize, expected: &[&str]) -> Diagnostic {
    let pos = pos.min(src.len());
    let rest = src.get(pos..).unwrap_or("");
    let token: String = rest.chars().take_while(|c| !c.is_whitespace()).take(40).collect();
    let found = match rest.chars().next() {
        None => "the end of the query".to_string(),
        Some(c) if c.is_whitespace() => "a space".to_string(),
        Some(_) => format!("`{token}`"),
    };
    let message = match expected {
        [] => format!("unexpected {found}"),
        [one] => format!("expected {one}, found {found}"),
        [init @ .., last] => format!("expected {} or {last}, found {found}", init.join(", ")),
    };
    let end = pos + token.len().max(1);
    let span = Span::new(base + pos, base + end.min(src.len().max(pos + 1)));
    let d = Diagnostic::new("query-syntax", span, message);
    let d = match expected {
        [] => d,
        [one] => d.with_label(format!("expected {one}")),
        _ => d.with_label("unexpected here"),
    };
    let unterminated = token.starts_with('"') && !token[1..].contains('"');
    if unterminated {
        return d.with_help("a quoted string ends with `\"` on the same line");
    }
    d.with_help_opt(help(src))
}

fn help(src: &str) -> Option<String> {
    let text = strip_comment(src).trim();
    let first = text.split_whitespace().next().unwrap_or("");
    if !first.is_empty() && !OPERATIONS.iter().any(|op| op.eq_ignore_ascii_case(first)) {
        if first.contains(':') && is_query(&format!("check {text}")) {
            return Some(format!("did you mean `check {text}`?"));
        }
        return Some(operation_hint(first));
    }
    for candidate in rewrites(text) {
        if candidate != text && is_query(&candidate) {
            return Some(format!("did you mean `{candidate}`?"));
        }
    }
    usage_of(first)
}

/// A query's text without a trailing `//` comment (good enough for building suggestions).
fn strip_comment(src: &str) -> &str {
    match src.find("//") {
        Some(i) if !src[..i].contains('"') => &src[..i],
        _ => src,
    }
}

/// Small rewrites of a query that failed, most likely first.
fn rewrites(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `document:readme#view @ user:ann`: spaces inside the relationship notation.
    out.push(tighten(text));
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        // `who document:readme#view user` → `who document:readme#view@user`
        [kw, target, filter, rest @ ..] if kw.eq_ignore_ascii_case("who") => {
            out.push(join(&[kw, &format!("{target}@{filter}")], rest));
        }
        // `what user:ann#view document` → `what document#view@user:ann`
        [kw, subject_perm, ty, rest @ ..] if kw.eq_ignore_ascii_case("what") => {
            if let Some((subject, perm)) = subject_perm.rsplit_once('#') {
                out.push(join(&[kw, &format!("{ty}#{perm}@{subject}")], rest));
            }
        }
        // `check user:ann view document:readme` → `check user:ann can view document:readme`
        [kw, subject, perm, object, rest @ ..]
            if kw.eq_ignore_ascii_case("check") || kw.eq_ignore_ascii_case("explain") =>
        {
            out.push(join(&[kw, subject, "can", perm, object], rest));
        }
        // `subset role:a#grants user:ann#exercise` (or `… of …`) → `subset role:a#grants in …`
        [kw, set, second, rest @ ..] if kw.eq_ignore_ascii_case("subset") => {
            out.push(join(&[kw, set, "in", second], rest));
            if let [held, rest @ ..] = rest {
                out.push(join(&[kw, set, "in", held], rest));
            }
        }
        _ => {}
    }
    out
}

/// Removes the spaces next to `#`, `@` and `:`.
fn tighten(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        let glue = |c: char| matches!(c, '#' | '@' | ':');
        let prev_glues = i > 0 && (out.ends_with(glue) || w.starts_with(glue));
        if i > 0 && !prev_glues {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

fn join(head: &[&str], rest: &[&str]) -> String {
    head.iter().chain(rest.iter()).copied().collect::<Vec<_>>().join(" ")
}

/// The shape of each operation, for a reader who wrote something else.
fn usage_of(keyword: &str) -> Option<String> {
    let k = keyword.to_ascii_lowercase();
    let usage = match k.as_str() {
        "check" | "explain" => {
            format!("write `{k} document:readme#view@user:ann` or `{k} user:ann can view document:readme`")
        }
        "who" => "write `who document:readme#view@user` or `who user can view document:readme`".into(),
        "what" => "write `what document#view@user:ann` or `what user:ann can view document`".into(),
        "expand" => "write `expand document:readme#view`".into(),
        "subset" => "write `subset role:auditor#grants in user:ann#exercise` or \
                     `subset user:ann can exercise every role:auditor#grants`"
            .into(),
        _ => return None,
    };
    Some(usage)
}
