//! Differential tests: the index answers check, who and what exactly as the reference
//! evaluator does, on random schemas and graphs, after every batch of random writes and deletes.

use crate::gen::{relationship, schema_gen, tuple_gen, TupleGen, DOCS, GROUPS, USERS};
use proptest::prelude::*;
use purview::api::{Engine, Page, SubjectFilter, View};
use purview::eval::{EvalError, EvalOptions};
use purview::store::{ObjectRef, SubjectRef, WriteOp};
use purview::Purview;

fn subjects() -> Vec<SubjectRef> {
    let mut v: Vec<SubjectRef> =
        (0..=USERS).map(|u| SubjectRef::new("user", format!("u{u}"), None)).collect();
    v.push(SubjectRef::new("user", "*", None));
    v.extend((0..GROUPS).map(|g| SubjectRef::new("group", format!("g{g}"), Some("member"))));
    v
}

/// Where the data cycles through an exclusion, whether a question meets the cycle can depend on
/// the order its evaluator tries branches in: an answer that is conditional anyway may then be
/// the cycle's error on one engine. Anything else must be equal.
fn prop_assert_same<T: PartialEq + std::fmt::Debug>(
    a: &Result<T, EvalError>,
    b: &Result<T, EvalError>,
    what: std::fmt::Arguments,
) -> Result<(), TestCaseError> {
    let conditional = |r: &Result<T, EvalError>| format!("{r:?}").contains("Cond");
    let tolerated = match (a, b) {
        (Err(EvalError::ExclusionCycle { .. }), Ok(_)) => conditional(b),
        (Ok(_), Err(EvalError::ExclusionCycle { .. })) => conditional(a),
        _ => false,
    };
    if !tolerated {
        prop_assert_eq!(a, b, "{}", what);
    }
    Ok(())
}

pub(crate) fn same_answers(a: &View, b: &View, opts: &EvalOptions) -> Result<(), TestCaseError> {
    let schema = a.schema().clone();
    // A userset of the resource type too: asked about itself and about other objects.
    let mut subjects = subjects();
    if schema.relation("doc", "p0").is_some() {
        subjects.push(SubjectRef::new("doc", "d0", Some("p0")));
    }
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
                    prop_assert_same(
                        &a.who(&object, &rel.name, &f, opts),
                        &b.who(&object, &rel.name, &f, opts),
                        format_args!("who {}#{} {}", object, rel.name, filter),
                    )?;
                }
                for s in &subjects {
                    prop_assert_same(
                        &a.check(&object, &rel.name, s, opts),
                        &b.check(&object, &rel.name, s, opts),
                        format_args!("check {}#{}@{}", object, rel.name, s),
                    )?;
                }
            }
            for s in &subjects {
                if s.is_wildcard() {
                    continue;
                }
                prop_assert_same(
                    &a.what(s, &rel.name, &tdef.name, &Page::default(), opts),
                    &b.what(s, &rel.name, &tdef.name, &Page::default(), opts),
                    format_args!("what {}#{} {}", s, rel.name, tdef.name),
                )?;
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
        let reference = Purview::with_engine(schema.clone(), Engine::Reference);
        let index = Purview::with_engine(schema, Engine::Index);
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
        let pv = Purview::with_engine(schema.clone(), engine);
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
        let pv = Purview::with_engine(schema.clone(), engine);
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

/// Bulk check answers each request as a single check does, in request order.
fn bulk_matches_single(view: &View, opts: &EvalOptions) -> Result<(), TestCaseError> {
    use purview::api::CheckRequest;
    let schema = view.schema().clone();
    let mut requests = Vec::new();
    for rel in &schema.type_def(schema.type_id("doc").unwrap()).relations {
        for d in 0..=DOCS {
            for s in subjects() {
                requests.push(CheckRequest {
                    object: ObjectRef::new("doc", format!("d{d}")),
                    permission: rel.name.clone(),
                    subject: s,
                });
            }
        }
    }
    let bulk = view.bulk_check(&requests, opts);
    for (r, b) in requests.iter().zip(&bulk) {
        prop_assert_eq!(b, &view.check(&r.object, &r.permission, &r.subject, opts));
    }
    Ok(())
}

/// Paging through `who` and `what` with any page size yields the whole answer, in order (when
/// there is one: not where the data cycles through an exclusion).
fn pages_concatenate(view: &View, opts: &EvalOptions, limit: usize) -> Result<(), TestCaseError> {
    let schema = view.schema().clone();
    for rel in &schema.type_def(schema.type_id("doc").unwrap()).relations {
        for s in subjects().into_iter().filter(|s| !s.is_wildcard()) {
            // Data that cycles through an exclusion fails the whole answer (a page that stops
            // before the cycle may still be answered).
            let Ok(full) = view.what(&s, &rel.name, "doc", &Page::default(), opts) else { continue };
            let mut got = Vec::new();
            let mut page = Page { limit: Some(limit), cursor: None };
            loop {
                let p = view.what(&s, &rel.name, "doc", &page, opts).unwrap();
                prop_assert!(p.objects.len() <= limit);
                got.extend(p.objects);
                match p.cursor {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
            prop_assert_eq!(got, full.objects);
        }
        for d in 0..DOCS {
            let object = ObjectRef::new("doc", format!("d{d}"));
            let f = SubjectFilter::parse("user");
            let Ok(full) = view.who(&object, &rel.name, &f, opts) else { continue };
            let mut got = Vec::new();
            let mut page = Page { limit: Some(limit), cursor: None };
            loop {
                let p = view.who_page(&object, &rel.name, &f, &page, opts).unwrap();
                prop_assert!(p.subjects.len() <= limit);
                prop_assert_eq!(&p.wildcard, &full.wildcard);
                got.extend(p.subjects);
                match p.cursor {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
            prop_assert_eq!(got, full.subjects);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn bulk_check_and_paging_agree_with_single_answers(
        sg in schema_gen(),
        tuples in prop::collection::vec(tuple_gen(), 0..25),
        limit in 1usize..4,
    ) {
        let Some(schema) = sg.compile() else { return Ok(()) };
        for engine in [Engine::Reference, Engine::Index] {
            let pv = Purview::with_engine(schema.clone(), engine);
            let ops: Vec<WriteOp> = tuples.iter().map(|t| WriteOp::Touch(relationship(&pv.schema(), t))).collect();
            pv.write(&ops).unwrap();
            let opts = EvalOptions::default();
            bulk_matches_single(&pv.snapshot(), &opts)?;
            pages_concatenate(&pv.snapshot(), &opts, limit)?;
        }
    }
}

#[test]
fn snapshots_are_isolated_from_later_writes_and_revisions_are_tokens() {
    use crate::gen::{ExprGen, SchemaGen, SubjGen};
    let sg = SchemaGen {
        relations: vec![vec![SubjGen::User]],
        permissions: vec![ExprGen::Rel(0)],
        group_wildcard: false,
    };
    for engine in [Engine::Reference, Engine::Index] {
        let pv = Purview::with_engine(sg.compile().unwrap(), engine);
        let r1 = pv.write_text("doc:d0#r0@user:u0").unwrap();
        let before = pv.snapshot();
        let r2 = pv.write_text("doc:d0#r0@user:u1").unwrap();
        assert!(r2 > r1);
        let u1 = SubjectRef::new("user", "u1", None);
        let d0 = ObjectRef::new("doc", "d0");
        let opts = EvalOptions::default();
        assert_eq!(before.check(&d0, "p0", &u1, &opts).unwrap(), purview::Decision::Denied, "{engine:?}");
        assert_eq!(
            pv.snapshot_at_least(r2).unwrap().check(&d0, "p0", &u1, &opts).unwrap(),
            purview::Decision::Allowed
        );
        assert!(matches!(pv.snapshot_at_least(r2 + 1), Err(purview::EvalError::RevisionNotVisible { .. })));
    }
}

/// Large nests take the parallel paths of the index (gathering members of hundreds of groups,
/// reverse images of hundreds of groups); the answers stay the reference's.
#[test]
fn large_nests_answer_like_the_reference() {
    use crate::gen::{ExprGen, SchemaGen, SubjGen};
    let sg = SchemaGen {
        relations: vec![vec![SubjGen::User]],
        permissions: vec![ExprGen::Rel(0)],
        group_wildcard: false,
    };
    let schema = sg.compile().unwrap();
    let mut text = String::new();
    for g in 1..900 {
        text.push_str(&format!("group:g{}#member@group:g{g}#member\n", (g - 1) / 3));
    }
    for u in 0..3000 {
        text.push_str(&format!("group:g{}#member@user:u{u}\n", 300 + u % 600));
        text.push_str(&format!("group:g{}#member@user:u{u}\n", u % 900));
    }
    // A user directly in 400 groups: its reverse image spans hundreds of groups.
    for g in 400..800 {
        text.push_str(&format!("group:g{g}#member@user:hub\n"));
    }
    let opts = EvalOptions::default();
    let mut answers = Vec::new();
    for engine in [Engine::Reference, Engine::Index] {
        let pv = Purview::with_engine(schema.clone(), engine);
        pv.write_text(&text).unwrap();
        let view = pv.snapshot();
        let who =
            view.who(&ObjectRef::new("group", "g0"), "member", &SubjectFilter::parse("user"), &opts).unwrap();
        let who_groups = view
            .who(&ObjectRef::new("group", "g0"), "member", &SubjectFilter::parse("group#member"), &opts)
            .unwrap();
        let mut what = Vec::new();
        for u in ["u0", "u7", "u2999", "hub"] {
            let s = SubjectRef::new("user", u, None);
            what.push(view.what(&s, "member", "group", &Page::default(), &opts).unwrap());
        }
        let g = SubjectRef::new("group", "g5", Some("member"));
        what.push(view.what(&g, "member", "group", &Page::default(), &opts).unwrap());
        answers.push((who, who_groups, what));
    }
    assert_eq!(answers[0].0.subjects.len(), 3001);
    assert!(answers[0].2[3].objects.len() > 400);
    assert_eq!(answers[0].1.subjects.len(), 900);
    assert_eq!(answers[0], answers[1]);
}

/// Pages of `what` are computed window by window (4k ids, then wider): pages across many
/// windows, with sparse and dense stretches, concatenate to the whole answer.
#[test]
fn what_pages_across_many_windows_concatenate_to_the_whole_answer() {
    let pv = Purview::from_schema_text(
        "s.pv",
        "type user {}\ntype group {\n  relation member: user\n}\ntype doc {\n  relation viewer: user | group#member\n  permission view = viewer\n}\n",
    )
    .unwrap();
    let mut ops =
        vec![WriteOp::Touch(purview::store::Relationship::parse("group:g#member@user:ann").unwrap())];
    for d in 0..60_000u32 {
        // Dense at first, then sparse, then a gap, then through a group.
        let line = match d {
            0..=9_999 if d % 3 == 0 => format!("doc:d{d}#viewer@user:ann"),
            10_000..=29_999 if d % 997 == 0 => format!("doc:d{d}#viewer@user:ann"),
            45_000.. if d % 5 == 0 => format!("doc:d{d}#viewer@group:g#member"),
            _ => format!("doc:d{d}#viewer@user:bob"),
        };
        ops.push(WriteOp::Touch(purview::store::Relationship::parse(&line).unwrap()));
    }
    pv.write(&ops).unwrap();
    let view = pv.snapshot();
    let opts = EvalOptions::default();
    let ann = SubjectRef::new("user", "ann", None);
    let all = view.what(&ann, "view", "doc", &Page::default(), &opts).unwrap();
    assert!(all.cursor.is_none());
    for limit in [1usize, 7, 1000, 5000] {
        let mut got = Vec::new();
        let mut page = Page { limit: Some(limit), cursor: None };
        loop {
            let r = view.what(&ann, "view", "doc", &page, &opts).unwrap();
            assert!(r.objects.len() <= limit);
            got.extend(r.objects);
            match r.cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(got, all.objects, "pages of {limit}");
    }
    assert_eq!(all.objects.len(), 3334 + 20 + 3000);
}
