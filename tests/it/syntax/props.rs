//! Properties of the parser and the formatter on generated schemas:
//! - `parse(format(x)) == x` and `format(parse(format(x))) == format(x)` for random trees, with
//!   comments and blank lines in every place the tree has for them;
//! - spans of parsed names point at the names;
//! - comments inserted anywhere between the tokens of a schema all survive formatting;
//! - `parse_schema` never panics, on arbitrary text and on mutated valid schemas, and whatever it
//!   accepts formats and parses back to the same tree.

use proptest::prelude::*;
use proptest::sample::select;
use purview::diag::SourceFile;
use purview::syntax::ast::*;
use purview::syntax::{format_schema, parse_schema};
use std::collections::HashSet;

const RESERVED: [&str; 9] =
    ["type", "relation", "permission", "condition", "constraint", "this", "nil", "with", "and"];

fn id(name: String) -> Ident {
    Ident::new(name, Span::default())
}

/// Names, with `-` inside, and the words that are keywords only in some places.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_]{0,5}(-[a-zA-Z0-9]{1,4}){0,2}",
        1 => select(vec!["at", "one", "of", "most", "least", "requires", "only", "not", "on", "any", "all", "expiration", "this-x", "nil-1"])
            .prop_map(String::from),
    ]
    .prop_filter("reserved", |n| !RESERVED.contains(&n.as_str()))
}

fn type_name() -> impl Strategy<Value = String> {
    prop::collection::vec(name(), 1..=3).prop_map(|segments| segments.join("/"))
}

fn condition_name() -> impl Strategy<Value = String> {
    name().prop_filter("reserved for conditions", |n| n != "expiration")
}

/// A doc comment: lines without trailing whitespace.
fn doc() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        prop::collection::vec("[ -~äé]{0,20}", 1..=3)
            .prop_map(|lines| lines.iter().map(|l| l.trim_end()).collect::<Vec<_>>().join("\n")),
    )
}

/// Text inside a comment: printable, tabs, no line break, never the end of a block comment.
fn comment_text() -> impl Strategy<Value = String> {
    "[ -~äé\t]{0,16}".prop_map(|t| t.replace("*/", "* /"))
}

/// A comment on one line, as the parser stores it: markers kept, no trailing whitespace.
fn one_line_comment() -> impl Strategy<Value = String> {
    prop_oneof![
        comment_text().prop_map(|t| {
            // `///` followed by anything but `/` would be a doc comment.
            let slashes = if t.starts_with('/') { "////" } else { "//" };
            format!("{slashes}{t}").trim_end().to_string()
        }),
        comment_text().prop_map(|t| format!("/*{t}*/")),
    ]
}

/// A block comment over several lines, as stored: no trailing whitespace on any line.
fn multi_line_comment() -> impl Strategy<Value = String> {
    prop::collection::vec(comment_text(), 2..=3).prop_map(|lines| {
        let last = lines.len() - 1;
        let lines: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(k, l)| match k {
                0 => format!("/*{l}").trim_end().to_string(),
                _ if k == last => format!("{l}*/"),
                _ => l.trim_end().to_string(),
            })
            .collect();
        lines.join("\n")
    })
}

/// Drops blank lines at the front and at the back (as asked), and runs of them down to one: the
/// places where the parser keeps none.
fn trim_blanks(mut lines: Vec<String>, front: bool, back: bool) -> Vec<String> {
    lines.dedup_by(|a, b| a.is_empty() && b.is_empty());
    if front && lines.first().is_some_and(String::is_empty) {
        lines.remove(0);
    }
    if back && lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

/// Comment lines, `""` for a blank line, with runs of blank lines as one.
fn comment_lines() -> impl Strategy<Value = Vec<String>> {
    let line = prop_oneof![
        4 => one_line_comment(),
        1 => multi_line_comment(),
        2 => Just(String::new()),
    ];
    prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::collection::vec(line, 1..=4).prop_map(|l| trim_blanks(l, false, false)),
    ]
}

/// Comments after a node on its line: `/* */` ones, then maybe one `//` comment.
fn trailing() -> impl Strategy<Value = Vec<String>> {
    let block = comment_text().prop_map(|t| format!("/*{t}*/"));
    prop_oneof![
        3 => Just(Vec::new()),
        1 => (prop::collection::vec(block, 0..=2), prop::option::of(one_line_comment())).prop_map(
            |(mut blocks, last)| {
                blocks.extend(last);
                blocks
            }
        ),
    ]
}

fn trivia() -> impl Strategy<Value = Trivia> {
    (comment_lines(), trailing()).prop_map(|(leading, trailing)| Trivia { leading, trailing })
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        4 => name().prop_map(|n| Expr::Ref(id(n))),
        1 => Just(Expr::This(SpanEq::default())),
        1 => Just(Expr::Nil(SpanEq::default())),
        2 => (name(), name(), any::<bool>()).prop_map(|(t, r, all)| Expr::Arrow {
            tupleset: id(t),
            target: id(r),
            mode: if all { ArrowMode::All } else { ArrowMode::Any },
        }),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..=4).prop_map(Expr::Union),
            prop::collection::vec(inner.clone(), 2..=4).prop_map(Expr::Intersection),
            (inner.clone(), inner).prop_map(|(a, b)| Expr::Exclusion(Box::new(a), Box::new(b))),
        ]
    })
}

fn subject() -> impl Strategy<Value = SubjectType> {
    let kind = prop_oneof![
        Just(SubjectKind::Direct),
        Just(SubjectKind::Wildcard),
        name().prop_map(|n| SubjectKind::Userset(id(n))),
    ];
    (type_name(), kind, prop::option::of(condition_name()), any::<bool>()).prop_map(
        |(ty, kind, cond, exp)| SubjectType {
            ty: id(ty),
            kind,
            condition: cond.map(id),
            expiration: exp,
            span: SpanEq::default(),
        },
    )
}

fn member() -> impl Strategy<Value = Member> {
    let relation =
        (name(), doc(), prop::collection::vec(subject(), 1..=3), prop::option::of(expr()), trivia())
            .prop_map(|(n, doc, subjects, rewrite, trivia)| {
                Member::Relation(RelationDef {
                    name: id(n),
                    doc,
                    subjects,
                    rewrite,
                    trivia,
                    span: SpanEq::default(),
                })
            });
    let permission = (name(), doc(), expr(), trivia()).prop_map(|(n, doc, expr, trivia)| {
        Member::Permission(PermissionDef { name: id(n), doc, expr, trivia, span: SpanEq::default() })
    });
    let kind = prop_oneof![
        (any::<u32>(), name()).prop_map(|(count, r)| ConstraintKind::AtMost { count, relation: id(r) }),
        (any::<u32>(), name()).prop_map(|(count, r)| ConstraintKind::AtLeast { count, relation: id(r) }),
        prop::collection::vec(name(), 2..=4)
            .prop_map(|rs| ConstraintKind::OneOf { relations: rs.into_iter().map(id).collect() }),
        (name(), prop::collection::vec(name(), 1..=3)).prop_map(|(a, b)| ConstraintKind::Requires {
            relation: id(a),
            required: b.into_iter().map(id).collect()
        }),
        (prop::collection::vec(name(), 1..=3), any::<bool>(), prop::collection::vec(name(), 1..=3)).prop_map(
            |(rs, not, gs)| ConstraintKind::OnObject {
                relations: rs.into_iter().map(id).collect(),
                mode: if not { OnMode::Not } else { OnMode::Only },
                guards: gs.into_iter().map(id).collect(),
            }
        ),
    ];
    let constraint = (kind, trivia()).prop_map(|(kind, trivia)| {
        Member::Constraint(ConstraintDef { kind, trivia, span: SpanEq::default() })
    });
    prop_oneof![3 => relation, 2 => permission, 1 => constraint]
}

fn type_def() -> impl Strategy<Value = TypeDef> {
    let comments = (trivia(), trailing(), comment_lines());
    (type_name(), doc(), prop::collection::vec(member(), 0..=5), comments).prop_map(
        |(n, doc, members, (mut trivia, open_comments, end_comments))| {
            let mut seen = HashSet::new();
            let mut members: Vec<Member> = members
                .into_iter()
                .filter(|m| match m {
                    Member::Relation(r) => seen.insert(r.name.name.clone()),
                    Member::Permission(p) => seen.insert(p.name.name.clone()),
                    Member::Constraint(_) => true,
                })
                .collect();
            // No blank lines between items and their comments, after `{` or before `}`.
            trivia.leading = trim_blanks(trivia.leading, true, false);
            if let Some(first) = members.first_mut() {
                let t = first.trivia_mut();
                t.leading = trim_blanks(std::mem::take(&mut t.leading), true, false);
            }
            let end_comments = trim_blanks(end_comments, members.is_empty(), true);
            TypeDef {
                name: id(n),
                doc,
                trivia,
                open_comments,
                members,
                end_comments,
                span: SpanEq::default(),
            }
        },
    )
}

fn param_type() -> impl Strategy<Value = ParamType> {
    let leaf = select(vec![
        ParamType::Int,
        ParamType::Uint,
        ParamType::Bool,
        ParamType::String,
        ParamType::Double,
        ParamType::Bytes,
        ParamType::Duration,
        ParamType::Timestamp,
        ParamType::IpAddress,
        ParamType::Any,
    ]);
    leaf.prop_recursive(3, 6, 1, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| ParamType::List(Box::new(t))),
            inner.prop_map(|t| ParamType::Map(Box::new(t))),
        ]
    })
}

/// A piece of CEL on one line: names, operators, literals with braces and quotes inside.
fn cel_token() -> impl Strategy<Value = String> {
    select(vec![
        "x",
        "request.size",
        "a_b",
        ">=",
        "&&",
        "||",
        "42",
        r#""a}b{""#,
        r#""esc \" }""#,
        "'}'",
        r"'it\'s {'",
        r#"r"\""#,
        r#"b"}""#,
        r#"{"k": {"n": 1}}["k"]"#,
        "[1, 2, 3]",
        "f(x, {})",
        "\"é}\"",
        "\"\"\"multi }\n  line {  \n\"\"\"",
    ])
    .prop_map(String::from)
}

/// CEL text in the form the parser stores: trimmed, no trailing whitespace outside strings.
fn cel() -> impl Strategy<Value = String> {
    let line = (
        prop::collection::vec(cel_token(), 1..=4),
        0..6usize,
        prop::option::of(select(vec!["// a } comment {", "// 'quote"])),
    )
        .prop_map(|(tokens, indent, comment)| {
            let mut line = format!("{}{}", " ".repeat(indent), tokens.join(" "));
            if let Some(c) = comment {
                line = format!("{line} {c}");
            }
            line
        });
    prop::collection::vec(prop_oneof![9 => line, 1 => Just(String::new())], 1..=4)
        .prop_map(|lines| lines.join("\n").trim().to_string())
        .prop_filter("empty", |s| !s.is_empty())
}

fn condition_def() -> impl Strategy<Value = ConditionDef> {
    let param = ("[a-zA-Z_][a-zA-Z0-9_]{0,6}", param_type()).prop_map(|(n, ty)| Param {
        name: id(n),
        ty,
        ty_span: SpanEq::default(),
    });
    (condition_name(), doc(), prop::collection::vec(param, 0..=4), cel(), trivia()).prop_map(
        |(n, doc, params, expr, mut trivia)| {
            let mut seen = HashSet::new();
            let params = params.into_iter().filter(|p| seen.insert(p.name.name.clone())).collect();
            trivia.leading = trim_blanks(trivia.leading, true, false);
            ConditionDef {
                name: id(n),
                doc,
                params,
                expr,
                expr_span: SpanEq::default(),
                trivia,
                span: SpanEq::default(),
            }
        },
    )
}

fn schema() -> impl Strategy<Value = Schema> {
    schema_of(0..=5)
}

fn schema_of(items: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Schema> {
    let item =
        prop_oneof![3 => type_def().prop_map(Item::Type), 1 => condition_def().prop_map(Item::Condition)];
    (prop::collection::vec(item, items), comment_lines()).prop_map(|(items, end_comments)| {
        let (mut types, mut conditions) = (HashSet::new(), HashSet::new());
        let items = items
            .into_iter()
            .filter(|i| match i {
                Item::Type(t) => types.insert(t.name.name.clone()),
                Item::Condition(c) => conditions.insert(c.name.name.clone()),
            })
            .collect();
        Schema { items, end_comments: trim_blanks(end_comments, true, true) }
    })
}

/// The schema without any comments or blank lines.
fn without_comments(mut schema: Schema) -> Schema {
    schema.end_comments.clear();
    for item in &mut schema.items {
        *item.trivia_mut() = Trivia::default();
        if let Item::Type(t) = item {
            t.open_comments.clear();
            t.end_comments.clear();
            t.members.iter_mut().for_each(|m| *m.trivia_mut() = Trivia::default());
        }
    }
    schema
}

/// The schema with blank lines where the parser never puts them: the formatter drops them.
fn with_stray_blank_lines(mut schema: Schema) -> Schema {
    let blank = || vec![String::new(), String::new()];
    schema.end_comments.splice(0..0, blank());
    schema.end_comments.extend(blank());
    for item in &mut schema.items {
        item.trivia_mut().leading.splice(0..0, blank());
        if let Item::Type(t) = item {
            t.end_comments.extend(blank());
            if let Some(first) = t.members.first_mut() {
                first.trivia_mut().leading.splice(0..0, blank());
            }
            if t.members.is_empty() {
                t.end_comments.splice(0..0, blank());
            }
        }
    }
    schema
}

/// A comment-free schema, formatted, with comments inserted at random places between tokens
/// outside doc comments and CEL bodies; and the inserted comments.
fn commented_text() -> impl Strategy<Value = (String, Vec<String>)> {
    let insert = (any::<prop::sample::Index>(), any::<bool>(), comment_text(), any::<bool>());
    (schema_of(1..=4).prop_map(without_comments), prop::collection::vec(insert, 1..=10)).prop_map(
        |(schema, inserts)| {
            let mut text = format_schema(&schema);
            let places = between_tokens(&text);
            if places.is_empty() {
                return (text, Vec::new());
            }
            let mut chosen: Vec<(usize, String, &str)> = inserts
                .into_iter()
                .enumerate()
                .map(|(k, (at, block, body, own_line))| {
                    // The number makes each comment unique, so that it can be found again.
                    let comment = if block { format!("/*{k} {body}*/") } else { format!("//{k} {body}") };
                    let after = if own_line || !block { "\n" } else { " " };
                    (places[at.index(places.len())], comment.trim_end().to_string(), after)
                })
                .collect();
            chosen.sort_by_key(|c| std::cmp::Reverse(c.0));
            for (at, comment, after) in &chosen {
                text.insert_str(*at, &format!(" {comment}{after}"));
            }
            (text, chosen.into_iter().map(|(_, c, _)| c).collect())
        },
    )
}

/// Offsets of the blanks and line breaks between tokens in a formatted schema, outside doc
/// comments and CEL bodies.
fn between_tokens(text: &str) -> Vec<usize> {
    let mut places = Vec::new();
    let (mut offset, mut in_body) = (0, false);
    for line in text.split_inclusive('\n') {
        if in_body && line.starts_with('}') {
            in_body = false;
        }
        let condition = line.starts_with("condition ");
        // Not after the `{` that opens a condition's body.
        let end = if condition { line.rfind('{').unwrap_or(0) } else { line.len() };
        if !in_body && !line.trim_start().starts_with("///") {
            let blanks = line[..end].char_indices().filter(|(_, c)| c.is_whitespace());
            places.extend(blanks.map(|(i, _)| offset + i));
        }
        in_body |= condition;
        offset += line.len();
    }
    places
}

fn parse_ok(text: &str) -> Schema {
    parse_schema(text).unwrap_or_else(|d| {
        panic!("does not parse:\n{text}\n{}", d.render(&SourceFile::new("formatted.pv", text)))
    })
}

/// Every name of a parsed schema, whose span must cover exactly that name in the text.
fn names(schema: &Schema) -> Vec<&Ident> {
    fn expr_names<'a>(e: &'a Expr, out: &mut Vec<&'a Ident>) {
        match e {
            Expr::Ref(i) => out.push(i),
            Expr::Arrow { tupleset, target, .. } => out.extend([tupleset, target]),
            Expr::Union(v) | Expr::Intersection(v) => v.iter().for_each(|e| expr_names(e, out)),
            Expr::Exclusion(a, b) => {
                expr_names(a, out);
                expr_names(b, out);
            }
            Expr::This(_) | Expr::Nil(_) => {}
        }
    }
    let mut out = Vec::new();
    for item in &schema.items {
        match item {
            Item::Type(t) => {
                out.push(&t.name);
                for m in &t.members {
                    match m {
                        Member::Relation(r) => {
                            out.push(&r.name);
                            for s in &r.subjects {
                                out.push(&s.ty);
                                out.extend(s.condition.iter());
                                if let SubjectKind::Userset(rel) = &s.kind {
                                    out.push(rel);
                                }
                            }
                            if let Some(e) = &r.rewrite {
                                expr_names(e, &mut out);
                            }
                        }
                        Member::Permission(p) => {
                            out.push(&p.name);
                            expr_names(&p.expr, &mut out);
                        }
                        Member::Constraint(c) => match &c.kind {
                            ConstraintKind::AtMost { relation, .. }
                            | ConstraintKind::AtLeast { relation, .. } => out.push(relation),
                            ConstraintKind::OneOf { relations } => out.extend(relations.iter()),
                            ConstraintKind::Requires { relation, required } => {
                                out.push(relation);
                                out.extend(required.iter());
                            }
                            ConstraintKind::OnObject { relations, guards, .. } => {
                                out.extend(relations.iter().chain(guards))
                            }
                        },
                    }
                }
            }
            Item::Condition(c) => {
                out.push(&c.name);
                out.extend(c.params.iter().map(|p| &p.name));
            }
        }
    }
    out
}

/// Small edits of a valid schema: deleting, duplicating or inserting text.
fn mutated_schema() -> impl Strategy<Value = String> {
    let edit = (
        any::<prop::sample::Index>(),
        0..8usize,
        0..4u8,
        select(vec![
            "{",
            "}",
            "(",
            ")",
            ":",
            "|",
            "#",
            "*",
            "=",
            "+",
            "-",
            "&",
            "->",
            ".all(",
            "/*",
            "*/",
            "//",
            "///",
            "/* c */",
            "// c\n",
            "\"",
            "\n",
            "relation",
            "permission",
            "type",
            "condition",
            "with",
            "this",
            "at most",
            "one of",
            "x-",
            "-x",
        ]),
    );
    (schema(), prop::collection::vec(edit, 1..=4)).prop_map(|(schema, edits)| {
        let mut chars: Vec<char> = format_schema(&schema).chars().collect();
        for (at, len, op, token) in edits {
            let at = at.index(chars.len() + 1);
            let end = (at + len).min(chars.len());
            match op {
                0 => {
                    chars.drain(at..end);
                }
                1 => {
                    let copy: Vec<char> = chars[at..end].to_vec();
                    chars.splice(at..at, copy);
                }
                _ => {
                    chars.splice(at..at, format!(" {token}").chars());
                }
            }
        }
        chars.into_iter().collect()
    })
}

/// Parsing never panics; whatever parses, formats and parses back to the same tree, and formatting
/// that again changes nothing.
fn check_any_input(text: &str) -> Result<(), TestCaseError> {
    if let Ok(schema) = parse_schema(text) {
        let formatted = format_schema(&schema);
        let again = parse_ok(&formatted);
        prop_assert_eq!(&again, &schema, "accepted input does not round-trip:\n{}\n---\n{}", text, formatted);
        prop_assert_eq!(format_schema(&again), formatted);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn format_then_parse_gives_the_tree_back(schema in schema()) {
        let text = format_schema(&schema);
        let parsed = parse_ok(&text);
        prop_assert_eq!(&parsed, &schema, "formatted:\n{}", text);
        prop_assert_eq!(format_schema(&parsed), text.clone());
        for name in names(&parsed) {
            prop_assert_eq!(text.get(name.span.start..name.span.end), Some(name.name.as_str()));
        }
        prop_assert_eq!(format_schema(&with_stray_blank_lines(schema)), text);
    }

    #[test]
    fn comments_anywhere_between_tokens_survive((text, comments) in commented_text()) {
        let parsed = parse_ok(&text);
        let formatted = format_schema(&parsed);
        for c in &comments {
            prop_assert!(formatted.contains(c.as_str()), "lost {}:\n{}\n---\n{}", c, text, formatted);
        }
        check_any_input(&text)?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_any_input(&text)?;
    }

    #[test]
    fn schema_like_text_never_panics(text in "([a-z]{1,6}|[ \n{}()<>:|#*=+&.,/\"'-]){0,120}") {
        check_any_input(&text)?;
    }

    #[test]
    fn mutated_schemas_never_panic(text in mutated_schema()) {
        check_any_input(&text)?;
    }
}

#[test]
fn deeply_nested_input_is_an_error_not_a_crash() {
    let deep_parens = format!("type t {{ permission p = {}a{} }}", "(".repeat(5000), ")".repeat(5000));
    let long_exclusion = format!("type t {{ permission p = a{} }}", " - a".repeat(20000));
    let deep_types = format!("condition c(x: {}int{}) {{ true }}", "list<".repeat(5000), ">".repeat(5000));
    let deep_cel = format!("condition c() {{ {}1{} }}", "{".repeat(100_000), "}".repeat(100_000));
    for text in [deep_parens, long_exclusion, deep_types] {
        let err = parse_schema(&text).unwrap_err();
        assert!(err.0.iter().any(|d| d.code == "nesting-limit"), "{err:?}");
    }
    // CEL is not parsed here: its braces only need to balance.
    assert!(parse_schema(&deep_cel).is_ok());
}
