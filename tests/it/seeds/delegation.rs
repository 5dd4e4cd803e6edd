//! INS-5: a user may assign a role only if every right in the role is one they hold themselves.
//! The rights of a role are the rights whose `in-employee-role` includes the role's members; the
//! rights a user holds are those they `exercise` (employee role capped by company role, INS-4).

use super::writes::example;
use purview::api::{Engine, ObjectSet, SubsetResult, View};
use purview::eval::EvalOptions;
use purview::store::{ObjectRef, SubjectRef};

fn may_assign(view: &View, user: &str, role: &str) -> SubsetResult {
    let rights = ObjectSet::parse(&format!("right#in-employee-role@role:{role}#member")).unwrap();
    view.subset(&rights, &SubjectRef::new("user", user, None), "exercise", &EvalOptions::default()).unwrap()
}

fn missing(rights: &[&str]) -> SubsetResult {
    let missing = rights.iter().map(|r| ObjectRef::new("right", *r)).collect();
    SubsetResult { holds: false, missing, conditional: vec![] }
}

#[test]
fn ins_5_assign_only_roles_whose_rights_you_hold() {
    for engine in [Engine::Reference, Engine::Index] {
        let view = example("insurance", engine).snapshot();
        let ok = SubsetResult { holds: true, missing: vec![], conditional: vec![] };
        // The seed's example: roles of 4, 3 and 2 rights, each within the one before. Hana holds
        // every right and may assign any role; Eric, given the middle role, may assign it and the
        // smaller one, not the largest, for want of one right.
        for role in ["full-access", "operations", "shipping"] {
            assert_eq!(may_assign(&view, "hana", role), ok, "hana, {role}");
        }
        assert_eq!(may_assign(&view, "eric", "operations"), ok);
        assert_eq!(may_assign(&view, "eric", "shipping"), ok);
        assert_eq!(may_assign(&view, "eric", "full-access"), missing(&["manage-users"]));
        assert_eq!(may_assign(&view, "pete", "operations"), missing(&["view-invoices"]));
        // What counts is the rights held after the company role's cap (INS-4): Ann holds the
        // full-access role, but APAC's company role leaves her two of its four rights.
        assert_eq!(may_assign(&view, "ann", "full-access"), missing(&["manage-users", "view-invoices"]));
        assert_eq!(may_assign(&view, "ann", "shipping"), ok);
        assert_eq!(may_assign(&view, "bob", "broker-desk"), missing(&["view-shipments"]));
        // With INS-6: the role must also be available in the assigner's company.
        let opts = EvalOptions::default();
        let available = |company: &str, role: &str| {
            view.check_str(&format!("company:{company}"), "shared-roles", &format!("role:{role}"), &opts)
                .unwrap()
                .tri()
                == purview::eval::Tri::True
        };
        assert!(available("acme-emea", "operations") && may_assign(&view, "eric", "operations").holds);
        assert!(!available("acme-emea", "broker-desk"));
    }
}

/// INS-5 as a query: the question a portal asks before letting a user assign a role, in the query
/// language, answered by `run_query` on both engines with the same missing rights as `View::subset`.
#[test]
fn ins_5_as_a_query() {
    use purview::query::{parse_queries, run_query, validate_queries, QueryOutput};
    for engine in [Engine::Reference, Engine::Index] {
        let view = example("insurance", engine).snapshot();
        let text = "subset right#in-employee-role@role:full-access#member in user:eric#exercise
                    subset user:eric can exercise every right#in-employee-role@role:operations#member
                    subset right#in-employee-role@role:full-access#member in user:ann#exercise";
        let queries = parse_queries(text).unwrap();
        validate_queries(view.schema(), &queries).unwrap();
        let opts = EvalOptions::default();
        let out: Vec<QueryOutput> = queries.iter().map(|q| run_query(&view, q, &opts)).collect();
        let rendered: Vec<String> = out.iter().map(QueryOutput::render).collect();
        assert_eq!(
            rendered,
            [
                "does not hold\nmissing: right:manage-users\n",
                "holds\n",
                "does not hold\nmissing: right:manage-users, right:view-invoices\n",
            ],
            "{engine:?}"
        );
        let QueryOutput::Subset { query, result } = &out[0] else { panic!("{:?}", out[0]) };
        assert_eq!(query, "subset right#in-employee-role@role:full-access#member in user:eric#exercise");
        assert_eq!(*result, may_assign(&view, "eric", "full-access"));
        assert_eq!(out[1].decision(), Some(&purview::Decision::Allowed));
        assert_eq!(out[2].decision(), Some(&purview::Decision::Denied));
    }
}
