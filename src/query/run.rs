//! Running a query on a snapshot, and its answer as data (serde) or text.

use super::ast::{Op, Query};
use crate::api::{FoundSubject, Page, SubsetResult, View, WhatResult, WhoResult};
use crate::eval::explain::Tree;
use crate::eval::{Decision, EvalError, EvalOptions, Tri};
use serde::Serialize;
use std::fmt::Write as _;

/// The answer to one query. Serializes with an `op` tag and the query in canonical form:
/// `{"op":"check","query":"check document:readme#view@user:ann","decision":"allowed"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum QueryOutput {
    Check {
        query: String,
        #[serde(flatten)]
        decision: Decision,
    },
    Explain {
        query: String,
        #[serde(flatten)]
        decision: Decision,
        tree: Tree,
    },
    Who {
        query: String,
        /// The subject type asked for (names the wildcard when one is found).
        #[serde(skip)]
        subject_type: String,
        #[serde(flatten)]
        result: WhoResult,
    },
    What {
        query: String,
        #[serde(flatten)]
        result: WhatResult,
    },
    /// `what` across every type that has the permission: the objects, by type.
    #[serde(rename = "what")]
    WhatAll {
        query: String,
        by_type: Vec<WhatOfType>,
    },
    Expand {
        query: String,
        tree: Tree,
    },
    /// `{"op":"subset","query":…,"holds":false,"missing":[{"ty":"right","id":"x"}],"conditional":[]}`
    Subset {
        query: String,
        #[serde(flatten)]
        result: SubsetResult,
    },
    /// The query could not be answered.
    Error {
        query: String,
        #[serde(flatten)]
        error: QueryFailure,
    },
}

/// Why a query got no answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueryFailure {
    /// `input` (the query names something that does not exist, a bad cursor) or `evaluation`
    /// (a limit was reached, a condition failed, context was missing).
    pub kind: FailureKind,
    /// A short stable identifier: `unknown-type`, `depth-exceeded`, ...
    pub code: &'static str,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    Input,
    Evaluation,
}

impl From<EvalError> for QueryFailure {
    fn from(e: EvalError) -> Self {
        let (kind, code) = match &e {
            EvalError::DepthExceeded { .. } => (FailureKind::Evaluation, "depth-exceeded"),
            EvalError::ExclusionCycle { .. } => (FailureKind::Evaluation, "exclusion-cycle"),
            EvalError::TooManyResults { .. } => (FailureKind::Evaluation, "too-many-results"),
            EvalError::MissingContext { .. } => (FailureKind::Evaluation, "missing-context"),
            EvalError::Condition(_) => (FailureKind::Evaluation, "condition-error"),
            EvalError::UnknownType(_) => (FailureKind::Input, "unknown-type"),
            EvalError::UnknownRelation { .. } => (FailureKind::Input, "unknown-relation"),
            EvalError::InvalidCursor(c) => {
                let message = format!("invalid cursor `{c}`: pass a cursor printed by a previous page");
                return QueryFailure { kind: FailureKind::Input, code: "invalid-cursor", message };
            }
            EvalError::InvalidSubject(_) => (FailureKind::Input, "invalid-subject"),
            EvalError::RevisionNotVisible { .. } => (FailureKind::Evaluation, "revision-not-visible"),
            EvalError::RevisionCollected { .. } => (FailureKind::Evaluation, "revision-collected"),
            EvalError::HistoryUnavailable { .. } => (FailureKind::Evaluation, "history-unavailable"),
        };
        QueryFailure { kind, code, message: e.to_string() }
    }
}

/// Answers `q` on `snap`. The query's `with` context is merged over `base.context` (the query's
/// keys win), its `at` replaces `base.at`; `limit` and `after` page a `what`.
pub fn run_query(snap: &View, q: &Query, base: &EvalOptions) -> QueryOutput {
    let mut opts = base.clone();
    if let Some(ctx) = &q.clauses.context {
        for (k, v) in ctx {
            opts.context.insert(k.clone(), v.clone());
        }
    }
    if let Some(at) = q.clauses.at {
        opts.at = at;
    }
    let query = q.to_string();
    let answer = match &q.op {
        Op::Check(t) => snap
            .check(&t.object.value, &t.permission.value, &t.subject.value, &opts)
            .map(|decision| QueryOutput::Check { query: query.clone(), decision }),
        Op::Explain(t) => snap
            .explain(&t.object.value, &t.permission.value, &t.subject.value, &opts)
            .map(|e| QueryOutput::Explain { query: query.clone(), decision: e.decision, tree: e.tree }),
        Op::Who { object, permission, filter } => {
            snap.who(&object.value, &permission.value, &filter.value, &opts).map(|mut result| {
                // A whole answer (no paging here): by name reads best.
                result.subjects.sort_by(|a, b| a.subject.cmp(&b.subject));
                if let Some(w) = &mut result.wildcard {
                    w.excluded.sort_by(|a, b| a.subject.cmp(&b.subject));
                }
                QueryOutput::Who { query: query.clone(), subject_type: filter.value.ty.clone(), result }
            })
        }
        Op::What { object_type, permission, subject } => {
            let page = Page { limit: q.clauses.limit, cursor: q.clauses.after.clone() };
            snap.what(&subject.value, &permission.value, &object_type.value, &page, &opts)
                .map(|result| QueryOutput::What { query: query.clone(), result })
        }
        Op::WhatAll { permission, subject } => {
            snap.what_all(&subject.value, &permission.value, &opts).map(|all| {
                let by_type = all.into_iter().map(|(ty, result)| WhatOfType { ty, result }).collect();
                QueryOutput::WhatAll { query: query.clone(), by_type }
            })
        }
        Op::Expand { object, permission } => snap
            .expand(&object.value, &permission.value, &opts)
            .map(|tree| QueryOutput::Expand { query: query.clone(), tree }),
        Op::Subset { set, subject, permission } => snap
            .subset(&set.to_object_set(), &subject.value, &permission.value, &opts)
            .map(|result| QueryOutput::Subset { query: query.clone(), result }),
    };
    answer.unwrap_or_else(|e| QueryOutput::Error { query, error: e.into() })
}

/// The objects of one type a type-less `what` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WhatOfType {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(flatten)]
    pub result: WhatResult,
}

impl QueryOutput {
    /// The query this answers, in canonical form.
    pub fn query(&self) -> &str {
        match self {
            QueryOutput::Check { query, .. }
            | QueryOutput::Explain { query, .. }
            | QueryOutput::Who { query, .. }
            | QueryOutput::What { query, .. }
            | QueryOutput::WhatAll { query, .. }
            | QueryOutput::Expand { query, .. }
            | QueryOutput::Subset { query, .. }
            | QueryOutput::Error { query, .. } => query,
        }
    }

    /// The decision of a `check` or `explain`; for a `subset`, `allowed` when it holds, `denied`
    /// when a member is missing, else `conditional` (without context names: the answer does not
    /// collect them). Exit codes follow it.
    pub fn decision(&self) -> Option<&Decision> {
        static ALLOWED: Decision = Decision::Allowed;
        static DENIED: Decision = Decision::Denied;
        static CONDITIONAL: Decision = Decision::Conditional { missing: Vec::new() };
        match self {
            QueryOutput::Check { decision, .. } | QueryOutput::Explain { decision, .. } => Some(decision),
            QueryOutput::Subset { result, .. } if result.holds => Some(&ALLOWED),
            QueryOutput::Subset { result, .. } if !result.missing.is_empty() => Some(&DENIED),
            QueryOutput::Subset { .. } => Some(&CONDITIONAL),
            _ => None,
        }
    }

    /// The answer as text for a person, ending in a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        match self {
            QueryOutput::Check { decision, .. } => {
                let _ = writeln!(out, "{}", render_decision(decision));
            }
            QueryOutput::Explain { decision, tree, .. } => {
                let _ = writeln!(out, "{}", render_decision(decision));
                out.push_str(&tree.render());
            }
            QueryOutput::Who { subject_type, result, .. } => render_who(&mut out, subject_type, result),
            QueryOutput::What { result, .. } => {
                for o in &result.objects {
                    let _ = writeln!(out, "{}{}", o.object, mark(o.outcome));
                }
                if result.objects.is_empty() {
                    out.push_str("(no objects)\n");
                }
                if let Some(c) = &result.cursor {
                    let _ = writeln!(out, "next cursor: {c}");
                }
            }
            QueryOutput::WhatAll { by_type, .. } => {
                for w in by_type {
                    let _ = writeln!(out, "{}:", w.ty);
                    for o in &w.result.objects {
                        let _ = writeln!(out, "  {}{}", o.object, mark(o.outcome));
                    }
                    if w.result.objects.is_empty() {
                        out.push_str("  (no objects)\n");
                    }
                }
            }
            QueryOutput::Expand { tree, .. } => out.push_str(&tree.render()),
            QueryOutput::Subset { result, .. } => render_subset(&mut out, result),
            QueryOutput::Error { error, .. } => {
                let _ = writeln!(out, "error[{}]: {}", error.code, error.message);
            }
        }
        out
    }
}

/// `allowed`, `denied` or `conditional (missing: a, b)`.
pub fn render_decision(d: &Decision) -> String {
    match d {
        Decision::Allowed => "allowed".into(),
        Decision::Denied => "denied".into(),
        Decision::Conditional { missing } if missing.is_empty() => "conditional".into(),
        Decision::Conditional { missing } => format!("conditional (missing: {})", missing.join(", ")),
    }
}

/// `holds`; `does not hold` and the missing members; or `holds conditionally`; then the members
/// that depend on context not given.
fn render_subset(out: &mut String, r: &SubsetResult) {
    let list =
        |os: &[crate::store::ObjectRef]| os.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    if r.holds {
        out.push_str("holds\n");
        return;
    }
    if r.missing.is_empty() {
        out.push_str("holds conditionally\n");
    } else {
        let _ = writeln!(out, "does not hold\nmissing: {}", list(&r.missing));
    }
    if !r.conditional.is_empty() {
        let _ = writeln!(out, "conditional: {}", list(&r.conditional));
    }
}

fn mark(t: Tri) -> &'static str {
    if t == Tri::Cond {
        " (conditional)"
    } else {
        ""
    }
}

fn render_who(out: &mut String, subject_type: &str, r: &WhoResult) {
    if let Some(w) = &r.wildcard {
        let names = |want: Tri| -> Vec<String> {
            w.excluded
                .iter()
                .filter(|s| s.outcome == want)
                .map(|s: &FoundSubject| s.subject.to_string())
                .collect()
        };
        let _ = write!(out, "{subject_type}:*");
        let not = names(Tri::False);
        if !not.is_empty() {
            let _ = write!(out, " except {}", not.join(", "));
        }
        let _ = write!(out, "{}", mark(w.outcome));
        let cond = names(Tri::Cond);
        if !cond.is_empty() {
            let _ = write!(out, " ({} only conditionally)", cond.join(", "));
        }
        out.push('\n');
    }
    for s in &r.subjects {
        let _ = writeln!(out, "{}{}", s.subject, mark(s.outcome));
    }
    if r.subjects.is_empty() && r.wildcard.is_none() {
        out.push_str("(no subjects)\n");
    }
}
