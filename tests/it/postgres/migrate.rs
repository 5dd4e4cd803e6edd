//! `purview datastore migrate`: run twice, and from several processes at once; a node refuses
//! an unmigrated database, or one migrated by a newer Purview, saying what to do.

use super::{purview, Pg};
use std::process::{Command, Stdio};

fn serve_once(url: &str) -> (bool, String) {
    let out = purview(&[
        "serve",
        "--datastore",
        url,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--insecure-no-auth",
    ]);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn migration_is_idempotent_concurrent_safe_and_required() {
    let pg = Pg::start();
    let (ok, err) = serve_once(&pg.url);
    assert!(!ok);
    assert!(err.contains("holds no Purview tables") && err.contains("purview datastore migrate"), "{err}");

    // Four migrators at once: all succeed, the tables are created once.
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_purview"))
                .args(["datastore", "migrate", &pg.url])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let applied =
        outs.iter().filter(|o| String::from_utf8_lossy(&o.stdout).contains("applied migration")).count();
    assert_eq!(applied, 1, "exactly one migrator applied the migrations");
    assert_eq!(pg.psql("SELECT count(*) FROM purview_migrations").trim(), "1");

    // Again: nothing to do.
    let again = purview(&["datastore", "migrate", &pg.url]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to do"));

    // A database migrated by a newer Purview: both refuse, nothing changes.
    pg.psql("INSERT INTO purview_migrations (version, description) VALUES (99, 'from the future')");
    let newer = purview(&["datastore", "migrate", &pg.url]);
    assert!(!newer.status.success());
    assert!(String::from_utf8_lossy(&newer.stderr).contains("newer Purview"));
    let (ok, err) = serve_once(&pg.url);
    assert!(!ok);
    assert!(err.contains("newer Purview"), "{err}");
    assert_eq!(pg.psql("SELECT count(*) FROM purview_migrations").trim(), "2");

    // A bad URL or an unreachable database: a clear error, not a panic.
    let bad = purview(&["datastore", "migrate", "postgres://purview@127.0.0.1:1/nowhere"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("cannot connect") && !err.contains("panicked"), "{err}");
}
