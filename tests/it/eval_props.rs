//! Algebraic properties of the reference evaluator on random schemas and graphs:
//! `check(s, p, o)` ⇔ `o ∈ what(s, p)` ⇔ `s ∈ who(o, p)`, with conditional answers agreeing too.

use crate::gen::{relationship, schema_gen, tuple_gen, DOCS, GROUPS, USERS};
use proptest::prelude::*;
use purview::api::{Engine, View};
use purview::api::{Page, SubjectFilter, WhoResult};
use purview::eval::{EvalOptions, Tri};
use purview::store::{ObjectRef, SubjectRef, WriteOp};
use purview::Purview;

/// Membership of `s` according to a `who` answer.
pub fn who_membership(who: &WhoResult, s: &SubjectRef) -> Tri {
    if let Some(f) = who.subjects.iter().find(|f| &f.subject == s) {
        return f.outcome;
    }
    match &who.wildcard {
        Some(w) => w.excluded.iter().find(|f| &f.subject == s).map(|f| f.outcome).unwrap_or(w.outcome),
        _ => Tri::False,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn check_who_and_what_agree(
        sg in schema_gen(),
        tuples in prop::collection::vec(tuple_gen(), 0..30),
        ctx in prop::option::weighted(0.3, 0i64..10),
    ) {
        let Some(schema) = sg.compile_stratified() else { return Ok(()) };
        for engine in [Engine::Reference, Engine::Index] {
            let pv = Purview::with_engine(schema.clone(), engine);
            let ops: Vec<WriteOp> = tuples.iter().map(|t| WriteOp::Touch(relationship(&pv.schema(), t))).collect();
            pv.write(&ops).unwrap();
            let mut opts = EvalOptions::default();
            if let Some(x) = ctx {
                opts.context.insert("x".into(), x.into());
            }
            agree_with_check(&pv.snapshot(), &opts)?;
        }
    }
}

/// Every pair of a doc and a subject: `check` agrees with `who` and `what`.
fn agree_with_check(snap: &View, opts: &EvalOptions) -> Result<(), TestCaseError> {
    {
        let schema = snap.schema();
        let doc = schema.type_def(schema.type_id("doc").unwrap()).clone();
        let mut subjects: Vec<SubjectRef> =
            (0..=USERS).map(|u| SubjectRef::new("user", format!("u{u}"), None)).collect();
        subjects.push(SubjectRef::new("user", "*", None));
        subjects.extend((0..GROUPS).map(|g| SubjectRef::new("group", format!("g{g}"), Some("member"))));
        for rel in &doc.relations {
            let mut what_cache = std::collections::HashMap::new();
            for d in 0..DOCS {
                let object = ObjectRef::new("doc", format!("d{d}"));
                let who_users = snap.who(&object, &rel.name, &SubjectFilter::parse("user"), opts).unwrap();
                let who_groups =
                    snap.who(&object, &rel.name, &SubjectFilter::parse("group#member"), opts).unwrap();
                for s in &subjects {
                    let check = snap.check(&object, &rel.name, s, opts).unwrap().tri();
                    let who = if s.relation.is_some() { &who_groups } else { &who_users };
                    prop_assert_eq!(
                        check,
                        who_membership(who, s),
                        "who vs check: {}#{}@{}",
                        object,
                        rel.name,
                        s
                    );
                    if s.is_wildcard() {
                        continue;
                    }
                    let what = what_cache
                        .entry(s.clone())
                        .or_insert_with(|| snap.what(s, &rel.name, "doc", &Page::default(), opts).unwrap());
                    let in_what = what
                        .objects
                        .iter()
                        .find(|f| f.object == object)
                        .map(|f| f.outcome)
                        .unwrap_or(Tri::False);
                    prop_assert_eq!(check, in_what, "what vs check: {}#{}@{}", object, rel.name, s);
                }
            }
        }
    }
    Ok(())
}

#[test]
fn missing_context_is_conditional() {
    use crate::gen::{ExprGen, SchemaGen, SubjGen};
    let sg = SchemaGen {
        relations: vec![vec![SubjGen::UserCond]],
        permissions: vec![ExprGen::Rel(0)],
        group_wildcard: false,
    };
    let pv = Purview::with_engine(sg.compile().unwrap(), Engine::Reference);
    pv.write_text("doc:d0#r0@user:u0[big]\ndoc:d0#r0@user:u1[big:{\"x\":9}]").unwrap();
    let snap = pv.snapshot();
    let o = ObjectRef::new("doc", "d0");
    let check = |u: &str, ctx: Option<i64>| {
        let mut opts = EvalOptions::default();
        if let Some(x) = ctx {
            opts.context.insert("x".into(), x.into());
        }
        snap.check(&o, "p0", &SubjectRef::new("user", u, None), &opts).unwrap().tri()
    };
    assert_eq!(check("u0", None), Tri::Cond);
    assert_eq!(check("u0", Some(6)), Tri::True);
    assert_eq!(check("u0", Some(5)), Tri::False);
    assert_eq!(check("u1", Some(1)), Tri::True, "stored context wins over the request");
}
