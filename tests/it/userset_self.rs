//! A userset asked about itself: `doc:1#view@doc:1#editor` where `view = viewer + editor`, and
//! through arrows and recursive chains (`group:g2#view@group:g1#view` where g1 is g2's parent).
//! Real SpiceDB allows these (a userset is a member of itself; checked against it in
//! `server::spicedb_diff`), also on an object no relationship names. Check, who, what and
//! explain agree with it on both engines, whichever fast path the index takes.

use purview::api::{compile_schema_as, Engine, Page, SchemaFormat, SubjectFilter};
use purview::eval::{Decision, EvalOptions};
use purview::store::{ObjectRef, SubjectRef, WriteOp};
use purview::Purview;

const SCHEMA: &str = "type user {}
type group {
  relation parent: group
  relation editor: user
  permission view = editor + parent->view
}
type doc {
  relation editor: user
  relation viewer: user
  permission view = viewer + editor
}";

#[test]
fn a_userset_is_a_member_of_itself_everywhere() {
    let schema = compile_schema_as(SchemaFormat::Purview, "s.pv", SCHEMA).unwrap();
    for engine in [Engine::Reference, Engine::Index] {
        let pv = Purview::with_engine(schema.clone(), engine);
        let rels = purview::api::parse_relationships(
            "group:g2#parent@group:g1\ngroup:g3#parent@group:g2\ndoc:1#viewer@user:a",
        )
        .unwrap();
        pv.write(&rels.into_iter().map(WriteOp::Touch).collect::<Vec<_>>()).unwrap();
        let view = pv.snapshot();
        let opts = EvalOptions::default();
        let o = |t: &str, i: &str| ObjectRef::new(t, i);
        let s = |t: &str, i: &str, r: &str| SubjectRef::new(t, i, Some(r));
        let cases = [
            (o("doc", "1"), "view", s("doc", "1", "editor"), true),
            (o("doc", "9"), "view", s("doc", "9", "editor"), true), // no relationship names doc:9
            (o("doc", "1"), "view", s("doc", "2", "editor"), false),
            (o("group", "g2"), "view", s("group", "g1", "view"), true),
            (o("group", "g3"), "view", s("group", "g1", "view"), true),
            (o("group", "g1"), "view", s("group", "g2", "view"), false),
            (o("group", "g1"), "view", s("group", "g1", "editor"), true),
        ];
        for (object, perm, subject, allowed) in cases {
            let want = if allowed { Decision::Allowed } else { Decision::Denied };
            let what = format!("{engine:?} {object}#{perm}@{subject}");
            assert_eq!(view.check(&object, perm, &subject, &opts), Ok(want.clone()), "check {what}");
            let explained = view.explain(&object, perm, &subject, &opts).unwrap();
            assert_eq!(explained.decision, want, "explain {what}");
            if allowed {
                let tree = explained.tree.render();
                assert!(tree.contains("the subject itself"), "explain {what}:\n{tree}");
                assert!(!tree.contains(":?"), "explain names every object: {tree}");
            }
            let filter =
                SubjectFilter::parse(&format!("{}#{}", subject.ty, subject.relation.clone().unwrap()));
            let who = view.who(&object, perm, &filter, &opts).unwrap();
            let found = who.subjects.iter().any(|f| f.subject == subject);
            assert_eq!(found, allowed, "who {what}: {who:?}");
            let objects = view.what(&subject, perm, &object.ty, &Page::default(), &opts).unwrap();
            let found = objects.objects.iter().any(|f| f.object == object);
            assert_eq!(found, allowed, "what {what}: {objects:?}");
        }
    }
}

/// SpiceDB's `use self`: the object itself as a plain subject.
#[test]
fn self_grants_an_object_to_itself_on_both_engines() {
    let text =
        "use self\n\ndefinition user {\n  relation friend: user\n  permission view = self + friend\n}\n";
    let schema = compile_schema_as(SchemaFormat::SpiceDb, "s.zed", text).unwrap();
    for engine in [Engine::Reference, Engine::Index] {
        let pv = Purview::with_engine(schema.clone(), engine);
        let rels = purview::api::parse_relationships("user:a#friend@user:b").unwrap();
        pv.write(&rels.into_iter().map(WriteOp::Touch).collect::<Vec<_>>()).unwrap();
        let view = pv.snapshot();
        let opts = EvalOptions::default();
        let u = |i: &str| SubjectRef::new("user", i, None);
        let o = |i: &str| ObjectRef::new("user", i);
        for (object, subject, allowed) in
            [("a", "a", true), ("a", "b", true), ("a", "c", false), ("q", "q", true)]
        {
            let want = if allowed { Decision::Allowed } else { Decision::Denied };
            assert_eq!(
                view.check(&o(object), "view", &u(subject), &opts),
                Ok(want),
                "{engine:?} {object} {subject}"
            );
            let who = view.who(&o(object), "view", &SubjectFilter::parse("user"), &opts).unwrap();
            assert_eq!(
                who.subjects.iter().any(|f| f.subject == u(subject)),
                allowed,
                "{engine:?} who {object}"
            );
            let what = view.what(&u(subject), "view", "user", &Page::default(), &opts).unwrap();
            assert_eq!(
                what.objects.iter().any(|f| f.object == o(object)),
                allowed,
                "{engine:?} what {subject}"
            );
        }
        let tree = view.explain(&o("q"), "view", &u("q"), &opts).unwrap().tree.render();
        assert!(tree.contains("self (user:q itself"), "{tree}");
    }
}
