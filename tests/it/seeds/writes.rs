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
    let mut pv =
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
        let mut pv = example(example_name, engine);
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
        let mut pv = example(example_name, engine);
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
