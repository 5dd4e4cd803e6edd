//! Object-major JSON lines: the CSV output regrouped by object; deltas applied to the previous
//! output give the new output.

use super::{csv_by_object, index_of, loaded, output, random_data, random_relationship, view_target, Rng};
use purview::materialize::{deltas, write_object_deltas, Format, Partition, Strategy};
use purview::{EvalOptions, Relationship, WriteOp};
use serde_json::Value;
use std::collections::BTreeMap;

type ByObject = BTreeMap<String, (Vec<String>, Vec<String>)>;

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn parse(text: &[u8]) -> ByObject {
    let mut out = ByObject::new();
    for line in std::str::from_utf8(text).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["permission"], "view");
        let object = v["object"].as_str().unwrap().to_string();
        assert!(
            out.insert(object, (strings(&v["allowed"]), strings(&v["conditional"]))).is_none(),
            "one line per object"
        );
    }
    out
}

#[test]
fn object_major_lines_are_the_csv_output_regrouped() {
    for seed in [11u64, 12] {
        let pv = loaded(&random_data(seed, 300, 3000));
        let data = index_of(&pv);
        let csv = String::from_utf8(output(&data, Format::Csv)).unwrap();
        let by_object = parse(&output(&data, Format::ObjectJsonl));
        assert!(by_object.values().any(|(_, c)| !c.is_empty()), "conditional subjects are listed");
        assert_eq!(by_object, csv_by_object(&csv));
    }
}

#[test]
fn object_deltas_applied_to_the_previous_output_give_the_new_output() {
    let pv = loaded(&random_data(21, 150, 1500));
    let mut rng = Rng(77);
    for round in 0..8 {
        let before = index_of(&pv);
        let mut state = parse(&output(&before, Format::ObjectJsonl));
        let ops: Vec<WriteOp> = (0..1 + rng.next(20))
            .map(|_| {
                let r = Relationship::parse(&random_relationship(&mut rng, 160)).unwrap();
                if rng.next(3) == 0 {
                    WriteOp::Delete(r)
                } else {
                    WriteOp::Touch(r)
                }
            })
            .collect();
        pv.write(&ops).unwrap();
        let after = index_of(&pv);
        let t = view_target(&after);
        let found =
            deltas(&before, &after, &ops, &t, &EvalOptions::default(), Strategy::Auto, Partition::default())
                .unwrap();
        let mut text = Vec::new();
        write_object_deltas(&after, &t, &found, &mut text).unwrap();
        let lines = std::str::from_utf8(&text).unwrap().lines().count();
        assert!(lines <= found.len(), "round {round}: one line per changed object");
        for line in std::str::from_utf8(&text).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let e = state.entry(v["object"].as_str().unwrap().to_string()).or_default();
            for (list, remove, add) in
                [(&mut e.0, "remove", "add"), (&mut e.1, "remove_conditional", "add_conditional")]
            {
                let gone = strings(&v[remove]);
                list.retain(|s| !gone.contains(s));
                list.extend(strings(&v[add]));
            }
        }
        state.retain(|_, (a, c)| !a.is_empty() || !c.is_empty());
        let expected = parse(&output(&after, Format::ObjectJsonl));
        let sorted = |m: &ByObject| -> ByObject {
            m.iter()
                .map(|(k, (a, c))| {
                    let (mut a, mut c) = (a.clone(), c.clone());
                    a.sort();
                    c.sort();
                    (k.clone(), (a, c))
                })
                .collect()
        };
        assert_eq!(sorted(&state), sorted(&expected), "round {round}");
    }
}
