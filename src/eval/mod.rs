//! Evaluation: check, who (lookup subjects), what (lookup resources), expand and explain.
//!
//! [`reference`] is the simple evaluator that every faster path is tested against. Its answers
//! use three-valued logic ([`Tri`]): a relationship whose condition lacks context is neither
//! allowed nor denied but *conditional*, and that propagates through union (∨), intersection (∧)
//! and exclusion (∧¬) by Kleene's rules.

pub mod explain;
pub mod membership;
pub mod reference;
mod subjects;
pub mod tree_formats;

pub use subjects::SubjectSet;

use crate::schema::condition::{ConditionOutcome, JsonMap};
use crate::schema::Schema;
use crate::store::TupleAttrs;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeSet;

/// Three-valued truth. Serialized as `denied`, `conditional`, `allowed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Tri {
    #[default]
    #[serde(rename = "denied")]
    False,
    /// Depends on condition parameters that were not supplied.
    #[serde(rename = "conditional")]
    Cond,
    #[serde(rename = "allowed")]
    True,
}

impl Tri {
    pub fn or(self, o: Tri) -> Tri {
        self.max(o)
    }
    pub fn and(self, o: Tri) -> Tri {
        self.min(o)
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Tri {
        match self {
            Tri::False => Tri::True,
            Tri::Cond => Tri::Cond,
            Tri::True => Tri::False,
        }
    }
    pub fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// The answer to a check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "decision")]
pub enum Decision {
    Allowed,
    Denied,
    /// Allowed only if conditions hold that need the listed context parameters.
    Conditional {
        missing: Vec<String>,
    },
}

impl Decision {
    pub fn tri(&self) -> Tri {
        match self {
            Decision::Allowed => Tri::True,
            Decision::Denied => Tri::False,
            Decision::Conditional { .. } => Tri::Cond,
        }
    }
}

/// What to do when a condition needs a parameter the context does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MissingContext {
    /// The answer is conditional (SpiceDB).
    #[default]
    Conditional,
    /// The request fails with [`EvalError::MissingContext`] (OpenFGA).
    Error,
}

/// Limits that end evaluation with an error instead of exhausting the stack or memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How many relations deep one evaluation may go (usersets, arrows, computed references).
    pub max_depth: u32,
    /// How many results a lookup may return before it fails with [`EvalError::TooManyResults`].
    pub max_results: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 50, max_results: 1_000_000 }
    }
}

/// Everything besides the question: request context, evaluation time, limits.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Parameters for conditions; context stored on a relationship takes precedence.
    pub context: JsonMap,
    /// The time relationships' validity and expiration are judged at.
    pub at: DateTime<Utc>,
    pub limits: Limits,
    pub missing_context: MissingContext,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            context: JsonMap::new(),
            at: Utc::now(),
            limits: Limits::default(),
            missing_context: MissingContext::default(),
        }
    }
}

/// Why an evaluation could not give an answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum EvalError {
    #[error("evaluation went deeper than the limit of {limit} nested relations")]
    DepthExceeded { limit: u32 },
    /// The data cycles through an exclusion (`viewer - restricted` where `restricted` leads back
    /// to `viewer` of the same object): the permission depends on its own negation, so it has no
    /// well-defined answer. SpiceDB reports its depth limit for such data.
    #[error("`{object}#{relation}` depends on its own exclusion through the relationships (the data cycles through `-`); it has no well-defined answer")]
    ExclusionCycle { object: String, relation: String },
    #[error("the lookup found more than the limit of {limit} results")]
    TooManyResults { limit: usize },
    #[error("condition parameters missing from the context: {}", .missing.join(", "))]
    MissingContext { missing: Vec<String> },
    #[error("{0}")]
    Condition(String),
    #[error("unknown type `{0}`")]
    UnknownType(String),
    #[error("type `{ty}` has no relation or permission `{relation}`")]
    UnknownRelation { ty: String, relation: String },
    #[error("`{0}` is not a valid subject here")]
    InvalidSubject(String),
    #[error("`{0}` is not a cursor returned by this lookup")]
    InvalidCursor(String),
    #[error("revision {requested} is not visible yet (the latest is {current})")]
    RevisionNotVisible { requested: u64, current: u64 },
    #[error("revision {requested} is no longer readable: history before revision {oldest} was garbage-collected (widen the history window to keep more)")]
    RevisionCollected { requested: u64, oldest: u64 },
    #[error("revision {requested} cannot be read: {reason}")]
    HistoryUnavailable { requested: u64, reason: String },
}

/// Judges the time windows and conditions of relationships for one request, and remembers what
/// made answers conditional: the missing parameters and, under [`MissingContext::Error`], the
/// first condition that failed (reported only if the answer depends on it).
#[derive(Debug)]
pub struct Conditions<'a> {
    schema: &'a Schema,
    opts: &'a EvalOptions,
    pub missing: BTreeSet<String>,
    pub error: Option<String>,
}

impl<'a> Conditions<'a> {
    pub fn new(schema: &'a Schema, opts: &'a EvalOptions) -> Self {
        Conditions { schema, opts, missing: BTreeSet::new(), error: None }
    }

    /// Whether the relationship is in force at the evaluation time (ignoring its condition).
    pub fn in_force(&self, attrs: &TupleAttrs) -> bool {
        attrs.active_at(self.opts.at)
    }

    /// Whether the relationship holds: in force, and its condition true.
    pub fn holds(&mut self, attrs: &TupleAttrs) -> Result<Tri, EvalError> {
        if !self.in_force(attrs) {
            return Ok(Tri::False);
        }
        self.condition(attrs)
    }

    /// The relationship's condition alone (`True` when it has none).
    pub fn condition(&mut self, attrs: &TupleAttrs) -> Result<Tri, EvalError> {
        let Some(c) = &attrs.caveat else { return Ok(Tri::True) };
        let strict = self.opts.missing_context == MissingContext::Error;
        let cond = self.schema.condition(c.cond);
        match cond.evaluate_with(c.context.as_deref(), &self.opts.context, strict) {
            ConditionOutcome::True => Ok(Tri::True),
            ConditionOutcome::False => Ok(Tri::False),
            ConditionOutcome::Missing(m) => {
                self.missing.extend(m);
                Ok(Tri::Cond)
            }
            ConditionOutcome::Error(e) if strict => {
                // As OpenFGA: a failing branch only fails the request if nothing else decides it.
                self.error.get_or_insert(e);
                Ok(Tri::Cond)
            }
            ConditionOutcome::Error(e) => Err(EvalError::Condition(e)),
        }
    }

    /// Turns a three-valued result into a decision, honouring the missing-context policy.
    pub fn decide(&self, t: Tri) -> Result<Decision, EvalError> {
        Ok(match t {
            Tri::True => Decision::Allowed,
            Tri::False => Decision::Denied,
            Tri::Cond => {
                if let Some(e) = &self.error {
                    return Err(EvalError::Condition(e.clone()));
                }
                let missing: Vec<String> = self.missing.iter().cloned().collect();
                if self.opts.missing_context == MissingContext::Error {
                    return Err(EvalError::MissingContext { missing });
                }
                Decision::Conditional { missing }
            }
        })
    }

    /// Under [`MissingContext::Error`], fails if any condition met on the way lacked context or
    /// failed, whatever the answer (OpenFGA's rule for lookups).
    pub fn fail_on_any(&self) -> Result<(), EvalError> {
        if self.opts.missing_context != MissingContext::Error {
            return Ok(());
        }
        if let Some(e) = &self.error {
            return Err(EvalError::Condition(e.clone()));
        }
        if !self.missing.is_empty() {
            return Err(EvalError::MissingContext { missing: self.missing.iter().cloned().collect() });
        }
        Ok(())
    }
}

/// Whether `subject` is `object` itself, as a plain subject (what SpiceDB's `self` grants).
pub fn is_self(object: crate::store::Obj, subject: crate::store::Subject) -> bool {
    subject.rel.is_none() && !subject.is_wildcard() && subject.ty == object.ty && subject.id == object.id
}

/// The relations one evaluation is inside of, for the top-down evaluators (the reference
/// evaluator and the index's check and `who`).
///
/// Re-entering a relation already on the stack is a cycle in the data. Through unions,
/// intersections and arrows it means "not by this path" (the least fixpoint: a cycle alone grants
/// nothing). Through the right side of an exclusion the relation would depend on its own
/// negation, which has no well-defined answer: the cut is then *undefined*, evaluated as unknown
/// by Kleene's rules (like a missing condition parameter), and the question fails with
/// [`EvalError::ExclusionCycle`] only if its answer depends on it — an answer that is allowed or
/// denied whatever the cycle's value stands. Results that saw a cut are not memoized.
#[derive(Debug)]
pub struct Recursion {
    /// `(object, relation, exclusions around it when entered)`.
    stack: Vec<(crate::store::Obj, crate::schema::RelId, u32)>,
    /// How many right sides of exclusions the evaluation is inside of.
    negated: u32,
    /// Lowest stack index of a cut seen since the marker was reset.
    lowest_cut: usize,
    /// Whether an undefined cut (through an exclusion) was met since the marker was reset.
    undefined: bool,
    /// Whether the last cut went through an exclusion.
    last_negative: bool,
}

impl Default for Recursion {
    fn default() -> Self {
        Recursion {
            stack: Vec::new(),
            negated: 0,
            lowest_cut: usize::MAX,
            undefined: false,
            last_negative: false,
        }
    }
}

/// What [`Recursion::enter`] saved of the caller's markers.
#[derive(Clone, Copy, Debug)]
pub struct Entered {
    cut: usize,
    undefined: bool,
}

impl Recursion {
    /// Enters `object#rel`; `Ok(None)` means it is already being evaluated (a cycle: its value
    /// on this path is [`Recursion::cut_value`]).
    pub fn enter(
        &mut self,
        object: crate::store::Obj,
        rel: crate::schema::RelId,
        max_depth: u32,
    ) -> Result<Option<Entered>, EvalError> {
        if let Some(i) = self.stack.iter().position(|&(o, r, _)| (o, r) == (object, rel)) {
            self.lowest_cut = self.lowest_cut.min(i);
            self.last_negative = self.negated > self.stack[i].2;
            self.undefined |= self.last_negative;
            return Ok(None);
        }
        if self.stack.len() >= max_depth as usize {
            return Err(EvalError::DepthExceeded { limit: max_depth });
        }
        self.stack.push((object, rel, self.negated));
        let saved = Entered { cut: self.lowest_cut, undefined: self.undefined };
        self.lowest_cut = usize::MAX;
        self.undefined = false;
        Ok(Some(saved))
    }

    /// The value of the relation just re-entered: denied (least fixpoint), or unknown when the
    /// cycle went through an exclusion.
    pub fn cut_value(&self) -> Tri {
        if self.last_negative {
            Tri::Cond
        } else {
            Tri::False
        }
    }

    /// Leaves the current relation; returns whether its result may be memoized.
    pub fn leave(&mut self, saved: Entered) -> bool {
        let depth = self.stack.len().saturating_sub(1);
        self.stack.pop();
        let exact = self.lowest_cut >= depth && !self.undefined;
        // Cuts below this node also taint the callers.
        let inner = if self.lowest_cut >= depth { usize::MAX } else { self.lowest_cut };
        self.lowest_cut = saved.cut.min(inner);
        self.undefined |= saved.undefined;
        exact
    }

    /// Whether no relation is being evaluated.
    pub fn is_empty(&self) -> bool {
        self.stack.is_empty()
    }

    /// Enters (`+1`) or leaves (`-1`) the right side of an exclusion.
    pub fn negate(&mut self, by: i32) {
        self.negated = self.negated.saturating_add_signed(by);
    }

    /// At the top of a question: an unknown answer that met an undefined cut is the cycle's
    /// error, not a conditional answer.
    pub fn finish(
        &mut self,
        t: Tri,
        object: impl FnOnce() -> String,
        relation: impl FnOnce() -> String,
    ) -> Result<Tri, EvalError> {
        if self.stack.is_empty() && self.undefined {
            self.undefined = false;
            if t == Tri::Cond {
                return Err(EvalError::ExclusionCycle { object: object(), relation: relation() });
            }
        }
        Ok(t)
    }
}
