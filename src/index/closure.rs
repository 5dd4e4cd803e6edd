//! Leopard-style closures (Zanzibar §3.2.4) for recursive relations.
//!
//! A *self-edge slot* holds relationships from objects of a type to objects of the same type:
//! `usergroup#member@usergroup#member` (groups in groups) or `company#subsidiary-of@company`
//! (a company chain followed by an arrow). For such a slot the index keeps, for every node,
//! `down` = every node reachable by following its plain edges (transitively) and `up` = every
//! node that reaches it. A check through nested groups then becomes a bitmap intersection
//! (`down(g) ∩ groups-the-user-is-directly-in`), and an arrow chain a walk over a short list.
//!
//! Both lists are maintained incrementally: adding an edge `a → b` adds `down*(b)` to every
//! node of `up*(a)`; removing one recomputes the nodes whose reach may have shrunk.

use super::lists::Lists;
use roaring::RoaringBitmap;
use std::collections::VecDeque;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Closure {
    /// Node → nodes reachable through one or more edges.
    pub down: Lists,
    /// Node → nodes that reach it through one or more edges.
    pub up: Lists,
}

/// Nodes reachable from `start` through one or more edges of `edges`.
fn reach(edges: &Lists, start: u32) -> RoaringBitmap {
    let mut seen = RoaringBitmap::new();
    let mut queue: VecDeque<u32> = edges.get(start).iter().collect();
    while let Some(n) = queue.pop_front() {
        if seen.insert(n) {
            queue.extend(edges.get(n).iter().filter(|m| !seen.contains(*m)));
        }
    }
    seen
}

fn set_list(lists: &mut Lists, key: u32, new: &RoaringBitmap) {
    let old = lists.get(key).to_bitmap();
    for v in &(&old - new) {
        lists.remove(key, v);
    }
    for v in &(new - &old) {
        lists.insert(key, v);
    }
}

impl Closure {
    /// Builds the closure of a whole slot from its forward and reverse lists.
    pub fn build(fwd: &Lists, rev: &Lists) -> Closure {
        let mut down_pairs = Vec::new();
        let mut up_pairs = Vec::new();
        for n in 0..fwd.key_bound() {
            if fwd.get(n).is_empty() {
                continue;
            }
            for m in &reach(fwd, n) {
                down_pairs.push((n, m));
            }
        }
        for n in 0..rev.key_bound() {
            if rev.get(n).is_empty() {
                continue;
            }
            for m in &reach(rev, n) {
                up_pairs.push((n, m));
            }
        }
        up_pairs.sort_unstable();
        Closure { down: Lists::from_sorted(down_pairs), up: Lists::from_sorted(up_pairs) }
    }

    /// Updates after the edge `a → b` was added to the slot.
    pub fn on_insert(&mut self, a: u32, b: u32) {
        let mut sources = self.up.get(a).to_bitmap();
        sources.insert(a);
        let mut targets = self.down.get(b).to_bitmap();
        targets.insert(b);
        for s in &sources {
            for t in &targets {
                self.down.insert(s, t);
            }
        }
        for t in &targets {
            for s in &sources {
                self.up.insert(t, s);
            }
        }
    }

    /// Updates after the edge `a → b` was removed (`fwd` and `rev` already without it).
    pub fn on_remove(&mut self, fwd: &Lists, rev: &Lists, a: u32, b: u32) {
        let mut sources = self.up.get(a).to_bitmap();
        sources.insert(a);
        let mut targets = self.down.get(b).to_bitmap();
        targets.insert(b);
        for s in &sources {
            set_list(&mut self.down, s, &reach(fwd, s));
        }
        for t in &targets {
            set_list(&mut self.up, t, &reach(rev, t));
        }
    }
}
