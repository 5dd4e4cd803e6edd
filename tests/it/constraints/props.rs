//! Property: random write batches (touches and deletes, with random validity intervals) against a
//! schema with every form of constraint never leave data that breaks a constraint at any instant;
//! a rejected batch changes nothing; both engines accept and reject the same batches.
//!
//! The invariant is checked here independently of `store::constraints`: at every instant where
//! some relationship starts or ends (and at the beginning of time), count what holds.

use proptest::prelude::*;
use purview::api::{compile_schema, Engine, View};
use purview::store::relationship::parse_time;
use purview::store::{Obj, ObjectRef, Relationship, SubjectRef, WriteOp};
use purview::Purview;

const SCHEMA: &str = r#"
type user {}
type org {
  relation admin: user with expiration
  relation viewer: user with expiration
  relation editor: user with expiration
  relation director: user with expiration
  relation partner: user with expiration
  relation assured: user with expiration
  relation parent: org with expiration
  constraint at most 2 admin
  constraint at least 1 admin
  constraint one of (viewer, editor)
  constraint director requires (editor, admin)
  constraint director not on partner
  constraint editor only on assured
}
"#;

/// Every org starts with admins (one of them for a while only), so that random batches mostly
/// change populated data instead of failing on the first missing admin.
const BASE: &str = "org:o0#admin@user:u0
org:o0#assured@user:u1
org:o1#admin@user:u1
org:o1#admin@user:u2[valid:2024-01-01T00:00:00Z..2024-03-01T00:00:00Z]
org:o2#admin@user:u2
org:o2#partner@user:u0[valid:2024-02-01T00:00:00Z..]";

const RELATIONS: [&str; 7] = ["admin", "viewer", "editor", "director", "partner", "assured", "parent"];
const TIMES: [&str; 3] = ["2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"];

/// One generated operation: delete?, org, relation, subject, from, until (indexes into `TIMES`,
/// `None` for unbounded).
type OpGen = (bool, u8, u8, u8, Option<u8>, Option<u8>);

fn op_gen() -> impl Strategy<Value = OpGen> {
    (
        prop::bool::weighted(0.2),
        0u8..2,
        0u8..7,
        0u8..3,
        prop::option::weighted(0.4, 0u8..3),
        prop::option::weighted(0.4, 0u8..3),
    )
}

fn to_op((delete, org, rel, subject, from, until): &OpGen) -> WriteOp {
    let rel_name = RELATIONS[*rel as usize];
    let subject = if rel_name == "parent" {
        SubjectRef::new("org", format!("o{}", (org + 1 + subject) % 3), None)
    } else {
        SubjectRef::new("user", format!("u{subject}"), None)
    };
    let mut r = Relationship::new(ObjectRef::new("org", format!("o{org}")), rel_name, subject);
    let (from, until) = match (from, until) {
        (Some(a), Some(b)) if a >= b => (Some(*b), None),
        other => (*other.0, *other.1),
    };
    r.valid_from = from.map(|i| parse_time(TIMES[i as usize]).unwrap());
    r.expires_at = until.map(|i| parse_time(TIMES[i as usize]).unwrap());
    if *delete {
        WriteOp::Delete(r)
    } else {
        WriteOp::Touch(r)
    }
}

/// Every stored relationship: `(object, relation, subject, from, until)` as text and times.
type Row = (String, String, String, Option<String>, Option<String>);

fn rows(view: &View) -> Vec<Row> {
    let src = view.source();
    let schema = view.schema().clone();
    let mut out = Vec::new();
    for (ty, tdef) in schema.types.iter().enumerate() {
        for id in 0..src.object_count(ty as u32) {
            let o = Obj { ty: ty as u32, id };
            for (rel, _) in tdef.relations.iter().enumerate() {
                for (s, a) in src.tuples(o, rel as u32) {
                    out.push((
                        src.object_ref(o).to_string(),
                        tdef.relations[rel].name.clone(),
                        src.subject_ref(s).to_string(),
                        a.valid_from.map(|t| t.to_rfc3339()),
                        a.expires_at.map(|t| t.to_rfc3339()),
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// Whether the row holds at `t` (`None`: the beginning of time).
fn holds(r: &Row, t: Option<&str>) -> bool {
    let after_start = match (&r.3, t) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(f), Some(t)) => f.as_str() <= t,
    };
    let before_end = match (&r.4, t) {
        (None, _) => true,
        (Some(_), None) => true,
        (Some(e), Some(t)) => t < e.as_str(),
    };
    after_start && before_end
}

/// The constraints of `SCHEMA`, checked at every instant where something changes.
fn violations(rows: &[Row]) -> Vec<String> {
    let mut instants: Vec<Option<&str>> = vec![None];
    for r in rows {
        instants.extend(r.3.as_deref().map(Some));
        instants.extend(r.4.as_deref().map(Some));
    }
    let mut out = Vec::new();
    for t in instants {
        let now: Vec<&Row> = rows.iter().filter(|r| holds(r, t)).collect();
        for org in ["org:o0", "org:o1", "org:o2"] {
            let of = |rel: &str| now.iter().filter(|r| r.0 == org && r.1 == rel).collect::<Vec<_>>();
            let held = |rel: &str, s: &str| now.iter().any(|r| r.0 == org && r.1 == rel && r.2 == s);
            let admins = of("admin").len();
            let present = now.iter().any(|r| r.0 == org || r.2 == org);
            if admins > 2 || (present && admins < 1) {
                out.push(format!("{org}: {admins} admins at {t:?}"));
            }
            for u in ["user:u0", "user:u1", "user:u2"] {
                if held("viewer", u) && held("editor", u) {
                    out.push(format!("{org}: {u} viewer and editor at {t:?}"));
                }
                if held("director", u) && !held("editor", u) && !held("admin", u) {
                    out.push(format!("{org}: {u} director alone at {t:?}"));
                }
            }
            if !of("director").is_empty() && !of("partner").is_empty() {
                out.push(format!("{org}: director on a partner at {t:?}"));
            }
            if !of("editor").is_empty() && of("assured").is_empty() {
                out.push(format!("{org}: editor without assured at {t:?}"));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn accepted_batches_never_break_a_constraint(
        batches in prop::collection::vec(prop::collection::vec(op_gen(), 1..6), 1..10),
    ) {
        let schema = compile_schema("props.pv", SCHEMA).unwrap();
        let mut engines: Vec<Purview> =
            [Engine::Reference, Engine::Index].into_iter().map(|e| Purview::with_engine(schema.clone(), e)).collect();
        for pv in &mut engines {
            pv.write_text(BASE).unwrap();
        }
        for batch in &batches {
            let ops: Vec<WriteOp> = batch.iter().map(to_op).collect();
            let mut accepted = Vec::new();
            for pv in &mut engines {
                let (revision, before) = (pv.revision(), rows(&pv.snapshot()));
                match pv.write(&ops) {
                    Ok(_) => {
                        let after = rows(&pv.snapshot());
                        let broken = violations(&after);
                        prop_assert!(broken.is_empty(), "{:?} accepted {:?}: {:?}", pv.engine(), ops, broken);
                        accepted.push(true);
                    }
                    Err(e) => {
                        prop_assert_eq!(pv.revision(), revision);
                        prop_assert_eq!(rows(&pv.snapshot()), before, "{:?}: rejected but changed: {}", pv.engine(), e);
                        accepted.push(false);
                    }
                }
            }
            prop_assert_eq!(accepted[0], accepted[1], "the engines disagree on {:?}", ops);
            prop_assert_eq!(rows(&engines[0].snapshot()), rows(&engines[1].snapshot()));
        }
    }
}

/// The generator reaches accepted batches with every kind of relationship, so the property is
/// not vacuous.
#[test]
fn the_generated_batches_can_be_accepted() {
    let schema = compile_schema("props.pv", SCHEMA).unwrap();
    let pv = Purview::with_engine(schema, Engine::Index);
    pv.write_text(BASE).unwrap();
    let batch: Vec<OpGen> = vec![
        (false, 0, 0, 0, None, None),
        (false, 0, 5, 1, None, None),
        (false, 0, 2, 1, Some(0), Some(2)),
        (false, 0, 3, 1, Some(1), Some(2)),
        (false, 1, 0, 2, None, None),
        (false, 1, 6, 1, None, None),
    ];
    pv.write(&batch.iter().map(to_op).collect::<Vec<_>>()).unwrap();
    assert!(violations(&rows(&pv.snapshot())).is_empty());
    assert_eq!(rows(&pv.snapshot()).len(), 9);
}
