//! The official SpiceDB Python client (`authzed`) against two `purview serve` nodes sharing one
//! PostgreSQL database: the script `tests/it/server/py/two_nodes.py` writes on node A and asks
//! node B at once, at least as fresh as the write's ZedToken (and the other way round once),
//! while a Watch on B follows the writes; this test asserts each answer.

use super::Pg;
use crate::server::python::run_script;
use crate::server::{Server, KEY};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const HAS: &str = "PERMISSIONSHIP_HAS_PERMISSION";
const NO: &str = "PERMISSIONSHIP_NO_PERMISSION";
const USERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
const DOCUMENTS: [&str; 4] = ["d1", "d2", "d3", "d4"];

/// One write of the script and what must hold right after it, on the other node.
struct Step {
    label: &'static str,
    /// The node asked (the one that did not write).
    on: &'static str,
    /// Who may view which document.
    viewers: &'static [(&'static str, &'static [&'static str])],
    /// Every relationship of type `document`.
    relationships: &'static [&'static str],
    /// What a Watch on B limited to `document` reports for the write (sorted), if anything.
    watched: &'static [&'static str],
}

/// The script's writes in order (`WRITES_ON_A`, then `WRITE_ON_B`); `view = viewer + owner`.
const STEPS: &[Step] = &[
    Step {
        label: "owner_alice",
        on: "B",
        viewers: &[("d1", &["alice"])],
        relationships: &["document:d1#owner@user:alice"],
        watched: &["OPERATION_TOUCH document:d1#owner@user:alice"],
    },
    Step {
        // Group eng has no member yet.
        label: "viewers",
        on: "B",
        viewers: &[("d1", &["alice"]), ("d2", &["bob"])],
        relationships: &[
            "document:d1#owner@user:alice",
            "document:d1#viewer@group:eng#member",
            "document:d2#viewer@user:bob",
        ],
        watched: &[
            "OPERATION_TOUCH document:d1#viewer@group:eng#member",
            "OPERATION_TOUCH document:d2#viewer@user:bob",
        ],
    },
    Step {
        // A group membership: no document changed, so the watch says nothing.
        label: "member_bob",
        on: "B",
        viewers: &[("d1", &["alice", "bob"]), ("d2", &["bob"])],
        relationships: &[
            "document:d1#owner@user:alice",
            "document:d1#viewer@group:eng#member",
            "document:d2#viewer@user:bob",
        ],
        watched: &[],
    },
    Step {
        label: "delete_owner_alice",
        on: "B",
        viewers: &[("d1", &["bob"]), ("d2", &["bob"])],
        relationships: &["document:d1#viewer@group:eng#member", "document:d2#viewer@user:bob"],
        watched: &["OPERATION_DELETE document:d1#owner@user:alice"],
    },
    Step {
        // carol views d1 through group eng -> group leads.
        label: "carol_and_nested",
        on: "B",
        viewers: &[("d1", &["bob", "carol"]), ("d3", &["carol"])],
        relationships: &["document:d1#viewer@group:eng#member", "document:d3#owner@user:carol"],
        watched: &[
            "OPERATION_DELETE document:d2#viewer@user:bob",
            "OPERATION_TOUCH document:d3#owner@user:carol",
        ],
    },
    Step {
        label: "viewer_dave",
        on: "A",
        viewers: &[("d1", &["bob", "carol"]), ("d3", &["carol"]), ("d4", &["dave"])],
        relationships: &[
            "document:d1#viewer@group:eng#member",
            "document:d3#owner@user:carol",
            "document:d4#viewer@user:dave",
        ],
        watched: &["OPERATION_TOUCH document:d4#viewer@user:dave"],
    },
];

impl Step {
    /// The script's record of this step: checks, lookups both ways, relationships.
    fn expected(&self) -> Value {
        let viewers: BTreeMap<&str, &[&str]> = self.viewers.iter().copied().collect();
        let may = |d: &str, u: &str| viewers.get(d).is_some_and(|us| us.contains(&u));
        let mut checks = serde_json::Map::new();
        for d in DOCUMENTS {
            for u in USERS {
                checks.insert(format!("{d}@{u}"), json!(if may(d, u) { HAS } else { NO }));
            }
        }
        let resources: BTreeMap<&str, Vec<&str>> =
            USERS.iter().map(|&u| (u, DOCUMENTS.iter().copied().filter(|&d| may(d, u)).collect())).collect();
        let subjects: BTreeMap<&str, Vec<&str>> =
            DOCUMENTS.iter().map(|&d| (d, USERS.iter().copied().filter(|&u| may(d, u)).collect())).collect();
        let first = format!("{}@{}", DOCUMENTS[0], USERS[0]);
        let exact = json!({ first.clone(): checks[&first].clone() });
        json!({
            "label": self.label,
            "on": self.on,
            "exact": exact,
            "checks": checks,
            "lookup_resources": resources,
            "lookup_subjects": subjects,
            "relationships": self.relationships,
        })
    }
}

/// Where two JSON values differ, as `path: got X, expected Y` lines.
fn differences(path: &str, got: &Value, want: &Value, out: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => differences(&format!("{path}.{k}"), gv, wv, out),
                    None => out.push(format!("{path}.{k}: missing, expected {wv}")),
                }
            }
            for k in g.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("{path}.{k}: unexpected {}", g[k]));
            }
        }
        _ if got != want => out.push(format!("{path}: got {got}, expected {want}")),
        _ => {}
    }
}

#[test]
fn the_official_python_client_writes_on_one_node_and_reads_on_another() {
    let pg = Pg::start();
    pg.migrate();
    let a = Server::start(&["--datastore", &pg.url]);
    let b = Server::start(&["--datastore", &pg.url]);
    let (addr_a, addr_b) = (a.grpc.to_string(), b.grpc.to_string());
    let out = run_script("two_nodes.py", &[&addr_a, &addr_b, KEY], &[]);

    let mut failures = Vec::new();
    for (key, want) in [
        ("schema_token_nonempty", json!(true)),
        // The schema's token from A, used on B: the schema is there, d1 has no relationship.
        ("check_on_b_after_schema", json!(NO)),
        ("schema_read_on_b", json!(true)),
        ("watch_complete", json!(true)),
    ] {
        differences(key, out.get(key).unwrap_or(&Value::Null), &want, &mut failures);
    }

    // Read-your-writes across nodes: every answer right after each write reflects it.
    let steps = out["steps"].as_array().cloned().unwrap_or_default();
    if steps.len() != STEPS.len() {
        failures.push(format!("{} steps recorded, expected {}", steps.len(), STEPS.len()));
    }
    for (i, (got, step)) in steps.iter().zip(STEPS).enumerate() {
        differences(
            &format!("steps[{i}] ({} read on {})", step.label, step.on),
            got,
            &step.expected(),
            &mut failures,
        );
    }

    // The watch on B saw every document write, A's and B's own, one response per write, in the
    // order they were written, each naming the write's token as changes_through.
    let watched: Vec<Value> = STEPS
        .iter()
        .filter(|s| !s.watched.is_empty())
        .map(|s| json!({"write": s.label, "updates": s.watched}))
        .collect();
    differences("watch", &out["watch"], &json!(watched), &mut failures);

    assert!(
        failures.is_empty(),
        "the Python client saw, across two nodes:\n  {}\n(whole output:\n{out:#})\n--- node A log\n{}\n--- node B log\n{}\n--- PostgreSQL log\n{}",
        failures.join("\n  "),
        a.log(),
        b.log(),
        pg.log()
    );
    drop((a, b));
}
