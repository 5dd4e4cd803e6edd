use super::*;
use crate::syntax::ast::{ArrowMode, Expr, ParamType, SpanEq, SubjectKind};

fn perm_expr(schema: &Schema, def: &str, perm: &str) -> Expr {
    for item in &schema.items {
        if let Item::Type(t) = item {
            if t.name.name == def {
                for m in &t.members {
                    if let Member::Permission(p) = m {
                        if p.name.name == perm {
                            return p.expr.clone();
                        }
                    }
                }
            }
        }
    }
    panic!("no permission {def}#{perm}")
}

fn r(name: &str) -> Expr {
    Expr::Ref(Ident::new(name, Span::default()))
}

fn codes(text: &str) -> Vec<&'static str> {
    match parse_spicedb(text) {
        Ok(_) => Vec::new(),
        Err(d) => d.0.iter().map(|d| d.code).collect(),
    }
}

#[test]
fn precedence_is_minus_then_and_then_plus() {
    let s = parse_spicedb(
        "definition d {\n permission a = x + y - z\n permission b = x - y + z\n permission c = x & y + z\n permission e = x + y & z\n permission f = x - y & z\n}",
    )
    .unwrap();
    let ex = |a, b| Expr::Exclusion(Box::new(a), Box::new(b));
    assert_eq!(perm_expr(&s, "d", "a"), ex(Expr::Union(vec![r("x"), r("y")]), r("z")));
    assert_eq!(perm_expr(&s, "d", "b"), ex(r("x"), Expr::Union(vec![r("y"), r("z")])));
    assert_eq!(perm_expr(&s, "d", "c"), Expr::Intersection(vec![r("x"), Expr::Union(vec![r("y"), r("z")])]));
    assert_eq!(perm_expr(&s, "d", "e"), Expr::Intersection(vec![Expr::Union(vec![r("x"), r("y")]), r("z")]));
    assert_eq!(perm_expr(&s, "d", "f"), ex(r("x"), Expr::Intersection(vec![r("y"), r("z")])));
}

#[test]
fn arrows_and_nil() {
    let s = parse_spicedb("definition d {\n permission v = p->v + p.any(w) + p.all(x) + nil\n}").unwrap();
    let arrow = |t: &str, m| Expr::Arrow {
        tupleset: Ident::new("p", Span::default()),
        target: Ident::new(t, Span::default()),
        mode: m,
    };
    assert_eq!(
        perm_expr(&s, "d", "v"),
        Expr::Union(vec![
            arrow("v", ArrowMode::Any),
            arrow("w", ArrowMode::Any),
            arrow("x", ArrowMode::All),
            Expr::Nil(SpanEq::default())
        ])
    );
}

#[test]
fn subjects_caveats_and_expiration() {
    let s = parse_spicedb(
        "use expiration\ncaveat c(x int, l list<map<string>>) { x == 1 }\ndefinition t/user {}\ndefinition doc {\n relation v: t/user | t/user:* with c | g#member with c and expiration | u#... | u with expiration\n}",
    )
    .unwrap();
    let Item::Condition(c) = &s.items[0] else { panic!() };
    assert_eq!(c.expr, "x == 1");
    assert_eq!(c.params[1].ty, ParamType::List(Box::new(ParamType::Map(Box::new(ParamType::String)))));
    let Item::Type(t) = &s.items[2] else { panic!() };
    let Member::Relation(rel) = &t.members[0] else { panic!() };
    let k: Vec<_> = rel
        .subjects
        .iter()
        .map(|s| (s.ty.name.as_str(), &s.kind, s.condition.is_some(), s.expiration))
        .collect();
    assert_eq!(k[0], ("t/user", &SubjectKind::Direct, false, false));
    assert_eq!(k[1], ("t/user", &SubjectKind::Wildcard, true, false));
    assert!(matches!(k[2], ("g", SubjectKind::Userset(_), true, true)));
    assert_eq!(k[3], ("u", &SubjectKind::Direct, false, false));
    assert_eq!(k[4], ("u", &SubjectKind::Direct, false, true));
}

#[test]
fn doc_comments_attach_to_the_next_item() {
    let s = parse_spicedb(
        "/** a user */\ndefinition user {\n  /// who reads\n  // not doc\n  relation reader: user\n}",
    )
    .unwrap();
    let Item::Type(t) = &s.items[0] else { panic!() };
    assert_eq!(t.doc.as_deref(), Some("a user"));
    let Member::Relation(rel) = &t.members[0] else { panic!() };
    assert_eq!(rel.doc.as_deref(), Some("who reads"));
}

#[test]
fn newlines_end_statements_except_after_operators() {
    assert!(parse_spicedb("definition d {\n permission a = x +\n   y\n}").is_ok());
    assert_eq!(codes("definition d {\n permission a = x\n   + y\n}"), ["syntax"]);
    assert_eq!(codes("definition d { relation a: x relation b: y }"), ["syntax"]);
    assert!(parse_spicedb("definition d { relation a: x; relation b: y }").is_ok());
}

#[test]
fn partials_expand_in_place() {
    let s = parse_spicedb(
        "use partial\npartial p {\n relation a: user\n}\ndefinition d {\n ...p\n permission v = a\n}",
    )
    .unwrap();
    let Item::Type(t) = &s.items[0] else { panic!() };
    assert_eq!(t.members.len(), 2);
    assert_eq!(
        codes("use partial\npartial p {\n ...q\n}\npartial q {\n ...p\n}\ndefinition d {\n ...p\n}"),
        ["partial-cycle"]
    );
    assert_eq!(codes("use partial\ndefinition d {\n ...nope\n}"), ["unknown-partial"]);
    assert_eq!(codes("partial p {\n relation a: user\n}"), ["spicedb-missing-use"]);
}

#[test]
fn unsupported_features_are_reported() {
    assert_eq!(codes("definition d {\n permission v = a->b->c\n}"), ["unsupported-nested-arrow"]);
    assert_eq!(codes("use import\nimport \"a.zed\"\n"), ["unsupported-import"]);
    // `use self`: the resource itself; without it, `self` is a relation name like any other.
    assert!(parse_spicedb("use self\ndefinition d {\n permission v = self\n}").is_ok());
    assert!(parse_spicedb("definition d {\n relation self: d\n permission v = self\n}").is_ok());
}

#[test]
fn use_flags_are_checked() {
    assert_eq!(codes("use bogus\n"), ["spicedb-unknown-use"]);
    assert_eq!(codes("definition d {}\nuse expiration\n"), ["spicedb-use-after-definition"]);
    assert_eq!(codes("definition d {\n relation v: u with expiration\n}"), ["spicedb-missing-use"]);
    assert_eq!(codes("use expiration\ncaveat expiration(x int) { x }"), ["spicedb-keyword"]);
    // Without the flag a caveat may be called `expiration`, and `with expiration` names it.
    let s =
        parse_spicedb("caveat expiration(x int) { x }\ndefinition d {\n relation v: u with expiration\n}")
            .unwrap();
    let Item::Type(t) = &s.items[1] else { panic!() };
    let Member::Relation(rel) = &t.members[0] else { panic!() };
    assert_eq!(rel.subjects[0].condition.as_ref().map(|c| c.name.as_str()), Some("expiration"));
}

#[test]
fn errors_point_at_the_offending_token() {
    let text = "definition d {\n permission v = a.foo(b)\n}";
    let err = parse_spicedb(text).unwrap_err();
    let d = &err.0[0];
    assert_eq!(d.code, "syntax");
    assert_eq!(&text[d.span.start..d.span.end], "foo");
    assert_eq!(d.message, "expected `any` or `all`, found `foo`");
}

#[test]
fn caveat_types_are_checked() {
    assert_eq!(codes("caveat c(x strin) { x }"), ["unknown-param-type"]);
    assert_eq!(codes("caveat c(x list) { x }"), ["param-type-arity"]);
    assert_eq!(codes("caveat c(x int) { }"), ["syntax"]);
    assert_eq!(codes("caveat c() { true }"), ["syntax"]);
    assert_eq!(codes("caveat c(x int) { x == `a` }"), ["syntax"]);
    assert!(parse_spicedb("caveat c(x int) { {\"a\": '}'}.contains(\"}\") }").is_ok());
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let text = format!("definition d {{\n permission v = {}a{}\n}}", "(".repeat(5000), ")".repeat(5000));
    let err = parse_spicedb(&text).unwrap_err();
    assert_eq!(err.0[0].code, "nesting-too-deep");
}

#[test]
fn unexpected_top_level_tokens_list_the_items() {
    let err = parse_spicedb("nonsense thing {}").unwrap_err();
    assert_eq!(err.0[0].message, "expected a `definition`, `caveat` or `use`, found `nonsense`");
}

#[test]
fn deep_caveat_bodies_and_types_are_refused_not_overflowed() {
    let n = 100_000;
    let body = format!("caveat c(x int) {{ {}x{} }}", "{".repeat(n), "}".repeat(n));
    assert!(parse_spicedb(&body).is_err());
    let ty = format!("caveat c(x {}int{}) {{ x }}", "list<".repeat(n), ">".repeat(n));
    assert!(parse_spicedb(&ty).is_err());
}

#[test]
fn plain_comments_are_carried_over() {
    let text = "// Header.\nuse partial\n\n/** The user. */\ndefinition user {}\n\n\
                partial owned {\n  // owners\n  relation owner: user\n}\n\n\
                // Documents.\ndefinition document {\n  // before a partial: goes to the next member\n  ...owned\n  \
                /* the viewers */ relation viewer: user // trails in SpiceDB, leads the next member here\n  \
                permission view = viewer + owner\n  // at the end\n}\n\n\
                // A caveat.\ncaveat c(x int) {\n  x > 1 // part of the CEL\n}\n// The end.\n";
    let schema = parse_spicedb(text).unwrap();
    let want = "// Header.\n/// The user.\ntype user {}\n\n\
                // Documents.\ntype document {\n  // owners\n  relation owner: user\n  \
                // before a partial: goes to the next member\n  /* the viewers */\n  relation viewer: user\n  \
                // trails in SpiceDB, leads the next member here\n  permission view = viewer + owner\n  \
                // at the end\n}\n\n\
                // A caveat.\ncondition c(x: int) {\n  x > 1 // part of the CEL\n}\n\n// The end.\n";
    assert_eq!(crate::syntax::format_schema(&schema), want);
}
