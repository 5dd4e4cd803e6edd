//! `purview demo`: Purview's main job on a bundled model, with no files and no setup.

use super::error::{CliResult, Exit};
use super::queries::{answer, exit_of, parse_all, print};
use super::{load, EvalFlags, PageFlags};
use purview::diag::SourceFile;
use purview::query::QueryOutput;
use purview::Purview;
use std::io::Write as _;

const SCHEMA_NAME: &str = "examples/quickstart/schema.pv";
const SCHEMA: &str = include_str!("../../examples/quickstart/schema.pv");
const DATA_NAME: &str = "examples/quickstart/data.rels";
const DATA: &str = include_str!("../../examples/quickstart/data.rels");

/// The tour: what each query shows, and the query.
const TOUR: &[(&str, &str)] = &[
    ("Sam supervises the traders group, and m1 is tagged with it", "check message:m1#view@user:sam"),
    ("m2 is tagged only with sales, which Sam does not supervise", "check message:m2#view@user:sam"),
    (
        "Carol supervises sales as a member of the compliance team (alias form)",
        "check user:carol can view message:m2",
    ),
    (
        "Rita reviews m1 in business hours only: without the hour, the answer is conditional",
        "check message:m1#view@user:rita",
    ),
    (
        "... and with the hour in the request context, it is decided",
        r#"check message:m1#view@user:rita with {"hour": 9}"#,
    ),
    ("Who can see m3? It is tagged with two groups, so supervisors of either", "who message:m3#view@user"),
    ("Which messages can Sam see?", "what message#view@user:sam"),
    ("Sam can view m4 but not review it: he took part in it. Why?", "explain message:m4#review@user:sam"),
    ("Why can Dan see m2?", "explain message:m2#view@user:dan"),
];

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
pub(super) fn run(queries: &[String], eval: &EvalFlags, show: bool) -> CliResult<Exit> {
    let mut out = std::io::stdout().lock();
    if show {
        let _ = write!(out, "# {SCHEMA_NAME}\n{SCHEMA}\n# {DATA_NAME}\n{DATA}");
        return Ok(Exit::Success);
    }
    let pv = model()?;
    let page = PageFlags::default();
    if !queries.is_empty() {
        let sources = vec![SourceFile::new("<arguments>", queries.join("\n"))];
        let parsed = parse_all(&sources)?;
        let outputs = answer(&pv, &sources, parsed, eval, &page)?;
        print(&outputs, eval.json, outputs.len() > 1);
        return Ok(exit_of(&outputs));
    }
    let sources: Vec<SourceFile> = TOUR.iter().map(|(_, q)| SourceFile::new("<demo>", *q)).collect();
    let parsed = parse_all(&sources)?;
    let outputs = answer(&pv, &sources, parsed, eval, &page)?;
    if eval.json {
        print(&outputs, true, false);
    } else {
        let _ = writeln!(out, "{INTRO}");
        for ((what, query), o) in TOUR.iter().zip(&outputs) {
            let _ = writeln!(out, "# {what}\n> {query}\n{}", o.render());
        }
        let _ = write!(out, "{NEXT}");
    }
    let failed = outputs.iter().any(|o| matches!(o, QueryOutput::Error { .. }));
    Ok(if failed { exit_of(&outputs) } else { Exit::Success })
}

/// The bundled schema and relationships.
fn model() -> CliResult<Purview> {
    let schema = load::schema_from_text(SCHEMA_NAME, SCHEMA)?;
    load::store(schema, &[(DATA_NAME.to_string(), DATA.to_string())])
}
