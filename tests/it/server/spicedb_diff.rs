//! Random differential testing against real SpiceDB: `py/spicedb_diff.py` writes random schemas
//! (usersets, wildcards, union / intersection / exclusion, arrows, `.all()`, recursion through
//! unions and through exclusions, caveats, expiration) and relationships to SpiceDB v1.54 (in
//! process) and to `purview serve`, asks both every check — including usersets asked about
//! themselves (`res0:a#perm@res0:a#rel0`) and about their parents — and a sample of lookups, and
//! reports every disagreement. The test fails on any: each is fixed, or, where SpiceDB
//! contradicts itself (its lookup against its own check), reported apart by the script.
//!
//! `PURVIEW_DIFF_SEED` and `PURVIEW_DIFF_CASES` change the seed and the number of cases; the
//! script runs alone for longer runs (README, "Peer conformance").

use super::oracle::spicedb_library;
use super::python::run_script;
use super::{Server, KEY};

const SEED: u64 = 15;
const CASES: u64 = 100;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).map_or(default, |s| s.parse().unwrap_or_else(|_| panic!("{name} is a number")))
}

#[test]
fn random_schemas_answer_as_real_spicedb_does() {
    let lib = spicedb_library();
    let server = Server::start(&["--memory"]);
    let (seed, cases) = (env_or("PURVIEW_DIFF_SEED", SEED), env_or("PURVIEW_DIFF_CASES", CASES));
    let out = run_script(
        "spicedb_diff.py",
        &[&server.grpc.to_string(), KEY, &seed.to_string(), &cases.to_string()],
        &[("SPICEDB_LIBRARY_PATH", lib.as_path())],
    );
    let count = |what: &str| out["counts"][what].as_u64().unwrap_or(0);
    let empty = Vec::new();
    let disagreements = out["disagreements"].as_array().unwrap_or(&empty);
    for p in out["peer_inconsistencies"].as_array().unwrap_or(&empty) {
        eprintln!("SpiceDB's lookup disagrees with its own check (Purview agrees with SpiceDB's check): {p}");
    }
    eprintln!("counts: {}", out["counts"]);
    let shown: Vec<String> = disagreements.iter().take(20).map(|d| format!("  {d}")).collect();
    assert!(
        disagreements.is_empty(),
        "Purview and SpiceDB disagree {} times (seed {seed}, {cases} cases); the first:\n{}\ncounts: {}",
        disagreements.len(),
        shown.join("\n"),
        out["counts"]
    );
    // The comparison covered what it claims to.
    assert!(count("random schemas") * 10 >= cases * 9, "too many schemas refused: {}", out["counts"]);
    assert!(count("checks compared") >= cases * 200, "{}", out["counts"]);
    assert!(count("checks of a resource's own userset") >= cases, "{}", out["counts"]);
    assert!(count("lookup resources compared") >= cases * 4, "{}", out["counts"]);
    assert!(count("lookup subjects compared") >= cases * 4, "{}", out["counts"]);
    for answer in ["HAS", "NO", "COND"] {
        assert!(
            count(&format!("checks where SpiceDB answered {answer}")) > 0,
            "no {answer}: {}",
            out["counts"]
        );
    }
    drop(server);
}
