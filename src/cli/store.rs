//! `purview store …` and `purview write`: a durable store in a directory (see
//! [`purview::storage`]). Create one, load and export relationships, read or replace its schema,
//! list an object's history, collect old history, verify it; write batches of changes to it.
//! `--store DIR` on the query commands and `materialize` reads one (see [`view`]).

use super::error::{CliError, CliResult, Exit, EXIT_CODES};
use super::{load, schema_format_parser};
use clap::{Args, Subcommand};
use purview::api::{BulkError, BulkLoad, SchemaChangeError, View};
use purview::materialize::output::AtomicFile;
use purview::storage::{self, ExportError, Since, StorageError, Store, StoreOptions};
use purview::store::relationship::parse_time;
use purview::store::{ObjectRef, Relationship, RelationshipSyntaxError, WriteError, WriteOp};
use purview::syntax::SchemaFormat;
use std::io::{BufRead, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub(super) struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Subcommand, Debug)]
enum StoreCommand {
    /// Create a store in DIR (a new or empty directory) with a schema, and load relationship
    /// files into it (`--data`) as its first revision.
    ///
    /// If a data file has a bad line, nothing is created.
    #[command(after_help = EXIT_CODES)]
    Init {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// The schema file: Purview (`.pv`), SpiceDB (`.zed`) or OpenFGA (`.fga`, `.json`).
        #[arg(long, short, value_name = "FILE")]
        schema: PathBuf,
        /// The language of the schema (default: by extension, then content).
        #[arg(long, value_name = "FORMAT", value_parser = schema_format_parser())]
        schema_format: Option<SchemaFormat>,
        /// A relationships file, one relationship a line (repeatable).
        #[arg(long, short, value_name = "FILE")]
        data: Vec<PathBuf>,
    },
    /// Load relationship files (one relationship a line; `-` for standard input) as one revision.
    ///
    /// The files are streamed and validated as they are read, exactly as writes are; the first
    /// bad line is reported with its `file:line`, and then nothing is written (exit 4). Each
    /// relationship is touched: written, or its condition and times replaced.
    #[command(after_help = EXIT_CODES)]
    Import {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print every relationship, one a line in the notation of relationship files, so that
    /// `store init` and `store import` of the output reproduce the data.
    #[command(after_help = EXIT_CODES)]
    Export {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Export the data as of this revision (within the store's history window).
        #[arg(long, value_name = "REVISION")]
        at: Option<u64>,
        /// The output file, written as `FILE.partial` and renamed when complete (`-`: standard
        /// output).
        #[arg(long, short, value_name = "FILE", default_value = "-")]
        output: PathBuf,
    },
    /// Print the store's schema as it was written, or replace it with NEW_SCHEMA_FILE.
    ///
    /// A new schema is checked against every stored relationship: if some would no longer fit
    /// (a removed relation, a subject type no longer allowed, a broken constraint), nothing
    /// changes, and each reason is listed with how many relationships it concerns (exit 4).
    #[command(after_help = EXIT_CODES)]
    Schema {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[arg(value_name = "NEW_SCHEMA_FILE")]
        file: Option<PathBuf>,
        /// The language of NEW_SCHEMA_FILE (default: by extension, then content).
        #[arg(long, value_name = "FORMAT", value_parser = schema_format_parser(), requires = "file")]
        schema_format: Option<SchemaFormat>,
        /// Change nothing: print who would gain and lose access (the `purview diff` report),
        /// then whether the store would accept the change. Exits 0 when no access changes, 1
        /// when some does, 4 when the store would refuse the change.
        #[arg(long, requires = "file")]
        dry_run: bool,
        /// With `--dry-run`: the report as one JSON object.
        #[arg(long, requires = "dry_run")]
        json: bool,
    },
    /// Facts about a store: revisions, relationships, history kept, snapshot, size.
    #[command(after_help = EXIT_CODES)]
    Info {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Drop the history older than the history window (24 hours unless `--history-window`).
    #[command(after_help = EXIT_CODES)]
    Gc {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// How much history to keep: a number and a unit, `s`, `m`, `h` or `d` (`7d`, `90m`).
        #[arg(long, value_name = "DURATION", value_parser = parse_window)]
        history_window: Option<std::time::Duration>,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The changes to an object's relationships (or to one of its relations), oldest first:
    /// `purview store history DIR document:readme#viewer`.
    ///
    /// Each line is `REVISION TIME added|removed RELATIONSHIP`.
    #[command(after_help = EXIT_CODES)]
    History {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[arg(value_name = "OBJECT[#RELATION]")]
        object: String,
        /// Only changes at or after this time (RFC 3339) or revision (an integer).
        #[arg(long, value_name = "TIME|REVISION")]
        since: Option<String>,
        /// Print JSON, one object a line.
        #[arg(long)]
        json: bool,
    },
    /// Check a store: every checksum, the changelog, the index snapshot, and that the index
    /// answers as one rebuilt from the stored relationships. Prints `ok` (exit 0), or each
    /// problem found (exit 1).
    #[command(after_help = EXIT_CODES)]
    Verify {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
pub(super) struct WriteArgs {
    /// The store to write to.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The changes (default, or `-`: standard input), one a line: `+REL`, `touch REL` or just
    /// `REL` writes (or replaces the condition and times of) a relationship; `create REL` writes
    /// one that must not exist; `-REL` or `delete REL` deletes; `=REL` or `replace REL` gives
    /// the complete new set of subjects of REL's `object#relation` (the others are deleted).
    /// Blank lines and `//` or `# ` comments are skipped.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Blank lines separate batches: each batch is written as soon as it ends, as its own atomic
    /// write, and `revision N` is printed once it is durable. A bad batch stops the run (exit 4)
    /// with the batches before it written.
    #[arg(long)]
    batches: bool,
}

pub(super) fn run(args: StoreArgs) -> CliResult<Exit> {
    match args.command {
        StoreCommand::Init { dir, schema, schema_format, data } => init(&dir, &schema, schema_format, &data),
        StoreCommand::Import { dir, files } => import(&dir, &files),
        StoreCommand::Export { dir, at, output } => export(&dir, at, &output),
        StoreCommand::Schema { dir, file, schema_format, dry_run, json } => {
            schema(&dir, file.as_deref(), schema_format, dry_run.then_some(json))
        }
        StoreCommand::Info { dir, json } => info(&dir, json),
        StoreCommand::Gc { dir, history_window, json } => gc(&dir, history_window, json),
        StoreCommand::History { dir, object, since, json } => history(&dir, &object, since.as_deref(), json),
        StoreCommand::Verify { dir } => verify(&dir),
    }
}

/// Opens the store in `dir`; warnings (an index rebuilt, an import rolled back) go to standard
/// error.
pub(super) fn open(dir: &Path) -> CliResult<Store> {
    storage::open(dir, StoreOptions::default()).map_err(storage_error)
}

/// The data of the store in `dir`, now or as of `revision`.
pub(super) fn view(dir: &Path, revision: Option<u64>) -> CliResult<View> {
    let store = open(dir)?;
    match revision {
        None => Ok(store.purview().snapshot()),
        Some(r) => store
            .purview()
            .view_at(r)
            .map_err(|e| CliError::input(format!("invalid `--revision`: {e}")).with_code("revision")),
    }
}

/// A storage error: exit 4 when the directory is the problem (not a store, a newer format, in
/// use), 6 when the store failed (damage, I/O).
pub(super) fn storage_error(e: StorageError) -> CliError {
    let (exit, code) = match &e {
        StorageError::NotAStore { .. } => (Exit::Input, "not-a-store"),
        StorageError::AlreadyExists { .. } => (Exit::Input, "store-exists"),
        StorageError::NewerFormat { .. } => (Exit::Input, "newer-store-format"),
        StorageError::Locked { .. } => (Exit::Input, "store-in-use"),
        StorageError::Io { .. } => (Exit::Store, "store-io"),
        StorageError::Corrupt(_) => (Exit::Store, "store-damaged"),
        StorageError::Failed(_) => (Exit::Store, "store-failed"),
        StorageError::Schema { .. } => (Exit::Store, "stored-schema"),
    };
    CliError::new(exit, e.to_string()).with_code(code)
}

/// A write that failed: exit 6 when the store failed, else 4 (the message names the problem).
fn write_error(e: &WriteError, place: Option<&str>) -> CliError {
    let exit = if matches!(e, WriteError::Storage { .. }) { Exit::Store } else { Exit::Input };
    let message = match place {
        Some(p) => format!("{p}: {e}"),
        None => e.to_string(),
    };
    CliError::new(exit, message).with_code(e.code())
}

fn init(dir: &Path, schema: &Path, format: Option<SchemaFormat>, data: &[PathBuf]) -> CliResult<Exit> {
    let (format, text) = load::schema_source(schema, format)?;
    let existed = dir.exists();
    if existed && !dir.join("FORMAT").exists() && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
    {
        return Err(CliError::input(format!(
            "`{}` is not empty: `purview store init` needs a new or empty directory",
            dir.display()
        ))
        .with_code("store-dir-not-empty"));
    }
    let store = storage::init(dir, format, &schema.display().to_string(), &text, StoreOptions::default())
        .map_err(|e| match e {
            storage::InitError::Schema(e) => {
                CliError::diagnostics(String::new(), vec![(e.file, e.diagnostics)])
            }
            storage::InitError::Storage(e) => storage_error(e),
        })?;
    let revision = store.purview().revision();
    if data.is_empty() {
        println!("created the store `{}` at revision {revision}", dir.display());
        return Ok(Exit::Success);
    }
    match load_files(&store, data) {
        Ok(loaded) => {
            println!("created the store `{}` at revision {revision}", dir.display());
            println!("{loaded}");
            Ok(Exit::Success)
        }
        Err(e) => {
            drop(store);
            remove_new_store(dir, existed);
            Err(e.with_help(format!("the store `{}` was not created", dir.display())))
        }
    }
}

/// Removes a store `init` just created in `dir` (which was absent, or empty).
fn remove_new_store(dir: &Path, existed: bool) {
    if !existed {
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let _ = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
        }
    }
}

fn import(dir: &Path, files: &[PathBuf]) -> CliResult<Exit> {
    let store = open(dir)?;
    let loaded = load_files(&store, files)?;
    println!("{loaded}");
    Ok(Exit::Success)
}

/// What a load did, as printed.
struct Loaded {
    load: BulkLoad,
    took: Duration,
}

impl std::fmt::Display for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.load.relationships;
        let secs = self.took.as_secs_f64();
        let rate = if secs > 0.0 { (n as f64 / secs).round() } else { 0.0 };
        write!(
            f,
            "imported {n} relationships at revision {} in {:.2?} ({rate} relationships/s)",
            self.load.revision, self.took
        )
    }
}

/// Streams the files into the store as one bulk load.
fn load_files(store: &Store, files: &[PathBuf]) -> CliResult<Loaded> {
    let (inputs, total) = open_inputs(files)?;
    let progress = Progress::new(total);
    let started = Instant::now();
    let mut lines = RelLines::new(inputs, &progress);
    let nothing = "nothing was imported";
    let result = (|| -> CliResult<BulkLoad> {
        let mut loader = store.purview().bulk_loader().map_err(|e| write_error(&e, None))?;
        while let Some(next) = lines.next_body() {
            let (indent, range) =
                next.map_err(|e| CliError::input(e.to_string()).with_code(e.code).with_help(nothing))?;
            match loader.push_text(lines.body(range)) {
                Ok(()) => {}
                Err(purview::api::LineError::Syntax(e)) => {
                    let e = syntax_error(lines.here(Some(indent + e.offset + 1)), &e);
                    return Err(CliError::input(e.to_string()).with_code(e.code).with_help(nothing));
                }
                Err(purview::api::LineError::Invalid(e)) => {
                    return Err(write_error(&e, Some(&lines.here(None))).with_help(nothing));
                }
            }
        }
        lines.progress.phase(&format!("writing {} relationships", loader.len()));
        match loader.finish::<std::convert::Infallible>() {
            Ok(load) => Ok(load),
            Err(BulkError::Invalid { index, error }) => {
                Err(write_error(&error, Some(&lines.place(index))).with_help(nothing))
            }
            Err(BulkError::Storage(e)) => Err(write_error(&e, None)),
            Err(BulkError::Source { error, .. }) => match error {},
        }
    })();
    progress.finish();
    result.map(|load| Loaded { load, took: started.elapsed() })
}

/// An input to read line by line.
struct Input {
    name: String,
    reader: Box<dyn BufRead>,
}

/// Opens every file (`-`: standard input); returns them with their total size when known.
fn open_inputs(files: &[PathBuf]) -> CliResult<(Vec<Input>, Option<u64>)> {
    let mut inputs = Vec::new();
    let mut total = Some(0u64);
    for f in files {
        if f == Path::new("-") {
            inputs.push(Input { name: "<stdin>".into(), reader: Box::new(std::io::stdin().lock()) });
            total = None;
            continue;
        }
        let file = std::fs::File::open(f)
            .map_err(|e| CliError::input(format!("cannot read `{}`: {e}", f.display())))?;
        let size = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        total = total.zip(size).map(|(a, b)| a + b);
        inputs.push(Input {
            name: f.display().to_string(),
            reader: Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
        });
    }
    Ok((inputs, total))
}

/// A line that is not a relationship.
#[derive(Debug)]
struct LineError {
    place: String,
    message: String,
    code: &'static str,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// Where a run of consecutive relationship lines starts: item `item` is line `line` of input
/// `input`, and the items after it follow line by line until the next mark.
struct Mark {
    item: usize,
    input: usize,
    line: u64,
}

/// The relationships of the inputs, one a line, read as they are asked for. Remembers where
/// each came from in a few marks (one per run of consecutive lines), not one entry per line.
struct RelLines<'a> {
    inputs: Vec<Input>,
    names: Vec<String>,
    at: usize,
    line: u64,
    buf: Vec<u8>,
    items: usize,
    bytes: u64,
    last: Option<(usize, u64)>,
    marks: Vec<Mark>,
    progress: &'a Progress,
    done: bool,
}

impl<'a> RelLines<'a> {
    fn new(inputs: Vec<Input>, progress: &'a Progress) -> RelLines<'a> {
        let names = inputs.iter().map(|i| i.name.clone()).collect();
        RelLines {
            inputs,
            names,
            at: 0,
            line: 0,
            buf: Vec::new(),
            items: 0,
            bytes: 0,
            last: None,
            marks: Vec::new(),
            progress,
            done: false,
        }
    }

    /// `file:line` of item `index` (0-based).
    fn place(&self, index: usize) -> String {
        let i = self.marks.partition_point(|m| m.item <= index);
        match i.checked_sub(1).map(|i| &self.marks[i]) {
            Some(m) => format!("{}:{}", self.names[m.input], m.line + (index - m.item) as u64),
            None => format!("relationship {}", index + 1),
        }
    }

    fn here(&self, column: Option<usize>) -> String {
        match column {
            Some(c) => format!("{}:{}:{c}", self.names[self.at], self.line),
            None => format!("{}:{}", self.names[self.at], self.line),
        }
    }
}

impl RelLines<'_> {
    /// The next relationship line: its indent and the range of its text in [`RelLines::body`].
    fn next_body(&mut self) -> Option<Result<(usize, std::ops::Range<usize>), LineError>> {
        loop {
            if self.done {
                return None;
            }
            let Some(input) = self.inputs.get_mut(self.at) else {
                self.done = true;
                return None;
            };
            self.buf.clear();
            let n = match input.reader.read_until(b'\n', &mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    let place = self.here(None);
                    return Some(Err(LineError { place, message: format!("cannot read: {e}"), code: "io" }));
                }
            };
            if n == 0 {
                self.at += 1;
                self.line = 0;
                continue;
            }
            self.line += 1;
            self.bytes += n as u64;
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                self.done = true;
                let place = self.here(None);
                return Some(Err(LineError { place, message: "the line is not UTF-8".into(), code: "io" }));
            };
            let Some((indent, body)) = content(text) else { continue };
            let start = body.as_ptr() as usize - text.as_ptr() as usize;
            let range = start..start + body.len();
            let item = self.items;
            self.items += 1;
            if self.last != Some((self.at, self.line - 1)) {
                self.marks.push(Mark { item, input: self.at, line: self.line });
            }
            self.last = Some((self.at, self.line));
            if self.items.is_multiple_of(4096) {
                self.progress.tick(self.bytes, self.items);
            }
            return Some(Ok((indent, range)));
        }
    }

    /// The text of the line [`RelLines::next_body`] returned last.
    fn body(&self, range: std::ops::Range<usize>) -> &str {
        self.buf.get(range).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("")
    }
}

fn syntax_error(place: String, e: &RelationshipSyntaxError) -> LineError {
    LineError { place, message: e.to_string(), code: "relationship-syntax" }
}

/// The content of a line (and the bytes before it), or `None` for a blank line or a `//` or
/// `# ` comment (as in relationship files).
fn content(raw: &str) -> Option<(usize, &str)> {
    let line = raw.trim_end_matches(['\n', '\r']);
    let body = line.trim();
    if body.is_empty() || body.starts_with("//") || body.starts_with("# ") || body == "#" {
        return None;
    }
    Some((line.len() - line.trim_start().len(), body))
}

/// A progress bar of bytes read, with relationships and their rate, on a terminal; nothing
/// otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl Progress {
    fn new(total: Option<u64>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let (bar, template) = match total {
                Some(t) => (
                    indicatif::ProgressBar::new(t),
                    "{bar:40} {binary_bytes}/{binary_total_bytes} {msg} ({binary_bytes_per_sec}, ETA {eta})",
                ),
                None => (
                    indicatif::ProgressBar::new_spinner(),
                    "{spinner} {binary_bytes} {msg} ({binary_bytes_per_sec})",
                ),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar, started: Instant::now() }
    }

    fn tick(&self, bytes: u64, items: usize) {
        let Some(bar) = &self.bar else { return };
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { (items as f64 / secs).round() } else { 0.0 };
        bar.set_position(bytes);
        bar.set_message(format!("read, {items} relationships ({rate}/s)"));
    }

    fn phase(&self, message: &str) {
        let Some(bar) = &self.bar else { return };
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn export(dir: &Path, at: Option<u64>, output: &Path) -> CliResult<Exit> {
    let store = open(dir)?;
    let mut count = 0u64;
    let mut run = |w: &mut dyn std::io::Write| {
        storage::export(&store, at, &mut |r| {
            count += 1;
            writeln!(w, "{r}")
        })
    };
    let to_stdout = output == Path::new("-");
    let failed = |e: ExportError| match e {
        ExportError::Revision(e) => CliError::input(format!("invalid `--at`: {e}")).with_code("revision"),
        ExportError::Io(e) => CliError::input(format!("cannot write the export: {e}")),
    };
    let cannot = |e: std::io::Error| CliError::input(format!("cannot write `{}`: {e}", output.display()));
    let revision = if to_stdout {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let r = run(&mut out).map_err(failed)?;
        out.flush().map_err(|e| failed(ExportError::Io(e)))?;
        r
    } else {
        let mut file = AtomicFile::create(output).map_err(cannot)?;
        let r = run(&mut file).map_err(failed)?;
        file.commit().map_err(cannot)?;
        r
    };
    let text = format!("exported {count} relationships at revision {revision}");
    if to_stdout {
        eprintln!("{text}");
    } else {
        println!("{text} to `{}`", output.display());
    }
    Ok(Exit::Success)
}

/// `dry_run`: `Some(json)` to print the diff report instead of changing the schema.
fn schema(
    dir: &Path,
    file: Option<&Path>,
    format: Option<SchemaFormat>,
    dry_run: Option<bool>,
) -> CliResult<Exit> {
    let store = open(dir)?;
    let Some(file) = file else {
        let (_, text) = storage::schema_text(&store).map_err(storage_error)?;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        return Ok(Exit::Success);
    };
    let (format, text) = load::schema_source(file, format)?;
    if let Some(json) = dry_run {
        return schema_dry_run(&store, file, format, &text, json);
    }
    schema_change(store.purview().set_schema(format, &file.display().to_string(), &text))
}

/// Prints the diff report of a schema change, then whether the store would accept it.
fn schema_dry_run(
    store: &Store,
    file: &Path,
    format: SchemaFormat,
    text: &str,
    json: bool,
) -> CliResult<Exit> {
    let name = file.display().to_string();
    let new = std::sync::Arc::new(load::schema_from_text(format, &name, text)?);
    let View::Index(data) = store.purview().snapshot() else {
        return Err(CliError::input("a dry run needs the index engine"));
    };
    let report = super::diff::compare(&data.schema.clone(), &new, &data, &Default::default())?;
    let mut out = std::io::stdout().lock();
    let written = if json {
        super::diff::write_json(&report, &mut out)
    } else {
        super::diff::write_report(&report, &("the store's schema".to_string(), name.clone()), &mut out)
    };
    written.map_err(|e| CliError::input(format!("cannot write the report: {e}")))?;
    if let Err(e) = store.purview().check_schema_change(format, &name, text) {
        return schema_change(Err(e));
    }
    if !json {
        println!("\nDry run: the store would accept this schema; nothing changed.");
    }
    Ok(super::diff::exit(&report))
}

/// The outcome of a schema change (or of its check): the new revision, or why it is refused.
fn schema_change(result: Result<u64, SchemaChangeError>) -> CliResult<Exit> {
    match result {
        Ok(revision) => {
            println!("replaced the schema at revision {revision}");
            Ok(Exit::Success)
        }
        Err(SchemaChangeError::Schema(e)) => {
            Err(CliError::diagnostics(String::new(), vec![(e.file, e.diagnostics)]))
        }
        Err(SchemaChangeError::Blocked(blockers)) => {
            let total: usize = blockers.iter().map(|b| b.count).sum();
            let mut message = format!(
                "the new schema does not fit {total} stored relationship{}; nothing changed:",
                if total == 1 { "" } else { "s" }
            );
            for b in &blockers {
                let s = if b.count == 1 { "" } else { "s" };
                message.push_str(&format!(
                    "\n  - {} ({} relationship{s}, e.g. `{}`)",
                    b.reason, b.count, b.example
                ));
            }
            Err(CliError::input(message).with_code("schema-change-blocked").with_help(
                "delete or change those relationships first (`purview write`), or keep what they need",
            ))
        }
        Err(SchemaChangeError::Storage(e)) => Err(write_error(&e, None)),
    }
}

fn info(dir: &Path, json: bool) -> CliResult<Exit> {
    let store = open(dir)?;
    let info = storage::info(&store).map_err(storage_error)?;
    if json {
        println!("{}", serde_json::to_string(&info).unwrap_or_default());
        return Ok(Exit::Success);
    }
    let snapshot = info.snapshot_revision.map_or_else(|| "none".to_string(), |r| format!("revision {r}"));
    let opened = &store.report;
    let how = match (&opened.rebuilt, opened.snapshot_revision) {
        (Some(why), _) => format!("index rebuilt from the stored relationships ({why})"),
        (None, Some(r)) => format!("snapshot of revision {r} + {} log records replayed", opened.replayed),
        (None, None) => format!("{} log records replayed", opened.replayed),
    };
    println!("store                     {}", info.dir);
    println!("id                        {}", info.store_id);
    println!("revision                  {}", info.revision);
    println!("relationships             {}", info.relationships);
    println!("schema revision           {}", info.schema_revision);
    println!("oldest readable revision  {}", info.oldest_readable_revision);
    println!("log records               {}", info.log_records);
    println!("index snapshot            {snapshot}");
    println!("bytes on disk             {}", info.bytes_on_disk);
    println!("opened in                 {:.2?} ({how})", opened.took);
    Ok(Exit::Success)
}

/// `7d`, `24h`, `90m`, `30s`.
fn parse_window(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write a number and a unit, e.g. `7d` or `24h`"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{s}` has no unit: use `s`, `m`, `h` or `d`, e.g. `7d` or `24h`")),
    };
    n.checked_mul(secs).map(std::time::Duration::from_secs).ok_or_else(|| format!("`{s}` is too long"))
}

fn gc(dir: &Path, window: Option<std::time::Duration>, json: bool) -> CliResult<Exit> {
    let mut options = StoreOptions::default();
    if let Some(w) = window {
        options.history_window = w;
    }
    let store = storage::open(dir, options).map_err(storage_error)?;
    let report = storage::gc(&store).map_err(storage_error)?;
    if json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!(
            "collected {} log records and {} deleted relationships; the oldest readable revision is {}",
            report.log_records, report.deleted_rows, report.oldest_readable_revision
        );
    }
    Ok(Exit::Success)
}

fn history(dir: &Path, object: &str, since: Option<&str>, json: bool) -> CliResult<Exit> {
    let (obj, relation) = match object.split_once('#') {
        Some((o, r)) => (o, Some(r)),
        None => (object, None),
    };
    let obj = ObjectRef::parse(obj).map_err(|e| {
        CliError::input(format!("invalid object `{object}`: {}", e.reason))
            .with_help("write `type:id` or `type:id#relation`, e.g. `document:readme#viewer`")
    })?;
    let since = match since {
        None => Since::Beginning,
        Some(s) => match s.trim().parse::<u64>() {
            Ok(r) => Since::Revision(r),
            Err(_) => Since::Time(
                parse_time(s)
                    .map_err(|m| CliError::input(format!("invalid `--since`: {m}, or a revision")))?
                    .timestamp_micros(),
            ),
        },
    };
    let store = open(dir)?;
    let schema = store.purview().schema();
    let Some(ty) = schema.type_id(&obj.ty) else {
        return Err(CliError::input(format!("the schema has no type `{}`", obj.ty)).with_code("unknown-type"));
    };
    if let Some(r) = relation {
        if schema.type_def(ty).relation_id(r).is_none() {
            return Err(CliError::input(format!("type `{}` has no relation `{r}`", obj.ty))
                .with_code("unknown-relation"));
        }
    }
    let entries = storage::history(&store, &obj, relation, since).map_err(storage_error)?;
    let mut out = std::io::stdout().lock();
    for e in &entries {
        let line = if json {
            serde_json::to_string(e).unwrap_or_default()
        } else {
            format!("{:>6}  {}  {:<7}  {}", e.revision, e.time, e.change, e.relationship)
        };
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(Exit::Success)
}

fn verify(dir: &Path) -> CliResult<Exit> {
    let store = open(dir)?;
    let problems = storage::verify(&store).map_err(storage_error)?;
    if problems.is_empty() {
        println!("ok");
        return Ok(Exit::Success);
    }
    for p in &problems {
        println!("{p}");
    }
    Ok(Exit::Denied)
}

/// `purview write --store DIR [FILE]`.
pub(super) fn write(args: WriteArgs) -> CliResult<Exit> {
    let (name, reader): (String, Box<dyn BufRead>) = match &args.file {
        None => ("<stdin>".into(), Box::new(std::io::stdin().lock())),
        Some(p) if p == Path::new("-") => ("<stdin>".into(), Box::new(std::io::stdin().lock())),
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| CliError::input(format!("cannot read `{}`: {e}", p.display())))?;
            (p.display().to_string(), Box::new(std::io::BufReader::new(f)))
        }
    };
    let store = open(&args.store)?;
    let mut changes = Changes { name, reader, line: 0, buf: Vec::new() };
    if args.batches {
        write_batches(&store, &mut changes)
    } else {
        write_one(&store, &mut changes)
    }
}

/// Lines of changes, read one at a time.
struct Changes {
    name: String,
    reader: Box<dyn BufRead>,
    line: u64,
    buf: Vec<u8>,
}

/// A line of changes: blank, or a change (`None` for a comment).
enum Line {
    Blank,
    Change(Option<Result<Box<WriteOp>, String>>),
}

impl Changes {
    /// The next line, or `None` at the end.
    fn next_line(&mut self) -> CliResult<Option<Line>> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| CliError::input(format!("cannot read `{}`: {e}", self.name)))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let text = std::str::from_utf8(&self.buf)
            .map_err(|_| CliError::input(format!("{}: the line is not UTF-8", self.place())))?;
        if text.trim().is_empty() {
            return Ok(Some(Line::Blank));
        }
        Ok(Some(Line::Change(content(text).map(|(_, body)| parse_change(body).map(Box::new)))))
    }

    fn place(&self) -> String {
        format!("{}:{}", self.name, self.line)
    }
}

/// A change: `+REL`, `touch REL`, `REL`, `create REL`, `-REL`, `delete REL`, `=REL`, `replace REL`.
fn parse_change(body: &str) -> Result<WriteOp, String> {
    type Make = fn(Relationship) -> WriteOp;
    let prefixes: [(&str, Make); 8] = [
        ("+", WriteOp::Touch),
        ("-", WriteOp::Delete),
        ("=", WriteOp::Replace),
        ("touch ", WriteOp::Touch),
        ("create ", WriteOp::Create),
        ("delete ", WriteOp::Delete),
        ("replace ", WriteOp::Replace),
        ("", WriteOp::Touch),
    ];
    for (prefix, make) in prefixes {
        if let Some(rest) = body.strip_prefix(prefix) {
            return Relationship::parse(rest.trim()).map(make).map_err(|e| e.to_string());
        }
    }
    Err("expected a change".into())
}

const CHANGE_HELP: &str =
    "write `+REL` (or `REL`, `touch REL`), `create REL`, `-REL` (or `delete REL`), `=REL` (or `replace REL`)";

/// Reads every change and writes them as one batch.
fn write_one(store: &Store, changes: &mut Changes) -> CliResult<Exit> {
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    while let Some(line) = changes.next_line()? {
        match line {
            Line::Blank | Line::Change(None) => {}
            Line::Change(Some(Ok(op))) => {
                ops.push(*op);
                lines.push(changes.line);
            }
            Line::Change(Some(Err(e))) => errors.push(format!("{}: {e}", changes.place())),
        }
    }
    if !errors.is_empty() {
        return Err(CliError::input(errors.join("\n"))
            .with_code("relationship-syntax")
            .with_help(format!("{CHANGE_HELP}; nothing was written")));
    }
    let pv = store.purview();
    if ops.is_empty() {
        eprintln!("no changes given; nothing was written");
        println!("revision {}", pv.revision());
        return Ok(Exit::Success);
    }
    match pv.write(&ops) {
        Ok(r) => {
            println!("revision {r}");
            Ok(Exit::Success)
        }
        Err(e) => {
            let place = blame(&e, &ops, &lines).map(|l| format!("{}:{l}", changes.name));
            let e = write_error(&e, place.as_deref());
            Err(if e.exit == Exit::Input { e.with_help("nothing was written") } else { e })
        }
    }
}

/// Writes each batch (blank lines end one) as soon as it is read; prints `revision N` once it
/// is durable.
fn write_batches(store: &Store, changes: &mut Changes) -> CliResult<Exit> {
    let pv = store.purview();
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    let mut written = 0usize;
    let mut last = None;
    let stopped = |written: usize, last: Option<u64>| match last {
        Some(r) => format!("the {written} batches before it were written (up to revision {r}); it was not"),
        None => "no batch was written".to_string(),
    };
    loop {
        let line = changes.next_line()?;
        let eof = line.is_none();
        let end = eof || matches!(line, Some(Line::Blank));
        match line {
            None | Some(Line::Blank) | Some(Line::Change(None)) => {}
            Some(Line::Change(Some(Ok(op)))) => {
                ops.push(*op);
                lines.push(changes.line);
            }
            Some(Line::Change(Some(Err(e)))) => {
                return Err(CliError::input(format!("{}: {e}", changes.place()))
                    .with_code("relationship-syntax")
                    .with_help(format!("{CHANGE_HELP}; {}", stopped(written, last))));
            }
        }
        if end && !ops.is_empty() {
            match pv.write(&ops) {
                Ok(r) => {
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "revision {r}")
                        .and_then(|()| out.flush())
                        .map_err(|e| CliError::input(format!("cannot write to standard output: {e}")))?;
                    written += 1;
                    last = Some(r);
                }
                Err(e) => {
                    let place = blame(&e, &ops, &lines).map(|l| format!("{}:{l}", changes.name));
                    return Err(write_error(&e, place.as_deref()).with_help(stopped(written, last)));
                }
            }
            ops.clear();
            lines.clear();
        }
        if eof {
            return Ok(Exit::Success);
        }
    }
}

/// The line of the change a write error names (the last one with that relationship).
fn blame(e: &WriteError, ops: &[WriteOp], lines: &[u64]) -> Option<u64> {
    let named = e.relationship()?;
    let i = ops.iter().rposition(|op| op.relationship().to_string() == named)?;
    lines.get(i).copied()
}
