//! OpenFGA requests on a Purview store: tuples, contextual tuples, and OpenFGA's error codes.
//!
//! Evaluation follows OpenFGA: a condition whose parameters are missing is an error (2000), the
//! resolution depth limit is 25 (2002), and requests are validated against the model the way
//! OpenFGA validates them (2000 for a bad check request, 2021 unknown type and 2022 unknown
//! relation for list requests, 2027 for an invalid contextual tuple).

use crate::api::View;
use crate::api::{Purview, SubjectFilter};
use crate::eval::{EvalError, EvalOptions, Limits, MissingContext, Tri};
use crate::schema::condition::JsonMap;
use crate::schema::Schema;
use crate::store::{CaveatRef, ObjectRef, Relationship, SubjectRef, WriteOp};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// OpenFGA's validation error: bad request, missing condition parameters.
pub(crate) const VALIDATION: u32 = 2000;
/// OpenFGA's "resolution too complex": the depth limit was reached.
pub(crate) const TOO_COMPLEX: u32 = 2002;
pub(crate) const TYPE_NOT_FOUND: u32 = 2021;
pub(crate) const RELATION_NOT_FOUND: u32 = 2022;
pub(crate) const INVALID_TUPLE: u32 = 2027;

/// OpenFGA's resolution depth limit.
const MAX_DEPTH: u32 = 25;

/// A relationship tuple as OpenFGA writes it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tuple {
    pub user: String,
    pub relation: String,
    pub object: String,
    #[serde(default)]
    pub condition: Option<TupleCondition>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TupleCondition {
    pub name: String,
    #[serde(default)]
    pub context: Option<JsonMap>,
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.object, self.relation, self.user)?;
        if let Some(c) = &self.condition {
            write!(f, "[{}]", c.name)?;
        }
        Ok(())
    }
}

impl Tuple {
    pub fn to_relationship(&self) -> Result<Relationship, String> {
        let object = ObjectRef::parse(&self.object).map_err(|e| e.to_string())?;
        let subject = SubjectRef::parse(&self.user).map_err(|e| e.to_string())?;
        let mut r = Relationship::new(object, self.relation.trim(), subject);
        r.caveat =
            self.condition.as_ref().map(|c| CaveatRef { name: c.name.clone(), context: c.context.clone() });
        Ok(r)
    }
}

/// A failed request: OpenFGA's error code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FgaError {
    pub code: u32,
    pub message: String,
}

impl fmt::Display for FgaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code, self.message)
    }
}

fn err(code: u32, message: impl Into<String>) -> FgaError {
    FgaError { code, message: message.into() }
}

fn eval_err(e: EvalError) -> FgaError {
    match e {
        EvalError::DepthExceeded { .. } | EvalError::ExclusionCycle { .. } => err(TOO_COMPLEX, e.to_string()),
        _ => err(VALIDATION, e.to_string()),
    }
}

/// A model with the tuples written so far; what a request runs against.
#[derive(Clone, Debug)]
pub(crate) struct Store {
    pv: Purview,
    schema: Arc<Schema>,
}

impl Store {
    /// A store with a model and no tuples.
    pub fn new(schema: Arc<Schema>, engine: crate::api::Engine) -> Store {
        Store { pv: Purview::with_engine((*schema).clone(), engine), schema }
    }

    /// Writes every tuple the model accepts; returns the positions of the others, with reasons.
    pub fn write(&mut self, tuples: &[Tuple]) -> Vec<(usize, String)> {
        let ops: Result<Vec<WriteOp>, String> =
            tuples.iter().map(|t| t.to_relationship().map(WriteOp::Touch)).collect();
        if ops.is_ok_and(|ops| self.pv.write(&ops).is_ok()) {
            return Vec::new();
        }
        let mut rejected = Vec::new();
        for (i, t) in tuples.iter().enumerate() {
            let written = t
                .to_relationship()
                .and_then(|r| self.pv.write(&[WriteOp::Touch(r)]).map(|_| ()).map_err(|e| e.to_string()));
            if let Err(e) = written {
                rejected.push((i, format!("`{t}`: {e}")));
            }
        }
        rejected
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The store with the request's contextual tuples added.
    pub(crate) fn with(&self, contextual: &[Tuple]) -> Result<View, FgaError> {
        if contextual.is_empty() {
            return Ok(self.pv.snapshot());
        }
        let pv = self.pv.fork();
        let ops = contextual
            .iter()
            .map(|t| t.to_relationship().map(WriteOp::Touch).map_err(|e| err(INVALID_TUPLE, e)))
            .collect::<Result<Vec<_>, _>>()?;
        pv.write(&ops).map_err(|e| err(INVALID_TUPLE, format!("invalid contextual tuple: {e}")))?;
        Ok(pv.snapshot())
    }

    fn has_relation(&self, ty: &str, rel: &str) -> bool {
        self.schema().relation(ty, rel).is_some()
    }

    fn has_type(&self, ty: &str) -> bool {
        self.schema().type_id(ty).is_some()
    }

    /// A user that names a known type (and relation); `code` is the error if not.
    fn user(&self, user: &str, code: u32) -> Result<SubjectRef, FgaError> {
        let s = SubjectRef::parse(user).map_err(|e| err(code, e.to_string()))?;
        if !self.has_type(&s.ty) {
            return Err(err(code, format!("type `{}` not found", s.ty)));
        }
        if let Some(r) = &s.relation {
            if !self.has_relation(&s.ty, r) {
                return Err(err(code, format!("relation `{}#{r}` not found", s.ty)));
            }
        }
        Ok(s)
    }

    /// Check: may `user` have `relation` on `object`?
    pub fn check(
        &self,
        object: &str,
        relation: &str,
        user: &str,
        context: &JsonMap,
        contextual: &[Tuple],
    ) -> Result<bool, FgaError> {
        let o = ObjectRef::parse(object).map_err(|e| err(VALIDATION, e.to_string()))?;
        if !self.has_relation(&o.ty, relation) {
            return Err(err(VALIDATION, format!("relation `{}#{relation}` not found", o.ty)));
        }
        let s = self.user(user, VALIDATION)?;
        let snap = self.with(contextual)?;
        let d = snap.check(&o, relation, &s, &opts(context)).map_err(eval_err)?;
        Ok(d.tri() == Tri::True)
    }

    /// ListObjects: the objects of `ty` on which `user` has `relation`.
    pub fn list_objects(
        &self,
        user: &str,
        ty: &str,
        relation: &str,
        context: &JsonMap,
        contextual: &[Tuple],
    ) -> Result<BTreeSet<String>, FgaError> {
        if !self.has_type(ty) {
            return Err(err(TYPE_NOT_FOUND, format!("type `{ty}` not found")));
        }
        if !self.has_relation(ty, relation) {
            return Err(err(RELATION_NOT_FOUND, format!("relation `{ty}#{relation}` not found")));
        }
        let s = self.user(user, VALIDATION)?;
        let snap = self.with(contextual)?;
        let found = super::common::what_all(&snap, &s, relation, ty, &opts(context)).map_err(eval_err)?;
        Ok(found.into_iter().filter(|(_, c)| !c).map(|(o, _)| o).collect())
    }

    /// ListUsers: the users matching `filters` (`user`, `group#member`) that have `relation`
    /// on `object`; a wildcard is reported as `user:*`, whatever it excludes.
    pub fn list_users(
        &self,
        object: &str,
        relation: &str,
        filters: &[String],
        context: &JsonMap,
        contextual: &[Tuple],
    ) -> Result<BTreeSet<String>, FgaError> {
        let o = ObjectRef::parse(object).map_err(|e| err(VALIDATION, e.to_string()))?;
        if !self.has_type(&o.ty) {
            return Err(err(TYPE_NOT_FOUND, format!("type `{}` not found", o.ty)));
        }
        if !self.has_relation(&o.ty, relation) {
            return Err(err(RELATION_NOT_FOUND, format!("relation `{}#{relation}` not found", o.ty)));
        }
        let filters: Vec<SubjectFilter> = filters.iter().map(|f| SubjectFilter::parse(f)).collect();
        for f in &filters {
            if !self.has_type(&f.ty) {
                return Err(err(TYPE_NOT_FOUND, format!("type `{}` not found", f.ty)));
            }
            if let Some(r) = &f.relation {
                if !self.has_relation(&f.ty, r) {
                    return Err(err(RELATION_NOT_FOUND, format!("relation `{}#{r}` not found", f.ty)));
                }
            }
        }
        let snap = self.with(contextual)?;
        let opts = opts(context);
        let mut out = BTreeSet::new();
        for f in &filters {
            let w = snap.who(&o, relation, f, &opts).map_err(eval_err)?;
            out.extend(w.subjects.iter().filter(|s| s.outcome == Tri::True).map(|s| s.subject.to_string()));
            if w.wildcard.is_some_and(|wc| wc.outcome == Tri::True) {
                out.insert(format!("{}:*", f.ty));
            }
        }
        Ok(out)
    }
}

/// OpenFGA's evaluation options: request context, now, depth 25, missing parameters an error.
fn opts(context: &JsonMap) -> EvalOptions {
    EvalOptions {
        context: context.clone(),
        limits: Limits { max_depth: MAX_DEPTH, ..Limits::default() },
        missing_context: MissingContext::Error,
        ..EvalOptions::default()
    }
}

/// Compares an outcome with an expected error code (`Some`) or value (`None` code).
pub(crate) fn expect<T: PartialEq + fmt::Debug>(
    got: Result<T, FgaError>,
    code: Option<u32>,
    expected: T,
    show: impl Fn(&T) -> String,
) -> Result<(), String> {
    match (got, code) {
        (Ok(v), None) if v == expected => Ok(()),
        (Ok(v), None) => Err(format!("expected {}, got {}", show(&expected), show(&v))),
        (Ok(v), Some(c)) => Err(format!("expected error {c}, got {}", show(&v))),
        (Err(e), Some(c)) if e.code == c => Ok(()),
        (Err(e), Some(c)) => Err(format!("expected error {c}, got {e}")),
        (Err(e), None) => Err(format!("expected {}, got {e}", show(&expected))),
    }
}

/// A set of names for messages: `[a, b]`.
pub(crate) fn show_set(s: &BTreeSet<String>) -> String {
    format!("[{}]", s.iter().cloned().collect::<Vec<_>>().join(", "))
}
