//! pest pairs to the spanned AST. The pairs come from one piece of the text (a type head, a member,
//! a condition head) that starts at `base`; spans are made absolute here.
//!
//! The grammar has already checked the shape, so a pair that is not what the grammar promises is
//! skipped rather than trusted; lowering reports only what the grammar cannot see: numbers too
//! large, unknown parameter types, duplicate parameters, doc comments on constraints, and
//! expressions nested too deeply.

use super::grammar::Rule;
use super::lexer::Lexer;
use super::{duplicate, duplicates, expect, MAX_NESTING};
use crate::diag::{did_you_mean, Diagnostic};
use crate::syntax::ast::{
    ArrowMode, ConstraintDef, ConstraintKind, Expr, Ident, Member, OnMode, Param, ParamType, PermissionDef,
    RelationDef, Span, SubjectKind, SubjectType, Trivia,
};
use pest::iterators::Pair;

pub(super) struct Lower<'d, 'a> {
    pub text: &'a str,
    pub base: usize,
    pub diags: &'d mut Vec<Diagnostic>,
}

type Pairs<'a> = Vec<Pair<'a, Rule>>;

impl<'a> Lower<'_, 'a> {
    pub fn type_head(&mut self, pair: Pair<'a, Rule>) -> (Option<String>, Ident) {
        let inner: Pairs<'a> = pair.into_inner().collect();
        let name = self.ident(find(&inner, Rule::type_name));
        (docs(&inner), name)
    }

    pub fn member(&mut self, pair: Pair<'a, Rule>) -> Option<Member> {
        let inner: Pairs<'a> = pair.into_inner().collect();
        let doc = docs(&inner);
        let def = inner.iter().find(|p| p.as_rule() != Rule::doc)?.clone();
        let span = self.trimmed_span(&def).into();
        let parts: Pairs<'a> = def.clone().into_inner().collect();
        match def.as_rule() {
            Rule::relation_def => {
                let subjects = parts
                    .iter()
                    .filter(|p| p.as_rule() == Rule::subject_type)
                    .map(|p| self.subject_type(p.clone()))
                    .collect();
                let rewrite = match parts.iter().find(|p| p.as_rule() == Rule::expr) {
                    Some(e) => Some(self.expr(e.clone())?.0),
                    None => None,
                };
                let name = self.ident(find(&parts, Rule::relation_name));
                Some(Member::Relation(RelationDef {
                    name,
                    doc,
                    subjects,
                    rewrite,
                    trivia: Trivia::default(),
                    span,
                }))
            }
            Rule::permission_def => {
                let expr = self.expr(find(&parts, Rule::expr)?.clone())?.0;
                let name = self.ident(find(&parts, Rule::permission_name));
                Some(Member::Permission(PermissionDef { name, doc, expr, trivia: Trivia::default(), span }))
            }
            Rule::constraint_def => {
                if doc.is_some() {
                    let first = inner.first().map(|p| self.span(p)).unwrap_or_default();
                    let d =
                        Diagnostic::new("doc-comment", first, "a doc comment cannot document a constraint")
                            .with_help("use `//` for a plain comment");
                    self.diags.push(d);
                }
                let kind =
                    self.constraint(parts.iter().find(|p| p.as_rule() != Rule::kw_constraint)?.clone())?;
                Some(Member::Constraint(ConstraintDef { kind, trivia: Trivia::default(), span }))
            }
            _ => None,
        }
    }

    fn subject_type(&mut self, pair: Pair<'a, Rule>) -> SubjectType {
        let span = self.trimmed_span(&pair).into();
        let mut ty = Ident::new("", Span::default());
        let mut kind = SubjectKind::Direct;
        let (mut condition, mut expiration) = (None, false);
        for p in pair.into_inner().flat_map(|p| p.into_inner()) {
            match p.as_rule() {
                Rule::subject_type_name => ty = self.ident(Some(&p)),
                Rule::wildcard => kind = SubjectKind::Wildcard,
                Rule::userset => {
                    let parts: Pairs<'a> = p.into_inner().collect();
                    kind = SubjectKind::Userset(self.ident(find(&parts, Rule::userset_relation)));
                }
                Rule::condition_ref => condition = Some(self.ident(Some(&p))),
                Rule::expiration_kw => expiration = true,
                _ => {}
            }
        }
        SubjectType { ty, kind, condition, expiration, span }
    }

    /// The expression and its depth (a name is 1 deep).
    fn expr(&mut self, pair: Pair<'a, Rule>) -> Option<(Expr, usize)> {
        let rule = pair.as_rule();
        let span = self.span(&pair);
        let mut operands = Vec::new();
        for p in pair.into_inner().filter(|p| !matches!(p.as_rule(), Rule::minus | Rule::plus | Rule::amp)) {
            operands.push(self.operand(p)?);
        }
        if operands.len() == 1 {
            return operands.pop();
        }
        let depth = match rule {
            // `a - b - c` nests to the left: each further operand adds a level.
            Rule::expr => {
                let first = operands.first().map_or(0, |(_, d)| *d);
                operands.iter().skip(1).fold(first, |d, (_, od)| 1 + d.max(*od))
            }
            _ => 1 + operands.iter().map(|(_, d)| *d).max().unwrap_or(0),
        };
        if depth > MAX_NESTING {
            self.diags.push(expect::nesting(span));
            return None;
        }
        let mut exprs = operands.into_iter().map(|(e, _)| e);
        let expr = match rule {
            Rule::expr => {
                let first = exprs.next()?;
                exprs.fold(first, |l, r| Expr::Exclusion(Box::new(l), Box::new(r)))
            }
            Rule::union => Expr::Union(exprs.collect()),
            _ => Expr::Intersection(exprs.collect()),
        };
        Some((expr, depth))
    }

    fn operand(&mut self, pair: Pair<'a, Rule>) -> Option<(Expr, usize)> {
        let span = self.span(&pair);
        let expr = match pair.as_rule() {
            Rule::expr | Rule::union | Rule::intersection => return self.expr(pair),
            Rule::group => return self.expr(pair.into_inner().find(|p| p.as_rule() == Rule::expr)?),
            Rule::this_kw => Expr::This(span.into()),
            Rule::nil_kw => Expr::Nil(span.into()),
            Rule::ref_name => Expr::Ref(self.ident(Some(&pair))),
            Rule::arrow | Rule::arrow_call => {
                let parts: Pairs<'a> = pair.into_inner().collect();
                let all = find(&parts, Rule::arrow_fn).is_some_and(|f| f.as_str() == "all");
                let target = find(&parts, Rule::arrow_target).or(find(&parts, Rule::call_target));
                Expr::Arrow {
                    tupleset: self.ident(find(&parts, Rule::tupleset)),
                    target: self.ident(target),
                    mode: if all { ArrowMode::All } else { ArrowMode::Any },
                }
            }
            _ => return None,
        };
        Some((expr, 1))
    }

    fn constraint(&mut self, pair: Pair<'a, Rule>) -> Option<ConstraintKind> {
        let rule = pair.as_rule();
        let span = self.span(&pair);
        let parts: Pairs<'a> = pair.into_inner().collect();
        let mut relations: Vec<Ident> = parts
            .iter()
            .filter(|p| p.as_rule() == Rule::constraint_relation)
            .map(|p| self.ident(Some(p)))
            .collect();
        let count = match find(&parts, Rule::count) {
            Some(c) => Some(self.count(c)?),
            None => None,
        };
        match (rule, count) {
            (Rule::at_most, Some(count)) => {
                Some(ConstraintKind::AtMost { count, relation: relations.pop()? })
            }
            (Rule::at_least, Some(count)) => {
                Some(ConstraintKind::AtLeast { count, relation: relations.pop()? })
            }
            (Rule::requires, _) => {
                if relations.len() < 2 {
                    return None;
                }
                let required = relations.split_off(1);
                Some(ConstraintKind::Requires { relation: relations.pop()?, required })
            }
            (Rule::one_of, _) if relations.len() < 2 => {
                let d = Diagnostic::new("syntax", span, "`one of` needs at least two relations")
                    .with_help("list the relations of which a subject may hold at most one: `one of (a, b)`");
                self.diags.push(d);
                None
            }
            (Rule::one_of, _) => Some(ConstraintKind::OneOf { relations }),
            (Rule::on_object, _) => {
                let mode = if find(&parts, Rule::not_kw).is_some() { OnMode::Not } else { OnMode::Only };
                // The relations before the keyword are constrained; those after it are the guards.
                let split = parts
                    .iter()
                    .take_while(|p| !matches!(p.as_rule(), Rule::only_kw | Rule::not_kw))
                    .filter(|p| p.as_rule() == Rule::constraint_relation)
                    .count();
                let guards = relations.split_off(split.min(relations.len()));
                if relations.is_empty() || guards.is_empty() {
                    return None;
                }
                Some(ConstraintKind::OnObject { relations, mode, guards })
            }
            _ => None,
        }
    }

    fn count(&mut self, pair: &Pair<'a, Rule>) -> Option<u32> {
        let parsed = pair.as_str().parse::<u32>();
        if parsed.is_err() {
            let d = Diagnostic::new(
                "invalid-count",
                self.span(pair),
                format!("count `{}` is too large", pair.as_str()),
            )
            .with_help(format!("a count is at most {}", u32::MAX));
            self.diags.push(d);
        }
        parsed.ok()
    }

    pub fn condition_head(&mut self, pair: Pair<'a, Rule>) -> (Option<String>, Ident, Vec<Param>) {
        let inner: Pairs<'a> = pair.into_inner().collect();
        let name = self.ident(find(&inner, Rule::condition_name));
        let mut params = Vec::new();
        for p in inner.iter().filter(|p| p.as_rule() == Rule::param) {
            let parts: Pairs<'a> = p.clone().into_inner().collect();
            let ty_pair = find(&parts, Rule::param_type);
            let ty = ty_pair.and_then(|t| self.param_type(t.clone()));
            let ty_span = ty_pair.map(|t| self.span(t)).unwrap_or_default().into();
            let param_name = self.ident(find(&parts, Rule::param_name));
            params.push(Param { name: param_name, ty: ty.unwrap_or(ParamType::Any), ty_span });
        }
        for (first, dup) in duplicates(params.iter().map(|p| &p.name)) {
            let msg = format!("parameter `{}` appears twice in condition `{}`", dup.name, name.name);
            self.diags.push(duplicate("duplicate-param", first, dup, msg));
        }
        (docs(&inner), name, params)
    }

    /// `int`, `list<string>`, ...; `None` after reporting an unknown type or a wrong type argument.
    fn param_type(&mut self, pair: Pair<'a, Rule>) -> Option<ParamType> {
        let parts: Pairs<'a> = pair.into_inner().collect();
        let word = find(&parts, Rule::type_word)?;
        let name = word.as_str();
        let arg = match find(&parts, Rule::param_type) {
            Some(a) => Some(self.param_type(a.clone())?),
            None => None,
        };
        let span = self.span(word);
        match (name, arg) {
            ("list", Some(t)) => Some(ParamType::List(Box::new(t))),
            ("map", Some(t)) => Some(ParamType::Map(Box::new(t))),
            ("list" | "map", None) => {
                let d =
                    Diagnostic::new("param-type-arguments", span, format!("`{name}` needs an element type"))
                        .with_help(format!(
                            "write the type of its elements in angle brackets: `{name}<string>`"
                        ));
                self.diags.push(d);
                None
            }
            (_, arg) => match (ParamType::from_name(name), arg) {
                (Some(t), None) => Some(t),
                (Some(_), Some(_)) => {
                    let d = Diagnostic::new(
                        "param-type-arguments",
                        span,
                        format!("`{name}` takes no type argument"),
                    )
                    .with_help("only `list<T>` and `map<T>` take a type argument");
                    self.diags.push(d);
                    None
                }
                (None, _) => {
                    let help = did_you_mean(name, ParamType::NAMES).unwrap_or_else(|| {
                        format!(
                            "parameter types are {}",
                            ParamType::NAMES.map(|t| format!("`{t}`")).join(", ")
                        )
                    });
                    let msg = format!("unknown parameter type `{name}`");
                    self.diags.push(Diagnostic::new("unknown-param-type", span, msg).with_help(help));
                    None
                }
            },
        }
    }

    fn span(&self, pair: &Pair<'a, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.base + s.start(), self.base + s.end())
    }

    /// The span of `pair` without the whitespace and comments pest lets a rule end with.
    fn trimmed_span(&self, pair: &Pair<'a, Rule>) -> Span {
        let span = self.span(pair);
        let mut lx = Lexer::new(self.text, span.start);
        let mut end = span.start;
        loop {
            let t = lx.next();
            if t.is_end() || t.end > span.end {
                return Span::new(span.start, end);
            }
            end = t.end;
        }
    }

    fn ident(&self, pair: Option<&Pair<'a, Rule>>) -> Ident {
        match pair {
            Some(p) => Ident::new(p.as_str(), self.span(p)),
            None => Ident::new("", Span::default()),
        }
    }
}

fn find<'p, 'a>(pairs: &'p Pairs<'a>, rule: Rule) -> Option<&'p Pair<'a, Rule>> {
    pairs.iter().find(|p| p.as_rule() == rule)
}

/// The text of the `doc` pairs: each line without `///` and one following space, without trailing
/// whitespace, joined by `\n`.
fn docs(pairs: &Pairs<'_>) -> Option<String> {
    let lines: Vec<&str> = pairs
        .iter()
        .filter(|p| p.as_rule() == Rule::doc)
        .map(|p| {
            let text = p.as_str().get(3..).unwrap_or("");
            text.strip_prefix(' ').unwrap_or(text).trim_end()
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}
