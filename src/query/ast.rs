//! The query AST: what a query asks, with the places its names were written.
//!
//! No parser types appear here. [`fmt::Display`] prints the canonical (primary) form, which parses
//! back to an equal query.

use crate::api::{ObjectSet, SubjectFilter};
use crate::schema::condition::JsonMap;
use crate::store::{ObjectRef, SubjectRef};
use crate::syntax::ast::Span;
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt;

/// A value with the place it was written. Equality ignores the span.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

/// One query: an operation and its clauses. Equality ignores spans.
#[derive(Clone, Debug)]
pub struct Query {
    pub op: Op,
    pub clauses: Clauses,
    /// Where the whole query stands in the text it was parsed from.
    pub span: Span,
}

impl PartialEq for Query {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.clauses == other.clauses
    }
}

/// `object#permission@subject`: the question of `check` and `explain`.
#[derive(Clone, Debug, PartialEq)]
pub struct Triple {
    pub object: Spanned<ObjectRef>,
    pub permission: Spanned<String>,
    pub subject: Spanned<SubjectRef>,
}

/// What a query asks.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// May the subject do the permission on the object?
    Check(Triple),
    /// Why (or why not).
    Explain(Triple),
    /// Which subjects matching `filter` may do `permission` on `object`?
    Who { object: Spanned<ObjectRef>, permission: Spanned<String>, filter: Spanned<SubjectFilter> },
    /// Which objects of `object_type` may `subject` do `permission` on?
    What { object_type: Spanned<String>, permission: Spanned<String>, subject: Spanned<SubjectRef> },
    /// Which objects of every type that has `permission` may `subject` do it on, by type?
    /// (`what user:ann can view`)
    WhatAll { permission: Spanned<String>, subject: Spanned<SubjectRef> },
    /// The userset tree of `permission` on `object`.
    Expand { object: Spanned<ObjectRef>, permission: Spanned<String> },
    /// Is every object of `set` one on which `subject` has `permission`? (Delegation by subset.)
    Subset { set: SetExpr, subject: Spanned<SubjectRef>, permission: Spanned<String> },
}

/// A set of objects named by a relation: an [`ObjectSet`] with the place of each name.
#[derive(Clone, Debug, PartialEq)]
pub enum SetExpr {
    /// `role:auditor#grants`: every object `X` with `role:auditor#grants@X`.
    SubjectsOf { object: Spanned<ObjectRef>, relation: Spanned<String> },
    /// `right#granted@role:auditor#member`: every `right` `X` with `X#granted@role:auditor#member`.
    RelatedTo { ty: Spanned<String>, relation: Spanned<String>, subject: Spanned<SubjectRef> },
}

impl SetExpr {
    /// The set, for [`View::subset`](crate::api::View::subset).
    pub fn to_object_set(&self) -> ObjectSet {
        match self {
            SetExpr::SubjectsOf { object, relation } => {
                ObjectSet::SubjectsOf { object: object.value.clone(), relation: relation.value.clone() }
            }
            SetExpr::RelatedTo { ty, relation, subject } => ObjectSet::RelatedTo {
                ty: ty.value.clone(),
                relation: relation.value.clone(),
                subject: subject.value.clone(),
            },
        }
    }
}

impl Op {
    /// The keyword that starts the query.
    pub fn keyword(&self) -> &'static str {
        match self {
            Op::Check(_) => "check",
            Op::Explain(_) => "explain",
            Op::Who { .. } => "who",
            Op::What { .. } | Op::WhatAll { .. } => "what",
            Op::Expand { .. } => "expand",
            Op::Subset { .. } => "subset",
        }
    }
}

/// The clauses after a query. All optional; a missing one takes the caller's default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clauses {
    /// `with {...}`: request context for conditions, merged over the caller's.
    pub context: Option<JsonMap>,
    /// `at TIME`: the evaluation time.
    pub at: Option<DateTime<Utc>>,
    /// `limit N` (`what` only): page size, at least 1.
    pub limit: Option<usize>,
    /// `after CURSOR` (`what` only): where the previous page stopped.
    pub after: Option<String>,
}

impl fmt::Display for Triple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.object.value, self.permission.value, self.subject.value)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.keyword())?;
        match self {
            Op::Check(t) | Op::Explain(t) => write!(f, "{t}"),
            Op::Who { object, permission, filter } => {
                write!(f, "{}#{}@{}", object.value, permission.value, filter.value.ty)?;
                match &filter.value.relation {
                    Some(r) => write!(f, "#{r}"),
                    None => Ok(()),
                }
            }
            Op::What { object_type, permission, subject } => {
                write!(f, "{}#{}@{}", object_type.value, permission.value, subject.value)
            }
            Op::WhatAll { permission, subject } => write!(f, "{} can {}", subject.value, permission.value),
            Op::Expand { object, permission } => write!(f, "{}#{}", object.value, permission.value),
            Op::Subset { set, subject, permission } => {
                write!(f, "{set} in {}#{}", subject.value, permission.value)
            }
        }
    }
}

impl fmt::Display for SetExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetExpr::SubjectsOf { object, relation } => write!(f, "{}#{}", object.value, relation.value),
            SetExpr::RelatedTo { ty, relation, subject } => {
                write!(f, "{}#{}@{}", ty.value, relation.value, subject.value)
            }
        }
    }
}

impl fmt::Display for Clauses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.context {
            write!(f, " with {}", serde_json::Value::Object(c.clone()))?;
        }
        if let Some(t) = &self.at {
            write!(f, " at {}", t.to_rfc3339_opts(SecondsFormat::AutoSi, true))?;
        }
        if let Some(n) = self.limit {
            write!(f, " limit {n}")?;
        }
        if let Some(c) = &self.after {
            let bare =
                !c.is_empty() && c.chars().all(|ch| ch.is_ascii_alphanumeric() || "_-.:+/=".contains(ch));
            if bare {
                write!(f, " after {c}")?;
            } else {
                write!(f, " after {}", serde_json::Value::String(c.clone()))?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.op, self.clauses)
    }
}
