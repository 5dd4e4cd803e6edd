//! The rules enforced on write, on each example's schema and data: the write is rejected with an
//! error naming the constraint, the relationship and the current holders, and nothing changes —
//! neither the revision nor any answer.

use purview::api::{compile_schema, Engine, Page};
use purview::eval::EvalOptions;
use purview::store::{Relationship, WriteError, WriteOp};
use purview::Purview;
use std::path::Path;

/// The example's schema and data, loaded on an engine.
pub fn example(name: &str, engine: Engine) -> Purview {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    let schema = std::fs::read_to_string(dir.join("schema.pv")).unwrap();
    let pv =
        Purview::with_engine(compile_schema("schema.pv", &schema).unwrap_or_else(|e| panic!("{e}")), engine);
    pv.write_text(&std::fs::read_to_string(dir.join("data.rels")).unwrap()).unwrap_or_else(|e| panic!("{e}"));
    pv
}

pub fn ops(text: &str) -> Vec<WriteOp> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.strip_prefix("delete ") {
            Some(r) => WriteOp::Delete(Relationship::parse(r).unwrap()),
            None => WriteOp::Touch(Relationship::parse(l).unwrap()),
        })
        .collect()
}

/// Every relationship and every `what` answer of the store, to compare before and after.
fn state(pv: &Purview) -> Vec<String> {
    let snap = pv.snapshot();
    let schema = snap.schema().clone();
    let mut out: Vec<String> = Vec::new();
    let opts = EvalOptions::default();
    let users = snap.schema().type_id("user").unwrap();
    for id in 0..snap.source().object_count(users) {
        let user = snap.source().subject_ref(purview::store::Subject { ty: users, id, rel: None });
        for t in &schema.types {
            for r in &t.relations {
                let what = snap.what(&user, &r.name, &t.name, &Page::default(), &opts).unwrap();
                out.push(format!("{user}#{} {}: {:?}", r.name, t.name, what.objects));
            }
        }
    }
    out
}

/// Writes `text` on both engines and expects a constraint error whose text contains each of
/// `parts`; checks that nothing changed.
pub fn rejected(example_name: &str, text: &str, parts: &[&str]) {
    for engine in [Engine::Reference, Engine::Index] {
        let pv = example(example_name, engine);
        let (revision, before) = (pv.revision(), state(&pv));
        let err = pv.write(&ops(text)).expect_err(text);
        assert!(matches!(err, WriteError::Constraint { .. }), "{err}");
        let msg = err.to_string();
        for p in parts {
            assert!(msg.contains(p), "{engine:?}: `{p}` is not in\n{msg}");
        }
        assert_eq!(pv.revision(), revision, "a rejected write makes no revision");
        assert_eq!(state(&pv), before, "a rejected write changes no answer");
    }
}

/// Writes `text` on both engines and expects it accepted.
pub fn accepted(example_name: &str, text: &str) {
    for engine in [Engine::Reference, Engine::Index] {
        let pv = example(example_name, engine);
        pv.write(&ops(text)).unwrap_or_else(|e| panic!("{engine:?}: {e}"));
    }
}

#[test]
fn ses_1_one_complaints_and_one_enforcement_role_per_user() {
    rejected(
        "ses",
        "agency:cfpb#complaint-manager@user:eve",
        &[
            "constraint `agency: one of (complaint-supervisor, complaint-manager, complaint-viewer)`",
            "writing `agency:cfpb#complaint-manager@user:eve`",
            "`user:eve` would hold both `complaint-manager` and `complaint-viewer` on `agency:cfpb`",
            "complaint-viewer `user:eve`, `user:paula`, `user:vic`",
        ],
    );
    rejected(
        "ses",
        "agency:cfpb#enforcement-supervisor@user:cole",
        &[
            "`agency: one of (enforcement-supervisor, enforcement-collaborator)`",
            "enforcement-supervisor `user:ed`",
        ],
    );
    // Several system roles, and the same complaints role in another agency, are fine.
    accepted("ses", "agency:cfpb#staff-user@user:eve\nagency:occ#complaint-manager@user:eve");
    // Changing role is one batch: drop the old, add the new.
    accepted("ses", "delete agency:cfpb#complaint-viewer@user:eve\nagency:cfpb#complaint-manager@user:eve");
}

#[test]
fn ses_2_at_most_five_account_administrators() {
    rejected(
        "ses",
        "agency:cfpb#account-administrator@user:zoe",
        &[
            "constraint `agency: at most 5 account-administrator` rejects writing `agency:cfpb#account-administrator@user:zoe`",
            "`agency:cfpb` would have 6 `account-administrator`, more than 5",
            "current holders: `user:abby`, `user:alan`, `user:ann`, `user:arlo`, `user:aziz`",
        ],
    );
    accepted(
        "ses",
        "delete agency:cfpb#account-administrator@user:ann\nagency:cfpb#account-administrator@user:zoe",
    );
}

#[test]
fn ses_3_a_staff_director_holds_a_complaints_role() {
    rejected(
        "ses",
        "agency:cfpb#staff-director@user:ezra",
        &[
            "constraint `agency: staff-director requires (complaint-supervisor, complaint-manager, complaint-viewer)`",
            "`user:ezra` would hold `staff-director` on `agency:cfpb` without `complaint-supervisor`, `complaint-manager` or `complaint-viewer`",
            "staff-director `user:dana`",
        ],
    );
    rejected(
        "ses",
        "delete agency:cfpb#complaint-manager@user:dana",
        &["deleting `agency:cfpb#complaint-manager@user:dana`"],
    );
    accepted("ses", "agency:cfpb#staff-director@user:ezra\nagency:cfpb#complaint-viewer@user:ezra");
}

#[test]
fn ses_9_an_enforcement_manager_is_a_participant() {
    rejected(
        "ses",
        "enforcement-action:ea-8#enforcement-manager@user:cole",
        &["`enforcement-action: enforcement-manager requires participant`"],
    );
}

#[test]
fn eth_9_one_ceo_and_one_cso_in_the_system() {
    rejected(
        "ethicontrol",
        "system:acme#ceo@user:sam",
        &[
            "constraint `system: at most 1 ceo` rejects writing `system:acme#ceo@user:sam`",
            "`system:acme` would have 2 `ceo`, more than 1; current holders: `user:cleo`",
        ],
    );
    rejected(
        "ethicontrol",
        "system:acme#cso@user:cleo",
        &["`system: at most 1 cso`", "current holders: `user:cyrus`"],
    );
    // A new CEO replaces the old one in one batch.
    accepted("ethicontrol", "delete system:acme#ceo@user:cleo\nsystem:acme#ceo@user:sam");
}

#[test]
fn ecm_1_an_account_keeps_at_least_one_admin() {
    rejected(
        "ecomms",
        "delete account:beta#admin@user:bea",
        &[
            "constraint `account: at least 1 admin` rejects deleting `account:beta#admin@user:bea`",
            "`account:beta` would have 0 `admin`, fewer than 1; current holders: `user:bea`",
        ],
    );
    // An admin's account ending with nobody to take over is the same as deleting it.
    rejected(
        "ecomms",
        "account:acme#admin@user:ada[expiration:2030-01-01T00:00:00Z]",
        &["`account:acme` would have 0 `admin` from 2030-01-01T00:00:00Z"],
    );
    // A new account needs its admin in the same batch.
    rejected(
        "ecomms",
        "account:gamma#no-group-supervisor@user:nora",
        &["`account:gamma` would have 0 `admin`"],
    );
    accepted("ecomms", "account:gamma#no-group-supervisor@user:nora\naccount:gamma#admin@user:gus");
    accepted("ecomms", "account:beta#admin@user:bob\ndelete account:beta#admin@user:bea");
}

#[test]
fn ecm_3_an_alert_carries_exactly_one_scope() {
    rejected(
        "ecomms",
        "alert:a-1#scope@user-group:sales",
        &[
            "constraint `alert: at most 1 scope` rejects writing `alert:a-1#scope@user-group:sales`",
            "current holders: `user-group:traders`",
        ],
    );
    rejected("ecomms", "alert:a-1#scope@account:acme", &["`alert:a-1` would have 2 `scope`, more than 1"]);
    rejected("ecomms", "delete alert:a-2#scope@account:acme", &["`alert: at least 1 scope`"]);
    rejected("ecomms", "alert:a-7#account@account:acme", &["`alert:a-7` would have 0 `scope`, fewer than 1"]);
    // Messages carry any number of group tags.
    accepted("ecomms", "message:m-3#group-tag@user-group:sales\nmessage:m-3#group-tag@user-group:desk");
}

/// The capture step of ECM-5: tag a message with the groups its participants are in at the
/// capture time (an as-of `what`), and as account-level content if one of them is in none.
fn capture(pv: &mut Purview, message: &str, account: &str, participants: &[&str], captured: &str) {
    let opts =
        EvalOptions { at: purview::store::relationship::parse_time(captured).unwrap(), ..Default::default() };
    let snap = pv.snapshot();
    let mut lines = vec![format!("message:{message}#account@account:{account}")];
    for p in participants {
        lines.push(format!("message:{message}#participant@user:{p}"));
        let user = purview::store::SubjectRef::new("user", *p, None);
        let groups = snap.what(&user, "member", "user-group", &Page::default(), &opts).unwrap();
        if groups.objects.is_empty() {
            lines.push(format!("message:{message}#ungrouped@account:{account}"));
        }
        for g in groups.objects {
            lines.push(format!("message:{message}#group-tag@{}", g.object));
        }
    }
    pv.write(&ops(&lines.join("\n"))).unwrap();
}

#[test]
fn ecm_5_membership_is_judged_at_capture_time() {
    for engine in [Engine::Reference, Engine::Index] {
        let mut pv = example("ecomms", engine);
        // Captured again, m-2 and m-3 get the tags the data gives them.
        capture(&mut pv, "m-2-again", "acme", &["tim", "paul"], "2024-02-15T09:00:00Z");
        capture(&mut pv, "m-3-again", "acme", &["tim", "paul"], "2024-03-10T09:00:00Z");
        let snap = pv.snapshot();
        let opts = EvalOptions::default();
        let viewers = |m: &str| {
            let who = snap.who_str(&format!("message:{m}"), "view", "user", &opts).unwrap();
            who.subjects.iter().map(|f| f.subject.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(viewers("m-2-again"), viewers("m-2"));
        assert_eq!(viewers("m-2-again"), ["user:ada", "user:nora", "user:sam"]);
        assert_eq!(viewers("m-3-again"), ["user:ada", "user:sam"]);
        // Olive joins a group of beta later: m-9, captured before, stays ungrouped content.
        pv.write(&ops("user-group:desk#member@user:olive[valid:2024-05-01T00:00:00Z..]")).unwrap();
        let snap = pv.snapshot();
        let who = snap.who_str("message:m-9", "view", "user", &opts).unwrap();
        let names: Vec<String> = who.subjects.iter().map(|f| f.subject.to_string()).collect();
        assert_eq!(names, ["user:bea", "user:bob"]);
        // The history is kept: as of January, Lea was in sales; now she is in no group.
        let mut jan = opts.clone();
        jan.at = purview::store::relationship::parse_time("2024-01-15T00:00:00Z").unwrap();
        let lea = purview::store::SubjectRef::new("user", "lea", None);
        assert_eq!(snap.what(&lea, "member", "user-group", &Page::default(), &jan).unwrap().objects.len(), 1);
        assert!(snap.what(&lea, "member", "user-group", &Page::default(), &opts).unwrap().objects.is_empty());
    }
}

#[test]
fn eth_9_a_ceo_hands_over_at_a_time() {
    accepted(
        "ethicontrol",
        "system:acme#ceo@user:cleo[expiration:2025-01-01T00:00:00Z]\nsystem:acme#ceo@user:sam[valid:2025-01-01T00:00:00Z..]",
    );
    rejected(
        "ethicontrol",
        "system:acme#ceo@user:cleo[expiration:2025-01-01T00:00:00Z]\nsystem:acme#ceo@user:sam[valid:2024-12-01T00:00:00Z..]",
        &["`system:acme` would have 2 `ceo` from 2024-12-01T00:00:00Z, more than 1"],
    );
}

#[test]
fn ins_3_partner_employees_can_only_be_power_users() {
    rejected(
        "insurance",
        "company:broker#administrator@user:bob",
        &[
            "constraint `company: (company-administrator, administrator, private-user) not on partner` rejects writing `company:broker#administrator@user:bob`",
            "`company:broker` would have `administrator` (`user:bob`) together with `partner` (`platform:portal`)",
            "partner `platform:portal`",
        ],
    );
    rejected("insurance", "company:broker#private-user@user:bob", &["not on partner"]);
    // Turning a company with administrators into a partner is rejected too.
    rejected(
        "insurance",
        "delete company:acme-emea#assured@platform:portal\ncompany:acme-emea#partner@platform:portal",
        &["`company:acme-emea` would have `administrator` (`user:eric`) together with `partner`"],
    );
    rejected(
        "insurance",
        "company:acme-emea#licensee@platform:portal",
        &["`company: one of (assured, licensee, partner)`"],
    );
    accepted("insurance", "company:broker#power-user@user:bea\ncompany:broker#employee@user:bea");
}

#[test]
fn ins_6_roles_are_created_at_the_headquarters() {
    rejected(
        "insurance",
        "company:acme-emea#creates@role:emea-only",
        &["`company: (company-administrator, creates) not on subsidiary-of`", "`company:acme-emea` would have `creates` (`role:emea-only`) together with `subsidiary-of` (`company:acme`)"],
    );
    rejected("insurance", "company:acme-uk#company-administrator@user:zoe", &["not on subsidiary-of"]);
    accepted("insurance", "company:acme#creates@role:claims");
}
