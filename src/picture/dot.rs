//! Graphviz DOT: types as record nodes with a port a relation; the focused view clusters a type's
//! relations.

use super::{Diagram, End, NodeKind, Style};
use std::fmt::Write as _;

pub(super) fn render(d: &Diagram) -> String {
    let mut out = String::new();
    let name = if d.focused { "permission" } else { "schema" };
    let _ = writeln!(out, "digraph {name} {{");
    out.push_str("  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  node [shape=record, fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=10];\n");
    if d.groups.is_empty() {
        for i in 0..d.nodes.len() {
            node(&mut out, d, i, "  ");
        }
    } else {
        for (g, (label, members)) in d.groups.iter().enumerate() {
            let _ = writeln!(out, "  subgraph cluster_{g} {{");
            let _ = writeln!(out, "    label={};", quote(label));
            out.push_str("    style=rounded;\n    color=\"#9e9e9e\";\n");
            for &i in members {
                node(&mut out, d, i, "    ");
            }
            out.push_str("  }\n");
        }
    }
    for e in &d.edges {
        let attrs = match e.style {
            Style::Subject => String::new(),
            Style::Arrow => ", style=dashed, color=\"#1565c0\", fontcolor=\"#1565c0\"".to_string(),
            Style::Computed => ", color=\"#616161\", fontcolor=\"#616161\"".to_string(),
            Style::Excluded => ", style=dashed, color=\"#c62828\", fontcolor=\"#c62828\"".to_string(),
        };
        let label = if e.label.is_empty() { String::new() } else { format!("label={}", quote(&e.label)) };
        let attrs = format!("{label}{attrs}");
        let attrs = attrs.trim_start_matches(", ");
        if attrs.is_empty() {
            let _ = writeln!(out, "  {} -> {};", end(e.from), end(e.to));
        } else {
            let _ = writeln!(out, "  {} -> {} [{attrs}];", end(e.from), end(e.to));
        }
    }
    out.push_str("}\n");
    out
}

fn node(out: &mut String, d: &Diagram, i: usize, indent: &str) {
    let n = &d.nodes[i];
    let mut label = String::from("{");
    label.push_str(&record_text(&n.title));
    for (r, row) in n.rows.iter().enumerate() {
        let _ = write!(label, "|<r{r}> {}\\l", record_text(row));
    }
    label.push('}');
    let fill = match n.kind {
        NodeKind::Type => "#f5f5f5",
        NodeKind::Relation => "#ffffff",
        NodeKind::Permission => "#fff8e1",
    };
    let _ = writeln!(out, "{indent}n{i} [label={}, style=filled, fillcolor=\"{fill}\"];", quote(&label));
}

fn end(e: End) -> String {
    match e.row {
        Some(r) => format!("n{}:r{r}", e.node),
        None => format!("n{}", e.node),
    }
}

/// Text inside a record field: the record syntax's own characters escaped.
fn record_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '{' | '}' | '|' | '<' | '>') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A DOT double-quoted string. Backslashes are kept as written: record labels use them as escapes.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::{quote, record_text};

    #[test]
    fn record_fields_escape_the_record_syntax() {
        assert_eq!(record_text("relation a: user | group#member"), "relation a: user \\| group#member");
        assert_eq!(record_text("p = a->b"), "p = a-\\>b");
        assert_eq!(record_text("{x}<y>"), "\\{x\\}\\<y\\>");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
    }
}
