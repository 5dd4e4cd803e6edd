use super::*;

const SCHEMA: &str = "/// A person.
type user {}

type team {
  relation member: user | team#member
}

type folder {
  relation viewer: user
  permission view = viewer
}

/// A document — with a non-ASCII doc.
type document {
  relation parent: folder | document
  /// Who may read.
  relation reader: user | team#member with in_hours
  permission view = reader + parent->view
  constraint at most 3 reader
}

condition in_hours(hour: int) {
  hour >= 8
}
";

fn at(text: &str, needle: &str, nth: usize) -> usize {
    text.match_indices(needle).nth(nth).map(|(i, _)| i).unwrap_or_else(|| panic!("no {needle} #{nth}"))
}

#[test]
fn a_valid_schema_has_no_diagnostics_and_every_definition() {
    let d = Document::analyze(SchemaFormat::Purview, SCHEMA);
    assert!(d.diagnostics.is_empty(), "{:?}", d.diagnostics);
    assert!(d.schema.is_some());
    let names: Vec<String> = d
        .symbols
        .symbols
        .iter()
        .map(|s| s.owner.clone().map_or(s.name.clone(), |o| format!("{o}.{}", s.name)))
        .collect();
    assert_eq!(
        names,
        [
            "user",
            "team",
            "team.member",
            "folder",
            "folder.viewer",
            "folder.view",
            "document",
            "document.parent",
            "document.reader",
            "document.view",
            "in_hours"
        ]
    );
}

#[test]
fn every_error_is_reported_in_source_order() {
    let text = SCHEMA
        .replace("permission view = viewer\n", "permission view = viewr\n")
        .replace("with in_hours", "with in_hour");
    let d = Document::analyze(SchemaFormat::Purview, text.as_str());
    let codes: Vec<&str> = d.diagnostics.iter().map(|x| x.code).collect();
    assert_eq!(codes.len(), 2, "{:?}", d.diagnostics);
    assert_eq!(&text[d.diagnostics[0].span.start..d.diagnostics[0].span.end], "viewr");
    assert!(d.diagnostics[0].help.as_deref().is_some_and(|h| h.contains("viewer")));
    assert_eq!(&text[d.diagnostics[1].span.start..d.diagnostics[1].span.end], "in_hour");
    // The tree is still there for navigation.
    assert!(d.ast.is_some());
    assert_eq!(d.definitions(at(&text, "in_hours", 0)).len(), 1);
}

#[test]
fn definition_of_an_arrow_target_is_on_every_type_it_reaches() {
    let d = Document::analyze(SchemaFormat::Purview, SCHEMA);
    let target = at(SCHEMA, "parent->view", 0) + "parent->".len();
    let defs: Vec<(Option<&str>, &str)> =
        d.definitions(target + 1).iter().map(|s| (s.owner.as_deref(), s.name.as_str())).collect();
    assert_eq!(defs, [(Some("folder"), "view"), (Some("document"), "view")]);
    // The tupleset is `parent` on `document`.
    let defs = d.definitions(at(SCHEMA, "parent->", 0));
    assert_eq!(defs.iter().map(|s| s.name_span.start).collect::<Vec<_>>(), [at(SCHEMA, "parent:", 0)]);
}

#[test]
fn references_cover_subjects_usersets_constraints_and_conditions() {
    let d = Document::analyze(SchemaFormat::Purview, SCHEMA);
    let reader = d.references(at(SCHEMA, "reader", 0), true);
    let texts: Vec<&str> = reader.iter().map(|s| &SCHEMA[s.start..s.end]).collect();
    assert_eq!(texts, ["reader"; 3]);
    let member = d.references(at(SCHEMA, "member:", 0), false);
    assert_eq!(member.len(), 2, "team#member twice");
    let user = d.references(at(SCHEMA, "user {}", 0), true);
    assert_eq!(user.len(), 4);
    let cond = d.references(at(SCHEMA, "in_hours", 1), true);
    assert_eq!(
        cond,
        [
            Span::new(at(SCHEMA, "in_hours", 1), at(SCHEMA, "in_hours", 1) + 8),
            Span::new(at(SCHEMA, "in_hours", 0), at(SCHEMA, "in_hours", 0) + 8)
        ]
    );
}

#[test]
fn hover_shows_signature_and_doc() {
    let d = Document::analyze(SchemaFormat::Purview, SCHEMA);
    let h = d.hover(at(SCHEMA, "reader +", 0)).unwrap_or_else(|| panic!("no hover"));
    assert!(h.markdown.contains("relation reader: user | team#member with in_hours"), "{}", h.markdown);
    assert!(h.markdown.contains("Who may read."));
    let h = d.hover(at(SCHEMA, "view = reader", 0)).unwrap_or_else(|| panic!("no hover"));
    assert!(h.markdown.contains("permission view = reader + parent->view"), "{}", h.markdown);
    assert!(d.hover(at(SCHEMA, "hour >=", 0)).is_none());
}

#[test]
fn rename_edits_every_linked_name_and_refuses_clashes() {
    let d = Document::analyze(SchemaFormat::Purview, SCHEMA);
    let edits = d.rename(at(SCHEMA, "view = viewer", 0), "see").unwrap_or_else(|e| panic!("{e}"));
    let renamed = apply_edits(SCHEMA, &edits);
    // `folder.view` is reached by `parent->view`, and so is `document.view`: both are renamed.
    assert!(renamed.contains("permission see = reader + parent->see"), "{renamed}");
    assert!(renamed.contains("permission see = viewer"));
    assert!(Document::analyze(SchemaFormat::Purview, renamed).diagnostics.is_empty());
    assert!(matches!(d.rename(at(SCHEMA, "reader", 0), "parent"), Err(RenameError::Breaks { .. })));
    assert!(matches!(d.rename(at(SCHEMA, "reader", 0), "has space"), Err(RenameError::BadName(_))));
    assert!(matches!(d.rename(at(SCHEMA, "reader", 0), "this"), Err(RenameError::BadName(_))));
    assert_eq!(d.rename(at(SCHEMA, "hour >=", 0), "x"), Err(RenameError::NothingHere));
}

#[test]
fn completion_reads_the_context_before_the_cursor() {
    let d = Document::analyze(SchemaFormat::Purview, SCHEMA);
    let labels = |text: &str| -> Vec<String> {
        completions(text, text.len(), &d.symbols).into_iter().map(|c| c.label).collect()
    };
    let in_doc = SCHEMA.split("  constraint").next().unwrap_or("").to_string();
    assert_eq!(labels(&format!("{in_doc}  permission p = parent->")), ["viewer", "view", "parent", "reader"]);
    assert_eq!(
        labels(&format!("{in_doc}  permission p = parent.all(")),
        ["viewer", "view", "parent", "reader"]
    );
    assert_eq!(labels(&format!("{in_doc}  relation r: team#")), ["member"]);
    assert_eq!(labels(&format!("{in_doc}  relation r: user | ")), ["user", "team", "folder", "document"]);
    assert_eq!(labels(&format!("{in_doc}  relation r: user with ")), ["in_hours"]);
    assert_eq!(labels(&format!("{in_doc}  permission p = rea")), ["parent", "reader", "view"]);
}

#[test]
fn spicedb_and_openfga_documents_are_analysed_in_their_own_text() {
    let zed = "definition user {}\n\ndefinition doc {\n  relation viewer: user\n  permission view = viewer + editor\n}\n";
    let d = Document::analyze(SchemaFormat::SpiceDb, zed);
    assert_eq!(d.diagnostics.len(), 1, "{:?}", d.diagnostics);
    assert_eq!(&zed[d.diagnostics[0].span.start..d.diagnostics[0].span.end], "editor");
    let defs = d.definitions(at(zed, "viewer +", 0));
    assert_eq!(defs.iter().map(|s| s.name_span.start).collect::<Vec<_>>(), [at(zed, "viewer:", 0)]);
    assert_eq!(d.formatted(), Ok(zed.to_string()), "already laid out");

    let fga = "model\n  schema 1.1\n\ntype user\n\ntype doc\n  relations\n    define viewer: [user]\n    define view: viewer\n";
    let d = Document::analyze(SchemaFormat::OpenFgaDsl, fga);
    assert!(d.diagnostics.is_empty(), "{:?}", d.diagnostics);
    let defs = d.definitions(at(fga, "viewer\n", 0));
    assert_eq!(defs.iter().map(|s| s.name_span.start).collect::<Vec<_>>(), [at(fga, "viewer:", 0)]);
    let user = d.references(at(fga, "user]", 0), true);
    assert_eq!(user.len(), 2);
}

#[test]
fn formatting_is_purview_fmt() {
    let d = Document::analyze(SchemaFormat::Purview, "type  user {}\ntype doc { relation r: user }");
    let Ok(text) = d.formatted() else { panic!("not formatted") };
    assert_eq!(
        text,
        crate::syntax::format_schema(
            &parse_schema("type user {}\ntype doc { relation r: user }").unwrap_or_default()
        )
    );
    let d = Document::analyze(SchemaFormat::Purview, "type {");
    assert_eq!(d.formatted(), Err(FormatError::Invalid));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever is typed where, every request answers without a panic, and what it answers
        /// points into the text.
        #[test]
        fn no_request_panics_on_an_edited_schema(
            at in 0usize..SCHEMA.len(),
            cut in 0usize..12,
            insert in "[a-z:#|>()\\-+=.{} \n𝄞é]{0,6}",
            format in prop_oneof![Just(SchemaFormat::Purview), Just(SchemaFormat::SpiceDb), Just(SchemaFormat::OpenFgaDsl)],
        ) {
            let mut at = at;
            while !SCHEMA.is_char_boundary(at) { at -= 1; }
            let mut end = (at + cut).min(SCHEMA.len());
            while !SCHEMA.is_char_boundary(end) { end -= 1; }
            let text = format!("{}{insert}{}", &SCHEMA[..at], &SCHEMA[end..]);
            let good = Document::analyze(SchemaFormat::Purview, SCHEMA);
            let d = Document::analyze(format, text.as_str());
            for d in &d.diagnostics {
                prop_assert!(d.span.start <= d.span.end && d.span.end <= text.len());
            }
            let _ = d.formatted();
            for offset in (0..=text.len() + 1).step_by(3) {
                for s in d.references(offset, true) {
                    prop_assert!(text.get(s.start..s.end).is_some());
                }
                let _ = d.hover(offset);
                let _ = d.definitions(offset);
                let _ = completions(&text, offset, &good.symbols);
                if let Some((span, _)) = d.prepare_rename(offset) {
                    prop_assert!(text.get(span.start..span.end).is_some());
                    if let Ok(edits) = d.rename(offset, "renamed") {
                        prop_assert!(!edits.is_empty());
                    }
                }
            }
        }
    }
}
