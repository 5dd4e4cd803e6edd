//! Recursion through an exclusion (`viewer - restricted` where `restricted` leads back to
//! `viewer`): such schemas load, answers are given wherever the data does not cycle through the
//! exclusion, and where it does, every engine and every question fails with the same typed
//! error (`EvalError::ExclusionCycle`) — never a stack overflow, never a guessed answer.

use crate::gen::{relationship, schema_gen, tuple_gen, ExprGen, DOCS};
use crate::index_diff::same_answers;
use proptest::prelude::*;
use purview::api::{compile_schema_as, Engine, Page, SchemaFormat, SubjectFilter};
use purview::eval::{Decision, EvalError, EvalOptions};
use purview::store::{ObjectRef, SubjectRef, WriteOp};
use purview::syntax::ast::ArrowMode;
use purview::Purview;

const OPENFGA_LIKE: &str = "type user {}
type document {
  relation restricted: user | document#viewer
  relation viewer: user = this - restricted
}";

fn load(schema: &str, rels: &str, engine: Engine) -> Purview {
    let s = compile_schema_as(SchemaFormat::Purview, "s.pv", schema).unwrap();
    let pv = Purview::with_engine(s, engine);
    let ops: Vec<WriteOp> =
        purview::api::parse_relationships(rels).unwrap().into_iter().map(WriteOp::Touch).collect();
    pv.write(&ops).unwrap();
    pv
}

#[test]
fn answers_where_the_data_does_not_cycle_and_fails_where_it_does() {
    for engine in [Engine::Reference, Engine::Index] {
        let opts = EvalOptions::default();
        let rels = "document:1#viewer@user:jon\ndocument:2#viewer@user:ann\ndocument:2#restricted@document:3#viewer\n\
                    document:3#viewer@user:ann\ndocument:4#viewer@user:bob\ndocument:4#restricted@document:4#viewer";
        let view = load(OPENFGA_LIKE, rels, engine).snapshot();
        let d = |i: u32| ObjectRef::new("document", i.to_string());
        let u = |n: &str| SubjectRef::new("user", n, None);
        // No cycle: the plain answers.
        assert_eq!(view.check(&d(1), "viewer", &u("jon"), &opts), Ok(Decision::Allowed), "{engine:?}");
        assert_eq!(view.check(&d(2), "viewer", &u("ann"), &opts), Ok(Decision::Denied), "{engine:?}");
        // document:4 restricts its own viewers: bob's answer depends on itself.
        let cycle = Err(EvalError::ExclusionCycle { object: "document:4".into(), relation: "viewer".into() });
        assert_eq!(view.check(&d(4), "viewer", &u("bob"), &opts), cycle, "{engine:?}");
        let who = view.who(&d(4), "viewer", &SubjectFilter::parse("user"), &opts);
        assert!(matches!(who, Err(EvalError::ExclusionCycle { .. })), "{engine:?}: {who:?}");
        // Whoever is not granted the base relation is denied whatever the cycle says.
        assert_eq!(view.check(&d(4), "viewer", &u("jon"), &opts), Ok(Decision::Denied), "{engine:?}");
        // `what` for jon meets no cycle (the base side is empty for him everywhere but 1).
        let what = view.what(&u("jon"), "viewer", "document", &Page::default(), &opts).unwrap();
        let names: Vec<String> = what.objects.iter().map(|o| o.object.to_string()).collect();
        assert_eq!(names, ["document:1"], "{engine:?}");
        let what = view.what(&u("bob"), "viewer", "document", &Page::default(), &opts);
        assert!(matches!(what, Err(EvalError::ExclusionCycle { .. })), "{engine:?}: {what:?}");
    }
}

#[test]
fn permissions_that_can_never_be_granted_load_with_a_warning() {
    let text = "type user {}\ntype doc {\n  relation parent: doc\n  permission view = parent->view\n}";
    let s = compile_schema_as(SchemaFormat::Purview, "s.pv", text).unwrap();
    assert_eq!(s.warnings.len(), 1);
    assert_eq!(s.warnings[0].code, "ungrounded-permission");
    assert_eq!(s.warnings[0].severity, purview::diag::Severity::Warning);
    for engine in [Engine::Reference, Engine::Index] {
        let pv = Purview::with_engine(s.clone(), engine);
        pv.write(&[WriteOp::Touch(
            purview::api::parse_relationships("doc:a#parent@doc:a").unwrap().remove(0),
        )])
        .unwrap();
        let r = pv.snapshot().check(
            &ObjectRef::new("doc", "a"),
            "view",
            &SubjectRef::new("user", "x", None),
            &EvalOptions::default(),
        );
        assert_eq!(r, Ok(Decision::Denied));
    }
}

/// Random schemas whose first permission always recurses through an exclusion
/// (`p0 = X - parent->p0`, or with the arrow deeper inside the excluded side).
fn negative_schema() -> impl Strategy<Value = crate::gen::SchemaGen> {
    (schema_gen(), any::<bool>(), 0usize..3).prop_map(|(mut sg, all, shape)| {
        let mode = if all { ArrowMode::All } else { ArrowMode::Any };
        let arrow = ExprGen::ParentArrow(0, mode);
        let base = sg.permissions[0].clone();
        let excluded = match shape {
            0 => arrow,
            1 => ExprGen::Union(vec![ExprGen::Rel(0), arrow]),
            _ => ExprGen::Inter(vec![arrow, ExprGen::Rel(0)]),
        };
        sg.permissions[0] = ExprGen::Excl(Box::new(base), Box::new(excluded));
        sg
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// The index answers (and fails) exactly as the reference evaluator; without a `parent`
    /// cycle in the data, nothing fails.
    #[test]
    fn index_matches_reference_on_recursion_through_exclusion(
        sg in negative_schema(),
        tuples in prop::collection::vec(tuple_gen(), 0..20),
    ) {
        let Some(schema) = sg.compile() else { return Ok(()) };
        let reference = Purview::with_engine(schema.clone(), Engine::Reference);
        let index = Purview::with_engine(schema, Engine::Index);
        let rels: Vec<_> = tuples.iter().map(|t| relationship(&reference.schema(), t)).collect();
        let ops: Vec<WriteOp> = rels.iter().cloned().map(WriteOp::Touch).collect();
        prop_assert_eq!(reference.write(&ops).is_ok(), index.write(&ops).is_ok());
        let opts = EvalOptions::default();
        same_answers(&reference.snapshot(), &index.snapshot(), &opts)?;
        // Parent edges: without a cycle among them, no question fails.
        let edges: Vec<(String, String)> = rels
            .iter()
            .filter(|r| r.relation == "parent")
            .map(|r| (r.resource.id.clone(), r.subject.object().id.clone()))
            .collect();
        if !has_cycle(&edges) {
            let view = index.snapshot();
            for d in 0..DOCS {
                let o = ObjectRef::new("doc", format!("d{d}"));
                for u in ["u0", "u1"] {
                    let r = view.check(&o, "p0", &SubjectRef::new("user", u, None), &opts);
                    prop_assert!(!matches!(r, Err(EvalError::ExclusionCycle { .. })), "{r:?}");
                }
            }
        }
    }
}

fn has_cycle(edges: &[(String, String)]) -> bool {
    let nodes: std::collections::BTreeSet<&String> = edges.iter().flat_map(|(a, b)| [a, b]).collect();
    nodes.iter().any(|&start| {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![start];
        while let Some(n) = todo.pop() {
            for (a, b) in edges {
                if a == n {
                    if b == start {
                        return true;
                    }
                    if seen.insert(b) {
                        todo.push(b);
                    }
                }
            }
        }
        false
    })
}

#[test]
fn validate_shows_the_warning_and_query_the_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("s.pv");
    std::fs::write(
        &schema,
        "type user {}\ntype doc {\n  relation parent: doc\n  permission view = parent->view\n}\n",
    )
    .unwrap();
    let r = crate::cli::purview(&["validate", schema.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("1 warning"), "{}", r.stdout);
    assert!(r.stderr.contains("warning[ungrounded-permission]"), "{}", r.stderr);

    let schema = dir.path().join("c.pv");
    std::fs::write(&schema, OPENFGA_LIKE).unwrap();
    let data = dir.path().join("d.rels");
    std::fs::write(&data, "document:4#viewer@user:bob\ndocument:4#restricted@document:4#viewer\n").unwrap();
    let (s, d) = (schema.to_str().unwrap(), data.to_str().unwrap());
    let r = crate::cli::purview(&["query", "--schema", s, "--data", d, "check document:4#viewer@user:bob"]);
    assert_eq!(r.code, 5, "an evaluation error: {} {}", r.stdout, r.stderr);
    assert!(format!("{}{}", r.stdout, r.stderr).contains("exclusion-cycle"), "{} {}", r.stdout, r.stderr);
}
