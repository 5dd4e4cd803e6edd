//! Catching a visibility table up with a Purview, and keeping it current.
//!
//! One step ([`catch_up`]): read the state row (revision `R`, evaluated at `T`); if the table is
//! missing, or the changes after `R` are no longer listed (outside the history window, a schema
//! change, an import too large to describe), or a relationship started or expired between `T`
//! and now, load the table in full; otherwise compute the deltas from `R` to the head with the
//! materialize delta machinery (the changed relationships of every revision since `R` as one
//! batch) and apply them and the new revision in one transaction. A step interrupted at any
//! point leaves the table and its state row as they were, so the next step (after a restart)
//! does the same work again: nothing lost, nothing applied twice.
//!
//! [`follow`] repeats steps: woken by each published revision (`Purview::on_publish`; on a
//! shared datastore, after `Purview::follow` brings this process up to other nodes' commits),
//! by the next time a relationship starts or expires, or by a poll.

use super::{SinkError, VisibilityTable};
use crate::api::{Purview, UpdateKind, View};
use crate::eval::EvalOptions;
use crate::index::IndexData;
use crate::materialize::{deltas, Job, Partition, Strategy, Target};
use crate::store::{Revision, WriteOp};
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How to follow.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// `message#view`.
    pub permission: String,
    /// `user` or `usergroup#member`.
    pub subject_type: String,
    /// Condition context (the evaluation time is always now).
    pub opts: EvalOptions,
    /// Look for new revisions at least this often.
    pub poll: Duration,
    /// Worker threads of full loads (default: one per core).
    pub threads: Option<usize>,
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// The revision the table reflected before (none: it did not exist).
    pub from: Option<Revision>,
    /// The revision it reflects now.
    pub to: Revision,
    /// `true` for a full load, `false` for deltas.
    pub full: bool,
    /// Why a full load (empty for deltas).
    pub reason: String,
    /// Rows written in a full load; pairs added and removed by deltas.
    pub rows: u64,
    pub added: u64,
    pub removed: u64,
    /// Microseconds spent computing the pairs (a full load) or the deltas.
    pub compute_micros: u64,
    /// Microseconds spent writing them to PostgreSQL (committed).
    pub write_micros: u64,
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros().try_into().unwrap_or(u64::MAX)
}

fn index(view: View) -> Result<Arc<IndexData>, SinkError> {
    match view {
        View::Index(d) => Ok(d),
        _ => Err(SinkError::Materialize(crate::materialize::MaterializeError::NeedsIndex)),
    }
}

/// Loads the table in full from `head`, evaluated at `now`.
fn full(
    table: &mut VisibilityTable,
    head: &IndexData,
    target: Target,
    fo: &FollowOptions,
    now: DateTime<Utc>,
    from: Option<Revision>,
    reason: String,
) -> Result<Applied, SinkError> {
    let mut opts = fo.opts.clone();
    opts.at = now;
    let mut job = Job::new(head, target).options(opts);
    if let Some(n) = fo.threads {
        job = job.threads(n);
    }
    let started = Instant::now();
    let m = job.compute()?;
    let compute_micros = micros(started);
    let started = Instant::now();
    let rows = table.load(head, &m, now)?;
    Ok(Applied {
        from,
        to: head.revision,
        full: true,
        reason,
        rows,
        added: 0,
        removed: 0,
        compute_micros,
        write_micros: micros(started),
    })
}

/// Loads the table in full from `pv`'s latest revision, whatever its state row says (for data
/// that has no history, such as files loaded in memory, whose revisions restart at every run).
pub fn reload(pv: &Purview, table: &mut VisibilityTable, fo: &FollowOptions) -> Result<Applied, SinkError> {
    let now = Utc::now();
    let head = index(pv.snapshot())?;
    let target = Target::resolve(&head.schema, &fo.permission, &fo.subject_type)?;
    let from = table.check_target(&head, &target)?.map(|s| s.revision);
    full(table, &head, target, fo, now, from, "a full load of data without history".into())
}

/// The changed relationships of the revisions after `from` up to `to`, as one batch; `None`
/// when they cannot be listed.
fn batch(pv: &Purview, from: Revision, to: Revision) -> Result<Vec<WriteOp>, String> {
    let sets = pv.changes_after(from).map_err(|e| e.to_string())?;
    let mut ops = Vec::new();
    for set in sets.iter().filter(|s| s.revision <= to) {
        if set.schema_changed {
            return Err(format!("revision {} changed the schema", set.revision));
        }
        if set.truncated {
            return Err(format!("revision {} was an import too large to list", set.revision));
        }
        ops.extend(set.updates.iter().map(|u| match u.kind {
            UpdateKind::Touch => WriteOp::Touch(u.relationship.clone()),
            UpdateKind::Delete => WriteOp::Delete(u.relationship.clone()),
        }));
    }
    Ok(ops)
}

/// Brings the table up to `pv`'s latest revision (one step, see the module docs); `None` when it
/// was current already.
pub fn catch_up(
    pv: &Purview,
    table: &mut VisibilityTable,
    fo: &FollowOptions,
) -> Result<Option<Applied>, SinkError> {
    pv.keep_changes(4096);
    let now = Utc::now();
    let head = index(pv.snapshot())?;
    let target = Target::resolve(&head.schema, &fo.permission, &fo.subject_type)?;
    let Some(state) = table.check_target(&head, &target)? else {
        return full(table, &head, target, fo, now, None, "the table did not exist".into()).map(Some);
    };
    let evaluated = DateTime::parse_from_rfc3339(&state.evaluated_at)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| SinkError::Source(format!("the state row's evaluation time: {e}")))?;
    let from = state.revision;
    if from > head.revision {
        return full(
            table,
            &head,
            target,
            fo,
            now,
            Some(from),
            format!("the table was at revision {from}, ahead of the data's {}", head.revision),
        )
        .map(Some);
    }
    let before = match pv.view_at(from).map_err(|e| e.to_string()).and_then(|v| match v {
        View::Index(d) => Ok(d),
        _ => Err("not an index".to_string()),
    }) {
        Ok(d) => d,
        Err(why) => return full(table, &head, target, fo, now, Some(from), why).map(Some),
    };
    if [&before, &head].iter().any(|d| d.time_bound_between(evaluated, now)) {
        let why = "a relationship started or expired since the last evaluation".to_string();
        return full(table, &head, target, fo, now, Some(from), why).map(Some);
    }
    if from == head.revision {
        return Ok(None);
    }
    let ops = match batch(pv, from, head.revision) {
        Ok(ops) => ops,
        Err(why) => return full(table, &head, target, fo, now, Some(from), why).map(Some),
    };
    let mut opts = fo.opts.clone();
    opts.at = now;
    let started = Instant::now();
    let found = deltas(&before, &head, &ops, &target, &opts, Strategy::Auto, Partition::default())?;
    let compute_micros = micros(started);
    let added = found.iter().filter(|d| d.change == crate::materialize::Change::Added).count() as u64;
    let started = Instant::now();
    table.apply(&head, &target, &found, (from, head.revision), now)?;
    Ok(Some(Applied {
        from: Some(from),
        to: head.revision,
        full: false,
        reason: String::new(),
        rows: 0,
        added,
        removed: found.len() as u64 - added,
        compute_micros,
        write_micros: micros(started),
    }))
}

/// Keeps the table current until `stop` is set, reporting each step to `report`. Errors of the
/// database end the loop (a supervisor restarts the follower, which resumes from the state row).
pub fn follow(
    pv: &Purview,
    table: &mut VisibilityTable,
    fo: &FollowOptions,
    stop: &AtomicBool,
    mut report: impl FnMut(&Applied),
) -> Result<(), SinkError> {
    pv.keep_changes(4096);
    let wake = Arc::new((Mutex::new(false), Condvar::new()));
    {
        let wake = wake.clone();
        pv.on_publish(move |_| {
            let (m, c) = &*wake;
            if let Ok(mut w) = m.lock() {
                *w = true;
                c.notify_all();
            }
        });
    }
    while !stop.load(Ordering::Relaxed) {
        pv.follow().map_err(|e| SinkError::Source(e.to_string()))?;
        if let Some(applied) = catch_up(pv, table, fo)? {
            report(&applied);
        }
        // Sleep until a revision is published, the next time bound, or the poll interval.
        let mut wait = fo.poll;
        if let View::Index(d) = pv.snapshot() {
            if let Some(t) = d.next_time_bound(Utc::now()) {
                let until = (t - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(1);
                wait = wait.min(until);
            }
        }
        let (m, c) = &*wake;
        let Ok(mut woken) = m.lock() else { continue };
        if !*woken {
            woken = match c.wait_timeout(woken, wait) {
                Ok((w, _)) => w,
                Err(p) => p.into_inner().0,
            };
        }
        *woken = false;
    }
    Ok(())
}
