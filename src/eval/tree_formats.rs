//! An explain (or expand) [`Tree`] for people and tools: a stable JSON shape and a Graphviz
//! drawing with the outcome of every node in colour.
//!
//! The JSON shape (`purview explain --format json`) is:
//!
//! ```text
//! { "query": "explain document:readme#view@user:ann",
//!   "decision": "allowed" | "denied" | "conditional",
//!   "missing": ["hour"],                      (only when conditional: context still needed)
//!   "tree": Node }
//! Node = { "kind": "relation" | "union" | "intersection" | "exclusion" | "arrow"
//!                 | "relationship" | "missing" | "cycle" | "nil" | "more",
//!          "text": "document:readme#view (permission: viewer + parent->view)",
//!          "outcome": "allowed" | "denied" | "conditional" | null (expand has none),
//!          "children": [Node, ...] }
//! ```

use super::explain::{Step, Tree};
use super::{Decision, Tri};
use serde::Serialize;
use std::fmt::Write as _;

/// One node of the JSON shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Node<'t> {
    pub kind: &'t Step,
    pub text: &'t str,
    pub outcome: Option<Tri>,
    pub children: Vec<Node<'t>>,
}

/// A whole explain answer in the JSON shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation<'t> {
    pub query: &'t str,
    #[serde(flatten)]
    pub decision: &'t Decision,
    pub tree: Node<'t>,
}

impl<'t> Explanation<'t> {
    pub fn new(query: &'t str, decision: &'t Decision, tree: &'t Tree) -> Self {
        Explanation { query, decision, tree: Node::of(tree) }
    }
}

impl<'t> Node<'t> {
    pub fn of(t: &'t Tree) -> Self {
        Node {
            kind: &t.step,
            text: &t.label,
            outcome: t.outcome,
            children: t.children.iter().map(Node::of).collect(),
        }
    }
}

impl Tree {
    /// The tree as a Graphviz digraph, top-down: a node each, green when it holds, red when it
    /// does not, amber when it depends on conditions; `title` (the question and its decision)
    /// labels the graph.
    pub fn to_dot(&self, title: &str) -> String {
        let mut out = String::from("digraph explain {\n");
        let _ = writeln!(
            out,
            "  graph [label={}, labelloc=t, fontname=\"Helvetica\", fontsize=12];",
            quote(title)
        );
        out.push_str("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n");
        out.push_str("  edge [color=\"#757575\"];\n");
        let mut next = 0;
        self.dot_node(&mut out, &mut next);
        out.push_str("}\n");
        out
    }

    fn dot_node(&self, out: &mut String, next: &mut usize) -> usize {
        let id = *next;
        *next += 1;
        let (mark, color, fill) = match self.outcome {
            Some(Tri::True) => ("✓ ", "#2e7d32", "#e8f5e9"),
            Some(Tri::False) => ("✗ ", "#c62828", "#ffebee"),
            Some(Tri::Cond) => ("? ", "#ef6c00", "#fff3e0"),
            None => ("", "#616161", "#fafafa"),
        };
        let _ = writeln!(
            out,
            "  n{id} [label={}, color=\"{color}\", fillcolor=\"{fill}\"];",
            quote(&format!("{mark}{}", self.label))
        );
        for c in &self.children {
            let child = c.dot_node(out, next);
            let _ = writeln!(out, "  n{id} -> n{child};");
        }
        id
    }
}

/// A DOT double-quoted string.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}
