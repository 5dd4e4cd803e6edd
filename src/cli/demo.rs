//! `purview demo`: Purview's main job on a bundled model, with no files and no setup.

use super::error::{CliResult, Exit};
use super::queries::{answer, exit_of, parse_all, print};
use super::{load, EvalFlags, PageFlags};
use purview::api::Engine;
use purview::diag::SourceFile;
use purview::query::QueryOutput;
use purview::syntax::SchemaFormat;
use purview::Purview;
use std::io::Write as _;

const SCHEMA_NAME: &str = "examples/quickstart/schema.pv";
const SCHEMA: &str = include_str!("../../examples/quickstart/schema.pv");
const DATA_NAME: &str = "examples/quickstart/data.rels";
const DATA: &str = include_str!("../../examples/quickstart/data.rels");

const TOUR_NAME: &str = "examples/quickstart/queries.q";
/// The tour: queries, each under a `# ` comment that says what it shows.
const TOUR: &str = include_str!("../../examples/quickstart/queries.q");

const INTRO: &str = "\
Purview demo: a small communications-surveillance model, bundled with this binary.
Users are in nested groups; a group's supervisors see the messages tagged with it; the account
admin sees everything; a reviewer sees a message in business hours only.
(`purview demo --show` prints the schema and the relationships.)
";

const NEXT: &str = "\
Next:
  purview demo 'who message:m2#view@user'      ask this model your own questions
  purview demo --show                          see its schema and relationships
  purview check --schema FILE --data FILE 'document:readme#view@user:ann'
";

/// Runs the tour, or `queries`, on the bundled model.
pub(super) fn run(queries: &[String], eval: &EvalFlags, show: bool, engine: Engine) -> CliResult<Exit> {
    let mut out = std::io::stdout().lock();
    if show {
        let _ = write!(out, "# {SCHEMA_NAME}\n{SCHEMA}\n# {DATA_NAME}\n{DATA}");
        return Ok(Exit::Success);
    }
    let pv = model(engine)?;
    let page = PageFlags::default();
    if !queries.is_empty() {
        let sources = vec![SourceFile::new("<arguments>", queries.join("\n"))];
        let parsed = parse_all(&sources)?;
        let outputs = answer(&pv, &sources, parsed, eval, &page)?;
        print(&outputs, eval.json, outputs.len() > 1);
        return Ok(exit_of(&outputs));
    }
    let tour = tour();
    let sources: Vec<SourceFile> = tour.iter().map(|(_, q)| SourceFile::new(TOUR_NAME, *q)).collect();
    let parsed = parse_all(&sources)?;
    let outputs = answer(&pv, &sources, parsed, eval, &page)?;
    if eval.json {
        print(&outputs, true, false);
    } else {
        let _ = writeln!(out, "{INTRO}");
        for ((what, query), o) in tour.iter().zip(&outputs) {
            let _ = writeln!(out, "# {what}\n> {query}\n{}", o.render());
        }
        let _ = write!(out, "{NEXT}");
    }
    let failed = outputs.iter().any(|o| matches!(o, QueryOutput::Error { .. }));
    Ok(if failed { exit_of(&outputs) } else { Exit::Success })
}

/// The tour's (description, query) pairs: each query line with the `# ` comment just above it.
fn tour() -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    let mut what = "";
    for line in TOUR.lines().map(str::trim) {
        if let Some(comment) = line.strip_prefix("# ") {
            what = comment;
        } else if !line.is_empty() && !line.starts_with('#') && !line.starts_with("//") {
            out.push((what, line));
            what = "";
        }
    }
    out
}

/// The bundled schema and relationships, answered by `engine`.
fn model(engine: Engine) -> CliResult<Purview> {
    let schema = load::schema_from_text(SchemaFormat::Purview, SCHEMA_NAME, SCHEMA)?;
    load::store(schema, &[(DATA_NAME.to_string(), DATA.to_string())], engine)
}
