//! A small runner for the parts of the native test-file format the examples use (schemaFile,
//! relationshipsFile, at, assertions with ` with {json}` / ` at TIME`, exact `who:` and `what:`),
//! on both engines, until `purview::testfile` is on this branch.

use purview::api::{compile_schema, Engine, Page, SubjectFilter, View};
use purview::eval::{EvalOptions, Tri};
use purview::store::relationship::parse_time;
use purview::store::{ObjectRef, SubjectRef};
use purview::Purview;
use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// Loads the example in `dir` (its `*.test.yaml`) on an engine: the view and the base options.
pub fn load(dir: &Path, engine: Engine) -> (Value, View, EvalOptions) {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".test.yaml"))
        .unwrap_or_else(|| panic!("no *.test.yaml in {}", dir.display()));
    let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let text = |key: &str, file_key: &str| match (doc.get(key), doc.get(file_key)) {
        (Some(v), _) => v.as_str().unwrap().to_string(),
        (None, Some(f)) => std::fs::read_to_string(dir.join(f.as_str().unwrap())).unwrap(),
        (None, None) => String::new(),
    };
    let schema = compile_schema("schema.pv", &text("schema", "schemaFile")).unwrap_or_else(|e| panic!("{e}"));
    let mut pv = Purview::with_engine(schema, engine);
    pv.write_text(&text("relationships", "relationshipsFile")).unwrap_or_else(|e| panic!("{e}"));
    let mut opts = EvalOptions::default();
    if let Some(at) = doc.get("at") {
        opts.at = parse_time(at.as_str().unwrap()).unwrap();
    }
    (doc, pv.snapshot(), opts)
}

/// Splits ` with {json}` and ` at TIME` off an assertion.
fn suffixes(text: &str, base: &EvalOptions) -> (String, EvalOptions) {
    let mut opts = base.clone();
    let mut head = text.trim().to_string();
    if let Some(i) = head.find(" at ") {
        let at = head[i + 4..].trim().to_string();
        let (at, with) = match at.split_once(" with ") {
            Some((a, w)) => (a.to_string(), Some(w.to_string())),
            None => (at, None),
        };
        opts.at = parse_time(&at).unwrap();
        if let Some(w) = with {
            head = format!("{} with {w}", &head[..i]);
        } else {
            head.truncate(i);
        }
    }
    if let Some(i) = head.find(" with ") {
        opts.context = serde_json::from_str(&head[i + 6..]).unwrap();
        head.truncate(i);
    }
    (head, opts)
}

/// Runs every assertion of the file; returns the failures and the number of assertions run.
pub fn run(doc: &Value, view: &View, base: &EvalOptions) -> (Vec<String>, usize) {
    let mut failures = Vec::new();
    let mut count = 0;
    for (kind, want) in
        [("assertTrue", Tri::True), ("assertFalse", Tri::False), ("assertCaveated", Tri::Cond)]
    {
        for a in
            doc.get("assertions").and_then(|a| a.get(kind)).and_then(Value::as_sequence).into_iter().flatten()
        {
            count += 1;
            let (head, opts) = suffixes(a.as_str().unwrap(), base);
            let (object, rest) = head.split_once('#').unwrap();
            let (permission, subject) = rest.split_once('@').unwrap();
            let got = view
                .check(
                    &ObjectRef::parse(object).unwrap(),
                    permission,
                    &SubjectRef::parse(subject).unwrap(),
                    &opts,
                )
                .map(|d| d.tri());
            if got != Ok(want) {
                failures.push(format!("{kind} {}: got {got:?}", a.as_str().unwrap()));
            }
        }
    }
    for (section, lookup) in [("who", true), ("what", false)] {
        for (k, v) in doc.get(section).and_then(Value::as_mapping).into_iter().flatten() {
            count += 1;
            let (key, mut opts) = suffixes(k.as_str().unwrap(), base);
            let list = match v {
                Value::Mapping(m) => {
                    if let Some(at) = m.get("at") {
                        opts.at = parse_time(at.as_str().unwrap()).unwrap();
                    }
                    if let Some(c) = m.get("context") {
                        opts.context = serde_yaml_ng::from_value(c.clone()).unwrap();
                    }
                    m.get("expect").cloned().unwrap_or(Value::Null)
                }
                other => other.clone(),
            };
            let want: BTreeSet<String> =
                list.as_sequence().into_iter().flatten().map(|s| s.as_str().unwrap().to_string()).collect();
            let (head, ty) = key.split_once(' ').unwrap();
            let got: BTreeSet<String> = if lookup {
                let (object, permission) = head.split_once('#').unwrap();
                let who = view
                    .who(
                        &ObjectRef::parse(object).unwrap(),
                        permission,
                        &SubjectFilter::parse(ty.trim()),
                        &opts,
                    )
                    .unwrap();
                assert!(who.wildcard.is_none(), "the examples have no wildcards");
                who.subjects.iter().map(|f| shown(f.subject.to_string(), f.outcome)).collect()
            } else {
                let (subject, permission) = head.rsplit_once('#').unwrap();
                let what = view
                    .what(
                        &SubjectRef::parse(subject).unwrap(),
                        permission,
                        ty.trim(),
                        &Page::default(),
                        &opts,
                    )
                    .unwrap();
                what.objects.iter().map(|f| shown(f.object.to_string(), f.outcome)).collect()
            };
            if got != want {
                failures.push(format!("{section} {key}: expected {want:?}, got {got:?}"));
            }
        }
    }
    (failures, count)
}

fn shown(name: String, t: Tri) -> String {
    if t == Tri::Cond {
        format!("{name} (conditional)")
    } else {
        name
    }
}

/// Every example passes on both engines.
pub fn passes(example: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(example);
    for engine in [Engine::Reference, Engine::Index] {
        let (doc, view, opts) = load(&dir, engine);
        let (failures, count) = run(&doc, &view, &opts);
        assert!(count > 20, "{example}: only {count} assertions");
        assert!(failures.is_empty(), "{example} on {engine:?}:\n{}", failures.join("\n"));
    }
}
