//! The schema as a picture: DOT (Graphviz), Mermaid, or SVG drawn in pure Rust.
//!
//! [`picture`] draws either the whole schema — one box a type, its relations and permissions
//! listed inside, an edge from each relation to the types of its subjects and from each
//! permission to the relations its arrows reach — or the dependency subgraph of one permission
//! (every relation its value may depend on, found with [`SchemaGraph`]), one node a relation.
//!
//! Output is deterministic (schema order throughout), so it can be kept in docs and golden files.
//! This stage sees only the compiled [`Schema`]; it runs no query and needs no data.

mod dot;
mod mermaid;
mod svg;

use crate::diag::did_you_mean;
use crate::schema::{describe, AllowedKind, RelId, RelKind, Rewrite, Schema, SchemaGraph, TypeId};
use crate::syntax::ast::ArrowMode;
use std::str::FromStr;

/// The language of a picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Graphviz DOT (`dot -Tsvg`), with record nodes and ports.
    Dot,
    /// An SVG image, laid out and drawn by the `layout-rs` crate (no Graphviz needed).
    Svg,
    /// A Mermaid flowchart, for Markdown docs.
    Mermaid,
}

impl Format {
    pub const NAMES: [&'static str; 3] = ["dot", "svg", "mermaid"];
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dot" => Ok(Format::Dot),
            "svg" => Ok(Format::Svg),
            "mermaid" => Ok(Format::Mermaid),
            _ => Err(format!("unknown picture format `{s}`: use one of dot, svg, mermaid")),
        }
    }
}

/// Why a picture could not be drawn: the permission asked for is not in the schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum PictureError {
    #[error("`{0}` is not of the form `TYPE#PERMISSION`")]
    #[diagnostic(code(invalid_permission), help("name a permission as `document#view`"))]
    Malformed(String),
    #[error("unknown type `{name}`")]
    #[diagnostic(code(unknown_type))]
    UnknownType {
        name: String,
        #[help]
        help: Option<String>,
    },
    #[error("type `{ty}` has no relation or permission `{name}`")]
    #[diagnostic(code(unknown_relation))]
    UnknownRelation {
        ty: String,
        name: String,
        #[help]
        help: Option<String>,
    },
    /// Too many boxes and edges for the SVG layout to finish quickly.
    #[error("the picture is too large to lay out as SVG ({boxes} boxes, {edges} edges)")]
    #[diagnostic(
        code(too_large),
        help(
            "draw one permission with `--permission TYPE#PERM`, or use `--format dot` or `--format mermaid`"
        )
    )]
    TooLarge { boxes: usize, edges: usize },
    /// The SVG layout crate could not place this graph (a bug there, not in the schema).
    #[error("the SVG layout failed on this schema")]
    #[diagnostic(
        code(layout_failed),
        help("draw it with `--format dot` and Graphviz, or `--format mermaid`")
    )]
    Layout,
}

impl PictureError {
    /// The hint for the user, if any: close names, or the expected form.
    pub fn help(&self) -> Option<String> {
        match self {
            PictureError::Malformed(_) => Some("name a permission as `document#view`".into()),
            PictureError::TooLarge { .. } => Some(
                "draw one permission with `--permission TYPE#PERM`, or use `--format dot` or `--format mermaid`"
                    .into(),
            ),
            PictureError::Layout => {
                Some("draw it with `--format dot` and Graphviz, or `--format mermaid`".into())
            }
            PictureError::UnknownType { help, .. } | PictureError::UnknownRelation { help, .. } => {
                help.clone()
            }
        }
    }
}

/// Splits `TYPE#PERMISSION` (as `--permission` takes it).
pub fn split_focus(text: &str) -> Result<(&str, &str), PictureError> {
    match text.split_once('#') {
        Some((t, p)) if !t.is_empty() && !p.is_empty() && !p.contains('#') => Ok((t, p)),
        _ => Err(PictureError::Malformed(text.to_string())),
    }
}

/// Draws `schema` in `format`: the whole schema, or with `focus = Some((type, permission))` the
/// dependency subgraph of that permission (or relation).
pub fn picture(schema: &Schema, format: Format, focus: Option<(&str, &str)>) -> Result<String, PictureError> {
    let diagram = match focus {
        None => whole(schema),
        Some((ty, rel)) => {
            let node = resolve(schema, ty, rel)?;
            dependencies(schema, node)
        }
    };
    Ok(match format {
        Format::Dot => dot::render(&diagram),
        Format::Mermaid => mermaid::render(&diagram),
        Format::Svg => svg::render(&diagram)?,
    })
}

fn resolve(schema: &Schema, ty: &str, rel: &str) -> Result<(TypeId, RelId), PictureError> {
    let Some(t) = schema.type_id(ty) else {
        let help = did_you_mean(ty, schema.type_names()).or_else(|| {
            let names: Vec<&str> = schema.type_names().collect();
            Some(format!("the types are: {}", names.join(", ")))
        });
        return Err(PictureError::UnknownType { name: ty.to_string(), help });
    };
    let tdef = schema.type_def(t);
    match tdef.relation_id(rel) {
        Some(r) => Ok((t, r)),
        None => {
            let names: Vec<&str> = tdef.relation_names().collect();
            let help = did_you_mean(rel, names.iter().copied()).or_else(|| {
                if names.is_empty() {
                    Some(format!("type `{ty}` has no relations or permissions"))
                } else {
                    Some(format!("`{ty}` has: {}", names.join(", ")))
                }
            });
            Err(PictureError::UnknownRelation { ty: ty.to_string(), name: rel.to_string(), help })
        }
    }
}

/// What is drawn, independent of the output language.
#[derive(Debug, Default)]
struct Diagram {
    /// `true` for a permission's dependency subgraph (one node a relation, grouped by type).
    focused: bool,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
    /// Nodes drawn together (the focused view groups a type's relations): label and members.
    groups: Vec<(String, Vec<usize>)>,
}

#[derive(Debug)]
struct Node {
    title: String,
    rows: Vec<String>,
    kind: NodeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    /// A type (a box with its relations, or a type of subjects).
    Type,
    Relation,
    Permission,
}

/// An end of an edge: a node, or one row of it (a relation inside a type's box).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct End {
    node: usize,
    row: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
struct Edge {
    from: End,
    to: End,
    label: String,
    style: Style,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// To the type (or userset) of a relation's subjects.
    Subject,
    /// Through an arrow (`parent->view`).
    Arrow,
    /// A reference to another relation of the same object.
    Computed,
    /// The right side of an exclusion (`- banned`).
    Excluded,
}

impl Diagram {
    fn edge(&mut self, from: End, to: End, label: String, style: Style) {
        let e = Edge { from, to, label, style };
        if !self.edges.contains(&e) {
            self.edges.push(e);
        }
    }
}

/// `relation member: user | group#member`, `permission view = viewer + parent->view`.
fn declaration(schema: &Schema, ty: TypeId, rel: RelId) -> String {
    let r = schema.rel_def(ty, rel);
    let kind = if r.kind == RelKind::Permission { "permission" } else { "relation" };
    format!("{kind} {}{}", r.name, body(schema, ty, rel))
}

/// The declaration after the name: `: user | group#member`, ` = viewer + parent->view`.
fn body(schema: &Schema, ty: TypeId, rel: RelId) -> String {
    let r = schema.rel_def(ty, rel);
    let mut out = String::new();
    if !r.allowed.is_empty() {
        let subjects: Vec<String> = r.allowed.iter().map(|a| subject_text(schema, a)).collect();
        out.push_str(": ");
        out.push_str(&subjects.join(" | "));
    }
    if r.rewrite != Rewrite::This {
        out.push_str(" = ");
        out.push_str(&describe(schema, ty, &r.rewrite));
    }
    out
}

fn subject_text(schema: &Schema, a: &crate::schema::AllowedSubject) -> String {
    let mut s = schema.type_def(a.ty).name.clone();
    match a.kind {
        AllowedKind::Direct => {}
        AllowedKind::Wildcard => s.push_str(":*"),
        AllowedKind::Userset(r) => {
            s.push('#');
            s.push_str(&schema.rel_def(a.ty, r).name);
        }
    }
    match (a.condition.map(|c| &schema.condition(c).name), a.expiration) {
        (Some(c), true) => s.push_str(&format!(" with {c} and expiration")),
        (Some(c), false) => s.push_str(&format!(" with {c}")),
        (None, true) => s.push_str(" with expiration"),
        (None, false) => {}
    }
    s
}

/// An arrow's text: `parent->view` or `parent.all(view)`.
fn arrow_text(schema: &Schema, ty: TypeId, tupleset: RelId, target: &str, mode: ArrowMode) -> String {
    let ts = &schema.rel_def(ty, tupleset).name;
    match mode {
        ArrowMode::Any => format!("{ts}->{target}"),
        ArrowMode::All => format!("{ts}.all({target})"),
    }
}

/// The arrows of a rewrite, with whether each is on the excluded side of an exclusion.
fn arrows<'r>(rw: &'r Rewrite, negative: bool, out: &mut Vec<(&'r Rewrite, bool)>) {
    match rw {
        Rewrite::Arrow { .. } => out.push((rw, negative)),
        Rewrite::Union(v) | Rewrite::Intersection(v) => v.iter().for_each(|x| arrows(x, negative, out)),
        Rewrite::Exclusion(a, b) => {
            arrows(a, negative, out);
            arrows(b, true, out);
        }
        Rewrite::This | Rewrite::Computed(_) | Rewrite::Nil | Rewrite::SelfRef => {}
    }
}

/// The subject types an arrow can reach: the tupleset's subject types that have the target.
fn arrow_targets(
    schema: &Schema,
    ty: TypeId,
    tupleset: RelId,
    targets: &[Option<RelId>],
) -> Vec<(TypeId, RelId)> {
    let mut out = Vec::new();
    for a in &schema.rel_def(ty, tupleset).allowed {
        if let Some(Some(tr)) = targets.get(a.ty as usize) {
            if !out.contains(&(a.ty, *tr)) {
                out.push((a.ty, *tr));
            }
        }
    }
    out
}

/// The whole schema: a box a type, edges to subject types and along arrows.
fn whole(schema: &Schema) -> Diagram {
    let mut d = Diagram::default();
    for (t, tdef) in schema.types.iter().enumerate() {
        let rows = (0..tdef.relations.len()).map(|r| declaration(schema, t as TypeId, r as RelId)).collect();
        d.nodes.push(Node { title: tdef.name.clone(), rows, kind: NodeKind::Type });
    }
    for (t, tdef) in schema.types.iter().enumerate() {
        for (r, rdef) in tdef.relations.iter().enumerate() {
            let from = End { node: t, row: Some(r) };
            for a in &rdef.allowed {
                let (to, label) = match a.kind {
                    AllowedKind::Direct => (End { node: a.ty as usize, row: None }, rdef.name.clone()),
                    AllowedKind::Wildcard => (
                        End { node: a.ty as usize, row: None },
                        format!("{}: {}:*", rdef.name, schema.type_def(a.ty).name),
                    ),
                    AllowedKind::Userset(ur) => (
                        End { node: a.ty as usize, row: Some(ur as usize) },
                        format!(
                            "{}: {}#{}",
                            rdef.name,
                            schema.type_def(a.ty).name,
                            schema.rel_def(a.ty, ur).name
                        ),
                    ),
                };
                d.edge(from, to, label, Style::Subject);
            }
            let mut found = Vec::new();
            arrows(&rdef.rewrite, false, &mut found);
            for (rw, negative) in found {
                let Rewrite::Arrow { tupleset, target_name, targets, mode } = rw else { continue };
                let text = arrow_text(schema, t as TypeId, *tupleset, target_name, *mode);
                let label = if negative {
                    format!("{}: but not {text}", rdef.name)
                } else {
                    format!("{}: {text}", rdef.name)
                };
                let style = if negative { Style::Excluded } else { Style::Arrow };
                for (st, tr) in arrow_targets(schema, t as TypeId, *tupleset, targets) {
                    let to = End { node: st as usize, row: Some(tr as usize) };
                    d.edge(from, to, label.clone(), style);
                }
            }
        }
    }
    d
}

/// The dependency subgraph of one relation: a node for each relation it may evaluate, a node
/// for each type of subjects stored on the way.
fn dependencies(schema: &Schema, start: (TypeId, RelId)) -> Diagram {
    let mut reach: Vec<(TypeId, RelId)> = SchemaGraph::build(schema).reachable(start).into_iter().collect();
    // The asked permission first, then its type's other relations, then schema order.
    reach.sort_unstable_by_key(|&(t, r)| (t != start.0, t, r != start.1, r));
    let mut d = Diagram { focused: true, ..Diagram::default() };
    let mut index: Vec<((TypeId, Option<RelId>), usize)> = Vec::new();
    for &(t, r) in &reach {
        let rdef = schema.rel_def(t, r);
        let kind = if rdef.kind == RelKind::Permission { NodeKind::Permission } else { NodeKind::Relation };
        let title = format!("{}#{}", schema.type_def(t).name, rdef.name);
        let b = body(schema, t, r);
        let row = match kind {
            NodeKind::Permission => format!("permission{b}"),
            _ => format!("relation{b}"),
        };
        index.push(((t, Some(r)), d.nodes.len()));
        d.nodes.push(Node { title, rows: vec![row], kind });
    }
    // Types of directly stored subjects, in schema order.
    let mut leaves: Vec<TypeId> = Vec::new();
    for &(t, r) in &reach {
        for a in &schema.rel_def(t, r).allowed {
            if !matches!(a.kind, AllowedKind::Userset(_)) && !leaves.contains(&a.ty) {
                leaves.push(a.ty);
            }
        }
    }
    leaves.sort_unstable();
    for ty in leaves {
        index.push(((ty, None), d.nodes.len()));
        d.nodes.push(Node {
            title: schema.type_def(ty).name.clone(),
            rows: Vec::new(),
            kind: NodeKind::Type,
        });
    }
    let at = |key: (TypeId, Option<RelId>)| -> Option<End> {
        index.iter().find(|(k, _)| *k == key).map(|(_, i)| End { node: *i, row: None })
    };
    for &(t, r) in &reach {
        let Some(from) = at((t, Some(r))) else { continue };
        let rdef = schema.rel_def(t, r);
        for a in &rdef.allowed {
            let key = match a.kind {
                AllowedKind::Direct | AllowedKind::Wildcard => (a.ty, None),
                AllowedKind::Userset(ur) => (a.ty, Some(ur)),
            };
            // The subject type as declared, unless it says no more than the node it points to.
            let label = subject_text(schema, a);
            let label = if label == schema.type_def(a.ty).name { String::new() } else { label };
            if let Some(to) = at(key) {
                d.edge(from, to, label, Style::Subject);
            }
        }
        walk(schema, &mut d, &at, (t, r), from, &rdef.rewrite, false);
    }
    let mut groups: Vec<(TypeId, Vec<usize>)> = Vec::new();
    for ((t, _), i) in &index {
        match groups.iter_mut().find(|(g, _)| g == t) {
            Some((_, members)) => members.push(*i),
            None => groups.push((*t, vec![*i])),
        }
    }
    d.groups = groups.into_iter().map(|(t, m)| (schema.type_def(t).name.clone(), m)).collect();
    d
}

/// Adds the edges of one rewrite of the focused view.
fn walk(
    schema: &Schema,
    d: &mut Diagram,
    at: &dyn Fn((TypeId, Option<RelId>)) -> Option<End>,
    (t, r): (TypeId, RelId),
    from: End,
    rw: &Rewrite,
    negative: bool,
) {
    let style = |s: Style| if negative { Style::Excluded } else { s };
    let label = |s: String| if negative { format!("but not {s}") } else { s };
    match rw {
        Rewrite::This | Rewrite::Nil | Rewrite::SelfRef => {}
        Rewrite::Computed(c) => {
            if let Some(to) = at((t, Some(*c))) {
                d.edge(from, to, label(schema.rel_def(t, *c).name.clone()), style(Style::Computed));
            }
        }
        Rewrite::Arrow { tupleset, target_name, targets, mode } => {
            let text = arrow_text(schema, t, *tupleset, target_name, *mode);
            if let Some(to) = at((t, Some(*tupleset))) {
                d.edge(
                    from,
                    to,
                    label(format!("via {}", schema.rel_def(t, *tupleset).name)),
                    style(Style::Computed),
                );
            }
            for (st, tr) in arrow_targets(schema, t, *tupleset, targets) {
                if let Some(to) = at((st, Some(tr))) {
                    d.edge(from, to, label(text.clone()), style(Style::Arrow));
                }
            }
        }
        Rewrite::Union(v) | Rewrite::Intersection(v) => {
            for x in v {
                walk(schema, d, at, (t, r), from, x, negative);
            }
        }
        Rewrite::Exclusion(a, b) => {
            walk(schema, d, at, (t, r), from, a, negative);
            walk(schema, d, at, (t, r), from, b, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{split_focus, PictureError};

    #[test]
    fn focus_is_type_hash_permission() {
        assert_eq!(split_focus("document#view"), Ok(("document", "view")));
        for bad in ["document", "#view", "document#", "a#b#c", ""] {
            assert_eq!(split_focus(bad), Err(PictureError::Malformed(bad.to_string())), "{bad}");
        }
    }
}
