//! The canonical text of a schema.
//!
//! Two-space indentation, one member per line, a blank line between items, parentheses only where
//! precedence needs them, `->` for an any-arrow, and the CEL of a condition as written, on its own
//! lines, indented by two spaces.
//!
//! Every comment is kept ([`Trivia`](crate::syntax::ast::Trivia) says where the parser attaches each one): leading comments on
//! their own lines before the node and its `///` doc comment, trailing comments after the node on
//! its last line, a type's `open_comments` after its `{`, and end comments before the `}` of a type
//! or at the end of the file. Blank lines the author left between members or comments stay, one
//! for each run.

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
/// operands, at least one subject type per relation, names the grammar accepts, comments as
/// [`Trivia`](crate::syntax::ast::Trivia) describes them (with their markers, trailing ones on one line).
pub fn format_schema(schema: &Schema) -> String {
    let mut out = String::new();
    for (i, item) in schema.items.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match item {
            Item::Type(t) => type_def(&mut out, t),
            Item::Condition(c) => condition(&mut out, c),
        }
    }
    let end = blank_trimmed(&schema.end_comments, true, true);
    if !end.is_empty() && !out.is_empty() {
        out.push('\n');
    }
    comment_lines(&mut out, &end, "");
    out
}

fn type_def(out: &mut String, t: &TypeDef) {
    comment_lines(out, &blank_trimmed(&t.trivia.leading, true, false), "");
    doc(out, t.doc.as_deref(), "");
    let end = blank_trimmed(&t.end_comments, t.members.is_empty(), true);
    let _ = write!(out, "type {} {{", t.name.name);
    if t.members.is_empty() && t.open_comments.is_empty() && end.is_empty() {
        out.push('}');
        line_end(out, &t.trivia.trailing);
        return;
    }
    line_end(out, &t.open_comments);
    for (i, m) in t.members.iter().enumerate() {
        member(out, m, i == 0);
    }
    comment_lines(out, &end, "  ");
    out.push('}');
    line_end(out, &t.trivia.trailing);
}

fn member(out: &mut String, m: &Member, first: bool) {
    comment_lines(out, &blank_trimmed(&m.trivia().leading, first, false), "  ");
    match m {
        Member::Relation(r) => {
            doc(out, r.doc.as_deref(), "  ");
            let subjects: Vec<String> = r.subjects.iter().map(subject).collect();
            let _ = write!(out, "  relation {}: {}", r.name.name, subjects.join(" | "));
            if let Some(e) = &r.rewrite {
                let _ = write!(out, " = {}", expr(e));
            }
        }
        Member::Permission(p) => {
            doc(out, p.doc.as_deref(), "  ");
            let _ = write!(out, "  permission {} = {}", p.name.name, expr(&p.expr));
        }
        Member::Constraint(c) => {
            let _ = write!(out, "  constraint {}", constraint(&c.kind));
        }
    }
    line_end(out, &m.trivia().trailing);
}

/// `lines` without blank lines at the front and at the back (as asked), and runs of them as one.
fn blank_trimmed(lines: &[String], front: bool, back: bool) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    for line in lines {
        let blank = line.trim().is_empty();
        let after_blank = out.last().is_none_or(|l: &&str| l.is_empty());
        if !blank {
            out.push(line);
        } else if !(after_blank && (front || !out.is_empty())) {
            out.push("");
        }
    }
    if back && out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// Comment lines, each on lines of its own after `indent`; `""` is a blank line.
fn comment_lines(out: &mut String, lines: &[&str], indent: &str) {
    for line in lines {
        for part in line.split('\n') {
            let part = part.trim_end();
            if part.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "{indent}{part}");
            }
        }
    }
}

/// Ends the current line after the comments `trailing`.
fn line_end(out: &mut String, trailing: &[String]) {
    for c in trailing.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        out.push(' ');
        out.push_str(c);
    }
    out.push('\n');
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

/// One subject type as a schema writes it: `user`, `user:*`, `team#member with in_region`.
pub fn subject(s: &SubjectType) -> String {
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

/// An expression as a schema writes it, with parentheses only where precedence needs them.
pub fn expr(e: &Expr) -> String {
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

fn condition(out: &mut String, c: &ConditionDef) {
    comment_lines(out, &blank_trimmed(&c.trivia.leading, true, false), "");
    doc(out, c.doc.as_deref(), "");
    let params: Vec<String> = c.params.iter().map(|p| format!("{}: {}", p.name.name, p.ty)).collect();
    let _ = writeln!(out, "condition {}({}) {{", c.name.name, params.join(", "));
    let body = cel_text::indent(&c.expr, "  ");
    if !body.is_empty() {
        out.push_str(&body);
        out.push('\n');
    }
    out.push('}');
    line_end(out, &c.trivia.trailing);
}
