//! `purview materialize … --into postgres://…?table=NAME [--follow]`: a PostgreSQL visibility
//! table loaded in full, brought up to date by deltas, or kept current. See `purview::sink`.

use super::super::error::{CliError, CliResult, Exit};
use super::super::{load, queries, store};
use super::MaterializeArgs;
use purview::sink::{self, Applied, FollowOptions, SinkError, VisibilityTable};
use purview::storage::{self, Store, StoreOptions};
use purview::Purview;
use std::io::Write as _;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn failed(e: SinkError) -> CliError {
    match &e {
        SinkError::Url(_)
        | SinkError::Connect { .. }
        | SinkError::Foreign { .. }
        | SinkError::OtherTarget { .. } => CliError::input(e.to_string()),
        SinkError::Materialize(m) => match m {
            purview::materialize::MaterializeError::Eval(_) => CliError::new(Exit::Evaluation, e.to_string()),
            _ => CliError::input(e.to_string()),
        },
        SinkError::Eval(_) => CliError::new(Exit::Evaluation, e.to_string()),
        _ => CliError::new(Exit::Store, e.to_string()),
    }
}

/// The Purview to read, and the store that keeps it open.
fn source(args: &MaterializeArgs) -> CliResult<(Purview, Option<Store>)> {
    if let Some(url) = &args.datastore {
        let poll = Duration::from_millis(args.poll_ms.max(1));
        let store =
            storage::open_postgres(url, None, StoreOptions::default(), poll).map_err(store::storage_error)?;
        return Ok((store.purview().clone(), Some(store)));
    }
    if let Some(dir) = &args.store {
        let store = store::open(dir)?;
        return Ok((store.purview().clone(), Some(store)));
    }
    if args.follow {
        return Err(CliError::usage("`--follow` follows a store: pass `--store DIR` or `--datastore URL`"));
    }
    match &args.schema {
        Some(schema) => Ok((load::from_files(schema, None, &args.data, purview::api::Engine::Index)?, None)),
        None => {
            Err(CliError::usage("pass `--schema FILE` and `--data FILE`, `--store DIR` or `--datastore URL`"))
        }
    }
}

fn line(table: &str, a: &Applied, elapsed: Duration, json: bool) -> String {
    if json {
        let mut v = serde_json::to_value(a).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("table".into(), table.into());
            o.insert("revision".into(), a.to.into());
            o.insert("elapsed".into(), elapsed.as_secs_f64().into());
        }
        v.to_string()
    } else if a.full {
        format!("loaded `{table}` at revision {}: {} rows in {:.2?} ({})", a.to, a.rows, elapsed, a.reason)
    } else {
        format!(
            "`{table}` from revision {} to {}: {} pairs added, {} removed in {:.2?}",
            a.from.unwrap_or(0),
            a.to,
            a.added,
            a.removed,
            elapsed
        )
    }
}

pub(super) fn run(url: &str, args: &MaterializeArgs) -> CliResult<Exit> {
    let mut opts = queries::base_options(&args.eval)?;
    if args.follow {
        // The evaluation time is always now when following.
        opts.at = chrono::Utc::now();
    }
    let mut table = VisibilityTable::connect(url).map_err(failed)?;
    let (pv, store) = source(args)?;
    let fo = FollowOptions {
        permission: args.permission.clone(),
        subject_type: args.subject_type.clone(),
        opts,
        poll: Duration::from_millis(args.poll_ms.max(1)),
        threads: args.threads.map(|n| n as usize),
    };
    let json = args.eval.json;
    let name = table.name().to_string();
    if args.follow {
        let stop = AtomicBool::new(false);
        let mut started = Instant::now();
        let report = |a: &Applied| {
            println!("{}", line(&name, a, started.elapsed(), json));
            let _ = std::io::stdout().flush();
            started = Instant::now();
        };
        sink::follow(&pv, &mut table, &fo, &stop, report).map_err(failed)?;
        return Ok(Exit::Success);
    }
    let started = Instant::now();
    if store.is_none() {
        // Files loaded in memory have no history: their revisions restart at every run.
        let a = sink::reload(&pv, &mut table, &fo).map_err(failed)?;
        println!("{}", line(&name, &a, started.elapsed(), json));
        return Ok(Exit::Success);
    }
    match sink::catch_up(&pv, &mut table, &fo).map_err(failed)? {
        Some(a) => println!("{}", line(&name, &a, started.elapsed(), json)),
        None => {
            let revision = pv.revision();
            if json {
                println!(
                    "{}",
                    serde_json::json!({"table": name, "revision": revision, "from": revision, "to": revision,
                        "full": false, "rows": 0, "added": 0, "removed": 0, "reason": "",
                        "compute_micros": 0, "write_micros": 0})
                );
            } else {
                println!("`{name}` is current at revision {revision}");
            }
        }
    }
    Ok(Exit::Success)
}
