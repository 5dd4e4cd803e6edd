//! The AuthZEN Authorization API 1.0 over a [`Purview`]: access evaluation, access evaluations,
//! subject / resource / action search and the PDP metadata, as JSON in and JSON out. No HTTP
//! framework here: [`handle`] takes a method, a path and a body and returns a status and a JSON
//! body, so the HTTP server is a thin wrapper (it owns `Content-Type`, `X-Request-ID`,
//! authentication, body size limits and `Allow` headers).
//!
//! **Mapping.** A subject or resource `{type, id}` is the Purview object `type:id`; an action's
//! `name` is a permission (or relation) of the resource's type. Ids are percent-encoded where
//! Purview's object ids cannot hold a character (`%`, `#`, `@`, `[`, `]`, `*`, whitespace and
//! control characters: `alice@example.com` is `user:alice%40example.com`, see [`encode_id`]),
//! and decoded in search results. Every question of one request reads one snapshot.
//!
//! **Condition context.** Conditions see the request's `context` object with three keys added
//! (replacing any the context has of the same name): `subject`, `resource` and `action`, each
//! holding that entity's `properties` object (`{}` when the request has none). So a condition
//! reads `resource.ownerID` as `has(resource.ownerID) && resource.ownerID == email` with a
//! parameter `resource: map<any>`. [`Config::eval`]'s context gives defaults under the request's.
//!
//! **Decisions.** Allowed → `{"decision": true}`; denied → `{"decision": false}`; allowed only
//! with context the request lacks → `{"decision": false, "context": {"missing_context": [..]}}`.
//! A question Purview cannot ask (an unknown type or action) or answer (a limit, a failing
//! condition) is denied, with `context.error = {status, message}` (404 for unknown names, 400
//! for a context that does not fit a condition, 500 for limits), as the spec's examples show for
//! per-evaluation errors. With `"options": {"include_reasons": true}` a decision's context also
//! holds `explanation`, Purview's explain tree (the witness path when allowed; every branch
//! tried when denied), and its gist: `granted_by`, the stored relationships that grant, or
//! `missing`, the relationships that would have granted and are absent or do not hold.
//!
//! **Searches** return only entities the answer is `allowed` for (never conditional ones), in
//! Purview's id order (the order entities were first written), a page at a time with an opaque
//! `page.next_token` ("" on the last page). Unknown types and actions give empty results. A
//! wildcard grant (`user:*`) is listed as every subject of the type Purview knows, and the
//! response says `"context": {"wildcard": true}`. Action search lists the resource type's
//! permissions (its relations if it declares none) that the subject holds, in schema order.

use crate::api::{Page, SubjectFilter, View};
use crate::eval::explain::{Step, Tree};
use crate::eval::{Decision, EvalError, EvalOptions, MissingContext, Tri};
use crate::schema::condition::JsonMap;
use crate::schema::RelKind;
use crate::store::{ObjectRef, SubjectRef};
use crate::Purview;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

/// The default path of the Access Evaluation API.
pub const EVALUATION_PATH: &str = "/access/v1/evaluation";
/// The default path of the Access Evaluations API.
pub const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
/// The default path of the Subject Search API.
pub const SEARCH_SUBJECT_PATH: &str = "/access/v1/search/subject";
/// The default path of the Resource Search API.
pub const SEARCH_RESOURCE_PATH: &str = "/access/v1/search/resource";
/// The default path of the Action Search API.
pub const SEARCH_ACTION_PATH: &str = "/access/v1/search/action";
/// Where the PDP metadata is published.
pub const METADATA_PATH: &str = "/.well-known/authzen-configuration";

/// An answer: the HTTP status and the JSON body (always an object).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

/// How the AuthZEN API answers.
#[derive(Debug, Clone)]
pub struct Config {
    /// The PDP's identifier, an `https` URL without query or fragment: the metadata's
    /// `policy_decision_point`, and the base of the endpoint URLs it lists.
    pub base_url: String,
    /// The most evaluations one `evaluations` request may carry; more is a 400.
    pub max_evaluations: usize,
    /// The largest page a search returns (a larger `page.limit` is lowered to it).
    pub max_page_size: usize,
    /// The page size of a search without `page.limit` (or with a limit of 0).
    pub default_page_size: usize,
    /// Limits and a default condition context (under each request's). The evaluation time is
    /// the time each request is handled, whatever `eval.at` says; missing context always makes
    /// a conditional answer (reported as a denial naming what is missing).
    pub eval: EvalOptions,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_url: "https://localhost".to_string(),
            max_evaluations: 1000,
            max_page_size: 1000,
            default_page_size: 100,
            eval: EvalOptions::default(),
        }
    }
}

/// A request that cannot be answered: the HTTP status and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fail {
    status: u16,
    message: String,
}

impl Fail {
    fn bad(message: impl Into<String>) -> Fail {
        Fail { status: 400, message: message.into() }
    }

    fn body(&self) -> Value {
        json!({"error": {"status": self.status, "message": self.message}})
    }

    fn response(&self) -> Response {
        Response { status: self.status, body: self.body() }
    }

    /// The denial that stands for this failure inside an `evaluations` response.
    fn decision(&self) -> Value {
        json!({"decision": false, "context": self.body()})
    }
}

impl From<EvalError> for Fail {
    fn from(e: EvalError) -> Fail {
        let status = match &e {
            EvalError::UnknownType(_) | EvalError::UnknownRelation { .. } => 404,
            EvalError::InvalidSubject(_)
            | EvalError::InvalidCursor(_)
            | EvalError::Condition(_)
            | EvalError::MissingContext { .. } => 400,
            EvalError::DepthExceeded { .. }
            | EvalError::ExclusionCycle { .. }
            | EvalError::TooManyResults { .. }
            | EvalError::RevisionNotVisible { .. }
            | EvalError::RevisionCollected { .. }
            | EvalError::HistoryUnavailable { .. } => 500,
        };
        Fail { status, message: e.to_string() }
    }
}

/// Whether the error means "no such type or action": searches answer it with no results.
fn is_unknown(e: &EvalError) -> bool {
    matches!(e, EvalError::UnknownType(_) | EvalError::UnknownRelation { .. } | EvalError::InvalidSubject(_))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Evaluation,
    Evaluations,
    SearchSubject,
    SearchResource,
    SearchAction,
    Metadata,
}

impl Endpoint {
    fn of(path: &str) -> Option<Endpoint> {
        Some(match path {
            EVALUATION_PATH => Endpoint::Evaluation,
            EVALUATIONS_PATH => Endpoint::Evaluations,
            SEARCH_SUBJECT_PATH => Endpoint::SearchSubject,
            SEARCH_RESOURCE_PATH => Endpoint::SearchResource,
            SEARCH_ACTION_PATH => Endpoint::SearchAction,
            METADATA_PATH => Endpoint::Metadata,
            _ => return None,
        })
    }
}

/// Dispatches one AuthZEN request: `method` is `GET` or `POST`, `path` an endpoint's path such as
/// `/access/v1/evaluation` (a query string and a trailing `/` are ignored), `body` the request
/// body. Never panics; every failure is a 4xx/5xx [`Response`] with a body
/// `{"error": {"status", "message"}}`.
pub fn handle(purview: &Purview, method: &str, path: &str, body: &[u8], cfg: &Config) -> Response {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let path = if path.len() > 1 { path.trim_end_matches('/') } else { path };
    let Some(endpoint) = Endpoint::of(path) else {
        return Fail { status: 404, message: format!("no AuthZEN endpoint at `{path}`") }.response();
    };
    let want = if endpoint == Endpoint::Metadata { "GET" } else { "POST" };
    if !method.eq_ignore_ascii_case(want) {
        return Fail { status: 405, message: format!("`{path}` answers {want} only") }.response();
    }
    if endpoint == Endpoint::Metadata {
        return Response { status: 200, body: metadata(cfg) };
    }
    let request = match parse_body(body) {
        Ok(r) => r,
        Err(f) => return f.response(),
    };
    let ctx = Ctx { view: purview.snapshot(), cfg, at: chrono::Utc::now() };
    let result = match endpoint {
        Endpoint::Evaluation => ctx.evaluation(&request),
        Endpoint::Evaluations => ctx.evaluations(&request),
        Endpoint::SearchSubject => ctx.search_subject(&request),
        Endpoint::SearchResource => ctx.search_resource(&request),
        Endpoint::SearchAction => ctx.search_action(&request),
        Endpoint::Metadata => Ok(metadata(cfg)),
    };
    match result {
        Ok(body) => Response { status: 200, body },
        Err(f) => f.response(),
    }
}

/// The PDP metadata (`GET /.well-known/authzen-configuration`).
pub fn metadata(cfg: &Config) -> Value {
    let base = cfg.base_url.trim_end_matches('/');
    json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": format!("{base}{EVALUATION_PATH}"),
        "access_evaluations_endpoint": format!("{base}{EVALUATIONS_PATH}"),
        "search_subject_endpoint": format!("{base}{SEARCH_SUBJECT_PATH}"),
        "search_resource_endpoint": format!("{base}{SEARCH_RESOURCE_PATH}"),
        "search_action_endpoint": format!("{base}{SEARCH_ACTION_PATH}"),
    })
}

fn parse_body(body: &[u8]) -> Result<JsonMap, Fail> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Fail::bad("the request body is empty; expected a JSON object"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Fail::bad("the request body must be a JSON object")),
        Err(e) => Err(Fail::bad(format!("the request body is not valid JSON: {e}"))),
    }
}

// ---- ids ----

fn needs_escape(c: char) -> bool {
    matches!(c, '%' | '#' | '@' | '[' | ']' | '*') || c.is_whitespace() || c.is_control()
}

/// An AuthZEN id as a Purview object id: `%`, `#`, `@`, `[`, `]`, `*`, whitespace and control
/// characters percent-encoded (`alice@example.com` → `alice%40example.com`), everything else
/// as it is. So any AuthZEN id is a valid object id, and `*` is an id, never a wildcard.
pub fn encode_id(id: &str) -> Cow<'_, str> {
    if !id.chars().any(needs_escape) {
        return Cow::Borrowed(id);
    }
    let mut out = String::with_capacity(id.len() + 8);
    for c in id.chars() {
        if needs_escape(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A Purview object id as an AuthZEN id: the inverse of [`encode_id`]. A `%` not followed by two
/// hex digits stays as it is, and so does a name whose escapes do not decode to UTF-8.
pub fn decode_id(name: &str) -> Cow<'_, str> {
    if !name.contains('%') {
        return Cow::Borrowed(name);
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        match (bytes.get(i), hex(i + 1), hex(i + 2)) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (Some(b), _, _) => {
                out.push(*b);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(name),
    }
}

// ---- request parsing ----

/// A subject or resource.
#[derive(Clone, Debug)]
struct Entity {
    ty: String,
    /// Required where the entity is an input; ignored (and `None`) where it is searched for.
    id: Option<String>,
    properties: JsonMap,
}

impl Entity {
    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    fn object(&self) -> ObjectRef {
        ObjectRef::new(&self.ty, encode_id(self.id()))
    }

    fn subject(&self) -> SubjectRef {
        SubjectRef::new(&self.ty, encode_id(self.id()), None)
    }
}

#[derive(Clone, Debug)]
struct Action {
    name: String,
    properties: JsonMap,
}

/// A key's value, `null` counting as absent (the spec asks senders to omit nulls).
fn present<'a>(m: &'a JsonMap, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn object_or_empty(v: Option<&Value>, what: &str) -> Result<JsonMap, Fail> {
    match v {
        None | Some(Value::Null) => Ok(JsonMap::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(Fail::bad(format!("`{what}` must be an object"))),
    }
}

fn string_field(m: &JsonMap, key: &str, what: &str) -> Result<String, Fail> {
    match present(m, key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(Fail::bad(format!("`{what}.{key}` must be a string"))),
        None => Err(Fail::bad(format!("`{what}.{key}` is required"))),
    }
}

fn entity(v: &Value, what: &str, need_id: bool) -> Result<Entity, Fail> {
    let Value::Object(m) = v else { return Err(Fail::bad(format!("`{what}` must be an object"))) };
    let ty = string_field(m, "type", what)?;
    let id = if need_id { Some(string_field(m, "id", what)?) } else { None };
    let properties = object_or_empty(m.get("properties"), &format!("{what}.properties"))?;
    Ok(Entity { ty, id, properties })
}

fn required_entity(req: &JsonMap, key: &str, need_id: bool) -> Result<Entity, Fail> {
    match present(req, key) {
        Some(v) => entity(v, key, need_id),
        None => Err(Fail::bad(format!("`{key}` is required"))),
    }
}

fn action(v: &Value) -> Result<Action, Fail> {
    let Value::Object(m) = v else { return Err(Fail::bad("`action` must be an object")) };
    let name = string_field(m, "name", "action")?;
    let properties = object_or_empty(m.get("properties"), "action.properties")?;
    Ok(Action { name, properties })
}

fn required_action(req: &JsonMap) -> Result<Action, Fail> {
    match present(req, "action") {
        Some(v) => action(v),
        None => Err(Fail::bad("`action` is required")),
    }
}

fn context(req: &JsonMap) -> Result<JsonMap, Fail> {
    object_or_empty(req.get("context"), "context")
}

/// One access evaluation, every part given.
#[derive(Clone, Debug)]
struct Question {
    subject: Entity,
    action: Action,
    resource: Entity,
    context: JsonMap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// Whether `options.include_reasons` is `true`.
fn include_reasons(req: &JsonMap) -> bool {
    let Some(Value::Object(options)) = present(req, "options") else { return false };
    options.get("include_reasons") == Some(&Value::Bool(true))
}

fn is_permit(decision: &Value) -> bool {
    decision.get("decision") == Some(&Value::Bool(true))
}

/// The facts an explanation rests on: for a grant, the stored relationships of the witness; for
/// a denial, the relationships that would have granted and do not exist, and those that exist
/// but do not hold (a condition false, a time window passed).
fn reason_facts(tree: &Tree, allowed: bool, out: &mut Vec<String>) {
    let leaf = tree.children.is_empty();
    let keep = match (&tree.step, tree.outcome) {
        (Step::Relationship, Some(Tri::True)) => allowed,
        (Step::Missing, _) => !allowed,
        (Step::Relationship, Some(_)) => !allowed && leaf,
        _ => false,
    };
    if keep && !out.contains(&tree.label) {
        out.push(tree.label.clone());
    }
    for c in &tree.children {
        reason_facts(c, allowed, out);
    }
}

// ---- pages ----

/// A search's page: how many results, where to start, and the request's fingerprint (a token
/// is good only for the request that returned it).
struct PageReq {
    limit: usize,
    start: u32,
    fingerprint: u64,
}

impl PageReq {
    fn token(&self, next: Option<u32>) -> String {
        match next {
            Some(n) => format!("{n:x}.{:016x}", self.fingerprint),
            None => String::new(),
        }
    }
}

/// `value` with object keys sorted, as text: equal JSON gives equal text.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(k) {
                    canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn page(req: &JsonMap, endpoint: &str, cfg: &Config) -> Result<PageReq, Fail> {
    let page = object_or_empty(req.get("page"), "page")?;
    let max = cfg.max_page_size.max(1);
    let limit = match present(&page, "limit") {
        None => cfg.default_page_size,
        Some(v) => match v.as_u64() {
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => return Err(Fail::bad("`page.limit` must be a non-negative integer")),
        },
    };
    let limit = if limit == 0 { cfg.default_page_size } else { limit }.clamp(1, max);
    let mut text = String::from(endpoint);
    for key in ["subject", "action", "resource", "context"] {
        text.push('\n');
        canonical(req.get(key).unwrap_or(&Value::Null), &mut text);
    }
    let _ = write!(text, "\n{limit}");
    let fingerprint = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
    let start = match present(&page, "token") {
        None => 0,
        Some(Value::String(t)) if t.is_empty() => 0,
        Some(Value::String(t)) => {
            let bad = || {
                Fail::bad(
                    "`page.token` is not a token this PDP returned for this request (the subject, \
                     action, resource, context and page limit must be those of the first page)",
                )
            };
            let (cursor, fp) = t.split_once('.').ok_or_else(bad)?;
            let cursor = u32::from_str_radix(cursor, 16).map_err(|_| bad())?;
            let fp = u64::from_str_radix(fp, 16).map_err(|_| bad())?;
            if fp != fingerprint {
                return Err(bad());
            }
            cursor
        }
        Some(_) => return Err(Fail::bad("`page.token` must be a string")),
    };
    Ok(PageReq { limit, start, fingerprint })
}

fn search_response(results: Vec<Value>, next_token: String, wildcard: bool) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("page".into(), json!({"next_token": next_token, "count": results.len()}));
    if wildcard {
        out.insert("context".into(), json!({"wildcard": true}));
    }
    out.insert("results".into(), Value::Array(results));
    Value::Object(out)
}

fn empty_results() -> Value {
    search_response(Vec::new(), String::new(), false)
}

// ---- answering ----

/// One request's snapshot and settings.
struct Ctx<'a> {
    view: View,
    cfg: &'a Config,
    at: chrono::DateTime<chrono::Utc>,
}

impl Ctx<'_> {
    /// The evaluation options: the request's context with the entities' properties under
    /// `subject`, `resource` and `action`, over the configured defaults.
    fn options(&self, context: &JsonMap, s: &JsonMap, a: &JsonMap, r: &JsonMap) -> EvalOptions {
        let mut opts = self.cfg.eval.clone();
        opts.at = self.at;
        opts.missing_context = MissingContext::Conditional;
        for (k, v) in context {
            opts.context.insert(k.clone(), v.clone());
        }
        opts.context.insert("subject".into(), Value::Object(s.clone()));
        opts.context.insert("resource".into(), Value::Object(r.clone()));
        opts.context.insert("action".into(), Value::Object(a.clone()));
        opts
    }

    /// The decision object for one question.
    fn decide(&self, q: &Question, reasons: bool) -> Value {
        let opts =
            self.options(&q.context, &q.subject.properties, &q.action.properties, &q.resource.properties);
        let object = q.resource.object();
        let subject = q.subject.subject();
        let mut context = serde_json::Map::new();
        let decision = match self.view.check(&object, &q.action.name, &subject, &opts) {
            Ok(Decision::Allowed) => true,
            Ok(Decision::Denied) => false,
            Ok(Decision::Conditional { missing }) => {
                context.insert("missing_context".into(), json!(missing));
                context.insert(
                    "reason".into(),
                    json!("allowed only under conditions that need context the request does not give"),
                );
                false
            }
            Err(EvalError::MissingContext { missing }) => {
                context.insert("missing_context".into(), json!(missing));
                false
            }
            Err(e) => return Fail::from(e).decision(),
        };
        if reasons {
            match self.view.explain(&object, &q.action.name, &subject, &opts) {
                Ok(ex) => {
                    let mut facts = Vec::new();
                    reason_facts(&ex.tree, decision, &mut facts);
                    let key = if decision { "granted_by" } else { "missing" };
                    context.insert(key.into(), json!(facts));
                    context.insert("explanation".into(), serde_json::to_value(&ex.tree).unwrap_or_default());
                }
                Err(e) => {
                    context.insert("explanation_error".into(), json!(e.to_string()));
                }
            }
        }
        let mut out = serde_json::Map::new();
        out.insert("decision".into(), Value::Bool(decision));
        if !context.is_empty() {
            out.insert("context".into(), Value::Object(context));
        }
        Value::Object(out)
    }

    fn evaluation(&self, req: &JsonMap) -> Result<Value, Fail> {
        let q = Question {
            subject: required_entity(req, "subject", true)?,
            action: required_action(req)?,
            resource: required_entity(req, "resource", true)?,
            context: context(req)?,
        };
        Ok(self.decide(&q, include_reasons(req)))
    }

    fn evaluations(&self, req: &JsonMap) -> Result<Value, Fail> {
        let items = match present(req, "evaluations") {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(_) => return Err(Fail::bad("`evaluations` must be an array")),
        };
        let Some(items) = items.filter(|a| !a.is_empty()) else {
            // No evaluations: the request is a single access evaluation.
            return self.evaluation(req);
        };
        if items.len() > self.cfg.max_evaluations {
            return Err(Fail::bad(format!(
                "{} evaluations in one request; the limit is {}",
                items.len(),
                self.cfg.max_evaluations
            )));
        }
        let options = object_or_empty(req.get("options"), "options")?;
        let semantic = match present(&options, "evaluations_semantic") {
            None => Semantic::ExecuteAll,
            Some(Value::String(s)) if s == "execute_all" => Semantic::ExecuteAll,
            Some(Value::String(s)) if s == "deny_on_first_deny" => Semantic::DenyOnFirstDeny,
            Some(Value::String(s)) if s == "permit_on_first_permit" => Semantic::PermitOnFirstPermit,
            Some(_) => {
                return Err(Fail::bad(
                    "`options.evaluations_semantic` must be `execute_all`, `deny_on_first_deny` or \
                     `permit_on_first_permit`",
                ))
            }
        };
        let reasons = include_reasons(req);
        // Top-level defaults; a malformed one fails the whole request.
        let subject = present(req, "subject").map(|v| entity(v, "subject", true)).transpose()?;
        let act = present(req, "action").map(action).transpose()?;
        let resource = present(req, "resource").map(|v| entity(v, "resource", true)).transpose()?;
        let default_context = context(req)?;
        let question = |item: &Value| -> Result<Question, Fail> {
            let Value::Object(item) = item else {
                return Err(Fail::bad("each evaluation must be an object"));
            };
            let missing =
                |key: &str| Fail::bad(format!("`{key}` is missing from the evaluation and the request"));
            Ok(Question {
                subject: match present(item, "subject") {
                    Some(v) => entity(v, "subject", true)?,
                    None => subject.clone().ok_or_else(|| missing("subject"))?,
                },
                action: match present(item, "action") {
                    Some(v) => action(v)?,
                    None => act.clone().ok_or_else(|| missing("action"))?,
                },
                resource: match present(item, "resource") {
                    Some(v) => entity(v, "resource", true)?,
                    None => resource.clone().ok_or_else(|| missing("resource"))?,
                },
                context: match present(item, "context") {
                    Some(v) => object_or_empty(Some(v), "context")?,
                    None => default_context.clone(),
                },
            })
        };
        let answer = |item: &Value| match question(item) {
            Ok(q) => self.decide(&q, reasons),
            Err(f) => f.decision(),
        };
        let decisions: Vec<Value> = match semantic {
            Semantic::ExecuteAll => {
                use rayon::prelude::*;
                items.par_iter().map(answer).collect()
            }
            Semantic::DenyOnFirstDeny | Semantic::PermitOnFirstPermit => {
                let stop_on = semantic == Semantic::PermitOnFirstPermit;
                let mut out = Vec::new();
                for item in items {
                    let d = answer(item);
                    let stop = is_permit(&d) == stop_on;
                    out.push(d);
                    if stop {
                        break;
                    }
                }
                out
            }
        };
        Ok(json!({"evaluations": decisions}))
    }

    fn search_subject(&self, req: &JsonMap) -> Result<Value, Fail> {
        let subject = required_entity(req, "subject", false)?;
        let act = required_action(req)?;
        let resource = required_entity(req, "resource", true)?;
        let ctx = context(req)?;
        let page = page(req, "subject", self.cfg)?;
        let opts = self.options(&ctx, &subject.properties, &act.properties, &resource.properties);
        let filter = SubjectFilter { ty: subject.ty.clone(), relation: None };
        let who = match self.view.who(&resource.object(), &act.name, &filter, &opts) {
            Ok(w) => w,
            Err(e) if is_unknown(&e) => return Ok(empty_results()),
            Err(e) => return Err(e.into()),
        };
        let src = self.view.source();
        let Some(ty) = self.view.schema().type_id(&subject.ty) else { return Ok(empty_results()) };
        let mut ids: Vec<u32> = who
            .subjects
            .iter()
            .filter(|f| f.outcome == Tri::True)
            .filter_map(|f| src.object_id(ty, &f.subject.id))
            .collect();
        let wildcard = who.wildcard.as_ref().filter(|w| w.outcome == Tri::True);
        if let Some(w) = wildcard {
            let excluded: HashSet<u32> =
                w.excluded.iter().filter_map(|f| src.object_id(ty, &f.subject.id)).collect();
            ids.extend((0..src.object_count(ty)).filter(|id| !excluded.contains(id)));
        }
        ids.sort_unstable();
        ids.dedup();
        let from = ids.partition_point(|&id| id < page.start);
        let rest = ids.get(from..).unwrap_or_default();
        let results = rest
            .iter()
            .take(page.limit)
            .map(|&id| json!({"type": subject.ty, "id": decode_id(&src.object_name(ty, id))}))
            .collect();
        let next = rest.get(page.limit).copied();
        Ok(search_response(results, page.token(next), wildcard.is_some()))
    }

    fn search_resource(&self, req: &JsonMap) -> Result<Value, Fail> {
        let subject = required_entity(req, "subject", true)?;
        let act = required_action(req)?;
        let resource = required_entity(req, "resource", false)?;
        let ctx = context(req)?;
        let page = page(req, "resource", self.cfg)?;
        let opts = self.options(&ctx, &subject.properties, &act.properties, &resource.properties);
        let want = Page { limit: Some(page.limit), cursor: (page.start > 0).then(|| page.start.to_string()) };
        let found = match self.view.what(&subject.subject(), &act.name, &resource.ty, &want, &opts) {
            Ok(w) => w,
            Err(e) if is_unknown(&e) => return Ok(empty_results()),
            Err(e) => return Err(e.into()),
        };
        let results = found
            .objects
            .iter()
            .filter(|o| o.outcome == Tri::True)
            .map(|o| json!({"type": o.object.ty, "id": decode_id(&o.object.id)}))
            .collect();
        let next = found.cursor.as_deref().and_then(|c| c.parse::<u32>().ok());
        Ok(search_response(results, page.token(next), false))
    }

    fn search_action(&self, req: &JsonMap) -> Result<Value, Fail> {
        let subject = required_entity(req, "subject", true)?;
        let resource = required_entity(req, "resource", true)?;
        let ctx = context(req)?;
        let page = page(req, "action", self.cfg)?;
        let schema = self.view.schema();
        let (Some(ty), Some(_)) = (schema.type_id(&resource.ty), schema.type_id(&subject.ty)) else {
            return Ok(empty_results());
        };
        let tdef = schema.type_def(ty);
        let permissions: Vec<&str> = tdef
            .relations
            .iter()
            .filter(|r| r.kind == RelKind::Permission)
            .map(|r| r.name.as_str())
            .collect();
        let actions = if permissions.is_empty() { tdef.relation_names().collect() } else { permissions };
        let opts = self.options(&ctx, &subject.properties, &JsonMap::new(), &resource.properties);
        let (object, who) = (resource.object(), subject.subject());
        let mut results = Vec::new();
        let mut next = None;
        for (i, name) in actions.iter().enumerate().skip(page.start as usize) {
            match self.view.check(&object, name, &who, &opts) {
                Ok(Decision::Allowed) => {
                    if results.len() == page.limit {
                        next = u32::try_from(i).ok();
                        break;
                    }
                    results.push(json!({"name": name}));
                }
                Ok(_) => {}
                Err(e) if is_unknown(&e) => return Ok(empty_results()),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(search_response(results, page.token(next), false))
    }
}
