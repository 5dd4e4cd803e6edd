//! `purview graph` (the schema as a picture) and `purview explain --format tree|json|dot`.
//!
//! Golden files live in `tests/it/graph/`: `NAME.dot`, `NAME.mmd` (Mermaid) for whole schemas,
//! `NAME-PERM.dot` / `.mmd` for one permission's dependency subgraph; the SVG golden is the picture
//! the README shows, `examples/quickstart/schema.svg`. After an intended change, regenerate them
//! with `UPDATE_GOLDEN=1 cargo test --test it graph::` and review the diff.
//!
//! The SVG is checked with an XML parser (well-formed, an `<svg>` root with a view box, every type
//! named in a text element, no two texts overlapping); every DOT output is parsed back with
//! `layout-rs`'s DOT parser; explain's JSON is checked against `check`'s decision.

use crate::cli::{purview, Run};
use crate::gen::schema_gen;
use proptest::prelude::*;
use purview::picture::{picture, Format};
use purview::schema::Schema;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema(path: &str) -> Schema {
    let path = root().join(path);
    let text = std::fs::read_to_string(&path).unwrap();
    let format = purview::syntax::detect(Some(&path), &text);
    purview::api::compile_schema_as(format, &path.display().to_string(), &text)
        .unwrap_or_else(|e| panic!("{} does not compile: {:?}", path.display(), e.diagnostics))
}

/// The schemas drawn: the bundled examples, a SpiceDB schema and an OpenFGA model.
const SCHEMAS: [(&str, &str); 6] = [
    ("quickstart", "examples/quickstart/schema.pv"),
    ("ecomms", "examples/ecomms/schema.pv"),
    ("insurance", "examples/insurance/schema.pv"),
    ("ses", "examples/ses/schema.pv"),
    ("docs", "tests/it/graph/docs.zed"),
    ("folders", "tests/peer/openfga-language/transformer/08-tuple-to-userset/authorization-model.fga"),
];

/// Compares `actual` with the golden file, or rewrites it under `UPDATE_GOLDEN`.
fn golden(path: &Path, actual: &str) -> Result<(), String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap();
        return Ok(());
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => Ok(()),
        Ok(expected) => Err(format!(
            "{} differs (UPDATE_GOLDEN=1 regenerates it)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        )),
        Err(e) => Err(format!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display())),
    }
}

/// DOT that `layout-rs` (a DOT parser independent of ours) reads back.
fn assert_dot_parses(dot: &str, what: &str) {
    let mut parser = layout::gv::DotParser::new(dot);
    if let Err(e) = parser.process() {
        panic!("{what}: the DOT does not parse: {e}\n{dot}");
    }
}

#[test]
fn whole_schemas_match_their_goldens() {
    let dir = root().join("tests/it/graph");
    let mut failures = Vec::new();
    for (name, path) in SCHEMAS {
        let s = schema(path);
        for (format, ext) in [(Format::Dot, "dot"), (Format::Mermaid, "mmd")] {
            let out = picture(&s, format, None).unwrap();
            if format == Format::Dot {
                assert_dot_parses(&out, name);
            }
            for t in s.type_names() {
                assert!(out.contains(t), "{name}.{ext} does not name type `{t}`");
            }
            if let Err(e) = golden(&dir.join(format!("{name}.{ext}")), &out) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn permission_subgraphs_match_their_goldens() {
    let dir = root().join("tests/it/graph");
    let mut failures = Vec::new();
    for (name, ty, perm) in [("quickstart", "message", "review"), ("docs", "document", "view")] {
        let path = SCHEMAS.iter().find(|(n, _)| *n == name).unwrap().1;
        let s = schema(path);
        for (format, ext) in [(Format::Dot, "dot"), (Format::Mermaid, "mmd")] {
            let out = picture(&s, format, Some((ty, perm))).unwrap();
            if format == Format::Dot {
                assert_dot_parses(&out, name);
            }
            if let Err(e) = golden(&dir.join(format!("{name}-{perm}.{ext}")), &out) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The subgraph holds exactly what the permission can reach in the schema graph: every relation
/// it names is reachable, and an unrelated relation is left out.
#[test]
fn a_permission_subgraph_holds_only_its_dependencies() {
    let s = schema("examples/quickstart/schema.pv");
    let dot = picture(&s, Format::Dot, Some(("message", "view"))).unwrap();
    for present in
        ["message#view", "message#tagged", "usergroup#supervisor", "usergroup#member", "account#admin"]
    {
        assert!(dot.contains(&format!("{{{present}|")), "`{present}` missing from\n{dot}");
    }
    for absent in ["message#review", "message#participant"] {
        assert!(
            !dot.contains(&format!("{{{absent}|")),
            "`{absent}` is not a dependency of message#view\n{dot}"
        );
    }
}

/// One `<text>` element: its lines and where the SVG puts them.
struct Text {
    x: f64,
    y: f64,
    lines: Vec<String>,
}

fn svg_texts(svg: &str, what: &str) -> Vec<Text> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{what}: not well-formed XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{what}");
    assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"), "{what}");
    let view: Vec<f64> =
        root.attribute("viewBox").unwrap().split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert!(view.len() == 4 && view[2] > 0.0 && view[3] > 0.0, "{what}: view box {view:?}");
    let num = |n: roxmltree::Node, a: &str| n.attribute(a).and_then(|v| v.trim().parse::<f64>().ok());
    root.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| Text {
            x: num(n, "x").unwrap(),
            y: num(n, "y").unwrap(),
            lines: n
                .children()
                .filter(|c| c.has_tag_name("tspan"))
                .map(|c| c.text().unwrap_or("").to_string())
                .collect(),
        })
        .collect()
}

/// Text boxes as drawn: centred on x, a line of 18 px type (the SVG's style) from y down; a
/// character is at most 0.6 em wide in the sans-serif fonts browsers pick for `Helvetica, Arial,
/// sans-serif`.
fn overlapping(texts: &[Text]) -> Vec<String> {
    const FONT_PX: f64 = 18.0;
    let boxes: Vec<(f64, f64, f64, f64, String)> = texts
        .iter()
        .filter(|t| t.lines.iter().any(|l| !l.is_empty()))
        .map(|t| {
            let chars = t.lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
            let w = chars * FONT_PX * 0.6;
            (t.x - w / 2.0, t.y, t.x + w / 2.0, t.y + FONT_PX * t.lines.len() as f64, t.lines.join(" / "))
        })
        .collect();
    let mut out = Vec::new();
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            if a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3 {
                out.push(format!("`{}` overlaps `{}`", a.4, b.4));
            }
        }
    }
    out
}

#[test]
fn svg_is_well_formed_names_every_type_and_has_no_overlapping_text() {
    for (name, path) in SCHEMAS {
        let s = schema(path);
        let svg = picture(&s, Format::Svg, None).unwrap();
        assert_eq!(svg, picture(&s, Format::Svg, None).unwrap(), "{name}: the SVG is not deterministic");
        assert!(svg.contains("font-size: 18px;"), "{name}: the overlap check assumes 18 px type");
        let texts = svg_texts(&svg, name);
        for t in s.type_names() {
            assert!(texts.iter().any(|x| x.lines.iter().any(|l| l == t)), "{name}: no text names type `{t}`");
        }
        let overlaps = overlapping(&texts);
        assert!(overlaps.is_empty(), "{name}: {}", overlaps.join("\n"));
    }
    let s = schema("tests/it/graph/docs.zed");
    let svg = picture(&s, Format::Svg, Some(("document", "view"))).unwrap();
    let texts = svg_texts(&svg, "docs document#view");
    assert!(texts.iter().any(|t| t.lines.iter().any(|l| l == "document#view")));
    assert!(overlapping(&texts).is_empty(), "{}", overlapping(&texts).join("\n"));
}

/// The overlap check itself finds two texts drawn at the same place.
#[test]
fn the_overlap_check_can_fail() {
    let t = |x, y, s: &str| Text { x, y, lines: vec![s.to_string()] };
    assert_eq!(overlapping(&[t(100.0, 10.0, "member"), t(110.0, 15.0, "supervisor")]).len(), 1);
    assert!(overlapping(&[t(100.0, 10.0, "member"), t(100.0, 40.0, "supervisor")]).is_empty());
}

/// The picture the README shows is the one `purview graph --format svg` draws today.
#[test]
fn the_readme_picture_is_current() {
    let out = purview(&["graph", "--schema", "examples/quickstart/schema.pv", "--format", "svg"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    golden(&root().join("examples/quickstart/schema.svg"), &out.stdout).unwrap();
}

#[test]
fn the_cli_draws_every_schema_language() {
    for (name, path) in SCHEMAS {
        let out = purview(&["graph", "--schema", path, "--format", "mermaid"]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert_eq!(out.stdout, picture(&schema(path), Format::Mermaid, None).unwrap(), "{name}");
    }
    let out = purview(&["graph", "-s", "examples/quickstart/schema.pv", "--permission", "message#review"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        std::fs::read_to_string(root().join("tests/it/graph/quickstart-review.dot")).unwrap()
    );
}

#[test]
fn graph_errors_exit_4_with_a_hint() {
    let q = "examples/quickstart/schema.pv";
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["graph", "-s", q, "--permission", "mesage#view"],
            "unknown type `mesage`",
            "did you mean `message`?",
        ),
        (
            &["graph", "-s", q, "--permission", "message#veiw"],
            "type `message` has no relation or permission `veiw`",
            "account, tagged, participant, reviewer, view, review",
        ),
        (
            &["graph", "-s", q, "--permission", "message"],
            "not of the form `TYPE#PERMISSION`",
            "document#view",
        ),
        (&["graph", "-s", "tests/it/graph/missing.pv"], "cannot read", ""),
    ];
    for (args, message, help) in cases {
        let r: Run = purview(args);
        assert_eq!(r.code, 4, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(message) && r.stderr.contains(help), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pv");
    std::fs::write(&bad, "type a { relation b: c }\n").unwrap();
    let r = purview(&["graph", "-s", bad.to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("unknown type `c`"), "{}", r.stderr);
}

/// Explain's three formats on an allowed, a denied and a conditional question, against `check`.
#[test]
fn explain_formats_agree_with_check() {
    let data = ["-s", "examples/quickstart/schema.pv", "-d", "examples/quickstart/data.rels"];
    let questions = [
        ("message:m1#view@user:sam", "allowed", 0),
        ("message:m2#view@user:sam", "denied", 1),
        ("message:m4#review@user:sam", "denied", 1),
        ("message:m1#view@user:rita", "conditional", 2),
    ];
    for (q, expected, code) in questions {
        let run = |cmd: &str, extra: &[&str]| -> Run {
            let mut args = vec![cmd, q];
            args.extend(data);
            args.extend(extra);
            purview(&args)
        };
        let check = run("check", &["--json"]);
        let decision =
            serde_json::from_str::<serde_json::Value>(check.stdout.trim()).unwrap()["decision"].clone();
        assert_eq!(decision, expected, "{q}: check says {decision}");

        let json = run("explain", &["--format", "json"]);
        assert_eq!(json.code, check.code, "{q}: {}", json.stderr);
        assert_eq!(json.code, code, "{q}");
        let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(v["decision"], decision, "{q}");
        assert_eq!(v["query"], format!("explain {q}"));
        assert_eq!(v["tree"]["outcome"], decision, "{q}: the root's outcome is the decision");
        fn walk(n: &serde_json::Value, count: &mut usize) {
            *count += 1;
            for key in ["kind", "text", "outcome", "children"] {
                assert!(n.get(key).is_some(), "node without `{key}`: {n}");
            }
            for c in n["children"].as_array().unwrap() {
                walk(c, count);
            }
        }
        let mut nodes = 0;
        walk(&v["tree"], &mut nodes);

        let tree = run("explain", &["--format", "tree"]);
        assert_eq!(tree.stdout, run("explain", &[]).stdout, "{q}: tree is the default");
        assert!(tree.stdout.starts_with(expected), "{q}: {}", tree.stdout);
        assert_eq!(tree.code, code);

        let dot = run("explain", &["--format", "dot"]);
        assert_eq!(dot.code, code, "{q}: {}", dot.stderr);
        assert_dot_parses(&dot.stdout, q);
        assert_eq!(dot.stdout.matches("fillcolor=").count(), nodes, "{q}: a DOT node per tree node");
        let root_fill = match expected {
            "allowed" => "#e8f5e9",
            "denied" => "#ffebee",
            _ => "#fff3e0",
        };
        let first = dot.stdout.lines().find(|l| l.trim_start().starts_with("n0 ")).unwrap();
        assert!(first.contains(root_fill), "{q}: the root is coloured by its outcome: {first}");
        assert!(dot.stdout.contains(&format!("explain {q}: {expected}")), "{q}: the title says the decision");
    }
}

#[test]
fn explain_format_conflicts_with_json() {
    let r = purview(&[
        "explain",
        "message:m1#view@user:sam",
        "-s",
        "examples/quickstart/schema.pv",
        "--json",
        "--format",
        "dot",
    ]);
    assert_eq!(r.code, 3, "{}", r.stderr);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random schemas (recursion, arrows, exclusions, wildcards) are drawn in every format, whole
    /// and for each permission, without a panic; the SVG is well-formed and names every type.
    #[test]
    fn random_schemas_are_drawn(g in schema_gen()) {
        let Some(s) = g.compile() else { return Ok(()) };
        let mut focuses = vec![None];
        for t in &s.types {
            for r in &t.relations {
                focuses.push(Some((t.name.as_str(), r.name.as_str())));
            }
        }
        for focus in focuses {
            let dot = picture(&s, Format::Dot, focus).unwrap();
            assert_dot_parses(&dot, "random schema");
            picture(&s, Format::Mermaid, focus).unwrap();
            let svg = picture(&s, Format::Svg, focus).unwrap();
            let texts = svg_texts(&svg, "random schema");
            if focus.is_none() {
                for t in s.type_names() {
                    prop_assert!(texts.iter().any(|x| x.lines.iter().any(|l| l == t)), "no text names `{}`", t);
                }
            }
        }
    }
}

#[test]
fn an_empty_schema_is_drawn_too() {
    let s =
        purview::api::compile_schema_as(purview::syntax::SchemaFormat::Purview, "empty.pv", "// nothing\n")
            .unwrap_or_else(|e| panic!("{:?}", e.diagnostics));
    for format in [Format::Dot, Format::Mermaid] {
        assert!(!picture(&s, format, None).unwrap().is_empty());
    }
    let svg = picture(&s, Format::Svg, None).unwrap();
    assert_eq!(svg_texts(&svg, "empty").len(), 1);
    assert!(svg.contains(">(no types)</text>"), "{svg}");
}

/// A schema too large for the SVG layout to finish quickly is refused with a typed error (exit 5
/// from the CLI), while DOT and Mermaid still draw it.
#[test]
fn an_svg_too_large_to_lay_out_is_refused() {
    let mut text = String::from("type user {}\n");
    for i in 0..30 {
        text.push_str(&format!("type t{i} {{\n  relation viewer: user\n"));
        if i > 0 {
            text.push_str(&format!(
                "  relation parent: t{}\n  permission view = viewer + parent->view\n",
                i - 1
            ));
        } else {
            text.push_str("  permission view = viewer\n");
        }
        text.push_str("}\n");
    }
    let s = purview::api::compile_schema_as(purview::syntax::SchemaFormat::Purview, "chain.pv", &text)
        .unwrap_or_else(|e| panic!("{:?}", e.diagnostics));
    let err = picture(&s, Format::Svg, None).unwrap_err();
    assert!(matches!(err, purview::picture::PictureError::TooLarge { boxes: 31, .. }), "{err:?}");
    assert!(picture(&s, Format::Dot, None).is_ok() && picture(&s, Format::Mermaid, None).is_ok());
    // One permission of it is small enough.
    picture(&s, Format::Svg, Some(("t3", "view"))).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.pv");
    std::fs::write(&path, &text).unwrap();
    let r = purview(&["graph", "-s", path.to_str().unwrap(), "--format", "svg"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
    assert!(
        r.stderr.contains("too large to lay out as SVG") && r.stderr.contains("--permission"),
        "{}",
        r.stderr
    );
}
