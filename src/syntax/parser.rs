//! Purview's own schema language: text to [`Schema`].
//!
//! pest parses one piece at a time (`grammar/schema.pest`): the head of a type, each member, the
//! head of a condition. This file cuts the text into those pieces with a small lexer, so that after
//! an error it carries on at the next member or item and reports every error of the file at once.
//! It also finds the CEL body of each condition, lowers the pest pairs to the spanned AST (`lower`),
//! attaches comments and blank lines to the nodes around them (`trivia`), turns pest errors into
//! messages a schema author can act on (`expect`), and reports duplicate names.
//! pest's `Rule` and `Pair` never leave this module.

use crate::diag::{Diagnostic, Diagnostics};
use crate::syntax::ast::{ConditionDef, Ident, Item, Member, Schema, Span, Trivia, TypeDef};
use crate::syntax::cel_text;
pub(crate) use lexer::RESERVED;
use lexer::{Kind, Lexer, Token};
use pest::iterators::Pair;
use pest::Parser as _;

mod expect;
mod lexer;
mod lower;
mod trivia;

pub(crate) use trivia::stored_comment;

mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "../grammar/schema.pest"]
    pub(super) struct SchemaGrammar;
}

use grammar::{Rule, SchemaGrammar};

/// The deepest nesting of parentheses or `<>` in one member or condition head, and of operators in
/// one expression. Deeper input is an error, never a stack overflow.
const MAX_NESTING: usize = 48;

/// Parses a schema in Purview's language, or returns every error found in it.
///
/// Errors are syntax errors, reserved words used as names, duplicate types, members, conditions and
/// parameters, and unknown parameter types. Names are not resolved here: `relation owner: usr` parses.
pub fn parse_schema(text: &str) -> Result<Schema, Diagnostics> {
    let mut parser = Driver { text, diags: Vec::new(), items: Vec::new(), end_comments: Vec::new() };
    parser.schema();
    let Driver { mut diags, items, end_comments, .. } = parser;
    let types = items.iter().filter_map(|i| if let Item::Type(t) = i { Some(&t.name) } else { None });
    for (first, dup) in duplicates(types) {
        diags.push(duplicate("duplicate-type", first, dup, format!("type `{}` is defined twice", dup.name)));
    }
    let conditions =
        items.iter().filter_map(|i| if let Item::Condition(c) = i { Some(&c.name) } else { None });
    for (first, dup) in duplicates(conditions) {
        let msg = format!("condition `{}` is defined twice", dup.name);
        diags.push(duplicate("duplicate-condition", first, dup, msg));
    }
    if diags.is_empty() {
        Ok(Schema { items, end_comments })
    } else {
        diags.sort_by_key(|d| (d.span.start, d.span.end));
        Err(Diagnostics(diags))
    }
}

/// Every name that repeats an earlier one, with that earlier one.
fn duplicates<'i>(names: impl IntoIterator<Item = &'i Ident>) -> Vec<(&'i Ident, &'i Ident)> {
    let mut seen: std::collections::HashMap<&str, &Ident> = std::collections::HashMap::new();
    let mut dups = Vec::new();
    for name in names {
        match seen.get(name.name.as_str()) {
            Some(first) => dups.push((*first, name)),
            None => {
                seen.insert(&name.name, name);
            }
        }
    }
    dups
}

fn duplicate(code: &'static str, first: &Ident, dup: &Ident, message: String) -> Diagnostic {
    Diagnostic::new(code, dup.span, message)
        .with_label("defined again here")
        .with_related(first.span, "first defined here")
        .with_help("rename or remove one of the two definitions")
}

struct Driver<'a> {
    text: &'a str,
    diags: Vec<Diagnostic>,
    items: Vec<Item>,
    end_comments: Vec<String>,
}

impl<'a> Driver<'a> {
    fn schema(&mut self) {
        let mut pos = 0;
        loop {
            let gap = trivia::gap(self.text, pos, pos > 0);
            if let Some(item) = self.items.last_mut().filter(|_| pos > 0) {
                item.trivia_mut().trailing.extend(gap.same_line);
            }
            let mut leading = gap.lines;
            let lx = Lexer::new(self.text, pos);
            let tok = lx.peek();
            match tok.kind {
                Kind::Eof => {
                    trivia::trim_blanks(&mut leading, true, true);
                    self.end_comments = leading;
                    return;
                }
                Kind::UnclosedComment => return self.unclosed_comment(tok),
                _ => {}
            }
            // The formatter always puts one blank line between items.
            trivia::trim_blanks(&mut leading, true, false);
            let kw = skip_docs(lx).peek();
            pos = if kw.is_word("type") {
                self.type_item(tok.start, kw, leading)
            } else if kw.is_word("condition") {
                self.condition_item(tok.start, kw, leading)
            } else if tok.kind == Kind::Doc {
                if kw.kind == Kind::Eof {
                    self.dangling_doc(tok, "a type or condition");
                }
                kw.start
            } else {
                self.diags.push(expect::top_level_junk(tok));
                self.resync(tok.end)
            };
        }
    }

    /// `type name { members }`, after the comment lines `leading`; returns where the item ends.
    fn type_item(&mut self, start: usize, kw: Token<'a>, mut leading: Vec<String>) -> usize {
        let stop = self.head_stop(kw.end, true);
        let head_end = if stop.is_punct("{") { stop.end } else { stop.start };
        let head = self.parse(Rule::type_head_chunk, start, head_end);
        let (doc, name) = match head {
            Some(pair) => {
                let (doc, name) = self.lower(start).type_head(pair);
                (doc, Some(name))
            }
            None => (None, None),
        };
        let body = if stop.is_punct("{") {
            stop.end
        } else if stop.is_member_keyword() {
            stop.start
        } else {
            return self.resync(kw.end);
        };
        leading.extend(trivia::comments_within(self.text, start, stop.start));
        let open = trivia::gap(self.text, body, true);
        // Comment lines waiting for the member (or the `}`) they come before.
        let mut pending = open.lines;
        let mut members: Vec<Member> = Vec::new();
        let mut lx = Lexer::new(self.text, body);
        let end = loop {
            let tok = lx.peek();
            if tok.is_punct("}") {
                break tok.end;
            }
            if tok.kind == Kind::UnclosedComment {
                self.unclosed_comment(tok);
                break self.text.len();
            }
            if tok.kind == Kind::Eof || skip_docs(lx).at_item_start() {
                if stop.is_punct("{") {
                    self.unclosed(stop, "type", name.as_ref());
                }
                break tok.start;
            }
            let leading = std::mem::take(&mut pending);
            let (last, member) = self.member(lx, leading, members.is_empty());
            let gap = trivia::gap(self.text, last, true);
            if let Some(mut member) = member {
                member.trivia_mut().trailing = gap.same_line;
                members.push(member);
            }
            pending = gap.lines;
            lx = Lexer::new(self.text, last);
        };
        let Some(name) = name else { return end };
        self.check_members(&name, &members);
        trivia::trim_blanks(&mut pending, members.is_empty(), true);
        let span = Span::new(kw.start, end).into();
        self.items.push(Item::Type(TypeDef {
            name,
            doc,
            trivia: Trivia { leading, trailing: Vec::new() },
            open_comments: open.same_line,
            members,
            end_comments: pending,
            span,
        }));
        end
    }

    /// One member (with its doc comments) at `lx`, after the comment lines `leading`; returns the
    /// end of its last token, and the member unless it has errors.
    fn member(
        &mut self,
        lx: Lexer<'a>,
        mut leading: Vec<String>,
        first_member: bool,
    ) -> (usize, Option<Member>) {
        let first = lx.peek();
        let mut after = skip_docs(lx);
        let kw = after.next();
        if !kw.is_member_keyword() {
            if first.kind == Kind::Doc && (kw.is_punct("}") || kw.is_end()) {
                self.dangling_doc(first, "a relation or permission");
                return (kw.start, None);
            }
            self.diags.push(expect::member_junk(kw));
            return (member_end(after, kw), None);
        }
        let end = member_end(after, kw);
        let last = trivia::last_token_end(self.text, first.start, end);
        let Some(pair) = self.parse(Rule::member_chunk, first.start, end) else { return (last, None) };
        let mut member = self.lower(first.start).member(pair);
        if let Some(m) = &mut member {
            // No blank line right after the `{`; comments inside the member go before it.
            trivia::trim_blanks(&mut leading, first_member, false);
            leading.extend(trivia::comments_within(self.text, first.start, last));
            m.trivia_mut().leading = leading;
        }
        (last, member)
    }

    fn check_members(&mut self, ty: &Ident, members: &[Member]) {
        let names = members.iter().filter_map(|m| match m {
            Member::Relation(r) => Some(&r.name),
            Member::Permission(p) => Some(&p.name),
            Member::Constraint(_) => None,
        });
        for (first, dup) in duplicates(names) {
            let msg = format!("`{}` is defined twice in type `{}`", dup.name, ty.name);
            let d = duplicate("duplicate-member", first, dup, msg)
                .with_help("relations and permissions of a type share one namespace; rename or remove one");
            self.diags.push(d);
        }
    }

    /// `condition name(params) { cel }`, after the comment lines `leading`; returns where the item
    /// ends.
    fn condition_item(&mut self, start: usize, kw: Token<'a>, mut leading: Vec<String>) -> usize {
        let stop = self.head_stop(kw.end, false);
        let head_end = if stop.is_punct("{") { stop.end } else { stop.start };
        let head = self
            .parse(Rule::condition_head_chunk, start, head_end)
            .map(|p| self.lower(start).condition_head(p));
        if !stop.is_punct("{") {
            return self.resync(kw.end);
        }
        let close = match cel_text::body_end(self.text, stop.end) {
            Ok(close) => close,
            Err(stopped) => {
                self.unclosed(stop, "condition", head.as_ref().map(|h| &h.1));
                return stopped;
            }
        };
        let body = &self.text[stop.end..close];
        let expr_start = stop.end + (body.len() - body.trim_start().len());
        let expr = body.trim();
        let expr_span = Span::new(expr_start, expr_start + expr.len());
        if let Some((doc, name, params)) = head {
            if expr.is_empty() {
                let d = Diagnostic::new("syntax", Span::new(stop.start, close + 1), format!("condition `{}` has no expression", name.name))
                    .with_help("write a CEL expression that yields a bool between the braces, e.g. `{ region in allowed }`");
                self.diags.push(d);
            }
            let line_start = self.text[..expr_start].rfind('\n').map_or(0, |i| i + 1);
            let column = self.text[line_start..expr_start].chars().count();
            leading.extend(trivia::comments_within(self.text, start, stop.start));
            self.items.push(Item::Condition(ConditionDef {
                name,
                doc,
                params,
                expr: cel_text::normalize(expr, column),
                expr_span: expr_span.into(),
                trivia: Trivia { leading, trailing: Vec::new() },
                span: Span::new(kw.start, close + 1).into(),
            }));
        }
        close + 1
    }

    /// The token that ends the head of an item: its `{`, or whatever shows the `{` is missing.
    fn head_stop(&self, from: usize, in_type: bool) -> Token<'a> {
        let mut lx = Lexer::new(self.text, from);
        loop {
            if lx.at_item_start() {
                return lx.peek();
            }
            let t = lx.next();
            let ends = t.is_punct("{") || t.is_punct("}") || t.is_end() || t.kind == Kind::Doc;
            if ends || (in_type && t.is_member_keyword() && t.line_start) {
                return t;
            }
        }
    }

    /// Where to carry on after text that is not an item: the next item (or the doc comments before
    /// it), or the next word at the start of a line outside braces, which is probably a misspelt
    /// or misplaced item of its own.
    fn resync(&self, from: usize) -> usize {
        let mut lx = Lexer::new(self.text, from);
        let mut depth = 0usize;
        loop {
            let t = lx.peek();
            let docs_then_item = t.kind == Kind::Doc && t.line_start && skip_docs(lx).at_item_start();
            let column_0 = t.start == 0 || self.text[..t.start].ends_with('\n');
            let word_line = depth == 0 && t.kind == Kind::Word && column_0;
            if t.is_end() || lx.at_item_start() || docs_then_item || word_line {
                return t.start;
            }
            if t.is_punct("{") {
                depth += 1;
            } else if t.is_punct("}") {
                depth = depth.saturating_sub(1);
            }
            lx.next();
        }
    }

    /// Runs `rule` on `text[start..end]`, reporting a failure.
    fn parse(&mut self, rule: Rule, start: usize, end: usize) -> Option<Pair<'a, Rule>> {
        if let Some(d) = too_deep(self.text, start, end) {
            self.diags.push(d);
            return None;
        }
        match SchemaGrammar::parse(rule, &self.text[start..end]) {
            Ok(mut pairs) => pairs.next(),
            Err(err) => {
                self.diags.push(expect::diagnose(&err, self.text, start));
                None
            }
        }
    }

    fn lower(&mut self, base: usize) -> lower::Lower<'_, 'a> {
        lower::Lower { text: self.text, base, diags: &mut self.diags }
    }

    fn unclosed(&mut self, open: Token<'_>, what: &str, name: Option<&Ident>) {
        let of = match name {
            Some(n) => format!(" of {what} `{}`", n.name),
            None => String::new(),
        };
        let help = match what {
            "type" => "add `}` after the last member",
            _ => "add `}` after the expression, and check its string literals are closed",
        };
        let d = Diagnostic::new(
            "unclosed-delimiter",
            Span::new(open.start, open.end),
            format!("unclosed `{{`{of}"),
        )
        .with_label("this `{` is never closed")
        .with_help(help);
        self.diags.push(d);
    }

    fn unclosed_comment(&mut self, tok: Token<'_>) {
        let d = Diagnostic::new(
            "unclosed-delimiter",
            Span::new(tok.start, tok.start + 2),
            "unclosed block comment",
        )
        .with_label("this `/*` has no `*/`")
        .with_help("close the comment with `*/`");
        self.diags.push(d);
    }

    fn dangling_doc(&mut self, doc: Token<'_>, what: &str) {
        let d =
            Diagnostic::new("doc-comment", Span::new(doc.start, doc.end), "doc comment documents nothing")
                .with_help(format!(
                    "a `///` comment must come right before {what}; use `//` for a plain comment"
                ));
        self.diags.push(d);
    }
}

/// The lexer after any doc comments at `lx`.
fn skip_docs(mut lx: Lexer<'_>) -> Lexer<'_> {
    while lx.peek().kind == Kind::Doc {
        lx.next();
    }
    lx
}

/// Where the member whose keyword `prev` was just read (and `lx` is after) ends: before the next
/// member keyword, doc comment, `}`, item or the end. A member keyword directly after `relation` or
/// `permission` is taken as a (reserved, so wrong) name and does not end the member.
fn member_end<'a>(mut lx: Lexer<'a>, mut prev: Token<'a>) -> usize {
    loop {
        if lx.at_item_start() {
            return lx.peek().start;
        }
        let t = lx.next();
        if t.is_punct("}") || t.is_end() || t.kind == Kind::Doc {
            return t.start;
        }
        if t.is_member_keyword() && !(prev.is_word("relation") || prev.is_word("permission")) {
            return t.start;
        }
        prev = t;
    }
}

/// An error if parentheses or angle brackets in `text[start..end]` nest deeper than [`MAX_NESTING`].
fn too_deep(text: &str, start: usize, end: usize) -> Option<Diagnostic> {
    let mut lx = Lexer::new(text, start);
    let mut depth = 0usize;
    loop {
        let t = lx.next();
        if t.start >= end || t.is_end() {
            return None;
        }
        if t.is_punct("(") || t.is_punct("<") {
            depth += 1;
            if depth > MAX_NESTING {
                return Some(expect::nesting(Span::new(t.start, t.end)));
            }
        } else if t.is_punct(")") || t.is_punct(">") {
            depth = depth.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests;
