//! The canonical text of a schema.
//!
//! Two-space indentation, one member per line, a blank line between items, doc comments kept,
//! parentheses only where precedence needs them, `->` for an any-arrow, and the CEL of a condition
//! as written, on its own lines, indented by two spaces.

use crate::syntax::ast::{
    ArrowMode, ConditionDef, ConstraintKind, Expr, Ident, Item, Member, OnMode, Schema, SubjectKind,
    SubjectType, TypeDef,
};
use crate::syntax::cel_text;
use std::fmt::Write as _;

/// Formats a schema canonically.
///
/// For every tree that [`parse_schema`](crate::syntax::parse_schema) returns, parsing the result
/// gives the tree again (up to spans), and formatting is idempotent. Trees built by hand or by an
/// importer should keep to what the parser produces: unions and intersections of at least two
/// operands, at least one subject type per relation, names the grammar accepts.
pub fn format_schema(schema: &Schema) -> String {
    let items: Vec<String> = schema
        .items
        .iter()
        .map(|item| match item {
            Item::Type(t) => type_def(t),
            Item::Condition(c) => condition(c),
        })
        .collect();
    let mut out = items.join("\n");
    if out.is_empty() {
        return out;
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn type_def(t: &TypeDef) -> String {
    let mut out = String::new();
    doc(&mut out, t.doc.as_deref(), "");
    if t.members.is_empty() {
        let _ = writeln!(out, "type {} {{}}", t.name.name);
        return out;
    }
    let _ = writeln!(out, "type {} {{", t.name.name);
    for m in &t.members {
        match m {
            Member::Relation(r) => {
                doc(&mut out, r.doc.as_deref(), "  ");
                let subjects: Vec<String> = r.subjects.iter().map(subject).collect();
                let _ = write!(out, "  relation {}: {}", r.name.name, subjects.join(" | "));
                if let Some(e) = &r.rewrite {
                    let _ = write!(out, " = {}", expr(e));
                }
                out.push('\n');
            }
            Member::Permission(p) => {
                doc(&mut out, p.doc.as_deref(), "  ");
                let _ = writeln!(out, "  permission {} = {}", p.name.name, expr(&p.expr));
            }
            Member::Constraint(c) => {
                let _ = writeln!(out, "  constraint {}", constraint(&c.kind));
            }
        }
    }
    out.push_str("}\n");
    out
}

fn doc(out: &mut String, doc: Option<&str>, indent: &str) {
    for line in doc.into_iter().flat_map(|d| d.split('\n')) {
        let line = line.trim_end();
        if line.is_empty() {
            let _ = writeln!(out, "{indent}///");
        } else {
            let _ = writeln!(out, "{indent}/// {line}");
        }
    }
}

fn subject(s: &SubjectType) -> String {
    let mut out = s.ty.name.clone();
    match &s.kind {
        SubjectKind::Direct => {}
        SubjectKind::Wildcard => out.push_str(":*"),
        SubjectKind::Userset(rel) => {
            out.push('#');
            out.push_str(&rel.name);
        }
    }
    match (&s.condition, s.expiration) {
        (Some(c), true) => {
            let _ = write!(out, " with {} and expiration", c.name);
        }
        (Some(c), false) => {
            let _ = write!(out, " with {}", c.name);
        }
        (None, true) => out.push_str(" with expiration"),
        (None, false) => {}
    }
    out
}

/// Binding strength: exclusion binds loosest, then union, then intersection; operands bind tightest.
fn precedence(e: &Expr) -> u8 {
    match e {
        Expr::Exclusion(..) => 1,
        Expr::Union(v) if v.len() > 1 => 2,
        Expr::Intersection(v) if v.len() > 1 => 3,
        Expr::Union(v) | Expr::Intersection(v) => v.first().map_or(4, precedence),
        _ => 4,
    }
}

fn expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e, 0);
    out
}

/// Writes `e`, in parentheses if it binds less tightly than `min`.
fn write_expr(out: &mut String, e: &Expr, min: u8) {
    if precedence(e) < min {
        out.push('(');
        write_expr(out, e, 0);
        out.push(')');
        return;
    }
    match e {
        Expr::Ref(i) => out.push_str(&i.name),
        Expr::This(_) => out.push_str("this"),
        Expr::Nil(_) => out.push_str("nil"),
        Expr::Arrow { tupleset, target, mode: ArrowMode::Any } => {
            let _ = write!(out, "{}->{}", tupleset.name, target.name);
        }
        Expr::Arrow { tupleset, target, mode: ArrowMode::All } => {
            let _ = write!(out, "{}.all({})", tupleset.name, target.name);
        }
        // Operands of the same operator get parentheses too: the parser keeps them as written.
        Expr::Union(v) => write_list(out, v, " + ", 3),
        Expr::Intersection(v) => write_list(out, v, " & ", 4),
        // `a - b - c` is `(a - b) - c`: the left operand needs no parentheses, the right one does.
        Expr::Exclusion(a, b) => {
            write_expr(out, a, 1);
            out.push_str(" - ");
            write_expr(out, b, 2);
        }
    }
}

fn write_list(out: &mut String, v: &[Expr], sep: &str, min: u8) {
    if v.is_empty() {
        out.push_str("nil");
    }
    let min = if v.len() == 1 { 0 } else { min };
    for (i, e) in v.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        write_expr(out, e, min);
    }
}

fn constraint(c: &ConstraintKind) -> String {
    match c {
        ConstraintKind::AtMost { count, relation } => format!("at most {count} {}", relation.name),
        ConstraintKind::AtLeast { count, relation } => format!("at least {count} {}", relation.name),
        ConstraintKind::OneOf { relations } => {
            let names: Vec<&str> = relations.iter().map(|r: &Ident| r.name.as_str()).collect();
            format!("one of ({})", names.join(", "))
        }
        ConstraintKind::Requires { relation, required } => {
            format!("{} requires {}", relation.name, relation_list(required))
        }
        ConstraintKind::OnObject { relations, mode, guards } => {
            let word = match mode {
                OnMode::Only => "only",
                OnMode::Not => "not",
            };
            format!("{} {word} on {}", relation_list(relations), relation_list(guards))
        }
    }
}

/// `a`, or `(a, b)` for more than one relation.
fn relation_list(relations: &[Ident]) -> String {
    match relations {
        [one] => one.name.clone(),
        _ => format!("({})", relations.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")),
    }
}

fn condition(c: &ConditionDef) -> String {
    let mut out = String::new();
    doc(&mut out, c.doc.as_deref(), "");
    let params: Vec<String> = c.params.iter().map(|p| format!("{}: {}", p.name.name, p.ty)).collect();
    let _ = writeln!(out, "condition {}({}) {{", c.name.name, params.join(", "));
    let body = cel_text::indent(&c.expr, "  ");
    if !body.is_empty() {
        out.push_str(&body);
        out.push('\n');
    }
    out.push_str("}\n");
    out
}
