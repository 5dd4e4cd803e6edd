//! Permission sets are maintained incrementally: after each write, the index answers (with the
//! sets of the revision before carried over for the subjects the write cannot change) exactly
//! as the reference evaluator does, at the new revision and at every older one still held.

use crate::gen::{relationship, schema_gen, tuple_gen, TupleGen, GROUPS, USERS};
use crate::ids::objects;
use proptest::prelude::*;
use purview::api::{Engine, View};
use purview::eval::EvalOptions;
use purview::store::{ObjectRef, SubjectRef, WriteOp};
use purview::Purview;

fn subjects() -> Vec<SubjectRef> {
    let mut v: Vec<SubjectRef> =
        (0..=USERS).map(|u| SubjectRef::new("user", format!("u{u}"), None)).collect();
    v.extend((0..GROUPS).map(|g| SubjectRef::new("group", format!("g{g}"), None)));
    v.extend((0..GROUPS).map(|g| SubjectRef::new("group", format!("g{g}"), Some("member"))));
    v
}

/// Every check on `index` equals the reference's (each one also fills the sets it uses).
fn agree(index: &View, reference: &View, what: &str) -> Result<(), TestCaseError> {
    let opts = EvalOptions::default();
    for object in objects(index) {
        let schema = index.schema().clone();
        let tdef = schema.type_def(schema.type_id(&object.ty).unwrap());
        for rel in &tdef.relations {
            for s in subjects() {
                prop_assert_eq!(
                    index.check(&object, &rel.name, &s, &opts),
                    reference.check(&object, &rel.name, &s, &opts),
                    "{}: check {}#{}@{}",
                    what,
                    object,
                    rel.name,
                    s
                );
            }
        }
    }
    Ok(())
}

/// The generated relationship without a condition or times (sets are used only on revisions
/// with no conditional or timed relationship; one the schema refuses so is refused by both).
fn plain(schema: &purview::schema::Schema, t: &TupleGen) -> purview::store::Relationship {
    let mut r = relationship(schema, &TupleGen { context: None, expired: false, ..t.clone() });
    r.caveat = None;
    r.valid_from = None;
    r.expires_at = None;
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn sets_carried_across_writes_answer_as_the_reference(
        sg in schema_gen(),
        first in prop::collection::vec(tuple_gen(), 0..16),
        steps in prop::collection::vec((prop::collection::vec((tuple_gen(), any::<bool>()), 1..4), any::<bool>()), 1..10),
    ) {
        let Some(schema) = sg.compile_stratified() else { return Ok(()) };
        let index = Purview::with_engine(schema.clone(), Engine::Index);
        let reference = Purview::with_engine(schema.clone(), Engine::Reference);
        let mut written: Vec<WriteOp> = Vec::new();
        for t in &first {
            let op = WriteOp::Touch(plain(&index.schema(), t));
            let (a, b) = (index.write(std::slice::from_ref(&op)), reference.write(std::slice::from_ref(&op)));
            prop_assert_eq!(a.is_ok(), b.is_ok());
            if a.is_ok() {
                written.push(op);
            }
        }
        // Every set computed at the start: precomputed where it can be, the rest on first use.
        let view = index.snapshot();
        let opts = EvalOptions::default();
        for tdef in &schema.types {
            for rel in &tdef.relations {
                for st in ["user", "group"] {
                    let _ = view.precompute(&tdef.name, &rel.name, st, &opts).unwrap();
                }
            }
        }
        agree(&view, &reference.snapshot(), "start")?;
        let mut held = vec![(view, reference.snapshot(), "start".to_string())];
        for (n, (batch, ask_old)) in steps.iter().enumerate() {
            // A batch of touches, and deletes of relationships written before.
            let ops: Vec<WriteOp> = batch
                .iter()
                .map(|(t, delete)| {
                    let r = plain(&index.schema(), t);
                    match (delete, written.get(t.object as usize % written.len().max(1))) {
                        (true, Some(old)) => WriteOp::Delete(old.relationship().clone()),
                        _ => WriteOp::Touch(r),
                    }
                })
                .collect();
            let (a, b) = (index.write(&ops), reference.write(&ops));
            prop_assert_eq!(a.is_ok(), b.is_ok(), "step {}: {:?} / {:?}", n, a, b);
            if a.is_ok() {
                written.extend(ops.iter().filter(|o| matches!(o, WriteOp::Touch(_))).cloned());
            }
            let (iv, rv) = (index.snapshot(), reference.snapshot());
            agree(&iv, &rv, &format!("after step {n}"))?;
            if *ask_old {
                // Older revisions keep their own sets (asked again after the newer ones filled theirs).
                for (iv, rv, what) in &held {
                    agree(iv, rv, what)?;
                }
            }
            held.push((iv, rv, format!("after step {n}")));
        }
    }
}

/// A schema whose checks go through permission sets at every step: `doc#view` is an arrow to
/// `folder#view`, which folders inherit down a tree and groups nest into.
const NESTED: &str = "\
type user {}
type group {
  relation member: user | group#member
}
type folder {
  relation viewer: user | group#member
  relation parent: folder
  permission view = viewer + parent->view
}
type doc {
  relation folder: folder
  relation banned: user
  permission view = folder->view - banned
}
";

/// A relationship of [`NESTED`] from four small numbers.
fn nested_op(kind: u8, a: u8, b: u8, delete: bool) -> WriteOp {
    let (a, b) = (a % 4, b % 4);
    let text = match kind % 7 {
        0 => format!("group:g{a}#member@user:u{b}"),
        1 => format!("group:g{a}#member@group:g{b}#member"),
        2 => format!("folder:f{a}#viewer@user:u{b}"),
        3 => format!("folder:f{a}#viewer@group:g{b}#member"),
        4 => format!("folder:f{a}#parent@folder:f{b}"),
        5 => format!("doc:d{a}#folder@folder:f{b}"),
        _ => format!("doc:d{a}#banned@user:u{b}"),
    };
    let r = purview::store::Relationship::parse(&text).unwrap();
    if delete {
        WriteOp::Delete(r)
    } else {
        WriteOp::Touch(r)
    }
}

fn nested_agree(index: &View, reference: &View, what: &str) -> Result<(), TestCaseError> {
    let opts = EvalOptions::default();
    for d in 0..4 {
        for u in 0..4 {
            let (o, s) =
                (ObjectRef::new("doc", format!("d{d}")), SubjectRef::new("user", format!("u{u}"), None));
            prop_assert_eq!(
                index.check(&o, "view", &s, &opts),
                reference.check(&o, "view", &s, &opts),
                "{}: check {}#view@{}",
                what,
                o,
                s
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn nested_group_and_folder_sets_follow_every_write(
        first in prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..24),
        steps in prop::collection::vec(
            (prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<bool>()), 1..4), any::<bool>()),
            1..24,
        ),
        precompute in any::<bool>(),
    ) {
        let schema = purview::api::compile_schema("nested.pv", NESTED).unwrap();
        let index = Purview::with_engine(schema.clone(), Engine::Index);
        let reference = Purview::with_engine(schema, Engine::Reference);
        let ops: Vec<WriteOp> = first.iter().map(|&(k, a, b)| nested_op(k, a, b, false)).collect();
        index.write(&ops).unwrap();
        reference.write(&ops).unwrap();
        let view = index.snapshot();
        if precompute {
            let _ = view.precompute("folder", "view", "user", &EvalOptions::default()).unwrap();
        }
        nested_agree(&view, &reference.snapshot(), "start")?;
        let mut held = vec![(view, reference.snapshot(), "start".to_string())];
        for (n, (batch, ask_old)) in steps.iter().enumerate() {
            let ops: Vec<WriteOp> = batch.iter().map(|&(k, a, b, d)| nested_op(k, a, b, d)).collect();
            index.write(&ops).unwrap();
            reference.write(&ops).unwrap();
            let (iv, rv) = (index.snapshot(), reference.snapshot());
            nested_agree(&iv, &rv, &format!("after step {n}"))?;
            if *ask_old {
                for (iv, rv, what) in &held {
                    nested_agree(iv, rv, what)?;
                }
            }
            held.push((iv, rv, format!("after step {n}")));
        }
    }
}
