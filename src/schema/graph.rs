//! The schema as a petgraph graph: which relations a relation's value depends on.
//!
//! Nodes are `(type, relation)` pairs; an edge `a → b` means evaluating `a` may evaluate `b`
//! (a computed reference, an arrow's tupleset and target, a userset subject type). Strongly
//! connected components are the recursive relations (groups in groups, company chains), which
//! the index plans closures for and the checker uses to find recursion without a base case.

use super::{AllowedKind, RelId, Rewrite, Schema, TypeId};
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{HashMap, HashSet};

/// A relation or permission of a type.
pub type Node = (TypeId, RelId);

#[derive(Debug, Clone)]
pub struct SchemaGraph {
    pub graph: DiGraph<Node, ()>,
    index: HashMap<Node, NodeIndex>,
    /// For each node, the id of its strongly connected component.
    scc_of: HashMap<Node, usize>,
    /// Components with more than one node, or a node with an edge to itself.
    recursive: HashSet<usize>,
}

impl SchemaGraph {
    pub fn build(schema: &Schema) -> SchemaGraph {
        let mut graph = DiGraph::new();
        let mut index = HashMap::new();
        for (t, tdef) in schema.types.iter().enumerate() {
            for r in 0..tdef.relations.len() {
                let n = (t as TypeId, r as RelId);
                index.insert(n, graph.add_node(n));
            }
        }
        for (t, tdef) in schema.types.iter().enumerate() {
            for (r, rdef) in tdef.relations.iter().enumerate() {
                let from = index[&(t as TypeId, r as RelId)];
                let mut deps = Vec::new();
                collect_deps(schema, t as TypeId, r as RelId, &rdef.rewrite, &mut deps);
                for d in deps {
                    if let Some(&to) = index.get(&d) {
                        graph.update_edge(from, to, ());
                    }
                }
            }
        }
        let mut scc_of = HashMap::new();
        let mut recursive = HashSet::new();
        for (i, comp) in tarjan_scc(&graph).into_iter().enumerate() {
            let self_loop = comp.len() == 1 && graph.contains_edge(comp[0], comp[0]);
            if comp.len() > 1 || self_loop {
                recursive.insert(i);
            }
            for n in comp {
                scc_of.insert(graph[n], i);
            }
        }
        SchemaGraph { graph, index, scc_of, recursive }
    }

    /// Whether the node is part of a recursive component.
    pub fn in_cycle(&self, n: Node) -> bool {
        self.scc_of.get(&n).is_some_and(|c| self.recursive.contains(c))
    }

    /// Whether `a` and `b` are in the same recursive component.
    pub fn same_cycle(&self, a: Node, b: Node) -> bool {
        self.in_cycle(a) && self.scc_of.get(&a) == self.scc_of.get(&b)
    }

    /// Nodes that `from` can reach (including itself).
    pub fn reachable(&self, from: Node) -> HashSet<Node> {
        let mut out = HashSet::new();
        if let Some(&start) = self.index.get(&from) {
            let mut dfs = petgraph::visit::Dfs::new(&self.graph, start);
            while let Some(n) = dfs.next(&self.graph) {
                out.insert(self.graph[n]);
            }
        }
        out
    }

    /// The nodes that can hold for some data: least fixpoint where stored relations hold, unions
    /// need one branch, intersections all, exclusions their left side, arrows their target.
    pub fn grounded(&self, schema: &Schema) -> HashSet<Node> {
        let mut g: HashSet<Node> = HashSet::new();
        loop {
            let before = g.len();
            for (t, tdef) in schema.types.iter().enumerate() {
                for (r, rdef) in tdef.relations.iter().enumerate() {
                    let n = (t as TypeId, r as RelId);
                    if !g.contains(&n) && can_hold(schema, t as TypeId, r as RelId, &rdef.rewrite, &g) {
                        g.insert(n);
                    }
                }
            }
            if g.len() == before {
                return g;
            }
        }
    }
}

fn can_hold(schema: &Schema, t: TypeId, r: RelId, rw: &Rewrite, g: &HashSet<Node>) -> bool {
    match rw {
        Rewrite::This => !schema.rel_def(t, r).allowed.is_empty(),
        Rewrite::Computed(c) => g.contains(&(t, *c)),
        Rewrite::Arrow { targets, .. } => {
            targets.iter().enumerate().any(|(st, tr)| tr.is_some_and(|tr| g.contains(&(st as TypeId, tr))))
        }
        Rewrite::Union(v) => v.iter().any(|x| can_hold(schema, t, r, x, g)),
        Rewrite::Intersection(v) => v.iter().all(|x| can_hold(schema, t, r, x, g)),
        Rewrite::Exclusion(a, _) => can_hold(schema, t, r, a, g),
        Rewrite::Nil => false,
    }
}

fn collect_deps(schema: &Schema, t: TypeId, r: RelId, rw: &Rewrite, out: &mut Vec<Node>) {
    match rw {
        Rewrite::This => {
            for a in &schema.rel_def(t, r).allowed {
                if let AllowedKind::Userset(ur) = a.kind {
                    out.push((a.ty, ur));
                }
            }
        }
        Rewrite::Computed(c) => out.push((t, *c)),
        Rewrite::Arrow { tupleset, targets, .. } => {
            out.push((t, *tupleset));
            for (st, tr) in targets.iter().enumerate() {
                if let Some(tr) = tr {
                    out.push((st as TypeId, *tr));
                }
            }
        }
        Rewrite::Union(v) | Rewrite::Intersection(v) => {
            for x in v {
                collect_deps(schema, t, r, x, out);
            }
        }
        Rewrite::Exclusion(a, b) => {
            collect_deps(schema, t, r, a, out);
            collect_deps(schema, t, r, b, out);
        }
        Rewrite::Nil => {}
    }
}
