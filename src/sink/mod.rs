//! A PostgreSQL visibility table kept current: bulk visibility where an application database
//! consumes it (list filtering and row-level security in plain SQL).
//!
//! - [`VisibilityTable`] (this file): `NAME` is a view over the current generation's table
//!   `NAME__gN` (`subject`, `permission`, `object`, `outcome`, indexed bytewise on `(subject,
//!   permission)` and `(object, permission)`, see `rows::indexes`). A full load creates generation `N + 1`, fills it
//!   with binary `COPY`, builds its indexes, points the view at it and drops generation `N`, all
//!   in one transaction: readers see the old rows or the new ones, never a half-loaded table,
//!   and policies that use the view keep working (they depend on the view, which stays).
//! - The state row (`purview_visibility_state`, one row per visibility table) records the
//!   revision the table reflects; every change to the table updates it in the same transaction,
//!   guarded by the revision it expects, so a follower killed at any point and restarted applies
//!   each batch exactly once.
//! - `rows.rs`: the two indexes' DDL, the full load's binary `COPY` stream (subject by subject,
//!   in the subject index's bytewise order, so that index is built from sorted input) and the
//!   grouping of a batch's removed pairs into statements (per subject or object losing many,
//!   else per pair).
//! - [`follow`] (`follow.rs`): catches the table up with a Purview (a store or a PostgreSQL
//!   datastore), by the deltas of the revisions since the state row's, and keeps it current.

mod follow;
mod rows;

pub use follow::{catch_up, follow, reload, Applied, FollowOptions};

use crate::index::IndexData;
use crate::materialize::{DeltaIds, Materialized, Target};
use crate::store::{Obj, Revision, Source};
use crate::Tri;
use futures_util::{pin_mut, SinkExt};
use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

/// A subject (or object) losing at least this many pairs in a batch gets its own statement.
const GROUP_MIN: usize = 64;

/// Why the visibility table could not be loaded or kept current.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("invalid `--into` URL: {0}")]
    Url(String),
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("`{table}` exists in {target} and is not a Purview visibility table ({found}); choose another `table=` name or drop it")]
    Foreign { table: String, target: String, found: String },
    #[error("the visibility table `{table}` holds {holds}, not {wanted}; use another `table=` name")]
    OtherTarget { table: String, holds: String, wanted: String },
    #[error("the visibility table `{table}` changed under this follower (at revision {found}, expected {expected}): is another follower running?")]
    Conflict { table: String, expected: Revision, found: Revision },
    #[error("PostgreSQL failed while {doing}: {reason}")]
    Database { doing: &'static str, reason: String },
    #[error(transparent)]
    Materialize(#[from] crate::materialize::MaterializeError),
    #[error(transparent)]
    Eval(#[from] crate::EvalError),
    #[error("cannot read the data: {0}")]
    Source(String),
}

fn db(doing: &'static str) -> impl Fn(tokio_postgres::Error) -> SinkError {
    move |e| SinkError::Database {
        doing,
        reason: match e.as_db_error() {
            Some(d) => d.message().to_string(),
            None => e.to_string(),
        },
    }
}

/// Runs a future that only talks to tokio-postgres channels on this thread.
fn block<F: Future>(f: F) -> F::Output {
    futures_executor::block_on(f)
}

/// What the state row says about a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableState {
    /// `message#view`.
    pub permission: String,
    /// `user` or `usergroup#member`.
    pub subject_type: String,
    /// The revision the rows reflect.
    pub revision: Revision,
    /// The generation of the table behind the view.
    pub generation: i64,
    /// The time the rows were evaluated at (validity and expiration), as an RFC 3339 string.
    pub evaluated_at: String,
}

/// A visibility table in a PostgreSQL database.
pub struct VisibilityTable {
    client: tokio_postgres::Client,
    _runtime: tokio::runtime::Runtime,
    table: String,
    target: String,
}

/// Splits `postgres://…?table=NAME` into the connection string without `table` and the name.
fn split_url(url: &str) -> Result<(String, String), SinkError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut table = None;
    let mut rest = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        match kv.split_once('=') {
            Some(("table", name)) => table = Some(name.to_string()),
            _ => rest.push(kv),
        }
    }
    let table =
        table.ok_or_else(|| SinkError::Url("name the table: `postgres://HOST/DB?table=NAME`".to_string()))?;
    let valid = table.len() <= 48
        && table.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && table.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(SinkError::Url(format!(
            "`{table}` is not a table name: use lowercase letters, digits and `_` (at most 48)"
        )));
    }
    let base = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    Ok((base, table))
}

/// `host:port/db` of a URL, without credentials.
fn describe(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('?').next().unwrap_or(rest).to_string()
}

const STATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS purview_visibility_state (
    table_name text PRIMARY KEY,
    permission text NOT NULL,
    subject_type text NOT NULL,
    revision bigint NOT NULL,
    generation bigint NOT NULL,
    evaluated_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)";

impl VisibilityTable {
    /// Connects to `postgres://…?table=NAME` and checks that `NAME` is free or is a visibility
    /// table this module made.
    pub fn connect(url: &str) -> Result<VisibilityTable, SinkError> {
        let (base, table) = split_url(url)?;
        let target = describe(&base);
        let mut config: tokio_postgres::Config =
            base.parse().map_err(|e: tokio_postgres::Error| SinkError::Url(e.to_string()))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.application_name("purview-materialize");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("purview-sink")
            .enable_all()
            .build()
            .map_err(|e| SinkError::Connect { target: target.clone(), reason: e.to_string() })?;
        let (client, connection) = rt
            .block_on(config.connect(NoTls))
            .map_err(|e| SinkError::Connect { target: target.clone(), reason: e.to_string() })?;
        rt.spawn(async move {
            let _ = connection.await;
        });
        let vt = VisibilityTable { client, _runtime: rt, table, target };
        block(vt.client.batch_execute(STATE_TABLE)).map_err(db("creating the state table"))?;
        vt.check_free_or_ours()?;
        Ok(vt)
    }

    /// `NAME`.
    pub fn name(&self) -> &str {
        &self.table
    }

    fn check_free_or_ours(&self) -> Result<(), SinkError> {
        let kind: Option<String> = block(self.client.query_opt(
            "SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass($1)",
            &[&self.table],
        ))
        .map_err(db("looking for the table"))?
        .map(|r| r.get(0));
        let Some(kind) = kind else { return Ok(()) };
        let columns: Vec<String> = block(self.client.query(
            "SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&self.table],
        ))
        .map_err(db("looking for the table"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let ours = kind == "v"
            && columns == ["subject text", "permission text", "object text", "outcome text"]
            && self.state()?.is_some();
        if ours {
            return Ok(());
        }
        let what = if kind == "v" { "a view" } else { "a table" };
        Err(SinkError::Foreign {
            table: self.table.clone(),
            target: self.target.clone(),
            found: format!("{what} with columns {}", columns.join(", ")),
        })
    }

    /// The state row, if the table was loaded.
    pub fn state(&self) -> Result<Option<TableState>, SinkError> {
        let row = block(self.client.query_opt(
            "SELECT permission, subject_type, revision, generation, \
             to_char(evaluated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') \
             FROM purview_visibility_state WHERE table_name = $1",
            &[&self.table],
        ))
        .map_err(db("reading the state row"))?;
        Ok(row.map(|r| TableState {
            permission: r.get(0),
            subject_type: r.get(1),
            revision: r.get::<_, i64>(2) as Revision,
            generation: r.get(3),
            evaluated_at: r.get(4),
        }))
    }

    /// Fails when the table holds another permission or subject type.
    pub fn check_target(&self, data: &IndexData, t: &Target) -> Result<Option<TableState>, SinkError> {
        let state = self.state()?;
        if let Some(s) = &state {
            let (p, st) = (t.permission_name(&data.schema), t.subject_name(&data.schema));
            if s.permission != p || s.subject_type != st {
                return Err(SinkError::OtherTarget {
                    table: self.table.clone(),
                    holds: format!("`{}` for `{}`", s.permission, s.subject_type),
                    wanted: format!("`{p}` for `{st}`"),
                });
            }
        }
        Ok(state)
    }

    /// Replaces the table's rows with every pair of `m` (computed on `data`, evaluated at
    /// `evaluated_at`), atomically; returns the number of rows.
    pub fn load(
        &mut self,
        data: &IndexData,
        m: &Materialized,
        evaluated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, SinkError> {
        let state = self.check_target(data, &m.target)?;
        let t = m.target;
        let generation = state.as_ref().map_or(1, |s| s.generation + 1);
        let (name, permission_name, subject_name) =
            (self.table.clone(), t.permission_name(&data.schema), t.subject_name(&data.schema));
        let new = format!("{name}__g{generation}");
        let permission = t.relation_name(&data.schema).to_string();
        let subjects: Vec<String> =
            m.rows.iter().map(|r| data.subject_ref(t.subject(r.subject)).to_string()).collect();
        let ty = t.object_type;
        let objects = rows::Names::new(m.objects.len(), |i, s| {
            let _ = write!(s, "{}", data.object_ref(Obj { ty, id: m.objects.start + i as u32 }));
        });
        let revision = m.revision as i64;
        let at = evaluated_at.to_rfc3339();
        let client = &mut self.client;
        // The subject index's order (bytewise, see `rows::INDEXES`), computed here.
        let order = rows::byte_order(&subjects);
        let (subjects, objects, permission) = (&subjects, &objects, permission.as_str());
        std::thread::scope(|scope| {
            block(async {
                let tx = client.transaction().await.map_err(db("starting the load"))?;
                // One loader at a time per table; a second waits, then sees the first's state.
                tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&name])
                    .await
                    .map_err(db("locking the table"))?;
                tx.batch_execute(&format!(
                    "SET LOCAL statement_timeout = 0; SET LOCAL maintenance_work_mem = '256MB'; \
                     DROP TABLE IF EXISTS {new}; \
                     CREATE TABLE {new} (subject text NOT NULL, permission text NOT NULL, \
                     object text NOT NULL, outcome text NOT NULL)"
                ))
                .await
                .map_err(db("creating the new generation"))?;
                let sink = tx
                    .copy_in::<_, bytes::Bytes>(&format!(
                        "COPY {new} (subject, permission, object, outcome) FROM STDIN (FORMAT binary, FREEZE)"
                    ))
                    .await
                    .map_err(db("copying the pairs"))?;
                pin_mut!(sink);
                // Encoded on another thread while PostgreSQL takes the previous chunks.
                let (chunks, next) = std::sync::mpsc::sync_channel::<bytes::Bytes>(4);
                let encoder = scope.spawn(move || {
                    rows::encode_pairs(m, &order, subjects, objects, permission, 1 << 20, |b| {
                        chunks.send(b.freeze()).map_err(|_| ())
                    })
                });
                let mut sent = Ok(());
                while let Ok(chunk) = next.recv() {
                    sent = sink.as_mut().send(chunk).await;
                    if sent.is_err() {
                        break;
                    }
                }
                drop(next);
                let encoded =
                    encoder.join().map_err(|_| SinkError::Source("the pairs' encoder failed".into()));
                sent.map_err(db("copying the pairs"))?;
                encoded?.map_err(|()| SinkError::Source("the pairs' encoder stopped".into()))?;
                let rows = sink.finish().await.map_err(db("copying the pairs"))?;
                // The subject index first: the rows arrived in its order.
                tx.batch_execute(&format!(
                    "{} ANALYZE {new}; \
                     CREATE OR REPLACE VIEW {name} AS SELECT subject, permission, object, outcome FROM {new}",
                    rows::indexes(&new)
                ))
                .await
                .map_err(db("indexing the new generation"))?;
                if let Some(old) = &state {
                    tx.batch_execute(&format!("DROP TABLE IF EXISTS {name}__g{}", old.generation))
                        .await
                        .map_err(db("dropping the old generation"))?;
                }
                tx.execute(
                    "INSERT INTO purview_visibility_state \
                     (table_name, permission, subject_type, revision, generation, evaluated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6::text::timestamptz) ON CONFLICT (table_name) DO UPDATE SET \
                     permission = $2, subject_type = $3, revision = $4, generation = $5, \
                     evaluated_at = $6::text::timestamptz, updated_at = now()",
                    &[&name, &permission_name, &subject_name, &revision, &generation, &at],
                )
                .await
                .map_err(db("recording the state"))?;
                tx.commit().await.map_err(db("committing the load"))?;
                Ok(rows)
            })
        })
    }

    /// Applies `deltas` (ids of `data`, the later revision), which lead from revision `from` to
    /// `to`, and moves the state row from `from` to `to`, in one transaction. Fails with
    /// [`SinkError::Conflict`] (nothing applied) when the table is not at `from`.
    pub fn apply(
        &mut self,
        data: &IndexData,
        t: &Target,
        deltas: &[DeltaIds],
        (from, to): (Revision, Revision),
        evaluated_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), SinkError> {
        let Some(state) = self.check_target(data, t)? else {
            return Err(SinkError::Conflict { table: self.table.clone(), expected: from, found: 0 });
        };
        let live = format!("{}__g{}", self.table, state.generation);
        let permission = t.relation_name(&data.schema).to_string();
        let subject = |id| data.subject_ref(t.subject(id)).to_string();
        let object = |id| data.object_ref(Obj { ty: t.object_type, id }).to_string();
        let outcome = |o: Tri| if o == Tri::Cond { "conditional" } else { "allowed" };
        let mut new_rows = Vec::new();
        let mut removed = Vec::new();
        for d in deltas {
            if d.change == crate::materialize::Change::Added {
                new_rows.push((object(d.object), subject(d.subject), outcome(d.outcome)));
            } else {
                removed.push((d.subject, d.object, d.outcome));
            }
        }
        // Added rows in the object index's (bytewise) order: consecutive insertions descend to
        // the same or the next leaf page (a subject's new rows all go to one place in the other).
        new_rows
            .sort_unstable_by(|a, b| (a.0.as_bytes(), a.1.as_bytes()).cmp(&(b.0.as_bytes(), b.1.as_bytes())));
        let mut added: [Vec<String>; 2] = Default::default();
        let mut added_outcomes = Vec::with_capacity(new_rows.len());
        for (o, s, c) in new_rows {
            added[0].push(s);
            added[1].push(o);
            added_outcomes.push(c);
        }
        // Removed pairs: one statement per subject or object losing many (see `rows.rs`).
        let groups = rows::group_removals(&removed, GROUP_MIN);
        let by_subject: Vec<(String, Vec<String>, Vec<&str>)> = groups
            .by_subject
            .iter()
            .map(|(s, lost)| {
                (
                    subject(*s),
                    lost.iter().map(|l| object(l.0)).collect(),
                    lost.iter().map(|l| outcome(l.1)).collect(),
                )
            })
            .collect();
        let by_object: Vec<(String, Vec<String>, Vec<&str>)> = groups
            .by_object
            .iter()
            .map(|(o, lost)| {
                (
                    object(*o),
                    lost.iter().map(|l| subject(l.0)).collect(),
                    lost.iter().map(|l| outcome(l.1)).collect(),
                )
            })
            .collect();
        let pairs: (Vec<String>, Vec<String>, Vec<&str>) = (
            groups.pairs.iter().map(|p| subject(p.0)).collect(),
            groups.pairs.iter().map(|p| object(p.1)).collect(),
            groups.pairs.iter().map(|p| outcome(p.2)).collect(),
        );
        let (name, generation) = (self.table.clone(), state.generation);
        let at = evaluated_at.to_rfc3339();
        let client = &mut self.client;
        block(async {
            let tx = client.transaction().await.map_err(db("starting a batch"))?;
            let moved = tx
                .execute(
                    "UPDATE purview_visibility_state SET revision = $3, evaluated_at = $5::text::timestamptz, \
                     updated_at = now() WHERE table_name = $1 AND revision = $2 AND generation = $4",
                    &[&name, &(from as i64), &(to as i64), &generation, &at],
                )
                .await
                .map_err(db("recording the state"))?;
            if moved != 1 {
                let found: Option<i64> = tx
                    .query_opt(
                        "SELECT revision FROM purview_visibility_state WHERE table_name = $1",
                        &[&name],
                    )
                    .await
                    .map_err(db("reading the state row"))?
                    .map(|r| r.get(0));
                return Err(SinkError::Conflict {
                    table: name,
                    expected: from,
                    found: found.unwrap_or(0) as Revision,
                });
            }
            // The deletions are sent together (pipelined), then the insertion.
            let (per_subject, per_object, per_pair) = (
                format!(
                    "DELETE FROM {live} t USING unnest($2::text[], $3::text[]) AS d(o, c) \
                     WHERE t.subject = $1 AND t.permission = $4 AND t.object = d.o AND t.outcome = d.c"
                ),
                format!(
                    "DELETE FROM {live} t USING unnest($2::text[], $3::text[]) AS d(s, c) \
                     WHERE t.object = $1 AND t.permission = $4 AND t.subject = d.s AND t.outcome = d.c"
                ),
                format!(
                    "DELETE FROM {live} t USING unnest($1::text[], $2::text[], $3::text[]) AS d(s, o, c) \
                     WHERE t.subject = d.s AND t.object = d.o AND t.outcome = d.c AND t.permission = $4"
                ),
            );
            let mut statements: Vec<(&str, [&(dyn ToSql + Sync); 4])> = Vec::new();
            for (sql, groups) in [(&per_subject, &by_subject), (&per_object, &by_object)] {
                statements.extend(
                    groups
                        .iter()
                        .map(|g| (sql.as_str(), [&g.0 as _, &g.1 as _, &g.2 as _, &permission as _])),
                );
            }
            if !pairs.0.is_empty() {
                statements.push((per_pair.as_str(), [&pairs.0, &pairs.1, &pairs.2, &permission]));
            }
            futures_util::future::try_join_all(
                statements.iter().map(|(sql, params)| tx.execute(*sql, params)),
            )
            .await
            .map_err(db("deleting removed pairs"))?;
            if !added[0].is_empty() {
                tx.execute(
                    &format!(
                        "INSERT INTO {live} (subject, permission, object, outcome) \
                         SELECT s, $4, o, c FROM unnest($1::text[], $2::text[], $3::text[]) AS d(s, o, c)"
                    ),
                    &[&added[0], &added[1], &added_outcomes, &permission],
                )
                .await
                .map_err(db("inserting added pairs"))?;
            }
            tx.commit().await.map_err(db("committing a batch"))?;
            Ok(())
        })
    }
}
