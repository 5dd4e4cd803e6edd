//! The listeners: gRPC (tonic) and HTTP (axum: AuthZEN, health, metrics), each optionally over
//! TLS (rustls), each behind the preshared-key check, both draining on shutdown.

use super::grpc::Grpc;
use super::proto::authzed::api::v1 as pb;
use super::{authzen, Config, ServeError, State, Tls};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// The rustls server configuration for `tls` (certificate chain and private key, PEM).
pub fn tls_config(tls: &Tls) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let read =
        |p: &std::path::Path| std::fs::read(p).map_err(|e| ServeError::Tls(format!("{}: {e}", p.display())));
    let cert_pem = read(&tls.cert)?;
    let key_pem = read(&tls.key)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Tls(format!("{}: {e}", tls.cert.display())))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!("{}: no certificate found", tls.cert.display())));
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| ServeError::Tls(format!("{}: {e}", tls.key.display())))?
        .ok_or_else(|| ServeError::Tls(format!("{}: no private key found", tls.key.display())))?;
    // `ring`, without the post-quantum key exchange (deprecated for that reason only).
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The preshared-key check for the SpiceDB services (not for health).
#[derive(Clone)]
struct Auth(Arc<State>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let header = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        if self.0.authorized(header) {
            Ok(request)
        } else {
            self.0.metrics.observe(
                "Unauthenticated",
                tonic::Code::Unauthenticated,
                std::time::Duration::ZERO,
            );
            Err(Status::unauthenticated("missing or wrong preshared key: send `authorization: Bearer KEY`"))
        }
    }
}

pub async fn serve_grpc(state: Arc<State>, listener: TcpListener, config: Config) -> Result<(), ServeError> {
    let limit = config.limits.max_request_bytes;
    let svc = Grpc(state.clone());
    let auth = Auth(state.clone());
    let permissions = pb::permissions_service_server::PermissionsServiceServer::new(svc.clone())
        .max_decoding_message_size(limit)
        .max_encoding_message_size(usize::MAX);
    let schema =
        pb::schema_service_server::SchemaServiceServer::new(svc.clone()).max_decoding_message_size(limit);
    let watch = pb::watch_service_server::WatchServiceServer::new(svc).max_decoding_message_size(limit);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<pb::permissions_service_server::PermissionsServiceServer<Grpc>>().await;
    health_reporter.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| ServeError::Tls(format!("{}: {e}", p.display())))
        };
        let identity = Identity::from_pem(read(&tls.cert)?, read(&tls.key)?);
        builder = builder
            .tls_config(ServerTlsConfig::new().identity(identity))
            .map_err(|e| ServeError::Tls(e.to_string()))?;
    }
    // Without TCP_NODELAY, small streamed answers wait ~40 ms for Nagle's algorithm; instead the
    // answers ready at once leave together (see `Corked`).
    let incoming = tokio_stream::StreamExt::map(
        tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        |tcp| tcp.map(super::corked::Corked::new),
    );
    let shutdown = {
        let state = state.clone();
        async move {
            state.shutting_down().await;
            let _ = health_reporter;
        }
    };
    builder
        .add_service(health)
        .add_service(InterceptedService::new(permissions, auth.clone()))
        .add_service(InterceptedService::new(schema, auth.clone()))
        .add_service(InterceptedService::new(watch, auth))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| ServeError::Transport(e.to_string()))
}

fn json(status: u16, body: serde_json::Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

/// An error body in AuthZEN's shape (used on every HTTP route).
fn error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "status": status.as_u16(), "message": message } });
    (status, axum::Json(body)).into_response()
}

async fn healthz(AxState(state): AxState<Arc<State>>) -> Response {
    json(200, serde_json::json!({ "status": "serving", "revision": state.purview.revision() }))
}

async fn metrics(AxState(state): AxState<Arc<State>>, headers: HeaderMap) -> Response {
    if !state.authorized(headers.get("authorization").and_then(|v| v.to_str().ok())) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong preshared key: send `authorization: Bearer KEY`",
        );
    }
    ([("content-type", "text/plain; version=0.0.4")], state.metrics_text()).into_response()
}

/// Every AuthZEN path: authenticated (except the metadata), admitted, timed, then answered by
/// [`authzen::handle`] on the blocking pool.
async fn authzen_route(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let metadata = path == "/.well-known/authzen-configuration";
    if !metadata && !state.authorized(headers.get("authorization").and_then(|v| v.to_str().ok())) {
        state.metrics.observe("AuthZEN", tonic::Code::Unauthenticated, std::time::Duration::ZERO);
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong preshared key: send `authorization: Bearer KEY`",
        );
    }
    if method == Method::POST {
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            let body = serde_json::json!({ "error": {
                "status": 400,
                "message": format!("the request's Content-Type must be application/json, not `{content_type}`"),
            }});
            return with_request_id(json(400, body), &headers);
        }
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string();
    let scheme = if state.tls { "https" } else { "http" };
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let worker = state.clone();
    let result = state
        .call_until("AuthZEN", Some(state.limits.deadline), async move {
            let cfg = authzen::Config {
                base_url: format!("{scheme}://{host}"),
                max_evaluations: worker.limits.max_bulk_check_items,
                max_page_size: 1000,
                default_page_size: 100,
                eval: worker.eval_options(),
            };
            let m = method.as_str().to_string();
            let answer =
                tokio::task::spawn_blocking(move || authzen::handle(&worker.purview, &m, &path, &body, &cfg))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?;
            Ok(answer)
        })
        .await;
    let mut response = match result {
        Ok(a) if a.status == 405 => {
            let allow = if metadata { "GET" } else { "POST" };
            let mut r = json(a.status, a.body);
            r.headers_mut().insert("allow", axum::http::HeaderValue::from_static(allow));
            r
        }
        Ok(a) => json(a.status, a.body),
        Err(s) if s.code() == tonic::Code::ResourceExhausted => {
            error(StatusCode::TOO_MANY_REQUESTS, s.message())
        }
        Err(s) if s.code() == tonic::Code::DeadlineExceeded => {
            error(StatusCode::GATEWAY_TIMEOUT, s.message())
        }
        Err(s) => error(StatusCode::INTERNAL_SERVER_ERROR, s.message()),
    };
    if let Some(id) = request_id.and_then(|v| v.parse().ok()) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}

/// Echoes the request's `X-Request-ID`, as AuthZEN asks.
fn with_request_id(mut response: Response, headers: &HeaderMap) -> Response {
    if let Some(id) = headers.get("x-request-id") {
        response.headers_mut().insert("x-request-id", id.clone());
    }
    response
}

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(authzen_route)
        .layer(DefaultBodyLimit::max(state.limits.max_request_bytes))
        .with_state(state)
}

pub async fn serve_http(state: Arc<State>, listener: TcpListener, config: Config) -> Result<(), ServeError> {
    let app = router(state.clone());
    let Some(tls) = &config.tls else {
        let shutdown = {
            let state = state.clone();
            async move { state.shutting_down().await }
        };
        use axum::serve::ListenerExt as _;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| ServeError::Transport(e.to_string()));
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_config(tls)?);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = state.shutting_down() => break,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let state = state.clone();
        connections.spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else { return };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = state.shutting_down() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}
