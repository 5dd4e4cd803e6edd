//! `purview serve`: SpiceDB's v1 gRPC API and the AuthZEN 1.0 HTTP API over a [`Purview`].
//!
//! The server is a thin layer over the same [`Purview`]/[`crate::api::View`] API a Rust host
//! uses: [`grpc`] translates SpiceDB's messages, [`authzen`] AuthZEN's JSON, [`http`] carries
//! AuthZEN, health and metrics. What is the server's own: tokens ([`token`]), preshared-key
//! authentication, limits (load is shed with `RESOURCE_EXHAUSTED` / HTTP 429, never by falling
//! over), deadlines, metrics and logs (keys and context values never appear in them), TLS, and
//! a drain on SIGTERM/SIGINT.

pub mod authzen;
mod convert;
pub mod corked;
mod errors;
mod grpc;
mod http;
mod metrics;
pub mod playground;
mod reflect;
pub mod token;

use crate::api::{compile_schema_as, Purview, RelationMatch, RelationshipFilter};
use crate::eval::{EvalOptions, Limits as EvalLimits};
use crate::schema::Schema;
use crate::store::{Relationship, Revision};
use crate::syntax::formats::detect;
use arc_swap::ArcSwap;
use proto::authzed::api::v1 as pb;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Status};

pub mod proto {
    //! The generated SpiceDB v1 messages and services.
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod google {
        pub mod rpc {
            tonic::include_proto!("google.rpc");
        }
        pub mod api {
            tonic::include_proto!("google.api");
        }
    }
    pub mod authzed {
        pub mod api {
            pub mod v1 {
                tonic::include_proto!("authzed.api.v1");
            }
        }
    }
}

/// Limits on requests; every one refuses with a typed error, never by falling over.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Updates (and, separately, preconditions) in one WriteRelationships.
    pub max_updates_per_write: usize,
    /// Items in one CheckBulkPermissions / AuthZEN evaluations request.
    pub max_bulk_check_items: usize,
    /// Bytes in one request message (gRPC) or body (HTTP).
    pub max_request_bytes: usize,
    /// The largest `optional_limit` a read or lookup may ask for (0: no limit).
    pub max_lookup_limit: u32,
    /// Results one lookup may produce before it fails.
    pub max_lookup_results: usize,
    /// Nested relations one evaluation may follow.
    pub max_depth: u32,
    /// How long a request may take (a client's shorter `grpc-timeout` wins).
    pub deadline: Duration,
    /// Requests in flight at once; more are refused with RESOURCE_EXHAUSTED / HTTP 429.
    pub max_concurrent: usize,
    /// Revisions the change feed keeps for Watch (a watch from an older token is refused).
    pub watch_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_updates_per_write: 1000,
            max_bulk_check_items: 10_000,
            max_request_bytes: 4 << 20,
            max_lookup_limit: 0,
            max_lookup_results: 10_000_000,
            max_depth: 50,
            deadline: Duration::from_secs(30),
            max_concurrent: 1024,
            watch_buffer: 10_000,
        }
    }
}

impl Limits {
    /// A read or lookup's `optional_limit`, checked against `max_lookup_limit`.
    fn check_limit(&self, limit: u32, method: &str) -> Result<Option<usize>, Status> {
        if self.max_lookup_limit > 0 && limit > self.max_lookup_limit {
            return Err(errors::status(
                tonic::Code::InvalidArgument,
                "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT",
                format!("{method}: limit {limit} exceeds the server's maximum of {}", self.max_lookup_limit),
            ));
        }
        Ok((limit > 0).then_some(limit as usize))
    }
}

/// TLS for both ports.
#[derive(Clone, Debug)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How `purview serve` runs.
#[derive(Clone, Debug)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// Preshared keys; a request must send one as `authorization: Bearer KEY`. Empty only with
    /// `insecure_no_auth`.
    pub keys: Vec<String>,
    pub insecure_no_auth: bool,
    pub tls: Option<Tls>,
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8443)),
            keys: Vec::new(),
            insecure_no_auth: false,
            tls: None,
            limits: Limits::default(),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("no preshared key configured: give --preshared-key (or --preshared-key-file / PURVIEW_PRESHARED_KEY), or --insecure-no-auth to serve without authentication")]
    NoKeys,
    #[error("a preshared key must not be empty")]
    EmptyKey,
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("server: {0}")]
    Transport(String),
}

/// What every request handler shares.
pub struct State {
    purview: Purview,
    id: [u8; 16],
    limits: Limits,
    metrics: metrics::Metrics,
    inflight: Arc<Semaphore>,
    revisions: watch::Receiver<Revision>,
    /// The schema's text as written, and the compiled schema it is the text of.
    schema_text: Mutex<(Arc<Schema>, String)>,
    keys: Vec<Vec<u8>>,
    request_ids: AtomicU64,
    /// The latest revision's token, encoded (see [`State::token`]).
    latest_token: ArcSwap<(Revision, String)>,
    shutdown: watch::Receiver<bool>,
    tls: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("revision", &self.purview.revision()).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A gRPC status code's name, for metrics and logs.
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A `grpc-timeout` header value (`100m`, `5S`, …) as a duration.
fn grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl State {
    /// The ZedToken of `revision`: the latest one is kept encoded, since nearly every answer
    /// carries it.
    fn token(&self, revision: Revision) -> String {
        let cached = self.latest_token.load();
        if cached.0 == revision {
            return cached.1.clone();
        }
        let newer = revision > cached.0;
        drop(cached);
        let encoded = token::encode(&self.id, revision);
        if newer {
            self.latest_token.store(Arc::new((revision, encoded.clone())));
        }
        encoded
    }

    fn revision_of(&self, t: &str) -> Result<Revision, Status> {
        token::decode(&self.id, t).map_err(|e| errors::from_token(&e))
    }

    fn eval_options(&self) -> EvalOptions {
        EvalOptions {
            limits: EvalLimits {
                max_depth: self.limits.max_depth,
                max_results: self.limits.max_lookup_results,
            },
            ..EvalOptions::default()
        }
    }

    fn schema_text(&self) -> String {
        let mut cached = lock(&self.schema_text);
        let current = self.purview.schema();
        if !Arc::ptr_eq(&cached.0, &current) {
            // Another node replaced the schema (or this one did): read its text as written.
            if let Some(Ok(text)) = self.purview.shared_schema_text() {
                *cached = (current, text);
            }
        }
        cached.1.clone()
    }

    /// Compiles schema text in SpiceDB's language or Purview's (told apart by their keywords).
    fn compile(&self, text: &str) -> Result<Schema, Status> {
        let format = detect(None, text);
        compile_schema_as(format, "schema", text)
            .map_err(|e| errors::from_schema_change(&crate::api::SchemaChangeError::Schema(e)))
    }

    fn write_schema(&self, text: &str) -> Result<Revision, Status> {
        let format = detect(None, text);
        let mut current = lock(&self.schema_text);
        let revision =
            self.purview.set_schema(format, "schema", text).map_err(|e| errors::from_schema_change(&e))?;
        *current = (self.purview.schema(), text.to_string());
        Ok(revision)
    }

    /// The deadline of a request: ours, or the client's if shorter.
    fn deadline<T>(&self, request: &Request<T>) -> Option<Duration> {
        let client =
            request.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(grpc_timeout);
        Some(client.map_or(self.limits.deadline, |c| c.min(self.limits.deadline)))
    }

    /// Admits, times, logs and counts one request, bounded by `deadline`.
    async fn call_until<T>(
        &self,
        method: &'static str,
        deadline: Option<Duration>,
        f: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let start = Instant::now();
        let result = match self.admit() {
            Err(e) => Err(e),
            Ok(_permit) => match deadline {
                Some(d) => {
                    // Most requests (checks) are answered on their first poll: those need no
                    // timer (setting one up and dropping it is a good part of a check's cost).
                    let mut f = std::pin::pin!(f);
                    match std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await {
                        Poll::Ready(r) => r,
                        Poll::Pending => {
                            let until = tokio::time::Instant::from_std(start) + d;
                            // Boxed: the timer is large, and only a request that waits needs it.
                            Box::pin(tokio::time::timeout_at(until, f)).await.unwrap_or_else(|_| {
                                Err(Status::deadline_exceeded(format!(
                                    "{method} did not finish within {} ms",
                                    d.as_millis()
                                )))
                            })
                        }
                    }
                }
                None => f.await,
            },
        };
        let status = result.as_ref().map_or_else(|s| s.code(), |_| tonic::Code::Ok);
        let took = start.elapsed();
        self.metrics.observe(method, status, took);
        // Request ids number the requests that are logged (a shared counter is not free).
        match &result {
            Ok(_) => {
                if tracing::enabled!(tracing::Level::DEBUG) {
                    let id = self.request_ids.fetch_add(1, Ordering::Relaxed);
                    let code = code_name(status);
                    tracing::debug!(
                        request_id = id,
                        method,
                        code,
                        micros = took.as_micros() as u64,
                        "request"
                    )
                }
            }
            Err(s) => {
                let id = self.request_ids.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    request_id = id,
                    method,
                    code = code_name(status),
                    micros = took.as_micros() as u64,
                    error = s.message(),
                    "request failed"
                )
            }
        }
        result
    }

    /// A slot among the requests in flight, or RESOURCE_EXHAUSTED.
    fn admit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Status> {
        self.inflight.try_acquire().map_err(|_| {
            self.metrics.shed.fetch_add(1, Ordering::Relaxed);
            Status::resource_exhausted(format!(
                "too many requests in flight (the limit is {}); retry with backoff",
                self.limits.max_concurrent
            ))
        })
    }

    /// A slot held by a streaming answer while it is produced (none if all are taken: the
    /// request itself was admitted).
    fn stream_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.inflight.clone().try_acquire_owned().ok()
    }

    /// The view a request's consistency asks for when it is at hand without waiting (the
    /// latest published one), else `None`: then [`State::view`] waits for it. The hot path
    /// (CheckPermission) awaits `view` only then, boxed, so that its own future — copied into
    /// a box on every call by tonic — stays small.
    fn view_now(&self, c: Option<&pb::Consistency>) -> Option<crate::api::View> {
        use pb::consistency::Requirement;
        match c.and_then(|c| c.requirement.as_ref()) {
            None | Some(Requirement::MinimizeLatency(_)) => Some(self.purview.snapshot()),
            Some(Requirement::FullyConsistent(_)) if !self.purview.is_shared() => {
                Some(self.purview.snapshot())
            }
            _ => None,
        }
    }

    /// The view a request's consistency asks for.
    async fn view(&self, c: Option<&pb::Consistency>) -> Result<crate::api::View, Status> {
        use pb::consistency::Requirement;
        match c.and_then(|c| c.requirement.as_ref()) {
            Some(Requirement::FullyConsistent(_)) if self.purview.is_shared() => {
                // Other nodes write too: the latest revision committed anywhere, caught up.
                let purview = self.purview.clone();
                let within = self.limits.deadline;
                match tokio::task::spawn_blocking(move || purview.snapshot_latest(within)).await {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(Status::unavailable(e.to_string())),
                    Err(e) => Err(Status::internal(e.to_string())),
                }
            }
            None | Some(Requirement::MinimizeLatency(_)) | Some(Requirement::FullyConsistent(_)) => {
                // In one process the published view is the latest committed revision.
                Ok(self.purview.snapshot())
            }
            Some(Requirement::AtLeastAsFresh(t)) => {
                let wanted = self.revision_of(&t.token)?;
                let mut revisions = self.revisions.clone();
                loop {
                    let view = self.purview.snapshot();
                    if view.revision() >= wanted {
                        return Ok(view);
                    }
                    // Bounded by the request's deadline (see `call`).
                    if revisions.changed().await.is_err() {
                        return Err(Status::unavailable("the server is shutting down"));
                    }
                }
            }
            Some(Requirement::AtExactSnapshot(t)) => {
                let wanted = self.revision_of(&t.token)?;
                self.reach(wanted).await?;
                let purview = self.purview.clone();
                let r = tokio::task::spawn_blocking(move || purview.view_at(wanted)).await;
                match r {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(errors::from_eval(&e)),
                    Err(e) => Err(Status::internal(e.to_string())),
                }
            }
        }
    }

    /// On a node sharing its database with other nodes, a token or cursor from another node
    /// may name a revision this node has not caught up with yet: catch up with the database's
    /// latest revision first (bounded by the deadline). Elsewhere a revision past the current
    /// one was never written, and the caller says so.
    async fn reach(&self, wanted: Revision) -> Result<(), Status> {
        if !self.purview.is_shared() || self.purview.revision() >= wanted {
            return Ok(());
        }
        let purview = self.purview.clone();
        let within = self.limits.deadline;
        match tokio::task::spawn_blocking(move || purview.snapshot_latest(within)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Status::unavailable(e.to_string())),
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }

    /// The view and start position of a paged read: the cursor's revision (if still readable)
    /// and position, else the consistency's view from the start.
    async fn view_or_cursor(
        &self,
        c: Option<&pb::Consistency>,
        cursor: Option<&pb::Cursor>,
    ) -> Result<(crate::api::View, usize), Status> {
        let Some(cursor) = cursor.filter(|c| !c.token.is_empty()) else {
            return Ok((self.view(c).await?, 0));
        };
        let (revision, position) = token::decode_cursor(&self.id, &cursor.token).map_err(|e| {
            errors::status(tonic::Code::InvalidArgument, "ERROR_REASON_INVALID_CURSOR", e.to_string())
        })?;
        let position: usize = position.parse().map_err(|_| {
            errors::status(tonic::Code::InvalidArgument, "ERROR_REASON_INVALID_CURSOR", "malformed cursor")
        })?;
        self.reach(revision).await?;
        let purview = self.purview.clone();
        let view = tokio::task::spawn_blocking(move || purview.view_at(revision))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| errors::from_eval(&e))?;
        Ok((view, position))
    }

    /// Resolves once the server begins to shut down.
    async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether `authorization` carries one of the keys (constant time per key).
    fn authorized(&self, header: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        if self.keys.is_empty() {
            return true;
        }
        let Some(given) =
            header.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        else {
            return false;
        };
        let given = given.trim().as_bytes();
        self.keys.iter().fold(false, |ok, k| ok | bool::from(k.as_slice().ct_eq(given)))
    }

    /// Prometheus text: the request metrics and the state of the data.
    fn metrics_text(&self) -> String {
        let view = self.purview.snapshot();
        let (relationships, bytes) = match &view {
            crate::api::View::Index(i) => (i.len() as f64, i.heap_bytes() as f64),
            crate::api::View::Reference(s) => (s.data.len() as f64, 0.0),
        };
        self.metrics.render(&[
            ("purview_revision", "The latest revision readers see.", view.revision() as f64),
            ("purview_relationships", "Relationships stored at that revision.", relationships),
            ("purview_index_bytes", "Heap memory of the index at that revision.", bytes),
            (
                "purview_requests_in_flight",
                "Requests being handled.",
                (self.limits.max_concurrent - self.inflight.available_permits()) as f64,
            ),
        ])
    }
}

/// Whether a Watch filter matches a changed relationship.
fn watch_matches(f: &RelationshipFilter, r: &Relationship) -> bool {
    if f.resource_type.as_ref().is_some_and(|t| *t != r.resource.ty)
        || f.resource_id.as_ref().is_some_and(|i| *i != r.resource.id)
        || f.resource_id_prefix.as_ref().is_some_and(|p| !r.resource.id.starts_with(p.as_str()))
        || f.relation.as_ref().is_some_and(|x| *x != r.relation)
    {
        return false;
    }
    match &f.subject {
        None => true,
        Some(s) => {
            s.ty == r.subject.ty
                && s.id.as_ref().is_none_or(|i| *i == r.subject.id)
                && match &s.relation {
                    None => true,
                    Some(RelationMatch::None) => r.subject.relation.is_none(),
                    Some(RelationMatch::Named(n)) => r.subject.relation.as_deref() == Some(n.as_str()),
                }
        }
    }
}

/// A server bound to its ports, not yet serving.
pub struct Bound {
    state: Arc<State>,
    grpc: tokio::net::TcpListener,
    http: tokio::net::TcpListener,
    config: Config,
    shutdown_tx: watch::Sender<bool>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound").field("grpc", &self.grpc_addr()).field("http", &self.http_addr()).finish()
    }
}

impl Bound {
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc.local_addr().ok()
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.local_addr().ok()
    }

    /// Serves until `shutdown` resolves, then stops taking requests, lets those in flight
    /// finish, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let Bound { state, grpc, http, config, shutdown_tx } = self;
        let tx = shutdown_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: draining requests in flight");
            let _ = tx.send(true);
        });
        let grpc_task = tokio::spawn(http::serve_grpc(state.clone(), grpc, config.clone()));
        let http_task = tokio::spawn(http::serve_http(state.clone(), http, config.clone()));
        let (g, h) = tokio::join!(grpc_task, http_task);
        drop(shutdown_tx);
        g.map_err(|e| ServeError::Transport(e.to_string()))??;
        h.map_err(|e| ServeError::Transport(e.to_string()))??;
        Ok(())
    }
}

/// Binds the ports for serving `purview` (whose schema text, as written, is `schema_text`).
pub async fn bind(purview: Purview, schema_text: String, config: Config) -> Result<Bound, ServeError> {
    let initial_schema = purview.schema();
    if config.keys.iter().any(|k| k.trim().is_empty()) {
        return Err(ServeError::EmptyKey);
    }
    if config.keys.is_empty() && !config.insecure_no_auth {
        return Err(ServeError::NoKeys);
    }
    if let Some(tls) = &config.tls {
        // Fail at start, not on the first connection.
        http::tls_config(tls)?;
    }
    let grpc = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .map_err(|source| ServeError::Bind { addr: config.grpc_addr, source })?;
    let http = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| ServeError::Bind { addr: config.http_addr, source })?;
    purview.keep_changes(config.limits.watch_buffer);
    let (rev_tx, revisions) = watch::channel(purview.revision());
    purview.on_publish(move |r| {
        rev_tx.send_if_modified(|current| {
            if r > *current {
                *current = r;
                true
            } else {
                false
            }
        });
    });
    let (shutdown_tx, shutdown) = watch::channel(false);
    let id = purview.id();
    let latest_token = ArcSwap::from_pointee((purview.revision(), token::encode(&id, purview.revision())));
    let state = Arc::new(State {
        id,
        latest_token,
        purview,
        metrics: metrics::Metrics::default(),
        inflight: Arc::new(Semaphore::new(config.limits.max_concurrent)),
        revisions,
        schema_text: Mutex::new((initial_schema, schema_text)),
        keys: config.keys.iter().map(|k| k.trim().as_bytes().to_vec()).collect(),
        request_ids: AtomicU64::new(0),
        limits: config.limits.clone(),
        shutdown,
        tls: config.tls.is_some(),
    });
    Ok(Bound { state, grpc, http, config, shutdown_tx })
}
