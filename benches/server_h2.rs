//! A lean gRPC client for the load generator's CheckPermission phases: HTTP/2 straight on the
//! `h2` crate, with each request's gRPC message encoded once, before the run.
//!
//! Every call is a real gRPC call over its own HTTP/2 stream — `POST
//! /authzed.api.v1.PermissionsService/CheckPermission`, `content-type: application/grpc`, one
//! length-prefixed protobuf message — and every answer is checked: HTTP status 200, the
//! `grpc-status` of the trailers (or of a trailers-only answer), one message decoded as a
//! `CheckPermissionResponse`. What this client leaves out is what tonic's `Channel` adds on
//! top: a `tower::buffer` task hop per call, hyper's dispatch channel and body-pipe task, and
//! encoding each request anew. On the 2-core machine the client shares with the server, that
//! is CPU the server does not get.

use bytes::{Buf, Bytes, BytesMut};
use prost::Message as _;
use purview::server::proto::authzed::api::v1 as pb;
use std::net::SocketAddr;

const PATH: &str = "/authzed.api.v1.PermissionsService/CheckPermission";

/// One HTTP/2 connection (its connection task runs on the calling runtime; its writes are
/// gathered as the server's are, by `purview::server::corked::Corked`).
#[derive(Clone)]
pub struct Conn {
    send: h2::client::SendRequest<Bytes>,
    uri: http::Uri,
}

/// A request's gRPC message: the 5-byte prefix (uncompressed, length) and the protobuf.
pub fn encode(q: &pb::CheckPermissionRequest) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + q.encoded_len());
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(q.encoded_len() as u32).to_be_bytes());
    q.encode(&mut out).expect("a BytesMut grows");
    out.freeze()
}

/// Why a call failed: a gRPC status (as the server sent it) or a transport / protocol error.
pub enum CallError {
    Status(tonic::Status),
    Other(String),
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect to the server");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(1 << 20)
            .initial_connection_window_size(1 << 24)
            // Requests made at once leave together, as the server's answers do.
            .handshake(purview::server::corked::Corked::new(tcp))
            .await
            .expect("HTTP/2 handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let uri = format!("http://{addr}{PATH}").parse().expect("a valid URI");
        Conn { send, uri }
    }

    /// One CheckPermission call with a message from [`encode`]: the answer's permissionship.
    pub async fn check(&mut self, message: Bytes) -> Result<i32, CallError> {
        let other = |e: h2::Error| CallError::Other(e.to_string());
        let request = http::Request::post(self.uri.clone())
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .map_err(|e| CallError::Other(e.to_string()))?;
        std::future::poll_fn(|cx| self.send.poll_ready(cx)).await.map_err(other)?;
        let (response, mut body_out) = self.send.send_request(request, false).map_err(other)?;
        body_out.send_data(message, true).map_err(other)?;
        let response = response.await.map_err(other)?;
        if response.status() != http::StatusCode::OK {
            return Err(CallError::Other(format!("HTTP status {}", response.status())));
        }
        // A trailers-only answer (an error) carries its status in the headers.
        if let Some(status) = grpc_status(response.headers()) {
            return Err(match status {
                Ok(()) => CallError::Other("a trailers-only answer with status OK".into()),
                Err(s) => CallError::Status(s),
            });
        }
        let mut body = response.into_body();
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(other)?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.map_err(other)?.unwrap_or_default();
        match grpc_status(&trailers) {
            Some(Ok(())) => {}
            Some(Err(s)) => return Err(CallError::Status(s)),
            None => return Err(CallError::Other("the answer has no grpc-status".into())),
        }
        let mut data = data.freeze();
        if data.len() < 5 || data[0] != 0 {
            return Err(CallError::Other("not one uncompressed gRPC message".into()));
        }
        data.advance(1);
        let len = data.get_u32() as usize;
        if data.len() != len {
            return Err(CallError::Other(format!(
                "a message of {} bytes, its prefix says {len}",
                data.len()
            )));
        }
        let answer =
            pb::CheckPermissionResponse::decode(data).map_err(|e| CallError::Other(e.to_string()))?;
        if answer.checked_at.is_none_or(|t| t.token.is_empty()) {
            return Err(CallError::Other("an answer without a ZedToken".into()));
        }
        Ok(answer.permissionship)
    }
}

/// The status named by `grpc-status` (and `grpc-message`), if the headers have one.
fn grpc_status(headers: &http::HeaderMap) -> Option<Result<(), tonic::Status>> {
    let value = headers.get("grpc-status")?;
    let code = value.to_str().ok().and_then(|v| v.parse::<i32>().ok());
    Some(match code {
        Some(0) => Ok(()),
        Some(code) => {
            let message = headers.get("grpc-message").and_then(|m| m.to_str().ok()).unwrap_or("");
            Err(tonic::Status::new(tonic::Code::from(code), message.to_string()))
        }
        None => Err(tonic::Status::unknown(format!("a malformed grpc-status {value:?}"))),
    })
}
