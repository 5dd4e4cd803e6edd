//! OpenFGA store files (`*.fga.yaml`), as `fga model test` reads them.
//!
//! ```yaml
//! name: Documents                     # optional
//! model: |                            # OpenFGA DSL; or model_file: model.fga (or .json, or
//!                                     # an fga.mod manifest of a modular model)
//!   model
//!     schema 1.1
//!   type user
//!   type organization
//!     relations
//!       define member: [user]
//! tuples:                             # or tuple_file: tuples.yaml (.yaml, .json, .jsonl, .csv)
//!   - {user: "user:daniel", relation: member, object: "organization:auth0"}
//! tests:
//!   - name: members
//!     tuples: [...]                   # more tuples for this test only (or tuple_file)
//!     check:
//!       - user: user:daniel           # or users: [...]
//!         object: organization:auth0  # or objects: [...]
//!         context: {x: 1}
//!         assertions: {member: true}
//!     list_objects:
//!       - user: user:daniel
//!         type: organization
//!         assertions: {member: ["organization:auth0"]}
//!     list_users:
//!       - object: organization:auth0
//!         user_filter: [{type: user}]  # or {type: group, relation: member}
//!         assertions: {member: {users: ["user:daniel"]}}
//! ```
//!
//! Each relation under an `assertions:` key is one assertion (for each user and object of a
//! check). As in the CLI, a `list_users` asks with the first of its `user_filter`s only. Unknown keys are an error, as in the CLI's schema. Evaluation follows OpenFGA
//! (missing condition parameters are an error).

use super::common::Tally;
use super::fga::{self, Store, Tuple};
use super::{FileCtx, Origin};
use crate::schema::condition::JsonMap;
use crate::syntax::SchemaFormat;
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    #[allow(dead_code, reason = "the store name is not used by the runner")]
    name: Option<String>,
    model: Option<String>,
    model_file: Option<String>,
    tuples: Option<Vec<Tuple>>,
    tuple_file: Option<String>,
    tuple_files: Option<Vec<String>>,
    tests: Vec<Test>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Test {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "descriptions are for readers")]
    description: Option<String>,
    tuples: Option<Vec<Tuple>>,
    tuple_file: Option<String>,
    tuple_files: Option<Vec<String>>,
    #[serde(default)]
    check: Vec<Check>,
    #[serde(default)]
    list_objects: Vec<ListObjects>,
    #[serde(default)]
    list_users: Vec<ListUsers>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    user: Option<String>,
    users: Option<Vec<String>>,
    object: Option<String>,
    objects: Option<Vec<String>>,
    context: Option<JsonMap>,
    assertions: Mapping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListObjects {
    user: String,
    #[serde(rename = "type")]
    ty: String,
    context: Option<JsonMap>,
    assertions: Mapping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListUsers {
    object: String,
    user_filter: Vec<UserFilter>,
    context: Option<JsonMap>,
    assertions: Mapping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserFilter {
    #[serde(rename = "type")]
    ty: String,
    relation: Option<String>,
}

/// Runs an OpenFGA store file.
pub(crate) fn run(file: &FileCtx, doc: Value) -> super::Report {
    let mut t = Tally::new(&file.name);
    let f: File = match serde_yaml_ng::from_value(doc) {
        Ok(f) => f,
        Err(e) => {
            t.fail("file", format!("not a valid OpenFGA store file: {e}"));
            return t.finish();
        }
    };
    match load(file, &f) {
        Ok((schema, tuples)) => {
            for (i, test) in f.tests.iter().enumerate() {
                let name = test.name.clone().unwrap_or_else(|| format!("test {i}"));
                run_test(&mut t, file, &name, test, &schema, &tuples);
            }
        }
        Err(e) => t.fail("file", e),
    }
    t.finish()
}

fn load(file: &FileCtx, f: &File) -> Result<(Arc<crate::schema::Schema>, Vec<Tuple>), String> {
    let schema = match (&f.model, &f.model_file) {
        (Some(m), _) => super::compile(
            SchemaFormat::OpenFgaDsl,
            m,
            Origin::Inline { file, label: "model", from_line: 0 },
        )?,
        (None, Some(p)) if p.ends_with(".mod") => modular(file, p)?,
        (None, Some(p)) => {
            let (name, text) = file.read(p)?;
            let lang =
                if p.ends_with(".json") { SchemaFormat::OpenFgaJson } else { SchemaFormat::OpenFgaDsl };
            super::compile(lang, &text, Origin::File(&name))?
        }
        (None, None) => return Err("`model` or `model_file` must be given".into()),
    };
    let tuples = tuples(file, &f.tuples, &f.tuple_file, &f.tuple_files)?;
    Ok((Arc::new(schema), tuples))
}

/// An OpenFGA modular model: the `fga.mod` manifest at `manifest` and the modules it names
/// (relative to it).
fn modular(file: &FileCtx, manifest: &str) -> Result<crate::schema::Schema, String> {
    let (name, text) = file.read(manifest)?;
    let dir = std::path::Path::new(manifest).parent().unwrap_or(std::path::Path::new(""));
    let modules = crate::syntax::openfga::modules::read_modules(&text, |rel| {
        file.read(&dir.join(rel).to_string_lossy())
    })
    .map_err(|e| format!("`{name}`: {e}"))?;
    let render = |d: crate::diag::Diagnostics| {
        let shown: Vec<String> = modules.split(d).iter().map(|(f, d)| d.render(f)).collect();
        format!("the modular model `{name}` does not compile:\n{}", shown.join(""))
    };
    let (ast, _warnings) = crate::syntax::parse_openfga_modules(&modules).map_err(render)?;
    crate::schema::compile(&ast).map_err(render)
}

/// Inline tuples take precedence over tuple files.
fn tuples(
    file: &FileCtx,
    inline: &Option<Vec<Tuple>>,
    one: &Option<String>,
    many: &Option<Vec<String>>,
) -> Result<Vec<Tuple>, String> {
    if let Some(t) = inline {
        return Ok(t.clone());
    }
    let mut out = Vec::new();
    for p in one.iter().chain(many.iter().flatten()) {
        let (name, text) = file.read(p)?;
        out.extend(read_tuple_file(&name, &text).map_err(|e| format!("`{name}`: {e}"))?);
    }
    Ok(out)
}

fn run_test(
    t: &mut Tally,
    file: &FileCtx,
    name: &str,
    test: &Test,
    schema: &Arc<crate::schema::Schema>,
    base: &[Tuple],
) {
    let mut all = base.to_vec();
    match tuples(file, &test.tuples, &test.tuple_file, &test.tuple_files) {
        Ok(extra) => all.extend(extra),
        Err(e) => {
            t.fail(format!("{name}: tuples"), e);
            return;
        }
    }
    let mut store = Store::new(schema.clone(), file.engine);
    let rejected = store.write(&all);
    if !rejected.is_empty() {
        let reasons: Vec<&str> = rejected.iter().map(|(_, r)| r.as_str()).collect();
        t.fail(format!("{name}: tuples"), format!("the model rejects {}", reasons.join("; ")));
    }
    let empty = JsonMap::new();
    for c in &test.check {
        let users: Vec<&String> = c.user.iter().chain(c.users.iter().flatten()).collect();
        let objects: Vec<&String> = c.object.iter().chain(c.objects.iter().flatten()).collect();
        if users.is_empty() || objects.is_empty() {
            t.fail(format!("{name}: check"), "a check needs `user` (or `users`) and `object` (or `objects`)");
            continue;
        }
        for (rel, want) in &c.assertions {
            let rel = rel.as_str().unwrap_or("");
            for u in &users {
                for o in &objects {
                    let label = format!("{name}: check {u} {rel} {o}");
                    let Some(want) = want.as_bool() else {
                        t.fail(label, "the expected answer must be `true` or `false`");
                        continue;
                    };
                    let got = store.check(o, rel, u, c.context.as_ref().unwrap_or(&empty), &[]);
                    t.record(label, fga::expect(got, None, want, |b| b.to_string()));
                }
            }
        }
    }
    for l in &test.list_objects {
        for (rel, want) in &l.assertions {
            let rel = rel.as_str().unwrap_or("");
            let label = format!("{name}: list_objects {} {rel} {}", l.user, l.ty);
            let outcome = strings(want).and_then(|want| {
                let got = store.list_objects(&l.user, &l.ty, rel, l.context.as_ref().unwrap_or(&empty), &[]);
                fga::expect(got, None, want, fga::show_set)
            });
            t.record(label, outcome);
        }
    }
    for l in &test.list_users {
        // The CLI asks OpenFGA with the first filter only (the others are ignored).
        let filters: Vec<String> = l
            .user_filter
            .iter()
            .take(1)
            .map(|f| match &f.relation {
                Some(r) => format!("{}#{r}", f.ty),
                None => f.ty.clone(),
            })
            .collect();
        for (rel, want) in &l.assertions {
            let rel = rel.as_str().unwrap_or("");
            let label = format!("{name}: list_users {} {rel} [{}]", l.object, filters.join(", "));
            let outcome = strings(want.get("users").unwrap_or(&Value::Null)).and_then(|want| {
                let got =
                    store.list_users(&l.object, rel, &filters, l.context.as_ref().unwrap_or(&empty), &[]);
                fga::expect(got, None, want, fga::show_set)
            });
            t.record(label, outcome);
        }
    }
}

fn strings(v: &Value) -> Result<BTreeSet<String>, String> {
    match v {
        Value::Null => Ok(BTreeSet::new()),
        Value::Sequence(s) => s
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(|| "expected a list of strings".to_string()))
            .collect(),
        _ => Err("expected a list of strings".into()),
    }
}

/// Reads a tuple file: YAML or JSON (a list of tuples), JSON lines, or CSV with the columns
/// `user_type,user_id,user_relation,relation,object_type,object_id,condition_name,condition_context`.
pub(crate) fn read_tuple_file(name: &str, text: &str) -> Result<Vec<Tuple>, String> {
    if name.ends_with(".csv") {
        return read_csv(text);
    }
    if name.ends_with(".jsonl") {
        return text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Tuple>(l).map_err(|e| e.to_string()))
            .collect();
    }
    serde_yaml_ng::from_str::<Vec<Tuple>>(text).map_err(|e| e.to_string())
}

fn read_csv(text: &str) -> Result<Vec<Tuple>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = csv_fields(lines.next().unwrap_or(""));
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let need = |name: &str| col(name).ok_or_else(|| format!("the CSV header has no `{name}` column"));
    let (ut, ui, rel, ot, oi) =
        (need("user_type")?, need("user_id")?, need("relation")?, need("object_type")?, need("object_id")?);
    let (ur, cn, cc) = (col("user_relation"), col("condition_name"), col("condition_context"));
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let f = csv_fields(line);
        let get =
            |i: Option<usize>| i.and_then(|i| f.get(i)).map(|s| s.trim().to_string()).unwrap_or_default();
        let mut user = format!("{}:{}", get(Some(ut)), get(Some(ui)));
        let r = get(ur);
        if !r.is_empty() {
            user = format!("{user}#{r}");
        }
        let condition = match get(cn) {
            c if c.is_empty() => None,
            name => {
                let ctx = get(cc);
                let context = if ctx.is_empty() {
                    None
                } else {
                    Some(serde_json::from_str::<JsonMap>(&ctx).map_err(|e| format!("row {}: {e}", n + 2))?)
                };
                Some(fga::TupleCondition { name, context })
            }
        };
        out.push(Tuple {
            user,
            relation: get(Some(rel)),
            object: format!("{}:{}", get(Some(ot)), get(Some(oi))),
            condition,
        });
    }
    Ok(out)
}

/// The fields of one CSV line; `"` quotes a field and `""` inside quotes is a quote.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let cur = out.last_mut();
        match (c, quoted, cur) {
            ('"', true, Some(cur)) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', _, _) => quoted = !quoted,
            (',', false, _) => out.push(String::new()),
            (c, _, Some(cur)) => cur.push(c),
            (_, _, None) => {}
        }
    }
    out
}
