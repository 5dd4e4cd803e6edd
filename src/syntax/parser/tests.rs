use super::parse_schema;
use crate::syntax::ast::{Expr, Item, Member, Span, Trivia};

fn slice(text: &str, span: Span) -> &str {
    &text[span.start..span.end]
}

#[test]
fn spans_point_into_the_source() {
    let text = "/// Doc.\ntype doc {\n  /// Who.\n  relation viewer: user | group#member with c // note\n  \
                permission view = viewer + parent->view   \n  constraint at most 2 viewer\n}\n\n\
                condition c(x: list<int>) {\n    x.size() > 0\n}\n";
    let schema = parse_schema(text).unwrap();
    let [Item::Type(t), Item::Condition(c)] = schema.items.as_slice() else { panic!("{schema:?}") };
    assert_eq!(slice(text, t.span.0), &text[9..text.find("}\n\n").unwrap() + 1]);
    let [Member::Relation(r), Member::Permission(p), Member::Constraint(k)] = t.members.as_slice() else {
        panic!("{t:?}")
    };
    assert_eq!(slice(text, r.span.0), "relation viewer: user | group#member with c");
    assert_eq!(slice(text, r.subjects[1].span.0), "group#member with c");
    assert_eq!(slice(text, p.span.0), "permission view = viewer + parent->view");
    assert_eq!(slice(text, p.expr.span()), "viewer + parent->view");
    let Expr::Union(ops) = &p.expr else { panic!("{:?}", p.expr) };
    assert_eq!(slice(text, ops[1].span()), "parent->view");
    assert_eq!(slice(text, k.span.0), "constraint at most 2 viewer");
    assert_eq!(slice(text, c.span.0), "condition c(x: list<int>) {\n    x.size() > 0\n}");
    assert_eq!(slice(text, c.expr_span.0), "x.size() > 0");
    assert_eq!(slice(text, c.params[0].ty_span.0), "list<int>");
}

#[test]
fn errors_are_sorted_and_all_reported() {
    let text = "type a {\n  relation x user\n}\ntype b {\n  permission y\n}\ncondition c(x) { true }\n";
    let errors = parse_schema(text).unwrap_err().0;
    let lines: Vec<usize> = errors.iter().map(|d| text[..d.span.start].matches('\n').count() + 1).collect();
    assert_eq!(lines, [2, 5, 7], "{errors:?}");
}

fn trivia(leading: &[&str], trailing: &[&str]) -> Trivia {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Trivia { leading: strings(leading), trailing: strings(trailing) }
}

#[test]
fn comments_attach_to_the_nodes_around_them() {
    let text = "// a\n\n/// Doc.\n// b\ntype /* c */ t { // open\n\n  relation r: /* d */ user /* e */ // f\n\n  \
                // g\n  permission p = r\n    + r // h\n  // i\n} // j\n// k\ncondition c(/* l */) { true } // m\n\n// n\n";
    let schema = parse_schema(text).unwrap();
    let [Item::Type(t), Item::Condition(c)] = schema.items.as_slice() else { panic!("{schema:?}") };
    assert_eq!(t.trivia, trivia(&["// a", "", "// b", "/* c */"], &["// j"]));
    assert_eq!(t.open_comments, ["// open"]);
    let [Member::Relation(r), Member::Permission(p)] = t.members.as_slice() else { panic!("{t:?}") };
    assert_eq!(r.trivia, trivia(&["/* d */"], &["/* e */", "// f"]));
    assert_eq!(p.trivia, trivia(&["", "// g"], &["// h"]));
    assert_eq!(t.end_comments, ["// i"]);
    assert_eq!(c.trivia, trivia(&["// k", "/* l */"], &["// m"]));
    assert_eq!(schema.end_comments, ["// n"]);
}

#[test]
fn comments_keep_their_text_without_trailing_blanks_or_indentation() {
    let text = "type t {\r\n    /* one\r\n       two  \r\n\r\n     three */\r\n    relation r: user //  x \t\r\n}\r\n";
    let schema = parse_schema(text).unwrap();
    let [Item::Type(t)] = schema.items.as_slice() else { panic!("{schema:?}") };
    assert_eq!(t.members[0].trivia(), &trivia(&["/* one\n   two\n\n three */"], &["//  x"]));
}
