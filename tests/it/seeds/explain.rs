//! `explain` and `who` on the seed models read as the person asking would expect: a supervisor
//! asking "why can I see this message", a compliance officer asking "who can see this case" and
//! "why can't she", an invited guest whose access ended, an administrator's reach and rights.

use super::writes::example;
use purview::api::{Engine, View};
use purview::eval::{Decision, EvalOptions};
use purview::store::relationship::parse_time;
use purview::store::{ObjectRef, SubjectRef};

/// The rendered explanation of `object#permission@subject` on both engines (which must agree).
fn explain(example_name: &str, question: &str, opts: &EvalOptions) -> (Decision, String) {
    let (head, subject) = question.split_once('@').unwrap();
    let (object, permission) = head.split_once('#').unwrap();
    let (object, subject) = (ObjectRef::parse(object).unwrap(), SubjectRef::parse(subject).unwrap());
    let answers: Vec<(Decision, String)> = [Engine::Reference, Engine::Index]
        .into_iter()
        .map(|engine| {
            let view: View = example(example_name, engine).snapshot();
            let e = view.explain(&object, permission, &subject, opts).unwrap();
            (e.decision, e.tree.render())
        })
        .collect();
    assert_eq!(answers[0], answers[1], "the engines explain {question} differently");
    answers[0].clone()
}

fn names_all(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "`{p}` is not in\n{text}");
    }
}

fn at(t: &str) -> EvalOptions {
    EvalOptions { at: parse_time(t).unwrap(), ..Default::default() }
}

#[test]
fn a_supervisor_asks_why_they_see_a_message() {
    let opts = at("2024-04-01T00:00:00Z");
    // Nora sees m-2 because Paul was in no group when it was captured: the witness is that tag.
    let (d, text) = explain("ecomms", "message:m-2#view@user:nora", &opts);
    assert_eq!(d, Decision::Allowed);
    assert_eq!(
        text,
        "✓ message:m-2#view (permission: account->admin + group-tag->supervisor + ungrouped->no-group-supervisor)\n\
         └─ ✓ any `ungrouped` of message:m-2 with `no-group-supervisor`\n   \
            └─ ✓ message:m-2#ungrouped@account:acme\n      \
               └─ ✓ account:acme#no-group-supervisor (relation)\n         \
                  └─ ✓ account:acme#no-group-supervisor@user:nora\n"
    );
    // Sam sees it through the traders tag.
    let (_, text) = explain("ecomms", "message:m-2#view@user:sam", &opts);
    names_all(&text, &["message:m-2#group-tag@user-group:traders", "user-group:traders#supervisor@user:sam"]);
    assert!(!text.contains("account:acme#admin"), "a granted explanation shows one witness:\n{text}");
    // Sue, with the same role, does not: every route is shown with the relationship it lacks.
    let (d, text) = explain("ecomms", "message:m-2#view@user:sue", &opts);
    assert_eq!(d, Decision::Denied);
    names_all(
        &text,
        &[
            "no relationship account:acme#admin@user:sue",
            "message:m-2#group-tag@user-group:traders",
            "no relationship user-group:traders#supervisor@user:sue",
            "no relationship account:acme#no-group-supervisor@user:sue",
        ],
    );
}

#[test]
fn a_compliance_officer_asks_who_can_see_a_case_and_why_not() {
    let opts = at("2024-02-01T00:00:00Z");
    let view = example("ethicontrol", Engine::Index).snapshot();
    let who = view.who_str("case:c-3", "view", "user", &opts).unwrap();
    let mut names: Vec<String> = who.subjects.iter().map(|f| f.subject.to_string()).collect();
    names.sort();
    assert_eq!(names, ["user:cleo", "user:eli", "user:esme", "user:mona", "user:sam"]);
    // Sara supervises every case, but the report mentions her.
    let (d, text) = explain("ethicontrol", "case:c-3#manage@user:sara", &opts);
    assert_eq!(d, Decision::Denied);
    names_all(
        &text,
        &[
            "granted, but excluded",
            "system:acme#supervisor@user:sara",
            "excluded by: case:c-3#mentioned (relation)",
            "case:c-3#mentioned@user:sara",
        ],
    );
    // The CEO sees it through the escalation route.
    let (_, text) = explain("ethicontrol", "case:c-3#view@user:cleo", &opts);
    names_all(
        &text,
        &["case:c-3#escalated-to-ceo@system:acme", "system:acme#ceo@user:cleo", "not excluded by"],
    );
}

#[test]
fn a_guest_whose_invitation_expired_is_told_so() {
    let (d, text) = explain("ethicontrol", "task:t-1#read@user:gil", &at("2024-02-01T00:00:00Z"));
    assert_eq!(d, Decision::Allowed);
    names_all(&text, &["task:t-1#guest@user:gil [until 2024-03-01T00:00:00Z]"]);
    let (d, text) = explain("ethicontrol", "task:t-1#read@user:gil", &at("2024-03-05T00:00:00Z"));
    assert_eq!(d, Decision::Denied);
    names_all(&text, &["✗ task:t-1#guest@user:gil [expired 2024-03-01T00:00:00Z]"]);
}

#[test]
fn reach_and_rights_in_the_insurance_hierarchy() {
    let opts = EvalOptions::default();
    let (d, text) = explain("insurance", "activity:invoice-7#view@user:eric", &opts);
    assert_eq!(d, Decision::Allowed);
    names_all(
        &text,
        &[
            "company:acme-emea#administrator@user:eric",
            "right:view-invoices#in-employee-role@role:operations#member",
            "role:operations#member@user:eric",
            "right:view-invoices#in-company-role@role:assured-company#member",
            "role:assured-company#member@company:acme-emea#employee",
            "company:acme-emea#employee@user:eric",
        ],
    );
    // The administrator at headquarters reaches the UK through two `subsidiary-of` steps.
    let (_, text) = explain("insurance", "company:acme-uk#administer@user:hana", &opts);
    names_all(
        &text,
        &[
            "company:acme-uk#subsidiary-of@company:acme-emea",
            "company:acme-emea#subsidiary-of@company:acme",
            "company:acme#administrator@user:hana",
        ],
    );
    // Ann is denied for want of the company role only; the failing part of the intersection
    // is shown, not the part she has.
    let (d, text) = explain("insurance", "right:view-invoices#exercise@user:ann", &opts);
    assert_eq!(d, Decision::Denied);
    names_all(
        &text,
        &[
            "right:view-invoices#in-company-role@role:assured-company#member",
            "no relationship company:acme#employee@user:ann",
            "no relationship company:acme-emea#employee@user:ann",
        ],
    );
    assert!(!text.contains("in-employee-role (relation)"), "{text}");
}

#[test]
fn another_agency_sees_a_complaint_through_its_grant() {
    let (d, text) = explain("ses", "complaint:c-1001#view@user:olga", &EvalOptions::default());
    assert_eq!(d, Decision::Allowed);
    names_all(
        &text,
        &["complaint:c-1001#shared-with@agency:occ", "agency:occ#complaint-supervisor@user:olga"],
    );
    let (d, text) = explain("ses", "complaint:c-1002#view@user:olga", &EvalOptions::default());
    assert_eq!(d, Decision::Denied);
    names_all(
        &text,
        &["no relationship complaint:c-1002#shared-with@…", "no relationship complaint:c-1002#poc@user:olga"],
    );
}
