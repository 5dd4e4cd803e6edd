//! Schema constraints enforced atomically on write, on both engines: every form accepts what it
//! allows and rejects what it forbids with an error naming the constraint, the relationship and
//! the current holders; a rejected batch changes nothing (revision and answers); with valid time
//! a constraint holds at every instant, so hand-overs are allowed and overlaps are not.

mod props;

use purview::api::Engine;
use purview::eval::EvalOptions;
use purview::store::{Relationship, WriteError, WriteOp};
use purview::Purview;

const SCHEMA: &str = r#"
type user {}
type platform {}

type agency {
  relation account-admin: user
  relation complaint-supervisor: user with expiration
  relation complaint-manager: user with expiration
  relation complaint-viewer: user with expiration
  relation staff-director: user with expiration
  permission complaint-role = complaint-supervisor + complaint-manager + complaint-viewer
  constraint at most 2 account-admin
  constraint one of (complaint-supervisor, complaint-manager, complaint-viewer)
  constraint staff-director requires complaint-manager
}

type account {
  relation admin: user with expiration
  relation member: user
  constraint at least 1 admin
}

type team {
  relation account: account
}

type system {
  relation ceo: user with expiration
  constraint at most 1 ceo
}

type company {
  relation assured: platform
  relation partner: platform
  relation administrator: user
  relation private-user: user
  relation power-user: user
  constraint private-user only on assured
  constraint (administrator, private-user) not on partner
}
"#;

fn pv(engine: Engine) -> Purview {
    Purview::with_engine(purview::api::compile_schema("constraints.pv", SCHEMA).unwrap(), engine)
}

fn ops(text: &str) -> Vec<WriteOp> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.strip_prefix("delete ") {
            Some(r) => WriteOp::Delete(Relationship::parse(r).unwrap()),
            None => WriteOp::Touch(Relationship::parse(l).unwrap()),
        })
        .collect()
}

/// Writes `text` and expects it rejected; checks nothing changed and returns the message.
fn rejected(pv: &mut Purview, text: &str) -> String {
    let before = pv.snapshot();
    let who_before = everyone(pv);
    let err = pv.write(&ops(text)).expect_err(text);
    assert!(matches!(err, WriteError::Constraint { .. }), "{err}");
    assert_eq!(pv.revision(), before.revision(), "a rejected batch makes no revision");
    assert_eq!(everyone(pv), who_before, "a rejected batch changes no answer");
    err.to_string()
}

/// Who holds each relation on the objects of this file: the answers a rejection must not change.
fn everyone(pv: &Purview) -> Vec<String> {
    let snap = pv.snapshot();
    let opts = EvalOptions::default();
    let mut out = Vec::new();
    for (object, rels) in [
        ("agency:cfpb", &["account-admin", "complaint-role", "staff-director"][..]),
        ("account:acme", &["admin", "member"][..]),
        ("system:main", &["ceo"][..]),
        ("company:broker", &["administrator", "private-user", "power-user"][..]),
    ] {
        for rel in rels {
            let who = snap.who_str(object, rel, "user", &opts).unwrap();
            out.push(format!("{object}#{rel}: {:?}", who.subjects));
        }
    }
    out
}

#[test]
fn at_most_n_holders() {
    for engine in [Engine::Reference, Engine::Index] {
        let mut pv = pv(engine);
        pv.write(&ops("agency:cfpb#account-admin@user:ann\nagency:cfpb#account-admin@user:bob")).unwrap();
        let msg = rejected(&mut pv, "agency:cfpb#account-admin@user:cat");
        assert_eq!(
            msg,
            "constraint `agency: at most 2 account-admin` rejects writing `agency:cfpb#account-admin@user:cat`: \
             `agency:cfpb` would have 3 `account-admin`, more than 2; current holders: `user:ann`, `user:bob`"
        );
        // In a batch, the violation is blamed on the change that went one too far.
        let fresh = self::pv(engine);
        let err = fresh
            .write(&ops(
                "agency:x#account-admin@user:a\nagency:x#account-admin@user:b\nagency:x#account-admin@user:c",
            ))
            .unwrap_err();
        assert!(err.to_string().contains("rejects writing `agency:x#account-admin@user:c`"), "{err}");
        // Replacing one administrator in one batch is fine.
        pv.write(&ops("delete agency:cfpb#account-admin@user:bob\nagency:cfpb#account-admin@user:cat"))
            .unwrap();
    }
}

#[test]
fn at_least_n_holders_keeps_the_last_admin() {
    for engine in [Engine::Reference, Engine::Index] {
        let mut pv = pv(engine);
        let msg = rejected(&mut pv, "account:acme#member@user:ann");
        assert!(msg.contains("`account:acme` would have 0 `admin`, fewer than 1"), "{msg}");
        pv.write(&ops("account:acme#admin@user:ann\naccount:acme#member@user:bob")).unwrap();
        let msg = rejected(&mut pv, "delete account:acme#admin@user:ann");
        assert_eq!(
            msg,
            "constraint `account: at least 1 admin` rejects deleting `account:acme#admin@user:ann`: \
             `account:acme` would have 0 `admin`, fewer than 1; current holders: `user:ann`"
        );
        // Letting the last admin expire is removing them, later.
        let msg = rejected(&mut pv, "account:acme#admin@user:ann[expiration:2030-01-01T00:00:00Z]");
        assert!(msg.contains("would have 0 `admin` from 2030-01-01T00:00:00Z"), "{msg}");
        // A successor taking over when the first admin's term ends is fine.
        pv.write(&ops("account:acme#admin@user:ann[expiration:2030-01-01T00:00:00Z]\n\
             account:acme#admin@user:cat[valid:2030-01-01T00:00:00Z..]"))
            .unwrap();
        // An account that some relationship points to needs its admin too.
        let msg = rejected(&mut pv, "team:t1#account@account:new");
        assert!(
            msg.contains("rejects writing `team:t1#account@account:new`: `account:new` would have 0 `admin`"),
            "{msg}"
        );
        pv.write(&ops("team:t1#account@account:acme")).unwrap();
        pv.write(&ops("account:acme#admin@user:ann\ndelete account:acme#admin@user:cat")).unwrap();
        let msg =
            rejected(&mut pv, "delete account:acme#admin@user:ann\ndelete account:acme#member@user:bob");
        assert!(msg.contains("`account:acme` would have 0 `admin`"), "{msg}");
        // An object with no relationships at all, and in none, needs no admin.
        pv.write(&ops(
            "delete account:acme#admin@user:ann\ndelete account:acme#member@user:bob\ndelete team:t1#account@account:acme",
        ))
        .unwrap();
    }
}

#[test]
fn one_of_a_set_per_subject() {
    for engine in [Engine::Reference, Engine::Index] {
        let mut pv = pv(engine);
        pv.write(&ops("agency:cfpb#complaint-viewer@user:ann\nagency:cfpb#complaint-supervisor@user:bob"))
            .unwrap();
        let msg = rejected(&mut pv, "agency:cfpb#complaint-manager@user:ann");
        assert_eq!(
            msg,
            "constraint `agency: one of (complaint-supervisor, complaint-manager, complaint-viewer)` rejects \
             writing `agency:cfpb#complaint-manager@user:ann`: `user:ann` would hold both `complaint-manager` \
             and `complaint-viewer` on `agency:cfpb`; current holders: complaint-supervisor `user:bob`; \
             complaint-manager none; complaint-viewer `user:ann`"
        );
        // Moving from viewer to manager at a given time keeps the history and never overlaps.
        pv.write(&ops("agency:cfpb#complaint-viewer@user:ann[expiration:2024-06-01T00:00:00Z]\n\
             agency:cfpb#complaint-manager@user:ann[valid:2024-06-01T00:00:00Z..]"))
            .unwrap();
        let msg = rejected(
            &mut pv,
            "agency:cfpb#complaint-supervisor@user:ann[valid:2024-01-01T00:00:00Z..2024-02-01T00:00:00Z]",
        );
        assert!(msg.contains("would hold both `complaint-supervisor` and `complaint-viewer` on `agency:cfpb` from 2024-01-01T00:00:00Z"), "{msg}");
    }
}

#[test]
fn one_relation_requires_another() {
    for engine in [Engine::Reference, Engine::Index] {
        let mut pv = pv(engine);
        let msg = rejected(&mut pv, "agency:cfpb#staff-director@user:dan");
        assert!(
            msg.contains(
                "`user:dan` would hold `staff-director` on `agency:cfpb` without `complaint-manager`"
            ),
            "{msg}"
        );
        pv.write(&ops("agency:cfpb#staff-director@user:dan\nagency:cfpb#complaint-manager@user:dan"))
            .unwrap();
        let msg = rejected(&mut pv, "delete agency:cfpb#complaint-manager@user:dan");
        assert!(
            msg.starts_with(
                "constraint `agency: staff-director requires complaint-manager` rejects deleting"
            ),
            "{msg}"
        );
        let msg =
            rejected(&mut pv, "agency:cfpb#complaint-manager@user:dan[expiration:2031-01-01T00:00:00Z]");
        assert!(msg.contains("without `complaint-manager` from 2031-01-01T00:00:00Z"), "{msg}");
        // Both ending together is fine.
        pv.write(&ops("agency:cfpb#complaint-manager@user:dan[expiration:2031-01-01T00:00:00Z]\n\
             agency:cfpb#staff-director@user:dan[expiration:2031-01-01T00:00:00Z]"))
            .unwrap();
    }
}

#[test]
fn single_holder_role_in_the_system() {
    for engine in [Engine::Reference, Engine::Index] {
        let mut pv = pv(engine);
        pv.write(&ops("system:main#ceo@user:ann[expiration:2025-01-01T00:00:00Z]")).unwrap();
        let msg = rejected(&mut pv, "system:main#ceo@user:bob");
        assert_eq!(
            msg,
            "constraint `system: at most 1 ceo` rejects writing `system:main#ceo@user:bob`: `system:main` would \
             have 2 `ceo`, more than 1; current holders: `user:ann` [valid:..2025-01-01T00:00:00Z]"
        );
        pv.write(&ops("system:main#ceo@user:bob[valid:2025-01-01T00:00:00Z..]")).unwrap();
        // Both are kept: as of 2024 Ann is the CEO, now Bob is.
        let snap = pv.snapshot();
        let mut opts = EvalOptions::default();
        let ceo = |opts: &EvalOptions| {
            let who = snap.who_str("system:main", "ceo", "user", opts).unwrap();
            who.subjects.iter().map(|f| f.subject.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(ceo(&opts), ["user:bob"]);
        opts.at = purview::store::relationship::parse_time("2024-06-01T00:00:00Z").unwrap();
        assert_eq!(ceo(&opts), ["user:ann"]);
    }
}

#[test]
fn which_relations_an_object_allows_depends_on_the_object() {
    for engine in [Engine::Reference, Engine::Index] {
        let mut pv = pv(engine);
        pv.write(&ops("company:broker#partner@platform:portal\ncompany:broker#power-user@user:pat\n\
             company:acme#assured@platform:portal\ncompany:acme#private-user@user:ann\n\
             company:acme#administrator@user:bob"))
            .unwrap();
        let msg = rejected(&mut pv, "company:broker#administrator@user:pat");
        assert_eq!(
            msg,
            "constraint `company: (administrator, private-user) not on partner` rejects writing \
             `company:broker#administrator@user:pat`: `company:broker` would have `administrator` (`user:pat`) \
             together with `partner` (`platform:portal`); current holders: administrator none; \
             private-user none; partner `platform:portal`"
        );
        let msg = rejected(&mut pv, "company:broker#private-user@user:pat");
        assert!(msg.contains("constraint `company: private-user only on assured`"), "{msg}");
        // Turning a company with administrators into a partner is rejected the same way.
        let msg = rejected(&mut pv, "company:acme#partner@platform:portal");
        assert!(
            msg.contains("`company:acme` would have `administrator` (`user:bob`) together with `partner`"),
            "{msg}"
        );
        let msg = rejected(&mut pv, "delete company:acme#assured@platform:portal");
        assert!(
            msg.contains("`company:acme` would have `private-user` (`user:ann`) without `assured`"),
            "{msg}"
        );
        let who = pv.snapshot().who_str("company:broker", "power-user", "user", &EvalOptions::default());
        assert_eq!(who.unwrap().subjects.len(), 1);
    }
}
