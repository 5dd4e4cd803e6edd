//! The SpiceDB v1 gRPC services (Permissions, Schema, Watch) over the shared [`State`].
//!
//! Every method is a thin translation: messages to Purview's types, the same
//! [`crate::Purview`]/[`crate::api::View`] calls a Rust host makes, the answer back as messages.
//! Quick questions (checks) are answered on the async worker; writes, lookups, reads and
//! schema changes run on the blocking pool, and streamed answers go through a bounded channel,
//! so a slow reader holds back only its own producer and a client that goes away stops it.

use super::convert::{self, object, subject};
use super::errors::{self, from_eval, from_guarded, from_write, invalid, status};
use super::proto::authzed::api::v1 as pb;
use super::State;
use crate::api::{Page, Precondition, SubjectFilter, UpdateKind};
use crate::eval::{Decision, EvalOptions, Tri};
use crate::store::{Revision, WriteOp};
use pb::permissions_service_server::PermissionsService;
use pb::schema_service_server::SchemaService;
use pb::watch_service_server::WatchService;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status, Streaming};

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The gRPC services: a handle on the server's state.
#[derive(Clone, Debug)]
pub struct Grpc(pub Arc<State>);

/// How many chunks of streamed messages may wait for a slow reader before the producer waits.
const STREAM_BUFFER: usize = 4;
/// Watch responses that may wait for a slow subscriber.
const WATCH_BUFFER: usize = 64;
/// Relationships per message of an export.
const EXPORT_CHUNK: usize = 1000;
/// Bulk checks of at most this many items are answered on the async worker (microseconds);
/// larger ones go to the blocking pool.
const INLINE_CHECKS: usize = 128;

fn opts_with(state: &State, context: Option<&prost_types::Struct>) -> EvalOptions {
    let mut opts = state.eval_options();
    if let Some(c) = context {
        opts.context = convert::json_map(c);
    }
    opts
}

fn permissionship(d: &Decision) -> (i32, Option<pb::PartialCaveatInfo>) {
    use pb::check_permission_response::Permissionship as P;
    match d {
        Decision::Allowed => (P::HasPermission as i32, None),
        Decision::Denied => (P::NoPermission as i32, None),
        Decision::Conditional { missing } => (
            P::ConditionalPermission as i32,
            Some(pb::PartialCaveatInfo { missing_required_context: missing.clone() }),
        ),
    }
}

fn lookup_permissionship(t: Tri) -> i32 {
    match t {
        Tri::Cond => pb::LookupPermissionship::ConditionalPermission as i32,
        _ => pb::LookupPermissionship::HasPermission as i32,
    }
}

/// A join error of a blocking task as a status (the task panicked or was cancelled).
fn joined<T>(r: Result<Result<T, Status>, tokio::task::JoinError>) -> Result<T, Status> {
    r.unwrap_or_else(|e| Err(Status::internal(format!("the request failed: {e}"))))
}

impl Grpc {
    fn token(&self, revision: Revision) -> Option<pb::ZedToken> {
        Some(pb::ZedToken { token: self.0.token(revision) })
    }

    /// Runs `f` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&State) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let state = self.0.clone();
        joined(tokio::task::spawn_blocking(move || f(&state)).await)
    }

    /// Streams what `produce` sends, produced on the blocking pool; stops when the client goes,
    /// or when it stops reading for longer than `deadline` (a long stream read steadily is not
    /// cut). A stream cut short for any reason ends with an error status, never as if it were
    /// complete.
    fn stream<T: Send + 'static>(
        &self,
        deadline: Option<std::time::Duration>,
        produce: impl FnOnce(&State, &Sink<T>) -> Result<(), Status> + Send + 'static,
    ) -> Out<T> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let state = self.0.clone();
        let permit = state.stream_permit();
        let outcome: Arc<std::sync::Mutex<Outcome>> = Arc::default();
        let finished = outcome.clone();
        let stall = deadline.unwrap_or(state.limits.deadline);
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let sink = Sink { tx, stall, handle, buffer: std::cell::RefCell::new(Vec::new()) };
            let result = produce(&state, &sink).and_then(|()| sink.flush());
            let mut outcome = finished.lock().unwrap_or_else(|p| p.into_inner());
            *outcome = match result {
                Ok(()) => Outcome::Done,
                // Sent after what the reader has not read yet (see `Guarded`).
                Err(e) => Outcome::Failed(e),
            };
        });
        Box::pin(Guarded {
            rx: ReceiverStream::new(rx),
            pending: Vec::new().into_iter(),
            outcome,
            ended: false,
        })
    }
}

/// Messages handed from a producer to its stream at once: one channel operation (and one
/// wake-up) per chunk rather than per message.
const SINK_CHUNK: usize = 128;

/// The producing end of a streamed answer.
pub(crate) struct Sink<T> {
    tx: mpsc::Sender<Vec<T>>,
    /// How long one chunk may wait for the reader.
    stall: std::time::Duration,
    handle: tokio::runtime::Handle,
    buffer: std::cell::RefCell<Vec<T>>,
}

impl<T> Sink<T> {
    /// Queues one message; `Err` when the client went away or reads too slowly.
    fn send(&self, item: T) -> Result<(), Status> {
        let full = {
            let mut b = self.buffer.borrow_mut();
            b.push(item);
            b.len() >= SINK_CHUNK
        };
        if full {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Hands the queued messages to the stream.
    fn flush(&self) -> Result<(), Status> {
        use mpsc::error::TrySendError;
        let chunk = std::mem::take(&mut *self.buffer.borrow_mut());
        if chunk.is_empty() {
            return Ok(());
        }
        match self.tx.try_send(chunk) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(_)) => Err(Status::cancelled("the client went away")),
            Err(TrySendError::Full(chunk)) => {
                match self.handle.block_on(tokio::time::timeout(self.stall, self.tx.send(chunk))) {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(Status::cancelled("the client went away")),
                    Err(_) => Err(Status::deadline_exceeded(
                        "the client stopped reading the stream for longer than the deadline",
                    )),
                }
            }
        }
    }
}

/// How the producer of a streamed answer ended.
#[derive(Default)]
enum Outcome {
    /// Still producing, or it panicked.
    #[default]
    Running,
    Done,
    Failed(Status),
}

/// A streamed answer that ends with the producer's error, or an error if it never finished.
struct Guarded<T> {
    rx: ReceiverStream<Vec<T>>,
    pending: std::vec::IntoIter<T>,
    outcome: Arc<std::sync::Mutex<Outcome>>,
    ended: bool,
}

impl<T> Unpin for Guarded<T> {}

impl<T> Stream for Guarded<T> {
    type Item = Result<T, Status>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        loop {
            if let Some(item) = self.pending.next() {
                return Poll::Ready(Some(Ok(item)));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut self.rx).poll_next(cx) {
                Poll::Ready(Some(chunk)) => self.pending = chunk.into_iter(),
                Poll::Ready(None) => {
                    self.ended = true;
                    let outcome =
                        std::mem::take(&mut *self.outcome.lock().unwrap_or_else(|p| p.into_inner()));
                    return match outcome {
                        Outcome::Done => Poll::Ready(None),
                        Outcome::Failed(e) => Poll::Ready(Some(Err(e))),
                        Outcome::Running => Poll::Ready(Some(Err(Status::aborted(
                            "the answer was cut short; retry from the last cursor",
                        )))),
                    };
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// For a conditional lookup result, the context it lacks (a lookup knows only that a result is
/// conditional: its check names the missing parameters). Rare, so asked per result.
fn caveat_info(
    view: &crate::api::View,
    outcome: Tri,
    object: &crate::store::ObjectRef,
    permission: &str,
    subject: &crate::store::SubjectRef,
    opts: &EvalOptions,
) -> Option<pb::PartialCaveatInfo> {
    (outcome == Tri::Cond).then(|| {
        let missing = match view.check(object, permission, subject, opts) {
            Ok(Decision::Conditional { missing }) => missing,
            _ => Vec::new(),
        };
        pb::PartialCaveatInfo { missing_required_context: missing }
    })
}

/// The subject of a check: a wildcard is not one (as in SpiceDB).
fn checked_subject(s: Option<&pb::SubjectReference>) -> Result<crate::store::SubjectRef, Status> {
    wildcard_refused(subject(s)?)
}

fn wildcard_refused(s: crate::store::SubjectRef) -> Result<crate::store::SubjectRef, Status> {
    if s.id == "*" {
        return Err(invalid("cannot perform check on wildcard subject"));
    }
    Ok(s)
}

fn preconditions(ps: &[pb::Precondition]) -> Result<Vec<Precondition>, Status> {
    use pb::precondition::Operation;
    ps.iter()
        .map(|p| {
            let must_exist = match Operation::try_from(p.operation) {
                Ok(Operation::MustMatch) => true,
                Ok(Operation::MustNotMatch) => false,
                _ => return Err(invalid("a precondition needs an operation (MUST_MATCH or MUST_NOT_MATCH)")),
            };
            Ok(Precondition { must_exist, filter: convert::filter(p.filter.as_ref(), true)? })
        })
        .collect()
}

#[tonic::async_trait]
impl PermissionsService for Grpc {
    type ReadRelationshipsStream = Out<pb::ReadRelationshipsResponse>;
    type LookupResourcesStream = Out<pb::LookupResourcesResponse>;
    type LookupSubjectsStream = Out<pb::LookupSubjectsResponse>;
    type ExportBulkRelationshipsStream = Out<pb::ExportBulkRelationshipsResponse>;

    async fn read_relationships(
        &self,
        request: Request<pb::ReadRelationshipsRequest>,
    ) -> Result<Response<Self::ReadRelationshipsStream>, Status> {
        let state = self.0.clone();
        let deadline = state.deadline(&request);
        state
            .call_until("ReadRelationships", deadline, async {
                let r = request.get_ref();
                let filter = convert::filter(r.relationship_filter.as_ref(), true)?;
                let limit = state.limits.check_limit(r.optional_limit, "ReadRelationships")?;
                let (view, skip) =
                    state.view_or_cursor(r.consistency.as_ref(), r.optional_cursor.as_ref()).await?;
                // Validate the filter before the stream starts.
                view.read_relationships(&filter, 0, Some(0)).map_err(|e| from_eval(&e))?;
                let out = self.stream(deadline, move |state, tx| {
                    let prefix = super::token::cursor_prefix(&state.id, view.revision());
                    let token = state.token(view.revision());
                    let mut position = skip;
                    let mut left = limit.unwrap_or(usize::MAX);
                    let now = chrono::Utc::now();
                    view.scan_relationships(&filter, skip, |rel| {
                        if left == 0 {
                            return std::ops::ControlFlow::Break(());
                        }
                        position += 1;
                        // Expired relationships are gone for SpiceDB's clients.
                        if rel.expires_at.is_some_and(|t| t <= now) {
                            return std::ops::ControlFlow::Continue(());
                        }
                        left -= 1;
                        let message = pb::ReadRelationshipsResponse {
                            read_at: Some(pb::ZedToken { token: token.clone() }),
                            relationship: Some(convert::to_relationship(&rel)),
                            after_result_cursor: Some(pb::Cursor {
                                token: super::token::cursor_at(&prefix, &position.to_string()),
                            }),
                        };
                        match tx.send(message) {
                            Ok(()) => std::ops::ControlFlow::Continue(()),
                            Err(_) => std::ops::ControlFlow::Break(()),
                        }
                    })
                    .map_err(|e| from_eval(&e))
                });
                Ok(Response::new(out))
            })
            .await
    }

    async fn write_relationships(
        &self,
        request: Request<pb::WriteRelationshipsRequest>,
    ) -> Result<Response<pb::WriteRelationshipsResponse>, Status> {
        let state = self.0.clone();
        state
            .call_until("WriteRelationships", state.deadline(&request), async {
                let r = request.into_inner();
                let max = state.limits.max_updates_per_write;
                if r.updates.len() > max {
                    return Err(status(
                        Code::InvalidArgument,
                        "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST",
                        format!("update count of {} is greater than maximum allowed of {max}", r.updates.len()),
                    ));
                }
                if r.optional_preconditions.len() > max {
                    return Err(status(
                        Code::InvalidArgument,
                        "ERROR_REASON_TOO_MANY_PRECONDITIONS_IN_REQUEST",
                        format!("precondition count of {} is greater than maximum allowed of {max}", r.optional_preconditions.len()),
                    ));
                }
                let mut ops = Vec::with_capacity(r.updates.len());
                let mut seen = std::collections::HashSet::with_capacity(r.updates.len());
                for u in &r.updates {
                    use pb::relationship_update::Operation;
                    let rel = convert::relationship(u.relationship.as_ref())?;
                    let key = (rel.resource.clone(), rel.relation.clone(), rel.subject.clone());
                    if !seen.insert(key) {
                        return Err(status(
                            Code::InvalidArgument,
                            "ERROR_REASON_UPDATES_ON_SAME_RELATIONSHIP",
                            format!("found more than one update with relationship `{}#{}@{}` in this request; a relationship can only be specified in an update once per overall WriteRelationships request", rel.resource, rel.relation, rel.subject),
                        ));
                    }
                    ops.push(match Operation::try_from(u.operation) {
                        Ok(Operation::Create) => WriteOp::Create(rel),
                        Ok(Operation::Touch) => WriteOp::Touch(rel),
                        Ok(Operation::Delete) => WriteOp::Delete(rel),
                        _ => return Err(invalid("an update needs an operation (CREATE, TOUCH or DELETE)")),
                    });
                }
                let pre = preconditions(&r.optional_preconditions)?;
                let revision = self
                    .blocking(move |state| state.purview.write_if(&pre, &ops).map_err(|e| from_guarded(&e)))
                    .await?;
                Ok(Response::new(pb::WriteRelationshipsResponse { written_at: self.token(revision) }))
            })
            .await
    }

    async fn delete_relationships(
        &self,
        request: Request<pb::DeleteRelationshipsRequest>,
    ) -> Result<Response<pb::DeleteRelationshipsResponse>, Status> {
        let state = self.0.clone();
        state
            .call_until("DeleteRelationships", state.deadline(&request), async {
                let r = request.into_inner();
                let filter = convert::filter(r.relationship_filter.as_ref(), true)?;
                let pre = preconditions(&r.optional_preconditions)?;
                let limit = (r.optional_limit > 0).then_some(r.optional_limit as usize);
                let partial = r.optional_allow_partial_deletions;
                let deleted = self
                    .blocking(move |state| {
                        state
                            .purview
                            .delete_where(&filter, &pre, limit, partial)
                            .map_err(|e| from_guarded(&e))
                    })
                    .await?;
                use pb::delete_relationships_response::DeletionProgress;
                let progress =
                    if deleted.partial { DeletionProgress::Partial } else { DeletionProgress::Complete };
                Ok(Response::new(pb::DeleteRelationshipsResponse {
                    deleted_at: self.token(deleted.revision),
                    deletion_progress: progress as i32,
                    relationships_deleted_count: deleted.count as u64,
                }))
            })
            .await
    }

    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Result<Response<pb::CheckPermissionResponse>, Status> {
        let state = &self.0;
        let deadline = state.deadline(&request);
        state
            .call_until("CheckPermission", deadline, async move {
                // The message's strings become the check's names (no copies: this is the hot path).
                let r = request.into_inner();
                let o = convert::object_owned(r.resource, "resource")?;
                let s = wildcard_refused(convert::subject_owned(r.subject)?)?;
                if r.permission.is_empty() {
                    return Err(invalid("missing permission"));
                }
                let view = match state.view_now(r.consistency.as_ref()) {
                    Some(view) => view,
                    None => Box::pin(state.view(r.consistency.as_ref())).await?,
                };
                let opts = opts_with(state, r.context.as_ref());
                let d = view.check(&o, &r.permission, &s, &opts).map_err(|e| from_eval(&e))?;
                let (permissionship, partial_caveat_info) = permissionship(&d);
                Ok(Response::new(pb::CheckPermissionResponse {
                    checked_at: self.token(view.revision()),
                    permissionship,
                    partial_caveat_info,
                    debug_trace: None,
                    optional_expires_at: None,
                }))
            })
            .await
    }

    async fn check_bulk_permissions(
        &self,
        request: Request<pb::CheckBulkPermissionsRequest>,
    ) -> Result<Response<pb::CheckBulkPermissionsResponse>, Status> {
        let state = self.0.clone();
        state
            .call_until("CheckBulkPermissions", state.deadline(&request), async {
                let r = request.into_inner();
                let max = state.limits.max_bulk_check_items;
                if r.items.len() > max {
                    return Err(status(
                        Code::InvalidArgument,
                        "ERROR_REASON_TOO_MANY_CHECKS_IN_REQUEST",
                        format!("check count of {} is greater than maximum allowed of {max}", r.items.len()),
                    ));
                }
                let view = state.view(r.consistency.as_ref()).await?;
                let revision = view.revision();
                let small = r.items.len() <= INLINE_CHECKS;
                let answer = move |state: &State| {
                    use rayon::prelude::*;
                    // Spread over the cores (answers stay in request order).
                    let pairs = r
                        .items
                        .into_par_iter()
                        .with_min_len(16)
                        .map(|item| {
                            let answer = (|| {
                                let o = object(item.resource.as_ref(), "resource")?;
                                let s = checked_subject(item.subject.as_ref())?;
                                let opts = opts_with(state, item.context.as_ref());
                                view.check(&o, &item.permission, &s, &opts).map_err(|e| from_eval(&e))
                            })();
                            let response = match answer {
                                Ok(d) => {
                                    let (permissionship, partial_caveat_info) = permissionship(&d);
                                    pb::check_bulk_permissions_pair::Response::Item(
                                        pb::CheckBulkPermissionsResponseItem {
                                            permissionship,
                                            partial_caveat_info,
                                            debug_trace: None,
                                        },
                                    )
                                }
                                Err(s) => pb::check_bulk_permissions_pair::Response::Error(
                                    super::proto::google::rpc::Status {
                                        code: s.code() as i32,
                                        message: s.message().to_string(),
                                        details: Vec::new(),
                                    },
                                ),
                            };
                            pb::CheckBulkPermissionsPair { request: Some(item), response: Some(response) }
                        })
                        .collect::<Vec<_>>();
                    Ok(pairs)
                };
                // A few items are answered here; many go to the blocking pool.
                let pairs = if small { answer(&state)? } else { self.blocking(answer).await? };
                Ok(Response::new(pb::CheckBulkPermissionsResponse {
                    checked_at: self.token(revision),
                    pairs,
                }))
            })
            .await
    }

    async fn expand_permission_tree(
        &self,
        request: Request<pb::ExpandPermissionTreeRequest>,
    ) -> Result<Response<pb::ExpandPermissionTreeResponse>, Status> {
        let state = self.0.clone();
        state
            .call_until("ExpandPermissionTree", state.deadline(&request), async {
                let r = request.into_inner();
                let o = object(r.resource.as_ref(), "resource")?;
                let view = state.view(r.consistency.as_ref()).await?;
                let revision = view.revision();
                let tree = self
                    .blocking(move |state| {
                        view.expand(&o, &r.permission, &state.eval_options()).map_err(|e| from_eval(&e))
                    })
                    .await?;
                Ok(Response::new(pb::ExpandPermissionTreeResponse {
                    expanded_at: self.token(revision),
                    tree_root: Some(convert::tree(&tree)),
                }))
            })
            .await
    }

    async fn lookup_resources(
        &self,
        request: Request<pb::LookupResourcesRequest>,
    ) -> Result<Response<Self::LookupResourcesStream>, Status> {
        let state = self.0.clone();
        let deadline = state.deadline(&request);
        state
            .call_until("LookupResources", deadline, async {
                let r = request.into_inner();
                let s = subject(r.subject.as_ref())?;
                if s.id == "*" {
                    return Err(invalid("cannot perform lookup resources on wildcard"));
                }
                let limit = state.limits.check_limit(r.optional_limit, "LookupResources")?;
                let (view, start) =
                    state.view_or_cursor(r.consistency.as_ref(), r.optional_cursor.as_ref()).await?;
                let opts = opts_with(&state, r.context.as_ref());
                // Errors (unknown type or permission, limits) come before the stream starts.
                let cursor = (start > 0).then(|| start.to_string());
                let page = Page { limit, cursor };
                let found = self
                    .blocking({
                        let view = view.clone();
                        let s = s.clone();
                        let ty = r.resource_object_type.clone();
                        let perm = r.permission.clone();
                        move |_| view.what(&s, &perm, &ty, &page, &opts).map_err(|e| from_eval(&e))
                    })
                    .await?;
                let ctx_opts = opts_with(&state, r.context.as_ref());
                let out = self.stream(deadline, move |state, tx| {
                    let prefix = super::token::cursor_prefix(&state.id, view.revision());
                    let token = state.token(view.revision());
                    let n = found.objects.len();
                    for (i, f) in found.objects.into_iter().enumerate() {
                        // The cursor after this result: the next object id (the last result of a
                        // page carries the page's own cursor).
                        let position = match (&found.cursor, i + 1 == n) {
                            (Some(c), true) => c.clone(),
                            _ => f.next.to_string(),
                        };
                        let partial_caveat_info =
                            caveat_info(&view, f.outcome, &f.object, &r.permission, &s, &ctx_opts);
                        tx.send(pb::LookupResourcesResponse {
                            looked_up_at: Some(pb::ZedToken { token: token.clone() }),
                            resource_object_id: f.object.id,
                            permissionship: lookup_permissionship(f.outcome),
                            partial_caveat_info,
                            after_result_cursor: Some(pb::Cursor {
                                token: super::token::cursor_at(&prefix, &position),
                            }),
                        })?;
                    }
                    Ok(())
                });
                Ok(Response::new(out))
            })
            .await
    }

    // SpiceDB's clients still read the deprecated fields of LookupSubjectsResponse: fill both.
    #[allow(deprecated)]
    async fn lookup_subjects(
        &self,
        request: Request<pb::LookupSubjectsRequest>,
    ) -> Result<Response<Self::LookupSubjectsStream>, Status> {
        let state = self.0.clone();
        let deadline = state.deadline(&request);
        state
            .call_until("LookupSubjects", deadline, async {
                let r = request.into_inner();
                let o = object(r.resource.as_ref(), "resource")?;
                if r.optional_concrete_limit > 0 {
                    // SpiceDB too no longer supports a limit on LookupSubjects.
                    return Err(Status::unimplemented(
                        "optional_concrete_limit is not supported; page on the client",
                    ));
                }
                if r.optional_cursor.is_some() {
                    return Err(Status::unimplemented("cursors are not supported on LookupSubjects"));
                }
                let view = state.view(r.consistency.as_ref()).await?;
                let opts = opts_with(&state, r.context.as_ref());
                let filter = SubjectFilter {
                    ty: r.subject_object_type.clone(),
                    relation: (!r.optional_subject_relation.is_empty())
                        .then(|| r.optional_subject_relation.clone()),
                };
                let found = self
                    .blocking({
                        let view = view.clone();
                        let o = o.clone();
                        let perm = r.permission.clone();
                        move |_| view.who(&o, &perm, &filter, &opts).map_err(|e| from_eval(&e))
                    })
                    .await?;
                use pb::lookup_subjects_request::WildcardOption;
                let wildcards = r.wildcard_option != WildcardOption::ExcludeWildcards as i32;
                let ctx_opts = opts_with(&state, r.context.as_ref());
                let out = self.stream(deadline, move |state, tx| {
                    let token = state.token(view.revision());
                    let missing = |t: Tri, subject: &crate::store::SubjectRef| {
                        caveat_info(&view, t, &o, &r.permission, subject, &ctx_opts)
                    };
                    let resolved =
                        |id: String, t: Tri, info: Option<pb::PartialCaveatInfo>| pb::ResolvedSubject {
                            subject_object_id: id,
                            permissionship: lookup_permissionship(t),
                            partial_caveat_info: info,
                        };
                    if let Some(w) = found.wildcard.as_ref().filter(|_| wildcards) {
                        let star = crate::store::SubjectRef::new(&r.subject_object_type, "*", None);
                        let info = missing(w.outcome, &star);
                        let excluded: Vec<pb::ResolvedSubject> = w
                            .excluded
                            .iter()
                            .filter(|e| e.outcome == Tri::False || e.outcome == Tri::Cond)
                            .map(|e| {
                                resolved(
                                    e.subject.id.clone(),
                                    if e.outcome == Tri::False { Tri::True } else { Tri::Cond },
                                    None,
                                )
                            })
                            .collect();
                        tx.send(pb::LookupSubjectsResponse {
                            looked_up_at: Some(pb::ZedToken { token: token.clone() }),
                            subject_object_id: "*".into(),
                            excluded_subject_ids: excluded
                                .iter()
                                .map(|e| e.subject_object_id.clone())
                                .collect(),
                            permissionship: lookup_permissionship(w.outcome),
                            partial_caveat_info: info.clone(),
                            subject: Some(resolved("*".into(), w.outcome, info)),
                            excluded_subjects: excluded,
                            after_result_cursor: None,
                        })?;
                    }
                    for f in &found.subjects {
                        let info = missing(f.outcome, &f.subject);
                        tx.send(pb::LookupSubjectsResponse {
                            looked_up_at: Some(pb::ZedToken { token: token.clone() }),
                            subject_object_id: f.subject.id.clone(),
                            excluded_subject_ids: Vec::new(),
                            permissionship: lookup_permissionship(f.outcome),
                            partial_caveat_info: info.clone(),
                            subject: Some(resolved(f.subject.id.clone(), f.outcome, info)),
                            excluded_subjects: Vec::new(),
                            after_result_cursor: None,
                        })?;
                    }
                    Ok(())
                });
                Ok(Response::new(out))
            })
            .await
    }

    async fn import_bulk_relationships(
        &self,
        request: Request<Streaming<pb::ImportBulkRelationshipsRequest>>,
    ) -> Result<Response<pb::ImportBulkRelationshipsResponse>, Status> {
        let state = self.0.clone();
        let deadline = state.deadline(&request);
        state
            .call_until("ImportBulkRelationships", deadline, async {
                let mut stream = request.into_inner();
                // The whole import is read first, then loaded as one atomic batch: a client that
                // goes away mid-stream leaves nothing behind, and writers are not held up while
                // the client sends.
                let mut rels = Vec::new();
                while let Some(batch) = stream.message().await? {
                    for r in &batch.relationships {
                        rels.push(convert::relationship(Some(r))?);
                    }
                }
                let n = rels.len();
                self.blocking(move |state| {
                    let mut loader = state.purview.bulk_loader().map_err(|e| from_write(&e))?;
                    for (i, r) in rels.iter().enumerate() {
                        loader.push(r).map_err(|e| {
                            let s = from_write(&e);
                            Status::with_details(
                                s.code(),
                                format!("relationship {i}: {}", s.message()),
                                s.details().to_vec().into(),
                            )
                        })?;
                    }
                    loader.finish::<std::convert::Infallible>().map_err(|e| match e {
                        crate::api::BulkError::Invalid { index, error } => {
                            let s = from_write(&error);
                            Status::with_details(
                                s.code(),
                                format!("relationship {index}: {}", s.message()),
                                s.details().to_vec().into(),
                            )
                        }
                        crate::api::BulkError::Storage(w) => from_write(&w),
                        crate::api::BulkError::Source { error, .. } => match error {},
                    })
                })
                .await?;
                Ok(Response::new(pb::ImportBulkRelationshipsResponse { num_loaded: n as u64 }))
            })
            .await
    }

    async fn export_bulk_relationships(
        &self,
        request: Request<pb::ExportBulkRelationshipsRequest>,
    ) -> Result<Response<Self::ExportBulkRelationshipsStream>, Status> {
        let state = self.0.clone();
        let deadline = state.deadline(&request);
        state
            .call_until("ExportBulkRelationships", deadline, async {
                let r = request.into_inner();
                let filter = convert::filter(r.optional_relationship_filter.as_ref(), false)?;
                let limit = (r.optional_limit > 0).then_some(r.optional_limit as usize);
                let (view, skip) =
                    state.view_or_cursor(r.consistency.as_ref(), r.optional_cursor.as_ref()).await?;
                // Validate the filter before the stream starts.
                view.read_relationships(&filter, 0, Some(0)).map_err(|e| from_eval(&e))?;
                let out = self.stream(deadline, move |state, tx| {
                    let prefix = super::token::cursor_prefix(&state.id, view.revision());
                    // One pass over the relationships, a message per chunk.
                    let mut position = skip;
                    let mut chunk = Vec::with_capacity(EXPORT_CHUNK);
                    let mut left = limit.unwrap_or(usize::MAX);
                    let mut gone = false;
                    let flush = |chunk: &mut Vec<pb::Relationship>, position: usize| {
                        let message = pb::ExportBulkRelationshipsResponse {
                            after_result_cursor: Some(pb::Cursor {
                                token: super::token::cursor_at(&prefix, &position.to_string()),
                            }),
                            relationships: std::mem::take(chunk),
                        };
                        tx.send(message).is_ok()
                    };
                    let now = chrono::Utc::now();
                    view.scan_relationships(&filter, skip, |r| {
                        if left == 0 {
                            return std::ops::ControlFlow::Break(());
                        }
                        position += 1;
                        if r.expires_at.is_some_and(|t| t <= now) {
                            return std::ops::ControlFlow::Continue(());
                        }
                        left -= 1;
                        chunk.push(convert::to_relationship(&r));
                        if chunk.len() == EXPORT_CHUNK && !flush(&mut chunk, position) {
                            gone = true;
                            return std::ops::ControlFlow::Break(());
                        }
                        std::ops::ControlFlow::Continue(())
                    })
                    .map_err(|e| from_eval(&e))?;
                    if !gone && !chunk.is_empty() {
                        flush(&mut chunk, position);
                    }
                    Ok(())
                });
                Ok(Response::new(out))
            })
            .await
    }
}

#[tonic::async_trait]
impl SchemaService for Grpc {
    async fn read_schema(
        &self,
        request: Request<pb::ReadSchemaRequest>,
    ) -> Result<Response<pb::ReadSchemaResponse>, Status> {
        let state = self.0.clone();
        state
            .call_until("ReadSchema", state.deadline(&request), async {
                let view = state.purview.snapshot();
                let text = state.schema_text();
                if text.trim().is_empty() {
                    return Err(Status::not_found(
                        "No schema has been defined; please call WriteSchema to start",
                    ));
                }
                Ok(Response::new(pb::ReadSchemaResponse {
                    schema_text: text,
                    read_at: self.token(view.revision()),
                }))
            })
            .await
    }

    async fn write_schema(
        &self,
        request: Request<pb::WriteSchemaRequest>,
    ) -> Result<Response<pb::WriteSchemaResponse>, Status> {
        let state = self.0.clone();
        state
            .call_until("WriteSchema", state.deadline(&request), async {
                let text = request.into_inner().schema;
                let revision = self.blocking(move |state| state.write_schema(&text)).await?;
                Ok(Response::new(pb::WriteSchemaResponse { written_at: self.token(revision) }))
            })
            .await
    }

    async fn reflect_schema(
        &self,
        request: Request<pb::ReflectSchemaRequest>,
    ) -> Result<Response<pb::ReflectSchemaResponse>, Status> {
        let state = self.0.clone();
        state
            .call_until("ReflectSchema", state.deadline(&request), async {
                let view = state.purview.snapshot();
                let out = super::reflect::reflect(view.schema());
                Ok(Response::new(pb::ReflectSchemaResponse {
                    definitions: out.0,
                    caveats: out.1,
                    read_at: self.token(view.revision()),
                }))
            })
            .await
    }

    async fn computable_permissions(
        &self,
        _request: Request<pb::ComputablePermissionsRequest>,
    ) -> Result<Response<pb::ComputablePermissionsResponse>, Status> {
        Err(Status::unimplemented("ComputablePermissions is not supported by Purview"))
    }

    async fn dependent_relations(
        &self,
        _request: Request<pb::DependentRelationsRequest>,
    ) -> Result<Response<pb::DependentRelationsResponse>, Status> {
        Err(Status::unimplemented("DependentRelations is not supported by Purview"))
    }

    async fn diff_schema(
        &self,
        request: Request<pb::DiffSchemaRequest>,
    ) -> Result<Response<pb::DiffSchemaResponse>, Status> {
        let state = self.0.clone();
        state
            .call_until("DiffSchema", state.deadline(&request), async {
                let r = request.into_inner();
                let view = state.purview.snapshot();
                let other = state.compile(&r.comparison_schema)?;
                Ok(Response::new(pb::DiffSchemaResponse {
                    diffs: super::reflect::diff(view.schema(), &other),
                    read_at: self.token(view.revision()),
                }))
            })
            .await
    }
}

#[tonic::async_trait]
impl WatchService for Grpc {
    type WatchStream = Out<pb::WatchResponse>;

    async fn watch(&self, request: Request<pb::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let state = self.0.clone();
        // A watch lasts as long as the client wants: no deadline of ours applies.
        state
            .call_until("Watch", None, async {
                let r = request.into_inner();
                let start = match &r.optional_start_cursor {
                    Some(t) => state.revision_of(&t.token)?,
                    None => state.purview.revision(),
                };
                state.reach(start).await?;
                let current = state.purview.revision();
                if start > current {
                    return Err(invalid(format!("the start cursor names revision {start}, past the latest ({current})")));
                }
                let types: Vec<String> = r.optional_object_types.clone();
                let filters = r
                    .optional_relationship_filters
                    .iter()
                    .map(|f| convert::filter(Some(f), false))
                    .collect::<Result<Vec<_>, _>>()?;
                use pb::WatchKind;
                let kinds: Vec<i32> = r.optional_update_kinds.clone();
                let wants = |k: WatchKind| kinds.contains(&(k as i32));
                let relationships = kinds.is_empty()
                    || wants(WatchKind::Unspecified)
                    || wants(WatchKind::IncludeRelationshipUpdates);
                let schema = wants(WatchKind::IncludeSchemaUpdates);
                let checkpoints = wants(WatchKind::IncludeCheckpoints);
                // Refuse a start the feed no longer covers now, not on the first message.
                state.purview.changes_after(start).map_err(|e| errors::from_feed(&e))?;
                let (tx, rx) = mpsc::channel(WATCH_BUFFER);
                let mut revisions = state.revisions.clone();
                let watcher = state.clone();
                tokio::spawn(async move {
                    let mut last = start;
                    loop {
                        let changes = match watcher.purview.changes_after(last) {
                            Ok(c) => c,
                            Err(e) => {
                                let _ = tx.send(Err(errors::from_feed(&e))).await;
                                return;
                            }
                        };
                        for c in changes {
                            last = c.revision;
                            if c.truncated {
                                let _ = tx
                                    .send(Err(Status::out_of_range(format!(
                                        "revision {} was a bulk import too large to stream; re-read the data and watch from its token",
                                        c.revision
                                    ))))
                                    .await;
                                return;
                            }
                            let updates: Vec<pb::RelationshipUpdate> = if relationships {
                                c.updates
                                    .iter()
                                    .filter(|u| {
                                        (types.is_empty() || types.contains(&u.relationship.resource.ty))
                                            && (filters.is_empty()
                                                || filters.iter().any(|f| super::watch_matches(f, &u.relationship)))
                                    })
                                    .map(|u| pb::RelationshipUpdate {
                                        operation: match u.kind {
                                            UpdateKind::Touch => pb::relationship_update::Operation::Touch as i32,
                                            UpdateKind::Delete => pb::relationship_update::Operation::Delete as i32,
                                        },
                                        relationship: Some(convert::to_relationship(&u.relationship)),
                                    })
                                    .collect()
                            } else {
                                Vec::new()
                            };
                            let schema_updated = schema && c.schema_changed;
                            if updates.is_empty() && !schema_updated && !checkpoints {
                                continue;
                            }
                            let response = pb::WatchResponse {
                                updates,
                                changes_through: Some(pb::ZedToken { token: watcher.token(c.revision) }),
                                optional_transaction_metadata: None,
                                schema_updated,
                                is_checkpoint: false,
                                full_revision_metadata: Vec::new(),
                            };
                            if tx.send(Ok(response)).await.is_err() {
                                return;
                            }
                        }
                        if checkpoints {
                            let response = pb::WatchResponse {
                                updates: Vec::new(),
                                changes_through: Some(pb::ZedToken { token: watcher.token(last) }),
                                optional_transaction_metadata: None,
                                schema_updated: false,
                                is_checkpoint: true,
                                full_revision_metadata: Vec::new(),
                            };
                            if tx.send(Ok(response)).await.is_err() {
                                return;
                            }
                        }
                        tokio::select! {
                            changed = revisions.changed() => if changed.is_err() { return },
                            () = tx.closed() => return,
                            () = watcher.shutting_down() => return,
                        }
                    }
                });
                let out: Out<pb::WatchResponse> = Box::pin(ReceiverStream::new(rx));
                Ok(Response::new(out))
            })
            .await
    }
}
