//! Valid time: relationships hold on `[valid_from, expires_at)`, every query is answered as of
//! `EvalOptions::at`, and expired relationships are kept, so a question about the past gets the
//! answer that was true then.
//!
//! Property: on random schemas and relationships with random validity intervals, evaluating at
//! time T gives the same answers (check, who, what; both engines) as evaluating a store that holds
//! only the relationships valid at T, stripped of their times.

use crate::gen::{relationship, schema_gen, tuple_gen, TupleGen, DOCS, GROUPS, USERS};
use proptest::prelude::*;
use purview::api::{Engine, Page, SubjectFilter, View};
use purview::eval::EvalOptions;
use purview::schema::{compile, Schema};
use purview::store::relationship::parse_time;
use purview::store::{ObjectRef, Relationship, SubjectRef, WriteOp};
use purview::syntax::ast::{Item, Member};
use purview::Purview;

const TIMES: [&str; 4] =
    ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z"];

/// The generated schema with `with expiration` on every subject type, so that any relationship
/// may carry a validity interval; `None` if it does not compile, or recurses through an
/// exclusion (answers there may be `ExclusionCycle`, tested in `exclusion_cycles`).
fn timed_schema(sg: &crate::gen::SchemaGen) -> Option<Schema> {
    let mut ast = sg.to_ast();
    for item in &mut ast.items {
        if let Item::Type(t) = item {
            for m in &mut t.members {
                if let Member::Relation(r) = m {
                    r.subjects.iter_mut().for_each(|s| s.expiration = true);
                    let mut unique: Vec<purview::syntax::ast::SubjectType> = Vec::new();
                    for s in r.subjects.drain(..) {
                        if !unique.contains(&s) {
                            unique.push(s);
                        }
                    }
                    r.subjects = unique;
                }
            }
        }
    }
    compile(&ast).ok().filter(|s| !purview::schema::SchemaGraph::build(s).has_negative_cycles())
}

fn with_interval(mut r: Relationship, (from, until): (Option<usize>, Option<usize>)) -> Relationship {
    let (from, until) = match (from, until) {
        (Some(a), Some(b)) if a >= b => (Some(b), None),
        other => other,
    };
    r.valid_from = from.map(|i| parse_time(TIMES[i]).unwrap());
    r.expires_at = until.map(|i| parse_time(TIMES[i]).unwrap());
    r
}

fn subjects() -> Vec<SubjectRef> {
    let mut v: Vec<SubjectRef> =
        (0..=USERS).map(|u| SubjectRef::new("user", format!("u{u}"), None)).collect();
    v.extend((0..GROUPS).map(|g| SubjectRef::new("group", format!("g{g}"), Some("member"))));
    v
}

/// A `who` answer in name order.
fn by_name(mut w: purview::api::WhoResult) -> purview::api::WhoResult {
    w.subjects.sort_by(|x, y| x.subject.cmp(&y.subject));
    if let Some(wc) = &mut w.wildcard {
        wc.excluded.sort_by(|x, y| x.subject.cmp(&y.subject));
    }
    w
}

/// Every check, who and what on docs agree between `a` (at `oa`) and `b` (at `ob`).
fn same(a: &View, oa: &EvalOptions, b: &View, ob: &EvalOptions) -> Result<(), TestCaseError> {
    let schema = a.schema().clone();
    let doc = schema.type_def(schema.type_id("doc").unwrap());
    for rel in &doc.relations {
        for d in 0..=DOCS {
            let object = ObjectRef::new("doc", format!("d{d}"));
            for filter in ["user", "group#member"] {
                let f = SubjectFilter::parse(filter);
                // The two stores number objects differently: compare as sets.
                prop_assert_eq!(
                    a.who(&object, &rel.name, &f, oa).map(by_name),
                    b.who(&object, &rel.name, &f, ob).map(by_name),
                    "who {}#{} {}",
                    object,
                    rel.name,
                    filter
                );
            }
            for s in subjects() {
                prop_assert_eq!(
                    a.check(&object, &rel.name, &s, oa),
                    b.check(&object, &rel.name, &s, ob),
                    "check {}#{}@{}",
                    object,
                    rel.name,
                    s
                );
            }
        }
        for s in subjects() {
            let names = |v: &View, o: &EvalOptions| {
                let mut found: Vec<String> = v
                    .what(&s, &rel.name, "doc", &Page::default(), o)
                    .unwrap()
                    .objects
                    .iter()
                    .map(|f| format!("{} {:?}", f.object, f.outcome))
                    .collect();
                found.sort();
                found
            };
            prop_assert_eq!(names(a, oa), names(b, ob), "what {}#{} doc", s, rel.name);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn as_of_t_equals_the_store_as_it_was_at_t(
        schema in schema_gen().prop_filter_map("the schema compiles", |sg| timed_schema(&sg)),
        tuples in prop::collection::vec(
            (tuple_gen(), prop::option::of(0usize..4), prop::option::of(0usize..4)),
            0..24,
        ),
        deletes in prop::collection::vec(tuple_gen(), 0..4),
        probe in prop::sample::select(vec![
            "2023-06-01T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-15T00:00:00Z",
            "2024-02-01T00:00:00Z", "2024-03-15T00:00:00Z", "2025-01-01T00:00:00Z",
        ]),
        ctx in prop::option::weighted(0.3, 0i64..10),
    ) {
        let at = parse_time(probe).unwrap();
        let far = parse_time("2100-01-01T00:00:00Z").unwrap();
        let mut then = EvalOptions { at, ..Default::default() };
        if let Some(x) = ctx {
            then.context.insert("x".into(), x.into());
        }
        let later = EvalOptions { at: far, ..then.clone() };
        for engine in [Engine::Reference, Engine::Index] {
            let history = Purview::with_engine(schema.clone(), engine);
            let ops: Vec<WriteOp> = tuples
                .iter()
                .map(|(t, from, until): &(TupleGen, _, _)| {
                    WriteOp::Touch(with_interval(relationship(&history.schema(), t), (*from, *until)))
                })
                .collect();
            history.write(&ops).unwrap();
            // Deleting is not expiring: a deleted relationship is gone from the past too.
            let dels: Vec<WriteOp> =
                deletes.iter().map(|t| WriteOp::Delete(relationship(&history.schema(), t))).collect();
            history.write(&dels).unwrap();
            let valid_then: Vec<WriteOp> = history_rows(&history.snapshot())
                .into_iter()
                .filter(|r| r.valid_from.is_none_or(|f| f <= at) && r.expires_at.is_none_or(|e| at < e))
                .map(|mut r| {
                    r.valid_from = None;
                    r.expires_at = None;
                    WriteOp::Touch(r)
                })
                .collect();
            let snapshot_then = Purview::with_engine(schema.clone(), engine);
            snapshot_then.write(&valid_then).unwrap();
            same(&history.snapshot(), &then, &snapshot_then.snapshot(), &later)?;
        }
    }
}

/// Every stored relationship of a view, with its times, as text types.
fn history_rows(view: &View) -> Vec<Relationship> {
    match view {
        View::Reference(s) => s.relationships(),
        View::Index(_) => {
            let src = view.source();
            let schema = view.schema().clone();
            let mut out = Vec::new();
            for (ty, tdef) in schema.types.iter().enumerate() {
                for id in 0..src.object_count(ty as u32) {
                    let o = purview::store::Obj { ty: ty as u32, id };
                    for rel in 0..tdef.relations.len() {
                        for (s, a) in src.tuples(o, rel as u32) {
                            let mut r = Relationship::new(
                                src.object_ref(o),
                                tdef.relations[rel].name.clone(),
                                src.subject_ref(s),
                            );
                            r.caveat = a.caveat.as_ref().map(|c| purview::store::CaveatRef {
                                name: schema.condition(c.cond).name.clone(),
                                context: c.context.as_ref().map(|m| (**m).clone()),
                            });
                            r.valid_from = a.valid_from;
                            r.expires_at = a.expires_at;
                            out.push(r);
                        }
                    }
                }
            }
            out
        }
    }
}

/// Expired relationships are history, not garbage: the answer as of a past time is the answer
/// that was true then, on both engines, and a later write does not purge them.
#[test]
fn expired_relationships_are_kept_and_answer_for_their_time() {
    let schema = purview::api::compile_schema(
        "history.pv",
        "type user {}\ntype doc {\n  relation viewer: user with expiration\n  permission view = viewer\n}\n",
    )
    .unwrap();
    for engine in [Engine::Reference, Engine::Index] {
        let pv = Purview::with_engine(schema.clone(), engine);
        pv.write_text(
            "doc:d#viewer@user:ann[expiration:2024-02-01T00:00:00Z]\n\
             doc:d#viewer@user:bob[valid:2024-02-01T00:00:00Z..2024-03-01T00:00:00Z]\n\
             doc:d#viewer@user:cat[valid:2024-03-01T00:00:00Z..]",
        )
        .unwrap();
        pv.write_text("doc:e#viewer@user:dan").unwrap();
        let snap = pv.snapshot();
        let who = |t: &str| {
            let opts = EvalOptions { at: parse_time(t).unwrap(), ..Default::default() };
            let w = snap.who_str("doc:d", "view", "user", &opts).unwrap();
            w.subjects.iter().map(|f| f.subject.id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(who("2024-01-15T00:00:00Z"), ["ann"], "{engine:?}");
        assert_eq!(who("2024-02-01T00:00:00Z"), ["bob"], "{engine:?}: an interval includes its start");
        assert_eq!(who("2024-02-29T23:59:59Z"), ["bob"], "{engine:?}");
        assert_eq!(who("2024-03-01T00:00:00Z"), ["cat"], "{engine:?}: and excludes its end");
        assert_eq!(who("2030-01-01T00:00:00Z"), ["cat"], "{engine:?}");
        assert_eq!(history_rows(&snap).len(), 4, "{engine:?}: nothing was purged");
    }
}
