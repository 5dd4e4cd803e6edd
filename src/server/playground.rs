//! `purview serve --playground`: a local web page to try a model — a schema, relationships and
//! queries side by side, answered as you type. The page keeps the model; the server keeps
//! nothing: each request carries the whole model and is answered on a fresh in-memory
//! [`Purview`]. The page's files are embedded in the binary (no network at run time).
//!
//! Routes: `GET /playground` (the page), `GET /playground/app.js`, `GET /playground/style.css`,
//! `GET /playground/api/quickstart` (the bundled model), `POST /playground/api/run` (a model in,
//! diagnostics with line:col, answers, the test assertions' outcome and the schema graph out),
//! `POST /playground/api/save` (a model in, a Purview test file out) and
//! `POST /playground/api/load` (a Purview test file in, a model out).

use crate::analysis::Document;
use crate::diag::{Diagnostic, SourceFile};
use crate::eval::EvalOptions;
use crate::query::{parse_queries, run_query, validate_queries, QueryOutput};
use crate::schema::Schema;
use crate::store::Relationship;
use crate::syntax::SchemaFormat;
use crate::{Purview, WriteOp};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

const PAGE: &str = include_str!("playground/index.html");
const SCRIPT: &str = include_str!("playground/app.js");
const STYLE: &str = include_str!("playground/style.css");

const QUICKSTART_SCHEMA: &str = include_str!("../../examples/quickstart/schema.pv");
const QUICKSTART_DATA: &str = include_str!("../../examples/quickstart/data.rels");
const QUICKSTART_QUERIES: &str = include_str!("../../examples/quickstart/queries.q");
const QUICKSTART_TESTS: &str = include_str!("../../examples/quickstart/quickstart.test.yaml");

/// The largest model a request may carry.
const MAX_REQUEST: usize = 1 << 20;

/// A model as the page holds it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Model {
    pub schema: String,
    /// `purview`, `spicedb`, `openfga` (default: detected from the text).
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub relationships: String,
    #[serde(default)]
    pub queries: String,
    /// The assertions of a Purview test file (`assertions:`, `who:`, `what:`, `at:`), as YAML.
    #[serde(default)]
    pub assertions: String,
}

impl Model {
    /// The bundled quickstart model (`examples/quickstart/`).
    pub fn quickstart() -> Model {
        Model {
            schema: QUICKSTART_SCHEMA.to_string(),
            format: Some("purview".to_string()),
            relationships: QUICKSTART_DATA.to_string(),
            queries: QUICKSTART_QUERIES.to_string(),
            assertions: QUICKSTART_TESTS
                .find("\nassertions:")
                .and_then(|i| QUICKSTART_TESTS.get(i + 1..))
                .unwrap_or("")
                .to_string(),
        }
    }

    /// The model as a Purview test file: the schema and relationships inline, then the
    /// assertions.
    pub fn to_test_file(&self) -> String {
        let block = |key: &str, text: &str| -> String {
            let body: Vec<String> = text
                .lines()
                .map(|l| if l.trim().is_empty() { String::new() } else { format!("  {l}") })
                .collect();
            // `|2`: the indentation is given, so a first line that starts with spaces reads back.
            format!("{key}: |2\n{}\n", body.join("\n"))
        };
        let mut out = String::from("purview: 1\n");
        out.push_str(&block("schema", &self.schema));
        out.push_str(&block("relationships", &self.relationships));
        out.push_str(self.assertions.trim_end());
        out.push('\n');
        out
    }

    /// A model from a Purview test file with its schema and relationships inline (the queries
    /// are left empty).
    pub fn from_test_file(text: &str) -> Result<Model, String> {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| format!("the test file is not valid YAML: {e}"))?;
        let serde_yaml_ng::Value::Mapping(map) = doc else {
            return Err("a test file is a YAML mapping (`schema:`, `relationships:`, `assertions:`)".into());
        };
        let mut model = Model { format: Some("purview".into()), ..Model::default() };
        let mut rest = serde_yaml_ng::Mapping::new();
        for (k, v) in map {
            match (k.as_str(), v) {
                (Some("schema"), serde_yaml_ng::Value::String(t)) => model.schema = t,
                (Some("relationships"), serde_yaml_ng::Value::String(t)) => model.relationships = t,
                (Some("schemaFile" | "relationshipsFile"), _) => {
                    return Err("the playground reads test files with the schema and relationships inline (`schema: |`), not `schemaFile` or `relationshipsFile`".into())
                }
                (Some("purview"), _) => {}
                (_, v) => {
                    rest.insert(k, v);
                }
            }
        }
        if !rest.is_empty() {
            model.assertions = serde_yaml_ng::to_string(&rest).map_err(|e| e.to_string())?;
        }
        Ok(model)
    }
}

/// The outcome of a model's test assertions.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Tests {
    pub passed: usize,
    pub failed: usize,
    /// Each failed assertion and why.
    pub failures: Vec<(String, String)>,
}

/// A problem at a place: 1-based lines, columns in characters.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    pub code: String,
    pub message: String,
    pub help: Option<String>,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

impl Problem {
    fn of(file: &SourceFile, d: &Diagnostic) -> Problem {
        let (line, column) = file.line_col(d.span.start);
        let (end_line, end_column) = file.line_col(d.span.end);
        Problem {
            code: d.code.to_string(),
            message: d.message.clone(),
            help: d.help.clone(),
            line,
            column,
            end_line,
            end_column,
        }
    }
}

/// One answered query.
#[derive(Clone, Debug, Serialize)]
pub struct Answer {
    /// The query as written, then answered.
    pub query: String,
    /// The answer as `purview query` prints it.
    pub text: String,
    /// `allowed`, `denied`, `conditional` for checks and explains; `error` when it failed.
    pub verdict: Option<String>,
    /// The answer as `purview query --json` prints it.
    pub json: QueryOutput,
}

/// Everything the page shows for a model.
#[derive(Clone, Debug, Serialize, Default)]
pub struct Report {
    pub schema: Vec<Problem>,
    pub relationships: Vec<Problem>,
    pub queries: Vec<Problem>,
    pub answers: Vec<Answer>,
    /// The schema graph (SVG), when the schema compiles.
    pub graph: Option<String>,
    /// The test assertions' outcome, when there are some and the model loads.
    pub tests: Option<Tests>,
}

/// Checks and answers a model: the schema's diagnostics (as `purview validate`), then, if it
/// compiles, the relationships' and the queries' problems, then the answers.
pub fn run(model: &Model) -> Report {
    let format = model.format.as_deref().and_then(|f| f.parse::<SchemaFormat>().ok());
    let format = format.unwrap_or_else(|| crate::syntax::detect(None, &model.schema));
    let doc = Document::analyze(format, model.schema.as_str());
    let file = SourceFile::new("schema", model.schema.as_str());
    let mut report = Report {
        schema: doc.diagnostics.iter().map(|d| Problem::of(&file, d)).collect(),
        ..Report::default()
    };
    let Some(schema) = doc.schema else { return report };
    report.graph = Some(schema_svg(&schema));
    let Some(pv) = load(schema, &model.relationships, &mut report.relationships) else { return report };
    if !model.assertions.trim().is_empty() && format == SchemaFormat::Purview {
        report.tests = Some(tests(model));
    }
    let qfile = SourceFile::new("queries", model.queries.as_str());
    let queries = match parse_queries(&model.queries) {
        Ok(q) => q,
        Err(d) => {
            report.queries = d.0.iter().map(|d| Problem::of(&qfile, d)).collect();
            return report;
        }
    };
    let view = pv.snapshot();
    if let Err(d) = validate_queries(view.schema(), &queries) {
        report.queries = d.0.iter().map(|d| Problem::of(&qfile, d)).collect();
        return report;
    }
    let options = EvalOptions::default();
    for q in &queries {
        let out = run_query(&view, q, &options);
        let verdict = match &out {
            QueryOutput::Error { .. } => Some("error".to_string()),
            o => o.decision().map(|d| match d {
                crate::Decision::Allowed => "allowed".to_string(),
                crate::Decision::Denied => "denied".to_string(),
                crate::Decision::Conditional { .. } => "conditional".to_string(),
            }),
        };
        report.answers.push(Answer { query: q.to_string(), text: out.render(), verdict, json: out });
    }
    report
}

/// Runs the model as a Purview test file.
fn tests(model: &Model) -> Tests {
    let options = crate::testfile::RunOptions::default();
    match crate::testfile::run_text(
        std::path::Path::new("playground.test.yaml"),
        &model.to_test_file(),
        &options,
    ) {
        Ok(r) => Tests {
            passed: r.passed,
            failed: r.failed,
            failures: r.failures.into_iter().map(|f| (f.assertion, f.message)).collect(),
        },
        Err(e) => Tests { passed: 0, failed: 1, failures: vec![("assertions".into(), e.to_string())] },
    }
}

/// The relationships, one a line, written to a new in-memory store of `schema`.
fn load(schema: Schema, text: &str, problems: &mut Vec<Problem>) -> Option<Purview> {
    let file = SourceFile::new("relationships", text);
    let mut ops = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let body = raw.trim();
        if body.is_empty() || body.starts_with("//") || body.starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        let span = crate::syntax::ast::Span::new(start + indent, start + indent + body.len());
        match Relationship::parse(body) {
            Ok(r) => ops.push(WriteOp::Touch(r)),
            Err(e) => {
                problems.push(Problem::of(&file, &Diagnostic::new("relationship-syntax", span, e.reason)))
            }
        }
    }
    if !problems.is_empty() {
        return None;
    }
    let pv = Purview::new(schema);
    if let Err(e) = pv.write(&ops) {
        let d = Diagnostic::new(e.code(), crate::syntax::ast::Span::new(0, 0), e.to_string());
        problems.push(Problem::of(&file, &d));
        return None;
    }
    Some(pv)
}

/// The schema graph as SVG (`purview graph --format svg`); a schema too large to lay out is
/// listed as text instead, saying why.
pub fn schema_svg(schema: &Schema) -> String {
    match crate::picture::picture(schema, crate::picture::Format::Svg, None) {
        Ok(svg) => svg,
        Err(e) => type_list_svg(schema, &e.to_string()),
    }
}

/// Each type with its relations and permissions as lines of text, under a note.
fn type_list_svg(schema: &Schema, note: &str) -> String {
    let mut rows: Vec<(bool, String)> = vec![(true, note.to_string())];
    for t in &schema.types {
        rows.push((true, format!("type {}", t.name)));
        for r in &t.relations {
            let kind = match r.kind {
                crate::schema::RelKind::Relation => "relation",
                crate::schema::RelKind::Permission => "permission",
            };
            rows.push((false, format!("{kind} {}", r.name)));
        }
    }
    let height = 20 * rows.len() + 10;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"320\" height=\"{height}\" font-family=\"monospace\" font-size=\"13\">"
    );
    for (i, (is_type, text)) in rows.iter().enumerate() {
        let (x, weight) = if *is_type { (6, "bold") } else { (26, "normal") };
        svg.push_str(&format!(
            "<text x=\"{x}\" y=\"{}\" font-weight=\"{weight}\">{}</text>",
            20 * i + 20,
            escape(text)
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The playground's routes.
pub fn router() -> Router {
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/playground") }))
        .route("/playground", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE) }))
        .route(
            "/playground/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT) }),
        )
        .route(
            "/playground/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route("/playground/api/quickstart", get(|| async { Json(Model::quickstart()) }))
        .route("/playground/api/run", post(run_route))
        .route(
            "/playground/api/save",
            post(|Json(m): Json<Model>| async move {
                ([(header::CONTENT_TYPE, "application/yaml; charset=utf-8")], m.to_test_file())
            }),
        )
        .route("/playground/api/load", post(load_route))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST))
}

async fn run_route(Json(model): Json<Model>) -> impl IntoResponse {
    match tokio::task::spawn_blocking(move || run(&model)).await {
        Ok(report) => Json(report).into_response(),
        Err(_) => {
            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "the model could not be answered").into_response()
        }
    }
}

async fn load_route(text: String) -> impl IntoResponse {
    match Model::from_test_file(&text) {
        Ok(m) => Json(m).into_response(),
        Err(e) => (axum::http::StatusCode::UNPROCESSABLE_ENTITY, e).into_response(),
    }
}

/// Serves the playground on `addr` until `shutdown` completes; `ready` is called with the bound
/// address.
pub async fn serve(
    addr: std::net::SocketAddr,
    ready: impl FnOnce(std::net::SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    ready(listener.local_addr()?);
    axum::serve(listener, router()).with_graceful_shutdown(shutdown).await
}
