//! The id-level query API answers exactly as the name API does (which the differential tests
//! hold to the reference evaluator), on both engines, on random schemas and graphs: check,
//! bulk check, who and what on ids, names fetched from the bitmaps on demand; ids resolved on
//! an older view stay good on later ones.

use crate::gen::{relationship, schema_gen, tuple_gen, DOCS, GROUPS, USERS};
use proptest::prelude::*;
use purview::api::{Engine, IdSet, Page, SubjectFilter, View};
use purview::eval::{EvalOptions, Tri};
use purview::store::{ObjectRef, SubjectRef, WriteOp};
use purview::Purview;

fn subjects() -> Vec<SubjectRef> {
    let mut v: Vec<SubjectRef> =
        (0..=USERS).map(|u| SubjectRef::new("user", format!("u{u}"), None)).collect();
    v.push(SubjectRef::new("user", "*", None));
    v.extend((0..GROUPS).map(|g| SubjectRef::new("group", format!("g{g}"), Some("member"))));
    v
}

pub(crate) fn objects(view: &View) -> Vec<ObjectRef> {
    let mut out = Vec::new();
    for tdef in &view.schema().types {
        let pool = match tdef.name.as_str() {
            "user" => 0,
            "group" => GROUPS,
            _ => DOCS,
        };
        out.extend((0..=pool).map(|i| ObjectRef::new(&tdef.name, format!("{}{i}", &tdef.name[..1]))));
    }
    out
}

/// `(name, outcome)` of a set's members, for comparing with the name API.
fn named(view: &View, set: &IdSet) -> Vec<(String, Tri)> {
    view.names(set).zip(set.ids()).map(|(n, (_, t))| (n, t)).collect()
}

fn same(view: &View, ids_view: &View, opts: &EvalOptions) -> Result<(), TestCaseError> {
    let schema = view.schema().clone();
    let mut bulk = Vec::new();
    let mut singles = Vec::new();
    for object in objects(view) {
        let tdef = schema.type_def(schema.type_id(&object.ty).unwrap());
        let oid = ids_view.object_id(&object).unwrap();
        for rel in &tdef.relations {
            let p = ids_view.permission_id(&object.ty, &rel.name).unwrap();
            for s in subjects() {
                let sid = ids_view.subject_id(&s).unwrap();
                let by_ids = view.check_ids(&oid, p, &sid, opts);
                let by_names = view.check(&object, &rel.name, &s, opts);
                prop_assert_eq!(&by_ids, &by_names, "check {}#{}@{}", object, rel.name, s);
                bulk.push((oid.clone(), p, sid));
                singles.push(by_names);
            }
            for filter in ["user", "group#member"] {
                let f = SubjectFilter::parse(filter);
                let st = ids_view.subject_type(&f).unwrap();
                let (by_ids, by_names) =
                    (view.who_ids(&oid, p, st, opts), view.who(&object, &rel.name, &f, opts));
                match (by_ids, by_names) {
                    (Ok(set), Ok(who)) => {
                        let listed: Vec<(String, Tri)> =
                            who.subjects.iter().map(|f| (f.subject.to_string(), f.outcome)).collect();
                        prop_assert_eq!(named(view, &set), listed, "who {}#{} {}", object, rel.name, filter);
                        let wildcard = who.wildcard.as_ref().map_or(Tri::False, |w| w.outcome);
                        prop_assert_eq!(set.wildcard, wildcard);
                        if let Some(w) = &who.wildcard {
                            for e in &w.excluded {
                                let id = view.subject_id(&e.subject).unwrap().id;
                                prop_assert_eq!(
                                    set.get(id),
                                    e.outcome,
                                    "who {}#{}: {}",
                                    object,
                                    rel.name,
                                    e.subject
                                );
                            }
                        }
                    }
                    (Err(a), Err(b)) => prop_assert_eq!(a, b),
                    (a, b) => prop_assert!(false, "who {}#{}: {:?} vs {:?}", object, rel.name, a, b),
                }
            }
        }
    }
    prop_assert_eq!(view.bulk_check_ids(&bulk, opts), singles);
    for tdef in &schema.types {
        for rel in &tdef.relations {
            let p = ids_view.permission_id(&tdef.name, &rel.name).unwrap();
            for s in subjects().into_iter().filter(|s| !s.is_wildcard()) {
                let sid = ids_view.subject_id(&s).unwrap();
                let by_names = view.what(&s, &rel.name, &tdef.name, &Page::default(), opts);
                match (view.what_ids(&sid, p, opts), by_names) {
                    (Ok(set), Ok(what)) => {
                        let mut listed: Vec<(String, Tri)> =
                            what.objects.iter().map(|f| (f.object.to_string(), f.outcome)).collect();
                        // `what` also names a userset subject's own object when it was never
                        // written; ids name stored objects only.
                        let fresh = s.relation.is_some()
                            && view
                                .object_id(&s.object())
                                .map_or(true, |o| o.id >= view.source().object_count(o.ty));
                        if fresh {
                            listed.retain(|(n, _)| *n != s.object().to_string());
                        }
                        prop_assert_eq!(named(view, &set), listed, "what {}#{} {}", tdef.name, rel.name, s);
                        // Pages of ids concatenate to the whole set.
                        for limit in [1usize, 2, 5] {
                            let mut paged = Vec::new();
                            let mut from = 0;
                            loop {
                                let (page, next) = view.what_ids_page(&sid, p, from, limit, opts).unwrap();
                                prop_assert!(page.ids().count() <= limit);
                                paged.extend(page.ids());
                                match next {
                                    Some(n) => from = n,
                                    None => break,
                                }
                            }
                            prop_assert_eq!(&paged, &set.ids().collect::<Vec<_>>(), "pages of {}", limit);
                        }
                    }
                    (Err(a), Err(b)) => prop_assert_eq!(a, b),
                    (a, b) => {
                        prop_assert!(false, "what {}#{} {}: {:?} vs {:?}", tdef.name, rel.name, s, a, b)
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn id_api_answers_as_the_name_api_on_both_engines(
        sg in schema_gen(),
        first in prop::collection::vec(tuple_gen(), 0..20),
        more in prop::collection::vec(tuple_gen(), 0..10),
        ctx in prop::option::weighted(0.3, 0i64..10),
    ) {
        // Recursion through an exclusion is tested in `exclusion_cycles` and `index_diff`.
        let Some(schema) = sg.compile_stratified() else { return Ok(()) };
        let mut opts = EvalOptions::default();
        if let Some(x) = ctx {
            opts.context.insert("x".into(), x.into());
        }
        // Precomputed permission sets answer as the walk does.
        {
            let reference = Purview::with_engine(schema.clone(), Engine::Reference);
            let index = Purview::with_engine(schema.clone(), Engine::Index);
            let ops: Vec<WriteOp> = first.iter().map(|t| WriteOp::Touch(relationship(&index.schema(), t))).collect();
            let _ = reference.write(&ops);
            let _ = index.write(&ops);
            let view = index.snapshot();
            for tdef in &schema.types {
                for rel in &tdef.relations {
                    for st in ["user", "group"] {
                        let _ = view.precompute(&tdef.name, &rel.name, st, &opts).unwrap();
                    }
                }
            }
            let r = reference.snapshot();
            for object in objects(&view) {
                let tdef = schema.type_def(schema.type_id(&object.ty).unwrap());
                for rel in &tdef.relations {
                    for s in subjects() {
                        prop_assert_eq!(
                            view.check(&object, &rel.name, &s, &opts),
                            r.check(&object, &rel.name, &s, &opts),
                            "precomputed: check {}#{}@{}", object, rel.name, s
                        );
                    }
                }
            }
        }
        for engine in [Engine::Reference, Engine::Index] {
            let pv = Purview::with_engine(schema.clone(), engine);
            let touch = |ts: &[crate::gen::TupleGen]| -> Vec<WriteOp> {
                ts.iter().map(|t| WriteOp::Touch(relationship(&pv.schema(), t))).collect()
            };
            let _ = pv.write(&touch(&first));
            let older = pv.snapshot();
            same(&older, &older, &opts)?;
            // Ids resolved on the older view, used on a later one (fresh names included).
            let _ = pv.write(&touch(&more));
            let later = pv.snapshot();
            let check_later = |o: &ObjectRef, p: &str, s: &SubjectRef| -> Result<(), TestCaseError> {
                let by_old_ids = later.check_ids(
                    &older.object_id(o).unwrap(),
                    older.permission_id(&o.ty, p).unwrap(),
                    &older.subject_id(s).unwrap(),
                    &opts,
                );
                let fresh = |id: u32, ty: u32| id >= older.source().object_count(ty);
                let (oid, sid) = (older.object_id(o).unwrap(), older.subject_id(s).unwrap());
                // An id fresh on the older view still names nothing on the later one.
                if fresh(oid.id, oid.ty) || (!s.is_wildcard() && fresh(sid.id, sid.ty)) {
                    return Ok(());
                }
                prop_assert_eq!(by_old_ids, later.check(o, p, s, &opts), "later check {}#{}@{}", o, p, s);
                Ok(())
            };
            for object in objects(&later) {
                let tdef = schema.type_def(schema.type_id(&object.ty).unwrap());
                for rel in &tdef.relations {
                    for s in subjects() {
                        check_later(&object, &rel.name, &s)?;
                    }
                }
            }
        }
    }
}

#[test]
fn ids_of_the_wrong_type_are_refused() {
    let pv = Purview::from_schema_text(
        "s.pv",
        "type user {}\ntype doc {\n  relation viewer: user\n}\ntype folder {\n  relation viewer: user\n}\n",
    )
    .unwrap();
    pv.write_text("doc:d#viewer@user:u").unwrap();
    let v = pv.snapshot();
    let opts = EvalOptions::default();
    let folder_viewer = v.permission_id("folder", "viewer").unwrap();
    let d = v.object_id(&ObjectRef::parse("doc:d").unwrap()).unwrap();
    let u = v.subject_id(&SubjectRef::parse("user:u").unwrap()).unwrap();
    assert!(v.check_ids(&d, folder_viewer, &u, &opts).is_err());
    assert!(v.permission_id("doc", "nope").is_err());
    assert!(v.permission_id("nope", "viewer").is_err());
}

#[test]
fn what_across_every_type_groups_by_type() {
    let pv = Purview::from_schema_text(
        "s.pv",
        "type user {}\ntype doc {\n  relation viewer: user\n  permission view = viewer\n}\n\
         type folder {\n  relation viewer: user\n  permission view = viewer\n}\ntype team {\n  relation member: user\n}\n",
    )
    .unwrap();
    pv.write_text(
        "doc:d1#viewer@user:ann\ndoc:d2#viewer@user:bob\nfolder:f1#viewer@user:ann\nteam:t#member@user:ann",
    )
    .unwrap();
    let v = pv.snapshot();
    let opts = EvalOptions::default();
    let ann = SubjectRef::parse("user:ann").unwrap();
    let all = v.what_all(&ann, "view", &opts).unwrap();
    let got: Vec<(String, Vec<String>)> = all
        .iter()
        .map(|(t, r)| (t.clone(), r.objects.iter().map(|o| o.object.to_string()).collect()))
        .collect();
    assert_eq!(
        got,
        [
            ("doc".to_string(), vec!["doc:d1".to_string()]),
            ("folder".to_string(), vec!["folder:f1".to_string()])
        ]
    );
    assert!(v.what_all(&ann, "nope", &opts).is_err());
}

/// A bulk load gives every name the same id whatever the number of threads interning names
/// (each type's names are interned by one thread, batch by batch in hand-over order), and the same
/// relationships: checked on runs of relationships of one shape long enough to be handed to
/// the interning threads in batches, with types on both sides and names recurring across
/// batches.
#[test]
fn a_bulk_load_gives_the_same_ids_on_any_number_of_interning_threads() {
    const SCHEMA: &str = "type user {}\n\
        type group {\n  relation member: user | group#member\n}\n\
        type folder {\n  relation viewer: user | group#member\n}\n\
        type doc {\n  relation parent: folder | doc\n  relation viewer: user | group#member | user:*\n}\n\
        type tag {\n  relation r0: user | group#member\n  relation r1: user | group#member\n  \
        relation r2: user | group#member\n  relation r3: user | group#member\n  \
        relation r4: user | group#member\n  relation r5: user | group#member\n}\n";
    let shapes = [
        ("group", "member", "user", "u", ""),
        ("group", "member", "group", "g", "#member"),
        ("folder", "viewer", "group", "g", "#member"),
        ("doc", "parent", "folder", "f", ""),
        ("doc", "parent", "doc", "d", ""),
        ("doc", "viewer", "user", "u", ""),
        ("doc", "viewer", "user", "*", ""),
    ];
    // A small deterministic generator (xorshift).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut lines = Vec::new();
    for _ in 0..40 {
        let (ty, rel, sty, prefix, srel) = shapes[next(shapes.len() as u64) as usize];
        for _ in 0..1 + next(1500) {
            let resource = format!("{}{}", &ty[..1], next(3000));
            let subject = if prefix == "*" { "*".to_string() } else { format!("{prefix}{}", next(3000)) };
            lines.push(format!("{ty}:{resource}#{rel}@{sty}:{subject}{srel}"));
        }
    }
    // Then shapes alternating line by line, more of them than the loader keeps batches for
    // (19), with names recurring.
    let tags: Vec<(String, &str, &str)> =
        (0..6).flat_map(|k| [(format!("r{k}"), "user", "u"), (format!("r{k}"), "group", "g")]).collect();
    for _ in 0..30_000 {
        let pick = next((shapes.len() + tags.len()) as u64) as usize;
        match (shapes.get(pick), tags.get(pick.saturating_sub(shapes.len()))) {
            (Some(&(ty, rel, sty, prefix, srel)), _) => {
                let subject = if prefix == "*" { "*".to_string() } else { format!("{prefix}{}", next(3000)) };
                lines.push(format!("{ty}:{}{}#{rel}@{sty}:{subject}{srel}", &ty[..1], next(3000)));
            }
            (None, Some((rel, sty, prefix))) => {
                let srel = if *sty == "group" { "#member" } else { "" };
                lines.push(format!("tag:t{}#{rel}@{sty}:{prefix}{}{srel}", next(3000), next(3000)));
            }
            (None, None) => {}
        }
    }
    let load = |threads: usize| {
        let pv = Purview::from_schema_text("s.pv", SCHEMA).unwrap();
        let mut loader = pv.bulk_loader().unwrap().with_interning_threads(threads);
        for line in &lines {
            loader.push_text(line).unwrap();
        }
        loader.finish::<std::convert::Infallible>().unwrap();
        pv
    };
    let ids = |pv: &Purview| {
        let view = pv.snapshot();
        let mut names: Vec<ObjectRef> = lines
            .iter()
            .flat_map(|l| {
                let r = purview::store::Relationship::parse(l).unwrap();
                [r.resource.clone(), r.subject.object()]
            })
            .filter(|o| o.id != "*")
            .collect();
        names.sort();
        names.dedup();
        let ids: Vec<String> =
            names.iter().map(|o| format!("{o} {:?}", view.object_id(o).unwrap())).collect();
        (ids, view.relationship_lines())
    };
    let one = ids(&load(0));
    assert!(one.0.len() > 10_000, "{} names", one.0.len());
    for threads in [1, 2, 3, 4] {
        let other = ids(&load(threads));
        assert!(one.0 == other.0, "ids differ with {threads} interning threads");
        assert!(one.1 == other.1, "relationships differ with {threads} interning threads");
    }
}
