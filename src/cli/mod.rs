//! The `purview` command line: ask questions of a schema and its relationships, run test files,
//! validate, format and import schemas, or try the bundled example with `purview demo`.
//!
//! A schema may be written in Purview's language, SpiceDB's or OpenFGA's (DSL or JSON): see
//! [`purview::syntax::detect`] and `--schema-format`. `--engine` picks the evaluator.
//!
//! Every read operation takes a query in Purview's query language (see `grammar/query.pest`), so
//! `purview check document:readme#view@user:ann` and `purview query 'check …'` mean the same.
//!
//! `purview lsp` serves editors (the Language Server Protocol over standard input and output).
//!
//! `purview store …` creates and manages a durable store in a directory, `purview write` writes
//! batches to one, and `--store DIR` asks one instead of `--schema` and `--data`.
//!
//! Exit codes (see [`Exit`]): 0 allowed or success; 1 denied, a failed test, an unformatted
//! file, problems `store verify` found, or an `lsp` client that left without `shutdown`; 2 conditional; 3 usage error; 4 input error (invalid
//! schema, relationships, query, flag value, unreadable file, a schema change the data blocks, a
//! directory that is not a store or is in use); 5 evaluation error (limits, conditions); 6 store
//! failure (damage, I/O).

#[cfg(feature = "postgres")]
mod datastore;
mod demo;
mod diff;
mod error;
mod files;
mod graph;
mod import;
mod load;
mod lsp;
mod materialize;
mod queries;
#[cfg(feature = "server")]
mod serve;
mod store;

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use error::{error_format_in, CliResult, ErrorFormat, Exit, EXIT_CODES};
use purview::api::Engine;
use purview::syntax::SchemaFormat;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "purview",
    version,
    about = "Purview: relationship-based access control. New here? Run `purview demo`.",
    after_help = EXIT_CODES
)]
struct Cli {
    /// How errors are printed on standard error.
    #[arg(long, global = true, value_enum, default_value_t = ErrorFormat::Human)]
    error_format: ErrorFormat,
    /// The evaluator that answers check, who, what, expand, explain, query, test and demo (other
    /// commands ignore it).
    ///
    /// `index` (the default) is the compiled index; `reference` is the simple evaluator the index
    /// is tested against (the oracle of Purview's differential tests): slower, for comparing
    /// answers.
    #[arg(long, global = true, value_enum, default_value_t = EngineArg::Index)]
    engine: EngineArg,
    #[command(subcommand)]
    command: Command,
}

/// `--engine`: which evaluator answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum EngineArg {
    /// The compiled index (bitmaps, closures, parallel lookups).
    Index,
    /// The simple reference evaluator: the oracle the index is tested against.
    Reference,
}

impl From<EngineArg> for Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Index => Engine::Index,
            EngineArg::Reference => Engine::Reference,
        }
    }
}

/// The language an import reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ImportFrom {
    /// A SpiceDB schema (`.zed`).
    Spicedb,
    /// An OpenFGA model: the DSL (`.fga`) or its JSON form (`.json`, or text starting with `{`).
    Openfga,
}

/// Parses `--schema-format` into a [`SchemaFormat`].
fn schema_format_parser() -> impl clap::builder::TypedValueParser<Value = SchemaFormat> {
    PossibleValuesParser::new(SchemaFormat::NAMES).try_map(|s| s.parse::<SchemaFormat>())
}

#[derive(Subcommand, Debug)]
enum Command {
    /// May a subject do a permission on an object?
    ///
    /// `purview check document:readme#view@user:ann` or `purview check user:ann can view
    /// document:readme`. Exits 0 if allowed, 1 if denied, 2 if conditional.
    #[command(after_help = EXIT_CODES)]
    Check(One),
    /// Which subjects of a type can do a permission on an object?
    ///
    /// `purview who document:readme#view@user`, `who document:readme#view@group#member`, or
    /// `who user can view document:readme`.
    #[command(after_help = EXIT_CODES)]
    Who(One),
    /// Which objects of a type can a subject do a permission on?
    ///
    /// `purview what document#view@user:ann --limit 10`, or `what user:ann can view document`.
    #[command(after_help = EXIT_CODES)]
    What(OnePaged),
    /// The userset tree of a permission on an object: `purview expand document:readme#view`.
    #[command(after_help = EXIT_CODES)]
    Expand(One),
    /// Why a subject can (or cannot) do a permission on an object.
    ///
    /// `purview explain document:readme#view@user:ann`. Exits like `check`. `--format json`
    /// prints a stable JSON shape, `--format dot` a Graphviz drawing.
    #[command(after_help = EXIT_CODES)]
    Explain(ExplainArgs),
    /// Run queries given as arguments, in files, or on standard input (one per line or `;`).
    ///
    /// The exit code is that of the first query that failed (4 or 5), else 1 if a check was
    /// denied, else 2 if one was conditional, else 0.
    #[command(after_help = EXIT_CODES)]
    Query(Many),
    /// Run test files (schema, relationships and assertions) and report failures.
    #[command(after_help = EXIT_CODES)]
    Test {
        /// Test files, or directories to search for them.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Check files and print every problem: schemas (`.pv`, the default; SpiceDB `.zed`,
    /// OpenFGA `.fga` and `.json`), queries (`.q`) and relationships (`.rels`; against
    /// `--schema` when given).
    #[command(after_help = EXIT_CODES)]
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The schema to check relationship and query files against.
        #[arg(long, short, value_name = "FILE")]
        schema: Option<PathBuf>,
        /// The language of `--schema` and of the schema files (default: by extension, then content).
        #[arg(long, value_name = "FORMAT", value_parser = schema_format_parser())]
        schema_format: Option<SchemaFormat>,
    },
    /// Print a SpiceDB or OpenFGA schema in Purview's language.
    ///
    /// `purview import spicedb schema.zed > schema.pv`, `purview import openfga model.fga`
    /// (or the model's JSON). Problems are reported in the original file; a schema whose names
    /// Purview's language cannot write (reserved words such as `this` or `type`, `.` in a name)
    /// is refused rather than printed wrong.
    #[command(after_help = EXIT_CODES)]
    Import {
        /// The language of FILE.
        #[arg(value_enum)]
        from: ImportFrom,
        /// The schema to import.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Draw a schema: types as boxes with their relations and permissions, edges to the types
    /// of subjects and along arrows; or, with `--permission`, one permission's dependencies.
    ///
    /// `purview graph --schema schema.pv --format svg > schema.svg` (drawn in pure Rust),
    /// `--format dot` for Graphviz, `--format mermaid` for Markdown docs.
    #[command(after_help = EXIT_CODES)]
    Graph(graph::GraphArgs),
    /// Print a schema in canonical formatting.
    ///
    /// A Purview schema is printed canonically; a SpiceDB schema (`.zed`) or an OpenFGA model
    /// (`.fga`) is laid out: indentation and blank lines only, every token kept as written.
    #[command(after_help = EXIT_CODES)]
    Fmt {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Rewrite the file in place.
        #[arg(long, conflicts_with = "check")]
        write: bool,
        /// Print nothing; exit 1 if the file is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Write every (subject, object) pair of a permission to a file, or only the pairs a file
    /// of changes adds and removes (`--changes`).
    #[command(after_help = EXIT_CODES)]
    Materialize(materialize::MaterializeArgs),
    /// Who gains and who loses access under a new schema, on the same relationships.
    ///
    /// `purview diff old.pv new.pv --data data.rels` prints the structural changes (relations
    /// and permissions added, removed, changed), the relationships the new schema cannot hold,
    /// and every (subject, permission, object) pair the new schema adds or removes, with a
    /// summary per permission. `--csv` prints only the pairs (the materialize delta format),
    /// `--json` the whole report. Exits 0 when no access changes, 1 when some does.
    #[command(after_help = EXIT_CODES)]
    Diff(diff::DiffArgs),
    /// Create and manage a durable store: a directory that keeps a schema, the relationships
    /// and their history across restarts.
    ///
    /// `purview store init DIR --schema FILE --data FILE`, then `purview write --store DIR`, and
    /// `--store DIR` on `check`, `who`, `what`, `expand`, `explain`, `query` and `materialize`.
    /// One process at a time may open a store.
    #[command(after_help = EXIT_CODES)]
    Store(store::StoreArgs),
    /// Manage a PostgreSQL datastore (the system of record of several `purview serve
    /// --datastore URL` nodes): `purview datastore migrate URL`.
    #[cfg(feature = "postgres")]
    #[command(after_help = EXIT_CODES)]
    Datastore(datastore::DatastoreArgs),
    /// Serve the SpiceDB v1 gRPC API and the AuthZEN 1.0 HTTP API.
    ///
    /// `purview serve --store DIR --preshared-key-file KEYS`, `purview serve --datastore
    /// postgres://… --preshared-key-file KEYS` (one of several nodes on one database) or
    /// `purview serve --memory --schema schema.zed --insecure-no-auth`. Prints `purview serve: listening grpc=ADDR http=ADDR` once
    /// both ports are bound; SIGTERM or Ctrl-C drains requests in flight and closes the store.
    #[cfg(feature = "server")]
    Serve(Box<serve::ServeArgs>),
    /// Write changes to a store as one atomic batch (or, with `--batches`, one batch per
    /// paragraph), and print the new revision (`revision N`).
    ///
    /// A bad line or a change the schema refuses is reported with its `file:line`, and nothing
    /// of its batch is written (exit 4).
    #[command(after_help = EXIT_CODES)]
    Write(store::WriteArgs),
    /// Serve the Language Server Protocol on standard input and output, for editors: diagnostics
    /// as you type, hover, go to definition, find references, completion, rename, formatting and
    /// an outline, for Purview (`.pv`), SpiceDB (`.zed`) and OpenFGA (`.fga`) schemas.
    ///
    /// Exits 0 after the client's `shutdown` and `exit`, 1 if the client leaves without `shutdown`.
    Lsp {
        /// Use standard input and output (the default and only transport; accepted because
        /// editors pass it).
        #[arg(long)]
        stdio: bool,
    },
    /// Run example queries on a bundled model (no files needed), or your own queries on it.
    ///
    /// The model is `examples/quickstart/schema.pv` with `examples/quickstart/data.rels`; the tour
    /// is `examples/quickstart/queries.q`.
    #[command(after_help = EXIT_CODES)]
    Demo {
        /// Queries to run instead of the tour, e.g. `who message:m1#view@user`.
        #[arg(value_name = "QUERY")]
        queries: Vec<String>,
        #[command(flatten)]
        eval: EvalFlags,
        /// Print the bundled schema and relationships.
        #[arg(long)]
        show: bool,
    },
}

/// The schema and relationships to ask: files, or a store.
#[derive(Args, Debug, Clone)]
struct Source {
    /// The schema file: Purview (`.pv`), SpiceDB (`.zed`) or OpenFGA (`.fga`, `.json`).
    #[arg(long, short, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// The language of the schema (default: by extension, then content).
    #[arg(long, value_name = "FORMAT", value_parser = schema_format_parser())]
    schema_format: Option<SchemaFormat>,
    /// A relationships file, one relationship a line (repeatable).
    #[arg(long, short, value_name = "FILE")]
    data: Vec<PathBuf>,
    /// A store (`purview store init`) to ask instead of `--schema` and `--data`.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["schema", "schema_format", "data"])]
    store: Option<PathBuf>,
    /// With `--store`: ask the data as of this revision (within the store's history window).
    #[arg(long, value_name = "REVISION", requires = "store", conflicts_with_all = ["schema", "schema_format", "data"])]
    revision: Option<u64>,
}

/// How to evaluate and print.
#[derive(Args, Debug, Clone, Default)]
struct EvalFlags {
    /// Print answers as JSON, one object a line.
    #[arg(long)]
    json: bool,
    /// Request context for conditions, a JSON object (a query's `with` adds to it).
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// Evaluation time, RFC 3339 (default: now; a query's `at` wins).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

/// Paging of `what` results (a query's `limit` and `after` win).
#[derive(Args, Debug, Clone, Default)]
struct PageFlags {
    /// At most this many results.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Continue after this cursor (printed as `next cursor` by the previous page).
    #[arg(long, value_name = "CURSOR")]
    cursor: Option<String>,
}

/// One query, as words after the subcommand.
#[derive(Args, Debug)]
struct One {
    #[arg(required = true, value_name = "QUERY", num_args = 1..)]
    query: Vec<String>,
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    eval: EvalFlags,
}

/// `purview explain`: one query and how to print its answer.
#[derive(Args, Debug)]
struct ExplainArgs {
    #[command(flatten)]
    one: One,
    /// How to print the explanation.
    #[arg(long, value_enum, default_value_t = ExplainFormat::Tree, conflicts_with = "json")]
    format: ExplainFormat,
}

/// `--format` of `purview explain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ExplainFormat {
    /// Text: the decision, then the tree with ✓ ✗ ? marks.
    Tree,
    /// One JSON object: query, decision, missing (when conditional) and the tree, each node
    /// with kind, text, outcome and children.
    Json,
    /// A Graphviz digraph, each node coloured by its outcome (`dot -Tsvg`).
    Dot,
}

#[derive(Args, Debug)]
struct OnePaged {
    #[command(flatten)]
    one: One,
    #[command(flatten)]
    page: PageFlags,
}

#[derive(Args, Debug)]
struct Many {
    /// Queries (each argument may hold several, separated by `;` or newlines). Without queries
    /// or `--file`, they are read from standard input.
    #[arg(value_name = "QUERY")]
    queries: Vec<String>,
    /// A file of queries (repeatable).
    #[arg(long, short, value_name = "FILE")]
    file: Vec<PathBuf>,
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    eval: EvalFlags,
    #[command(flatten)]
    page: PageFlags,
}

/// Runs `purview` with the process's arguments.
pub fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let format = error_format_in(&args);
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return usage_error(&e, format).into(),
    };
    match run(cli.command, cli.engine.into()) {
        Ok(code) => code.into(),
        Err(e) => {
            e.report(cli.error_format);
            e.exit.into()
        }
    }
}

fn usage_error(e: &clap::Error, format: ErrorFormat) -> Exit {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return Exit::Success;
    }
    if format == ErrorFormat::Json {
        let message = e.render().to_string();
        let message = message.trim().trim_start_matches("error: ");
        error::CliError::usage(message).report(format);
    } else {
        let _ = e.print();
    }
    Exit::Usage
}

fn run(command: Command, engine: Engine) -> CliResult<Exit> {
    match command {
        Command::Check(one) => queries::one("check", one, PageFlags::default(), engine),
        Command::Who(one) => queries::one("who", one, PageFlags::default(), engine),
        Command::What(p) => queries::one("what", p.one, p.page, engine),
        Command::Expand(one) => queries::one("expand", one, PageFlags::default(), engine),
        Command::Explain(args) => queries::explain(args, engine),
        Command::Query(many) => queries::many(many, engine),
        Command::Test { paths } => files::test(&paths, engine),
        Command::Validate { files, schema, schema_format } => {
            files::validate(&files, schema.as_deref(), schema_format)
        }
        Command::Import { from, file } => import::run(from, &file),
        Command::Fmt { file, write, check } => files::fmt(&file, write, check),
        Command::Graph(args) => graph::run(args),
        Command::Lsp { stdio: _ } => lsp::run(),
        Command::Demo { queries, eval, show } => demo::run(&queries, &eval, show, engine),
        Command::Materialize(args) => materialize::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Store(args) => store::run(args),
        #[cfg(feature = "server")]
        Command::Serve(args) => serve::run(*args),
        Command::Write(args) => store::write(args),
        #[cfg(feature = "postgres")]
        Command::Datastore(args) => datastore::run(args),
    }
}
