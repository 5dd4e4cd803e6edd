use super::*;
use crate::syntax::openfga::parse_openfga_dsl;

fn codes(body: &str) -> Vec<&'static str> {
    let schema = parse_openfga_dsl(&format!("model\n  schema 1.1\n{body}")).unwrap();
    match validate_openfga(&schema) {
        Ok(()) => Vec::new(),
        Err(d) => d.0.iter().map(|d| d.code).collect(),
    }
}

#[test]
fn valid_models_pass() {
    assert!(codes("type user\ntype folder\n  relations\n    define parent: [folder]\n    define viewer: [user] or viewer from parent\n").is_empty());
    // A loop is fine when some branch has an entry point.
    assert!(codes("type user\ntype doc\n  relations\n    define a: [user]\n    define b: a or c\n    define c: a or b\n").is_empty());
    assert!(codes(
        "type user\ntype doc\n  relations\n    define v: [user with c]\ncondition c(x: int) { x < 1 }\n"
    )
    .is_empty());
}

#[test]
fn unknown_names() {
    assert_eq!(codes("type user\ntype doc\n  relations\n    define v: [usr]\n"), ["unknown-type"]);
    assert_eq!(codes("type user\ntype doc\n  relations\n    define v: [doc#nope]\n"), ["unknown-relation"]);
    assert_eq!(
        codes("type user\ntype doc\n  relations\n    define v: [user]\n    define w: vv\n"),
        ["unknown-relation"]
    );
    assert_eq!(
        codes("type user\ntype doc\n  relations\n    define v: [user with c]\n"),
        ["unknown-condition"]
    );
    assert_eq!(codes("type user\ncondition c(x: int) { x }\n"), ["unused-condition"]);
}

#[test]
fn tuplesets_must_be_plain_relations() {
    let ttu = |parent: &str| {
        codes(&format!("type user\ntype f\n  relations\n    define parent: {parent}\n    define v: [user] or v from parent\n"))
    };
    assert!(ttu("[f]").is_empty());
    assert_eq!(ttu("[f, f:*]"), ["tupleset-not-direct"]);
    assert_eq!(ttu("[f, f#parent]"), ["tupleset-not-direct"]);
    assert_eq!(ttu("[f] or v"), ["tupleset-not-direct"]);
    assert_eq!(
        codes("type user\ntype g\ntype f\n  relations\n    define parent: [g]\n    define v: [user] or v from parent\n"),
        ["unknown-relation-on-tupleset"]
    );
    assert_eq!(
        codes("type user\ntype f\n  relations\n    define v: [user] or v from nope\n"),
        ["unknown-relation"]
    );
}

#[test]
fn entry_points_and_loops() {
    let schema =
        parse_openfga_dsl("model\n  schema 1.1\ntype doc\n  relations\n    define a: b\n    define b: a\n")
            .unwrap();
    let err = validate_openfga(&schema).unwrap_err();
    assert_eq!(err.0.len(), 2);
    assert!(err.0[0].message.contains("loop"), "{}", err.0[0].message);
    let schema = parse_openfga_dsl(
        "model\n  schema 1.1\ntype f\n  relations\n    define parent: [f]\n    define v: v from parent\n",
    )
    .unwrap();
    let err = validate_openfga(&schema).unwrap_err();
    assert_eq!(err.0[0].code, "no-entrypoint");
    assert!(err.0[0].message.contains("no entry point"));
    assert_eq!(
        codes("type user\ntype doc\n  relations\n    define e: [user]\n    define v: [doc#v] and e\n"),
        ["no-entrypoint"]
    );
}

#[test]
fn duplicates_and_reserved_names() {
    assert_eq!(codes("type user\ntype user\n"), ["duplicate-type"]);
    assert_eq!(
        codes("type user\ntype doc\n  relations\n    define v: [user, user]\n"),
        ["duplicate-type-restriction"]
    );
    assert_eq!(
        codes("type user\ntype doc\n  relations\n    define v: [user]\n    define w: v or v\n"),
        ["duplicate-operand"]
    );
    assert_eq!(codes("type this\n"), ["reserved-name"]);
    assert_eq!(
        codes(&format!("type user\ntype doc\n  relations\n    define {}: [user]\n", "a".repeat(51))),
        ["invalid-name"]
    );
}
