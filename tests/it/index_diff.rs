//! Differential tests: the index answers check, who and what exactly as the reference
//! evaluator does, on random schemas and graphs, after every batch of random writes and deletes.

use crate::gen::{relationship, schema_gen, tuple_gen, TupleGen, DOCS, GROUPS, USERS};
use proptest::prelude::*;
use purview::api::{Engine, Page, SubjectFilter, View};
use purview::eval::EvalOptions;
use purview::store::{ObjectRef, SubjectRef, WriteOp};
use purview::Purview;

fn subjects() -> Vec<SubjectRef> {
    let mut v: Vec<SubjectRef> =
        (0..=USERS).map(|u| SubjectRef::new("user", format!("u{u}"), None)).collect();
    v.push(SubjectRef::new("user", "*", None));
    v.extend((0..GROUPS).map(|g| SubjectRef::new("group", format!("g{g}"), Some("member"))));
    v
}

fn same_answers(a: &View, b: &View, opts: &EvalOptions) -> Result<(), TestCaseError> {
    let schema = a.schema().clone();
    for tdef in &schema.types {
        let pool = match tdef.name.as_str() {
            "user" => 0,
            "group" => GROUPS,
            _ => DOCS,
        };
        for rel in &tdef.relations {
            for i in 0..=pool {
                let object = ObjectRef::new(&tdef.name, format!("{}{i}", &tdef.name[..1]));
                for filter in ["user", "group#member"] {
                    let f = SubjectFilter::parse(filter);
                    prop_assert_eq!(
                        a.who(&object, &rel.name, &f, opts),
                        b.who(&object, &rel.name, &f, opts),
                        "who {}#{} {}",
                        object,
                        rel.name,
                        filter
                    );
                }
                for s in subjects() {
                    prop_assert_eq!(
                        a.check(&object, &rel.name, &s, opts),
                        b.check(&object, &rel.name, &s, opts),
                        "check {}#{}@{}",
                        object,
                        rel.name,
                        s
                    );
                }
            }
            for s in subjects() {
                if s.is_wildcard() {
                    continue;
                }
                prop_assert_eq!(
                    a.what(&s, &rel.name, &tdef.name, &Page::default(), opts),
                    b.what(&s, &rel.name, &tdef.name, &Page::default(), opts),
                    "what {}#{} {}",
                    s,
                    rel.name,
                    tdef.name
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn index_matches_reference_at_every_revision(
        sg in schema_gen(),
        batches in prop::collection::vec(prop::collection::vec((prop::bool::weighted(0.25), tuple_gen()), 1..12), 1..6),
        ctx in prop::option::weighted(0.3, 0i64..10),
    ) {
        let Some(schema) = sg.compile() else { return Ok(()) };
        let mut reference = Purview::with_engine(schema.clone(), Engine::Reference);
        let mut index = Purview::with_engine(schema, Engine::Index);
        let mut opts = EvalOptions::default();
        if let Some(x) = ctx {
            opts.context.insert("x".into(), x.into());
        }
        for batch in &batches {
            let ops: Vec<WriteOp> = batch
                .iter()
                .map(|(delete, t): &(bool, TupleGen)| {
                    let r = relationship(&reference.schema(), t);
                    if *delete { WriteOp::Delete(r) } else { WriteOp::Touch(r) }
                })
                .collect();
            let ra = reference.write(&ops);
            let rb = index.write(&ops);
            prop_assert_eq!(ra.is_ok(), rb.is_ok());
            same_answers(&reference.snapshot(), &index.snapshot(), &opts)?;
        }
    }
}

#[test]
fn exclusion_of_a_conditional_subject_is_conditional() {
    use crate::gen::{ExprGen, SchemaGen, SubjGen};
    let sg = SchemaGen {
        relations: vec![vec![SubjGen::User], vec![SubjGen::UserCond]],
        permissions: vec![ExprGen::Excl(Box::new(ExprGen::Rel(0)), Box::new(ExprGen::Rel(1)))],
        group_wildcard: false,
    };
    let schema = sg.compile().unwrap();
    let opts = EvalOptions::default();
    for engine in [Engine::Reference, Engine::Index] {
        let mut pv = Purview::with_engine(schema.clone(), engine);
        pv.write_text("doc:d0#r0@user:u0\ndoc:d0#r1@user:u0[big]").unwrap();
        let snap = pv.snapshot();
        let u0 = SubjectRef::new("user", "u0", None);
        let what = snap.what(&u0, "p0", "doc", &Page::default(), &opts).unwrap();
        assert_eq!(what.objects.len(), 1, "{engine:?}");
        assert_eq!(what.objects[0].outcome, purview::Tri::Cond, "{engine:?}");
    }
}

#[test]
fn all_arrow_fails_on_any_missing_target_even_after_a_conditional_one() {
    use crate::gen::{ExprGen, SchemaGen, SubjGen};
    let sg = SchemaGen {
        relations: vec![vec![SubjGen::UserCond]],
        permissions: vec![ExprGen::Rel(0), ExprGen::ParentArrow(0, purview::syntax::ast::ArrowMode::All)],
        group_wildcard: false,
    };
    let schema = sg.compile().unwrap();
    let opts = EvalOptions::default();
    for engine in [Engine::Reference, Engine::Index] {
        let mut pv = Purview::with_engine(schema.clone(), engine);
        pv.write_text(
            "doc:d0#parent@doc:d1\ndoc:d0#parent@doc:d2\ndoc:d1#r0@user:u0[big]\ndoc:d3#parent@doc:d1",
        )
        .unwrap();
        let snap = pv.snapshot();
        let u0 = SubjectRef::new("user", "u0", None);
        let check = |d: &str| snap.check(&ObjectRef::new("doc", d), "p1", &u0, &opts).unwrap().tri();
        assert_eq!(check("d0"), purview::Tri::False, "{engine:?}: d2 is not viewable");
        assert_eq!(check("d3"), purview::Tri::Cond, "{engine:?}: the only parent is conditional");
        let what = snap.what(&u0, "p1", "doc", &Page::default(), &opts).unwrap();
        let found: Vec<String> = what.objects.iter().map(|f| f.object.to_string()).collect();
        assert_eq!(found, vec!["doc:d3".to_string()], "{engine:?}");
    }
}
