use super::parse::file_parses;
use super::*;

fn one(text: &str) -> Query {
    let mut qs = parse_queries(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    assert_eq!(qs.len(), 1, "{text}");
    qs.remove(0)
}

#[test]
fn primary_and_alias_forms_agree() {
    let pairs = [
        ("check document:readme#view@user:ann", "check user:ann can view document:readme"),
        ("explain document:readme#view@user:ann", "EXPLAIN user:ann CAN view document:readme"),
        ("who document:readme#view@user", "who user can view document:readme"),
        ("who document:readme#view@group#member", "who group#member can view document:readme"),
        ("what document#view@user:ann", "what user:ann can view document"),
        (
            "subset role:auditor#grants in user:ann#exercise",
            "subset user:ann can exercise every role:auditor#grants",
        ),
        (
            "subset right#granted@role:auditor#member in group:g#member#exercise",
            "Subset group:g#member CAN exercise Every right#granted@role:auditor#member",
        ),
    ];
    for (primary, alias) in pairs {
        let p = one(primary);
        assert_eq!(p, one(alias), "{alias}");
        assert_eq!(p.to_string(), primary);
    }
}

#[test]
fn clauses_are_read_in_any_order() {
    let q = one(
        r#"what document#view@user:ann after "x y" limit 5 at 2024-05-01T00:00:00Z with {"a": [1, {"b": "}"}]}"#,
    );
    assert_eq!(q.clauses.limit, Some(5));
    assert_eq!(q.clauses.after.as_deref(), Some("x y"));
    assert!(q.clauses.at.is_some());
    assert_eq!(q.clauses.context.as_ref().map(|c| c.len()), Some(1));
    assert_eq!(one(&q.to_string()), q);
}

#[test]
fn statements_split_at_newlines_and_semicolons_only_outside_json_and_comments() {
    let text = "check a:b#c@d:e # one; not a split\n\n// check nothing\ncheck a:b#c@d:e with {\"k\":\n \"v;\\n\"}; expand a:b#c";
    let qs = parse_queries(text).unwrap();
    assert_eq!(qs.len(), 3);
    assert!(file_parses(text));
}

#[test]
fn subject_with_ellipsis_is_the_object_itself() {
    let q = one("check doc:a#view@user:ann#...");
    assert_eq!(q.to_string(), "check doc:a#view@user:ann");
}

#[test]
fn every_bad_statement_is_reported() {
    let e =
        parse_queries("chek a:b#c@d:e\ncheck a:b#c@d:e\nwho a:b#c user\nwhat d:e#c a limit 0").unwrap_err();
    assert_eq!(e.0.len(), 3, "{e:?}");
    assert_eq!(e.0[0].help.as_deref(), Some("did you mean `check`?"));
    assert_eq!(e.0[1].help.as_deref(), Some("did you mean `who a:b#c@user`?"));
    assert_eq!(e.0[2].help.as_deref(), Some("did you mean `what a#c@d:e limit 0`?"));
}

#[test]
fn subset_sets_are_the_api_sets() {
    use crate::api::ObjectSet;
    for text in ["role:auditor#grants", "right#granted@role:auditor#member"] {
        let Op::Subset { set, subject, permission } = one(&format!("subset {text} in user:ann#exercise")).op
        else {
            panic!("{text}: not a subset")
        };
        assert_eq!(Ok(set.to_object_set()), ObjectSet::parse(text).map_err(|e| e.to_string()));
        assert_eq!((subject.value.to_string(), permission.value.as_str()), ("user:ann".into(), "exercise"));
    }
    // Mixed forms are told apart from syntax errors, with what to write instead.
    let e = parse_queries("subset a:b#c@d:e in f:g#h\nsubset a#c in f:g#h").unwrap_err();
    let got: Vec<(&str, Option<&str>)> = e.0.iter().map(|d| (d.code, d.help.as_deref())).collect();
    assert_eq!(got[0], ("invalid-set", Some("did you mean `a#c@d:e`?")));
    assert_eq!(got[1].0, "invalid-set");
}

#[test]
fn clause_rules() {
    let e = parse_queries("check a:b#c@d:e limit 3 with {} with {}").unwrap_err();
    let codes: Vec<&str> = e.0.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["clause-not-allowed", "duplicate-clause"]);
    let e = parse_queries("what a#c@d:e limit 0").unwrap_err();
    assert_eq!(e.0[0].code, "invalid-limit");
    let e = parse_queries("check a:b#c@d:e at 2024-13-01").unwrap_err();
    assert_eq!(e.0[0].code, "invalid-time");
    let e = parse_queries("check a:b#c@d:e with {\"a\": }").unwrap_err();
    assert_eq!(e.0[0].code, "invalid-json");
}

#[test]
fn an_unclosed_brace_does_not_hide_later_queries() {
    let e = parse_queries("check a:b#c@d:e with {\"a\": 1\nchek x").unwrap_err();
    assert_eq!(e.0.len(), 2, "{e:?}");
    assert_eq!(e.0[0].message, "unclosed `{`");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 1000, ..Default::default() })]

    /// The statement splitter and the whole-file grammar agree: what parses statement by
    /// statement parses as a file.
    #[test]
    fn splitter_agrees_with_the_file_grammar(
        parts in proptest::collection::vec(
            "(check a:b#c@d:e|subset a:b#c in d:e#f|who a:b#c@d|what a#c@d:e|expand a:b#c|with \\{\"k\": \"v;#\"\\}|limit 2|after \"x;y\"|at 2024-05-01T00:00:00Z|// c;|# c;|#;|#|;|\n|\\{|\\}| |\t|\")",
            0..12,
        )
    ) {
        let text = parts.concat();
        if parse_queries(&text).is_ok() {
            proptest::prop_assert!(file_parses(&text), "{:?}", text);
        }
    }
}

#[test]
fn what_without_a_type_asks_every_type_that_has_the_permission() {
    let q = one("what user:ann can view");
    assert!(matches!(q.op, Op::WhatAll { .. }));
    assert_eq!(q.to_string(), "what user:ann can view");
    assert_eq!(one(&q.to_string()), q);
    // Paging belongs to one type.
    assert!(parse_queries("what user:ann can view limit 5").is_err());

    let pv = crate::Purview::from_schema_text(
        "s.pv",
        "type user {}\ntype doc {\n  relation viewer: user\n  permission view = viewer\n}\n\
         type folder {\n  relation viewer: user\n  permission view = viewer\n}\ntype team {\n  relation member: user\n}\n",
    )
    .unwrap();
    pv.write_text("doc:d1#viewer@user:ann\nfolder:f1#viewer@user:ann\nfolder:f2#viewer@user:bob").unwrap();
    let schema = pv.schema();
    assert!(validate_queries(&schema, std::slice::from_ref(&q)).is_ok());
    let bad = one("what user:ann can vew");
    let e = validate_queries(&schema, &[bad]).unwrap_err();
    assert_eq!(e.0[0].code, "unknown-relation");
    assert_eq!(e.0[0].help.as_deref(), Some("did you mean `view`?"));
    let out = run_query(&pv.snapshot(), &q, &crate::eval::EvalOptions::default());
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["op"], "what");
    assert_eq!(json["by_type"][0]["type"], "doc");
    assert_eq!(json["by_type"][0]["objects"][0]["object"]["id"], "d1");
    assert_eq!(json["by_type"][1]["type"], "folder");
    assert_eq!(json["by_type"][1]["objects"].as_array().unwrap().len(), 1);
    assert_eq!(json["by_type"].as_array().unwrap().len(), 2);
}
