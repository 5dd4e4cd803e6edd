//! Purview test files: a schema, relationships, and the answers expected of them.
//!
//! ```yaml
//! purview: 1                      # optional; makes format detection certain
//! schema: |                       # or `schemaFile: docs.pv` (relative to this file)
//!   type user {}
//!   type group {
//!     relation member: user
//!   }
//!   type document {
//!     relation viewer: user | user:* | group#member | user with in_office | user with expiration
//!     relation banned: user
//!     permission view = viewer - banned
//!   }
//!   condition in_office(ip: ipaddress) { ip.in_cidr("10.0.0.0/8") }
//! relationships: |                # or `relationshipsFile: docs.rel`; one per line, `//` comments
//!   document:d1#viewer@user:ann
//!   document:d1#viewer@group:eng#member
//!   document:d1#viewer@user:bob[in_office]
//!   document:d2#viewer@user:*
//!   document:d2#banned@user:eve
//!   document:d3#viewer@user:carl[valid:2024-01-01T00:00:00Z..2024-07-01T00:00:00Z]
//!   group:eng#member@user:dan
//! at: 2024-05-01T00:00:00Z        # evaluation time; default: now
//! assertions:
//!   assertTrue:                   # allowed
//!     - document:d1#view@user:ann
//!     - 'document:d1#view@user:bob with {"ip": "10.0.0.1"}'   # request context
//!     - document:d3#view@user:carl at 2024-06-01T00:00:00Z   # another evaluation time
//!   assertFalse:                  # denied
//!     - document:d2#view@user:eve
//!     - document:d3#view@user:carl at 2024-08-01T00:00:00Z
//!   assertCaveated:               # conditional: depends on context that was not given
//!     - document:d1#view@user:bob
//! who:                            # exactly these subjects have object#permission
//!   document:d1#view user:        # subjects of one type ...
//!     - user:ann
//!     - user:bob (conditional)
//!     - user:dan
//!   document:d1#view group#member: [group:eng#member]        # ... or one userset type
//!   document:d2#view: ['user:* - {user:eve}']                # no filter: every type
//!   document:d1#view:             # long form, with context or time
//!     type: user
//!     context: {ip: 10.0.0.1}
//!     expect: [user:ann, user:bob, user:dan]
//! what:                           # exactly these objects of a type
//!   user:ann#view document: [document:d1, document:d2]
//!   user:bob#view document:
//!     context: {ip: 192.168.0.1}
//!     expect: [document:d2]
//! ```
//!
//! Each line under `assertions:` and each key under `who:` and `what:` is one assertion. Checks
//! are `object#permission@subject`, optionally followed by ` with {json}` (request context) and
//! ` at TIME` (RFC 3339), in either order; `who` and `what` keys take the same suffixes (or
//! `context:` and `at:` in the long form).
//!
//! Expected subjects are `type:id`, a userset `type:id#relation`, a wildcard `type:*`, or a
//! wildcard with the subjects it does not cover, `user:* - {user:eve, user:fay (conditional)}`.
//! ` (conditional)` (or SpiceDB's `[...]`) marks a subject or object the answer holds for only
//! if conditions hold whose parameters were not given. The lists are compared as sets; a subject
//! that a wildcard lists as conditionally excluded may, but need not, also be listed on its own.
//! A `who` key without a subject type compares against the subjects of every type (not
//! usersets); name a userset type like `group#member` to get usersets.
//!
//! A `subset:` section asks delegation questions ([`View::subset`]): is every object of a set one
//! the subject has a permission on? The key is `SET in SUBJECT#PERMISSION`, where the set is
//! `role:auditor#grants` (the objects the role relates to) or `right#granted@role:auditor#member`
//! (the objects of a type that relate to a subject); the value lists the members the subject
//! lacks, ` (conditional)` marking those that depend on missing context. `[]` means the subset
//! holds. Keys take the same suffixes, and the same long form, as `who:` and `what:`.
//!
//! ```yaml
//! subset:
//!   role:auditor#grants in user:ann#exercise: []               # Ann holds every right of the role
//!   role:admin#grants in user:ann#exercise: [right:delete-users]
//! ```

use super::common::{self, CheckText, FoundText, Tally};
use super::{FileCtx, Origin};
use crate::api::View;
use crate::api::{ObjectSet, Purview, SubjectFilter};
use crate::eval::{EvalOptions, Tri};
use crate::schema::condition::JsonMap;
use crate::store::relationship::parse_time;
use crate::store::{ObjectRef, SubjectRef};
use crate::syntax::SchemaFormat;
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeSet;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    /// Only marks the format.
    #[serde(default)]
    #[allow(dead_code, reason = "read by format detection, not by the runner")]
    purview: Option<Value>,
    schema: Option<String>,
    schema_file: Option<String>,
    relationships: Option<String>,
    relationships_file: Option<String>,
    at: Option<String>,
    #[serde(default)]
    assertions: Option<Assertions>,
    #[serde(default)]
    who: Option<Mapping>,
    #[serde(default)]
    what: Option<Mapping>,
    #[serde(default)]
    subset: Option<Mapping>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Assertions {
    #[serde(default)]
    pub assert_true: Option<Vec<String>>,
    #[serde(default)]
    pub assert_false: Option<Vec<String>>,
    #[serde(default)]
    pub assert_caveated: Option<Vec<String>>,
}

impl Assertions {
    /// Every assertion with the answer it expects, in file order.
    pub fn all(&self) -> Vec<(&'static str, &str, Tri)> {
        let mut out = Vec::new();
        for (name, list, t) in [
            ("assertTrue", &self.assert_true, Tri::True),
            ("assertFalse", &self.assert_false, Tri::False),
            ("assertCaveated", &self.assert_caveated, Tri::Cond),
        ] {
            out.extend(list.iter().flatten().map(|a| (name, a.as_str(), t)));
        }
        out
    }
}

/// Runs a Purview test file.
pub(crate) fn run(file: &FileCtx, doc: Value) -> super::Report {
    let mut t = Tally::new(&file.name);
    let f: File = match serde_yaml_ng::from_value(doc) {
        Ok(f) => f,
        Err(e) => {
            t.fail("file", format!("not a valid Purview test file: {e}"));
            return t.finish();
        }
    };
    match load(file, &f) {
        Ok((snap, base)) => run_loaded(&mut t, &file.text, &f, &snap, &base),
        Err(e) => t.fail("file", e),
    }
    t.finish()
}

fn load(file: &FileCtx, f: &File) -> Result<(View, EvalOptions), String> {
    let schema = match (&f.schema, &f.schema_file) {
        (Some(s), None) => {
            super::compile(SchemaFormat::Purview, s, Origin::Inline { file, label: "schema", from_line: 0 })?
        }
        (None, Some(p)) => {
            let (name, text) = file.read(p)?;
            super::compile(SchemaFormat::Purview, &text, Origin::File(&name))?
        }
        (Some(_), Some(_)) => return Err("give either `schema` or `schemaFile`, not both".into()),
        (None, None) => return Err("missing `schema` (or `schemaFile`)".into()),
    };
    let rels = match (&f.relationships, &f.relationships_file) {
        (Some(r), None) => r.clone(),
        (None, Some(p)) => file.read(p)?.1,
        (Some(_), Some(_)) => {
            return Err("give either `relationships` or `relationshipsFile`, not both".into())
        }
        (None, None) => String::new(),
    };
    let pv = Purview::with_engine(schema, file.engine);
    pv.write_text(&rels).map_err(|e| format!("invalid relationships: {e}"))?;
    let mut base = EvalOptions::default();
    if let Some(at) = &f.at {
        base.at = parse_time(at).map_err(|e| format!("`at`: {e}"))?;
    }
    Ok((pv.snapshot(), base))
}

fn run_loaded(t: &mut Tally, source: &str, f: &File, snap: &View, base: &EvalOptions) {
    for (kind, text, expected) in f.assertions.as_ref().map(Assertions::all).unwrap_or_default() {
        t.record_at(
            (source, "assertions", text),
            format!("{kind} {text}"),
            check(snap, text, expected, base),
        );
    }
    for (k, v) in f.who.iter().flatten() {
        let key = key_text(k);
        t.record_at((source, "who", &format!("{key}:")), format!("who {key}"), who(snap, &key, v, base));
    }
    for (k, v) in f.what.iter().flatten() {
        let key = key_text(k);
        t.record_at((source, "what", &format!("{key}:")), format!("what {key}"), what(snap, &key, v, base));
    }
    for (k, v) in f.subset.iter().flatten() {
        let key = key_text(k);
        let outcome = subset(snap, &key, v, base);
        t.record_at((source, "subset", &format!("{key}:")), format!("subset {key}"), outcome);
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// Evaluates one check and compares it with the expectation.
pub(crate) fn check(snap: &View, text: &str, expected: Tri, base: &EvalOptions) -> Result<(), String> {
    let q = CheckText::parse(text)?;
    let d = snap
        .check(&q.object, &q.permission, &q.subject, &q.opts(base))
        .map_err(|e| common::eval_message(snap, e))?;
    if d.tri() == expected {
        Ok(())
    } else {
        Err(format!("expected {}, got {}", common::tri_word(expected), common::tri_word(d.tri())))
    }
}

/// The parts of a `who:` or `what:` entry.
struct Entry {
    head: String,
    ty: Option<String>,
    opts: EvalOptions,
    expect: Vec<String>,
}

fn entry(key: &str, v: &Value, base: &EvalOptions) -> Result<Entry, String> {
    let (head, context, at) = common::split_suffixes(key)?;
    let mut words = head.split_whitespace();
    let head_word = words.next().unwrap_or("").to_string();
    let mut ty = words.next().map(str::to_string);
    if let Some(extra) = words.next() {
        return Err(format!("unexpected `{extra}` in the key"));
    }
    let mut opts = base.clone();
    opts.context = context;
    if let Some(at) = at {
        opts.at = at;
    }
    let list = match v {
        Value::Mapping(m) => {
            for (k, _) in m {
                if !matches!(k.as_str(), Some("type" | "context" | "at" | "expect")) {
                    return Err(format!(
                        "unknown key `{}`; expected `type`, `context`, `at` or `expect`",
                        key_text(k)
                    ));
                }
            }
            if let Some(t) = m.get("type") {
                ty = Some(t.as_str().ok_or("`type` must be a string")?.to_string());
            }
            if let Some(c) = m.get("context") {
                opts.context = serde_yaml_ng::from_value::<JsonMap>(c.clone())
                    .map_err(|e| format!("`context` must be a mapping: {e}"))?;
            }
            if let Some(a) = m.get("at") {
                opts.at = parse_time(a.as_str().ok_or("`at` must be a string")?)?;
            }
            m.get("expect").cloned().unwrap_or(Value::Null)
        }
        other => other.clone(),
    };
    let expect = match list {
        Value::Null => Vec::new(),
        Value::Sequence(items) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| "expected entries must be strings".to_string())
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("expected a list of subjects (or a mapping with `expect:`)".into()),
    };
    Ok(Entry { head: head_word, ty, opts, expect })
}

fn who(snap: &View, key: &str, v: &Value, base: &EvalOptions) -> Result<(), String> {
    let e = entry(key, v, base)?;
    let (object, permission) =
        e.head.split_once('#').ok_or_else(|| format!("`{}`: expected `object#permission`", e.head))?;
    let object = ObjectRef::parse(object).map_err(|e| e.to_string())?;
    let filters: Vec<SubjectFilter> = match &e.ty {
        Some(t) => vec![SubjectFilter::parse(t)],
        None => {
            snap.schema().types.iter().map(|t| SubjectFilter { ty: t.name.clone(), relation: None }).collect()
        }
    };
    let expected: BTreeSet<FoundText> =
        e.expect.iter().map(|s| FoundText::parse(s)).collect::<Result<_, _>>()?;
    let found = common::who_union(snap, &object, permission, &filters, &e.opts, None)
        .map_err(|e| common::eval_message(snap, e))?;
    common::compare_who(&expected, &found)
}

fn what(snap: &View, key: &str, v: &Value, base: &EvalOptions) -> Result<(), String> {
    let e = entry(key, v, base)?;
    let (subject, permission) =
        e.head.rsplit_once('#').ok_or_else(|| format!("`{}`: expected `subject#permission type`", e.head))?;
    let subject = SubjectRef::parse(subject).map_err(|e| e.to_string())?;
    let ty =
        e.ty.as_deref()
            .ok_or("expected the object type after the permission, e.g. `user:ann#view document`")?;
    let shown = |(o, c): (String, bool)| if c { format!("{o} (conditional)") } else { o };
    let expected: BTreeSet<String> =
        e.expect.iter().map(|s| common::parse_found_object(s).map(shown)).collect::<Result<_, _>>()?;
    let found: BTreeSet<String> = common::what_all(snap, &subject, permission, ty, &e.opts)
        .map_err(|e| common::eval_message(snap, e))?
        .into_iter()
        .map(shown)
        .collect();
    common::compare_sets(&expected, &found)
}

/// A `subset:` entry: `SET in SUBJECT#PERMISSION`, expecting the members the subject lacks.
fn subset(snap: &View, key: &str, v: &Value, base: &EvalOptions) -> Result<(), String> {
    let (head, _, _) = common::split_suffixes(key)?;
    let suffix = key.trim().get(head.len()..).unwrap_or("");
    let e = entry(&format!("subset{suffix}"), v, base)?;
    let words: Vec<&str> = head.split_whitespace().collect();
    let [set, "in", held] = words.as_slice() else {
        return Err(format!(
            "`{head}`: expected `SET in SUBJECT#PERMISSION`, e.g. `role:auditor#grants in user:ann#exercise`"
        ));
    };
    let set = ObjectSet::parse(set).map_err(|e| e.to_string())?;
    let (subject, permission) =
        held.rsplit_once('#').ok_or_else(|| format!("`{held}`: expected `subject#permission` after `in`"))?;
    let subject = SubjectRef::parse(subject).map_err(|e| e.to_string())?;
    let r = snap.subset(&set, &subject, permission, &e.opts).map_err(|e| common::eval_message(snap, e))?;
    let shown = |(o, c): (String, bool)| if c { format!("{o} (conditional)") } else { o };
    let parse = |s: &String| match s.trim() {
        w if w.ends_with(":*") => Ok(w.to_string()),
        other => common::parse_found_object(other).map(shown),
    };
    let expected: BTreeSet<String> = e.expect.iter().map(parse).collect::<Result<_, _>>()?;
    let found: BTreeSet<String> = r
        .missing
        .iter()
        .map(ToString::to_string)
        .chain(r.conditional.iter().map(|o| format!("{o} (conditional)")))
        .collect();
    common::compare_sets(&expected, &found)
}
