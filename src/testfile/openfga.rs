//! OpenFGA's consolidated test files (`assets/tests/*.yaml` upstream).
//!
//! ```yaml
//! tests:
//!   - name: this
//!     stages:                  # share one store
//!       - model: |             # OpenFGA DSL; replaces the previous stage's model
//!           model
//!             schema 1.1
//!           type user
//!           type document
//!             relations
//!               define viewer: [user, user with cond]
//!           condition cond(x: int) { x < 100 }
//!         tuples:              # appended to the store
//!           - {object: "document:1", relation: viewer, user: "user:anne"}
//!         checkAssertions:
//!           - tuple: {object: "document:1", relation: viewer, user: "user:anne"}
//!             context: {x: 10}
//!             contextualTuples: [...]
//!             expectation: true        # omitted: false
//!             errorCode: 2000          # or: the request fails with this code
//!         listObjectsAssertions:
//!           - request: {user: "user:anne", type: document, relation: viewer}
//!             expectation: ["document:1"]
//!         listUsersAssertions:
//!           - request: {object: "document:1", relation: viewer, filters: ["user"]}
//!             expectation: ["user:anne"]
//! ```
//!
//! Each check, list-objects and list-users assertion is one assertion, named
//! `<test> stage <n> check <m>: <tuple>` (and `list_objects`, `list_users`). `context` and
//! `contextualTuples` may stand beside `request:` or inside it. Tuples written in an earlier stage
//! stay in the store; those the current model rejects are ignored, as OpenFGA ignores them.
//!
//! As upstream, every single-stage test runs a second time with no tuples written and all of the
//! stage's tuples passed as contextual tuples of every request; those assertions are named
//! `<test>_ctxTuples ...`.
//!
//! Evaluation follows OpenFGA: missing condition parameters fail the request, and so does going
//! deeper than 25 relations. Error codes are OpenFGA's: 2000 for an invalid check or list-objects
//! user (unknown type or relation, bad syntax), a missing condition parameter or a condition that
//! cannot be evaluated; 2002 for the depth limit; 2021 and 2022 for an unknown type or relation
//! in a list request (its object, type, relation or user filter); 2027 for a contextual tuple the
//! model does not accept.

use super::common::{CheckText, Tally};
use super::consistency;
use super::fga::{self, Store, Tuple};
use super::{FileCtx, Origin};
use crate::eval::EvalOptions;
use crate::schema::condition::JsonMap;
use crate::store::{ObjectRef, Relationship, SubjectRef};
use crate::syntax::SchemaFormat;
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

#[derive(Deserialize)]
struct Test {
    name: String,
    #[serde(default)]
    stages: Vec<Stage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stage {
    model: String,
    #[serde(default)]
    tuples: Option<Vec<Tuple>>,
    #[serde(default)]
    check_assertions: Option<Vec<CheckAssertion>>,
    #[serde(default)]
    list_objects_assertions: Option<Vec<ListAssertion<ListObjectsRequest>>>,
    #[serde(default)]
    list_users_assertions: Option<Vec<ListAssertion<ListUsersRequest>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckAssertion {
    tuple: CheckTuple,
    #[serde(default)]
    context: Option<JsonMap>,
    #[serde(default)]
    contextual_tuples: Option<Vec<Tuple>>,
    #[serde(default)]
    expectation: Option<bool>,
    #[serde(default)]
    error_code: Option<u32>,
}

#[derive(Deserialize)]
struct CheckTuple {
    object: String,
    relation: String,
    user: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListAssertion<R> {
    request: R,
    #[serde(default)]
    context: Option<JsonMap>,
    #[serde(default)]
    contextual_tuples: Option<Vec<Tuple>>,
    #[serde(default)]
    expectation: Option<Vec<String>>,
    #[serde(default)]
    error_code: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListObjectsRequest {
    user: String,
    #[serde(rename = "type")]
    ty: String,
    relation: String,
    #[serde(default)]
    context: Option<JsonMap>,
    #[serde(default)]
    contextual_tuples: Option<Vec<Tuple>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListUsersRequest {
    object: String,
    relation: String,
    #[serde(default)]
    filters: Vec<String>,
    #[serde(default)]
    context: Option<JsonMap>,
    #[serde(default)]
    contextual_tuples: Option<Vec<Tuple>>,
}

/// Runs an OpenFGA consolidated test file.
pub(crate) fn run(file: &FileCtx, doc: Value) -> super::Report {
    let mut t = Tally::new(&file.name);
    let tests = match doc.get("tests") {
        Some(Value::Sequence(s)) => s.clone(),
        _ => {
            t.fail("file", "expected `tests:` with a list of tests");
            return t.finish();
        }
    };
    for (i, v) in tests.into_iter().enumerate() {
        match serde_yaml_ng::from_value::<Test>(v) {
            Ok(test) => {
                run_test(&mut t, file, &test, false);
                if test.stages.len() == 1 {
                    run_test(&mut t, file, &test, true);
                }
            }
            Err(e) => t.fail(format!("test {i}"), format!("not a valid OpenFGA test: {e}")),
        }
    }
    t.finish()
}

/// Runs the stages of one test; with `ctx_tuples`, every stage tuple is a contextual tuple instead.
fn run_test(t: &mut Tally, file: &FileCtx, test: &Test, ctx_tuples: bool) {
    let name = if ctx_tuples { format!("{}_ctxTuples", test.name) } else { test.name.clone() };
    let mut written: Vec<Tuple> = Vec::new();
    let name_line = format!("name: {}", test.name);
    let from_line =
        file.text.lines().position(|l| l.trim_start_matches([' ', '-']).trim_end() == name_line).unwrap_or(0);
    for (n, stage) in test.stages.iter().enumerate() {
        let at = format!("{name} stage {n}");
        let origin = Origin::Inline { file, label: &format!("{at} model"), from_line };
        let schema = match super::compile(SchemaFormat::OpenFgaDsl, &stage.model, origin) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                t.fail(format!("{at} model"), e);
                return;
            }
        };
        let tuples = stage.tuples.as_deref().unwrap_or(&[]);
        let mut store = Store::new(schema, file.engine);
        if ctx_tuples {
            run_stage(t, &at, stage, &store, tuples);
            continue;
        }
        // Tuples of earlier stages that this model rejects are ignored, not errors.
        store.write(&written);
        let rejected = store.write(tuples);
        if !rejected.is_empty() {
            let reasons: Vec<&str> = rejected.iter().map(|(_, r)| r.as_str()).collect();
            t.fail(format!("{at} tuples"), format!("the model rejects {}", reasons.join("; ")));
        }
        written.extend(
            tuples
                .iter()
                .enumerate()
                .filter(|(i, _)| !rejected.iter().any(|(r, _)| r == i))
                .map(|(_, tu)| tu.clone()),
        );
        run_stage(t, &at, stage, &store, &[]);
    }
}

fn with(a: &Option<Vec<Tuple>>, b: &Option<Vec<Tuple>>, extra: &[Tuple]) -> Vec<Tuple> {
    a.iter().chain(b.iter()).flatten().chain(extra.iter()).cloned().collect()
}

fn run_stage(t: &mut Tally, at: &str, stage: &Stage, store: &Store, extra: &[Tuple]) {
    let empty = JsonMap::new();
    lookups_agree(t, at, stage, store, extra);
    for (m, a) in stage.check_assertions.iter().flatten().enumerate() {
        let q = &a.tuple;
        let ctx = with(&a.contextual_tuples, &None, extra);
        let got = store.check(&q.object, &q.relation, &q.user, a.context.as_ref().unwrap_or(&empty), &ctx);
        let outcome = fga::expect(got, a.error_code, a.expectation.unwrap_or(false), |b| b.to_string());
        t.record(format!("{at} check {m}: {}#{}@{}", q.object, q.relation, q.user), outcome);
    }
    for (m, a) in stage.list_objects_assertions.iter().flatten().enumerate() {
        let r = &a.request;
        let ctx = with(&a.contextual_tuples, &r.contextual_tuples, extra);
        let context = a.context.as_ref().or(r.context.as_ref()).unwrap_or(&empty);
        let got = store.list_objects(&r.user, &r.ty, &r.relation, context, &ctx);
        let expected: BTreeSet<String> = a.expectation.iter().flatten().cloned().collect();
        let outcome = fga::expect(got, a.error_code, expected, fga::show_set);
        t.record(format!("{at} list_objects {m}: {} {}#{}", r.user, r.ty, r.relation), outcome);
    }
    for (m, a) in stage.list_users_assertions.iter().flatten().enumerate() {
        let r = &a.request;
        let ctx = with(&a.contextual_tuples, &r.contextual_tuples, extra);
        let context = a.context.as_ref().or(r.context.as_ref()).unwrap_or(&empty);
        let got = store.list_users(&r.object, &r.relation, &r.filters, context, &ctx);
        let expected: BTreeSet<String> = a.expectation.iter().flatten().cloned().collect();
        let outcome = fga::expect(got, a.error_code, expected, fga::show_set);
        t.record(
            format!("{at} list_users {m}: {}#{} [{}]", r.object, r.relation, r.filters.join(", ")),
            outcome,
        );
    }
}

/// Check, list objects and list users agree on every pair the stage mentions (without request
/// context: conditional answers must be conditional everywhere).
fn lookups_agree(t: &mut Tally, at: &str, stage: &Stage, store: &Store, extra: &[Tuple]) {
    let rels: Vec<Relationship> =
        stage.tuples.iter().flatten().filter_map(|t| t.to_relationship().ok()).collect();
    let checks: Vec<CheckText> = stage
        .check_assertions
        .iter()
        .flatten()
        .filter(|a| a.contextual_tuples.as_ref().is_none_or(|c| c.is_empty()) && a.error_code.is_none())
        .filter_map(|a| {
            Some(CheckText {
                object: ObjectRef::parse(&a.tuple.object).ok()?,
                permission: a.tuple.relation.clone(),
                subject: SubjectRef::parse(&a.tuple.user).ok()?,
                context: JsonMap::new(),
                at: None,
            })
        })
        .collect();
    if checks.is_empty() {
        return;
    }
    let Ok(view) = store.with(extra) else { return };
    let label = format!("{at} ");
    consistency::run(t, &label, &view, &rels, &checks, &EvalOptions::default());
}
