//! `purview materialize`: every (subject, object) pair of a permission into a file, or only the
//! pairs a file of changes adds and removes. See `purview::materialize`.

#[cfg(feature = "postgres")]
mod into;

use super::error::{CliError, CliResult, Exit};
use super::{load, queries, store, EvalFlags};
use clap::{Args, ValueEnum};
use purview::api::View;
use purview::index::IndexData;
use purview::materialize::output::AtomicFile;
use purview::materialize::{self, delta, Format, Job, MaterializeError, Partition, Phase, Strategy, Target};
use purview::store::{apply_batch, Relationship, Source};
use purview::WriteOp;
use std::io::{IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Args, Debug)]
pub(super) struct MaterializeArgs {
    /// The schema file.
    #[arg(long, short, value_name = "FILE", required_unless_present_any = ["store", "datastore"])]
    schema: Option<PathBuf>,
    /// A relationships file, one relationship a line (repeatable).
    #[arg(long, short, value_name = "FILE")]
    data: Vec<PathBuf>,
    /// A store (`purview store init`) to read instead of `--schema` and `--data`. With
    /// `--changes`, the changes are applied to a copy: the store is not changed.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["schema", "data"])]
    store: Option<PathBuf>,
    /// A PostgreSQL datastore (`purview serve --datastore`) to read, e.g. with `--into … --follow`.
    #[arg(long, value_name = "URL", conflicts_with_all = ["schema", "data", "store"])]
    datastore: Option<String>,
    /// A PostgreSQL visibility table to load instead of a file: `postgres://…?table=NAME`.
    /// Loaded through `COPY` and swapped in atomically; a later run (or `--follow`) applies only
    /// the deltas since the revision the table reflects.
    #[arg(long, value_name = "URL", conflicts_with_all = ["output", "changes", "partition", "revision"])]
    into: Option<String>,
    /// With `--into`: keep the table current, following the store's (or datastore's) changelog,
    /// until killed.
    #[arg(long, requires = "into")]
    follow: bool,
    /// With `--follow`: look for new revisions at least this often, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500, requires = "follow")]
    poll_ms: u64,
    /// With `--store`: the data as of this revision (within the store's history window).
    #[arg(long, value_name = "REVISION", requires = "store", conflicts_with_all = ["schema", "data"])]
    revision: Option<u64>,
    /// The permission to materialize: `type#permission`, e.g. `message#view`.
    #[arg(long, short, value_name = "TYPE#PERMISSION")]
    permission: String,
    /// The subjects: a type (`user`) or a userset (`usergroup#member`).
    #[arg(long, value_name = "TYPE", default_value = "user")]
    subject_type: String,
    /// The output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Csv)]
    format: FormatArg,
    /// `object`: one JSON line per object with the subjects that may see it (`--format jsonl`),
    /// for search indexes; `pair` (default): one record per pair.
    #[arg(long, value_enum, default_value_t = ByArg::Pair)]
    by: ByArg,
    /// The output file (`-` for standard output). Written as `FILE.partial` and renamed when
    /// complete; a failed run leaves no `FILE`. For Parquet, a directory (`DIR/`) receives
    /// `DIR/permission=PERM/part-IIIII-of-NNNNN.parquet`.
    #[arg(long, short, value_name = "FILE", required_unless_present = "into")]
    output: Option<PathBuf>,
    /// Only piece I of N, split by object id range (`0/4` … `3/4`); the pieces' outputs
    /// concatenate to the whole.
    #[arg(long, value_name = "I/N")]
    partition: Option<String>,
    /// A file of changes, one a line: `+REL` or `touch REL` writes, `-REL` or `delete REL`
    /// deletes. Outputs only the pairs they add and remove.
    #[arg(long, value_name = "FILE")]
    changes: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    threads: Option<u64>,
    /// `--json` prints the summary as JSON.
    #[command(flatten)]
    eval: EvalFlags,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Csv,
    Jsonl,
    Compact,
    Parquet,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ByArg {
    Pair,
    Object,
}

fn format_of(f: FormatArg, by: ByArg) -> CliResult<Format> {
    Ok(match (f, by) {
        (FormatArg::Csv, ByArg::Pair) => Format::Csv,
        (FormatArg::Jsonl, ByArg::Pair) => Format::Jsonl,
        (FormatArg::Compact, ByArg::Pair) => Format::Compact,
        (FormatArg::Parquet, ByArg::Pair) => Format::Parquet,
        (FormatArg::Jsonl, ByArg::Object) => Format::ObjectJsonl,
        (_, ByArg::Object) => {
            return Err(CliError::usage("`--by object` writes JSON lines: add `--format jsonl`"))
        }
    })
}

/// Where the output goes: `-`, a file, or for Parquet a directory (an existing one, or a path
/// ending in `/`), which receives `DIR/permission=PERM/part-IIIII-of-NNNNN.parquet`.
fn output_path(output: &Path, format: Format, permission: &str, partition: Partition) -> CliResult<PathBuf> {
    let is_dir = output.is_dir() || output.as_os_str().to_string_lossy().ends_with('/');
    if format != Format::Parquet || !is_dir || output == Path::new("-") {
        return Ok(output.to_path_buf());
    }
    let dir = output.join(format!("permission={permission}"));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::input(format!("cannot create `{}`: {e}", dir.display())))?;
    Ok(dir.join(format!("part-{:05}-of-{:05}.parquet", partition.index, partition.count)))
}

pub(super) fn failed(e: MaterializeError) -> CliError {
    match &e {
        MaterializeError::Eval(e) => CliError::new(Exit::Evaluation, e.to_string()),
        MaterializeError::Io(e) => CliError::input(format!("cannot write the output: {e}")),
        MaterializeError::UnknownRelation { hint: Some(h), .. } => {
            CliError::input(e.to_string()).with_help(h)
        }
        e => CliError::input(e.to_string()),
    }
}

pub(super) fn run(args: MaterializeArgs) -> CliResult<Exit> {
    if let Some(url) = &args.into {
        #[cfg(feature = "postgres")]
        return into::run(url, &args);
        #[cfg(not(feature = "postgres"))]
        return Err(CliError::input(format!("`--into {url}`: this build has no PostgreSQL support")));
    }
    if args.datastore.is_some() {
        return Err(CliError::usage("`--datastore` is read with `--into postgres://…?table=NAME`"));
    }
    let partition = args.partition.as_deref().map(Partition::parse).transpose().map_err(failed)?;
    let partition = partition.unwrap_or_default();
    let opts = queries::base_options(&args.eval)?;
    let view = match (&args.store, &args.schema) {
        (Some(dir), _) => store::view(dir, args.revision)?,
        (None, Some(schema)) => {
            load::from_files(schema, None, &args.data, purview::api::Engine::Index)?.snapshot()
        }
        (None, None) => {
            return Err(CliError::usage("pass `--schema FILE` and `--data FILE`, or `--store DIR`"))
        }
    };
    let View::Index(data) = view else { return Err(failed(MaterializeError::NeedsIndex)) };
    let target = Target::resolve(&data.schema, &args.permission, &args.subject_type).map_err(failed)?;
    let format = format_of(args.format, args.by)?;
    if let Some(changes) = &args.changes {
        if format == Format::Compact {
            return Err(failed(MaterializeError::DeltaFormat("the compact format")));
        }
        let ops = read_changes(changes)?;
        return deltas(&data, &ops, &target, &args, partition, &opts);
    }
    let bar = Bar::new();
    let report = |phase: Phase, done: u64, total: u64| bar.update(phase, done, total);
    let mut job = Job::new(&data, target).partition(partition).options(opts).on_progress(&report);
    if let Some(n) = args.threads {
        job = job.threads(n as usize);
    }
    let Some(output) = &args.output else { return Err(CliError::usage("pass `--output FILE`")) };
    let output = output_path(output, format, target.relation_name(&data.schema), partition)?;
    let summary = if output == Path::new("-") {
        let mut stdout = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
        job.write_to(format, &mut stdout)
    } else {
        job.write_file(format, &output)
    };
    bar.finish();
    let summary = summary.map_err(failed)?;
    let text = if args.eval.json {
        serde_json::to_string(&summary).unwrap_or_default()
    } else {
        format!("materialized {summary}")
    };
    if output == Path::new("-") {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
    Ok(Exit::Success)
}

/// A progress bar with rate and ETA on a terminal; nothing otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    phase: Mutex<Option<Phase>>,
}

impl Bar {
    fn new() -> Bar {
        let bar = std::io::stderr().is_terminal().then(|| indicatif::ProgressBar::new(0));
        Bar { bar, phase: Mutex::new(None) }
    }

    fn update(&self, phase: Phase, done: u64, total: u64) {
        let Some(bar) = &self.bar else { return };
        if let Ok(mut current) = self.phase.lock() {
            if *current != Some(phase) {
                *current = Some(phase);
                let unit = if phase == Phase::Compute { "subjects evaluated" } else { "pairs written" };
                let template =
                    format!("{{bar:40}} {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, ETA {{eta}})");
                if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
                    bar.set_style(style);
                }
                bar.reset();
            }
        }
        bar.set_length(total);
        bar.set_position(done);
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Reads a changes file: `+REL` / `touch REL`, `-REL` / `delete REL`, blank lines and `//` or
/// `# ` comments skipped.
fn read_changes(path: &Path) -> CliResult<Vec<WriteOp>> {
    let text = load::read(path)?;
    let mut ops = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") || line.starts_with("# ") || line == "#" {
            continue;
        }
        let (delete, rest) = if let Some(r) = line.strip_prefix('+') {
            (false, r)
        } else if let Some(r) = line.strip_prefix('-') {
            (true, r)
        } else if let Some(r) = line.strip_prefix("touch ") {
            (false, r)
        } else if let Some(r) = line.strip_prefix("delete ") {
            (true, r)
        } else {
            errors.push(format!(
                "{}:{}: expected `+REL`, `-REL`, `touch REL` or `delete REL`",
                path.display(),
                i + 1
            ));
            continue;
        };
        match Relationship::parse(rest) {
            Ok(r) if delete => ops.push(WriteOp::Delete(r)),
            Ok(r) => ops.push(WriteOp::Touch(r)),
            Err(e) => errors.push(format!("{}:{}: {e}", path.display(), i + 1)),
        }
    }
    if !errors.is_empty() {
        return Err(CliError::input(errors.join("\n")));
    }
    Ok(ops)
}

/// The pairs `ops` add and remove, applied to a copy of `before` (as a write would apply them).
fn deltas(
    before: &Arc<IndexData>,
    ops: &[WriteOp],
    target: &Target,
    args: &MaterializeArgs,
    partition: Partition,
    opts: &purview::EvalOptions,
) -> CliResult<Exit> {
    let start = std::time::Instant::now();
    let mut next = (**before).clone();
    apply_batch(&before.schema, &mut next, ops)
        .map_err(|e| CliError::input(format!("the changes cannot be applied: {e}")))?;
    next.revision += 1;
    let after = Arc::new(next);
    let run = || delta::deltas(before, &after, ops, target, opts, Strategy::Auto, partition);
    let found = match args.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build()
            .map_err(|e| CliError::input(e.to_string()))?
            .install(run),
        None => run(),
    }
    .map_err(failed)?;
    let format = format_of(args.format, args.by)?;
    let mut buf = Vec::new();
    let revisions = (before.revision(), after.revision());
    match format {
        Format::Parquet => materialize::write_parquet_deltas(&after, target, revisions, &found, &mut buf),
        Format::ObjectJsonl => materialize::write_object_deltas(&after, target, &found, &mut buf),
        _ => {
            if format == Format::Csv && partition.is_first() {
                buf.extend_from_slice(b"change,subject,permission,object,outcome\n");
            }
            for d in &found {
                delta_line(&mut buf, format, &delta::name(&after, target, d));
            }
            Ok(())
        }
    }
    .map_err(failed)?;
    let Some(output) = &args.output else { return Err(CliError::usage("pass `--output FILE`")) };
    let output = output_path(output, format, target.relation_name(&after.schema), partition)?;
    if output == Path::new("-") {
        std::io::stdout().lock().write_all(&buf).map_err(|e| CliError::input(e.to_string()))?;
    } else {
        let write = || -> std::io::Result<()> {
            let mut file = AtomicFile::create(&output)?;
            file.write_all(&buf)?;
            file.commit()
        };
        write().map_err(|e| CliError::input(format!("cannot write `{}`: {e}", output.display())))?;
    }
    let (added, removed) = found.iter().fold((0, 0), |(a, r), d| match d.change {
        delta::Change::Added => (a + 1, r),
        delta::Change::Removed => (a, r + 1),
    });
    let summary = serde_json::json!({
        "permission": target.permission_name(&after.schema),
        "subject_type": target.subject_name(&after.schema),
        "revisions": [before.revision(), after.revision()],
        "changes": ops.len(),
        "added": added,
        "removed": removed,
        "elapsed": start.elapsed().as_secs_f64(),
    });
    let text = if args.eval.json {
        summary.to_string()
    } else {
        format!(
            "deltas of {} for {}: {added} pairs added, {removed} removed by {} changes in {:.2?}",
            summary["permission"].as_str().unwrap_or(""),
            summary["subject_type"].as_str().unwrap_or(""),
            ops.len(),
            start.elapsed()
        )
    };
    if output == Path::new("-") {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
    Ok(Exit::Success)
}

pub(super) fn delta_line(buf: &mut Vec<u8>, format: Format, d: &delta::Delta) {
    let outcome = if d.outcome == purview::Tri::Cond { "conditional" } else { "allowed" };
    let line = match format {
        Format::Jsonl => serde_json::json!({
            "change": d.change.name(),
            "subject": d.subject.to_string(),
            "permission": d.permission,
            "object": d.object.to_string(),
            "outcome": outcome,
        })
        .to_string(),
        _ => [
            d.change.name(),
            &csv(&d.subject.to_string()),
            &csv(&d.permission),
            &csv(&d.object.to_string()),
            outcome,
        ]
        .join(","),
    };
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
