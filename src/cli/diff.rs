//! `purview diff OLD NEW`: who gains and who loses access under a new schema, on the same
//! relationships (and `purview store schema DIR NEW --dry-run`, which prints the same report).
//! See `purview::materialize::diff`.

use super::error::{CliError, CliResult, Exit};
use super::materialize::{delta_line, failed};
use super::{load, queries, store, EvalFlags};
use clap::Args;
use purview::api::View;
use purview::index::IndexData;
use purview::materialize::diff::outcome_name;
use purview::materialize::{diff, Format, MaterializeError, SchemaDiff, Status, Targets};
use purview::schema::Schema;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub(super) struct DiffArgs {
    /// The schema in effect.
    #[arg(value_name = "OLD")]
    old: PathBuf,
    /// The schema to compare it with.
    #[arg(value_name = "NEW")]
    new: PathBuf,
    /// A relationships file, written under OLD (repeatable).
    #[arg(long, short, value_name = "FILE", required_unless_present = "store")]
    data: Vec<PathBuf>,
    /// A store whose latest relationships to use (they must fit OLD; the store is not changed).
    #[arg(long, value_name = "DIR", conflicts_with = "data")]
    store: Option<PathBuf>,
    /// Only this permission, `type#permission` (repeatable; default: every permission of either
    /// schema).
    #[arg(long, short, value_name = "TYPE#PERMISSION")]
    permission: Vec<String>,
    /// The subjects: a type (`user`) or a userset (`usergroup#member`); repeatable.
    #[arg(long, value_name = "TYPE", default_value = "user")]
    subject_type: Vec<String>,
    /// Print only the changed pairs, in the materialize delta format
    /// (`change,subject,permission,object,outcome`).
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    /// `--json` prints the whole report as one JSON object.
    #[command(flatten)]
    eval: EvalFlags,
}

pub(super) fn run(args: DiffArgs) -> CliResult<Exit> {
    let opts = queries::base_options(&args.eval)?;
    let new = Arc::new(load::schema_file(&args.new, None)?);
    let (old, data) = match &args.store {
        Some(dir) => {
            let View::Index(data) = store::view(dir, None)? else {
                return Err(failed(MaterializeError::NeedsIndex));
            };
            (Arc::new(load::schema_file(&args.old, None)?), data)
        }
        None => {
            let old = load::schema_file(&args.old, None)?;
            let pv = load::from_schema(old, &args.data, purview::api::Engine::Index)?;
            let View::Index(data) = pv.snapshot() else { return Err(failed(MaterializeError::NeedsIndex)) };
            (data.schema.clone(), data)
        }
    };
    let targets = Targets {
        permissions: args.permission.clone(),
        subject_types: args.subject_type.clone(),
        options: opts,
    };
    let report = compare(&old, &new, &data, &targets)?;
    let out = &mut std::io::BufWriter::new(std::io::stdout().lock());
    let names = (args.old.display().to_string(), args.new.display().to_string());
    let written = if args.csv {
        write_csv(&report, out)
    } else if args.eval.json {
        write_json(&report, out)
    } else {
        write_report(&report, &names, out)
    };
    written
        .and_then(|_| out.flush())
        .map_err(|e| CliError::input(format!("cannot write the report: {e}")))?;
    Ok(exit(&report))
}

/// Runs the comparison, with the CLI's errors.
pub(super) fn compare(
    old: &Arc<Schema>,
    new: &Arc<Schema>,
    data: &IndexData,
    targets: &Targets,
) -> CliResult<SchemaDiff> {
    diff(old, new, data, targets).map_err(|e| match e {
        MaterializeError::OldSchema(_) => CliError::input(e.to_string())
            .with_code("data-does-not-fit")
            .with_help("OLD must be the schema the relationships were written under"),
        e => failed(e),
    })
}

/// 0 when no access changes, 1 when some does.
pub(super) fn exit(report: &SchemaDiff) -> Exit {
    if report.changes_access() {
        Exit::Denied
    } else {
        Exit::Success
    }
}

/// Only the pairs, as `materialize --changes` writes them.
pub(super) fn write_csv(report: &SchemaDiff, out: &mut dyn Write) -> std::io::Result<()> {
    let mut buf = b"change,subject,permission,object,outcome\n".to_vec();
    for p in &report.permissions {
        for d in report.named(p) {
            delta_line(&mut buf, Format::Csv, &d);
            if buf.len() > 1 << 20 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    out.write_all(&buf)
}

/// The whole report as one JSON object: `structure`, `orphaned`, `permissions` (each with its
/// `pairs`), and the totals.
pub(super) fn write_json(report: &SchemaDiff, out: &mut dyn Write) -> std::io::Result<()> {
    let mut value = serde_json::to_value(report).map_err(std::io::Error::other)?;
    if let Some(perms) = value.get_mut("permissions").and_then(|p| p.as_array_mut()) {
        for (v, p) in perms.iter_mut().zip(&report.permissions) {
            let pairs: Vec<serde_json::Value> = report
                .named(p)
                .map(|d| {
                    serde_json::json!({
                        "change": d.change.name(),
                        "subject": d.subject.to_string(),
                        "permission": d.permission,
                        "object": d.object.to_string(),
                        "outcome": outcome_name(d.outcome),
                    })
                })
                .collect();
            v["pairs"] = serde_json::Value::Array(pairs);
        }
    }
    let (added, removed) = report.totals();
    value["added"] = added.into();
    value["removed"] = removed.into();
    value["access_changes"] = report.changes_access().into();
    serde_json::to_writer(&mut *out, &value).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The report for people: the structural changes, the relationships the new schema cannot
/// hold, then per permission a summary and its pairs.
pub(super) fn write_report(
    report: &SchemaDiff,
    (old, new): &(String, String),
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "Schema changes ({old} → {new}):")?;
    if report.structure.is_empty() {
        writeln!(out, "  none")?;
    }
    for c in &report.structure {
        let sign = match c.edit {
            purview::materialize::structure::Edit::Added => '+',
            purview::materialize::structure::Edit::Removed => '-',
            purview::materialize::structure::Edit::Changed => '~',
        };
        match (&c.old, &c.new) {
            (Some(a), Some(b)) => {
                writeln!(out, "  {sign} {} {}", c.kind, c.name)?;
                writeln!(out, "      was: {a}")?;
                writeln!(out, "      now: {b}")?;
            }
            (Some(d), None) | (None, Some(d)) => writeln!(out, "  {sign} {} {}: {d}", c.kind, c.name)?,
            (None, None) => writeln!(out, "  {sign} {} {}", c.kind, c.name)?,
        }
    }
    if !report.orphaned.is_empty() {
        let total: usize = report.orphaned.iter().map(|o| o.count).sum();
        writeln!(
            out,
            "\nOrphaned by the new schema: {} it cannot hold (left out when evaluating it; a store \
             refuses this change until they are deleted):",
            plural(total as u64, "relationship")
        )?;
        for o in &report.orphaned {
            writeln!(out, "  {}: {} — {}", o.relation, o.reason, plural(o.count as u64, "relationship"))?;
            for e in &o.examples {
                writeln!(out, "      e.g. {e}")?;
            }
        }
    }
    let (added, removed) = report.totals();
    writeln!(out, "\nAccess changes on the data: {added} added, {removed} removed")?;
    let mut unchanged = 0;
    for p in &report.permissions {
        if p.status == Status::Unchanged {
            unchanged += 1;
            continue;
        }
        let mut line = format!("  {} for {} ({}", p.permission, p.subject_type, p.status.name());
        if !p.via.is_empty() {
            line += &format!(" through {}", p.via.join(", "));
        }
        line += "): ";
        if p.pairs.is_empty() {
            line += "no change";
        } else {
            line += &format!(
                "{} added ({} gaining), {} removed ({} losing)",
                p.added,
                plural(p.subjects_gaining, "subject"),
                p.removed,
                plural(p.subjects_losing, "subject")
            );
        }
        if let Some(n) = p.subjects_evaluated {
            line += &format!("; {} evaluated again", plural(n, "subject"));
        }
        writeln!(out, "{line}")?;
        for d in report.named(p) {
            let sign = if d.change == purview::materialize::Change::Added { '+' } else { '-' };
            let cond = if d.outcome == purview::Tri::Cond { " (conditional)" } else { "" };
            writeln!(out, "    {sign} {} {} {}{cond}", d.subject, d.permission, d.object)?;
        }
    }
    if unchanged > 0 {
        writeln!(
            out,
            "  {} unchanged: nothing they read changed (not evaluated)",
            plural(unchanged, "permission")
        )?;
    }
    Ok(())
}
