//! Import of OpenFGA models: the DSL (`.fga`, schema 1.1) through `grammar/openfga.pest`, and the
//! JSON form of an authorization model ([`parse_openfga_json`]), both into [`ast::Schema`].
//!
//! Mapping: a `define` with direct types `[...]` becomes an [`ast::RelationDef`] whose subjects are
//! those types; its rewrite is `None` when the definition is only the direct types, else the whole
//! expression with [`Expr::This`] standing for the direct part (`define viewer: [user] or editor`
//! is `relation viewer: user = this + editor`). A `define` without direct types becomes an
//! [`ast::PermissionDef`]. `or`, `and`, `but not` are union, intersection and exclusion; `X from Y`
//! is the any-arrow `Y->X`. Conditions become [`ast::ConditionDef`]s.
//!
//! The parsers check what OpenFGA's parser checks (syntax, duplicate relations, conditions and
//! parameters, the schema version); [`crate::syntax::openfga_check`] checks the model itself.
//! Modular models (an `fga.mod` manifest naming module files with `module` and `extend type`) are
//! combined in [`modules`].

use crate::diag::{Diagnostic, Diagnostics};
use crate::syntax::ast::{
    ArrowMode, ConditionDef, Expr, Ident, Item, Member, Param, ParamType, PermissionDef, RelationDef, Schema,
    Span, SpanEq, SubjectKind, SubjectType, Trivia, TypeDef,
};
use crate::syntax::import_diag::{syntax_error, trimmed, MAX_NESTING};
use pest::iterators::Pair;
use pest::Parser as _;
use std::collections::HashMap;

mod json;
pub mod modules;

pub use json::parse_openfga_json;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/openfga.pest"]
struct OpenFgaGrammar;

/// The schema versions Purview imports: 1.1, and 1.2 (what OpenFGA combines modular models into).
pub(crate) const SCHEMA_VERSIONS: [&str; 2] = ["1.1", "1.2"];

/// Parses an OpenFGA model in the DSL into Purview's AST, reporting every problem found. A
/// module of a modular model is refused: it is read with the others through its `fga.mod`
/// ([`modules`]).
pub fn parse_openfga_dsl(text: &str) -> Result<Schema, Diagnostics> {
    let (file, mut diags) = parse_dsl_file(text)?;
    if let Some(span) = file.module {
        // Reported last, so that the problems of the file itself come first.
        diags.push(
            Diagnostic::new("unsupported-openfga-module", span, "this file is one module of a modular model")
                .with_help("give the model's `fga.mod` manifest instead, which names all of its modules"),
        );
    }
    if diags.is_empty() {
        let items = file.items.into_iter().map(|(_, i)| i).collect();
        Ok(Schema { items, end_comments: Vec::new() })
    } else {
        Err(Diagnostics(diags))
    }
}

/// One DSL file: its `module` header, if any, and its items, each type marked when written
/// `extend type`.
pub(crate) struct DslFile {
    pub module: Option<Span>,
    pub items: Vec<(bool, Item)>,
}

/// Parses one DSL file; `Err` for a syntax error, else the file and the problems found in it.
pub(crate) fn parse_dsl_file(text: &str) -> Result<(DslFile, Vec<Diagnostic>), Diagnostics> {
    let mut root = OpenFgaGrammar::parse(Rule::model, text).map_err(|e| {
        let d = syntax_error(&e, text, describe);
        let found = text.get(d.span.start..d.span.end).unwrap_or("");
        let d = if matches!(found, "or" | "and" | "but") {
            d.with_help("`or`, `and` and `but not` do not mix without parentheses: write `(a and b) or c`")
        } else {
            d
        };
        Diagnostics(vec![d])
    })?;
    let model = root.next().map(|p| p.into_inner()).into_iter().flatten();
    let mut lower = Lower { text, diags: Vec::new() };
    let mut items = Vec::new();
    let mut module: Option<Span> = None;
    let mut extended: HashMap<String, Span> = HashMap::new();
    let mut conditions: HashMap<String, Span> = HashMap::new();
    for pair in model {
        match pair.as_rule() {
            Rule::model_header => lower.header(pair),
            Rule::module_header => module = Some(span_of(&pair)),
            Rule::type_def => {
                let (extend, def) = lower.type_def(pair);
                if extend {
                    lower.extend(&def.name, module.is_some(), &mut extended);
                }
                items.push((extend, Item::Type(def)));
            }
            Rule::condition_def => {
                if let Some(c) = lower.condition(pair) {
                    if let Some(first) = conditions.get(&c.name.name) {
                        lower.diags.push(
                            Diagnostic::new(
                                "duplicate-condition",
                                c.name.span,
                                format!("condition `{}` is defined twice", c.name.name),
                            )
                            .with_related(*first, "first defined here"),
                        );
                    } else {
                        conditions.insert(c.name.name.clone(), c.name.span);
                    }
                    items.push((false, Item::Condition(c)));
                }
            }
            _ => {}
        }
    }
    Ok((DslFile { module, items }, lower.diags))
}

fn describe(rule: &Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of input",
        // Reported alone when nothing at the start of the file fits.
        Rule::model => "`model`",
        // Both start with a line break; reported when the line goes on instead.
        Rule::relations | Rule::relation_decl => "end of line",
        Rule::model_header | Rule::kw_model => "`model`",
        Rule::module_header | Rule::kw_module => "`module`",
        Rule::kw_schema => "`schema`",
        Rule::schema_version => "a schema version such as `1.1`",
        Rule::type_def | Rule::kw_type => "`type`",
        Rule::kw_extend => "`extend`",
        Rule::kw_relations => "`relations`",
        Rule::kw_define => "`define`",
        Rule::condition_def | Rule::kw_condition => "`condition`",
        Rule::name | Rule::rel_group | Rule::restriction | Rule::restriction_type => "a name",
        Rule::rel_expr | Rule::rel_expr_nd => "a relation definition",
        Rule::direct | Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::rel_paren | Rule::rel_paren_nd | Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::or_tail | Rule::kw_or => "`or`",
        Rule::and_tail | Rule::kw_and => "`and`",
        Rule::but_not_tail | Rule::kw_but_not => "`but not`",
        Rule::kw_from => "`from`",
        Rule::kw_with => "`with`",
        Rule::wildcard => "`:*`",
        Rule::userset => "`#`",
        Rule::param => "a parameter",
        Rule::param_type | Rule::scalar_type => "a parameter type",
        Rule::container => "`list` or `map`",
        Rule::condition_expr => "a condition expression",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::langle => "`<`",
        Rule::rangle => "`>`",
        Rule::colon => "`:`",
        Rule::comma => "`,`",
        _ => return None,
    })
}

fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

fn ident_of(pair: &Pair<'_, Rule>) -> Ident {
    Ident::new(pair.as_str(), span_of(pair))
}

struct Lower<'t> {
    text: &'t str,
    diags: Vec<Diagnostic>,
}

impl<'t> Lower<'t> {
    fn header(&mut self, pair: Pair<'t, Rule>) {
        if let Some(v) = pair.into_inner().find(|p| p.as_rule() == Rule::schema_version) {
            if !SCHEMA_VERSIONS.contains(&v.as_str()) {
                self.diags.push(
                    Diagnostic::new(
                        "openfga-schema-version",
                        span_of(&v),
                        format!("unsupported schema version `{}`", v.as_str()),
                    )
                    .with_help("Purview imports OpenFGA models of schema 1.1 (and 1.2, the schema of combined modules)"),
                );
            }
        }
    }

    fn extend(&mut self, name: &Ident, in_module: bool, extended: &mut HashMap<String, Span>) {
        if !in_module {
            self.diags.push(
                Diagnostic::new("openfga-extend", name.span, "`extend` can only be used in a modular model")
                    .with_help("define the relations in the type itself"),
            );
        } else if let Some(first) = extended.get(&name.name) {
            self.diags.push(
                Diagnostic::new(
                    "duplicate-extend",
                    name.span,
                    format!("type `{}` is already extended in this file", name.name),
                )
                .with_related(*first, "first extended here"),
            );
        } else {
            extended.insert(name.name.clone(), name.span);
        }
    }

    /// A `type` and whether it was written `extend type`.
    fn type_def(&mut self, pair: Pair<'t, Rule>) -> (bool, TypeDef) {
        let span = span_of(&pair);
        let mut extend = false;
        let mut name = Ident::new("", span);
        let mut members: Vec<Member> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_extend => extend = true,
                Rule::name => name = ident_of(&p),
                Rule::relations => {
                    for decl in p.into_inner().filter(|d| d.as_rule() == Rule::relation_decl) {
                        let Some(m) = self.relation(decl) else { continue };
                        let Some(rel) = member_name(&m) else { continue };
                        if let Some(first) = seen.get(&rel.name) {
                            self.diags.push(
                                Diagnostic::new(
                                    "duplicate-relation",
                                    rel.span,
                                    format!(
                                        "relation `{}` is already defined in type `{}`",
                                        rel.name, name.name
                                    ),
                                )
                                .with_related(*first, "first defined here"),
                            );
                        } else {
                            seen.insert(rel.name.clone(), rel.span);
                        }
                        members.push(m);
                    }
                }
                _ => {}
            }
        }
        (extend, TypeDef::new(name, None, members, span))
    }

    /// `define name: ...` as a relation (with direct types) or a permission (without).
    fn relation(&mut self, pair: Pair<'t, Rule>) -> Option<Member> {
        let mut inner = pair.into_inner().skip_while(|p| p.as_rule() != Rule::kw_define);
        let start = inner.next().map(|p| span_of(&p).start)?;
        let name = ident_of(&inner.next()?);
        let body = inner.find(|p| p.as_rule() == Rule::rel_expr)?;
        let span: SpanEq = Span::new(start, span_of(&body).end).into();
        let mut subjects = None;
        let expr = self.rel_expr(body, &mut subjects, 0)?;
        Some(match subjects {
            Some(subjects) => {
                let rewrite = if matches!(expr, Expr::This(_)) { None } else { Some(expr) };
                Member::Relation(RelationDef {
                    name,
                    doc: None,
                    subjects,
                    rewrite,
                    trivia: Trivia::default(),
                    span,
                })
            }
            None => {
                Member::Permission(PermissionDef { name, doc: None, expr, trivia: Trivia::default(), span })
            }
        })
    }

    /// A `rel_expr`/`rel_expr_nd`; direct types found on the way are stored in `subjects`.
    fn rel_expr(
        &mut self,
        pair: Pair<'t, Rule>,
        subjects: &mut Option<Vec<SubjectType>>,
        depth: usize,
    ) -> Option<Expr> {
        let span = span_of(&pair);
        if depth >= MAX_NESTING {
            self.diags.push(
                Diagnostic::new("nesting-too-deep", span, "parentheses nest too deeply")
                    .with_help(format!("nest fewer than {MAX_NESTING} levels")),
            );
            return None;
        }
        let mut inner = pair.into_inner();
        let first = inner.next()?;
        let head = match first.as_rule() {
            Rule::direct => {
                let direct = span_of(&first);
                *subjects = Some(
                    first
                        .into_inner()
                        .filter(|p| p.as_rule() == Rule::restriction)
                        .map(restriction)
                        .collect(),
                );
                Some(Expr::This(direct.into()))
            }
            _ => self.operand(first, subjects, depth),
        };
        let Some(tail) = inner.next() else { return head };
        let rule = tail.as_rule();
        let operands: Vec<Option<Expr>> = tail
            .into_inner()
            .filter(|p| !matches!(p.as_rule(), Rule::kw_or | Rule::kw_and | Rule::kw_but_not))
            .map(|p| self.operand(p, &mut None, depth))
            .collect();
        let mut operands: Vec<Expr> = operands.into_iter().collect::<Option<_>>()?;
        let head = head?;
        Some(match rule {
            Rule::or_tail => Expr::Union(std::iter::once(head).chain(operands).collect()),
            Rule::and_tail => Expr::Intersection(std::iter::once(head).chain(operands).collect()),
            _ => Expr::Exclusion(Box::new(head), Box::new(operands.pop()?)),
        })
    }

    /// `name`, `name from tupleset` or a parenthesized definition.
    fn operand(
        &mut self,
        pair: Pair<'t, Rule>,
        subjects: &mut Option<Vec<SubjectType>>,
        depth: usize,
    ) -> Option<Expr> {
        match pair.as_rule() {
            Rule::rel_group => {
                let mut names = pair.into_inner().filter(|p| p.as_rule() == Rule::name);
                let target = ident_of(&names.next()?);
                Some(match names.next() {
                    Some(ts) => Expr::Arrow { tupleset: ident_of(&ts), target, mode: ArrowMode::Any },
                    None => Expr::Ref(target),
                })
            }
            Rule::rel_paren | Rule::rel_paren_nd => {
                let inner =
                    pair.into_inner().find(|p| matches!(p.as_rule(), Rule::rel_expr | Rule::rel_expr_nd))?;
                self.rel_expr(inner, subjects, depth + 1)
            }
            _ => None,
        }
    }

    fn condition(&mut self, pair: Pair<'t, Rule>) -> Option<ConditionDef> {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let _kw = inner.next();
        let name = ident_of(&inner.next()?);
        let mut params: Vec<Param> = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        let mut expr = (String::new(), Span::new(span.end, span.end));
        for p in inner {
            match p.as_rule() {
                Rule::param => {
                    let mut q = p.into_inner().filter(|q| q.as_rule() != Rule::colon);
                    let (Some(pname), Some(pty)) = (q.next(), q.next()) else { continue };
                    let pname = ident_of(&pname);
                    if let Some(first) = seen.get(&pname.name) {
                        self.diags.push(
                            Diagnostic::new(
                                "duplicate-parameter",
                                pname.span,
                                format!(
                                    "parameter `{}` is already defined in condition `{}`",
                                    pname.name, name.name
                                ),
                            )
                            .with_related(*first, "first defined here"),
                        );
                        continue;
                    }
                    seen.insert(pname.name.clone(), pname.span);
                    let ty_span = span_of(&pty);
                    params.push(Param { name: pname, ty: param_type(pty)?, ty_span: ty_span.into() });
                }
                Rule::condition_expr => expr = trimmed(self.text, span_of(&p)),
                _ => {}
            }
        }
        let (expr, expr_span) = expr;
        Some(ConditionDef {
            name,
            doc: None,
            params,
            expr,
            expr_span: expr_span.into(),
            trivia: Trivia::default(),
            span: span.into(),
        })
    }
}

fn member_name(m: &Member) -> Option<&Ident> {
    match m {
        Member::Relation(r) => Some(&r.name),
        Member::Permission(p) => Some(&p.name),
        Member::Constraint(_) => None,
    }
}

/// `user`, `user:*`, `group#member`, each optionally `with condition`.
fn restriction(pair: Pair<'_, Rule>) -> SubjectType {
    let span = span_of(&pair);
    let mut st = SubjectType {
        ty: Ident::new("", span),
        kind: SubjectKind::Direct,
        condition: None,
        expiration: false,
        span: span.into(),
    };
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::restriction_type => {
                for q in p.into_inner() {
                    match q.as_rule() {
                        Rule::name => st.ty = ident_of(&q),
                        Rule::wildcard => st.kind = SubjectKind::Wildcard,
                        Rule::userset => {
                            if let Some(r) = q.into_inner().next() {
                                st.kind = SubjectKind::Userset(ident_of(&r));
                            }
                        }
                        _ => {}
                    }
                }
            }
            Rule::name => st.condition = Some(ident_of(&p)),
            _ => {}
        }
    }
    st
}

fn param_type(pair: Pair<'_, Rule>) -> Option<ParamType> {
    let mut container = None;
    let mut scalar = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::container => container = Some(p.as_str()),
            Rule::scalar_type => scalar = ParamType::from_name(p.as_str()),
            _ => {}
        }
    }
    let scalar = scalar?;
    Some(match container {
        Some("list") => ParamType::List(Box::new(scalar)),
        Some(_) => ParamType::Map(Box::new(scalar)),
        None => scalar,
    })
}

#[cfg(test)]
mod tests;
