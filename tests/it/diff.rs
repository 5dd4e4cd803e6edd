//! `purview diff`: the pairs a new schema adds and removes equal the set difference of the two
//! schemas' answers on the same relationships (random schemas and mutations, the reference
//! evaluator as the oracle, the new data built independently); the seed examples' schema
//! changes give the gains and losses written in `examples/*/`; the CLI and
//! `store schema --dry-run`.

use crate::gen::{relationship, schema_gen, tuple_gen, ExprGen, SchemaGen, SubjGen, TupleGen};
use proptest::prelude::*;
use purview::api::{Engine, View};
use purview::eval::EvalOptions;
use purview::materialize::{diff, Change, Status, Targets};
use purview::schema::{RelKind, Schema};
use purview::store::{Obj, Source, Subject};
use purview::{Purview, Relationship, Tri, WriteOp};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `(change, subject, permission, object, outcome)` by name.
type Pairs = BTreeSet<(String, String, String, String, String)>;

/// A schema change of the kinds schema authors make.
#[derive(Clone, Debug)]
enum Mutation {
    /// `p_i` becomes `p_i + r_j`, `p_i - r_j` or `p_i & r_j`.
    Wrap { perm: usize, rel: usize, how: u8 },
    /// `p_i` becomes its first member (`a + b` → `a`).
    Unwrap(usize),
    /// `p_i` is replaced by another expression.
    Replace(usize, ExprGen),
    /// A new permission is added.
    Add(ExprGen),
    /// The last permission is removed.
    RemoveLast,
    /// A relation no longer allows one of its subject kinds (orphans its relationships).
    DropSubject { rel: usize, which: usize },
    /// Group membership stops (or starts) allowing `user:*`.
    FlipGroupWildcard,
}

fn fit(e: &ExprGen, nrel: usize, nperm: usize) -> ExprGen {
    match e {
        ExprGen::Rel(i) => ExprGen::Rel(i % nrel),
        ExprGen::Perm(_) => ExprGen::Rel(0),
        ExprGen::Union(v) => ExprGen::Union(v.iter().map(|x| fit(x, nrel, nperm)).collect()),
        ExprGen::Inter(v) => ExprGen::Inter(v.iter().map(|x| fit(x, nrel, nperm)).collect()),
        ExprGen::Excl(a, b) => ExprGen::Excl(Box::new(fit(a, nrel, nperm)), Box::new(fit(b, nrel, nperm))),
        ExprGen::ParentArrow(p, m) => ExprGen::ParentArrow(p % nperm, *m),
        ExprGen::Nil => ExprGen::Nil,
    }
}

fn mutate(sg: &SchemaGen, m: &Mutation) -> SchemaGen {
    let mut out = sg.clone();
    let (nrel, nperm) = (sg.relations.len(), sg.permissions.len());
    match m {
        Mutation::Wrap { perm, rel, how } => {
            let (p, r) = (&mut out.permissions[perm % nperm], ExprGen::Rel(rel % nrel));
            let old = Box::new(p.clone());
            *p = match how % 3 {
                0 => ExprGen::Union(vec![*old, r]),
                1 => ExprGen::Excl(old, Box::new(r)),
                _ => ExprGen::Inter(vec![*old, r]),
            };
        }
        Mutation::Unwrap(i) => {
            let p = &mut out.permissions[i % nperm];
            let next = match &*p {
                ExprGen::Union(v) | ExprGen::Inter(v) => v[0].clone(),
                ExprGen::Excl(a, _) => (**a).clone(),
                other => ExprGen::Union(vec![other.clone(), ExprGen::Rel(0)]),
            };
            *p = next;
        }
        Mutation::Replace(i, e) => out.permissions[i % nperm] = fit(e, nrel, nperm),
        Mutation::Add(e) => out.permissions.push(fit(e, nrel, nperm)),
        Mutation::RemoveLast => {
            out.permissions.pop();
        }
        Mutation::DropSubject { rel, which } => {
            let r = &mut out.relations[rel % nrel];
            if r.len() > 1 {
                r.remove(which % r.len());
            } else {
                r[0] = if matches!(r[0], SubjGen::User) { SubjGen::GroupMember } else { SubjGen::User };
            }
        }
        Mutation::FlipGroupWildcard => out.group_wildcard = !out.group_wildcard,
    }
    out
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let expr = || schema_gen().prop_map(|s| s.permissions[0].clone());
    prop_oneof![
        3 => (0..4usize, 0..4usize, 0..3u8).prop_map(|(perm, rel, how)| Mutation::Wrap { perm, rel, how }),
        1 => (0..4usize).prop_map(Mutation::Unwrap),
        2 => (0..4usize, expr()).prop_map(|(i, e)| Mutation::Replace(i, e)),
        1 => expr().prop_map(Mutation::Add),
        1 => Just(Mutation::RemoveLast),
        2 => (0..4usize, 0..4usize).prop_map(|(rel, which)| Mutation::DropSubject { rel, which }),
        1 => Just(Mutation::FlipGroupWildcard),
    ]
}

fn index_of(pv: &Purview) -> Arc<purview::index::IndexData> {
    match pv.snapshot() {
        View::Index(d) => d,
        View::Reference(_) => panic!("an index engine"),
    }
}

fn ops_of(schema: &Schema, setup: &[TupleGen]) -> Vec<WriteOp> {
    setup.iter().map(|t| WriteOp::Touch(relationship(schema, t))).collect()
}

/// The expected pairs: every permission of `doc` in either schema, checked by the reference
/// evaluator on the old data and on the new data (the old relationships that the new schema
/// accepts, written one by one), for every user and group of the old data.
fn oracle(old: &Purview, new: &Purview, names: &purview::index::IndexData) -> Pairs {
    let opts = EvalOptions::default();
    let (a, b) = (old.snapshot(), new.snapshot());
    let (sa, sb) = (old.schema(), new.schema());
    let mut perms: Vec<String> = Vec::new();
    for s in [&sa, &sb] {
        let doc = s.type_def(s.type_id("doc").unwrap());
        for r in &doc.relations {
            if r.kind == RelKind::Permission && !perms.contains(&r.name) {
                perms.push(r.name.clone());
            }
        }
    }
    let ids = |ty: &str| {
        let t = names.schema.type_id(ty).unwrap();
        (0..names.object_count(t)).map(move |id| Obj { ty: t, id })
    };
    let mut out = Pairs::new();
    for p in &perms {
        for o in ids("doc") {
            let object = names.object_ref(o);
            for (sty, srel) in [("user", None), ("group", Some("member"))] {
                for s in ids(sty) {
                    let rel = srel.map(|_| names.schema.type_def(s.ty).relation_id("member").unwrap());
                    let subject = names.subject_ref(Subject { ty: s.ty, id: s.id, rel });
                    let tri = |v: &View, sc: &Schema| {
                        if sc.relation("doc", p).is_none() {
                            return Tri::False;
                        }
                        v.check(&object, p, &subject, &opts).unwrap().tri()
                    };
                    let (x, y) = (tri(&a, &sa), tri(&b, &sb));
                    if x == y {
                        continue;
                    }
                    let name = |t: Tri| if t == Tri::Cond { "conditional" } else { "allowed" }.to_string();
                    let row = |c: &str, t| {
                        (c.to_string(), subject.to_string(), p.clone(), object.to_string(), name(t))
                    };
                    if x != Tri::False {
                        out.insert(row("removed", x));
                    }
                    if y != Tri::False {
                        out.insert(row("added", y));
                    }
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn the_diff_is_the_set_difference_of_the_two_schemas_answers(
        sg in schema_gen(),
        m in mutation(),
        setup in prop::collection::vec(tuple_gen(), 4..24),
    ) {
        // Schemas that recurse through an exclusion answer `ExclusionCycle` where the data
        // cycles (tested in `exclusion_cycles`); diff reports that error like any evaluation.
        let Some(old_schema) = sg.compile_stratified() else { return Ok(()) };
        let Some(new_schema) = mutate(&sg, &m).compile_stratified() else { return Ok(()) };
        let old = Purview::with_engine(old_schema.clone(), Engine::Index);
        prop_assert!(old.write(&ops_of(&old_schema, &setup)).is_ok());
        let data = index_of(&old);
        // The new data, built without `diff`: each old relationship the new schema accepts.
        let reference_old = Purview::with_engine(old_schema.clone(), Engine::Reference);
        prop_assert!(reference_old.write(&ops_of(&old_schema, &setup)).is_ok());
        let reference_new = Purview::with_engine(new_schema.clone(), Engine::Reference);
        let mut orphaned = 0;
        for line in old.snapshot().relationship_lines() {
            let r = Relationship::parse(&line).unwrap();
            if reference_new.write(&[WriteOp::Touch(r)]).is_err() {
                orphaned += 1;
            }
        }
        let targets = Targets { subject_types: vec!["user".into(), "group#member".into()], ..Targets::default() };
        let report = diff(&data.schema, &Arc::new(new_schema), &data, &targets).unwrap();
        let got: Pairs = report
            .permissions
            .iter()
            .flat_map(|p| report.named(p).collect::<Vec<_>>())
            .map(|d| {
                let outcome = if d.outcome == Tri::Cond { "conditional" } else { "allowed" };
                (d.change.name().to_string(), d.subject.to_string(), d.permission, d.object.to_string(), outcome.to_string())
            })
            .collect();
        prop_assert_eq!(&got, &oracle(&reference_old, &reference_new, &data), "{:?}", m);
        prop_assert_eq!(report.orphaned.iter().map(|o| o.count).sum::<usize>(), orphaned);
        prop_assert_eq!(report.changes_access(), !got.is_empty());
        // A permission reported unchanged was not evaluated, and indeed has no changed pair.
        for p in &report.permissions {
            if p.status == Status::Unchanged {
                prop_assert!(p.pairs.is_empty() && p.subjects_evaluated.is_none());
            }
        }
    }
}

#[test]
fn a_change_to_one_permission_evaluates_no_other_and_only_the_subjects_it_can_concern() {
    let old =
        "type user {}\ntype doc {\n relation viewer: user\n relation banned: user\n relation owner: user\n \
               permission view = viewer + owner\n permission edit = owner\n}";
    let new = old.replace("permission view = viewer + owner", "permission view = viewer + owner - banned");
    let pv = Purview::from_schema_text("old.pv", old).unwrap();
    let mut rels = String::new();
    for i in 0..50 {
        rels += &format!("doc:d{i}#viewer@user:u{i}\ndoc:d{i}#owner@user:o{}\n", i % 5);
    }
    rels += "doc:d3#banned@user:u3\ndoc:d4#banned@user:o4\ndoc:d5#banned@user:nobody";
    pv.write_text(&rels).unwrap();
    let data = index_of(&pv);
    let new = Arc::new(
        purview::api::compile_schema_as(purview::syntax::SchemaFormat::Purview, "new.pv", &new).unwrap(),
    );
    let report = diff(&data.schema, &new, &data, &Targets::default()).unwrap();
    let view = report.permissions.iter().find(|p| p.permission == "doc#view").unwrap();
    let edit = report.permissions.iter().find(|p| p.permission == "doc#edit").unwrap();
    assert_eq!((view.status, edit.status), (Status::Changed, Status::Unchanged));
    assert_eq!(edit.subjects_evaluated, None);
    // Only the banned users were evaluated again, out of 56 users.
    assert_eq!(view.subjects_evaluated, Some(3));
    let lines: Vec<String> =
        report.named(view).map(|d| format!("{} {} {}", d.change.name(), d.subject, d.object)).collect();
    assert_eq!(lines, ["removed user:u3 doc:d3", "removed user:o4 doc:d4"]);
    assert!(report.named(view).all(|d| d.change == Change::Removed));
}

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(path)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn purview(args: &[&str], dir: &Path) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_purview"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Each seed product's schema change (`examples/<product>/diff/new.pv`, its meaning in the
/// README there) gives exactly the gains and losses worked out in `expected.csv`.
#[test]
fn the_seed_examples_schema_changes_give_the_expected_gains_and_losses() {
    for product in ["ecomms", "ethicontrol", "insurance", "ses"] {
        let dir = example(product);
        let r = purview(&["diff", "schema.pv", "diff/new.pv", "--data", "data.rels", "--csv"], &dir);
        let expected = std::fs::read_to_string(dir.join("diff/expected.csv")).unwrap();
        let sorted = |t: &str| {
            let mut v: Vec<String> =
                t.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(String::from).collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&r.stdout), sorted(&expected), "{product}: {}", r.stderr);
        assert_eq!(r.code, 1, "{product}: access changes exit 1");
    }
}

const OLD: &str = "type user {}\ntype group { relation member: user }\ntype doc {\n relation viewer: user | group#member\n \
                   relation owner: user\n permission view = viewer + owner\n permission edit = owner\n}\n";
const DATA: &str =
    "doc:d1#viewer@group:g#member\ngroup:g#member@user:ann\ndoc:d1#owner@user:bob\ndoc:d2#viewer@user:cat\n";

fn files(new: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("old.pv"), OLD).unwrap();
    std::fs::write(dir.path().join("new.pv"), new).unwrap();
    std::fs::write(dir.path().join("data.rels"), DATA).unwrap();
    dir
}

#[test]
fn the_cli_reports_structure_orphans_and_pairs_and_exits_by_whether_access_changes() {
    // Group viewers are no longer allowed (orphaning one relationship), and `edit` is new.
    let new = OLD
        .replace("relation viewer: user | group#member", "relation viewer: user")
        .replace("permission edit = owner", "permission edit = owner\n permission delete = owner");
    let dir = files(&new);
    let args = ["diff", "old.pv", "new.pv", "--data", "data.rels"];
    let r = purview(&args, dir.path());
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    for line in [
        "~ relation doc#viewer",
        "      was: relation viewer: user | group#member",
        "+ permission doc#delete: permission delete = owner",
        "doc#viewer: `doc#viewer`:",
        "      e.g. doc:d1#viewer@group:g#member",
        "doc#view for user (affected through doc#viewer): 0 added (0 subjects gaining), 1 removed (1 subject losing); 2 subjects evaluated again",
        "    - user:ann view doc:d1",
        "    + user:bob delete doc:d1",
        "1 permission unchanged",
    ] {
        assert!(r.stdout.contains(line), "missing `{line}` in\n{}", r.stdout);
    }
    let csv = purview(&[&args[..], &["--csv"]].concat(), dir.path());
    assert_eq!(
        csv.stdout,
        "change,subject,permission,object,outcome\nremoved,user:ann,view,doc:d1,allowed\nadded,user:bob,delete,doc:d1,allowed\n"
    );
    let json = purview(&[&args[..], &["--json"]].concat(), dir.path());
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!((v["added"].as_u64(), v["removed"].as_u64()), (Some(1), Some(1)), "{v}");
    assert_eq!(v["orphaned"][0]["count"], 1, "{v}");
    let view = v["permissions"].as_array().unwrap().iter().find(|p| p["permission"] == "doc#view").unwrap();
    assert_eq!(view["pairs"][0]["subject"], "user:ann", "{v}");
    assert_eq!(view["status"], "affected");
    // No access change: exit 0; the same schema: no structural change either.
    let same = purview(&["diff", "old.pv", "old.pv", "--data", "data.rels"], dir.path());
    assert_eq!(same.code, 0, "{}", same.stderr);
    assert!(same.stdout.contains("Schema changes (old.pv → old.pv):\n  none"), "{}", same.stdout);
}

#[test]
fn the_cli_refuses_bad_input_with_exit_4() {
    let dir = files("type user {\n");
    let r = purview(&["diff", "old.pv", "new.pv", "--data", "data.rels"], dir.path());
    assert_eq!(r.code, 4, "{}", r.stderr);
    let dir = files(OLD);
    let r =
        purview(&["diff", "old.pv", "new.pv", "--data", "data.rels", "--permission", "doc#vew"], dir.path());
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("`vew`") && r.stderr.contains("`view`"), "{}", r.stderr);
    let r =
        purview(&["diff", "old.pv", "new.pv", "--data", "data.rels", "--subject-type", "robot"], dir.path());
    assert_eq!(r.code, 4, "{}", r.stderr);
    // Data that does not fit OLD.
    std::fs::write(dir.path().join("bad.rels"), "doc:d1#editor@user:ann\n").unwrap();
    let r = purview(&["diff", "old.pv", "new.pv", "--data", "bad.rels"], dir.path());
    assert_eq!(r.code, 4, "{}", r.stderr);
    // A store whose relationships do not fit OLD.
    let store = dir.path().join("store");
    std::fs::write(
        dir.path().join("wide.pv"),
        OLD.replace("relation owner: user", "relation owner: user\n relation editor: user"),
    )
    .unwrap();
    let s = store.to_string_lossy().to_string();
    assert_eq!(
        purview(&["store", "init", &s, "--schema", "wide.pv", "--data", "bad.rels"], dir.path()).code,
        0
    );
    let r = purview(&["diff", "old.pv", "new.pv", "--store", &s], dir.path());
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("relation `doc#editor` is removed"), "{}", r.stderr);
}

fn store_info(dir: &Path, store: &str) -> serde_json::Value {
    serde_json::from_str(&purview(&["store", "info", store, "--json"], dir).stdout).unwrap()
}

#[test]
fn a_schema_dry_run_on_a_store_prints_the_report_and_changes_nothing() {
    let new = OLD.replace("permission view = viewer + owner", "permission view = viewer");
    let dir = files(&new);
    let store = dir.path().join("store").to_string_lossy().to_string();
    assert_eq!(
        purview(&["store", "init", &store, "--schema", "old.pv", "--data", "data.rels"], dir.path()).code,
        0
    );
    let before = store_info(dir.path(), &store);
    let r = purview(&["store", "schema", &store, "new.pv", "--dry-run"], dir.path());
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("    - user:bob view doc:d1"), "{}", r.stdout);
    assert!(r.stdout.contains("the store would accept this schema; nothing changed"), "{}", r.stdout);
    // `diff --store` gives the same pairs.
    let d = purview(&["diff", "old.pv", "new.pv", "--store", &store, "--csv"], dir.path());
    assert_eq!(d.stdout, "change,subject,permission,object,outcome\nremoved,user:bob,view,doc:d1,allowed\n");
    // A change the store would refuse: the report, then the refusal (exit 4).
    std::fs::write(
        dir.path().join("narrow.pv"),
        OLD.replace("relation viewer: user | group#member", "relation viewer: user"),
    )
    .unwrap();
    let r = purview(&["store", "schema", &store, "narrow.pv", "--dry-run"], dir.path());
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Orphaned by the new schema") && r.stderr.contains("does not fit"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let after = store_info(dir.path(), &store);
    assert_eq!(before["revision"], after["revision"]);
    assert_eq!(before["schema_revision"], after["schema_revision"]);
    let schema = purview(&["store", "schema", &store], dir.path()).stdout;
    assert_eq!(schema, OLD);
}
