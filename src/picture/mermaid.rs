//! A Mermaid flowchart: a node a type with its relations as lines (ports do not exist in Mermaid,
//! so each edge's label names its relation); the focused view puts a type's relations in a
//! subgraph.

use super::{Diagram, NodeKind, Style};
use std::fmt::Write as _;

pub(super) fn render(d: &Diagram) -> String {
    let mut out = String::from("flowchart TB\n");
    if d.groups.is_empty() {
        for i in 0..d.nodes.len() {
            node(&mut out, d, i, "  ");
        }
    } else {
        for (g, (label, members)) in d.groups.iter().enumerate() {
            let _ = writeln!(out, "  subgraph g{g}[\"{}\"]", text(label));
            for &i in members {
                node(&mut out, d, i, "    ");
            }
            out.push_str("  end\n");
        }
    }
    let mut excluded = Vec::new();
    for (k, e) in d.edges.iter().enumerate() {
        let link = match e.style {
            Style::Subject | Style::Computed => "-->",
            Style::Arrow => "-.->",
            Style::Excluded => {
                excluded.push(k);
                "-.->"
            }
        };
        if e.label.is_empty() {
            let _ = writeln!(out, "  n{} {link} n{}", e.from.node, e.to.node);
        } else {
            let _ = writeln!(out, "  n{} {link}|\"{}\"| n{}", e.from.node, text(&e.label), e.to.node);
        }
    }
    for k in excluded {
        let _ = writeln!(out, "  linkStyle {k} stroke:#c62828");
    }
    out.push_str("  classDef typebox fill:#f5f5f5,stroke:#424242\n");
    out.push_str("  classDef rel fill:#ffffff,stroke:#424242\n");
    out.push_str("  classDef perm fill:#fff8e1,stroke:#424242\n");
    for (kind, class) in
        [(NodeKind::Type, "typebox"), (NodeKind::Relation, "rel"), (NodeKind::Permission, "perm")]
    {
        let ids: Vec<String> = d
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.kind == kind)
            .map(|(i, _)| format!("n{i}"))
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "  class {} {class}", ids.join(","));
        }
    }
    out
}

fn node(out: &mut String, d: &Diagram, i: usize, indent: &str) {
    let n = &d.nodes[i];
    let mut label = format!("<b>{}</b>", text(&n.title));
    for row in &n.rows {
        label.push_str("<br/>");
        label.push_str(&text(row));
    }
    let _ = writeln!(out, "{indent}n{i}[\"{label}\"]");
}

/// Text inside a quoted Mermaid label: quotes and markup characters as entity codes.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn labels_cannot_close_their_quotes_or_open_markup() {
        assert_eq!(text("a\"b<c>d"), "a#quot;b#lt;c#gt;d");
        assert_eq!(text("user | group#member"), "user | group#member");
    }
}
