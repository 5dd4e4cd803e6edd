//! `purview serve`, the real binary on ephemeral loopback ports: a Rust tonic client generated
//! from the same protos, the official SpiceDB Python client, real SpiceDB as an oracle, AuthZEN
//! over HTTP, bad input, and kill -9 during writes.

mod authzen_http;
mod faults;
mod grpc;
mod oracle;
pub mod python;
mod spicedb_diff;

pub use purview::server::proto::authzed::api::v1 as pb;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const KEY: &str = "test-key-0123456789";

/// A running `purview serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    stderr: std::path::PathBuf,
    _logs: tempfile::TempDir,
}

impl Server {
    /// Starts `purview serve ARGS` on ephemeral ports with the test key, and waits until it
    /// listens.
    pub fn start(args: &[&str]) -> Server {
        Server::start_raw(&[args, &["--preshared-key", KEY]].concat())
    }

    pub fn start_raw(args: &[&str]) -> Server {
        let logs = tempfile::tempdir().unwrap();
        let stderr = logs.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_purview"))
            .arg("serve")
            .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("the purview binary runs");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let mut addr = |key: &str| -> SocketAddr {
            let Some(v) = line.split_whitespace().find_map(|w| w.strip_prefix(key)) else {
                let _ = child.kill();
                let log = std::fs::read_to_string(&stderr).unwrap_or_default();
                panic!("purview serve did not start: {line:?}\n{log}");
            };
            v.parse().unwrap()
        };
        let (grpc, http) = (addr("grpc="), addr("http="));
        Server { child, grpc, http, stderr, _logs: logs }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then waits (at most 30 s) for the exit code.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        for _ in 0..300 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s.code(), self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("purview serve did not stop within 30 s of SIGTERM:\n{}", self.log());
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Adds `authorization: Bearer KEY`.
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(k) = &self.0 {
            r.metadata_mut().insert("authorization", MetadataValue::try_from(format!("Bearer {k}")).unwrap());
        }
        Ok(r)
    }
}

pub type Perms =
    pb::permissions_service_client::PermissionsServiceClient<InterceptedService<Channel, Bearer>>;
pub type Schemas = pb::schema_service_client::SchemaServiceClient<InterceptedService<Channel, Bearer>>;
pub type Watches = pb::watch_service_client::WatchServiceClient<InterceptedService<Channel, Bearer>>;

pub struct Clients {
    pub perms: Perms,
    pub schema: Schemas,
    pub watch: Watches,
}

pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap()
}

pub async fn clients(addr: SocketAddr, key: Option<&str>) -> Clients {
    let ch = channel(addr).await;
    let b = Bearer(key.map(str::to_string));
    Clients {
        perms: pb::permissions_service_client::PermissionsServiceClient::with_interceptor(
            ch.clone(),
            b.clone(),
        )
        .max_decoding_message_size(64 << 20),
        schema: pb::schema_service_client::SchemaServiceClient::with_interceptor(ch.clone(), b.clone()),
        watch: pb::watch_service_client::WatchServiceClient::with_interceptor(ch, b),
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

// ---- message builders ----

pub fn obj(t: &str, id: &str) -> pb::ObjectReference {
    pb::ObjectReference { object_type: t.into(), object_id: id.into() }
}

pub fn subj(t: &str, id: &str, rel: &str) -> pb::SubjectReference {
    pb::SubjectReference { object: Some(obj(t, id)), optional_relation: rel.into() }
}

/// `type:id#rel@stype:sid[#srel]` as a relationship message.
pub fn rel(text: &str) -> pb::Relationship {
    let (res, sub) = text.split_once('@').unwrap();
    let (o, r) = res.split_once('#').unwrap();
    let (ot, oid) = o.split_once(':').unwrap();
    let (s, srel) = sub.split_once('#').unwrap_or((sub, ""));
    let (st, sid) = s.split_once(':').unwrap();
    pb::Relationship {
        resource: Some(obj(ot, oid)),
        relation: r.into(),
        subject: Some(subj(st, sid, srel)),
        optional_caveat: None,
        optional_expires_at: None,
    }
}

pub fn update(op: pb::relationship_update::Operation, r: pb::Relationship) -> pb::RelationshipUpdate {
    pb::RelationshipUpdate { operation: op as i32, relationship: Some(r) }
}

pub fn touch(texts: &[&str]) -> pb::WriteRelationshipsRequest {
    pb::WriteRelationshipsRequest {
        updates: texts.iter().map(|t| update(pb::relationship_update::Operation::Touch, rel(t))).collect(),
        optional_preconditions: vec![],
        optional_transaction_metadata: None,
    }
}

/// A token of the same store `ahead` revisions after `token` (a revision not written yet).
pub fn token_ahead(token: &pb::ZedToken, ahead: u64) -> pb::ZedToken {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(&token.token).unwrap()).unwrap();
    let (head, rev) = text.rsplit_once('.').unwrap();
    pb::ZedToken { token: URL_SAFE_NO_PAD.encode(format!("{head}.{}", rev.parse::<u64>().unwrap() + ahead)) }
}

pub fn full() -> Option<pb::Consistency> {
    Some(pb::Consistency { requirement: Some(pb::consistency::Requirement::FullyConsistent(true)) })
}

pub fn fresh(token: &pb::ZedToken) -> Option<pb::Consistency> {
    Some(pb::Consistency { requirement: Some(pb::consistency::Requirement::AtLeastAsFresh(token.clone())) })
}

pub fn exact(token: &pb::ZedToken) -> Option<pb::Consistency> {
    Some(pb::Consistency { requirement: Some(pb::consistency::Requirement::AtExactSnapshot(token.clone())) })
}

pub fn check_req(
    resource: (&str, &str),
    permission: &str,
    subject: (&str, &str),
    consistency: Option<pb::Consistency>,
) -> pb::CheckPermissionRequest {
    pb::CheckPermissionRequest {
        consistency,
        resource: Some(obj(resource.0, resource.1)),
        permission: permission.into(),
        subject: Some(subj(subject.0, subject.1, "")),
        context: None,
        with_tracing: false,
    }
}

pub use pb::check_permission_response::Permissionship;

/// The SpiceDB schema most server tests use: usersets, wildcards, exclusion, arrows, a caveat
/// and expiration.
pub const ZED: &str = r#"
use expiration

caveat on_network(allowed_cidr string, ip string) {
  ip == allowed_cidr
}

definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation viewer: user | group#member
  permission view = viewer
}

definition document {
  relation folder: folder
  relation owner: user
  relation viewer: user | user:* | group#member | user with on_network | user with expiration
  relation banned: user
  permission view = (viewer + owner + folder->view) - banned
  permission edit = owner
}
"#;

/// One HTTP/1.1 request over a fresh connection: the status and the body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &str,
) -> (u16, String) {
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, _, body) = http_exchange(addr, &request);
    (status, body)
}

/// Sends a request as written (it must ask to close the connection): the status, the head in
/// lower case, and the body (chunked transfer decoded).
pub fn http_exchange(addr: SocketAddr, request: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") { unchunk(rest) } else { rest.to_string() };
    (status, head, body)
}

fn unchunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&tail[..n]);
        rest = &tail[n + 2..];
    }
    out
}

#[test]
fn health_is_open_and_metrics_need_a_key_and_count_requests() {
    let server = Server::start(&["--memory"]);
    let (status, body) = http_request(server.http, "GET", "/healthz", None, "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("serving"));
    assert_eq!(http_request(server.http, "GET", "/metrics", None, "").0, 401);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        c.schema.write_schema(pb::WriteSchemaRequest { schema: ZED.into() }).await.unwrap();
        let _ = c.perms.check_permission(check_req(("nosuch", "x"), "view", ("user", "ann"), None)).await;
    });
    let (status, metrics) = http_request(server.http, "GET", "/metrics", Some(KEY), "");
    assert_eq!(status, 200);
    for line in [
        "purview_requests_total{method=\"WriteSchema\",code=\"OK\"} 1",
        "purview_requests_total{method=\"CheckPermission\",code=\"FAILED_PRECONDITION\"} 1",
        "purview_request_duration_seconds_count{method=\"CheckPermission\"} 1",
        "purview_revision 1",
        "purview_relationships 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }
}
