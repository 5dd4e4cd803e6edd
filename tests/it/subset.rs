//! `View::subset` on both engines: sets named in either direction, missing and conditional
//! members, wildcard members, and agreement with a member-by-member `check`.

use proptest::prelude::*;
use purview::api::{compile_schema, Engine, ObjectSet, SubsetResult, View};
use purview::eval::{EvalOptions, Tri};
use purview::store::{ObjectRef, SubjectRef};
use purview::Purview;

/// Roles list the rights they grant (`role#grants@right`); a user's rights come from the rights'
/// side (`right#granted@role#member`), so both directions of a set are exercised.
const SCHEMA: &str = r#"
type user {}
type role {
  relation member: user
  relation grants: right | right:*
}
type right {
  relation granted: role#member | user with on_duty
  relation banned: user
  permission exercise = granted - banned
}
condition on_duty(on_duty: bool) { on_duty }
"#;

fn pv(engine: Engine, rels: &str) -> View {
    let pv = Purview::with_engine(compile_schema("subset.pv", SCHEMA).unwrap(), engine);
    pv.write_text(rels).unwrap();
    pv.snapshot()
}

fn refs(v: &[&str]) -> Vec<ObjectRef> {
    v.iter().map(|s| ObjectRef::parse(s).unwrap()).collect()
}

const DATA: &str = "
role:clerk#grants@right:read
role:clerk#grants@right:write
role:boss#grants@right:read
role:boss#grants@right:write
role:boss#grants@right:approve
role:boss#member@user:bea
role:clerk#member@user:carl
right:read#granted@role:clerk#member
right:write#granted@role:clerk#member
right:read#granted@role:boss#member
right:write#granted@role:boss#member
right:approve#granted@role:boss#member
right:approve#granted@user:carl[on_duty]
right:write#banned@user:bea
";

#[test]
fn every_right_of_a_role_held_or_named_missing() {
    for engine in [Engine::Reference, Engine::Index] {
        let view = pv(engine, DATA);
        let opts = EvalOptions::default();
        let user = |u: &str| SubjectRef::new("user", u, None);
        let clerk = ObjectSet::parse("role:clerk#grants").unwrap();
        let boss = ObjectSet::parse("role:boss#grants").unwrap();
        // Carl holds every right of a clerk: he may hand that role on.
        let r = view.subset(&clerk, &user("carl"), "exercise", &opts).unwrap();
        assert_eq!(r, SubsetResult { holds: true, missing: vec![], conditional: vec![] });
        // Carl holds `approve` only while on duty; Bea is banned from `write`.
        let r = view.subset(&boss, &user("carl"), "exercise", &opts).unwrap();
        assert_eq!(r, SubsetResult { holds: false, missing: vec![], conditional: refs(&["right:approve"]) });
        let mut on_duty = opts.clone();
        on_duty.context.insert("on_duty".into(), true.into());
        assert!(view.subset(&boss, &user("carl"), "exercise", &on_duty).unwrap().holds);
        let r = view.subset(&boss, &user("bea"), "exercise", &opts).unwrap();
        assert_eq!(r, SubsetResult { holds: false, missing: refs(&["right:write"]), conditional: vec![] });
        // The other direction: the rights whose `granted` includes the role's members.
        let boss_rights = ObjectSet::parse("right#granted@role:boss#member").unwrap();
        let r = view.subset(&boss_rights, &user("carl"), "exercise", &opts).unwrap();
        assert_eq!(r.conditional, refs(&["right:approve"]));
        // Nobody lacks the rights of an empty role.
        let empty = ObjectSet::parse("role:nobody#grants").unwrap();
        assert!(view.subset(&empty, &user("zed"), "exercise", &opts).unwrap().holds);
    }
}

#[test]
fn a_wildcard_member_needs_every_object() {
    for engine in [Engine::Reference, Engine::Index] {
        let view =
            pv(engine, "role:root#grants@right:*\nright:read#granted@user:ann[on_duty:{\"on_duty\":true}]");
        let r = view
            .subset(
                &ObjectSet::parse("role:root#grants").unwrap(),
                &SubjectRef::new("user", "ann", None),
                "exercise",
                &EvalOptions::default(),
            )
            .unwrap();
        assert_eq!(r.missing, [ObjectRef::new("right", "*")]);
    }
}

#[test]
fn unknown_names_are_errors() {
    let view = pv(Engine::Index, DATA);
    let opts = EvalOptions::default();
    let carl = SubjectRef::new("user", "carl", None);
    assert!(view.subset(&ObjectSet::parse("role:clerk#grant").unwrap(), &carl, "exercise", &opts).is_err());
    assert!(view.subset(&ObjectSet::parse("rol:clerk#grants").unwrap(), &carl, "exercise", &opts).is_err());
    // A permission no member type has: every member is missing.
    let r = view.subset(&ObjectSet::parse("role:clerk#grants").unwrap(), &carl, "nothing", &opts).unwrap();
    assert_eq!(r.missing, refs(&["right:read", "right:write"]));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// `subset` agrees with checking every member of the set one by one, on both engines.
    #[test]
    fn subset_is_member_by_member_check(
        grants in prop::collection::vec((0u8..3, 0u8..4), 0..10),
        granted in prop::collection::vec((0u8..4, 0u8..3, 0u8..3), 0..12),
        banned in prop::collection::vec((0u8..4, 0u8..3), 0..4),
        duty in prop::option::of(any::<bool>()),
    ) {
        let mut rels = String::new();
        for (r, x) in &grants {
            rels += &format!("role:r{r}#grants@right:x{x}\n");
        }
        for (x, kind, who) in &granted {
            rels += &match kind {
                0 => format!("right:x{x}#granted@role:r{who}#member\n"),
                1 => format!("right:x{x}#granted@user:u{who}[on_duty]\n"),
                _ => format!("role:r{who}#member@user:u{x}\n"),
            };
        }
        for (x, u) in &banned {
            rels += &format!("right:x{x}#banned@user:u{u}\n");
        }
        let mut opts = EvalOptions::default();
        if let Some(d) = duty {
            opts.context.insert("on_duty".into(), d.into());
        }
        for engine in [Engine::Reference, Engine::Index] {
            let view = pv(engine, &rels);
            for r in 0..3 {
                let role = ObjectRef::new("role", format!("r{r}"));
                for u in 0..3 {
                    let user = SubjectRef::new("user", format!("u{u}"), None);
                    let set = ObjectSet::SubjectsOf { object: role.clone(), relation: "grants".into() };
                    let got = view.subset(&set, &user, "exercise", &opts).unwrap();
                    let mut want = SubsetResult::default();
                    for x in 0..4 {
                        let right = ObjectRef::new("right", format!("x{x}"));
                        let member = view.check(&role, "grants", &SubjectRef::new("right", format!("x{x}"), None), &opts).unwrap().tri();
                        let has = view.check(&right, "exercise", &user, &opts).unwrap().tri();
                        match member.not().or(has) {
                            Tri::True => {}
                            Tri::Cond => want.conditional.push(right),
                            Tri::False => want.missing.push(right),
                        }
                    }
                    want.holds = want.missing.is_empty() && want.conditional.is_empty();
                    prop_assert_eq!(got, want, "{:?} role r{} user u{}", engine, r, u);
                }
            }
        }
    }
}
