//! Delegation by subset: "is every right in this role one I hold myself?"
//!
//! A set of objects is named by a relation, in either direction of the stored edges:
//! `role:auditor#grants` (the objects the role relates to: a `who` lookup) or
//! `right#granted@role:auditor#member` (the objects that relate to the role's members: a `what`
//! lookup). [`View::subset`] looks the set up, looks up the objects the subject has the permission
//! on, and compares, with the same three-valued logic as every other answer.

use super::{Page, SubjectFilter, View};
use crate::eval::{EvalError, EvalOptions, Tri};
use crate::store::{ObjectRef, RelationshipSyntaxError, SubjectRef};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// A set of objects named by a relation, for [`View::subset`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ObjectSet {
    /// Every object `X` with `object#relation@X`; text form `role:auditor#grants`.
    SubjectsOf { object: ObjectRef, relation: String },
    /// Every object `X` of type `ty` with `X#relation@subject`; text form
    /// `right#granted@role:auditor#member`.
    RelatedTo { ty: String, relation: String, subject: SubjectRef },
}

impl ObjectSet {
    /// Parses `type:id#relation` or `type#relation@subject`.
    pub fn parse(text: &str) -> Result<ObjectSet, RelationshipSyntaxError> {
        let text = text.trim();
        let err = |reason: &str| RelationshipSyntaxError {
            text: text.to_string(),
            reason: reason.to_string(),
            offset: 0,
        };
        let (head, subject) = match text.split_once('@') {
            Some((h, s)) => (h, Some(s)),
            None => (text, None),
        };
        let (left, relation) = head
            .split_once('#')
            .ok_or_else(|| err("expected `type:id#relation` or `type#relation@subject`"))?;
        if relation.is_empty() {
            return Err(err("missing relation after `#`"));
        }
        match subject {
            None => Ok(ObjectSet::SubjectsOf { object: ObjectRef::parse(left)?, relation: relation.into() }),
            Some(s) if !left.contains(':') && !left.is_empty() => Ok(ObjectSet::RelatedTo {
                ty: left.to_string(),
                relation: relation.into(),
                subject: SubjectRef::parse(s)?,
            }),
            Some(_) => Err(err(
                "a set of related objects names their type only: `right#granted@role:auditor#member`",
            )),
        }
    }
}

impl fmt::Display for ObjectSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectSet::SubjectsOf { object, relation } => write!(f, "{object}#{relation}"),
            ObjectSet::RelatedTo { ty, relation, subject } => write!(f, "{ty}#{relation}@{subject}"),
        }
    }
}

/// The answer of [`View::subset`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SubsetResult {
    /// Every member of the set is one the subject has the permission on, without conditions.
    pub holds: bool,
    /// Members the subject does not have the permission on, in name order. `type:*` stands for a
    /// wildcard member (every object of the type) that the subject does not cover.
    pub missing: Vec<ObjectRef>,
    /// Members for which the answer depends on condition context that was not given: the member
    /// belongs to the set only conditionally, or the subject has the permission only conditionally.
    pub conditional: Vec<ObjectRef>,
}

impl View {
    /// Is every object in `set` one on which `subject` has `permission`? For INS-5: a user may
    /// assign a role only if `subset(role's rights, user, "exercise")` holds.
    ///
    /// Composes `who` (or `what`, for [`ObjectSet::RelatedTo`]) for the set with `what` for the
    /// subject, on either engine. Members of a type without `permission` are missing.
    pub fn subset(
        &self,
        set: &ObjectSet,
        subject: &SubjectRef,
        permission: &str,
        opts: &EvalOptions,
    ) -> Result<SubsetResult, EvalError> {
        let members = self.set_members(set, opts)?;
        let mut out = SubsetResult::default();
        let mut held: BTreeMap<String, BTreeMap<ObjectRef, Tri>> = BTreeMap::new();
        for (member, in_set) in members {
            let ty = member.ty.clone();
            let Some(tid) = self.schema().type_id(&ty) else { continue };
            let has_permission = self.schema().type_def(tid).relation_id(permission).is_some();
            let covered = if !has_permission {
                Tri::False
            } else if member.id == "*" {
                self.covers_every(subject, permission, &ty, opts)?
            } else {
                if !held.contains_key(&ty) {
                    let found = self.what(subject, permission, &ty, &Page::default(), opts)?;
                    held.insert(
                        ty.clone(),
                        found.objects.into_iter().map(|f| (f.object, f.outcome)).collect(),
                    );
                }
                held.get(&ty).and_then(|m| m.get(&member)).copied().unwrap_or(Tri::False)
            };
            // The member is covered if it is not in the set, or the subject has the permission.
            match in_set.not().or(covered) {
                Tri::True => {}
                Tri::Cond => out.conditional.push(member),
                Tri::False => out.missing.push(member),
            }
        }
        out.missing.sort();
        out.conditional.sort();
        out.holds = out.missing.is_empty() && out.conditional.is_empty();
        Ok(out)
    }

    /// The members of a set with their membership; a wildcard member is `type:*`.
    fn set_members(&self, set: &ObjectSet, opts: &EvalOptions) -> Result<Vec<(ObjectRef, Tri)>, EvalError> {
        let mut out = Vec::new();
        match set {
            ObjectSet::SubjectsOf { object, relation } => {
                let types: Vec<String> = self.schema().type_names().map(str::to_string).collect();
                for ty in types {
                    let filter = SubjectFilter { ty: ty.clone(), relation: None };
                    let who = self.who(object, relation, &filter, opts)?;
                    out.extend(who.subjects.into_iter().map(|f| (f.subject.object(), f.outcome)));
                    if let Some(w) = who.wildcard {
                        out.push((ObjectRef::new(&ty, "*"), w.outcome));
                    }
                }
            }
            ObjectSet::RelatedTo { ty, relation, subject } => {
                let found = self.what(subject, relation, ty, &Page::default(), opts)?;
                out.extend(found.objects.into_iter().map(|f| (f.object, f.outcome)));
            }
        }
        Ok(out)
    }

    /// Whether `subject` has `permission` on every object of type `ty`, including ones never
    /// written: on each existing one, and on a fresh one (which only a wildcard can grant).
    fn covers_every(
        &self,
        subject: &SubjectRef,
        permission: &str,
        ty: &str,
        opts: &EvalOptions,
    ) -> Result<Tri, EvalError> {
        let Some(tid) = self.schema().type_id(ty) else { return Ok(Tri::False) };
        let fresh = (0u32..)
            .map(|i| format!("fresh-{i}"))
            .find(|id| self.source().object_id(tid, id).is_none())
            .unwrap_or_default();
        let mut acc = self.check(&ObjectRef::new(ty, fresh), permission, subject, opts)?.tri();
        if acc == Tri::False {
            return Ok(acc);
        }
        let found = self.what(subject, permission, ty, &Page::default(), opts)?;
        let held: BTreeMap<ObjectRef, Tri> =
            found.objects.into_iter().map(|f| (f.object, f.outcome)).collect();
        for id in 0..self.source().object_count(tid) {
            let o = self.source().object_ref(crate::store::Obj { ty: tid, id });
            acc = acc.and(held.get(&o).copied().unwrap_or(Tri::False));
        }
        Ok(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_parse_in_both_directions() {
        let s = ObjectSet::parse("role:auditor#grants").unwrap();
        assert_eq!(
            s,
            ObjectSet::SubjectsOf { object: ObjectRef::new("role", "auditor"), relation: "grants".into() }
        );
        let r = ObjectSet::parse("right#granted@role:auditor#member").unwrap();
        assert_eq!(r.to_string(), "right#granted@role:auditor#member");
        assert_eq!(ObjectSet::parse(&s.to_string()).unwrap(), s);
        for bad in ["role:auditor", "role:a#grants@user:b", "#x@user:a", "role:a#"] {
            assert!(ObjectSet::parse(bad).is_err(), "{bad}");
        }
    }
}
