//! `check`, `who`, `what`, `expand`, `explain` and `query`: parse, check names, answer, print.

use super::error::{CliError, CliResult, Exit};
use super::{load, store, EvalFlags, ExplainArgs, ExplainFormat, Many, One, PageFlags, Source};
use purview::api::{Engine, View};
use purview::diag::{Diagnostics, SourceFile};
use purview::eval::tree_formats::Explanation;
use purview::query::{
    parse_queries, render_decision, run_query, validate_queries, FailureKind, Op, Query, QueryOutput,
};
use purview::store::relationship::parse_time;
use purview::{Decision, EvalOptions, Purview, Relationship};
use std::io::{IsTerminal as _, Read as _, Write as _};

/// A subcommand with one query: `purview check document:readme#view@user:ann`.
pub(super) fn one(op: &str, one: One, page: PageFlags, engine: Engine) -> CliResult<Exit> {
    let outputs = answer_one(op, &one, &page, engine)?;
    print(&outputs, one.eval.json, false);
    Ok(exit_of(&outputs))
}

/// `purview explain`, printed as a tree (the default), as JSON or as a Graphviz drawing.
pub(super) fn explain(args: ExplainArgs, engine: Engine) -> CliResult<Exit> {
    let outputs = answer_one("explain", &args.one, &PageFlags::default(), engine)?;
    let text = match (args.format, outputs.first()) {
        (ExplainFormat::Json, Some(QueryOutput::Explain { query, decision, tree })) => {
            let shape = Explanation::new(query, decision, tree);
            let line = serde_json::to_string_pretty(&shape)
                .map_err(|e| CliError::new(Exit::Evaluation, format!("cannot write JSON: {e}")))?;
            format!("{line}\n")
        }
        (ExplainFormat::Dot, Some(QueryOutput::Explain { query, decision, tree })) => {
            tree.to_dot(&format!("{query}: {}", render_decision(decision)))
        }
        _ => {
            print(&outputs, args.one.eval.json, false);
            return Ok(exit_of(&outputs));
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(exit_of(&outputs))
}

/// Answers one query; an answer that is an error becomes the command's error.
fn answer_one(op: &str, one: &One, page: &PageFlags, engine: Engine) -> CliResult<Vec<QueryOutput>> {
    let text = format!("{op} {}", one.query.join(" "));
    let sources = vec![SourceFile::new("<query>", text)];
    let parsed = parse_all(&sources)?;
    if parsed.iter().map(Vec::len).sum::<usize>() != 1 {
        return Err(CliError::usage(format!("`purview {op}` takes one query"))
            .with_help("run several with `purview query 'QUERY; QUERY'`"));
    }
    let view = open(&one.source, engine)?;
    let outputs = answer_view(&view, &sources, parsed, &one.eval, page)?;
    match outputs.first() {
        Some(QueryOutput::Error { error, .. }) => {
            Err(CliError::new(failure_exit(error.kind), error.message.clone()).with_code(error.code))
        }
        _ => Ok(outputs),
    }
}

/// `purview query`: queries from arguments, files or standard input.
pub(super) fn many(m: Many, engine: Engine) -> CliResult<Exit> {
    let mut sources = Vec::new();
    if !m.queries.is_empty() {
        sources.push(SourceFile::new("<arguments>", m.queries.join("\n")));
    }
    for f in &m.file {
        sources.push(SourceFile::new(f.display().to_string(), load::read(f)?));
    }
    if sources.is_empty() {
        sources.push(SourceFile::new("<stdin>", read_stdin()?));
    }
    let parsed = parse_all(&sources)?;
    if parsed.iter().all(Vec::is_empty) {
        return Err(CliError::usage("no queries given")
            .with_help("pass queries as arguments, with `--file FILE`, or on standard input"));
    }
    let view = open(&m.source, engine)?;
    let outputs = answer_view(&view, &sources, parsed, &m.eval, &m.page)?;
    print(&outputs, m.eval.json, outputs.len() > 1);
    Ok(exit_of(&outputs))
}

fn read_stdin() -> CliResult<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        let _ = writeln!(std::io::stderr(), "reading queries from standard input (end with Ctrl-D)");
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| CliError::input(format!("cannot read queries from standard input: {e}")))?;
    Ok(text)
}

/// The data named by `--schema` and `--data`, or by `--store` (as of `--revision`), answered by
/// `engine`.
fn open(source: &Source, engine: Engine) -> CliResult<View> {
    if let Some(dir) = &source.store {
        let view = store::view(dir, source.revision)?;
        return match engine {
            Engine::Index => Ok(view),
            Engine::Reference => reference_copy(&view),
        };
    }
    match &source.schema {
        Some(schema) => Ok(load::from_files(schema, source.schema_format, &source.data, engine)?.snapshot()),
        None => Err(CliError::usage("no schema given").with_help(
            "pass `--schema FILE` and `--data FILE`, or `--store DIR`, or try the bundled example: `purview demo`",
        )),
    }
}

/// The same data for the reference evaluator (`--engine reference` on a store).
fn reference_copy(view: &View) -> CliResult<View> {
    let pv = Purview::with_engine((**view.schema()).clone(), Engine::Reference);
    let rels = view
        .relationship_lines()
        .iter()
        .map(|l| Relationship::parse(l))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::input(e.to_string()))?;
    pv.touch(rels).map_err(|e| CliError::input(e.to_string()))?;
    Ok(pv.snapshot())
}

/// Parses every source; reports the problems of all of them.
pub(super) fn parse_all(sources: &[SourceFile]) -> CliResult<Vec<Vec<Query>>> {
    let mut out = Vec::new();
    let mut problems: Vec<(SourceFile, Diagnostics)> = Vec::new();
    for s in sources {
        match parse_queries(&s.text) {
            Ok(q) => out.push(q),
            Err(d) => problems.push((s.clone(), d)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(CliError::diagnostics(String::new(), problems))
    }
}

/// Checks the queries' names against the schema, then answers them in order.
pub(super) fn answer(
    pv: &Purview,
    sources: &[SourceFile],
    parsed: Vec<Vec<Query>>,
    eval: &EvalFlags,
    page: &PageFlags,
) -> CliResult<Vec<QueryOutput>> {
    answer_view(&pv.snapshot(), sources, parsed, eval, page)
}

/// Checks the queries' names against the schema, then answers them in order, on `snap`.
fn answer_view(
    snap: &View,
    sources: &[SourceFile],
    parsed: Vec<Vec<Query>>,
    eval: &EvalFlags,
    page: &PageFlags,
) -> CliResult<Vec<QueryOutput>> {
    let problems: Vec<(SourceFile, Diagnostics)> = sources
        .iter()
        .zip(&parsed)
        .filter_map(|(s, qs)| validate_queries(snap.schema(), qs).err().map(|d| (s.clone(), d)))
        .collect();
    if !problems.is_empty() {
        return Err(CliError::diagnostics(String::new(), problems));
    }
    let opts = base_options(eval)?;
    let mut outputs = Vec::new();
    for mut q in parsed.into_iter().flatten() {
        if let Op::What { .. } = q.op {
            if q.clauses.limit.is_none() {
                q.clauses.limit = page.limit.and_then(|n| usize::try_from(n).ok());
            }
            if q.clauses.after.is_none() {
                q.clauses.after.clone_from(&page.cursor);
            }
        }
        outputs.push(run_query(snap, &q, &opts));
    }
    Ok(outputs)
}

/// Evaluation options from `--context` and `--at`.
pub(super) fn base_options(flags: &EvalFlags) -> CliResult<EvalOptions> {
    let mut opts = EvalOptions::default();
    if let Some(c) = &flags.context {
        opts.context = match serde_json::from_str::<serde_json::Value>(c) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) => {
                return Err(CliError::input("`--context` must be a JSON object such as `{\"hour\": 9}`"))
            }
            Err(e) => return Err(CliError::input(format!("`--context` is not valid JSON: {e}"))),
        };
    }
    if let Some(t) = &flags.at {
        opts.at = parse_time(t).map_err(|m| CliError::input(format!("invalid `--at`: {m}")))?;
    }
    Ok(opts)
}

/// Prints answers: JSON lines, or text (each under a `> query` line when `headers`).
pub(super) fn print(outputs: &[QueryOutput], json: bool, headers: bool) {
    let mut out = std::io::stdout().lock();
    for (i, o) in outputs.iter().enumerate() {
        let text = if json {
            let line = serde_json::to_string(o).unwrap_or_else(|e| {
                serde_json::json!({"op": "error", "query": o.query(), "message": e.to_string()}).to_string()
            });
            format!("{line}\n")
        } else if headers {
            let sep = if i == 0 { "" } else { "\n" };
            format!("{sep}> {}\n{}", o.query(), o.render())
        } else {
            o.render()
        };
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
    let _ = out.flush();
}

/// The exit code of a batch: the first failure's, else denied, else conditional, else success.
pub(super) fn exit_of(outputs: &[QueryOutput]) -> Exit {
    if let Some(kind) = outputs.iter().find_map(|o| match o {
        QueryOutput::Error { error, .. } => Some(error.kind),
        _ => None,
    }) {
        return failure_exit(kind);
    }
    let decisions: Vec<&Decision> = outputs.iter().filter_map(QueryOutput::decision).collect();
    if decisions.iter().any(|d| **d == Decision::Denied) {
        Exit::Denied
    } else if decisions.iter().any(|d| matches!(d, Decision::Conditional { .. })) {
        Exit::Conditional
    } else {
        Exit::Success
    }
}

fn failure_exit(kind: FailureKind) -> Exit {
    match kind {
        FailureKind::Input => Exit::Input,
        FailureKind::Evaluation => Exit::Evaluation,
    }
}
