//! Bulk visibility jobs: full materialization equals the reference evaluator's pairs; before +
//! deltas = after; partitions concatenate to the whole; a failed or cancelled run leaves no
//! output that claims to be complete; the eComms example's deltas; the CLI.

use crate::gen::{relationship, schema_gen, tuple_gen, TupleGen};
use proptest::prelude::*;
use purview::api::{Engine, View};
use purview::eval::EvalOptions;
use purview::index::IndexData;
use purview::materialize::output::{partial_path, AtomicFile};
use purview::materialize::{
    compact, deltas, Change, Format, Job, MaterializeError, Partition, Strategy as How, Target,
};
use purview::schema::Schema;
use purview::store::{Source, WriteOp};
use purview::{Purview, Tri};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

type Triples = BTreeSet<(u32, u32, Tri)>;

fn index_of(pv: &Purview) -> Arc<IndexData> {
    match pv.snapshot() {
        View::Index(d) => d,
        View::Reference(_) => panic!("an index engine"),
    }
}

fn ops_of(schema: &Schema, batch: &[(bool, TupleGen)]) -> Vec<WriteOp> {
    batch
        .iter()
        .map(|(delete, t)| {
            let r = relationship(schema, t);
            if *delete {
                WriteOp::Delete(r)
            } else {
                WriteOp::Touch(r)
            }
        })
        .collect()
}

/// Every permission and relation of `doc`, for users and for group usersets.
fn targets(schema: &Schema) -> Vec<Target> {
    let doc = schema.type_def(schema.type_id("doc").unwrap());
    let mut out = Vec::new();
    for rel in &doc.relations {
        for subject in ["user", "group#member"] {
            out.push(Target::resolve(schema, &format!("doc#{}", rel.name), subject).unwrap());
        }
    }
    out
}

fn triples(data: &IndexData, t: Target, opts: &EvalOptions) -> Triples {
    Job::new(data, t).options(opts.clone()).threads(2).compute().unwrap().triples().collect()
}

fn batches() -> impl Strategy<Value = Vec<Vec<(bool, TupleGen)>>> {
    prop::collection::vec(prop::collection::vec((prop::bool::weighted(0.3), tuple_gen()), 1..10), 2..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn full_materialization_equals_the_reference(sg in schema_gen(), batches in batches()) {
        let Some(schema) = sg.compile_stratified() else { return Ok(()) };
        let index = Purview::with_engine(schema.clone(), Engine::Index);
        let reference = Purview::with_engine(schema.clone(), Engine::Reference);
        for b in &batches {
            let ops = ops_of(&schema, b);
            prop_assert_eq!(index.write(&ops).is_ok(), reference.write(&ops).is_ok());
        }
        let (data, oracle) = (index_of(&index), reference.snapshot());
        let opts = EvalOptions::default();
        for t in targets(&schema) {
            let mut expected = Triples::new();
            for o in 0..data.object_count(t.object_type) {
                let object = data.object_ref(purview::store::Obj { ty: t.object_type, id: o });
                for s in 0..data.object_count(t.subject_type) {
                    let subject = data.subject_ref(purview::store::Subject { ty: t.subject_type, id: s, rel: t.subject_relation });
                    let d = oracle.check(&object, t.relation_name(&schema), &subject, &opts).unwrap().tri();
                    if d != Tri::False {
                        expected.insert((s, o, d));
                    }
                }
            }
            prop_assert_eq!(triples(&data, t, &opts), expected, "{}", t.permission_name(&schema));
        }
    }

    #[test]
    fn before_plus_deltas_is_after(
        sg in schema_gen(),
        setup in prop::collection::vec((prop::bool::weighted(0.1), tuple_gen()), 4..24),
        change in prop::collection::vec((prop::bool::weighted(0.5), tuple_gen()), 1..5),
    ) {
        let Some(schema) = sg.compile_stratified() else { return Ok(()) };
        let pv = Purview::with_engine(schema.clone(), Engine::Index);
        let opts = EvalOptions::default();
        let _ = pv.write(&ops_of(&schema, &setup));
        let before = index_of(&pv);
        let ops = ops_of(&schema, &change);
        if pv.write(&ops).is_err() {
            return Ok(());
        }
        let after = index_of(&pv);
        for t in targets(&schema) {
            let (start, end) = (triples(&before, t, &opts), triples(&after, t, &opts));
            for strategy in [How::Auto, How::Objects, How::Subjects] {
                let mut state = start.clone();
                let ds = deltas(&before, &after, &ops, &t, &opts, strategy, Partition::default()).unwrap();
                for d in &ds {
                    let pair = (d.subject, d.object, d.outcome);
                    let applied = match d.change {
                        Change::Removed => state.remove(&pair),
                        Change::Added => state.insert(pair),
                    };
                    prop_assert!(applied, "{:?} does not apply ({})", d, t.permission_name(&schema));
                }
                prop_assert_eq!(&state, &end, "{} {:?}", t.permission_name(&schema), strategy);
            }
        }
    }

    #[test]
    fn partitions_concatenate_to_the_whole(sg in schema_gen(), batches in batches(), n in 1..5u32) {
        let Some(schema) = sg.compile_stratified() else { return Ok(()) };
        let pv = Purview::with_engine(schema.clone(), Engine::Index);
        for b in &batches {
            let _ = pv.write(&ops_of(&schema, b));
        }
        let data = index_of(&pv);
        for t in targets(&schema) {
            for format in [Format::Csv, Format::Jsonl, Format::Compact] {
                let whole = output(&data, t, format, Partition::default());
                let mut parts = Vec::new();
                for i in 0..n {
                    parts.extend(output(&data, t, format, Partition { index: i, count: n }));
                }
                if format == Format::Compact {
                    let (a, b) = (compact::read(&whole).unwrap(), compact::read(&parts).unwrap());
                    prop_assert_eq!(a.triples(), b.triples());
                    prop_assert_eq!(b.segments.len() as u32, n);
                } else {
                    prop_assert_eq!(String::from_utf8(parts).unwrap(), String::from_utf8(whole).unwrap());
                }
            }
        }
    }
}

fn output(data: &IndexData, t: Target, format: Format, p: Partition) -> Vec<u8> {
    let mut out = Vec::new();
    Job::new(data, t).partition(p).threads(2).write_to(format, &mut out).unwrap();
    out
}

/// A sink that fails after `left` bytes, like a full disk.
struct Failing<'a> {
    inner: &'a mut AtomicFile,
    left: usize,
}

impl Write for Failing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.left {
            return Err(std::io::Error::other("injected failure: disk full"));
        }
        self.left -= buf.len();
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A model big enough for several progress reports: 300 users, 40 groups, 3,000 documents (75 a
/// group: long reverse lists, kept as bitmaps).
fn big_model() -> Purview {
    let pv = Purview::from_schema_text(
        "m.pv",
        "type user {}\ntype group { relation member: user | group#member }\n\
         type doc { relation viewer: user | group#member\n relation reviewer: user with big\n \
         permission view = viewer + reviewer }\ncondition big(x: int) { x > 5 }",
    )
    .unwrap();
    let mut text = String::new();
    for u in 0..300 {
        text += &format!("group:g{}#member@user:u{u}\n", u % 40);
    }
    for d in 0..3000 {
        text +=
            &format!("doc:d{d}#viewer@group:g{}#member\ndoc:d{d}#reviewer@user:u{}[big]\n", d % 40, d % 300);
    }
    pv.write_text(&text).unwrap();
    pv
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn a_failed_or_cancelled_run_leaves_no_complete_looking_output_and_a_rerun_completes() {
    let pv = big_model();
    let data = index_of(&pv);
    let t = Target::resolve(&data.schema, "doc#view", "user").unwrap();
    let dir = tempfile::tempdir().unwrap();
    for format in [Format::Csv, Format::Jsonl, Format::Compact] {
        let path: PathBuf = dir.path().join(format!("out-{format:?}"));
        // A stale complete output from an older run is there.
        std::fs::write(&path, "old").unwrap();
        // The sink fails midway.
        let mut file = AtomicFile::create(&path).unwrap();
        let mut failing = Failing { inner: &mut file, left: 5000 };
        let err = Job::new(&data, t).threads(2).write_to(format, &mut failing).unwrap_err();
        assert!(matches!(err, MaterializeError::Io(_)), "{err}");
        assert!(partial_path(&path).exists(), "written to the partial name meanwhile");
        drop(file);
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{format:?}: nothing left");
        // Cancelled after the first progress report.
        let cancel = AtomicBool::new(false);
        let stop = |_: purview::materialize::Phase, _: u64, _: u64| cancel.store(true, Ordering::Relaxed);
        let err =
            Job::new(&data, t).threads(2).cancel_on(&cancel).on_progress(&stop).write_file(format, &path);
        assert!(matches!(err, Err(MaterializeError::Cancelled)), "{err:?}");
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{format:?}: nothing left");
        // A rerun produces the whole result.
        let summary = Job::new(&data, t).write_file(format, &path).unwrap();
        assert_eq!(files_in(dir.path()), vec![format!("out-{format:?}")]);
        let mut whole = Vec::new();
        Job::new(&data, t).write_to(format, &mut whole).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), whole);
        assert_eq!((summary.pairs, summary.conditional), expected_counts());
        std::fs::remove_file(&path).unwrap();
    }
}

/// Pairs and conditional pairs of `big_model`: each doc's group members, and its reviewer
/// (conditional unless also a member).
fn expected_counts() -> (u64, u64) {
    let members = |g: u64| (0..300u64).filter(|u| u % 40 == g).count() as u64;
    let conditional = (0..3000u64).filter(|d| (d % 300) % 40 != d % 40).count() as u64;
    ((0..3000u64).map(|d| members(d % 40)).sum::<u64>() + conditional, conditional)
}

#[test]
fn a_truncated_compact_file_does_not_read() {
    let pv = big_model();
    let data = index_of(&pv);
    let t = Target::resolve(&data.schema, "doc#view", "user").unwrap();
    let mut out = Vec::new();
    Job::new(&data, t).write_to(Format::Compact, &mut out).unwrap();
    let whole = compact::read(&out).unwrap();
    assert_eq!(whole.pairs(), expected_counts().0);
    for cut in [out.len() - 1, out.len() - 17, out.len() / 2, 9] {
        assert!(compact::read(&out[..cut]).is_err(), "cut at {cut}");
    }
}

/// Deltas of `doc#p1` for users, by each strategy, after `change` on top of `setup`.
fn deltas_by_strategy(
    sg: &crate::gen::SchemaGen,
    setup: &str,
    change: &[WriteOp],
) -> Vec<Vec<(String, u32, u32)>> {
    let schema = sg.compile().unwrap();
    let pv = Purview::with_engine(schema.clone(), Engine::Index);
    pv.write_text(setup).unwrap();
    let before = index_of(&pv);
    pv.write(change).unwrap();
    let after = index_of(&pv);
    let t = Target::resolve(&schema, "doc#p1", "user").unwrap();
    let opts = EvalOptions::default();
    [How::Auto, How::Objects, How::Subjects]
        .into_iter()
        .map(|how| {
            let ds = deltas(&before, &after, change, &t, &opts, how, Partition::default()).unwrap();
            ds.iter().map(|d| (format!("{:?} {:?}", d.change, d.outcome), d.subject, d.object)).collect()
        })
        .collect()
}

#[test]
fn a_change_reaches_objects_through_conditional_arrows_and_new_subjects_through_wildcards() {
    use crate::gen::{ExprGen, SchemaGen, SubjGen};
    use purview::syntax::ast::ArrowMode;
    let sg = SchemaGen {
        relations: vec![vec![SubjGen::User, SubjGen::UserWild]],
        permissions: vec![ExprGen::Rel(0), ExprGen::ParentArrow(0, ArrowMode::Any)],
        group_wildcard: false,
    };
    // d0's parent d1 holds only under a condition with its context stored: true.
    let setup = "doc:d0#parent@doc:d1[big:{\"x\": 9}]\ndoc:d1#r0@user:u0\ngroup:g0#member@user:u1";
    let rel = |t: &str| purview::Relationship::parse(t).unwrap();
    let add = [WriteOp::Touch(rel("doc:d1#r0@user:u1"))];
    for by in deltas_by_strategy(&sg, setup, &add) {
        assert_eq!(by, vec![("Added True".to_string(), 1, 0)], "u1 sees d0 through d1");
    }
    // A wildcard on d1, then a new user appears (as a group member): it sees d0 too.
    let setup = "doc:d0#parent@doc:d1[big:{\"x\": 9}]\ndoc:d1#r0@user:*\ndoc:d1#r0@user:u0";
    let new_user = [WriteOp::Touch(rel("group:g0#member@user:u9"))];
    for by in deltas_by_strategy(&sg, setup, &new_user) {
        assert_eq!(by, vec![("Added True".to_string(), 1, 0)], "the new user sees d0");
    }
}

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/materialize").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn example_model() -> Purview {
    let pv = Purview::from_schema_text("schema.pv", &read(&example("schema.pv"))).unwrap();
    pv.write_text(&read(&example("data.rels"))).unwrap();
    pv
}

#[test]
fn the_ecomms_example_deltas_list_which_supervisors_gained_and_lost_which_messages() {
    for name in ["move-user", "reorg"] {
        let pv = example_model();
        let mut ops = Vec::new();
        for line in read(&example(&format!("{name}.changes"))).lines().filter(|l| !l.starts_with("//")) {
            let (sign, rel) = line.split_at(1);
            let rel = purview::Relationship::parse(rel).unwrap();
            ops.push(if sign == "-" { WriteOp::Delete(rel) } else { WriteOp::Touch(rel) });
        }
        let t = Target::resolve(&pv.schema(), "message#view", "user").unwrap();
        let (revision, found) = pv.write_with_deltas(&ops, &[t], &EvalOptions::default()).unwrap();
        assert_eq!(revision, 2);
        let lines: Vec<String> = found
            .iter()
            .map(|d| format!("{},{},{},{},allowed", d.change.name(), d.subject, d.permission, d.object))
            .collect();
        let expected = read(&example(&format!("{name}.expected.csv")));
        assert_eq!(lines, expected.lines().skip(1).collect::<Vec<_>>(), "{name}");
    }
}

#[test]
fn write_with_deltas_is_all_or_nothing_and_needs_the_index() {
    let pv = example_model();
    let t = Target::resolve(&pv.schema(), "message#view", "user").unwrap();
    let bad = [WriteOp::Touch(purview::Relationship::parse("message:m9#tagged@user:tom").unwrap())];
    assert!(matches!(
        pv.write_with_deltas(&bad, &[t], &EvalOptions::default()),
        Err(MaterializeError::Write(_))
    ));
    assert_eq!(pv.revision(), 1, "nothing was written");
    let reference = Purview::with_engine((*pv.schema()).clone(), Engine::Reference);
    let r = reference.write_with_deltas(&[], &[t], &EvalOptions::default());
    assert!(matches!(r, Err(MaterializeError::NeedsIndex)));
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn purview(args: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_purview"))
        .args(args)
        .current_dir(example(""))
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const SOURCE: [&str; 6] = ["materialize", "-s", "schema.pv", "-d", "data.rels", "--permission=message#view"];

#[test]
fn the_cli_writes_the_example_pairs_and_deltas_and_partitions_concatenate() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let run = |extra: &[&str]| purview(&[&SOURCE[..], extra].concat());
    let r = run(&["-o", &out("view.csv"), "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let summary: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!((summary["pairs"].as_u64(), summary["subjects_with_pairs"].as_u64()), (Some(17), Some(5)));
    assert_eq!(read(Path::new(&out("view.csv"))), read(&example("view.expected.csv")));
    let mut parts = String::new();
    for i in 0..3 {
        let r =
            run(&["-o", &out(&format!("part{i}.csv")), "--partition", &format!("{i}/3"), "--threads", "1"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        parts += &read(Path::new(&out(&format!("part{i}.csv"))));
    }
    assert_eq!(parts, read(&example("view.expected.csv")));
    for name in ["move-user", "reorg"] {
        let r = run(&["-o", &out("d.csv"), "--changes", &format!("{name}.changes")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.starts_with("deltas of message#view for user"), "{}", r.stdout);
        assert_eq!(read(Path::new(&out("d.csv"))), read(&example(&format!("{name}.expected.csv"))));
    }
    let r = run(&["-o", &out("view.pvm"), "--format", "compact"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let c = compact::read(&std::fs::read(out("view.pvm")).unwrap()).unwrap();
    let csv: Vec<String> = c.triples().iter().map(|(s, o, _)| format!("{s},view,{o},allowed")).collect();
    let mut expected: Vec<String> =
        read(&example("view.expected.csv")).lines().skip(1).map(String::from).collect();
    let mut got = csv;
    expected.sort();
    got.sort();
    assert_eq!(got, expected);
    let r = run(&["-o", "-", "--format", "jsonl"]);
    assert_eq!(r.stdout.lines().count(), 17);
    assert!(r.stdout.starts_with(
        r#"{"subject":"user:sam","permission":"view","object":"message:m1","outcome":"allowed"}"#
    ));
    assert!(files_in(dir.path()).iter().all(|f| !f.ends_with(".partial")));
}

#[test]
fn the_cli_reports_bad_input_with_exit_4_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.csv").to_string_lossy().into_owned();
    let run = |extra: &[&str]| purview(&[&SOURCE[..], &["-o", &out], extra].concat());
    for (args, message) in [
        (vec!["--partition", "3/3"], "invalid partition `3/3`"),
        (vec!["--partition", "x"], "invalid partition"),
        (vec!["--subject-type", "nobody"], "unknown type `nobody`"),
        (vec!["--format", "compact", "--changes", "reorg.changes"], "not available for deltas"),
        (vec!["--changes", "schema.pv"], "expected `+REL`"),
    ] {
        let r = run(&args);
        assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
    }
    let r = purview(&["materialize", "-s", "schema.pv", "-d", "data.rels", "-p", "message#vew", "-o", &out]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("did you mean `view`"), "{}", r.stderr);
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
}

#[test]
fn names_with_commas_and_quotes_are_quoted_in_csv_and_escaped_in_jsonl() {
    let pv = Purview::from_schema_text(
        "s.pv",
        "type user {}\ntype doc { relation viewer: user with big\n permission view = viewer }\ncondition big(x: int) { x > 5 }",
    )
    .unwrap();
    pv.write_text("doc:a,\"b\"#viewer@user:o'neil,jr[big]").unwrap();
    let data = index_of(&pv);
    let t = Target::resolve(&data.schema, "doc#view", "user").unwrap();
    let text = |f| String::from_utf8(output(&data, t, f, Partition::default())).unwrap();
    assert_eq!(
        text(Format::Csv),
        "subject,permission,object,outcome\n\"user:o'neil,jr\",view,\"doc:a,\"\"b\"\"\",conditional\n"
    );
    let line: serde_json::Value = serde_json::from_str(text(Format::Jsonl).trim()).unwrap();
    assert_eq!(line["object"], "doc:a,\"b\"");
    assert_eq!(line["outcome"], "conditional");
    let c = compact::read(&output(&data, t, Format::Compact, Partition::default())).unwrap();
    assert_eq!(c.triples(), vec![("user:o'neil,jr".to_string(), "doc:a,\"b\"".to_string(), Tri::Cond)]);
}

#[test]
fn partitions_of_a_type_no_relation_points_to_are_cut_early_and_still_concatenate() {
    // `doc` and `message` are never subjects, so `what_in` cuts their reverse lists to the piece.
    for (pv, permission) in [(big_model(), "doc#view"), (example_model(), "message#view")] {
        let data = index_of(&pv);
        let t = Target::resolve(&data.schema, permission, "user").unwrap();
        for format in [Format::Csv, Format::Jsonl] {
            let whole = output(&data, t, format, Partition::default());
            for n in [2, 3, 7] {
                let parts: Vec<u8> =
                    (0..n).flat_map(|i| output(&data, t, format, Partition { index: i, count: n })).collect();
                assert_eq!(String::from_utf8(parts).unwrap(), String::from_utf8(whole.clone()).unwrap());
            }
        }
    }
}
