//! Evaluation: check, who (lookup subjects), what (lookup resources), expand and explain.
//!
//! [`reference`] is the simple evaluator that every faster path is tested against. Its answers
//! use three-valued logic ([`Tri`]): a relationship whose condition lacks context is neither
//! allowed nor denied but *conditional*, and that propagates through union (∨), intersection (∧)
//! and exclusion (∧¬) by Kleene's rules.

pub mod explain;
pub mod reference;
mod subjects;

pub use subjects::SubjectSet;

use crate::schema::condition::JsonMap;
use chrono::{DateTime, Utc};
use serde::Serialize;

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
}
