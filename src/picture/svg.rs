//! SVG laid out and drawn by the `layout-rs` crate (Sugiyama-style layers, in pure Rust).
//!
//! `layout-rs` has no ports, so an edge leaves its box rather than its row, and its label names
//! the relation. Its own canvas size under-counts text, so the `<svg>` element's size is
//! recomputed here from the laid-out nodes (edge labels are nodes too).

use super::{Diagram, NodeKind, PictureError, Style};
use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::color::Color;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, RecordDef, ShapeKind};
use layout::topo::layout::VisualGraph;
use std::panic::AssertUnwindSafe;

/// `layout-rs` draws the connectors of long edges at its default size, 15: one size everywhere
/// keeps a single font class (its classes come out of a hash map, in no fixed order).
const FONT: usize = 15;
const MARGIN: f64 = 10.0;
/// The most laid-out nodes (see `work`) drawn as SVG.
const MAX_WORK: usize = 600;
/// `layout-rs` sizes boxes for one `FONT`-px square per character, about twice what a sans-serif
/// letter takes: the text is drawn larger than that to fill them.
const STYLE_IN: &str = ".a15 { font-size: 15px; font-family: Times, serif; }";
const STYLE_OUT: &str = ".a15 { font-size: 18px; font-family: Helvetica, Arial, sans-serif; }";

/// What an empty schema is drawn as (`layout-rs` cannot lay out a graph without nodes).
const EMPTY: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8" standalone="no"?>"#,
    r#"<svg width="200" height="40" viewBox="0 0 200 40" xmlns="http://www.w3.org/2000/svg">"#,
    r#"<text x="100" y="25" text-anchor="middle" style="font: 15px Helvetica, Arial, sans-serif">(no types)</text>"#,
    "</svg>\n"
);

/// An estimate of the nodes the layout places: the boxes, plus two per layer each edge crosses
/// (its label and the bends `layout-rs` splits long edges into), layers by longest path with
/// the edges that close a cycle turned around.
fn work(d: &Diagram) -> usize {
    let n = d.nodes.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in &d.edges {
        if e.from.node != e.to.node && !out[e.from.node].contains(&e.to.node) {
            out[e.from.node].push(e.to.node);
        }
    }
    // Depth-first order; an edge to a node still on the stack closes a cycle and is dropped.
    let mut state = vec![0u8; n];
    let mut order = Vec::with_capacity(n);
    let mut dag: Vec<Vec<usize>> = vec![Vec::new(); n];
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some((v, i)) = stack.pop() {
            if let Some(&w) = out[v].get(i) {
                stack.push((v, i + 1));
                match state[w] {
                    0 => {
                        state[w] = 1;
                        dag[v].push(w);
                        stack.push((w, 0));
                    }
                    2 => dag[v].push(w),
                    _ => {}
                }
            } else {
                state[v] = 2;
                order.push(v);
            }
        }
    }
    // Longest path from the sources, in topological order (reverse post-order).
    let mut layer = vec![0usize; n];
    for &v in order.iter().rev() {
        for &w in &dag[v] {
            layer[w] = layer[w].max(layer[v] + 1);
        }
    }
    let spans: usize = d.edges.iter().map(|e| 2 * layer[e.from.node].abs_diff(layer[e.to.node]).max(1)).sum();
    n + spans
}

/// Lays the diagram out and draws it. `layout-rs` asserts its own invariants as it places nodes;
/// should one fail on some schema, the drawing is tried again with its simple placement only
/// (no crossing reduction or straightening), and failing that, an error says so.
pub(super) fn render(d: &Diagram) -> Result<String, PictureError> {
    if d.nodes.is_empty() {
        return Ok(EMPTY.to_string());
    }
    // The layout's time grows about as the cube of the nodes it places: 230 (the largest
    // example) take 0.6 s in a debug build, 517 (a chain of 20 types) 3.4 s, 1077 over 30 s.
    if work(d) > MAX_WORK {
        return Err(PictureError::TooLarge { boxes: d.nodes.len(), edges: d.edges.len() });
    }
    for simple in [false, true] {
        if let Ok(svg) = std::panic::catch_unwind(AssertUnwindSafe(|| draw(d, simple))) {
            return Ok(svg);
        }
    }
    Err(PictureError::Layout)
}

fn draw(d: &Diagram, simple: bool) -> String {
    let dir = Orientation::LeftToRight;
    let mut vg = VisualGraph::new(dir);
    let mut handles = Vec::with_capacity(d.nodes.len());
    for n in &d.nodes {
        // In the focused view a type's node is a leaf among relations: say that it is a type.
        let title =
            if d.focused && n.kind == NodeKind::Type { format!("type {}", n.title) } else { n.title.clone() };
        let shape = if n.rows.is_empty() {
            ShapeKind::Box(title)
        } else {
            let mut fields = vec![RecordDef::new_text(&title)];
            fields.extend(n.rows.iter().map(|r| RecordDef::new_text(r)));
            ShapeKind::Record(RecordDef::Array(vec![RecordDef::Array(fields)]))
        };
        let fill = match n.kind {
            NodeKind::Type => 0xf5f5f5ff,
            NodeKind::Relation => 0xffffffff,
            NodeKind::Permission => 0xfff8e1ff,
        };
        let look = StyleAttr::new(Color::new(0x424242ff), 1, Some(Color::new(fill)), 0, FONT);
        let size = get_shape_size(dir, &shape, FONT, false);
        handles.push(vg.add_node(Element::create(shape, look, dir, size)));
    }
    for e in &d.edges {
        let (line, color) = match e.style {
            Style::Subject => (LineStyleKind::Normal, 0x212121ff),
            Style::Arrow => (LineStyleKind::Dashed, 0x1565c0ff),
            Style::Computed => (LineStyleKind::Normal, 0x616161ff),
            Style::Excluded => (LineStyleKind::Dashed, 0xc62828ff),
        };
        let look = StyleAttr::new(Color::new(color), 1, None, 0, FONT);
        // Every edge gets a label, blank if need be: `layout-rs` then routes it through a label
        // node of its own. (Its placer fails an assertion on some graphs whose plain edges run
        // parallel to labelled ones, e.g. `relation parent: doc | doc with big`.)
        let label = if e.label.is_empty() { " " } else { e.label.as_str() };
        let arrow = Arrow::new(LineEndKind::None, LineEndKind::Arrow, line, label, &look, &None, &None);
        vg.add_edge(arrow, handles[e.from.node], handles[e.to.node]);
    }
    let mut svg = SVGWriter::new();
    vg.do_it(false, simple, simple, &mut svg);
    let text = svg.finalize().replace(STYLE_IN, STYLE_OUT);
    fit(&vg, &drop_empty_labels(&text))
}

/// Removes the empty `<text><textPath …></textPath></text>` that `layout-rs` writes for every
/// edge: the labels are drawn at the edges' label nodes instead.
fn drop_empty_labels(text: &str) -> String {
    const OPEN: &str = "<text><textPath ";
    const CLOSE: &str = "></textPath></text>";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        let tail = &rest[at..];
        let gt = tail[OPEN.len()..].find('>').map(|i| i + OPEN.len());
        match (gt, tail.find(CLOSE)) {
            // Empty when the opening tag's `>` is the one that starts `></textPath>`.
            (Some(gt), Some(close)) if gt == close => {
                out.push_str(&rest[..at]);
                rest = &tail[close + CLOSE.len()..];
            }
            _ => {
                out.push_str(&rest[..at + OPEN.len()]);
                rest = &tail[OPEN.len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replaces the `<svg …>` element's size with the bounding box of every laid-out node.
fn fit(vg: &VisualGraph, text: &str) -> String {
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for n in vg.iter_nodes() {
        let (a, b) = vg.pos(n).bbox(false);
        x0 = x0.min(a.x);
        y0 = y0.min(a.y);
        x1 = x1.max(b.x);
        y1 = y1.max(b.y);
    }
    if x0 > x1 || y0 > y1 {
        (x0, y0, x1, y1) = (0.0, 0.0, 1.0, 1.0);
    }
    let (x, y) = ((x0 - MARGIN).floor(), (y0 - MARGIN).floor());
    let (w, h) = ((x1 + MARGIN).ceil() - x, (y1 + MARGIN).ceil() - y);
    let Some(start) = text.find("<svg ") else { return text.to_string() };
    let Some(len) = text[start..].find('>') else { return text.to_string() };
    format!(
        "{}<svg width=\"{w}\" height=\"{h}\" viewBox=\"{x} {y} {w} {h}\" xmlns=\"http://www.w3.org/2000/svg\">{}",
        &text[..start],
        &text[start + len + 1..]
    )
}

#[cfg(test)]
mod tests {
    use super::drop_empty_labels;

    #[test]
    fn only_empty_edge_labels_are_dropped() {
        let svg = concat!(
            "<g/><text><textPath href=\"#arrow0\" class=\"a15\"></textPath></text>",
            "<text><textPath href=\"#arrow1\" class=\"a15\">kept</textPath></text><g/>"
        );
        assert_eq!(
            drop_empty_labels(svg),
            "<g/><text><textPath href=\"#arrow1\" class=\"a15\">kept</textPath></text><g/>"
        );
    }
}
