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
    /// Edge weight: `true` when the dependency is negative (the right side of an exclusion).
    pub graph: DiGraph<Node, bool>,
    index: HashMap<Node, NodeIndex>,
    /// For each node, the id of its strongly connected component.
    scc_of: HashMap<Node, usize>,
    /// Components with more than one node, or a node with an edge to itself.
    recursive: HashSet<usize>,
    /// Recursive components with a negative edge inside (recursion through an exclusion).
    negative: HashSet<usize>,
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
                collect_deps(schema, t as TypeId, r as RelId, &rdef.rewrite, false, &mut deps);
                for (d, negative) in deps {
                    if let Some(&to) = index.get(&d) {
                        match graph.find_edge(from, to) {
                            Some(e) => graph[e] |= negative,
                            None => {
                                graph.add_edge(from, to, negative);
                            }
                        }
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
        let mut negative = HashSet::new();
        for e in graph.edge_indices().filter(|&e| graph[e]) {
            if let Some((a, b)) = graph.edge_endpoints(e) {
                let (ca, cb) = (scc_of.get(&graph[a]), scc_of.get(&graph[b]));
                if let (Some(ca), Some(cb)) = (ca, cb) {
                    if ca == cb && recursive.contains(ca) {
                        negative.insert(*ca);
                    }
                }
            }
        }
        SchemaGraph { graph, index, scc_of, recursive, negative }
    }

    /// The members of the node's strongly connected component (the node alone if none).
    pub fn component(&self, n: Node) -> Vec<Node> {
        match self.scc_of.get(&n) {
            Some(c) => {
                let mut v: Vec<Node> =
                    self.scc_of.iter().filter(|(_, sc)| *sc == c).map(|(k, _)| *k).collect();
                v.sort();
                v
            }
            None => vec![n],
        }
    }

    /// Whether the node is part of a recursive component.
    pub fn in_cycle(&self, n: Node) -> bool {
        self.scc_of.get(&n).is_some_and(|c| self.recursive.contains(c))
    }

    /// Whether `a` and `b` are in the same recursive component.
    pub fn same_cycle(&self, a: Node, b: Node) -> bool {
        self.in_cycle(a) && self.scc_of.get(&a) == self.scc_of.get(&b)
    }

    /// Whether the node is part of a recursive component that goes through an exclusion: its
    /// value may depend on its own negation, so evaluation must watch for data that cycles
    /// through the exclusion (and cannot use closures or bottom-up fixpoints for it).
    pub fn in_negative_cycle(&self, n: Node) -> bool {
        self.scc_of.get(&n).is_some_and(|c| self.negative.contains(c))
    }

    /// Whether the schema recurses through an exclusion anywhere.
    pub fn has_negative_cycles(&self) -> bool {
        !self.negative.is_empty()
    }

    /// Whether evaluating `from` may evaluate a node of a recursion through an exclusion.
    pub fn reaches_negative_cycle(&self, from: Node) -> bool {
        !self.negative.is_empty() && self.reachable(from).iter().any(|&n| self.in_negative_cycle(n))
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
        Rewrite::SelfRef => true,
    }
}

fn collect_deps(schema: &Schema, t: TypeId, r: RelId, rw: &Rewrite, neg: bool, out: &mut Vec<(Node, bool)>) {
    match rw {
        Rewrite::This => {
            for a in &schema.rel_def(t, r).allowed {
                if let AllowedKind::Userset(ur) = a.kind {
                    out.push(((a.ty, ur), neg));
                }
            }
        }
        Rewrite::Computed(c) => out.push(((t, *c), neg)),
        Rewrite::Arrow { tupleset, targets, .. } => {
            out.push(((t, *tupleset), neg));
            for (st, tr) in targets.iter().enumerate() {
                if let Some(tr) = tr {
                    out.push(((st as TypeId, *tr), neg));
                }
            }
        }
        Rewrite::Union(v) | Rewrite::Intersection(v) => {
            for x in v {
                collect_deps(schema, t, r, x, neg, out);
            }
        }
        Rewrite::Exclusion(a, b) => {
            collect_deps(schema, t, r, a, neg, out);
            collect_deps(schema, t, r, b, true, out);
        }
        Rewrite::Nil | Rewrite::SelfRef => {}
    }
}
