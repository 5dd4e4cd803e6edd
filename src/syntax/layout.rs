//! Formatting of SpiceDB and OpenFGA schemas, which Purview reads but does not write: the layout
//! only. Lines are indented by nesting (two spaces a level), trailing white space goes, runs of
//! blank lines become one, and the text ends with one line break. Nothing else changes: no token
//! is added, removed or moved to another line, so comments, partials, `use` flags and annotations
//! (which the AST does not keep) stay as written.
//!
//! Lines that start inside a block comment or a string, and the bodies of caveats and conditions
//! (CEL, whose text the AST keeps as written), stay as they are. The result is checked: it must
//! parse into the same tree as the original (comments included), else [`relayout`] gives `None`.

use crate::syntax::SchemaFormat;

/// The text laid out, or `None` when the format is not SpiceDB or the OpenFGA DSL, when the text
/// does not parse, or when the laid-out text would not parse into the same tree.
pub fn relayout(format: SchemaFormat, text: &str) -> Option<String> {
    let before = super::parse_as(format, text).ok()?;
    let out = match format {
        SchemaFormat::SpiceDb => braces(text),
        SchemaFormat::OpenFgaDsl => openfga(text),
        SchemaFormat::Purview | SchemaFormat::OpenFgaJson => return None,
    };
    let after = super::parse_as(format, &out).ok()?;
    (after == before).then_some(out)
}

/// What a line starts inside of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    BlockComment,
    Str(u8),
}

/// Scans one line from `state`: the state at its end and the change of brace and parenthesis
/// depth, with `#` starting a comment when `hash_comments`.
fn scan(line: &str, mut state: State, hash_comments: bool) -> (State, i32, i32) {
    let b = line.as_bytes();
    let (mut braces, mut parens) = (0, 0);
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        let next = b.get(i + 1).copied().unwrap_or(0);
        match state {
            State::BlockComment => {
                if c == b'*' && next == b'/' {
                    state = State::Code;
                    i += 1;
                }
            }
            State::Str(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    state = State::Code;
                }
            }
            State::Code => match c {
                b'/' if next == b'/' => break,
                b'#' if hash_comments => break,
                b'/' if next == b'*' => {
                    state = State::BlockComment;
                    i += 1;
                }
                b'"' | b'\'' => state = State::Str(c),
                b'{' => braces += 1,
                b'}' => braces -= 1,
                b'(' => parens += 1,
                b')' => parens -= 1,
                _ => {}
            },
        }
        i += 1;
    }
    (state, braces, parens)
}

/// Whether the code of `line` (before any `//` comment) ends with an operator that continues
/// the expression on the next line.
fn continues(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("").trim_end();
    code.ends_with(['+', '&', '-', '|', '=', ','])
}

/// SpiceDB: indentation by `{` nesting, continuation lines of an expression four spaces deeper;
/// caveat bodies as written.
fn braces(text: &str) -> String {
    let mut lines = Lines::default();
    let mut state = State::Code;
    let mut depth: i32 = 0;
    let mut parens: i32 = 0;
    // The depth of the `{` of the caveat whose body the scan is in.
    let mut caveat: Option<i32> = None;
    let mut continued = false;
    for raw in text.lines() {
        let line = raw.trim();
        let start = state;
        let (end, db, dp) = scan(line, state, false);
        if start != State::Code
            || caveat.is_some_and(|d| depth >= d && !(line.starts_with('}') && depth + db < d))
        {
            lines.verbatim(raw);
        } else if line.is_empty() {
            lines.blank();
        } else {
            let closing = i32::from(line.starts_with('}'));
            let extra = if continued || parens > 0 { 2 } else { 0 };
            lines.indented(line, (depth - closing + extra).max(0) as usize);
        }
        if caveat.is_none() && start == State::Code && line.starts_with("caveat") && db > 0 {
            caveat = Some(depth + 1);
        }
        depth += db;
        parens = (parens + dp).max(0);
        if caveat.is_some_and(|d| depth < d) {
            caveat = None;
        }
        continued = end == State::Code && continues(line);
        state = end;
    }
    lines.finish()
}

/// The OpenFGA DSL: `model`, `type`, `condition` and `module` at the left margin, `schema` and
/// `relations` two spaces in, `define` four; comments as deep as the line after them; condition
/// bodies as written.
fn openfga(text: &str) -> String {
    let raw: Vec<&str> = text.lines().collect();
    let mut lines = Lines::default();
    let mut state = State::Code;
    let mut depth: i32 = 0;
    let mut current = 0usize;
    for (i, raw_line) in raw.iter().enumerate() {
        let line = raw_line.trim();
        let start = state;
        let (end, db, _) = scan(line, state, true);
        if start != State::Code || (depth > 0 && !(line.starts_with('}') && depth + db == 0)) {
            lines.verbatim(raw_line);
        } else if line.is_empty() {
            lines.blank();
        } else if line.starts_with('#') || line.starts_with("//") {
            // As deep as the next line of code.
            let next = raw
                .iter()
                .skip(i + 1)
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("//"));
            lines.indented(line, next.map_or(current, |n| fga_indent(n).unwrap_or(current)));
        } else {
            let indent = if line.starts_with('}') { 0 } else { fga_indent(line).unwrap_or(current) };
            current = indent;
            lines.indented(line, indent);
        }
        depth = (depth + db).max(0);
        state = end;
    }
    lines.finish()
}

fn fga_indent(line: &str) -> Option<usize> {
    let word = line.split(|c: char| c.is_whitespace()).next().unwrap_or("");
    match word {
        "model" | "type" | "condition" | "module" | "extend" => Some(0),
        "schema" | "relations" => Some(1),
        "define" => Some(2),
        _ => None,
    }
}

/// The lines written so far.
#[derive(Default)]
struct Lines {
    out: String,
    /// Blank lines waiting: written as one before the next line, none at the start or end.
    blank: bool,
}

impl Lines {
    fn blank(&mut self) {
        self.blank = !self.out.is_empty();
    }

    fn push(&mut self, line: &str) {
        if self.blank {
            self.out.push('\n');
            self.blank = false;
        }
        self.out.push_str(line);
        self.out.push('\n');
    }

    fn indented(&mut self, line: &str, indent: usize) {
        let line = format!("{}{line}", "  ".repeat(indent));
        self.push(&line);
    }

    fn verbatim(&mut self, line: &str) {
        // A blank line in a block comment or string is kept as it is.
        if self.blank {
            self.out.push('\n');
            self.blank = false;
        }
        self.out.push_str(line.strip_suffix('\r').unwrap_or(line));
        self.out.push('\n');
    }

    fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spicedb_is_reindented_and_nothing_else_changes() {
        let text = "use expiration\n\n\n/** a user */\n   definition user {}\ndefinition doc {\nrelation viewer: user with expiration   \n        // who edits\n  relation editor: user\n permission view = viewer +\neditor\n}\n\ncaveat c(a int) {\n      a == 1 &&\n        a > 0\n}";
        let out = relayout(SchemaFormat::SpiceDb, text).unwrap_or_default();
        assert_eq!(
            out,
            "use expiration\n\n/** a user */\ndefinition user {}\ndefinition doc {\n  relation viewer: user with expiration\n  // who edits\n  relation editor: user\n  permission view = viewer +\n      editor\n}\n\ncaveat c(a int) {\n      a == 1 &&\n        a > 0\n}\n"
        );
        assert_eq!(relayout(SchemaFormat::SpiceDb, &out).as_deref(), Some(out.as_str()));
    }

    #[test]
    fn openfga_is_reindented_by_keyword() {
        let text = "model\nschema 1.1\n# users\n  type user\ntype doc\n relations\n  define viewer: [user]\n        define view: viewer";
        let out = relayout(SchemaFormat::OpenFgaDsl, text).unwrap_or_default();
        assert_eq!(
            out,
            "model\n  schema 1.1\n# users\ntype user\ntype doc\n  relations\n    define viewer: [user]\n    define view: viewer\n"
        );
    }

    #[test]
    fn refuses_what_does_not_parse_and_other_languages() {
        assert_eq!(relayout(SchemaFormat::SpiceDb, "definition {"), None);
        assert_eq!(relayout(SchemaFormat::Purview, "type user {}"), None);
    }
}
