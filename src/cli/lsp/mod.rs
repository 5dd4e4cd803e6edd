//! `purview lsp`: a Language Server Protocol server over standard input and output.
//!
//! The protocol loop only: messages in, [`purview::analysis`] asked, messages out. The
//! requests are answered in `requests.rs`; this file frames JSON-RPC messages and dispatches them.
//!
//! The framing (`Content-Length` headers) is written here rather than taken from `lsp-server`,
//! whose reader thread ends the connection on the first message that is not JSON: here a message
//! that is not JSON gets a JSON-RPC "parse error" response, one that is not a request or
//! notification an "invalid request", an unknown method "method not found" and bad parameters
//! "invalid params", and the server goes on. The types of the protocol are `lsp-types`.

mod requests;

use super::error::{CliResult, Exit};
use requests::Server;
use serde_json::{json, Value};
use std::io::{self, BufRead, Read as _, Write};

/// JSON-RPC error codes.
pub(super) mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const SERVER_NOT_INITIALIZED: i64 = -32002;
    pub const REQUEST_FAILED: i64 = -32803;
}

/// The largest message read; a larger one is skipped and answered with an error.
const MAX_MESSAGE: usize = 64 << 20;

/// Serves one client on standard input and output until it sends `exit` or closes its end.
/// Exits 0 after a `shutdown` request, else 1 (as the protocol asks).
pub(super) fn run() -> CliResult<Exit> {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let mut output = stdout.lock();
    let mut server = Server::default();
    while let Ok(frame) = read_frame(&mut input) {
        let replies = match frame {
            Frame::End => break,
            Frame::Bad(why) => vec![error(Value::Null, code::PARSE_ERROR, why)],
            Frame::Body(body) => dispatch(&mut server, &body),
        };
        for r in replies {
            if write_frame(&mut output, &r).is_err() {
                return Ok(end(&server));
            }
        }
        if server.exited {
            break;
        }
    }
    Ok(end(&server))
}

fn end(server: &Server) -> Exit {
    if server.shut_down {
        Exit::Success
    } else {
        Exit::Denied
    }
}

/// One message read from the client.
enum Frame {
    Body(Vec<u8>),
    /// Headers that cannot be read: a line that is not `Name: value`, no `Content-Length`, or
    /// a message too large.
    Bad(String),
    End,
}

fn read_frame(r: &mut impl BufRead) -> io::Result<Frame> {
    let mut length: Option<usize> = None;
    let mut any = false;
    loop {
        let mut raw = Vec::new();
        if r.read_until(b'\n', &mut raw)? == 0 {
            return Ok(Frame::End);
        }
        let line = String::from_utf8_lossy(&raw);
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if any {
                break;
            }
            continue;
        }
        any = true;
        let header = line.split_once(':').filter(|(name, _)| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        let Some((name, value)) = header else {
            let shown: String = line.chars().take(80).collect();
            return Ok(Frame::Bad(format!(
                "expected a `Content-Length: N` header before each message, found `{shown}`"
            )));
        };
        if name.trim().eq_ignore_ascii_case("content-length") {
            match value.trim().parse::<usize>() {
                Ok(n) => length = Some(n),
                Err(_) => return Ok(Frame::Bad(format!("`{}` is not a Content-Length", value.trim()))),
            }
        }
    }
    let Some(n) = length else {
        return Ok(Frame::Bad("a message without a `Content-Length` header".to_string()));
    };
    if n > MAX_MESSAGE {
        io::copy(&mut r.take(n as u64), &mut io::sink())?;
        return Ok(Frame::Bad(format!("a message of {n} bytes is larger than the limit of {MAX_MESSAGE}")));
    }
    let mut body = vec![0; n];
    match r.read_exact(&mut body) {
        Ok(()) => Ok(Frame::Body(body)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Frame::End),
        Err(e) => Err(e),
    }
}

fn write_frame(w: &mut impl Write, message: &Value) -> io::Result<()> {
    let body = message.to_string();
    write!(w, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    w.flush()
}

fn error(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

/// Answers one message: the response to a request, and any notifications it causes.
fn dispatch(server: &mut Server, body: &[u8]) -> Vec<Value> {
    let message: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return vec![error(Value::Null, code::PARSE_ERROR, format!("the message is not JSON: {e}"))]
        }
    };
    let Some(object) = message.as_object() else {
        return vec![error(Value::Null, code::INVALID_REQUEST, "a message must be a JSON object")];
    };
    let id = match object.get("id") {
        None => None,
        Some(id @ (Value::Number(_) | Value::String(_))) => Some(id.clone()),
        Some(_) => {
            return vec![error(
                Value::Null,
                code::INVALID_REQUEST,
                "a request id must be a number or a string",
            )]
        }
    };
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    match (object.get("method"), id) {
        (Some(Value::String(method)), Some(id)) => vec![match server.request(method, params) {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err((code, message)) => error(id, code, message),
        }],
        (Some(Value::String(method)), None) => {
            let mut out = Vec::new();
            server.notification(method, params, &mut out);
            out
        }
        // A response to a request of ours: the server sends none, so there is nothing to match.
        (None, Some(_)) if object.contains_key("result") || object.contains_key("error") => Vec::new(),
        (_, id) => vec![error(
            id.unwrap_or(Value::Null),
            code::INVALID_REQUEST,
            "a request or notification needs a `method` string",
        )],
    }
}
