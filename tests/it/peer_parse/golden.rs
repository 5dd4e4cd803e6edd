//! Reads SpiceDB's golden parser ASTs (`*.zed.expected`) and prints them, and Purview's AST, as the
//! same one-line-per-member summary, so the two can be compared structurally.
//!
//! Binary expressions print fully parenthesized and left-nested (`((a + b) - c)`), so precedence and
//! associativity show; Purview's n-ary unions and intersections print the same way. Partials are
//! expanded, type annotations and comments left out.

use purview::syntax::ast::{ArrowMode, Expr, Item, Member, Schema, SubjectKind};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct GNode {
    pub kind: String,
    pub props: Vec<(String, String)>,
    pub children: Vec<(String, GNode)>,
}

impl GNode {
    fn prop(&self, key: &str) -> Option<&str> {
        self.props.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    fn kids<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a GNode> + 'a {
        self.children.iter().filter(move |(k, _)| k == key).map(|(_, n)| n)
    }
    fn kid(&self, key: &str) -> Option<&GNode> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, n)| n)
    }
}

enum Line {
    Node(usize, String),
    Key(usize, String),
    Prop(usize, String, String),
}

/// Parses the indented `NodeType...` / `key = value` / `key =>` format. Lines that fit none of
/// these continue the value of the previous property (multi-line comments and CEL).
pub fn parse(text: &str) -> GNode {
    let mut lines: Vec<Line> = Vec::new();
    for raw in text.lines() {
        let indent = raw.len() - raw.trim_start().len();
        let t = raw.trim_start();
        let is_key = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '-');
        if t.starts_with("NodeType") && t.chars().all(|c| c.is_ascii_alphanumeric()) {
            lines.push(Line::Node(indent, t.to_string()));
        } else if let Some(k) = t.strip_suffix(" =>").filter(|k| is_key(k)) {
            lines.push(Line::Key(indent, k.to_string()));
        } else if let Some((k, v)) =
            t.split_once(" =").filter(|(k, v)| is_key(k) && (v.is_empty() || v.starts_with(' ')))
        {
            lines.push(Line::Prop(indent, k.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()));
        } else if let Some(Line::Prop(_, _, v)) = lines.last_mut() {
            v.push('\n');
            v.push_str(raw);
        }
    }
    let mut pos = 0;
    node(&lines, &mut pos)
}

fn node(lines: &[Line], pos: &mut usize) -> GNode {
    let Some(Line::Node(indent, kind)) = lines.get(*pos) else { return GNode::default() };
    let (indent, mut n) = (*indent, GNode { kind: kind.clone(), ..GNode::default() });
    *pos += 1;
    while let Some(line) = lines.get(*pos) {
        match line {
            Line::Prop(i, k, v) if *i == indent + 2 => {
                n.props.push((k.clone(), v.clone()));
                *pos += 1;
            }
            Line::Key(i, k) if *i == indent + 2 => {
                *pos += 1;
                while let Some(Line::Node(j, _)) = lines.get(*pos) {
                    if *j != indent + 4 {
                        break;
                    }
                    let child = node(lines, pos);
                    n.children.push((k.clone(), child));
                }
            }
            _ => break,
        }
    }
    n
}

/// The golden tree as summary lines.
pub fn summarize_golden(root: &GNode) -> Vec<String> {
    let partials: HashMap<&str, &GNode> = root
        .kids("child-node")
        .filter(|n| n.kind == "NodeTypePartial")
        .filter_map(|n| Some((n.prop("partial-name")?, n)))
        .collect();
    let mut out = Vec::new();
    for n in root.kids("child-node") {
        match n.kind.as_str() {
            "NodeTypeDefinition" => {
                out.push(format!("definition {}", n.prop("definition-name").unwrap_or("")));
                golden_members(n, &partials, &mut out, 0);
            }
            "NodeTypeCaveatDefinition" => {
                let params: Vec<String> = n
                    .kids("parameters")
                    .map(|p| {
                        let ty = p.kid("caveat-parameter-type").map(golden_param_type).unwrap_or_default();
                        format!("{}: {ty}", p.prop("caveat-parameter-name").unwrap_or(""))
                    })
                    .collect();
                let expr = n
                    .kid("caveat-definition-expression")
                    .and_then(|e| e.prop("caveat-expression-expressionstr"))
                    .unwrap_or("");
                let name = n.prop("caveat-definition-name").unwrap_or("");
                out.push(format!("caveat {name}({}) {{ {} }}", params.join(", "), expr.trim()));
            }
            _ => {}
        }
    }
    out
}

fn golden_members(n: &GNode, partials: &HashMap<&str, &GNode>, out: &mut Vec<String>, depth: usize) {
    for m in n.kids("child-node") {
        match m.kind.as_str() {
            "NodeTypeRelation" => {
                let types: Vec<String> = m
                    .kids("allowed-types")
                    .flat_map(|t| t.kids("type-ref-type"))
                    .map(|s| {
                        let mut t = s.prop("type-name").unwrap_or("").to_string();
                        match s.prop("relation-name") {
                            Some("...") | None => {}
                            Some(r) => t = format!("{t}#{r}"),
                        }
                        if s.prop("type-wildcard") == Some("true") {
                            t.push_str(":*");
                        }
                        if let Some(c) = s.kid("caveat").and_then(|c| c.prop("caveat-name")) {
                            t = format!("{t} with {c}");
                        }
                        if s.kid("trait").and_then(|c| c.prop("trait-name")) == Some("expiration") {
                            t.push_str(" +expiration");
                        }
                        t
                    })
                    .collect();
                out.push(format!(
                    "  relation {}: {}",
                    m.prop("relation-name").unwrap_or(""),
                    types.join(" | ")
                ));
            }
            "NodeTypePermission" => {
                let e = m.kid("compute-expression").map(golden_expr).unwrap_or_default();
                out.push(format!("  permission {} = {e}", m.prop("relation-name").unwrap_or("")));
            }
            "NodeTypePartialReference" if depth < 8 => {
                if let Some(p) = m.prop("partial-reference-name").and_then(|r| partials.get(r)) {
                    golden_members(p, partials, out, depth + 1);
                }
            }
            _ => {}
        }
    }
}

fn golden_param_type(n: &GNode) -> String {
    let name = n.prop("type-name").unwrap_or("").to_string();
    match n.kid("child-types") {
        Some(c) => format!("{name}<{}>", golden_param_type(c)),
        None => name,
    }
}

fn golden_expr(n: &GNode) -> String {
    let side = |k: &str| n.kid(k).map(golden_expr).unwrap_or_default();
    match n.kind.as_str() {
        "NodeTypeIdentifier" => n.prop("identifier-value").unwrap_or("").to_string(),
        "NodeTypeNilExpression" => "nil".into(),
        "NodeTypeSelfExpression" => "self".into(),
        "NodeTypeUnionExpression" => format!("({} + {})", side("left-expr"), side("right-expr")),
        "NodeTypeIntersectExpression" => format!("({} & {})", side("left-expr"), side("right-expr")),
        "NodeTypeExclusionExpression" => format!("({} - {})", side("left-expr"), side("right-expr")),
        "NodeTypeArrowExpression" => match n.prop("function-name") {
            Some("all") => format!("{}.all({})", side("left-expr"), side("right-expr")),
            _ => format!("{}->{}", side("left-expr"), side("right-expr")),
        },
        other => format!("<{other}>"),
    }
}

/// Purview's AST as summary lines.
pub fn summarize_ast(schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for item in &schema.items {
        match item {
            Item::Type(t) => {
                out.push(format!("definition {}", t.name.name));
                for m in &t.members {
                    match m {
                        Member::Relation(r) => {
                            let types: Vec<String> = r
                                .subjects
                                .iter()
                                .map(|s| {
                                    let mut t = s.ty.name.clone();
                                    match &s.kind {
                                        SubjectKind::Direct => {}
                                        SubjectKind::Wildcard => t.push_str(":*"),
                                        SubjectKind::Userset(r) => t = format!("{t}#{}", r.name),
                                    }
                                    if let Some(c) = &s.condition {
                                        t = format!("{t} with {}", c.name);
                                    }
                                    if s.expiration {
                                        t.push_str(" +expiration");
                                    }
                                    t
                                })
                                .collect();
                            out.push(format!("  relation {}: {}", r.name.name, types.join(" | ")));
                        }
                        Member::Permission(p) => {
                            out.push(format!("  permission {} = {}", p.name.name, expr(&p.expr)))
                        }
                        Member::Constraint(_) => {}
                    }
                }
            }
            Item::Condition(c) => {
                let params: Vec<String> =
                    c.params.iter().map(|p| format!("{}: {}", p.name.name, p.ty)).collect();
                out.push(format!("caveat {}({}) {{ {} }}", c.name.name, params.join(", "), c.expr));
            }
        }
    }
    out
}

fn expr(e: &Expr) -> String {
    let fold = |v: &[Expr], op: &str| {
        let mut it = v.iter();
        let first = it.next().map(expr).unwrap_or_default();
        it.fold(first, |acc, x| format!("({acc} {op} {})", expr(x)))
    };
    match e {
        Expr::Ref(i) => i.name.clone(),
        Expr::This(_) => "this".into(),
        Expr::Nil(_) => "nil".into(),
        Expr::Arrow { tupleset, target, mode: ArrowMode::Any } => {
            format!("{}->{}", tupleset.name, target.name)
        }
        Expr::Arrow { tupleset, target, mode: ArrowMode::All } => {
            format!("{}.all({})", tupleset.name, target.name)
        }
        Expr::Union(v) => fold(v, "+"),
        Expr::Intersection(v) => fold(v, "&"),
        Expr::Exclusion(a, b) => format!("({} - {})", expr(a), expr(b)),
    }
}
