//! `purview serve`: the SpiceDB v1 gRPC API and the AuthZEN HTTP API over a store (`--store`,
//! created empty when the directory is new), a PostgreSQL database shared with other nodes
//! (`--datastore`), or in memory (`--memory`, preloaded with `--schema/--data`).

use super::error::{CliError, CliResult, Exit};
use super::load;
use super::store::storage_error;
use clap::Args;
use purview::api::Engine;
use purview::server::{self, Config, Limits, Tls};
use purview::storage::{self, StoreOptions};
use purview::syntax::SchemaFormat;
use purview::Purview;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub(super) struct ServeArgs {
    /// The store to serve (a directory; a new or empty one is created with an empty schema).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["memory", "datastore"])]
    store: Option<PathBuf>,
    /// Serve from memory: nothing is kept after exit. `--schema` and `--data` preload it.
    #[arg(long)]
    memory: bool,
    /// A PostgreSQL database (`postgres://user@host:port/dbname`) shared with other nodes,
    /// migrated with `purview datastore migrate URL`. The node loads the latest state, follows
    /// what other nodes commit, and answers reads from memory.
    #[arg(long, value_name = "URL")]
    datastore: Option<String>,
    /// With `--datastore`: a directory for this node's index snapshots, so that a restart
    /// loads the snapshot plus the changes since instead of reading every relationship.
    #[arg(long, value_name = "DIR", requires = "datastore")]
    snapshot_dir: Option<PathBuf>,
    /// With `--datastore`: how often to look for other nodes' commits when no notification
    /// came (milliseconds).
    #[arg(long, default_value_t = 500, requires = "datastore")]
    poll_ms: u64,
    /// With `--memory`: the schema to start with (Purview's, SpiceDB's or OpenFGA's language;
    /// a SpiceDB schema's imports and an OpenFGA `fga.mod` are read as every command reads them).
    #[arg(long, requires = "memory")]
    schema: Option<PathBuf>,
    /// With `--memory`: relationship files to preload.
    #[arg(long, requires = "schema")]
    data: Vec<PathBuf>,
    /// Where the SpiceDB gRPC API listens.
    #[arg(long, default_value = "127.0.0.1:50051")]
    grpc_addr: SocketAddr,
    /// Where the HTTP API (AuthZEN, /healthz, /metrics) listens.
    #[arg(long, default_value = "127.0.0.1:8443")]
    http_addr: SocketAddr,
    /// A preshared key clients send as `authorization: Bearer KEY` (repeatable). Prefer
    /// `--preshared-key-file` or `PURVIEW_PRESHARED_KEY`, which stay out of `ps`.
    #[arg(long = "preshared-key", value_name = "KEY")]
    keys: Vec<String>,
    /// A file of preshared keys, one per line.
    #[arg(long, value_name = "FILE")]
    preshared_key_file: Option<PathBuf>,
    /// Serve without authentication (only for local experiments).
    #[arg(long)]
    insecure_no_auth: bool,
    /// TLS certificate chain (PEM), for both ports.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Updates (and preconditions) per WriteRelationships.
    #[arg(long, default_value_t = 1000)]
    max_updates_per_write: usize,
    /// Items per CheckBulkPermissions or AuthZEN evaluations request.
    #[arg(long, default_value_t = 10_000)]
    max_bulk_check_items: usize,
    /// Bytes per request message.
    #[arg(long, default_value_t = 4 << 20)]
    max_request_bytes: usize,
    /// The largest `optional_limit` a read or lookup may ask for (0: none).
    #[arg(long, default_value_t = 0)]
    max_lookup_limit: u32,
    /// Results one lookup may produce.
    #[arg(long, default_value_t = 10_000_000)]
    max_lookup_results: usize,
    /// Nested relations one evaluation may follow.
    #[arg(long, default_value_t = 50)]
    max_depth: u32,
    /// Per-request deadline in milliseconds (a client's shorter deadline wins).
    #[arg(long, default_value_t = 30_000)]
    deadline_ms: u64,
    /// Requests in flight at once; more are refused (RESOURCE_EXHAUSTED / HTTP 429).
    #[arg(long, default_value_t = 1024)]
    max_concurrent: usize,
    /// Revisions kept for Watch.
    #[arg(long, default_value_t = 10_000)]
    watch_buffer: usize,
    /// Log as JSON lines (default: human-readable). The level comes from `RUST_LOG` (`info`).
    #[arg(long)]
    log_json: bool,
    /// Serve the playground instead: a web page at `http://HTTP_ADDR/playground` to try a
    /// model (schema, relationships and queries, answered as you type). The page keeps the
    /// model; no store, no gRPC, no keys.
    #[arg(long, conflicts_with_all = ["store", "memory", "datastore", "tls_cert"])]
    playground: bool,
}

fn keys(args: &ServeArgs) -> CliResult<Vec<String>> {
    let mut keys = args.keys.clone();
    if let Some(path) = &args.preshared_key_file {
        let text = load::read(path)?;
        keys.extend(
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from),
        );
    }
    if let Ok(k) = std::env::var("PURVIEW_PRESHARED_KEY") {
        keys.extend(k.split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from));
    }
    Ok(keys)
}

/// The Purview to serve and its schema text as written.
fn open(args: &ServeArgs) -> CliResult<(Purview, String, Option<storage::Store>)> {
    if let Some(url) = &args.datastore {
        return open_datastore(url, args);
    }
    if let Some(dir) = &args.store {
        let fresh = !dir.exists() || std::fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(false);
        let store = if fresh {
            eprintln!("purview serve: creating an empty store in `{}`", dir.display());
            storage::init(dir, SchemaFormat::Purview, "schema", "", StoreOptions::default())
                .map_err(|e| CliError::new(Exit::Store, e.to_string()))?
        } else {
            storage::open(dir, StoreOptions::default()).map_err(storage_error)?
        };
        let (_, text) = storage::ops::schema_text(&store).map_err(storage_error)?;
        return Ok((store.purview().clone(), text, Some(store)));
    }
    if !args.memory {
        return Err(CliError::new(Exit::Usage, "say where the data lives: --store DIR or --memory"));
    }
    match &args.schema {
        Some(path) => {
            // Imports and `fga.mod` modules read as every command reads them; `ReadSchema` returns
            // the schema as one text.
            let (_, text) = load::schema_source(path, None)?;
            let pv = load::from_files(path, None, &args.data, Engine::Index)?;
            Ok((pv, text, None))
        }
        None => {
            let pv = Purview::new(load::schema_from_text(SchemaFormat::Purview, "schema", "")?);
            Ok((pv, String::new(), None))
        }
    }
}

#[cfg(feature = "postgres")]
fn open_datastore(url: &str, args: &ServeArgs) -> CliResult<(Purview, String, Option<storage::Store>)> {
    let store = storage::open_postgres(
        url,
        args.snapshot_dir.as_deref(),
        StoreOptions::default(),
        Duration::from_millis(args.poll_ms.max(1)),
    )
    .map_err(storage_error)?;
    let (_, text) = storage::ops::schema_text(&store).map_err(storage_error)?;
    Ok((store.purview().clone(), text, Some(store)))
}

#[cfg(not(feature = "postgres"))]
fn open_datastore(_url: &str, _args: &ServeArgs) -> CliResult<(Purview, String, Option<storage::Store>)> {
    Err(CliError::input("--datastore: this build has no PostgreSQL support (the `postgres` feature)"))
}

pub(super) fn run(args: ServeArgs) -> CliResult<Exit> {
    init_logging(args.log_json);
    if args.playground {
        return playground(args.http_addr);
    }
    let keys = keys(&args)?;
    let config = Config {
        grpc_addr: args.grpc_addr,
        http_addr: args.http_addr,
        keys,
        insecure_no_auth: args.insecure_no_auth,
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(Tls { cert: cert.clone(), key: key.clone() }),
            _ => None,
        },
        limits: Limits {
            max_updates_per_write: args.max_updates_per_write,
            max_bulk_check_items: args.max_bulk_check_items,
            max_request_bytes: args.max_request_bytes,
            max_lookup_limit: args.max_lookup_limit,
            max_lookup_results: args.max_lookup_results,
            max_depth: args.max_depth,
            deadline: Duration::from_millis(args.deadline_ms),
            max_concurrent: args.max_concurrent.max(1),
            watch_buffer: args.watch_buffer,
        },
    };
    if config.keys.is_empty() && !config.insecure_no_auth {
        return Err(CliError::new(Exit::Usage, server::ServeError::NoKeys.to_string()));
    }
    let (purview, schema_text, store) = open(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Store, format!("cannot start the runtime: {e}")))?;
    let served = runtime.block_on(async move {
        let bound = server::bind(purview, schema_text, config).await?;
        let (grpc, http) = (bound.grpc_addr(), bound.http_addr());
        // One line tests and scripts can read to find the ports (`--grpc-addr 127.0.0.1:0`).
        println!(
            "purview serve: listening grpc={} http={}",
            grpc.map_or("?".into(), |a| a.to_string()),
            http.map_or("?".into(), |a| a.to_string())
        );
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        bound.run(shutdown_signal()).await
    });
    served.map_err(|e| match e {
        server::ServeError::NoKeys | server::ServeError::EmptyKey => {
            CliError::new(Exit::Usage, e.to_string())
        }
        server::ServeError::Bind { .. } | server::ServeError::Tls(_) => CliError::input(e.to_string()),
        server::ServeError::Transport(_) => CliError::new(Exit::Store, e.to_string()),
    })?;
    if let Some(store) = store {
        // A snapshot at the last revision makes the next start fast.
        store.checkpoint().map_err(storage_error)?;
    }
    eprintln!("purview serve: stopped cleanly");
    Ok(Exit::Success)
}

/// `purview serve --playground`: the page and its API only.
fn playground(addr: SocketAddr) -> CliResult<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Store, format!("cannot start the runtime: {e}")))?;
    let ready = |a: SocketAddr| {
        // One line tests and scripts can read to find the port (`--http-addr 127.0.0.1:0`).
        println!("purview serve: playground at http://{a}/playground");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    };
    runtime
        .block_on(server::playground::serve(addr, ready, shutdown_signal()))
        .map_err(|e| CliError::input(format!("cannot serve the playground on {addr}: {e}")))?;
    Ok(Exit::Success)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
