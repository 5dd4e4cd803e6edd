//! Checks a parsed query's names against a schema, so a typo is reported at its place with a
//! "did you mean" instead of failing during evaluation.

use super::ast::{Op, Query, SetExpr, Spanned};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::schema::{Schema, TypeId};
use crate::syntax::ast::Span;

/// Checks every query; reports every unknown type, permission and relation.
pub fn validate_queries(schema: &Schema, queries: &[Query]) -> Result<(), Diagnostics> {
    let mut errors = Vec::new();
    for q in queries {
        check(schema, q, &mut errors);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(errors))
    }
}

fn check(schema: &Schema, q: &Query, errors: &mut Vec<Diagnostic>) {
    match &q.op {
        Op::Check(t) | Op::Explain(t) => {
            let ty = type_of(schema, &t.object.value.ty, t.object.span, errors);
            relation(schema, ty, &t.permission, errors);
            subject(schema, &t.subject.value.ty, t.subject.value.relation.as_deref(), t.subject.span, errors);
        }
        Op::Who { object, permission, filter } => {
            let ty = type_of(schema, &object.value.ty, object.span, errors);
            relation(schema, ty, permission, errors);
            subject(schema, &filter.value.ty, filter.value.relation.as_deref(), filter.span, errors);
        }
        Op::What { object_type, permission, subject: s } => {
            let ty = type_of(schema, &object_type.value, object_type.span, errors);
            relation(schema, ty, permission, errors);
            subject(schema, &s.value.ty, s.value.relation.as_deref(), s.span, errors);
        }
        Op::WhatAll { permission, subject: s } => {
            if !schema.types.iter().any(|t| t.relation_id(&permission.value).is_some()) {
                let names: Vec<&str> = schema
                    .types
                    .iter()
                    .flat_map(|t| t.relation_names())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                errors.push(
                    Diagnostic::new(
                        "unknown-relation",
                        permission.span,
                        format!("no type has a relation or permission `{}`", permission.value),
                    )
                    .with_help_opt(did_you_mean(&permission.value, names.iter().copied())),
                );
            }
            subject(schema, &s.value.ty, s.value.relation.as_deref(), s.span, errors);
        }
        Op::Expand { object, permission } => {
            let ty = type_of(schema, &object.value.ty, object.span, errors);
            relation(schema, ty, permission, errors);
        }
        Op::Subset { set, subject: s, permission } => {
            // In the order of the primary form: `SET in SUBJECT#PERMISSION`.
            let members = match set {
                SetExpr::SubjectsOf { object, relation: rel } => {
                    let ty = type_of(schema, &object.value.ty, object.span, errors);
                    relation(schema, ty, rel, errors);
                    None
                }
                SetExpr::RelatedTo { ty, relation: rel, subject: rs } => {
                    let t = type_of(schema, &ty.value, ty.span, errors);
                    relation(schema, t, rel, errors);
                    subject(schema, &rs.value.ty, rs.value.relation.as_deref(), rs.span, errors);
                    Some(t)
                }
            };
            subject(schema, &s.value.ty, s.value.relation.as_deref(), s.span, errors);
            match members {
                // The members are of the named type: the permission is one of its names.
                Some(t) => relation(schema, t, permission, errors),
                None => any_permission(schema, permission, errors),
            }
        }
    }
}

/// A permission asked of the members of a set whose types the query does not name: some type of
/// the schema must have it (a member of a type without it is reported missing, a truthful answer,
/// but a name no type has is a typo).
fn any_permission(schema: &Schema, perm: &Spanned<String>, errors: &mut Vec<Diagnostic>) {
    if schema.types.iter().any(|t| t.relation_id(&perm.value).is_some()) {
        return;
    }
    let mut names: Vec<&str> = schema.types.iter().flat_map(|t| t.relation_names()).collect();
    names.sort_unstable();
    names.dedup();
    errors.push(
        Diagnostic::new(
            "unknown-relation",
            perm.span,
            format!("no type of the schema has a relation or permission `{}`", perm.value),
        )
        .with_help_opt(did_you_mean(&perm.value, names)),
    );
}

/// The type named at the start of `span`, or an error pointing at the name.
fn type_of(schema: &Schema, name: &str, span: Span, errors: &mut Vec<Diagnostic>) -> Option<TypeId> {
    if let Some(t) = schema.type_id(name) {
        return Some(t);
    }
    let at = Span::new(span.start, span.start + name.len());
    errors.push(
        Diagnostic::new("unknown-type", at, format!("unknown type `{name}`"))
            .with_label("not a type of the schema")
            .with_help_opt(did_you_mean(name, schema.type_names())),
    );
    None
}

fn relation(schema: &Schema, ty: Option<TypeId>, rel: &Spanned<String>, errors: &mut Vec<Diagnostic>) {
    let Some(ty) = ty else { return };
    let def = schema.type_def(ty);
    if def.relation_id(&rel.value).is_some() {
        return;
    }
    errors.push(
        Diagnostic::new(
            "unknown-relation",
            rel.span,
            format!("type `{}` has no relation or permission `{}`", def.name, rel.value),
        )
        .with_help_opt(did_you_mean(&rel.value, def.relation_names()).or_else(|| {
            let names: Vec<&str> = def.relation_names().collect();
            (!names.is_empty()).then(|| format!("`{}` has: {}", def.name, names.join(", ")))
        })),
    );
}

/// A subject `type:id[#rel]` or filter `type[#rel]` written at `span`.
fn subject(schema: &Schema, ty: &str, rel: Option<&str>, span: Span, errors: &mut Vec<Diagnostic>) {
    let Some(t) = type_of(schema, ty, span, errors) else { return };
    let Some(rel) = rel else { return };
    let def = schema.type_def(t);
    if def.relation_id(rel).is_some() {
        return;
    }
    let at = Span::new(span.end.saturating_sub(rel.len()), span.end);
    errors.push(
        Diagnostic::new("unknown-relation", at, format!("type `{}` has no relation `{rel}`", def.name))
            .with_help_opt(did_you_mean(rel, def.relation_names())),
    );
}
