//! Schema constraints checked after a batch is applied to a copy of the data.

use super::write::{WriteError, WriteOp};
use super::{Obj, Subject, TupleStore};
use crate::schema::{Constraint, RelId, Schema};
use std::collections::BTreeSet;

/// Checks every constraint that a changed relationship could break.
pub(crate) fn check<S: TupleStore>(
    schema: &Schema,
    data: &S,
    touched: &[(Obj, RelId, Subject, &WriteOp)],
) -> Result<(), WriteError> {
    let mut seen = BTreeSet::new();
    for &(object, rel, subject, op) in touched {
        if !seen.insert((object, rel, subject)) {
            continue;
        }
        for c in &schema.type_def(object.ty).constraints {
            check_one(schema, data, c, object, rel, subject, op)?;
        }
    }
    Ok(())
}

fn holders<S: TupleStore>(schema: &Schema, data: &S, object: Obj, rel: RelId) -> Vec<String> {
    data.subjects_of(object, rel)
        .into_iter()
        .map(|s| {
            let t = schema.type_def(s.ty);
            let mut n = format!("{}:{}", t.name, data.object_name(s.ty, s.id));
            if let Some(r) = s.rel {
                n = format!("{n}#{}", t.relations[r as usize].name);
            }
            n
        })
        .collect()
}

fn list(h: &[String]) -> String {
    if h.is_empty() {
        "none".to_string()
    } else {
        h.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
    }
}

/// The constraint as written in a schema.
pub fn describe(schema: &Schema, ty: u32, c: &Constraint) -> String {
    let name = |r: RelId| schema.rel_def(ty, r).name.clone();
    let t = &schema.type_def(ty).name;
    match c {
        Constraint::AtMost { count, relation } => format!("{t}: at most {count} {}", name(*relation)),
        Constraint::AtLeast { count, relation } => format!("{t}: at least {count} {}", name(*relation)),
        Constraint::OneOf { relations } => {
            format!("{t}: one of ({})", relations.iter().map(|r| name(*r)).collect::<Vec<_>>().join(", "))
        }
        Constraint::Requires { relation, required } => {
            format!("{t}: {} requires {}", name(*relation), name(*required))
        }
    }
}

fn check_one<S: TupleStore>(
    schema: &Schema,
    data: &S,
    c: &Constraint,
    object: Obj,
    rel: RelId,
    subject: Subject,
    op: &WriteOp,
) -> Result<(), WriteError> {
    let violation = |holders_of: RelId| WriteError::Constraint {
        constraint: describe(schema, object.ty, c),
        relationship: op.relationship().to_string(),
        holders: list(&holders(schema, data, object, holders_of)),
    };
    match *c {
        Constraint::AtMost { count, relation }
            if relation == rel && data.subjects_of(object, rel).len() > count as usize =>
        {
            return Err(violation(rel));
        }
        Constraint::AtLeast { count, relation } if relation == rel => {
            let any_left = schema
                .type_def(object.ty)
                .relations
                .iter()
                .enumerate()
                .any(|(r, _)| !data.subjects_of(object, r as RelId).is_empty());
            if any_left && data.subjects_of(object, rel).len() < count as usize {
                return Err(violation(rel));
            }
        }
        Constraint::OneOf { ref relations } if relations.contains(&rel) => {
            let held: Vec<RelId> =
                relations.iter().copied().filter(|&r| data.get(object, r, subject).is_some()).collect();
            if held.len() > 1 {
                let names: Vec<String> =
                    held.iter().map(|&r| schema.rel_def(object.ty, r).name.clone()).collect();
                return Err(WriteError::Constraint {
                    constraint: describe(schema, object.ty, c),
                    relationship: op.relationship().to_string(),
                    holders: format!("the subject would hold {}", list(&names)),
                });
            }
        }
        // Adding `relation` needs `required`; removing `required` must not orphan `relation`.
        Constraint::Requires { relation, required }
            if (rel == relation || rel == required)
                && data.get(object, relation, subject).is_some()
                && data.get(object, required, subject).is_none() =>
        {
            return Err(violation(required));
        }
        _ => {}
    }
    Ok(())
}
