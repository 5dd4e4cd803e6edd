//! OpenFGA's JSON authorization model (`schema_version`, `type_definitions`, `conditions`) into
//! [`Schema`], the same tree the DSL gives.
//!
//! serde_json keeps no positions, so spans are found by searching the text for the quoted name
//! after the enclosing item: exact for ordinary models, approximate if a name is written with
//! escapes or appears earlier as another string.

use super::SCHEMA_VERSIONS;
use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::syntax::ast::{
    ArrowMode, ConditionDef, Expr, Ident, Item, Member, Param, ParamType, PermissionDef, RelationDef, Schema,
    Span, SpanEq, SubjectKind, SubjectType, Trivia, TypeDef,
};
use crate::syntax::import_diag::MAX_NESTING;
use serde_json::{Map, Value};

/// Parses an OpenFGA authorization model in its JSON form into Purview's AST.
pub fn parse_openfga_json(text: &str) -> Result<Schema, Diagnostics> {
    let value: Value = serde_json::from_str(text).map_err(|e| Diagnostics(vec![json_syntax(text, &e)]))?;
    let mut cx = Cx { text, diags: Vec::new(), cursor: 0 };
    let items = cx.model(&value);
    if cx.diags.is_empty() {
        Ok(Schema { items, end_comments: Vec::new() })
    } else {
        Err(Diagnostics(cx.diags))
    }
}

fn json_syntax(text: &str, e: &serde_json::Error) -> Diagnostic {
    let file = SourceFile::new("", text);
    let line_start = file.line_start(e.line().max(1));
    let pos = (line_start + e.column().saturating_sub(1)).min(text.len());
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    Diagnostic::new("json-syntax", Span::new(pos, pos), format!("invalid JSON: {msg}"))
}

struct Cx<'t> {
    text: &'t str,
    diags: Vec<Diagnostic>,
    /// Where the search for the next type or condition name starts.
    cursor: usize,
}

const REWRITES: [&str; 6] =
    ["this", "computedUserset", "tupleToUserset", "union", "intersection", "difference"];

impl Cx<'_> {
    fn err(&mut self, code: &'static str, span: Span, message: String) {
        self.diags.push(Diagnostic::new(code, span, message));
    }

    /// The span of the JSON string `s` at or after `from` (its content, without the quotes).
    fn locate(&self, from: usize, s: &str) -> Span {
        let needle = serde_json::to_string(s).unwrap_or_default();
        match self.text.get(from..).and_then(|t| t.find(&needle)) {
            Some(i) => Span::new(from + i + 1, from + i + needle.len().saturating_sub(1)),
            None => Span::new(from, from),
        }
    }

    fn ident(&self, from: usize, s: &str) -> Ident {
        Ident::new(s, self.locate(from, s))
    }

    fn model(&mut self, v: &Value) -> Vec<Item> {
        let Some(obj) = v.as_object() else {
            self.err("openfga-json", Span::new(0, 0), "an authorization model must be a JSON object".into());
            return Vec::new();
        };
        match obj.get("schema_version").and_then(Value::as_str) {
            None => self.err("openfga-schema-version", Span::new(0, 0), "schema version required".into()),
            Some(v) if !SCHEMA_VERSIONS.contains(&v) => {
                let span = self.locate(0, v);
                self.diags.push(
                    Diagnostic::new(
                        "openfga-schema-version",
                        span,
                        format!("unsupported schema version `{v}`"),
                    )
                    .with_help("Purview imports OpenFGA models of schema 1.1 (and 1.2)"),
                );
            }
            Some(_) => {}
        }
        let mut items = Vec::new();
        for t in obj.get("type_definitions").and_then(Value::as_array).into_iter().flatten() {
            if let Some(t) = self.type_def(t) {
                items.push(Item::Type(t));
            }
        }
        if let Some(conds) = obj.get("conditions").and_then(Value::as_object) {
            for (key, c) in conds {
                if let Some(c) = self.condition(key, c) {
                    items.push(Item::Condition(c));
                }
            }
        }
        items
    }

    fn type_def(&mut self, v: &Value) -> Option<TypeDef> {
        let base = self.cursor;
        let Some(name) = v.get("type").and_then(Value::as_str) else {
            self.err("openfga-json", Span::new(base, base), "a type definition needs a `type` name".into());
            return None;
        };
        let name = self.ident(base, name);
        self.cursor = name.span.end.max(base);
        let metadata = v.get("metadata").and_then(|m| m.get("relations")).and_then(Value::as_object);
        let mut members = Vec::new();
        for (rel, rewrite) in v.get("relations").and_then(Value::as_object).into_iter().flatten() {
            let rel = self.ident(base, rel);
            let Some(expr) = self.userset(rewrite, rel.span, 0) else { continue };
            let types = metadata
                .and_then(|m| m.get(&rel.name))
                .and_then(|m| m.get("directly_related_user_types"))
                .and_then(Value::as_array);
            let subjects: Vec<SubjectType> =
                types.into_iter().flatten().filter_map(|t| self.subject(t, rel.span.start)).collect();
            let span: SpanEq = rel.span.into();
            if uses_this(&expr) {
                if subjects.is_empty() {
                    self.err(
                        "openfga-missing-types",
                        rel.span,
                        format!(
                            "relation `{}` uses `this` but allows no directly related user types",
                            rel.name
                        ),
                    );
                }
                let rewrite = if matches!(expr, Expr::This(_)) { None } else { Some(expr) };
                members.push(Member::Relation(RelationDef {
                    name: rel,
                    doc: None,
                    subjects,
                    rewrite,
                    trivia: Trivia::default(),
                    span,
                }));
            } else {
                if !subjects.is_empty() {
                    self.err(
                        "openfga-unused-types",
                        rel.span,
                        format!(
                            "relation `{}` lists directly related user types but does not use `this`",
                            rel.name
                        ),
                    );
                }
                members.push(Member::Permission(PermissionDef {
                    name: rel,
                    doc: None,
                    expr,
                    trivia: Trivia::default(),
                    span,
                }));
            }
        }
        Some(TypeDef {
            span: name.span.into(),
            name,
            doc: None,
            trivia: Trivia::default(),
            open_comments: Vec::new(),
            members,
            end_comments: Vec::new(),
        })
    }

    /// One entry of `directly_related_user_types`.
    fn subject(&mut self, v: &Value, from: usize) -> Option<SubjectType> {
        let Some(ty) = v.get("type").and_then(Value::as_str) else {
            self.err(
                "openfga-json",
                Span::new(from, from),
                "a directly related user type needs a `type`".into(),
            );
            return None;
        };
        let ty = self.ident(from, ty);
        let relation = v.get("relation").and_then(Value::as_str).filter(|r| !r.is_empty());
        let kind = match (relation, v.get("wildcard").is_some_and(|w| !w.is_null())) {
            (Some(_), true) => {
                self.err(
                    "openfga-json",
                    ty.span,
                    format!("`{}` cannot be both a wildcard and a userset", ty.name),
                );
                return None;
            }
            (Some(r), false) => SubjectKind::Userset(self.ident(ty.span.end, r)),
            (None, true) => SubjectKind::Wildcard,
            (None, false) => SubjectKind::Direct,
        };
        let condition = v
            .get("condition")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(|c| self.ident(ty.span.end, c));
        Some(SubjectType { span: ty.span.into(), ty, kind, condition, expiration: false })
    }

    /// A rewrite (`Userset` in OpenFGA's protobuf): exactly one of [`REWRITES`].
    fn userset(&mut self, v: &Value, at: Span, depth: usize) -> Option<Expr> {
        if depth >= MAX_NESTING {
            self.err("nesting-too-deep", at, "the rewrite nests too deeply".into());
            return None;
        }
        let obj = v.as_object();
        let keys: Vec<&str> = REWRITES
            .iter()
            .copied()
            .filter(|k| obj.is_some_and(|o| o.get(*k).is_some_and(|x| !x.is_null())))
            .collect();
        let (Some(o), [key]) = (obj, keys.as_slice()) else {
            self.err(
                "openfga-json",
                at,
                "a rewrite needs exactly one of `this`, `computedUserset`, `tupleToUserset`, `union`, `intersection` or `difference`".into(),
            );
            return None;
        };
        let body = o.get(*key).unwrap_or(&Value::Null);
        match *key {
            "this" => Some(Expr::This(at.into())),
            "computedUserset" => match relation(Some(body)) {
                Some(r) => Some(Expr::Ref(self.ident(at.start, r))),
                None => self.missing(at, "`computedUserset` needs a `relation`"),
            },
            "tupleToUserset" => match (relation(body.get("tupleset")), relation(body.get("computedUserset")))
            {
                (Some(ts), Some(t)) => Some(Expr::Arrow {
                    tupleset: self.ident(at.start, ts),
                    target: self.ident(at.start, t),
                    mode: ArrowMode::Any,
                }),
                _ => self
                    .missing(at, "`tupleToUserset` needs `tupleset.relation` and `computedUserset.relation`"),
            },
            "difference" => {
                let base = body.get("base").map(|b| self.userset(b, at, depth + 1));
                let sub = body.get("subtract").map(|s| self.userset(s, at, depth + 1));
                match (base, sub) {
                    (Some(b), Some(s)) => Some(Expr::Exclusion(Box::new(b?), Box::new(s?))),
                    _ => self.missing(at, "`difference` needs a `base` and a `subtract`"),
                }
            }
            _ => {
                let children: Vec<Option<Expr>> = body
                    .get("child")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|c| self.userset(c, at, depth + 1))
                    .collect();
                let mut children: Vec<Expr> = children.into_iter().collect::<Option<_>>()?;
                match children.len() {
                    0 => self.missing(at, &format!("`{key}` needs at least one `child`")),
                    1 => children.pop(),
                    _ if *key == "union" => Some(Expr::Union(children)),
                    _ => Some(Expr::Intersection(children)),
                }
            }
        }
    }

    fn missing(&mut self, at: Span, what: &str) -> Option<Expr> {
        self.err("openfga-json", at, what.to_string());
        None
    }

    fn condition(&mut self, key: &str, v: &Value) -> Option<ConditionDef> {
        let name = self.ident(self.cursor, key);
        self.cursor = name.span.end.max(self.cursor);
        if let Some(n) = v.get("name").and_then(Value::as_str).filter(|n| *n != key) {
            self.err("openfga-json", name.span, format!("condition key `{key}` differs from its name `{n}`"));
        }
        let mut params = Vec::new();
        for (p, ty) in v.get("parameters").and_then(Value::as_object).unwrap_or(&Map::new()) {
            let pname = self.ident(name.span.end, p);
            match self.param_type(ty, pname.span, 0) {
                Some(t) => params.push(Param { ty: t, ty_span: pname.span.into(), name: pname }),
                None => continue,
            }
        }
        let expr = v.get("expression").and_then(Value::as_str).unwrap_or("").trim().to_string();
        Some(ConditionDef {
            span: name.span.into(),
            expr_span: name.span.into(),
            name,
            doc: None,
            params,
            expr,
            trivia: Trivia::default(),
        })
    }

    fn param_type(&mut self, v: &Value, at: Span, depth: usize) -> Option<ParamType> {
        let name = v.get("type_name").and_then(Value::as_str).unwrap_or("");
        let generics: Vec<&Value> =
            v.get("generic_types").and_then(Value::as_array).into_iter().flatten().collect();
        let scalar = name.strip_prefix("TYPE_NAME_").map(str::to_ascii_lowercase);
        match (scalar.as_deref(), generics.as_slice()) {
            (Some("list" | "map"), [g]) if depth < MAX_NESTING => {
                let inner = Box::new(self.param_type(g, at, depth + 1)?);
                Some(if name.ends_with("LIST") { ParamType::List(inner) } else { ParamType::Map(inner) })
            }
            (Some(s), []) if !matches!(s, "list" | "map" | "bytes") && ParamType::from_name(s).is_some() => {
                ParamType::from_name(s)
            }
            _ => {
                self.err("unknown-param-type", at, format!("unsupported parameter type `{name}`"));
                None
            }
        }
    }
}

/// The non-empty `relation` of a `{"relation": ...}` object.
fn relation(v: Option<&Value>) -> Option<&str> {
    v.and_then(|x| x.get("relation")).and_then(Value::as_str).filter(|r| !r.is_empty())
}

fn uses_this(e: &Expr) -> bool {
    match e {
        Expr::This(_) => true,
        Expr::Union(v) | Expr::Intersection(v) => v.iter().any(uses_this),
        Expr::Exclusion(a, b) => uses_this(a) || uses_this(b),
        Expr::Ref(_) | Expr::Arrow { .. } | Expr::Nil(_) => false,
    }
}
