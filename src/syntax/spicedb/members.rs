//! Lowering of relations, permissions (expressions and arrows) and caveats.

use super::{ident_of, span_of, Lower, Rule};
use crate::diag::{did_you_mean, Diagnostic};
use crate::syntax::ast::{
    ArrowMode, ConditionDef, Expr, Ident, Param, ParamType, PermissionDef, RelationDef, SpanEq, SubjectKind,
    SubjectType, Trivia,
};
use crate::syntax::import_diag::{trimmed, MAX_NESTING};
use pest::iterators::Pair;

impl<'t> Lower<'t> {
    pub(super) fn relation(&mut self, pair: Pair<'t, Rule>, doc: Option<String>) -> Option<RelationDef> {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let _kw = inner.next();
        let name = ident_of(&inner.next()?);
        self.check_name(&name, "relation");
        let mut subjects = Vec::new();
        for p in inner.filter(|p| p.as_rule() == Rule::subject_type) {
            subjects.push(self.subject_type(p));
        }
        Some(RelationDef { name, doc, subjects, rewrite: None, trivia: Trivia::default(), span: span.into() })
    }

    fn subject_type(&mut self, pair: Pair<'t, Rule>) -> SubjectType {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let ty = inner.next().map(|p| ident_of(&p)).unwrap_or_else(|| Ident::new("", span));
        let mut st = SubjectType {
            ty,
            kind: SubjectKind::Direct,
            condition: None,
            expiration: false,
            span: span.into(),
        };
        for p in inner {
            match p.as_rule() {
                Rule::subject_wildcard => st.kind = SubjectKind::Wildcard,
                Rule::subject_rel => {
                    if let Some(rel) = p.into_inner().find(|p| p.as_rule() == Rule::ident) {
                        st.kind = SubjectKind::Userset(ident_of(&rel));
                    }
                }
                Rule::with_clause => self.with_clause(p, &mut st),
                _ => {}
            }
        }
        st
    }

    /// `with expiration`, `with caveat` or `with caveat and expiration`.
    fn with_clause(&mut self, pair: Pair<'t, Rule>, st: &mut SubjectType) {
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_expiration => {
                    if self.flags.contains("expiration") || !self.caveats.contains("expiration") {
                        self.require_flag("expiration", span_of(&p), "`with expiration`");
                        st.expiration = true;
                    } else {
                        // Without `use expiration`, `expiration` is an ordinary caveat name.
                        st.condition = Some(ident_of(&p));
                    }
                }
                Rule::caveat_ref => {
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::type_path => st.condition = Some(ident_of(&q)),
                            Rule::kw_expiration => {
                                self.require_flag("expiration", span_of(&q), "`and expiration`");
                                st.expiration = true;
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }

    pub(super) fn permission(&mut self, pair: Pair<'t, Rule>, doc: Option<String>) -> Option<PermissionDef> {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let _kw = inner.next();
        let name = ident_of(&inner.next()?);
        self.check_name(&name, "permission");
        let expr = inner.find(|p| p.as_rule() == Rule::expr)?;
        let expr = self.expr(expr, 0)?;
        Some(PermissionDef { name, doc, expr, trivia: Trivia::default(), span: span.into() })
    }

    /// Lowers `expr`, `inter`, `union` and operands. `None` when a diagnostic was recorded.
    fn expr(&mut self, pair: Pair<'t, Rule>, depth: usize) -> Option<Expr> {
        let span = span_of(&pair);
        match pair.as_rule() {
            Rule::expr => {
                // `a - b - c` is `(a - b) - c`.
                let mut parts = pair.into_inner().filter(|p| p.as_rule() != Rule::minus);
                let first = self.expr(parts.next()?, depth);
                parts.fold(first, |acc, p| {
                    let rhs = self.expr(p, depth);
                    Some(Expr::Exclusion(Box::new(acc?), Box::new(rhs?)))
                })
            }
            Rule::inter | Rule::union => {
                let rule = pair.as_rule();
                let parts: Vec<Option<Expr>> = pair
                    .into_inner()
                    .filter(|p| !matches!(p.as_rule(), Rule::amp | Rule::plus))
                    .map(|p| self.expr(p, depth))
                    .collect();
                let mut parts: Vec<Expr> = parts.into_iter().collect::<Option<_>>()?;
                if parts.len() == 1 {
                    return parts.pop();
                }
                Some(if rule == Rule::inter { Expr::Intersection(parts) } else { Expr::Union(parts) })
            }
            Rule::paren => {
                if depth >= MAX_NESTING {
                    self.diags.push(
                        Diagnostic::new("nesting-too-deep", span, "parentheses nest too deeply")
                            .with_help(format!("nest fewer than {MAX_NESTING} levels")),
                    );
                    return None;
                }
                let inner = pair.into_inner().find(|p| p.as_rule() == Rule::expr)?;
                self.expr(inner, depth + 1)
            }
            Rule::nil => Some(Expr::Nil(SpanEq(span))),
            // Under `use self`, `self` is the resource itself as a subject; it cannot name a
            // relation, so the schema compiler reads the reference as that.
            Rule::self_expr if self.flags.contains("self") => Some(Expr::Ref(ident_of(&pair))),
            Rule::self_expr | Rule::ident => {
                let id = ident_of(&pair);
                self.check_name(&id, "relation");
                Some(Expr::Ref(id))
            }
            Rule::arrow => self.arrow(pair),
            _ => None,
        }
    }

    fn arrow(&mut self, pair: Pair<'t, Rule>) -> Option<Expr> {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let tupleset = ident_of(&inner.next()?);
        self.check_name(&tupleset, "relation");
        let steps: Vec<Pair<'t, Rule>> = inner.collect();
        if steps.len() > 1 {
            let d = Diagnostic::new("unsupported-nested-arrow", span, "nested arrows are not supported")
                .with_help(
                    "give the intermediate arrow a permission of its own and arrow to that permission",
                );
            self.diags.push(d);
            return None;
        }
        let step = steps.into_iter().next()?;
        let mut mode = ArrowMode::Any;
        let mut target = None;
        for p in step.into_inner() {
            match p.as_rule() {
                Rule::arrow_func if p.as_str() == "all" => mode = ArrowMode::All,
                Rule::ident => target = Some(ident_of(&p)),
                _ => {}
            }
        }
        let target = target?;
        self.check_name(&target, "relation");
        Some(Expr::Arrow { tupleset, target, mode })
    }

    pub(super) fn caveat(&mut self, pair: Pair<'t, Rule>, doc: Option<String>) -> Option<ConditionDef> {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let _kw = inner.next();
        let name = ident_of(&inner.next()?);
        self.check_name(&name, "caveat");
        let mut params: Vec<Param> = Vec::new();
        let mut expr = None;
        for p in inner {
            match p.as_rule() {
                Rule::param => {
                    let mut q = p.into_inner();
                    let (Some(pname), Some(pty)) = (q.next(), q.next()) else { continue };
                    let ty_span = span_of(&pty);
                    if let Some(ty) = self.param_type(pty, 0) {
                        params.push(Param { name: ident_of(&pname), ty, ty_span: ty_span.into() });
                    }
                }
                Rule::caveat_expr => expr = Some(trimmed(self.text, span_of(&p))),
                _ => {}
            }
        }
        let (expr, expr_span) = expr?;
        Some(ConditionDef {
            name,
            doc,
            params,
            expr,
            expr_span: expr_span.into(),
            trivia: Trivia::default(),
            span: span.into(),
        })
    }

    fn param_type(&mut self, pair: Pair<'t, Rule>, depth: usize) -> Option<ParamType> {
        let span = span_of(&pair);
        let mut inner = pair.into_inner();
        let name = inner.next()?;
        let args: Vec<Pair<'t, Rule>> = inner.filter(|p| p.as_rule() == Rule::param_type).collect();
        let n = name.as_str();
        if depth >= MAX_NESTING {
            self.diags.push(Diagnostic::new("nesting-too-deep", span, "parameter type nests too deeply"));
            return None;
        }
        match (n, args.len()) {
            ("list" | "map", 1) => {
                let arg = self.param_type(args.into_iter().next()?, depth + 1)?;
                Some(if n == "list" { ParamType::List(Box::new(arg)) } else { ParamType::Map(Box::new(arg)) })
            }
            ("list" | "map", k) => {
                let d = Diagnostic::new(
                    "param-type-arity",
                    span,
                    format!("`{n}` takes one type argument, found {k}"),
                )
                .with_help(format!("write `{n}<string>` or similar"));
                self.diags.push(d);
                None
            }
            (_, 0) => match ParamType::from_name(n) {
                Some(t) => Some(t),
                None => {
                    let known = ParamType::NAMES;
                    let d = Diagnostic::new("unknown-param-type", span_of(&name), format!("unknown parameter type `{n}`"))
                        .with_help(did_you_mean(n, known).unwrap_or_else(|| {
                            "the types are int, uint, bool, string, double, bytes, duration, timestamp, ipaddress, any, list<T> and map<T>".into()
                        }));
                    self.diags.push(d);
                    None
                }
            },
            (_, _) => {
                let d = Diagnostic::new("param-type-arity", span, format!("`{n}` takes no type arguments"));
                self.diags.push(d);
                None
            }
        }
    }
}
