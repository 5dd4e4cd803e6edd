//! Every case of the AuthZEN interop scenarios and the certification scenario, over HTTP against
//! the running server (the same cases `tests/it/authzen.rs` runs against the library), and the
//! HTTP layer's own duties: keys, Content-Type, X-Request-ID, Allow, metadata.

use super::*;
use crate::authzen::{example_dir, run_scenario, SCENARIOS};
use serde_json::Value;

fn serve(scenario: &str) -> Server {
    let dir = example_dir(scenario);
    let schema = dir.join("schema.pv");
    let data = dir.join("data.rels");
    Server::start(&["--memory", "--schema", schema.to_str().unwrap(), "--data", data.to_str().unwrap()])
}

#[test]
fn every_authzen_scenario_case_passes_over_http() {
    for scenario in SCENARIOS {
        let server = serve(scenario);
        let mut ask = |method: &str, path: &str, body: &Value| -> (u16, Value) {
            let text = if body.is_null() { String::new() } else { body.to_string() };
            let (status, reply) = http_request(server.http, method, path, Some(KEY), &text);
            let json =
                serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{method} {path}: {e}: {reply}"));
            (status, json)
        };
        let failures = run_scenario(scenario, &mut ask);
        assert!(failures.is_empty(), "{scenario} over HTTP:\n{}", failures.join("\n"));
    }
}

#[test]
fn the_http_layer_checks_keys_content_type_and_echoes_request_ids() {
    let server = serve("todo");
    let body = r#"{"subject":{"type":"user","id":"x"},"action":{"name":"can_read_user"},"resource":{"type":"user","id":"y"}}"#;
    // No key: 401; the metadata is open.
    assert_eq!(http_request(server.http, "POST", "/access/v1/evaluation", None, body).0, 401);
    assert_eq!(http_request(server.http, "POST", "/access/v1/evaluation", Some("wrong"), body).0, 401);
    let (status, meta) = http_request(server.http, "GET", "/.well-known/authzen-configuration", None, "");
    assert_eq!(status, 200, "{meta}");
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert!(
        meta["access_evaluation_endpoint"].as_str().unwrap().ends_with("/access/v1/evaluation"),
        "{meta}"
    );
    // Content-Type must be JSON.
    let request = format!(
        "POST /access/v1/evaluation HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Type: text/plain\r\nX-Request-ID: req-42\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, head, reply) = http_exchange(server.http, &request);
    assert_eq!(status, 400, "{reply}");
    assert!(head.contains("x-request-id: req-42"), "{head}");
    let request = request.replace("text/plain", "application/json");
    let (status, head, reply) = http_exchange(server.http, &request);
    assert_eq!(status, 200, "{reply}");
    assert!(head.contains("x-request-id: req-42"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    // The wrong method: 405 with Allow.
    let request = format!("GET /access/v1/evaluation HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nConnection: close\r\n\r\n");
    let (status, head, _) = http_exchange(server.http, &request);
    assert_eq!(status, 405);
    assert!(head.contains("allow: post"), "{head}");
    // Malformed JSON: 400, and the server keeps serving.
    assert_eq!(http_request(server.http, "POST", "/access/v1/evaluation", Some(KEY), "{not json").0, 400);
    assert_eq!(http_request(server.http, "POST", "/access/v1/evaluation", Some(KEY), body).0, 200);
}
