//! A throwaway PostgreSQL cluster (initdb in a temp dir, loopback on an ephemeral port; as root,
//! run as the `postgres` user), shared by the tests (`tests/it/postgres/`) and the datastore
//! bench (`benches/postgres.rs`, which includes this file).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A throwaway PostgreSQL cluster; stopped (immediately) and removed when dropped.
pub struct Pg {
    dir: tempfile::TempDir,
    pub port: u16,
    pub url: String,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Finds a PostgreSQL server program: on PATH, or in Debian's versioned directory.
fn program(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.exists()))
        .unwrap_or_default();
    if let Some(p) = on_path {
        return p;
    }
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(debian)
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path().join("bin").join(name)).filter(|p| p.exists()).collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's `{name}` is not installed: these tests need a PostgreSQL 15 server \
             (Debian: `apt-get install postgresql-15`; .ci/run installs it)"
        )
    })
}

/// Runs a PostgreSQL program as the `postgres` user when we are root (the server refuses to
/// run as root).
fn pg_command(name: &str) -> Command {
    let p = program(name);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(p);
        c
    } else {
        Command::new(p)
    }
}

fn run(mut c: Command) -> Output {
    let out = c.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Pg {
    /// initdb and start a cluster (trust authentication, superuser `purview`).
    pub fn start() -> Pg {
        let dir = tempfile::Builder::new().prefix("purview-pg-").tempdir().unwrap();
        if is_root() {
            run({
                let mut c = Command::new("chown");
                c.args(["-R", "postgres:postgres"]).arg(dir.path());
                c
            });
        }
        let mut init = pg_command("initdb");
        init.args(["-D"]).arg(dir.path().join("data")).args(["-A", "trust", "-U", "purview", "--no-sync"]);
        run(init);
        let port = free_port();
        let pg = Pg { url: format!("postgres://purview@127.0.0.1:{port}/postgres"), dir, port };
        pg.start_again();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the (stopped) cluster and waits until it accepts connections.
    pub fn start_again(&self) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D").arg(self.data()).arg("-o").arg(format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on",
            self.port,
            self.dir.path().display()
        ));
        c.arg("-l").arg(self.dir.path().join("log")).args(["-w", "-t", "60", "start"]);
        run(c);
    }

    /// Stops the cluster: `fast` disconnects clients and shuts down cleanly; `immediate` is a
    /// crash (recovery from the WAL on the next start).
    pub fn stop(&self, mode: &str) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D").arg(self.data()).args(["-m", mode, "-w", "-t", "60", "stop"]);
        run(c);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Runs SQL with psql and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &self.url, "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql runs (apt-get install postgresql-client-15)");
        assert!(out.status.success(), "psql {sql:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `purview datastore migrate` against this cluster.
    pub fn migrate(&self) {
        let out = purview(&["datastore", "migrate", &self.url]);
        assert!(out.status.success(), "migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let mut c = pg_command("pg_ctl");
        c.arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]);
        let _ = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

pub fn purview(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_purview"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the purview binary runs")
}

/// Waits until `f` holds, at most `within`.
pub fn eventually(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
