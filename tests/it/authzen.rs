//! AuthZEN Authorization API 1.0 (`purview::server::authzen`): every case of the AuthZEN interop
//! scenarios (Todo, API gateway, Search, IdP) and of the certification scenario, each against its
//! model in `examples/authzen/<scenario>/`, on both engines; then bad input of every kind.
//!
//! The cases run through a runner, `ask(method, path, body) -> (status, body)`, so the same
//! cases can run over HTTP against `purview serve` loaded with an example: see [`run_scenario`].

use purview::api::{compile_schema, Engine};
use purview::server::authzen::{decode_id, encode_id, handle, Config};
use purview::Purview;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The scenarios, each a directory of `examples/authzen/`.
pub const SCENARIOS: [&str; 5] = ["todo", "gateway", "search", "idp", "certification"];

/// Asks one AuthZEN question: method, path and JSON body (`null`: no body) in; status and JSON
/// body out.
pub type Ask<'a> = dyn FnMut(&str, &str, &Value) -> (u16, Value) + 'a;

pub fn example_dir(scenario: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/authzen").join(scenario)
}

fn read_json(scenario: &str, file: &str) -> Value {
    let path = example_dir(scenario).join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The scenario's `schema.pv` and `data.rels`, loaded.
pub fn load(scenario: &str, engine: Engine) -> Purview {
    let dir = example_dir(scenario);
    let schema_path = dir.join("schema.pv");
    let schema =
        compile_schema(&schema_path.display().to_string(), &std::fs::read_to_string(&schema_path).unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
    let pv = Purview::with_engine(schema, engine);
    pv.write_text(&std::fs::read_to_string(dir.join("data.rels")).unwrap()).unwrap();
    pv
}

/// An [`Ask`] that calls [`handle`] directly.
fn direct<'a>(pv: &'a Purview, cfg: &'a Config) -> impl FnMut(&str, &str, &Value) -> (u16, Value) + 'a {
    move |method, path, body| {
        let bytes = if body.is_null() { Vec::new() } else { serde_json::to_vec(body).unwrap() };
        let r = handle(pv, method, path, &bytes, cfg);
        (r.status, r.body)
    }
}

/// Runs every case of a scenario through `ask`; returns the failures, one line each.
pub fn run_scenario(scenario: &str, ask: &mut Ask) -> Vec<String> {
    let mut f = Failures::default();
    match scenario {
        "todo" | "gateway" => {
            let doc = read_json(scenario, "decisions.json");
            for (i, case) in cases(&doc, "evaluation").iter().enumerate() {
                let want = case["expected"].as_bool().unwrap();
                check_decision(&mut f, &format!("evaluation #{i}"), ask, &case["request"], want);
            }
            for (i, case) in cases(&doc, "evaluations").iter().enumerate() {
                let want: Vec<bool> = case["expected"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["decision"].as_bool().unwrap())
                    .collect();
                check_decisions(&mut f, &format!("evaluations #{i}"), ask, &case["request"], &want);
            }
        }
        "search" => {
            for (kind, path) in [
                ("subject", "/access/v1/search/subject"),
                ("resource", "/access/v1/search/resource"),
                ("action", "/access/v1/search/action"),
            ] {
                let doc = read_json(scenario, &format!("{kind}-results.json"));
                for (i, case) in cases(&doc, "evaluation").iter().enumerate() {
                    let name = format!("{kind} search #{i} {}", case["request"]);
                    check_search(&mut f, &name, ask, path, &case["request"], &case["expected"]["results"]);
                }
            }
        }
        "idp" => {
            let doc = read_json(scenario, "results.json");
            for (i, case) in cases(&doc, "search").iter().enumerate() {
                let name = format!("resource search #{i} {}", case["request"]);
                let path = "/access/v1/search/resource";
                check_search(&mut f, &name, ask, path, &case["request"], &case["expected"]["results"]);
            }
        }
        "certification" => certification(&mut f, ask),
        other => f.fail(other, "no such scenario"),
    }
    assert!(f.asked > 0, "{scenario}: no cases ran");
    f.lines
}

fn cases<'a>(doc: &'a Value, key: &str) -> &'a [Value] {
    doc.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

#[derive(Default)]
struct Failures {
    lines: Vec<String>,
    asked: usize,
}

impl Failures {
    fn fail(&mut self, case: &str, message: impl std::fmt::Display) {
        self.lines.push(format!("{case}: {message}"));
    }

    fn ask(&mut self, ask: &mut Ask, method: &str, path: &str, body: &Value) -> (u16, Value) {
        self.asked += 1;
        ask(method, path, body)
    }
}

fn check_decision(f: &mut Failures, case: &str, ask: &mut Ask, request: &Value, want: bool) {
    let (status, body) = f.ask(ask, "POST", "/access/v1/evaluation", request);
    if status != 200 || body.get("decision") != Some(&Value::Bool(want)) {
        f.fail(case, format!("expected decision {want}, got {status} {body} for {request}"));
    }
}

/// The decisions of an `evaluations` response, if it is well formed.
fn decisions_of(body: &Value) -> Option<Vec<bool>> {
    body.get("evaluations")?.as_array()?.iter().map(|d| d.get("decision")?.as_bool()).collect()
}

fn check_decisions(f: &mut Failures, case: &str, ask: &mut Ask, request: &Value, want: &[bool]) {
    let (status, body) = f.ask(ask, "POST", "/access/v1/evaluations", request);
    if status != 200 || decisions_of(&body).as_deref() != Some(want) {
        f.fail(case, format!("expected decisions {want:?}, got {status} {body}"));
    }
}

/// Every result of a search, following `page.next_token` to the end; `None` (with a failure
/// recorded) if a page is malformed or the pages do not end.
fn search_all(
    f: &mut Failures,
    case: &str,
    ask: &mut Ask,
    path: &str,
    request: &Value,
) -> Option<Vec<Value>> {
    let mut request = request.clone();
    let limit = request.pointer("/page/limit").and_then(Value::as_u64);
    let mut all = Vec::new();
    for _ in 0..1000 {
        let (status, body) = f.ask(ask, "POST", path, &request);
        let Some(results) = body.get("results").and_then(Value::as_array).filter(|_| status == 200) else {
            f.fail(case, format!("expected 200 with `results`, got {status} {body}"));
            return None;
        };
        if limit.is_some_and(|l| results.len() as u64 > l) {
            f.fail(case, format!("a page has {} results, more than the limit {limit:?}", results.len()));
        }
        all.extend(results.iter().cloned());
        let next = match body.get("page") {
            None => "",
            Some(p) => match p.get("next_token").and_then(Value::as_str) {
                Some(t) => t,
                None => {
                    f.fail(case, format!("`page` without a string `next_token`: {body}"));
                    return None;
                }
            },
        };
        if next.is_empty() {
            return Some(all);
        }
        request["page"]["token"] = json!(next);
    }
    f.fail(case, "the pages did not end after 1000 requests");
    None
}

/// Results as a set (the spec leaves their order open); `None` if one appears twice.
fn result_set(results: &[Value]) -> Option<BTreeSet<String>> {
    let mut set = BTreeSet::new();
    results.iter().all(|r| set.insert(r.to_string())).then_some(set)
}

/// A search answers exactly `expected` (as a set, without repeats), in one go and again a page of
/// two at a time.
fn check_search(f: &mut Failures, case: &str, ask: &mut Ask, path: &str, request: &Value, expected: &Value) {
    let want = result_set(expected.as_array().unwrap()).unwrap();
    let mut paged = request.clone();
    paged["page"] = json!({"limit": 2});
    for (how, request) in [("", request), (" (2 a page)", &paged)] {
        let Some(got) = search_all(f, &format!("{case}{how}"), ask, path, request) else { continue };
        match result_set(&got) {
            None => f.fail(&format!("{case}{how}"), format!("repeated results: {got:?}")),
            Some(set) if set != want => {
                f.fail(&format!("{case}{how}"), format!("expected {want:?}, got {set:?}"))
            }
            Some(_) => {}
        }
    }
}

/// The certification scenario's cases (`examples/authzen/certification/cases.json`).
fn certification(f: &mut Failures, ask: &mut Ask) {
    let doc = read_json("certification", "cases.json");
    for case in cases(&doc, "cases") {
        let id = case["id"].as_str().unwrap();
        let (method, path, body) =
            (case["method"].as_str().unwrap(), case["path"].as_str().unwrap(), &case["body"]);
        let want_status = case["status"].as_u64().unwrap();
        if case.get("paginate").is_some() {
            let Some(got) = search_all(f, id, ask, path, body) else { continue };
            check_includes(f, id, &got, &case["includes"]);
            continue;
        }
        let (status, answer) = f.ask(ask, method, path, body);
        if u64::from(status) != want_status {
            f.fail(id, format!("expected status {want_status}, got {status} {answer}"));
            continue;
        }
        if !answer.is_object() {
            f.fail(id, format!("the body is not a JSON object: {answer}"));
        }
        if let Some(want) = case.get("decision") {
            if answer.get("decision") != Some(want) {
                f.fail(id, format!("expected decision {want}, got {answer}"));
            }
            for _ in 1..case.get("repeat").and_then(Value::as_u64).unwrap_or(1) {
                let (_, again) = f.ask(ask, method, path, body);
                if again.get("decision") != Some(want) {
                    f.fail(id, format!("not idempotent: {again}"));
                }
            }
        }
        if let Some(want) = case.get("decisions") {
            let want: Vec<bool> = want.as_array().unwrap().iter().map(|d| d.as_bool().unwrap()).collect();
            if decisions_of(&answer).as_deref() != Some(want.as_slice()) {
                f.fail(id, format!("expected decisions {want:?}, got {answer}"));
            }
        }
        if let Some(n) = case.get("count").and_then(Value::as_u64) {
            if decisions_of(&answer).map(|d| d.len() as u64) != Some(n) {
                f.fail(id, format!("expected {n} decisions, got {answer}"));
            }
        }
        if let Some(want) = case.get("includes") {
            let got = answer.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
            check_includes(f, id, &got, want);
        }
        if let Some(want) = case.get("results") {
            if answer.get("results") != Some(want) {
                f.fail(id, format!("expected results {want}, got {answer}"));
            }
        }
        if case.get("metadata").is_some() {
            check_metadata(f, id, &answer);
        }
    }
}

fn check_includes(f: &mut Failures, id: &str, got: &[Value], want: &Value) {
    for w in want.as_array().unwrap() {
        if !got.contains(w) {
            f.fail(id, format!("{w} missing from {got:?}"));
        }
    }
}

fn check_metadata(f: &mut Failures, id: &str, answer: &Value) {
    let Some(pdp) = answer.get("policy_decision_point").and_then(Value::as_str) else {
        f.fail(id, format!("no `policy_decision_point`: {answer}"));
        return;
    };
    for (key, path) in [
        ("access_evaluation_endpoint", "/access/v1/evaluation"),
        ("access_evaluations_endpoint", "/access/v1/evaluations"),
        ("search_subject_endpoint", "/access/v1/search/subject"),
        ("search_resource_endpoint", "/access/v1/search/resource"),
        ("search_action_endpoint", "/access/v1/search/action"),
    ] {
        if answer.get(key).and_then(Value::as_str) != Some(&format!("{pdp}{path}")) {
            f.fail(id, format!("`{key}` is not {pdp}{path}: {answer}"));
        }
    }
}

fn test_config() -> Config {
    Config { base_url: "https://pdp.example.com".into(), ..Config::default() }
}

#[test]
fn every_scenario_passes_on_both_engines() {
    let cfg = test_config();
    let mut failures = Vec::new();
    for engine in [Engine::Index, Engine::Reference] {
        for scenario in SCENARIOS {
            let pv = load(scenario, engine);
            let mut ask = direct(&pv, &cfg);
            failures.extend(
                run_scenario(scenario, &mut ask).into_iter().map(|l| format!("{engine:?} {scenario}: {l}")),
            );
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// The runner notices wrong answers: another scenario's model, or a PDP that always permits.
#[test]
fn the_runner_catches_wrong_answers() {
    let cfg = test_config();
    let idp = load("idp", Engine::Index);
    let failures = run_scenario("search", &mut direct(&idp, &cfg));
    assert!(failures.len() > 100, "{}", failures.len());
    let mut yes =
        |_: &str, _: &str, _: &Value| (200, json!({"decision": true, "evaluations": [], "results": []}));
    for scenario in SCENARIOS {
        assert!(!run_scenario(scenario, &mut yes).is_empty(), "{scenario}");
    }
}

#[test]
fn the_scenarios_have_every_case() {
    let count = |s: &str, file: &str, key: &str| read_json(s, file)[key].as_array().unwrap().len();
    assert_eq!(count("todo", "decisions.json", "evaluation"), 40);
    assert_eq!(count("todo", "decisions.json", "evaluations"), 3);
    assert_eq!(count("gateway", "decisions.json", "evaluation"), 25);
    assert_eq!(count("search", "subject-results.json", "evaluation"), 60);
    assert_eq!(count("search", "resource-results.json", "evaluation"), 18);
    assert_eq!(count("search", "action-results.json", "evaluation"), 120);
    assert_eq!(count("idp", "results.json", "search"), 6);
    let cert = read_json("certification", "cases.json");
    let ids: Vec<&str> =
        cert["cases"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    for rule in ["rule 1", "rule 4", "rule 5", "rule 6", "rule 7", "rule 8", "rules 3, 4", "rules 2, 5"] {
        assert!(ids.iter().any(|i| i.contains(rule)), "no case for decision {rule}");
    }
    for s in ["S1", "S2", "S3", "S4", "S5", "S6"] {
        assert!(ids.iter().any(|i| i.contains(&format!("({s})"))), "no case for search rule {s}");
    }
}

// ---- bad input, edge cases ----

fn post(pv: &Purview, cfg: &Config, path: &str, body: &[u8]) -> (u16, Value) {
    let r = handle(pv, "POST", path, body, cfg);
    assert!(r.body.is_object(), "{path}: the body is not an object: {}", r.body);
    if r.status != 200 {
        let message = r.body.pointer("/error/message").and_then(Value::as_str);
        assert!(message.is_some_and(|m| !m.is_empty()), "{path}: an error without a message: {}", r.body);
        assert_eq!(r.body.pointer("/error/status"), Some(&json!(r.status)));
    }
    (r.status, r.body)
}

fn post_json(pv: &Purview, cfg: &Config, path: &str, body: Value) -> (u16, Value) {
    post(pv, cfg, path, &serde_json::to_vec(&body).unwrap())
}

const EVAL: &str = "/access/v1/evaluation";
const EVALS: &str = "/access/v1/evaluations";
const SUBJECTS: &str = "/access/v1/search/subject";
const RESOURCES: &str = "/access/v1/search/resource";
const ACTIONS: &str = "/access/v1/search/action";

fn alice_reads() -> Value {
    json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
           "resource": {"type": "record", "id": "record-1"}})
}

#[test]
fn malformed_bodies_are_400() {
    let pv = load("certification", Engine::Index);
    let cfg = test_config();
    let deep = "[".repeat(100_000);
    let bodies: [&[u8]; 9] =
        [b"", b"   ", b"{", b"not json", b"[]", b"42", b"\"text\"", b"{\"subject\": }", deep.as_bytes()];
    for path in [EVAL, EVALS, SUBJECTS, RESOURCES, ACTIONS] {
        for body in bodies {
            let (status, answer) = post(&pv, &cfg, path, body);
            assert_eq!(status, 400, "{path} {:?}: {answer}", String::from_utf8_lossy(body).get(..20));
        }
    }
    let invalid_utf8 = post(&pv, &cfg, EVAL, b"{\"subject\": \"\xff\"}");
    assert_eq!(invalid_utf8.0, 400);
}

#[test]
fn paths_and_methods() {
    let pv = load("certification", Engine::Index);
    let cfg = test_config();
    let body = serde_json::to_vec(&alice_reads()).unwrap();
    assert_eq!(handle(&pv, "POST", "/access/v1/nothing", &body, &cfg).status, 404);
    assert_eq!(handle(&pv, "GET", EVAL, &body, &cfg).status, 405);
    assert_eq!(handle(&pv, "POST", "/.well-known/authzen-configuration", &[], &cfg).status, 405);
    let trailing = handle(&pv, "POST", "/access/v1/evaluation/?x=1", &body, &cfg);
    assert_eq!((trailing.status, trailing.body), (200, json!({"decision": true})));
    let meta = handle(&pv, "GET", "/.well-known/authzen-configuration", &[], &cfg);
    assert_eq!(meta.status, 200);
    assert_eq!(meta.body["policy_decision_point"], "https://pdp.example.com");
    assert_eq!(meta.body["search_action_endpoint"], "https://pdp.example.com/access/v1/search/action");
}

#[test]
fn unknown_types_and_actions_deny_with_a_reason_and_search_empty() {
    let pv = load("certification", Engine::Index);
    let cfg = test_config();
    let mut unknown_type = alice_reads();
    unknown_type["resource"]["type"] = json!("spaceship");
    let (status, answer) = post_json(&pv, &cfg, EVAL, unknown_type);
    assert_eq!(status, 200);
    assert_eq!(answer["decision"], false);
    assert_eq!(answer["context"]["error"]["status"], 404, "{answer}");
    assert!(answer["context"]["error"]["message"].as_str().unwrap().contains("spaceship"));

    let mut unknown_action = alice_reads();
    unknown_action["action"]["name"] = json!("fly");
    let (_, answer) = post_json(&pv, &cfg, EVAL, unknown_action);
    assert_eq!(answer["decision"], false);
    assert!(answer["context"]["error"]["message"].as_str().unwrap().contains("fly"), "{answer}");

    for (path, body) in [
        (
            SUBJECTS,
            json!({"subject": {"type": "user"}, "action": {"name": "fly"}, "resource": {"type": "record", "id": "record-1"}}),
        ),
        (
            SUBJECTS,
            json!({"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "spaceship", "id": "x"}}),
        ),
        (
            RESOURCES,
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"}, "resource": {"type": "spaceship"}}),
        ),
        (
            RESOURCES,
            json!({"subject": {"type": "alien", "id": "zork"}, "action": {"name": "read"}, "resource": {"type": "record"}}),
        ),
        (
            RESOURCES,
            json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "fly"}, "resource": {"type": "record"}}),
        ),
        (
            ACTIONS,
            json!({"subject": {"type": "alien", "id": "zork"}, "resource": {"type": "record", "id": "record-1"}}),
        ),
        (
            ACTIONS,
            json!({"subject": {"type": "user", "id": "alice"}, "resource": {"type": "spaceship", "id": "x"}}),
        ),
    ] {
        let (status, answer) = post_json(&pv, &cfg, path, body.clone());
        assert_eq!((status, &answer["results"]), (200, &json!([])), "{path} {body}: {answer}");
        assert_eq!(answer["page"]["next_token"], "");
    }
}

#[test]
fn evaluations_over_the_limit_are_400() {
    let pv = load("certification", Engine::Index);
    let cfg = Config { max_evaluations: 5, ..test_config() };
    let batch = |n: usize| {
        json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
               "evaluations": vec![json!({"resource": {"type": "record", "id": "record-1"}}); n]})
    };
    assert_eq!(post_json(&pv, &cfg, EVALS, batch(5)).0, 200);
    let (status, answer) = post_json(&pv, &cfg, EVALS, batch(6));
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("limit is 5"));
    let default = test_config();
    assert_eq!(post_json(&pv, &default, EVALS, batch(default.max_evaluations + 1)).0, 400);
    let (status, answer) = post_json(&pv, &default, EVALS, batch(default.max_evaluations));
    assert_eq!(status, 200);
    assert_eq!(decisions_of(&answer).unwrap(), vec![true; default.max_evaluations]);
}

#[test]
fn evaluation_semantics() {
    let pv = load("certification", Engine::Index);
    let cfg = test_config();
    // alice: read record-1 (permit), write record-2 archived (deny), read record-2 (permit).
    let batch = |semantic: &str| {
        json!({"subject": {"type": "user", "id": "alice"}, "options": {"evaluations_semantic": semantic},
        "evaluations": [
            {"action": {"name": "read"}, "resource": {"type": "record", "id": "record-1"}},
            {"action": {"name": "write"}, "resource": {"type": "record", "id": "record-2"}},
            {"action": {"name": "read"}, "resource": {"type": "record", "id": "record-2"}},
        ]})
    };
    let run = |semantic: &str| {
        let (status, answer) = post_json(&pv, &cfg, EVALS, batch(semantic));
        assert_eq!(status, 200, "{answer}");
        decisions_of(&answer).unwrap()
    };
    assert_eq!(run("execute_all"), [true, false, true]);
    assert_eq!(run("deny_on_first_deny"), [true, false]);
    assert_eq!(run("permit_on_first_permit"), [true]);
    assert_eq!(post_json(&pv, &cfg, EVALS, batch("most_of_them")).0, 400);
    // A failed item is a deny: it ends deny_on_first_deny and does not end permit_on_first_permit.
    let with_bad = |semantic: &str| {
        json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
               "options": {"evaluations_semantic": semantic},
               "evaluations": [{"resource": "record-1"}, {"resource": {"type": "record", "id": "record-1"}}]})
    };
    let (_, answer) = post_json(&pv, &cfg, EVALS, with_bad("deny_on_first_deny"));
    assert_eq!(decisions_of(&answer).unwrap(), [false]);
    assert_eq!(answer["evaluations"][0]["context"]["error"]["status"], 400, "{answer}");
    let (_, answer) = post_json(&pv, &cfg, EVALS, with_bad("permit_on_first_permit"));
    assert_eq!(decisions_of(&answer).unwrap(), [false, true]);
    // A malformed top-level default fails the whole request, even where items override it.
    let mut bad_default = batch("execute_all");
    bad_default["action"] = json!({"name": 7});
    assert_eq!(post_json(&pv, &cfg, EVALS, bad_default).0, 400);
    let mut not_array = batch("execute_all");
    not_array["evaluations"] = json!({"0": {}});
    assert_eq!(post_json(&pv, &cfg, EVALS, not_array).0, 400);
}

#[test]
fn page_tokens_are_checked() {
    let pv = load("search", Engine::Index);
    let cfg = test_config();
    let request = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "view"},
                         "resource": {"type": "record"}, "page": {"limit": 3}});
    let (status, first) = post_json(&pv, &cfg, RESOURCES, request.clone());
    assert_eq!(status, 200);
    assert_eq!(first["page"]["count"], 3);
    let token = first["page"]["next_token"].as_str().unwrap().to_string();
    assert!(!token.is_empty());
    let mut next = request.clone();
    next["page"]["token"] = json!(token);
    let (status, second) = post_json(&pv, &cfg, RESOURCES, next.clone());
    assert_eq!(status, 200, "{second}");
    assert_ne!(first["results"], second["results"]);
    // The token is good only for the request that returned it.
    for (pointer, value) in [
        ("/page/token", json!("garbage")),
        ("/page/token", json!("zz.0011223344556677")),
        ("/page/token", json!(7)),
        ("/page/limit", json!(4)),
        ("/page/limit", json!(-1)),
        ("/page/limit", json!("3")),
        ("/subject/id", json!("bob")),
        ("/action/name", json!("edit")),
    ] {
        let mut changed = next.clone();
        *changed.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer}")) = value.clone();
        let (status, answer) = post_json(&pv, &cfg, RESOURCES, changed);
        assert_eq!(status, 400, "{pointer} = {value}: {answer}");
    }
    let mut no_context = next.clone();
    no_context["context"] = json!({"x": 1});
    assert_eq!(post_json(&pv, &cfg, RESOURCES, no_context).0, 400);
    // A token from another endpoint.
    let subjects = json!({"subject": {"type": "user"}, "action": {"name": "view"},
                          "resource": {"type": "record", "id": "101"}, "page": {"limit": 1, "token": token}});
    assert_eq!(post_json(&pv, &cfg, SUBJECTS, subjects).0, 400);
    // Limits above the maximum are lowered to it; 0 means the default.
    let small = Config { max_page_size: 2, default_page_size: 5, ..test_config() };
    let mut big = request.clone();
    big["page"]["limit"] = json!(1_000_000);
    assert_eq!(post_json(&pv, &small, RESOURCES, big).1["page"]["count"], 2);
    let mut zero = request.clone();
    zero["page"]["limit"] = json!(0);
    assert_eq!(post_json(&pv, &cfg, RESOURCES, zero).1["page"]["count"], 20);
}

#[test]
fn reasons_on_request() {
    let pv = load("todo", Engine::Index);
    let cfg = test_config();
    let morty = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs";
    let ask = |owner: &str, reasons: bool| {
        let mut body = json!({"subject": {"type": "user", "id": morty}, "action": {"name": "can_delete_todo"},
                              "resource": {"type": "todo", "id": "7240d0db-8ff0-41ec-98b2-34a096273b91",
                                           "properties": {"ownerID": owner}}});
        if reasons {
            body["options"] = json!({"include_reasons": true});
        }
        post_json(&pv, &cfg, EVAL, body).1
    };
    assert_eq!(ask("morty@the-citadel.com", false), json!({"decision": true}));
    let allowed = ask("morty@the-citadel.com", true);
    assert_eq!(allowed["decision"], true);
    let tree = allowed["context"]["explanation"].to_string();
    assert!(tree.contains("owns_todo") && tree.contains("todo:todo-1#owner"), "{allowed}");
    let granted = allowed["context"]["granted_by"].as_array().unwrap();
    assert!(
        granted.contains(&json!("todo:7240d0db-8ff0-41ec-98b2-34a096273b91#parent@todo:todo-1")),
        "{allowed}"
    );
    assert!(granted.iter().any(|g| g.as_str().unwrap().starts_with("todo:todo-1#editor@")), "{allowed}");
    let denied = ask("rick@the-citadel.com", true);
    assert_eq!(denied["decision"], false);
    assert_eq!(denied["context"]["explanation"]["outcome"], "denied", "{denied}");
    let missing = denied["context"]["missing"].as_array().unwrap();
    assert!(
        missing.iter().any(
            |m| m.as_str().unwrap().contains("#owner@") && m.as_str().unwrap().contains("if `owns_todo`")
        ),
        "{denied}"
    );
    assert!(
        missing.iter().any(|m| m.as_str().unwrap().starts_with("no relationship todo:todo-1#admin@")),
        "{denied}"
    );
}

#[test]
fn missing_context_is_a_denial_naming_it() {
    let schema = compile_schema(
        "s.pv",
        "type user {}\ntype doc {\n  relation viewer: user with office\n  permission view = viewer\n}\n\
         condition office(ip: ipaddress) {\n  ip.in_cidr(\"10.0.0.0/8\")\n}\n",
    )
    .unwrap();
    let pv = Purview::new(schema);
    pv.write_text("doc:d1#viewer@user:ann[office]").unwrap();
    let cfg = test_config();
    let body = |context: Value| {
        json!({"subject": {"type": "user", "id": "ann"}, "action": {"name": "view"},
               "resource": {"type": "doc", "id": "d1"}, "context": context})
    };
    let (status, answer) = post_json(&pv, &cfg, EVAL, body(json!({})));
    assert_eq!(status, 200);
    assert_eq!(answer["decision"], false);
    assert_eq!(answer["context"]["missing_context"], json!(["ip"]), "{answer}");
    assert_eq!(post_json(&pv, &cfg, EVAL, body(json!({"ip": "10.1.2.3"}))).1, json!({"decision": true}));
    assert_eq!(post_json(&pv, &cfg, EVAL, body(json!({"ip": "11.1.2.3"}))).1, json!({"decision": false}));
    // A value of the wrong type for the condition: denied, saying why.
    let (_, answer) = post_json(&pv, &cfg, EVAL, body(json!({"ip": 7})));
    assert_eq!(answer["decision"], false);
    assert_eq!(answer["context"]["error"]["status"], 400, "{answer}");
    // Searches leave conditional answers out.
    let who = json!({"subject": {"type": "user"}, "action": {"name": "view"},
                     "resource": {"type": "doc", "id": "d1"}});
    assert_eq!(post_json(&pv, &cfg, SUBJECTS, who).1["results"], json!([]));
    let what = json!({"subject": {"type": "user", "id": "ann"}, "action": {"name": "view"},
                      "resource": {"type": "doc"}});
    assert_eq!(post_json(&pv, &cfg, RESOURCES, what).1["results"], json!([]));
    // `context` must be an object.
    assert_eq!(post_json(&pv, &cfg, EVAL, body(json!("ip=10.1.2.3"))).0, 400);
}

#[test]
fn ids_are_percent_encoded_both_ways() {
    for id in ["alice@example.com", "a b", "100%", "*", "#x[1]", "ü@ß", "%41", ""] {
        assert_eq!(decode_id(&encode_id(id)), id);
        assert!(!encode_id(id).contains(['@', '#', '[', ']', '*', ' ']), "{id}");
    }
    assert_eq!(encode_id("alice@example.com"), "alice%40example.com");
    assert_eq!(decode_id("50%off"), "50%off");
    // `*` is an id like any other, never a wildcard: no grant to every user, no error.
    let pv = load("todo", Engine::Index);
    let cfg = test_config();
    let star = json!({"subject": {"type": "user", "id": "*"}, "action": {"name": "can_read_todos"},
                      "resource": {"type": "todo", "id": "todo-1"}});
    assert_eq!(post_json(&pv, &cfg, EVAL, star).1, json!({"decision": false}));
    let star_resource = json!({"subject": {"type": "user", "id": "x"}, "action": {"name": "can_read_user"},
                               "resource": {"type": "user", "id": "*"}});
    assert_eq!(post_json(&pv, &cfg, EVAL, star_resource).1, json!({"decision": false}));
    // A wildcard grant lists every user Purview knows, e-mail ids decoded.
    let who = json!({"subject": {"type": "user"}, "action": {"name": "can_read_user"},
                     "resource": {"type": "user", "id": "rick@the-citadel.com"}});
    let (status, answer) = post_json(&pv, &cfg, SUBJECTS, who);
    assert_eq!(status, 200);
    assert_eq!(answer["context"]["wildcard"], true);
    let ids: Vec<&str> =
        answer["results"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"rick@the-citadel.com") && ids.contains(&"jerry@the-smiths.com"), "{ids:?}");
    assert_eq!(ids.len(), 10, "5 e-mail accounts and 5 PIDs: {ids:?}");
}

/// Every value of every valid request replaced by values of every JSON type: never a panic,
/// always 200 or 400 with a JSON object.
#[test]
fn mutated_requests_never_panic() {
    let pv = load("certification", Engine::Index);
    let cfg = test_config();
    let doc = read_json("certification", "cases.json");
    let replacements =
        [json!(null), json!(1), json!(-1.5), json!("x"), json!(""), json!([]), json!({}), json!(true)];
    let mut asked = 0;
    for case in cases(&doc, "cases").iter().filter(|c| c["method"] == "POST" && c["status"] == 200) {
        let path = case["path"].as_str().unwrap();
        let body = &case["body"];
        let mut pointers = Vec::new();
        collect_pointers(body, String::new(), &mut pointers);
        for pointer in pointers {
            for value in &replacements {
                let mut mutated = body.clone();
                if let Some(slot) = mutated.pointer_mut(&pointer) {
                    *slot = value.clone();
                }
                let (status, answer) = post_json(&pv, &cfg, path, mutated);
                assert!(matches!(status, 200 | 400), "{path} {pointer} = {value}: {status} {answer}");
                asked += 1;
            }
        }
    }
    assert!(asked > 1000, "{asked}");
}

fn collect_pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                collect_pointers(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                collect_pointers(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}
