//! Text to query AST. The only file that sees pest's `Rule` and `Pair`.

use super::ast::{Clauses, Op, Query, SetExpr, Spanned, Triple};
use super::split::{split, Piece};
use crate::api::SubjectFilter;
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::store::relationship::parse_time;
use crate::store::{ObjectRef, SubjectRef};
use crate::syntax::ast::Span;
use pest::iterators::Pair;
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/query.pest"]
struct QueryParser;

/// The keywords a query can start with.
pub const OPERATIONS: [&str; 6] = ["check", "who", "what", "expand", "explain", "subset"];

/// Parses every query of `text`, or reports every problem in it.
pub fn parse_queries(text: &str) -> Result<Vec<Query>, Diagnostics> {
    let mut queries = Vec::new();
    let mut errors = Vec::new();
    for piece in split(text) {
        match piece {
            Piece::Unclosed(d) => errors.push(d),
            Piece::Statement(span) => match parse_statement(text, span) {
                Ok(q) => queries.push(q),
                Err(mut ds) => errors.append(&mut ds),
            },
        }
    }
    if errors.is_empty() {
        Ok(queries)
    } else {
        Err(Diagnostics(errors))
    }
}

/// Parses exactly one query (the statement at `span` of `text`); spans point into `text`.
fn parse_statement(text: &str, span: Span) -> Result<Query, Vec<Diagnostic>> {
    let src = text.get(span.start..span.end).unwrap_or("");
    if let Some(at) = too_deep(src) {
        let at = span.start + at;
        return Err(vec![Diagnostic::new(
            "query-syntax",
            Span::new(at, at + 1),
            format!("JSON in `with` is nested deeper than {MAX_NESTING} levels"),
        )]);
    }
    let mut pairs = match QueryParser::parse(Rule::statement, src) {
        Ok(p) => p,
        Err(e) => return Err(vec![syntax_error(src, span.start, &e)]),
    };
    let query = pairs
        .next()
        .and_then(|statement| statement.into_inner().find(|p| p.as_rule() == Rule::query))
        .ok_or_else(|| vec![Diagnostic::new("query-syntax", span, "expected a query")])?;
    let mut lower = Lower { base: span.start, errors: Vec::new() };
    let q = lower.query(query);
    match q {
        Some(q) if lower.errors.is_empty() => Ok(q),
        _ => Err(lower.errors),
    }
}

/// How deep `{` and `[` may nest in a query (the parser and serde_json recurse on them).
const MAX_NESTING: usize = 64;

/// Where brackets first nest deeper than [`MAX_NESTING`], outside strings.
fn too_deep(src: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escape) = (0usize, false, false);
    for (i, b) in src.bytes().enumerate() {
        match b {
            _ if escape => escape = false,
            b'\\' if in_string => escape = true,
            b'"' => in_string = !in_string,
            b'{' | b'[' if !in_string => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(i);
                }
            }
            b'}' | b']' if !in_string => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

struct Lower {
    /// Offset of the statement in the whole text.
    base: usize,
    errors: Vec<Diagnostic>,
}

impl Lower {
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.base + s.start(), self.base + s.end())
    }

    fn error(&mut self, d: Diagnostic) {
        self.errors.push(d);
    }

    fn query(&mut self, pair: Pair<'_, Rule>) -> Option<Query> {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let op_pair = inner.next()?;
        let op = self.op(op_pair)?;
        let mut clauses = Clauses::default();
        let mut seen: Vec<(&'static str, Span)> = Vec::new();
        for c in inner {
            let cspan = self.span(&c);
            let name = match c.as_rule() {
                Rule::with_clause => "with",
                Rule::at_clause => "at",
                Rule::limit_clause => "limit",
                _ => "after",
            };
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                let d = Diagnostic::new("duplicate-clause", cspan, format!("`{name}` is given twice"))
                    .with_related(*first, "first given here")
                    .with_help(format!("keep one `{name}` clause"));
                self.error(d);
                continue;
            }
            seen.push((name, cspan));
            if matches!(name, "limit" | "after") && !matches!(op, Op::What { .. }) {
                let d = Diagnostic::new(
                    "clause-not-allowed",
                    cspan,
                    format!("`{name}` does not apply to `{}`", op.keyword()),
                )
                .with_help("`limit` and `after` page the results of `what`");
                self.error(d);
                continue;
            }
            self.clause(c, &mut clauses);
        }
        Some(Query { op, clauses, span })
    }

    fn op(&mut self, pair: Pair<'_, Rule>) -> Option<Op> {
        let rule = pair.as_rule();
        // Skip the keyword; the form (primary or alias) follows.
        let form = pair.into_inner().find(|p| !is_keyword(p.as_rule()))?;
        let form_rule = form.as_rule();
        let parts: Vec<Pair<'_, Rule>> = form.into_inner().filter(|p| !is_keyword(p.as_rule())).collect();
        let alias = matches!(form_rule, Rule::triple_alias | Rule::who_alias | Rule::what_alias);
        let op = match rule {
            Rule::check | Rule::explain => {
                let (o, p, s) = in_order(&parts, alias)?;
                let t =
                    Triple { object: self.object(o)?, permission: self.name(p), subject: self.subject(s)? };
                if rule == Rule::check {
                    Op::Check(t)
                } else {
                    Op::Explain(t)
                }
            }
            Rule::who => {
                let (o, p, f) = in_order(&parts, alias)?;
                Op::Who { object: self.object(o)?, permission: self.name(p), filter: self.filter(f) }
            }
            Rule::what if alias && parts.len() == 2 => {
                // `SUBJECT can PERMISSION`: every type that has the permission.
                Op::WhatAll { permission: self.name(parts.get(1)?), subject: self.subject(parts.first()?)? }
            }
            Rule::what => {
                let (t, p, s) = in_order(&parts, alias)?;
                Op::What { object_type: self.name(t), permission: self.name(p), subject: self.subject(s)? }
            }
            Rule::expand => {
                Op::Expand { object: self.object(parts.first()?)?, permission: self.name(parts.get(1)?) }
            }
            Rule::subset if form_rule == Rule::subset_primary => {
                // `SET in SUBJECT#PERMISSION`
                let set = self.set(parts.first()?);
                let holder: Vec<Pair<'_, Rule>> =
                    parts.get(1)?.clone().into_inner().filter(|p| !is_keyword(p.as_rule())).collect();
                let subject = self.subject(holder.first()?);
                let permission = self.name(holder.get(1)?);
                Op::Subset { set: set?, subject: subject?, permission }
            }
            Rule::subset => {
                // `SUBJECT can PERMISSION every SET`
                let subject = self.subject(parts.first()?);
                let permission = self.name(parts.get(1)?);
                let set = self.set(parts.get(2)?);
                Op::Subset { set: set?, subject: subject?, permission }
            }
            _ => return None,
        };
        Some(op)
    }

    fn name(&self, p: &Pair<'_, Rule>) -> Spanned<String> {
        Spanned::new(p.as_str().to_string(), self.span(p))
    }

    fn object(&mut self, p: &Pair<'_, Rule>) -> Option<Spanned<ObjectRef>> {
        let span = self.span(p);
        match ObjectRef::parse(p.as_str()) {
            Ok(o) => Some(Spanned::new(o, span)),
            Err(e) => {
                self.error(Diagnostic::new("invalid-object", span, e.reason));
                None
            }
        }
    }

    fn subject(&mut self, p: &Pair<'_, Rule>) -> Option<Spanned<SubjectRef>> {
        let span = self.span(p);
        match SubjectRef::parse(p.as_str()) {
            Ok(s) => Some(Spanned::new(s, span)),
            Err(e) => {
                self.error(Diagnostic::new("invalid-subject", span, e.reason));
                None
            }
        }
    }

    /// `object#relation` or `type#relation@subject`; the grammar also lets through the mixed forms
    /// (`object#relation@subject`, `type#relation`), reported here with what to change.
    fn set(&mut self, p: &Pair<'_, Rule>) -> Option<SetExpr> {
        let span = self.span(p);
        let parts: Vec<Pair<'_, Rule>> =
            p.clone().into_inner().filter(|p| !is_keyword(p.as_rule())).collect();
        let (head, relation) = (parts.first()?, parts.get(1)?);
        let relation = self.name(relation);
        match (head.as_rule(), parts.get(2)) {
            (Rule::object, None) => Some(SetExpr::SubjectsOf { object: self.object(head)?, relation }),
            (Rule::type_name, Some(s)) => {
                Some(SetExpr::RelatedTo { ty: self.name(head), relation, subject: self.subject(s)? })
            }
            (Rule::object, Some(_)) => {
                let ty = head.as_str().split(':').next().unwrap_or("");
                let rest = p.as_str().get(head.as_str().len()..).unwrap_or("");
                self.error(
                    Diagnostic::new(
                        "invalid-set",
                        self.span(head),
                        "a set of related objects names their type only",
                    )
                    .with_label("drop the `:id`")
                    .with_help(format!("did you mean `{ty}{rest}`?")),
                );
                None
            }
            _ => {
                let (ty, rel) = (head.as_str(), &relation.value);
                let message = "a set names an object and a relation, or a type, a relation and a subject";
                let help = format!(
                    "write `{ty}:ID#{rel}` (every X with `{ty}:ID#{rel}@X`) or `{ty}#{rel}@SUBJECT` \
                     (every `{ty}` X with `X#{rel}@SUBJECT`)"
                );
                self.error(Diagnostic::new("invalid-set", span, message).with_help(help));
                None
            }
        }
    }

    fn filter(&self, p: &Pair<'_, Rule>) -> Spanned<SubjectFilter> {
        let mut f = SubjectFilter::parse(p.as_str());
        if f.relation.as_deref() == Some("...") {
            f.relation = None;
        }
        Spanned::new(f, self.span(p))
    }

    fn clause(&mut self, c: Pair<'_, Rule>, out: &mut Clauses) {
        let Some(arg) = c.clone().into_inner().find(|p| !is_keyword(p.as_rule())) else { return };
        let span = self.span(&arg);
        let text = arg.as_str();
        match c.as_rule() {
            Rule::with_clause => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(m)) => out.context = Some(m),
                Ok(_) => self.error(Diagnostic::new("invalid-json", span, "`with` needs a JSON object")),
                Err(e) => {
                    let at = span.start + offset_of(text, e.line(), e.column());
                    let msg = format!("invalid JSON in `with`: {}", strip_position(&e.to_string()));
                    self.error(Diagnostic::new("invalid-json", Span::new(at, at + 1), msg));
                }
            },
            Rule::at_clause => match parse_time(text) {
                Ok(t) => out.at = Some(t),
                Err(m) => self.error(
                    Diagnostic::new("invalid-time", span, format!("`{text}` is not an RFC 3339 time"))
                        .with_label("expected a time")
                        .with_help(format!("{m}; the zone (`Z` or `+02:00`) is required")),
                ),
            },
            Rule::limit_clause => match text.parse::<usize>() {
                Ok(0) => self.error(
                    Diagnostic::new("invalid-limit", span, "`limit` must be at least 1")
                        .with_help("leave out `limit` for all results"),
                ),
                Ok(n) => out.limit = Some(n),
                Err(_) => {
                    self.error(Diagnostic::new("invalid-limit", span, format!("`{text}` is too large")))
                }
            },
            _ => {
                let cursor = if text.starts_with('"') {
                    match serde_json::from_str::<String>(text) {
                        Ok(s) => s,
                        Err(e) => {
                            let msg = format!("invalid quoted cursor: {}", strip_position(&e.to_string()));
                            self.error(Diagnostic::new("invalid-cursor", span, msg));
                            return;
                        }
                    }
                } else {
                    text.to_string()
                };
                out.after = Some(cursor);
            }
        }
    }
}

/// The parts of a form as `(object side, permission, subject side)`: the primary form writes them
/// in that order, the alias (`SUBJECT can PERMISSION OBJECT`) the other way round.
fn in_order<'p, 'i>(
    parts: &'p [Pair<'i, Rule>],
    alias: bool,
) -> Option<(&'p Pair<'i, Rule>, &'p Pair<'i, Rule>, &'p Pair<'i, Rule>)> {
    let (a, p, b) = (parts.first()?, parts.get(1)?, parts.get(2)?);
    Some(if alias { (b, p, a) } else { (a, p, b) })
}

/// Keywords and punctuation: rules that carry no value of their own.
fn is_keyword(r: Rule) -> bool {
    matches!(
        r,
        Rule::hash
            | Rule::at_sign
            | Rule::colon
            | Rule::kw_check
            | Rule::kw_explain
            | Rule::kw_who
            | Rule::kw_what
            | Rule::kw_expand
            | Rule::kw_subset
            | Rule::kw_can
            | Rule::kw_in
            | Rule::kw_every
            | Rule::kw_with
            | Rule::kw_at
            | Rule::kw_limit
            | Rule::kw_after
    )
}

/// Byte offset of a 1-based line and column (serde_json counts columns in bytes) in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize =
        text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum::<usize>();
    (line_start + column.saturating_sub(1)).min(text.len().saturating_sub(1))
}

/// serde_json appends " at line L column C"; the diagnostic shows the place itself.
fn strip_position(msg: &str) -> &str {
    msg.find(" at line ").map_or(msg, |i| &msg[..i])
}

/// A pest error as a diagnostic: what was expected, in words, at the place parsing stopped.
fn syntax_error(src: &str, base: usize, e: &pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<&'static str> = Vec::new();
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &e.variant {
        for r in positives {
            let d = describe(*r);
            if !expected.contains(&d) {
                expected.push(d);
            }
        }
    }
    // `subset` tries its alias (`SUBJECT can PERMISSION every SET`) too, which reads the set as a
    // subject; a query without `can` means the primary form, and `can` would mislead.
    let word = |w: &str, kw: &str| w.eq_ignore_ascii_case(kw);
    let mut words = src.split_whitespace();
    if words.next().is_some_and(|w| word(w, "subset")) && !words.any(|w| word(w, "can")) {
        expected.retain(|d| *d != describe(Rule::kw_can));
    }
    super::errors::syntax_diagnostic(src, base, pos, &expected)
}

/// A rule as a reader knows it.
fn describe(r: Rule) -> &'static str {
    match r {
        Rule::kw_check
        | Rule::kw_explain
        | Rule::kw_who
        | Rule::kw_what
        | Rule::kw_expand
        | Rule::kw_subset
        | Rule::query => "a query (`check`, `who`, `what`, `expand`, `explain` or `subset`)",
        Rule::kw_with | Rule::kw_at | Rule::kw_limit | Rule::kw_after => {
            "a clause (`with`, `at`, `limit` or `after`)"
        }
        Rule::kw_can => "`can`",
        Rule::kw_in => "`in`",
        Rule::kw_every => "`every`",
        Rule::hash => "`#`",
        Rule::at_sign => "`@`",
        Rule::colon => "`:`",
        Rule::triple | Rule::who_primary | Rule::object | Rule::object_perm => {
            "an object such as `document:readme`"
        }
        Rule::triple_alias | Rule::what_alias | Rule::subset_alias | Rule::subject | Rule::holder_subject => {
            "a subject such as `user:ann`"
        }
        Rule::subset_primary | Rule::object_set => "a set such as `role:auditor#grants`",
        Rule::holder => "a subject and permission such as `user:ann#exercise`",
        Rule::set_relation => "a relation name",
        Rule::who_alias | Rule::subject_filter => "a subject type such as `user` or `group#member`",
        Rule::what_primary | Rule::type_name => "a type name such as `document`",
        Rule::permission => "a permission name",
        Rule::subject_rel => "a relation name",
        Rule::object_id | Rule::wildcard => "an object id",
        Rule::json_object => "a JSON object such as `{\"ip\": \"10.0.0.1\"}`",
        Rule::timestamp => "a time such as `2024-05-01T00:00:00Z`",
        Rule::number => "a number",
        Rule::cursor => "a cursor",
        Rule::EOI => "the end of the query",
        _ => "something else",
    }
}

/// Whether the text is exactly one valid query (to test a suggested rewrite).
pub(super) fn is_query(text: &str) -> bool {
    QueryParser::parse(Rule::statement, text).is_ok()
}

/// Whether a whole file parses with the `file` rule (tests keep it in step with the splitter).
#[cfg(test)]
pub(super) fn file_parses(text: &str) -> bool {
    QueryParser::parse(Rule::file, text).is_ok()
}

/// "did you mean `check`?" for a first word that is no operation.
pub(super) fn operation_hint(word: &str) -> String {
    did_you_mean(&word.to_ascii_lowercase(), OPERATIONS).unwrap_or_else(|| {
        "a query starts with `check`, `who`, `what`, `expand`, `explain` or `subset`".to_string()
    })
}
