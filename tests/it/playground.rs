//! `purview serve --playground`: the JSON API (answers compared with the reference evaluator,
//! diagnostics with `purview validate`), the binary's HTTP routes, and the page itself in
//! headless Chromium.

use purview::api::Engine;
use purview::eval::EvalOptions;
use purview::query::{parse_queries, run_query};
use purview::server::playground::{run, Model};
use purview::{Purview, WriteOp};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The quickstart's answers are those of the reference evaluator on the same model.
#[test]
fn the_quickstart_is_answered_as_the_reference_evaluator_answers() {
    let model = Model::quickstart();
    let report = run(&model);
    assert!(report.schema.is_empty() && report.relationships.is_empty() && report.queries.is_empty());
    let schema =
        purview::api::compile_schema_as(purview::syntax::SchemaFormat::Purview, "s", &model.schema).unwrap();
    // The graph is `purview graph`'s drawing of the schema.
    let graph = report.graph.as_deref().unwrap_or("");
    assert!(graph.contains("<svg"), "{graph}");
    for t in &schema.types {
        assert!(graph.contains(&format!(">{}</tspan>", t.name)), "type {} is not drawn", t.name);
    }
    let oracle = Purview::with_engine(schema, Engine::Reference);
    let rels = purview::api::parse_relationships(&model.relationships).unwrap();
    oracle.write(&rels.into_iter().map(WriteOp::Touch).collect::<Vec<_>>()).unwrap();
    let view = oracle.snapshot();
    let queries = parse_queries(&model.queries).unwrap();
    assert_eq!(report.answers.len(), queries.len());
    assert!(queries.len() >= 5);
    for (answer, q) in report.answers.iter().zip(&queries) {
        let expected = run_query(&view, q, &EvalOptions::default());
        assert_eq!(
            serde_json::to_value(&answer.json).unwrap(),
            serde_json::to_value(&expected).unwrap(),
            "{q}"
        );
        assert_eq!(answer.text, expected.render());
    }
    let verdicts: Vec<&str> = report.answers.iter().filter_map(|a| a.verdict.as_deref()).collect();
    assert!(
        verdicts.contains(&"allowed") && verdicts.contains(&"denied") && verdicts.contains(&"conditional")
    );
}

/// The quickstart's assertions pass as `purview test` passes them; a failing one is reported.
#[test]
fn test_assertions_run_as_purview_test_runs_them() {
    let model = Model::quickstart();
    let tests = run(&model).tests.expect("the quickstart has assertions");
    let out = Command::new(env!("CARGO_BIN_EXE_purview"))
        .args(["test", "examples/quickstart"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains(&format!("{} passed, 0 failed", tests.passed)), "{summary} vs {tests:?}");
    assert_eq!((tests.failed, tests.failures.len()), (0, 0));
    assert!(tests.passed > 10);

    let mut broken = model.clone();
    broken.assertions =
        broken.assertions.replace("- message:m2#view@user:sam ", "- message:m2#view@user:carol ");
    let tests = run(&broken).tests.unwrap();
    assert_eq!(tests.failed, 1, "{tests:?}");
    assert!(tests.failures[0].0.contains("message:m2#view@user:carol"), "{tests:?}");
}

/// Saving a model as a test file and loading it back gives the same model, answered the same.
#[test]
fn a_model_saves_as_a_test_file_and_loads_back() {
    let mut model = Model::quickstart();
    model.queries.clear();
    model.schema = format!("  // indented first line\n{}", model.schema);
    let text = model.to_test_file();
    let back = Model::from_test_file(&text).unwrap();
    assert_eq!(back.schema, model.schema);
    assert_eq!(back.relationships, model.relationships);
    assert_eq!(run(&back).tests, run(&model).tests);
    // The saved file runs with `purview test`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.test.yaml");
    std::fs::write(&path, &text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_purview")).arg("test").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(Model::from_test_file("- a list").is_err());
    assert!(Model::from_test_file("schemaFile: x.pv").is_err());
}

/// Problems in each part are reported where `purview validate` reports them.
#[test]
fn problems_are_reported_at_their_line_and_column() {
    let mut model = Model::quickstart();
    model.schema = model.schema.replace("account->admin + reviewer", "account->admin + reviewr");
    let report = run(&model);
    assert_eq!(report.schema.len(), 1, "{:?}", report.schema);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.pv");
    std::fs::write(&path, &model.schema).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_purview"))
        .args(["--error-format", "json", "validate"])
        .arg(&path)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stderr).unwrap();
    let d = &v["error"]["diagnostics"][0];
    let p = &report.schema[0];
    assert_eq!(
        (json!(p.line), json!(p.column), json!(p.code), json!(p.message)),
        (d["line"].clone(), d["column"].clone(), d["code"].clone(), d["message"].clone())
    );
    assert!(report.answers.is_empty() && report.graph.is_none());

    let mut model = Model::quickstart();
    model.relationships.push_str("\nmessage:m9#tagged@usergroup:x\nnot a relationship\n");
    let report = run(&model);
    let lines = model.relationships.lines().count();
    assert_eq!(report.relationships.len(), 1, "{:?}", report.relationships);
    assert_eq!((report.relationships[0].line, report.relationships[0].column), (lines, 1));

    let mut model = Model::quickstart();
    model.queries = "check message:m1#view@user:sam\ncheck message:m1#veiw@user:sam\n".into();
    let report = run(&model);
    assert_eq!(report.queries.len(), 1, "{:?}", report.queries);
    assert_eq!(report.queries[0].line, 2);
    assert!(report.queries[0].help.as_deref().is_some_and(|h| h.contains("view")), "{:?}", report.queries);
}

struct Playground {
    child: Child,
    addr: String,
}

impl Playground {
    fn start() -> Playground {
        let mut child = Command::new(env!("CARGO_BIN_EXE_purview"))
            .args(["serve", "--playground", "--http-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url =
            line.trim().strip_prefix("purview serve: playground at ").unwrap_or_else(|| panic!("{line}"));
        let addr = url.trim_start_matches("http://").trim_end_matches("/playground").to_string();
        Playground { child, addr }
    }

    /// One HTTP/1.1 request: the status code and the body.
    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_binary_serves_the_page_and_its_api() {
    let pg = Playground::start();
    let (status, page) = pg.request("GET", "/playground", "");
    assert_eq!(status, 200);
    assert!(page.contains("<title>Purview playground</title>") && page.contains("/playground/app.js"));
    for asset in ["/playground/app.js", "/playground/style.css"] {
        let (status, body) = pg.request("GET", asset, "");
        assert_eq!(status, 200, "{asset}");
        assert!(!body.is_empty());
        // Nothing is fetched from elsewhere.
        assert!(!body.contains("https://") && !body.contains("http://"), "{asset}");
    }
    let (status, body) = pg.request("GET", "/playground/api/quickstart", "");
    assert_eq!(status, 200);
    let model: Model = serde_json::from_str(&body).unwrap();
    assert_eq!(model, Model::quickstart());
    let (status, body) = pg.request("POST", "/playground/api/run", &serde_json::to_string(&model).unwrap());
    assert_eq!(status, 200);
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["answers"][0]["verdict"], "allowed", "{report}");
    // Bad requests are refused, and the server goes on.
    assert_eq!(pg.request("POST", "/playground/api/run", "{not json").0 / 100, 4);
    assert_eq!(pg.request("POST", "/playground/api/run", "{\"schema\": 5}").0 / 100, 4);
    assert_eq!(pg.request("GET", "/playground/nothing", "").0, 404);
    let (status, text) = pg.request("POST", "/playground/api/save", &serde_json::to_string(&model).unwrap());
    assert_eq!(status, 200);
    assert_eq!(text, model.to_test_file());
    let (status, body) = pg.request("POST", "/playground/api/load", &text);
    assert_eq!(status, 200);
    let back: Model = serde_json::from_str(&body).unwrap();
    assert_eq!(back.schema, model.schema);
    assert_eq!(pg.request("POST", "/playground/api/load", "schemaFile: x.pv").0, 422);
    let (status, body) = pg.request("POST", "/playground/api/run", r#"{"schema": "type {"}"#);
    assert_eq!(status, 200);
    assert!(body.contains("\"code\":\"syntax\""), "{body}");
}

/// Headless Chromium, installed by `.ci/run` (`apt-get install chromium`).
fn chromium() -> String {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return name.to_string();
        }
    }
    panic!(
        "the playground's browser tests need headless Chromium: install it with `apt-get install chromium`"
    );
}

/// The page's DOM after its scripts ran, in headless Chromium.
fn dom(url: &str) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn with_model(pg: &Playground, model: &Model) -> String {
    let json = serde_json::to_string(model).unwrap();
    let encoded: String = json
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    format!("http://{}/playground#model={encoded}", pg.addr)
}

#[test]
fn the_page_answers_the_quickstart_shows_diagnostics_and_checks() {
    let pg = Playground::start();
    // It opens on the quickstart, answered.
    let page = dom(&format!("http://{}/playground", pg.addr));
    assert!(
        page.contains("<li class=\"allowed\"><code>check message:m1#view@user:sam</code><pre>allowed"),
        "{page}"
    );
    assert!(page.contains("<li class=\"denied\">"));
    assert!(page.contains("<svg"), "the schema graph");
    let passed = run(&Model::quickstart()).tests.unwrap().passed;
    assert!(page.contains(&format!("✓ {passed} passed")), "{page}");

    // An edit that introduces an unknown relation: underlined, and listed at its line:col.
    let mut model = Model::quickstart();
    model.schema = model.schema.replace("account->admin + reviewer", "account->admin + reviewr");
    let expected = run(&model);
    let p = &expected.schema[0];
    let page = dom(&with_model(&pg, &model));
    assert!(page.contains(&format!("<li>{}:{} error[unknown-relation]", p.line, p.column)), "{page}");
    assert!(page.contains("<mark>reviewr</mark>"), "{page}");

    // A check returns its answer.
    let mut model = Model::quickstart();
    model.queries = "check message:m2#view@user:sam".into();
    let page = dom(&with_model(&pg, &model));
    assert!(
        page.contains("<li class=\"denied\"><code>check message:m2#view@user:sam</code><pre>denied"),
        "{page}"
    );
    assert!(page.contains("1 answer"));
}

/// `purview graph`'s SVG opens in a browser as an SVG document: Chromium parses it (a
/// malformed file shows a `parsererror` page instead) and lays out every type's name.
#[test]
fn graph_svgs_open_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, schema) in
        [("quickstart", "examples/quickstart/schema.pv"), ("ecomms", "examples/ecomms/schema.pv")]
    {
        let path = dir.path().join(format!("{name}.svg"));
        let out = Command::new(env!("CARGO_BIN_EXE_purview"))
            .args(["graph", "--schema"])
            .arg(root.join(schema))
            .args(["--format", "svg"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        std::fs::write(&path, &out.stdout).unwrap();
        let page = dom(&format!("file://{}", path.display()));
        assert!(page.contains("<svg"), "{name}: {page}");
        assert!(!page.contains("parsererror"), "{name}: Chromium could not parse the SVG: {page}");
        let compiled =
            purview::api::compile_schema(schema, &std::fs::read_to_string(root.join(schema)).unwrap())
                .unwrap();
        for t in &compiled.types {
            assert!(page.contains(&format!(">{}<", t.name)), "{name}: type {} not drawn", t.name);
        }
    }
    // And a broken file is told apart: the check above can fail.
    let broken = dir.path().join("broken.svg");
    std::fs::write(&broken, "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>unclosed</svg>").unwrap();
    assert!(dom(&format!("file://{}", broken.display())).contains("parsererror"));
}
