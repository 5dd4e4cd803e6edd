use super::*;
use crate::syntax::openfga::parse_openfga_dsl;
use crate::syntax::spicedb::parse_spicedb;

fn codes(schema: &Schema) -> Vec<(&'static str, String)> {
    match to_purview(schema) {
        Ok(_) => Vec::new(),
        Err(d) => d.0.into_iter().map(|d| (d.code, d.message)).collect(),
    }
}

#[test]
fn imported_schemas_print_and_parse_back() {
    let zed = "definition user {}\ndefinition doc {\n  relation viewer: user | user:*\n  permission view = viewer - nil\n}";
    let schema = parse_spicedb(zed).unwrap();
    let text = to_purview(&schema).unwrap();
    assert!(text.contains("permission view = viewer - nil"), "{text}");
    assert_eq!(parse_schema(&text).unwrap(), schema);
}

#[test]
fn reserved_words_are_refused_once_where_they_first_appear() {
    let fga = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define type: [user]\n    define view: type or owner\n    define owner: [user]\n";
    let schema = parse_openfga_dsl(fga).unwrap();
    let d = to_purview(&schema).unwrap_err();
    assert_eq!(d.0.len(), 1, "{d:?}");
    assert_eq!(d.0[0].code, "reserved-word");
    assert_eq!(&fga[d.0[0].span.start..d.0[0].span.end], "type");
    assert_eq!(d.0[0].span.start, fga.find("define type").unwrap() + 7);
    let zed =
        "definition user {}\ndefinition doc {\n  relation this: user\n}\ncaveat expiration(a int) { a == 1 }";
    let found = codes(&parse_spicedb(zed).unwrap());
    assert_eq!(found.iter().map(|(c, _)| *c).collect::<Vec<_>>(), ["reserved-word", "reserved-word"]);
    assert!(found[0].1.contains("`this`") && found[1].1.contains("`expiration`"), "{found:?}");
}

#[test]
fn names_outside_purview_grammar_are_refused() {
    let fga = "model\n  schema 1.1\ntype user.v1\ntype doc\n  relations\n    define can-: [user.v1]\n";
    let found = codes(&parse_openfga_dsl(fga).unwrap());
    assert_eq!(
        found,
        [
            ("invalid-name", "`user.v1` is not a name in Purview's language".to_string()),
            ("invalid-name", "`can-` is not a name in Purview's language".to_string()),
        ]
    );
}

#[test]
fn purview_names() {
    for ok in ["a", "_x", "a-b", "a1-2b", "subsidiary-of", "type-x", "this_"] {
        assert!(is_name(ok), "{ok}");
    }
    for bad in ["", "1a", "-a", "a-", "a--b", "a.b", "a/b", "é"] {
        assert!(!is_name(bad), "{bad}");
    }
    assert!(is_cel_name("a_1") && !is_cel_name("a-b") && !is_cel_name("1a"));
}
