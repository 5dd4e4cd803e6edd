//! The PostgreSQL visibility table on a throwaway cluster: a full load equals materialize's CSV;
//! catching up by deltas after hundreds of random write batches equals a fresh full run; a
//! follower killed with SIGKILL at random points and restarted ends equal to a fresh full run;
//! row-level security through the table answers as `what` does; bad input fails with exit 4.

use super::{csv_rows, random_data, random_relationship, Rng, SCHEMA};
use crate::postgres::{eventually, Pg};
use purview::api::{SchemaFormat, View};
use purview::materialize::{Format, Job, Target};
use purview::sink::{catch_up, FollowOptions, VisibilityTable};
use purview::storage::{open_postgres, postgres, StoreOptions};
use purview::{EvalOptions, Purview, Relationship, WriteOp};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

fn purview(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_purview")).args(args).stdin(Stdio::null()).output().unwrap()
}

/// The table's rows, sorted.
fn rows(pg: &Pg, table: &str) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = pg
        .psql(&format!("SELECT subject, permission, object, outcome FROM {table}"))
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('|').map(String::from).collect())
        .collect();
    out.sort();
    out
}

/// A fresh full run's pairs, sorted (the CSV output of the same data).
fn fresh(pv: &Purview) -> Vec<Vec<String>> {
    let View::Index(data) = pv.snapshot() else { panic!("an index") };
    let t = Target::resolve(&data.schema, "message#view", "user").unwrap();
    let mut out = Vec::new();
    Job::new(&data, t).write_to(Format::Csv, &mut out).unwrap();
    let mut rows = csv_rows(&String::from_utf8(out).unwrap());
    rows.sort();
    rows
}

fn options() -> FollowOptions {
    FollowOptions {
        permission: "message#view".into(),
        subject_type: "user".into(),
        opts: EvalOptions::default(),
        poll: Duration::from_millis(50),
        threads: Some(2),
    }
}

fn random_batch(rng: &mut Rng, n: u64) -> Vec<WriteOp> {
    (0..1 + rng.next(4))
        .map(|_| {
            let r = Relationship::parse(&random_relationship(rng, n)).unwrap();
            if rng.next(3) == 0 {
                WriteOp::Delete(r)
            } else {
                WriteOp::Touch(r)
            }
        })
        .collect()
}

fn quiet() -> StoreOptions {
    StoreOptions { warn: Arc::new(|_| {}), ..StoreOptions::default() }
}

#[test]
fn full_load_deltas_rls_and_bad_input() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let (schema, data) = (dir.path().join("s.pv"), dir.path().join("d.rels"));
    std::fs::write(&schema, SCHEMA).unwrap();
    std::fs::write(&data, random_data(8, 60, 400)).unwrap();
    let (s, d) = (schema.to_str().unwrap(), data.to_str().unwrap());
    let into = format!("{}?table=visible", pg.url);

    // A full load equals materialize's CSV (conditional pairs included, as `conditional`).
    let out = purview(&["materialize", "-s", s, "-d", d, "-p", "message#view", "--into", &into, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["revision"], 1);
    assert_eq!(summary["full"], true);
    let csv_path = dir.path().join("view.csv");
    let out =
        purview(&["materialize", "-s", s, "-d", d, "-p", "message#view", "-o", csv_path.to_str().unwrap()]);
    assert!(out.status.success());
    let mut csv = csv_rows(&std::fs::read_to_string(&csv_path).unwrap());
    csv.sort();
    assert!(csv.iter().any(|r| r[3] == "conditional"));
    assert_eq!(rows(&pg, "visible"), csv);
    assert_eq!(summary["rows"], csv.len());
    let indexes = pg.psql("SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'visible__g%' ORDER BY 1");
    assert!(
        indexes.contains("(subject text_pattern_ops, permission text_pattern_ops)")
            && indexes.contains("(object text_pattern_ops, permission text_pattern_ops)"),
        "{indexes}"
    );

    // Row-level security: an application table filtered by the visibility table, per user.
    pg.psql(
        "CREATE TABLE messages (id text PRIMARY KEY, body text); \
         INSERT INTO messages SELECT 'message:m' || i, 'body ' || i FROM generate_series(0, 70) i; \
         ALTER TABLE messages ENABLE ROW LEVEL SECURITY; \
         CREATE POLICY visible_messages ON messages FOR SELECT USING (EXISTS (SELECT 1 FROM visible v \
           WHERE v.object = messages.id AND v.permission = 'view' AND v.outcome = 'allowed' \
           AND v.subject = 'user:' || current_user)); \
         CREATE ROLE u1 LOGIN; CREATE ROLE u2 LOGIN; \
         GRANT SELECT ON messages, visible TO u1, u2; \
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO u1, u2;",
    );
    let rls = |user: &str| -> Vec<String> {
        let url = pg.url.replace("purview@", &format!("{user}@"));
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-d", &url, "-c", "SELECT id FROM messages ORDER BY id"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(String::from).collect()
    };
    for user in ["u1", "u2"] {
        let query = format!("message#view@user:{user}");
        let out = purview(&["what", "-s", s, "-d", d, &query, "--json", "--limit", "100000"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("`what --json`: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        let mut expected: Vec<String> = v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["outcome"] == "allowed")
            .map(|o| format!("message:{}", o["object"]["id"].as_str().unwrap()))
            .collect();
        assert!(!expected.is_empty(), "{user} sees something");
        expected.sort();
        let mut got = rls(user);
        got.sort();
        assert_eq!(got, expected, "{user} sees what `what` answers");
    }

    // A second full load (new data) swaps in atomically and the policy keeps working.
    std::fs::write(&data, random_data(9, 60, 400)).unwrap();
    let out = purview(&["materialize", "-s", s, "-d", d, "-p", "message#view", "--into", &into]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        purview(&["materialize", "-s", s, "-d", d, "-p", "message#view", "-o", csv_path.to_str().unwrap()]);
    assert!(out.status.success());
    let mut csv = csv_rows(&std::fs::read_to_string(&csv_path).unwrap());
    csv.sort();
    assert_eq!(rows(&pg, "visible"), csv);
    assert_eq!(pg.psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'visible__g%'").trim(), "1");

    // Bad input: exit 4, nothing written.
    pg.psql("CREATE TABLE other (id int, name text)");
    let bad = [
        format!("{}?table=other", pg.url),
        "postgres://purview@127.0.0.1:1/postgres?table=visible".to_string(),
        pg.url.clone(),
        format!("{}?table=Bad-Name", pg.url),
    ];
    for url in &bad {
        let out = purview(&["materialize", "-s", s, "-d", d, "-p", "message#view", "--into", url]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{url}: {err}");
    }
    assert_eq!(pg.psql("SELECT count(*) FROM other").trim(), "0");
    assert_eq!(pg.psql("SELECT count(*) FROM purview_visibility_state").trim(), "1");
    // Another permission into the same table is refused.
    let out = purview(&["materialize", "-s", s, "-d", d, "-p", "message#viewer", "--into", &into]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn deltas_after_random_batches_equal_a_fresh_run_and_a_killed_follower_resumes_exactly_once() {
    let pg = Pg::start();
    postgres::migrate(&pg.url).unwrap();
    let store = open_postgres(&pg.url, None, quiet(), Duration::from_millis(50)).unwrap();
    let pv = store.purview().clone();
    pv.set_schema(SchemaFormat::Purview, "schema", SCHEMA).unwrap();
    pv.write_text(&random_data(4, 80, 300)).unwrap();
    let into = format!("{}?table=visible", pg.url);

    // In process: a full load, then catch-ups by deltas over a few hundred random batches.
    let mut table = VisibilityTable::connect(&into).unwrap();
    let first = catch_up(&pv, &mut table, &options()).unwrap().unwrap();
    assert!(first.full);
    let mut rng = Rng(0xfeed);
    let mut by_deltas = 0;
    for i in 0..300 {
        let _ = pv.write(&random_batch(&mut rng, 90));
        if i % 7 == 6 {
            if let Some(a) = catch_up(&pv, &mut table, &options()).unwrap() {
                assert!(!a.full, "deltas, not a reload: {}", a.reason);
                by_deltas += 1;
            }
        }
    }
    catch_up(&pv, &mut table, &options()).unwrap();
    assert!(by_deltas > 20);
    assert_eq!(rows(&pg, "visible"), fresh(&pv));
    drop(table);

    // A follower process, killed with SIGKILL at random points while writes go on, restarted.
    let follower = || {
        Command::new(env!("CARGO_BIN_EXE_purview"))
            .args(["materialize", "--datastore", &pg.url, "-p", "message#view", "--into", &into, "--follow"])
            .args(["--poll-ms", "50", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = follower();
    for round in 0..6 {
        for _ in 0..10 + rng.next(30) {
            let _ = pv.write(&random_batch(&mut rng, 90));
            std::thread::sleep(Duration::from_millis(rng.next(15)));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = round;
        child = follower();
    }
    let last = pv.revision();
    let caught = eventually(Duration::from_secs(30), || {
        pg.psql("SELECT revision FROM purview_visibility_state WHERE table_name = 'visible'").trim()
            == last.to_string()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(caught, "the restarted follower caught up with revision {last}");
    assert_eq!(rows(&pg, "visible"), fresh(&pv), "no loss, no duplicates");
    let generations = pg.psql("SELECT generation FROM purview_visibility_state WHERE table_name = 'visible'");
    assert_eq!(generations.trim(), "1", "restarts caught up by deltas, without a full reload");
}

#[test]
fn the_follower_changes_the_table_when_a_relationship_expires_or_starts() {
    let pg = Pg::start();
    let pv = Purview::from_schema_text("s.pv", SCHEMA).unwrap();
    let soon = |s: i64| {
        (chrono::Utc::now() + chrono::Duration::seconds(s)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let (ends, starts) = (soon(3), soon(4));
    pv.write_text(&format!(
        "message:m1#viewer@user:ann[expiration:{ends}]\nmessage:m2#viewer@user:bob\n\
         usergroup:g1#member@user:cat\nmessage:m3#tagged@usergroup:g1\n"
    ))
    .unwrap();
    let into = format!("{}?table=visible", pg.url);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = {
        let (pv, stop, into) = (pv.clone(), stop.clone(), into.clone());
        std::thread::spawn(move || {
            let mut table = VisibilityTable::connect(&into).unwrap();
            purview::sink::follow(&pv, &mut table, &options(), &stop, |_| {}).unwrap();
        })
    };
    let pairs = |pg: &Pg| -> Vec<String> {
        if pg.psql("SELECT to_regclass('visible') IS NOT NULL").trim() != "t" {
            return Vec::new();
        }
        rows(pg, "visible").into_iter().map(|r| format!("{} {}", r[0], r[2])).collect()
    };
    assert!(eventually(Duration::from_secs(10), || pairs(&pg).contains(&"user:ann message:m1".to_string())));
    // A relationship that starts later, written now: not visible yet.
    pv.write_text(&format!("message:m4#viewer@user:dan[valid:{starts}..2099-01-01T00:00:00Z]")).unwrap();
    assert!(eventually(Duration::from_secs(10), || {
        pg.psql("SELECT revision FROM purview_visibility_state").trim() == pv.revision().to_string()
    }));
    assert!(!pairs(&pg).contains(&"user:dan message:m4".to_string()));
    // Both times pass without any write: the follower wakes and the table follows.
    assert!(eventually(Duration::from_secs(15), || {
        let p = pairs(&pg);
        !p.contains(&"user:ann message:m1".to_string()) && p.contains(&"user:dan message:m4".to_string())
    }));
    assert_eq!(rows(&pg, "visible"), fresh(&pv));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    pv.write_text("message:m5#viewer@user:eve").unwrap(); // wakes the follower to stop
    follower.join().unwrap();
}

/// A batch in which one user loses many pairs and one message loses many users (the removals
/// the table deletes by subject and by object, see `sink/rows.rs`), among single changes, and
/// back: the table equals a fresh full run after each. The deletions use the indexes (their
/// plans, logged by auto_explain), and a table whose indexes an older Purview made (the default
/// operator class) is followed as it is.
#[test]
fn large_removals_by_subject_and_by_object_equal_a_fresh_run() {
    let pg = Pg::start();
    postgres::migrate(&pg.url).unwrap();
    let store = open_postgres(&pg.url, None, quiet(), Duration::from_millis(50)).unwrap();
    let pv = store.purview().clone();
    pv.set_schema(SchemaFormat::Purview, "schema", SCHEMA).unwrap();
    let mut data = random_data(5, 40, 200);
    data.push_str("usergroup:g90#member@user:u100\n");
    for m in 0..150 {
        data.push_str(&format!("message:m{m}#tagged@usergroup:g90\n"));
    }
    for u in 0..100 {
        data.push_str(&format!("usergroup:g91#member@user:u{u}\n"));
    }
    data.push_str("message:m500#tagged@usergroup:g91\n");
    data.push_str("message:m700#viewer@user:u5\n"); // removed alone: deleted by pair
    pv.write_text(&data).unwrap();
    // The table's connection logs the plan of every statement (auto_explain), with sequential
    // scans disabled: a statement that cannot use an index still gets a `Seq Scan`.
    let explain = "-c session_preload_libraries=auto_explain -c auto_explain.log_min_duration=0 \
                   -c enable_seqscan=off";
    let into =
        format!("{}?table=visible&options={}", pg.url, explain.replace(' ', "%20").replace('=', "%3D"));
    let mut table = VisibilityTable::connect(&into).unwrap();
    assert!(catch_up(&pv, &mut table, &options()).unwrap().unwrap().full);
    let rel = |s: &str| Relationship::parse(s).unwrap();
    // Conditional pairs too: 80 of user u100's reviews go in one batch.
    let reviews: Vec<WriteOp> = (300..380)
        .map(|m| WriteOp::Touch(rel(&format!("message:m{m}#reviewer@user:u100[in_hours]"))))
        .collect();
    pv.write(&reviews).unwrap();
    catch_up(&pv, &mut table, &options()).unwrap();
    assert_eq!(rows(&pg, "visible"), fresh(&pv));
    let big = [
        rel("usergroup:g90#member@user:u100"),
        rel("message:m500#tagged@usergroup:g91"),
        rel("message:m700#viewer@user:u5"),
    ];
    let mut rng = Rng(0xbead);
    for round in 0..2 {
        let mut batch: Vec<WriteOp> = big.iter().cloned().map(WriteOp::Delete).collect();
        batch.extend(reviews.iter().map(|r| WriteOp::Delete(r.relationship().clone())));
        pv.write(&batch).unwrap();
        // Single changes in the same catch-up.
        let _ = pv.write(&random_batch(&mut rng, 40));
        let a = catch_up(&pv, &mut table, &options()).unwrap().unwrap();
        assert!(!a.full && a.removed >= 150 + 100 + 80, "round {round}: {a:?}");
        assert_eq!(rows(&pg, "visible"), fresh(&pv), "round {round}: after the removals");
        let mut back: Vec<WriteOp> = big.iter().cloned().map(WriteOp::Touch).collect();
        back.extend(reviews.iter().cloned());
        pv.write(&back).unwrap();
        let a = catch_up(&pv, &mut table, &options()).unwrap().unwrap();
        assert!(!a.full && a.added >= 150 + 100 + 80, "round {round}: {a:?}");
        assert_eq!(rows(&pg, "visible"), fresh(&pv), "round {round}: after adding them back");
        if round == 0 {
            // The deletions by subject, by object and by pair find their rows through the
            // bytewise (`text_pattern_ops`) indexes: their plain `=` on default-collation columns.
            let log = pg.log();
            let plans: Vec<&str> =
                log.split("Query Text: ").filter(|p| p.starts_with("DELETE FROM visible__g")).collect();
            let by_pair = |p: &&str| p.contains("AS d(s, o, c)");
            assert!(plans.len() >= 3 && plans.iter().any(by_pair), "{log}");
            for plan in plans {
                let plan = plan.split("LOG:").next().unwrap_or(plan);
                assert!(!plan.contains("Seq Scan on visible__g"), "{plan}");
                assert!(
                    plan.contains("Index Cond: ((subject = ") || plan.contains("Index Cond: ((object = "),
                    "{plan}"
                );
            }
            // The row-level-security query of the README (an index serves it).
            let plan = pg.psql(
                "SET enable_seqscan = off; EXPLAIN SELECT 1 FROM (VALUES ('message:m1')) AS messages(id) \
                 WHERE EXISTS (SELECT 1 FROM visible v WHERE v.object = messages.id AND v.permission = 'view' \
                 AND v.outcome = 'allowed' AND v.subject = 'user:' || 'u100')",
            );
            assert!(
                plan.contains("Index Cond: ((object = ") || plan.contains("Index Cond: ((subject = "),
                "{plan}"
            );
            // A table made by an older Purview (indexes with the default operator class) is
            // followed as it is: the next round runs on it.
            let generation = pg.psql("SELECT generation FROM purview_visibility_state").trim().to_string();
            let live = format!("visible__g{generation}");
            pg.psql(&format!(
                "DROP INDEX {live}_subject; DROP INDEX {live}_object; \
                 CREATE INDEX {live}_subject ON {live} (subject, permission); \
                 CREATE INDEX {live}_object ON {live} (object, permission);"
            ));
        }
    }
}
