//! A small hand-written lexer over schema text, for what the pest rules cannot do: finding the
//! boundaries of items and members (to recover after an error) and naming the tokens around an error.
//!
//! It agrees with the grammar on comments, doc comments and names; everything else is one punctuation
//! token. It never fails: an unclosed `/*` is a token of its own that runs to the end of the text.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A name, keyword or number, with a directly attached `:*` or `#name` suffix (`user:*`).
    Word,
    /// A `///` doc comment line (without its line break).
    Doc,
    /// `->` or a single character.
    Punct,
    /// A `/*` without its `*/`, up to the end of the text.
    UnclosedComment,
    Eof,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Token<'a> {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    pub text: &'a str,
    /// Nothing but whitespace precedes the token on its line.
    pub line_start: bool,
}

impl Token<'_> {
    pub fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.text == word
    }

    pub fn is_punct(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.text == p
    }

    /// `relation`, `permission` or `constraint`: a keyword that can only start a member.
    pub fn is_member_keyword(&self) -> bool {
        self.kind == Kind::Word && MEMBER_KEYWORDS.contains(&self.text)
    }

    pub fn is_end(&self) -> bool {
        matches!(self.kind, Kind::Eof | Kind::UnclosedComment)
    }

    /// Whitespace the grammar does not know (a no-break space, ...) or a control character.
    pub fn is_invisible(&self) -> bool {
        self.kind == Kind::Punct && self.text.chars().all(|c| c.is_whitespace() || c.is_control())
    }

    /// How an error message names the token.
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Punct if self.is_invisible() => {
                format!("the invisible character `{}`", self.text.escape_unicode())
            }
            Kind::Word | Kind::Punct => format!("`{}`", self.text),
            Kind::Doc => "a doc comment".to_string(),
            Kind::UnclosedComment => "an unclosed `/*` comment".to_string(),
            Kind::Eof => "the end of the file".to_string(),
        }
    }
}

pub(super) const MEMBER_KEYWORDS: [&str; 3] = ["relation", "permission", "constraint"];

/// Words that can never be a name.
pub(crate) const RESERVED: [&str; 9] =
    ["type", "relation", "permission", "condition", "constraint", "this", "nil", "with", "and"];

#[derive(Clone, Copy, Debug)]
pub(super) struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(text: &'a str, pos: usize) -> Self {
        Lexer { text, pos: pos.min(text.len()) }
    }

    pub fn peek(&self) -> Token<'a> {
        self.clone().next()
    }

    /// Whether the next token starts a new item: a `type` or `condition` keyword that begins its line
    /// and is followed by a name. Used to stop at the next item when a `}` is missing.
    pub fn at_item_start(&self) -> bool {
        let mut lx = *self;
        let tok = lx.next();
        (tok.is_word("type") || tok.is_word("condition")) && tok.line_start && lx.next().kind == Kind::Word
    }

    /// The text of the first token that is not a doc comment (a member's keyword).
    pub fn first_after_docs(mut self) -> &'a str {
        loop {
            let t = self.next();
            if t.kind != Kind::Doc {
                return t.text;
            }
        }
    }

    pub fn next(&mut self) -> Token<'a> {
        self.skip_trivia();
        let start = self.pos;
        let rest = &self.text[start..];
        let line_start = self.text[..start]
            .rsplit('\n')
            .next()
            .is_none_or(|l| l.trim_matches([' ', '\t', '\r']).is_empty());
        let (kind, len) = match rest.chars().next() {
            None => (Kind::Eof, 0),
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => (Kind::Word, word_len(rest)),
            Some(_) if rest.starts_with("///") && !rest.starts_with("////") => (Kind::Doc, line_len(rest)),
            Some(_) if rest.starts_with("/*") => (Kind::UnclosedComment, rest.len()),
            Some(_) if rest.starts_with("->") => (Kind::Punct, 2),
            Some(c) => (Kind::Punct, c.len_utf8()),
        };
        self.pos = start + len;
        let text = &self.text[start..self.pos];
        Token { kind, start, end: self.pos, text: text.trim_end_matches('\r'), line_start }
    }

    /// Skips whitespace, `//` comments (not `///`) and closed `/* */` comments, as the grammar does.
    fn skip_trivia(&mut self) {
        while let Some((_, next)) = trivium(self.text, self.pos) {
            self.pos = next;
        }
    }
}

/// What the grammar skips between two tokens.
#[derive(Clone, Copy, Debug)]
pub(super) enum Trivium<'a> {
    /// Blanks and line breaks, `breaks` of them (`\n`, `\r\n` or a lone `\r`).
    Space { breaks: usize },
    /// A `//` comment (not `///`) without its line break, or a closed `/* */` comment.
    Comment { start: usize, text: &'a str },
}

/// The whitespace or comment at `pos` and the offset after it; `None` at a token, an unclosed `/*`
/// or the end of the text.
pub(super) fn trivium(text: &str, pos: usize) -> Option<(Trivium<'_>, usize)> {
    let rest = text.get(pos..)?;
    let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r']);
    let space = rest.len() - trimmed.len();
    if space > 0 {
        let breaks = line_breaks(&rest[..space]);
        return Some((Trivium::Space { breaks }, pos + space));
    }
    let len = if rest.starts_with("//") && (!rest.starts_with("///") || rest.starts_with("////")) {
        line_len(rest)
    } else {
        4 + rest.strip_prefix("/*")?.find("*/")?
    };
    Some((Trivium::Comment { start: pos, text: &rest[..len] }, pos + len))
}

/// The number of line breaks in `s`: `\n`, `\r\n` and lone `\r` count one each.
pub(super) fn line_breaks(s: &str) -> usize {
    let b = s.as_bytes();
    b.iter()
        .enumerate()
        .filter(|&(i, c)| *c == b'\n' || (*c == b'\r' && b.get(i + 1) != Some(&b'\n')))
        .count()
}

/// Length of the text before the first line break (`\n` or `\r`).
fn line_len(s: &str) -> usize {
    s.find(['\n', '\r']).unwrap_or(s.len())
}

fn is_alnum(c: Option<u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Length of the word at the start of `s`: name characters, `-` before a letter or digit, `/` before
/// a letter or `_`, and a `:*` or `#name` suffix.
fn word_len(s: &str) -> usize {
    let b = s.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let mut i = 0;
    let mut suffix_done = false;
    while let Some(c) = at(i) {
        if c.is_ascii_alphanumeric() || c == b'_' {
            i += 1;
        } else if (c == b'-' && is_alnum(at(i + 1)))
            || (c == b'/' && at(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || c == b'_'))
        {
            i += 2;
        } else if !suffix_done
            && ((c == b':' && at(i + 1) == Some(b'*')) || (c == b'#' && is_alnum(at(i + 1))))
        {
            i += 2;
            suffix_done = true;
        } else {
            break;
        }
    }
    i
}
