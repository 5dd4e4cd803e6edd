//! Validating and applying a write batch.

use super::relationship::{RelRef, Relationship, SubjectRef};
use super::{constraints, Obj, StoredCaveat, Subject, TupleAttrs, TupleStore};
use crate::diag::did_you_mean;
use crate::schema::condition::json_to_cel;
use crate::schema::{AllowedKind, RelId, RelKind, Schema};
use std::sync::Arc;

/// One change in a write batch.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    /// Create the relationship, or replace its condition and times if it exists.
    Touch(Relationship),
    /// Create the relationship; fails if it already exists.
    Create(Relationship),
    /// Delete the relationship (by resource, relation and subject); absent is not an error.
    Delete(Relationship),
    /// Replace the relationships of the relationship's `object#relation`: the `Replace` ops of a
    /// batch for one `object#relation` give its whole new set of subjects; every other stored
    /// relationship of it is deleted, in the same atomic batch (single-holder roles).
    Replace(Relationship),
}

impl WriteOp {
    pub fn relationship(&self) -> &Relationship {
        match self {
            WriteOp::Touch(r) | WriteOp::Create(r) | WriteOp::Delete(r) | WriteOp::Replace(r) => r,
        }
    }
}

/// Why a write batch was rejected. Nothing of the batch was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("unknown type `{name}` in `{relationship}`{}", hint_suffix(.hint))]
    UnknownType { relationship: String, name: String, hint: Option<String> },
    #[error("type `{ty}` has no relation `{relation}` (in `{relationship}`){}", hint_suffix(.hint))]
    UnknownRelation { relationship: String, ty: String, relation: String, hint: Option<String> },
    #[error("`{ty}#{relation}` is a permission and cannot be written (in `{relationship}`)")]
    Permission { relationship: String, ty: String, relation: String },
    #[error("`{relationship}`: {reason}; `{ty}#{relation}` allows {allowed}")]
    SubjectNotAllowed { relationship: String, ty: String, relation: String, reason: String, allowed: String },
    #[error("`{relationship}`: {reason}")]
    InvalidCondition { relationship: String, reason: String },
    #[error("`{relationship}` already exists")]
    AlreadyExists { relationship: String },
    /// The store failed to make the batch durable. `unknown_outcome` is `true` when the failure
    /// came after the batch reached the log (it may or may not be there after a restart); the
    /// store then refuses further writes until it is reopened.
    #[error("storage: {message}{}", if *.unknown_outcome { " (the batch may or may not have been written; reopen the store)" } else { " (nothing was written)" })]
    Storage { message: String, unknown_outcome: bool },
    /// A schema constraint would be broken. `holders` lists the holders of the constrained
    /// relations as they are now (before the batch), with their validity if they have one.
    #[error(
        "constraint `{constraint}` rejects {action} `{relationship}`: {reason}; current holders: {holders}"
    )]
    Constraint {
        constraint: String,
        action: &'static str,
        relationship: String,
        reason: String,
        holders: String,
    },
}

impl WriteError {
    /// The relationship the error names, as written (none for a storage failure).
    pub fn relationship(&self) -> Option<&str> {
        match self {
            WriteError::UnknownType { relationship, .. }
            | WriteError::UnknownRelation { relationship, .. }
            | WriteError::Permission { relationship, .. }
            | WriteError::SubjectNotAllowed { relationship, .. }
            | WriteError::InvalidCondition { relationship, .. }
            | WriteError::AlreadyExists { relationship }
            | WriteError::Constraint { relationship, .. } => Some(relationship),
            WriteError::Storage { .. } => None,
        }
    }

    /// A short stable code for the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            WriteError::UnknownType { .. } => "unknown-type",
            WriteError::UnknownRelation { .. } => "unknown-relation",
            WriteError::Permission { .. } => "write-to-permission",
            WriteError::SubjectNotAllowed { .. } => "subject-not-allowed",
            WriteError::InvalidCondition { .. } => "invalid-condition",
            WriteError::AlreadyExists { .. } => "already-exists",
            WriteError::Constraint { .. } => "constraint-violated",
            WriteError::Storage { .. } => "storage",
        }
    }
}

fn hint_suffix(h: &Option<String>) -> String {
    h.as_ref().map(|h| format!("; {h}")).unwrap_or_default()
}

/// A relationship by dense ids: `(object, relation, subject)`.
pub type Key = (Obj, RelId, Subject);

/// Validates the whole batch against `schema` and applies it to `data`; returns the key of every
/// relationship the batch named (replacements expanded), in batch order. On error `data` may be
/// partly changed; the caller applies batches to a copy.
pub fn apply_batch<S: TupleStore>(
    schema: &Schema,
    data: &mut S,
    ops: &[WriteOp],
) -> Result<Vec<Key>, WriteError> {
    apply(schema, data, ops, false).map(|(keys, _)| keys)
}

/// A relationship's state before a batch: its key and attributes (`None`: absent).
pub type Prior = (Key, Option<TupleAttrs>);

/// [`apply_batch`], returning instead each relationship the batch named, once, in batch order,
/// with its state before the batch: what a caller applying batches in place (no copy per
/// batch) needs to tell what each one changed.
pub fn apply_batch_logged<S: TupleStore>(
    schema: &Schema,
    data: &mut S,
    ops: &[WriteOp],
) -> Result<Vec<Prior>, WriteError> {
    apply(schema, data, ops, true).map(|(_, priors)| priors)
}

/// Applies the batch; returns the keys it named (in batch order, repeats included) and, if
/// `priors`, each one's state before the batch (once, in the order first named: recorded for
/// the constraints' check anyway).
fn apply<S: TupleStore>(
    schema: &Schema,
    data: &mut S,
    ops: &[WriteOp],
    priors: bool,
) -> Result<(Vec<Key>, Vec<Prior>), WriteError> {
    let expanded = expand_replacements(schema, data, ops)?;
    let ops: &[WriteOp] = &expanded;
    let mut changes = constraints::Changes::default();
    let mut keys = Vec::with_capacity(ops.len());
    for op in ops {
        let r = op.relationship();
        let (object, rel, subject, attrs) = resolve(schema, data, r)?;
        keys.push((object, rel, subject));
        changes.record((object, rel, subject), op, || data.get(object, rel, subject));
        match op {
            WriteOp::Touch(_) | WriteOp::Replace(_) => data.insert(object, rel, subject, attrs),
            WriteOp::Create(_) => {
                if data.get(object, rel, subject).is_some() {
                    return Err(WriteError::AlreadyExists { relationship: r.to_string() });
                }
                data.insert(object, rel, subject, attrs);
            }
            WriteOp::Delete(_) => {
                data.remove(object, rel, subject);
            }
        }
    }
    constraints::check(schema, data, &changes)?;
    Ok((keys, if priors { changes.into_priors() } else { Vec::new() }))
}

/// The batch with its [`WriteOp::Replace`] groups written out: for each `object#relation` that is
/// replaced, a `Delete` of every stored relationship whose subject is not in the new set, then a
/// `Touch` of each member of the set (at the place of the first `Replace` of the group). Borrows
/// the batch when it has no replacement.
pub fn expand_replacements<'o, S: TupleStore>(
    schema: &Schema,
    data: &S,
    ops: &'o [WriteOp],
) -> Result<std::borrow::Cow<'o, [WriteOp]>, WriteError> {
    use std::collections::BTreeMap;
    if !ops.iter().any(|op| matches!(op, WriteOp::Replace(_))) {
        return Ok(std::borrow::Cow::Borrowed(ops));
    }
    // Every group's new set of subjects, by `(object type, object id, relation)` as written.
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&Relationship>> = BTreeMap::new();
    for op in ops {
        if let WriteOp::Replace(r) = op {
            groups.entry((&r.resource.ty, &r.resource.id, &r.relation)).or_default().push(r);
        }
    }
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let WriteOp::Replace(r) = op else {
            out.push(op.clone());
            continue;
        };
        let Some(set) = groups.remove(&(r.resource.ty.as_str(), r.resource.id.as_str(), r.relation.as_str()))
        else {
            continue; // the group was written out at its first member
        };
        // Unknown names fail here exactly as they would in `resolve` (which validates the set).
        if let Some(ty) = schema.type_id(&r.resource.ty) {
            let tdef = schema.type_def(ty);
            if let (Some(rel), Some(id)) = (tdef.relation_id(&r.relation), data.lookup(ty, &r.resource.id)) {
                for (subject, _) in data.stored(Obj { ty, id }, rel) {
                    let sdef = schema.type_def(subject.ty);
                    let name = data.object_name(subject.ty, subject.id);
                    let srel = subject.rel.map(|sr| sdef.relations[sr as usize].name.as_str());
                    let keep = set.iter().any(|m| {
                        m.subject.ty == sdef.name
                            && m.subject.id == name
                            && m.subject.relation.as_deref() == srel
                    });
                    if !keep {
                        let s = SubjectRef::new(&sdef.name, name, srel);
                        out.push(WriteOp::Delete(Relationship::new(
                            r.resource.clone(),
                            r.relation.clone(),
                            s,
                        )));
                    }
                }
            }
        }
        out.extend(set.into_iter().map(|m| WriteOp::Touch(m.clone())));
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Resolves names to ids (interning new object ids) and checks the relationship against the
/// schema: relation exists and is writable, subject type allowed, condition and expiration fit.
pub fn resolve<S: TupleStore>(
    schema: &Schema,
    data: &mut S,
    r: &Relationship,
) -> Result<(Obj, u32, Subject, TupleAttrs), WriteError> {
    resolve_ref(schema, data, &RelRef::of(r))
}

/// [`resolve`] for a borrowed relationship.
pub fn resolve_ref<S: TupleStore>(
    schema: &Schema,
    data: &mut S,
    r: &RelRef<'_>,
) -> Result<(Obj, u32, Subject, TupleAttrs), WriteError> {
    let text = || r.to_string();
    let ty = |name: &str| {
        schema.type_id(name).ok_or_else(|| WriteError::UnknownType {
            relationship: text(),
            name: name.to_string(),
            hint: did_you_mean(name, schema.type_names()),
        })
    };
    let rty = ty(r.resource_ty)?;
    let tdef = schema.type_def(rty);
    let rel = tdef.relation_id(r.relation).ok_or_else(|| WriteError::UnknownRelation {
        relationship: text(),
        ty: tdef.name.clone(),
        relation: r.relation.to_string(),
        hint: did_you_mean(r.relation, tdef.relation_names()),
    })?;
    let rdef = &tdef.relations[rel as usize];
    if rdef.kind == RelKind::Permission {
        return Err(WriteError::Permission {
            relationship: text(),
            ty: tdef.name.clone(),
            relation: r.relation.to_string(),
        });
    }
    let sty = ty(r.subject_ty)?;
    let sdef = schema.type_def(sty);
    let srel = match r.subject_relation {
        None => None,
        Some(name) => Some(sdef.relation_id(name).ok_or_else(|| WriteError::UnknownRelation {
            relationship: text(),
            ty: sdef.name.clone(),
            relation: name.to_string(),
            hint: did_you_mean(name, sdef.relation_names()),
        })?),
    };
    let kind = match ((r.subject_id == "*"), srel) {
        (true, _) => AllowedKind::Wildcard,
        (false, Some(sr)) => AllowedKind::Userset(sr),
        (false, None) => AllowedKind::Direct,
    };
    let describe = |a: &crate::schema::AllowedSubject| {
        let t = &schema.type_def(a.ty).name;
        let mut s = match a.kind {
            AllowedKind::Direct => t.clone(),
            AllowedKind::Wildcard => format!("{t}:*"),
            AllowedKind::Userset(ur) => format!("{t}#{}", schema.rel_def(a.ty, ur).name),
        };
        match (a.condition, a.expiration) {
            (Some(c), true) => s += &format!(" with {} and expiration", schema.condition(c).name),
            (Some(c), false) => s += &format!(" with {}", schema.condition(c).name),
            (None, true) => s += " with expiration",
            (None, false) => {}
        }
        s
    };
    let allowed_list =
        || rdef.allowed.iter().map(describe).map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ");
    let candidates: Vec<_> = rdef.allowed.iter().filter(|a| a.ty == sty && a.kind == kind).collect();
    let not_allowed = |reason: String| WriteError::SubjectNotAllowed {
        relationship: text(),
        ty: tdef.name.clone(),
        relation: rdef.name.clone(),
        reason,
        allowed: allowed_list(),
    };
    if candidates.is_empty() {
        let what = match kind {
            AllowedKind::Direct => format!("subject type `{}`", sdef.name),
            AllowedKind::Wildcard => format!("wildcard `{}:*`", sdef.name),
            AllowedKind::Userset(ur) => format!("userset `{}#{}`", sdef.name, schema.rel_def(sty, ur).name),
        };
        return Err(not_allowed(format!("{what} is not allowed here")));
    }
    let cond = match r.caveat {
        None => None,
        Some(c) => match schema.condition_id(&c.name) {
            Some(id) => Some(id),
            None => {
                return Err(WriteError::InvalidCondition {
                    relationship: text(),
                    reason: format!("unknown condition `{}`", c.name),
                })
            }
        },
    };
    let has_time = r.expires_at.is_some() || r.valid_from.is_some();
    let fits = candidates.iter().any(|a| a.condition == cond && (a.expiration || !has_time));
    if !fits {
        let reason = match (cond, has_time) {
            (Some(c), _) if !candidates.iter().any(|a| a.condition == Some(c)) => {
                format!("condition `{}` is not allowed on this subject type", schema.condition(c).name)
            }
            (None, _) if !candidates.iter().any(|a| a.condition.is_none()) => {
                "this subject type requires a condition".to_string()
            }
            _ => "expiration is not allowed on this subject type (declare it `with expiration`)".to_string(),
        };
        return Err(not_allowed(reason));
    }
    let caveat = match (cond, r.caveat) {
        (Some(id), Some(c)) => {
            let compiled = schema.condition(id);
            if let Some(ctx) = &c.context {
                for (k, v) in ctx {
                    let Some((_, pty)) = compiled.params.iter().find(|(p, _)| p == k) else {
                        return Err(WriteError::InvalidCondition {
                            relationship: text(),
                            reason: format!("condition `{}` has no parameter `{k}`", compiled.name),
                        });
                    };
                    if let Err(e) = json_to_cel(v, pty) {
                        return Err(WriteError::InvalidCondition {
                            relationship: text(),
                            reason: format!("parameter `{k}` of condition `{}`: {e}", compiled.name),
                        });
                    }
                }
            }
            Some(StoredCaveat { cond: id, context: c.context.clone().map(Arc::new) })
        }
        _ => None,
    };
    if let (Some(from), Some(to)) = (r.valid_from, r.expires_at) {
        if to <= from {
            return Err(WriteError::InvalidCondition {
                relationship: text(),
                reason: "the validity interval ends before it starts".to_string(),
            });
        }
    }
    let object = Obj { ty: rty, id: data.intern(rty, r.resource_id) };
    let subject = Subject { ty: sty, id: data.intern(sty, r.subject_id), rel: srel };
    Ok((object, rel, subject, TupleAttrs { caveat, valid_from: r.valid_from, expires_at: r.expires_at }))
}
