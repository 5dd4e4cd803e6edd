//! Writing an imported schema in Purview's language, or saying why it cannot be.
//!
//! SpiceDB and OpenFGA allow names Purview's grammar does not: Purview reserves `type`,
//! `relation`, `permission`, `condition`, `constraint`, `this`, `nil`, `with` and `and` (and
//! `expiration` as a condition name), and OpenFGA names may hold `.`, `/` or a trailing `-`. Such a
//! tree still compiles (the compiler works on the tree, not on text), but [`format_schema`] would
//! print something [`parse_schema`] rejects. [`to_purview`] refuses it instead, pointing at the
//! name in the original file.

use crate::diag::{Diagnostic, Diagnostics};
use crate::syntax::ast::{ConstraintKind, Expr, Ident, Item, Member, Schema, SubjectKind};
use crate::syntax::parser::RESERVED;
use crate::syntax::{format_schema, parse_schema};
use std::collections::HashSet;

/// The canonical Purview text of `schema`, if parsing that text gives `schema` back.
///
/// `Err` names every name Purview cannot write, at its first place in the source the tree was
/// parsed from; or, should the printed text still not parse back to the same tree, the items
/// that do not.
pub fn to_purview(schema: &Schema) -> Result<String, Diagnostics> {
    check_names(schema)?;
    let text = format_schema(schema);
    if matches!(parse_schema(&text), Ok(back) if back == *schema) {
        return Ok(text);
    }
    let mut diags = Vec::new();
    for item in &schema.items {
        let one = Schema { items: vec![item.clone()], end_comments: Vec::new() };
        let printed = format_schema(&one);
        let (kind, name) = match item {
            Item::Type(t) => ("type", &t.name),
            Item::Condition(c) => ("condition", &c.name),
        };
        let reason = match parse_schema(&printed) {
            Ok(back) if back == one => continue,
            Ok(_) => "it would mean something else".to_string(),
            Err(d) => d.0.first().map_or_else(String::new, |d| d.message.clone()),
        };
        diags.push(
            Diagnostic::new(
                "not-printable",
                name.span,
                format!("{kind} `{}` cannot be written in Purview's language: {reason}", name.name),
            )
            .with_help(format!("Purview would print it as:\n{}", printed.trim_end())),
        );
    }
    if diags.is_empty() {
        diags.push(Diagnostic::new(
            "not-printable",
            crate::syntax::ast::Span::default(),
            "the schema cannot be written in Purview's language",
        ));
    }
    Err(Diagnostics(diags))
}

/// Checks that every name in `schema` is one Purview's grammar accepts where it stands.
pub fn check_names(schema: &Schema) -> Result<(), Diagnostics> {
    let mut cx = Names { seen: HashSet::new(), diags: Vec::new() };
    for item in &schema.items {
        match item {
            Item::Type(t) => {
                cx.type_path(&t.name);
                for m in &t.members {
                    cx.member(m);
                }
            }
            Item::Condition(c) => {
                cx.condition_name(&c.name);
                for p in &c.params {
                    if !is_cel_name(&p.name.name) {
                        cx.invalid(
                            &p.name,
                            "parameter names are letters, digits and `_`, not starting with a digit",
                        );
                    }
                }
            }
        }
    }
    if cx.diags.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(cx.diags))
    }
}

struct Names {
    /// Names already reported: each is reported once, where it first appears.
    seen: HashSet<String>,
    diags: Vec<Diagnostic>,
}

const NAME_RULE: &str =
    "Purview names are letters, digits, `_`, and `-` followed by a letter or digit, starting with a letter or `_`";

impl Names {
    fn member(&mut self, m: &Member) {
        match m {
            Member::Relation(r) => {
                self.name(&r.name);
                for s in &r.subjects {
                    self.type_path(&s.ty);
                    if let SubjectKind::Userset(rel) = &s.kind {
                        self.name(rel);
                    }
                    if let Some(c) = &s.condition {
                        self.condition_name(c);
                    }
                }
                if let Some(e) = &r.rewrite {
                    self.expr(e);
                }
            }
            Member::Permission(p) => {
                self.name(&p.name);
                self.expr(&p.expr);
            }
            Member::Constraint(c) => match &c.kind {
                ConstraintKind::AtMost { relation, .. } | ConstraintKind::AtLeast { relation, .. } => {
                    self.name(relation);
                }
                ConstraintKind::OneOf { relations } => relations.iter().for_each(|r| self.name(r)),
                ConstraintKind::Requires { relation, required } => {
                    self.name(relation);
                    required.iter().for_each(|r| self.name(r));
                }
                ConstraintKind::OnObject { relations, guards, .. } => {
                    relations.iter().chain(guards).for_each(|r| self.name(r));
                }
            },
        }
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Ref(i) => self.name(i),
            Expr::Arrow { tupleset, target, .. } => {
                self.name(tupleset);
                self.name(target);
            }
            Expr::Union(v) | Expr::Intersection(v) => v.iter().for_each(|e| self.expr(e)),
            Expr::Exclusion(a, b) => {
                self.expr(a);
                self.expr(b);
            }
            Expr::This(_) | Expr::Nil(_) => {}
        }
    }

    /// A type name: names separated by `/`.
    fn type_path(&mut self, i: &Ident) {
        if let Some(word) = i.name.split('/').find(|w| RESERVED.contains(w)) {
            self.reserved(i, word);
        } else if !i.name.split('/').all(is_name) {
            self.invalid(i, &format!("{NAME_RULE}; type names may have `/`-separated parts"));
        }
    }

    fn name(&mut self, i: &Ident) {
        if RESERVED.contains(&i.name.as_str()) {
            self.reserved(i, &i.name);
        } else if !is_name(&i.name) {
            self.invalid(i, NAME_RULE);
        }
    }

    fn condition_name(&mut self, i: &Ident) {
        if i.name == "expiration" {
            self.reserved(i, "expiration");
        } else {
            self.name(i);
        }
    }

    fn reserved(&mut self, i: &Ident, word: &str) {
        if self.seen.insert(i.name.clone()) {
            let message = if i.name == word {
                format!("`{word}` is a reserved word in Purview's language")
            } else {
                format!(
                    "`{}` cannot be written in Purview's language: `{word}` is a reserved word there",
                    i.name
                )
            };
            let d = Diagnostic::new("reserved-word", i.span, message).with_help(format!(
                "rename it in this file; Purview reserves {} (and `expiration` as a condition name)",
                RESERVED.map(|w| format!("`{w}`")).join(", ")
            ));
            self.diags.push(d);
        }
    }

    fn invalid(&mut self, i: &Ident, rule: &str) {
        if self.seen.insert(i.name.clone()) {
            let d = Diagnostic::new(
                "invalid-name",
                i.span,
                format!("`{}` is not a name in Purview's language", i.name),
            )
            .with_help(format!("rename it in this file; {rule}"));
            self.diags.push(d);
        }
    }
}

/// Whether Purview's grammar reads `s` as one name (reserved words aside).
fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(first) = b.first() else { return false };
    (first.is_ascii_alphabetic() || *first == b'_')
        && b.iter().enumerate().all(|(i, c)| match c {
            b'-' => b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric),
            c => c.is_ascii_alphanumeric() || *c == b'_',
        })
}

/// Whether `s` is a CEL identifier, as condition parameter names must be.
fn is_cel_name(s: &str) -> bool {
    let b = s.as_bytes();
    b.first().is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

#[cfg(test)]
mod tests;
