//! SpiceDB validation files' expected relations (`validation:`), compared as `zed validate`
//! compares them: subjects, caveated marks, wildcard exclusions and the `is <object#relation>`
//! places each subject was found under.
//!
//! The oracle is SpiceDB's own: `tests/peer/spicedb/expected-relations/` transcribes the cases of
//! SpiceDB's `pkg/development` tests, each with the block SpiceDB generates (which must pass) or
//! the block given with the error SpiceDB reports (which must fail with that error);
//! `tests/peer/zed/schemaexamples/` are zed's example files, unchanged, whose blocks zed accepts.
//! Then every `is` line of the passing files is broken (a place added, or all left out) and the
//! run must report that subject's relationships as different.

use crate::gen::{relationship, schema_gen, tuple_gen, DOCS, USERS};
use proptest::prelude::*;
use purview::api::Engine;
use purview::eval::{EvalOptions, Tri};
use purview::store::{ObjectRef, Relationship, SubjectRef, WriteOp};
use purview::testfile::{run_file, run_paths, Report, RunOptions};
use purview::Purview;
use std::path::{Path, PathBuf};

fn peer(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peer").join(rel)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no files in {}", dir.display());
    files
}

fn show(r: &Report) -> String {
    r.failures
        .iter()
        .map(|f| format!("{}: {}: {}", f.file, f.assertion, f.message))
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(path: &Path, engine: Engine) -> Report {
    run_file(path, &RunOptions { format: None, engine }).unwrap()
}

/// What a transcribed case says zed does: `None` (passes) or the error it reports.
fn zed_outcome(text: &str) -> Option<String> {
    for line in text.lines() {
        if line.starts_with("# zed validate passes") {
            return None;
        }
        if let Some(e) = line.strip_prefix("# zed validate fails: ") {
            return Some(e.to_string());
        }
    }
    panic!("a transcribed case says whether zed validate passes or fails")
}

#[test]
fn spicedb_development_cases_conformance() {
    let (mut passing, mut failing) = (0, 0);
    for f in yaml_files(&peer("spicedb/expected-relations")) {
        let text = std::fs::read_to_string(&f).unwrap();
        let outcome = zed_outcome(&text);
        for engine in [Engine::Index, Engine::Reference] {
            let r = run(&f, engine);
            match &outcome {
                None => assert!(r.is_success() && r.passed > 0, "{}: {}", f.display(), show(&r)),
                Some(error) => {
                    // Only the expected relations fail, with SpiceDB's error.
                    assert!(
                        r.failed == 1 && r.failures[0].assertion.starts_with("validation "),
                        "{}: {}",
                        f.display(),
                        show(&r)
                    );
                    assert!(r.failures[0].message.contains(error.as_str()), "{}: {}", f.display(), show(&r));
                }
            }
        }
        if outcome.is_some() {
            failing += 1;
        } else {
            passing += 1;
        }
    }
    eprintln!("SpiceDB expected-relations cases: {passing} pass as in zed, {failing} fail with zed's error");
    assert!(passing >= 10 && failing >= 9);
}

#[test]
fn zed_schema_examples_conformance() {
    let dir = peer("zed/schemaexamples");
    for engine in [Engine::Index, Engine::Reference] {
        let r = run_paths(std::slice::from_ref(&dir), &RunOptions { format: None, engine }).unwrap();
        eprintln!(
            "zed schema examples [{engine:?}]: {} assertions, {} passed",
            r.passed + r.failed,
            r.passed
        );
        assert!(r.is_success() && r.passed >= 30, "{}", show(&r));
    }
}

/// Each `is` line of the passing files, broken two ways, fails with that subject's relationships
/// named as different (and nothing else fails).
#[test]
fn broken_is_places_are_reported_conformance() {
    let mut files = yaml_files(&peer("zed/schemaexamples"));
    files.extend(
        yaml_files(&peer("spicedb/expected-relations"))
            .into_iter()
            .filter(|f| zed_outcome(&std::fs::read_to_string(f).unwrap()).is_none()),
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut broken = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(at) = line.find("] is <") else { continue };
            let subject = &line[line.find('[').unwrap() + 1..at];
            let subject = subject.split(['[', ' ']).next().unwrap();
            let head = &line[..at + "] is ".len()];
            let tail = &line[at + "] is ".len()..];
            let quote = if tail.ends_with('"') {
                "\""
            } else if tail.ends_with('\'') {
                "'"
            } else {
                ""
            };
            for variant in [format!("{head}<nowhere:x#nothing>/{tail}"), format!("{head}{quote}")] {
                let mut changed = lines.clone();
                changed[i] = &variant;
                let p = tmp.path().join(f.file_name().unwrap());
                std::fs::write(&p, changed.join("\n")).unwrap();
                let r = run(&p, Engine::Index);
                let wanted = format!("found different relationships for subject `{subject}`");
                assert!(
                    r.failed == 1 && r.failures[0].message.contains(&wanted),
                    "{} line {}: `{variant}`: {}",
                    f.display(),
                    i + 1,
                    show(&r)
                );
                broken += 1;
            }
        }
    }
    eprintln!("broken `is` lines reported: {broken}");
    assert!(broken > 100);
}

/// What the expansion says of user `u`: `Some` when no condition is on the way, `None` when one
/// is (the expansion does not evaluate conditions).
fn expanded(members: &[purview::api::Member], u: &SubjectRef) -> Option<Tri> {
    let mut caveated = false;
    if let Some(c) = members.iter().find(|m| &m.subject == u) {
        if !c.caveated {
            return Some(Tri::True);
        }
        caveated = true;
    }
    if let Some(w) = members.iter().find(|m| m.subject.is_wildcard() && m.subject.ty == u.ty) {
        match w.excluded.iter().find(|(s, _)| s == u) {
            None if !w.caveated => return Some(Tri::True),
            None => caveated = true,
            Some((_, true)) => caveated = true,
            Some((_, false)) => {}
        }
    }
    if caveated {
        None
    } else {
        Some(Tri::False)
    }
}

/// Request context for the generated condition (`x > 5`): relationships stored without
/// context take `x` from it.
fn with_x(x: i64) -> EvalOptions {
    let mut opts = EvalOptions::default();
    opts.context.insert("x".into(), x.into());
    opts
}

/// Whether the expansion's definite answer `t` agrees with check: the same when check is
/// definite too; when check is conditional (`plain`), an answer the conditions can give, with
/// every condition lacking context false (`low`) or true (`high`).
///
/// The expansion tracks conditions as SpiceDB's does, per subject, and so is sometimes definite
/// where check (SpiceDB's as ours) is not: `(parent->p − r) + parent.all(p) + r` for a user
/// whose `r` and one of two `parent`s have a condition is `* − {u?}` + `*?` + `{u?}`, which the
/// expansion joins to `*` (a union of wildcards keeps only the exclusions both have), while
/// check sees three conditional terms; the answer is `True` for every context.
fn agrees(t: Tri, plain: Tri, low: Tri, high: Tri) -> bool {
    match plain {
        Tri::Cond => low == t || high == t,
        definite => definite == t,
    }
}

#[test]
fn the_expansion_may_be_definite_where_check_is_conditional() {
    use crate::gen::{ExprGen, SchemaGen, SubjGen, TupleGen};
    use purview::syntax::ast::ArrowMode;
    // The case above, found by `membership_agrees_with_check`.
    let sg = SchemaGen {
        relations: vec![vec![SubjGen::UserCond, SubjGen::UserWild]],
        permissions: vec![ExprGen::Union(vec![
            ExprGen::Excl(Box::new(ExprGen::ParentArrow(0, ArrowMode::Any)), Box::new(ExprGen::Rel(0))),
            ExprGen::ParentArrow(0, ArrowMode::All),
            ExprGen::Rel(0),
        ])],
        group_wildcard: true,
    };
    let schema = sg.compile_stratified().expect("the schema compiles");
    let t = |object, relation, subject_pick, subject_id| TupleGen {
        object,
        relation,
        subject_pick,
        subject_id,
        context: None,
        expired: false,
    };
    let tuples =
        [t(11, 142, 19, 24), t(68, 128, 2, 0), t(11, 82, 14, 184), t(142, 68, 133, 0), t(24, 8, 19, 0)];
    let pv = Purview::with_engine(schema, Engine::Index);
    let rels: Vec<Relationship> = tuples.iter().map(|t| relationship(&pv.schema(), t)).collect();
    pv.write(&rels.iter().cloned().map(WriteOp::Touch).collect::<Vec<_>>()).unwrap();
    assert_eq!(
        rels.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "doc:d2#parent@doc:d0[big]",
            "doc:d2#r0@user:u0[big]",
            "doc:d2#parent@doc:d1",
            "doc:d1#r0@user:*",
            "doc:d0#r0@user:*"
        ]
    );
    let snap = pv.snapshot();
    let (object, user) = (ObjectRef::new("doc", "d2"), SubjectRef::new("user", "u0", None));
    let members = snap.membership(&object, "p0", &EvalOptions::default()).unwrap();
    let check = |opts: &EvalOptions| snap.check(&object, "p0", &user, opts).unwrap().tri();
    let (plain, low, high) = (check(&EvalOptions::default()), check(&with_x(0)), check(&with_x(9)));
    assert_eq!(
        (expanded(&members, &user), plain, low, high),
        (Some(Tri::True), Tri::Cond, Tri::True, Tri::True)
    );
    assert!(agrees(Tri::True, plain, low, high));
    // And the comparison can fail.
    assert!(!agrees(Tri::False, plain, low, high));
    assert!(!agrees(Tri::False, Tri::True, Tri::True, Tri::True));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// On random schemas and graphs, the expansion agrees with check wherever it is definite
    /// (see [`agrees`]), and every place a subject was found under holds a relationship naming
    /// it (or its type's wildcard; or, for `self`, is the subject's own).
    #[test]
    fn membership_agrees_with_check(
        sg in schema_gen(),
        tuples in prop::collection::vec(tuple_gen(), 0..30),
    ) {
        let Some(schema) = sg.compile_stratified() else { return Ok(()) };
        let pv = Purview::with_engine(schema, Engine::Index);
        let rels: Vec<Relationship> = tuples.iter().map(|t| relationship(&pv.schema(), t)).collect();
        let ops: Vec<WriteOp> = rels.iter().cloned().map(WriteOp::Touch).collect();
        pv.write(&ops).unwrap();
        let snap = pv.snapshot();
        let opts = EvalOptions::default();
        let stored: Vec<String> = rels
            .iter()
            .filter(|r| r.expires_at.is_none_or(|e| e > opts.at))
            .map(|r| format!("{}#{}@{}", r.resource, r.relation, r.subject))
            .collect();
        let doc = snap.schema().type_def(snap.schema().type_id("doc").unwrap()).clone();
        for rel in &doc.relations {
            for d in 0..DOCS {
                let object = ObjectRef::new("doc", format!("d{d}"));
                let members = snap.membership(&object, &rel.name, &opts).unwrap();
                for u in 0..=USERS {
                    let user = SubjectRef::new("user", format!("u{u}"), None);
                    if let Some(t) = expanded(&members, &user) {
                        let check = |opts: &EvalOptions| snap.check(&object, &rel.name, &user, opts).unwrap().tri();
                        let (plain, low, high) = (check(&opts), check(&with_x(0)), check(&with_x(9)));
                        prop_assert!(
                            agrees(t, plain, low, high),
                            "{}#{}@{}: expansion {:?}, check {:?} ({:?} / {:?} with x = 0 / 9): {:?}",
                            object, rel.name, user, t, plain, low, high, members
                        );
                    }
                }
                for m in &members {
                    let wildcard = SubjectRef::new(&m.subject.ty, "*", None);
                    for place in &m.found_under {
                        let named = stored.contains(&format!("{place}@{}", m.subject))
                            || stored.contains(&format!("{place}@{wildcard}"))
                            || place.starts_with(&format!("{}#", m.subject));
                        prop_assert!(named, "{} found under {} with no relationship there", m.subject, place);
                    }
                }
            }
        }
    }
}
