use super::*;

fn codes(text: &str) -> Vec<&'static str> {
    match parse_openfga_dsl(text) {
        Ok(_) => Vec::new(),
        Err(d) => d.0.iter().map(|d| d.code).collect(),
    }
}

fn members(s: &Schema, ty: &str) -> Vec<Member> {
    s.items
        .iter()
        .find_map(|i| match i {
            Item::Type(t) if t.name.name == ty => Some(t.members.clone()),
            _ => None,
        })
        .unwrap()
}

fn r(name: &str) -> Expr {
    Expr::Ref(Ident::new(name, Span::default()))
}

const HEAD: &str = "model\n  schema 1.1\ntype user\n";

#[test]
fn direct_types_make_relations_and_the_rest_permissions() {
    let s = parse_openfga_dsl(&format!(
        "{HEAD}type doc\n  relations\n    define owner: [user]\n    define viewer: [user, user:*, doc#owner with c] or owner\n    define can_view: viewer but not owner\n    define p: owner from parent\ncondition c(x: int, l: list<string>) {{\n  x < 1\n}}\n"
    ))
    .unwrap();
    let m = members(&s, "doc");
    let Member::Relation(owner) = &m[0] else { panic!() };
    assert_eq!(owner.rewrite, None);
    let Member::Relation(viewer) = &m[1] else { panic!() };
    assert_eq!(viewer.subjects.len(), 3);
    assert_eq!(viewer.subjects[1].kind, SubjectKind::Wildcard);
    assert!(matches!(&viewer.subjects[2].kind, SubjectKind::Userset(r) if r.name == "owner"));
    assert_eq!(viewer.subjects[2].condition.as_ref().map(|c| c.name.as_str()), Some("c"));
    assert_eq!(viewer.rewrite, Some(Expr::Union(vec![Expr::This(SpanEq::default()), r("owner")])));
    let Member::Permission(can_view) = &m[2] else { panic!() };
    assert_eq!(can_view.expr, Expr::Exclusion(Box::new(r("viewer")), Box::new(r("owner"))));
    let Member::Permission(p) = &m[3] else { panic!() };
    assert!(
        matches!(&p.expr, Expr::Arrow { tupleset, target, mode: ArrowMode::Any } if tupleset.name == "parent" && target.name == "owner")
    );
    let Some(Item::Condition(c)) = s.items.last() else { panic!() };
    assert_eq!(c.expr, "x < 1");
    assert_eq!(c.params[1].ty, ParamType::List(Box::new(ParamType::String)));
}

#[test]
fn direct_types_may_lead_inside_parentheses() {
    let s = parse_openfga_dsl(&format!(
        "{HEAD}type doc\n  relations\n    define a: [user]\n    define b: ([user] and a) but not a\n"
    ))
    .unwrap();
    let Member::Relation(b) = &members(&s, "doc")[1] else { panic!() };
    assert_eq!(
        b.rewrite,
        Some(Expr::Exclusion(
            Box::new(Expr::Intersection(vec![Expr::This(SpanEq::default()), r("a")])),
            Box::new(r("a"))
        ))
    );
    assert_eq!(
        codes(&format!("{HEAD}type doc\n  relations\n    define a: [user]\n    define b: a or [user]\n")),
        ["syntax"]
    );
}

#[test]
fn operators_do_not_mix_without_parentheses() {
    let text = format!("{HEAD}type doc\n  relations\n    define a: [user]\n    define b: a and a or a\n");
    let err = parse_openfga_dsl(&text).unwrap_err();
    let d = &err.0[0];
    assert_eq!(d.code, "syntax");
    assert_eq!(&text[d.span.start..d.span.end], "or");
    assert_eq!(d.message, "expected one of end of input, end of line, `and` or `from`, found `or`");
    assert!(d.help.as_deref().is_some_and(|h| h.contains("parentheses")));
    assert_eq!(
        codes(&format!("{HEAD}type doc\n  relations\n    define b: a but not a but not a\n")),
        ["syntax"]
    );
    assert!(codes(&format!("{HEAD}type doc\n  relations\n    define b: (a and a) or a\n")).is_empty());
}

#[test]
fn duplicates_are_reported_at_the_second_definition() {
    let text = format!("{HEAD}type doc\n  relations\n    define a: [user]\n    define a: [user]\ncondition c(x: int, x: int) {{ x }}\ncondition c(x: int) {{ x }}\n");
    let err = parse_openfga_dsl(&text).unwrap_err();
    let got: Vec<_> = err.0.iter().map(|d| d.code).collect();
    assert_eq!(got, ["duplicate-relation", "duplicate-parameter", "duplicate-condition"]);
    assert_eq!(err.0[0].related.len(), 1);
}

#[test]
fn header_version_modules_and_extend() {
    assert_eq!(codes("model\n  schema 1.0\n"), ["openfga-schema-version"]);
    assert!(codes("model\n  schema 1.2\n").is_empty());
    assert_eq!(codes("model\n  schema 1.1\nextend type user\n"), ["openfga-extend"]);
    assert_eq!(
        codes("module m\nextend type a\nextend type a\n"),
        ["duplicate-extend", "unsupported-openfga-module"]
    );
}

#[test]
fn comments_and_keyword_names() {
    let s = parse_openfga_dsl("# c\nmodel # c\n  # c\n  schema 1.1\ntype type # c\n  relations\n    define model: [type#model] # c\n    define schema: model or type\n").unwrap();
    assert_eq!(members(&s, "type").len(), 2);
    assert_eq!(codes(&format!("{HEAD}type doc\n  relations\n    define or: [user]\n")), ["syntax"]);
}

#[test]
fn json_and_dsl_agree() {
    let dsl = parse_openfga_dsl(&format!(
        "{HEAD}type doc\n  relations\n    define p: [doc]\n    define v: [user, user:*] or v from p\n"
    ))
    .unwrap();
    let json = parse_openfga_json(
        r#"{"schema_version": "1.1", "type_definitions": [
            {"type": "user"},
            {"type": "doc", "relations": {
                "p": {"this": {}},
                "v": {"union": {"child": [{"this": {}}, {"tupleToUserset": {"tupleset": {"relation": "p"}, "computedUserset": {"relation": "v"}}}]}}},
             "metadata": {"relations": {"p": {"directly_related_user_types": [{"type": "doc"}]},
                "v": {"directly_related_user_types": [{"type": "user"}, {"type": "user", "wildcard": {}}]}}}}]}"#,
    )
    .unwrap();
    assert_eq!(dsl, json);
}

#[test]
fn json_errors() {
    let json_codes =
        |t: &str| parse_openfga_json(t).err().map(|d| d.0.iter().map(|d| d.code).collect::<Vec<_>>());
    assert_eq!(json_codes("{"), Some(vec!["json-syntax"]));
    assert_eq!(json_codes(r#"{"type_definitions": []}"#), Some(vec!["openfga-schema-version"]));
    assert_eq!(json_codes(r#"{"schema_version": "1.3"}"#), Some(vec!["openfga-schema-version"]));
    assert_eq!(
        json_codes(
            r#"{"schema_version": "1.1", "type_definitions": [{"type": "d", "relations": {"r": {"this": {}}}}]}"#
        ),
        Some(vec!["openfga-missing-types"])
    );
    assert_eq!(
        json_codes(
            r#"{"schema_version": "1.1", "type_definitions": [{"type": "d", "relations": {"r": {}}}]}"#
        ),
        Some(vec!["openfga-json"])
    );
    let text = r#"{"schema_version": "1.1", "type_definitions": [{"type": "user"}, {"type": "doc"}]}"#;
    let s = parse_openfga_json(text).unwrap();
    let Item::Type(t) = &s.items[1] else { panic!() };
    assert_eq!(&text[t.name.span.start..t.name.span.end], "doc");
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let n = 5000;
    let dsl = format!("{HEAD}type doc\n  relations\n    define a: {}a{}\n", "(".repeat(n), ")".repeat(n));
    assert_eq!(parse_openfga_dsl(&dsl).unwrap_err().0[0].code, "nesting-too-deep");
    let json = format!(
        r#"{{"schema_version": "1.1", "type_definitions": [{{"type": "d", "relations": {{"a": {}{{"this": {{}}}}{}}}}}]}}"#,
        r#"{"union": {"child": ["#.repeat(n),
        "]}}".repeat(n)
    );
    assert!(parse_openfga_json(&json).is_err());
}
