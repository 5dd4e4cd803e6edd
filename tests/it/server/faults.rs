//! kill -9 of the server during a write load, restart on the same store: every acknowledged
//! write is there. SIGTERM drains and stops cleanly.

use super::*;
use std::sync::{Arc, Mutex};
use tokio_stream::StreamExt;

#[test]
fn kill_9_during_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap().to_string();
    let mut server = Server::start(&["--store", &store_arg]);
    let acked: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        c.schema.write_schema(pb::WriteSchemaRequest { schema: ZED.into() }).await.unwrap();
        // Eight writers, each writing its own numbered batches until the server dies.
        let mut writers = Vec::new();
        for w in 0..8u32 {
            let mut p = c.perms.clone();
            let acked = acked.clone();
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let r = format!("document:w{w}b{i}#viewer@user:u{i}");
                    let s = format!("group:w{w}#member@user:u{i}");
                    if p.write_relationships(touch(&[&r, &s])).await.is_err() {
                        return;
                    }
                    acked.lock().unwrap().push((w, i));
                }
            }));
        }
        // Let some writes through, then kill -9 mid-load.
        while acked.lock().unwrap().len() < 300 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill9();
        for w in writers {
            let _ = w.await;
        }
    });
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);
    let server = Server::start(&["--store", &store_arg]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        let mut stream = c
            .perms
            .read_relationships(pb::ReadRelationshipsRequest {
                consistency: full(),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut present = std::collections::HashSet::new();
        while let Some(r) = stream.next().await {
            present.insert(r.unwrap().relationship.unwrap().resource.unwrap().object_id);
        }
        for (w, i) in &acked {
            assert!(
                present.contains(&format!("w{w}b{i}")),
                "acknowledged write w{w}b{i} lost ({} acked)",
                acked.len()
            );
            // The batch is whole: its group membership is there too.
            let p = check_req(("document", &format!("w{w}b{i}")), "view", ("user", &format!("u{i}")), full());
            assert_eq!(
                c.perms.check_permission(p).await.unwrap().into_inner().permissionship,
                Permissionship::HasPermission as i32
            );
        }
    });
}

#[test]
fn sigterm_drains_requests_in_flight_and_closes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store_arg = store.to_str().unwrap().to_string();
    let server = Server::start(&["--store", &store_arg]);
    let (schema_token, token) = runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        let s = c.schema.write_schema(pb::WriteSchemaRequest { schema: ZED.into() }).await.unwrap();
        let t = c.perms.write_relationships(touch(&["document:d1#owner@user:ann"])).await.unwrap();
        (s.into_inner().written_at.unwrap(), t.into_inner().written_at.unwrap())
    });
    let (code, log) = server.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("stopped cleanly"), "{log}");
    // The store opens again with its data (and the token of the last write still names it).
    let server = Server::start(&["--store", &store_arg]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        let r = c
            .perms
            .check_permission(check_req(("document", "d1"), "edit", ("user", "ann"), fresh(&token.clone())))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.permissionship, Permissionship::HasPermission as i32);
        // A watch from a token of before the restart replays the store's changelog.
        let mut watch = c
            .watch
            .watch(pb::WatchRequest { optional_start_cursor: Some(schema_token), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        let first =
            tokio::time::timeout(Duration::from_secs(5), watch.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(first.changes_through, Some(token));
        assert_eq!(first.updates.len(), 1);
        assert_eq!(first.updates[0].relationship, Some(rel("document:d1#owner@user:ann")));
    });
}

#[test]
fn tls_serves_grpc_and_http_and_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let server = Server::start(&[
        "--memory",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    runtime().block_on(async {
        use tonic::transport::{Certificate, ClientTlsConfig};
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(cert.cert.pem()))
            .domain_name("localhost");
        let ch = Channel::from_shared(format!("https://{}", server.grpc))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut schema =
            pb::schema_service_client::SchemaServiceClient::with_interceptor(ch, Bearer(Some(KEY.into())));
        schema.write_schema(pb::WriteSchemaRequest { schema: ZED.into() }).await.unwrap();
        // Plaintext HTTP/2 to the TLS port gets nowhere.
        let plain = Channel::from_shared(format!("http://{}", server.grpc)).unwrap().connect().await;
        if let Ok(ch) = plain {
            let mut s = pb::schema_service_client::SchemaServiceClient::with_interceptor(
                ch,
                Bearer(Some(KEY.into())),
            );
            assert!(s.read_schema(pb::ReadSchemaRequest {}).await.is_err());
        }
        // HTTPS on the HTTP port.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.cert.der().clone()).unwrap();
        #[allow(deprecated)]
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(server.http).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut stream = connector.connect(name, tcp).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    });
}
