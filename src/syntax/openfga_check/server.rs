//! The entry-point check of OpenFGA's server (`hasEntrypoints` in openfga/openfga
//! `pkg/typesystem`), which refuses some models that the language validator's least-fixpoint
//! check accepts: it walks each relation depth-first, remembering the relations visited on the
//! way, and a relation met again counts as "no entry point" there. When every way out is such a
//! revisit, the server reports "potential loop" (`r0 and r0`, where `r0` is reached only through
//! a userset, is one).
//!
//! The walk is reproduced as the server does it, including how it shares what it visited: the
//! visited set is a map of types to maps of relations, copied one level deep at each step, so a
//! relation marked on a type already seen is visible to the caller's siblings too.

use crate::syntax::ast::{Expr, Item, Member, Schema, SubjectKind, SubjectType};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The relations (type, relation) the server finds no entry point for, and whether it calls it
/// a potential loop.
pub(super) fn no_entry_points(schema: &Schema) -> Vec<(String, String, bool)> {
    let mut relations: HashMap<&str, HashMap<&str, Def<'_>>> = HashMap::new();
    for item in &schema.items {
        let Item::Type(t) = item else { continue };
        let rels = relations.entry(t.name.name.as_str()).or_default();
        for m in &t.members {
            let def = match m {
                Member::Relation(r) => Def { subjects: &r.subjects, rewrite: r.rewrite.as_ref() },
                Member::Permission(p) => Def { subjects: &[], rewrite: Some(&p.expr) },
                Member::Constraint(_) => continue,
            };
            let name = match m {
                Member::Relation(r) => r.name.name.as_str(),
                Member::Permission(p) => p.name.name.as_str(),
                Member::Constraint(_) => continue,
            };
            rels.entry(name).or_insert(def);
        }
    }
    let walk = Walk { relations: &relations };
    let mut types: Vec<&&str> = relations.keys().collect();
    types.sort();
    let mut out = Vec::new();
    for ty in types {
        let mut names: Vec<&&str> = relations[*ty].keys().collect();
        names.sort();
        for rel in names {
            let def = relations[*ty][*rel];
            let node = def.rewrite.map_or(Node::This, Node::Expr);
            if let Some((false, looped)) = walk.walk(ty, rel, node, &Visited::new(), 0) {
                out.push(((*ty).to_string(), (*rel).to_string(), looped));
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
struct Def<'a> {
    subjects: &'a [SubjectType],
    rewrite: Option<&'a Expr>,
}

#[derive(Clone, Copy)]
enum Node<'a> {
    This,
    Expr(&'a Expr),
}

/// Types to (shared) maps of relations to "has an entry point".
type Visited<'a> = HashMap<&'a str, Rc<RefCell<HashMap<&'a str, bool>>>>;

struct Walk<'s, 'a> {
    relations: &'s HashMap<&'a str, HashMap<&'a str, Def<'a>>>,
}

/// Far deeper than any model goes; past it the walk gives up (`None`) rather than recurse.
const MAX_DEPTH: usize = 10_000;

impl<'a> Walk<'_, 'a> {
    fn def(&self, ty: &str, rel: &str) -> Option<Def<'a>> {
        self.relations.get(ty).and_then(|r| r.get(rel)).copied()
    }

    fn seen(v: &Visited<'a>, ty: &str, rel: &str) -> Option<bool> {
        v.get(ty).and_then(|m| m.borrow().get(rel).copied())
    }

    fn node(def: Def<'a>) -> Node<'a> {
        def.rewrite.map_or(Node::This, Node::Expr)
    }

    /// (has an entry point, went around a loop); `None`: an undefined relation (reported by the
    /// other checks) or too deep.
    fn walk(
        &self,
        ty: &'a str,
        rel: &'a str,
        node: Node<'a>,
        visited: &Visited<'a>,
        depth: usize,
    ) -> Option<(bool, bool)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let mut v = visited.clone();
        match v.get(ty) {
            Some(m) => {
                m.borrow_mut().insert(rel, false);
            }
            None => {
                v.insert(ty, Rc::new(RefCell::new(HashMap::from([(rel, false)]))));
            }
        }
        let def = self.def(ty, rel)?;
        let expr = match node {
            Node::This => None,
            Node::Expr(Expr::This(_)) => None,
            Node::Expr(e) => Some(e),
        };
        let Some(expr) = expr else {
            for s in def.subjects {
                let sub_rel = match &s.kind {
                    SubjectKind::Direct | SubjectKind::Wildcard => {
                        if let Some(m) = v.get(ty) {
                            m.borrow_mut().insert(rel, true);
                        }
                        return Some((true, false));
                    }
                    SubjectKind::Userset(r) => r.name.as_str(),
                };
                let sub_ty = s.ty.name.as_str();
                let sub = self.def(sub_ty, sub_rel)?;
                if Self::seen(&v, sub_ty, sub_rel).is_some() {
                    continue;
                }
                if self.walk(sub_ty, sub_rel, Self::node(sub), &v, depth + 1)?.0 {
                    return Some((true, false));
                }
            }
            return Some((false, false));
        };
        match expr {
            Expr::This(_) => Some((false, false)),
            Expr::Nil(_) => Some((false, false)),
            Expr::Ref(x) => {
                let computed = self.def(ty, &x.name)?;
                if let Some(b) = Self::seen(&v, ty, &x.name) {
                    return Some((b, true));
                }
                self.walk(ty, x.name.as_str(), Self::node(computed), &v, depth + 1)
            }
            Expr::Arrow { tupleset, target, .. } => {
                let ts = self.def(ty, &tupleset.name)?;
                for s in ts.subjects {
                    let sub_ty = s.ty.name.as_str();
                    let Some(sub) = self.def(sub_ty, &target.name) else { continue };
                    if let Some(b) = Self::seen(&v, sub_ty, &target.name) {
                        if b {
                            return Some((true, false));
                        }
                        continue;
                    }
                    if self.walk(sub_ty, target.name.as_str(), Self::node(sub), &v, depth + 1)?.0 {
                        return Some((true, false));
                    }
                }
                Some((false, false))
            }
            // The operands start again from the caller's visited set (which may have been
            // marked above through a shared map), as the server does.
            Expr::Union(children) => {
                let mut looped = false;
                for c in children {
                    let (e, l) = self.walk(ty, rel, Node::Expr(c), visited, depth + 1)?;
                    if e {
                        return Some((true, false));
                    }
                    looped |= l;
                }
                Some((false, looped))
            }
            Expr::Intersection(children) => {
                for c in children {
                    let (e, l) = self.walk(ty, rel, Node::Expr(c), visited, depth + 1)?;
                    if !e {
                        return Some((false, l));
                    }
                }
                Some((true, false))
            }
            Expr::Exclusion(a, b) => {
                for c in [a, b] {
                    let (e, l) = self.walk(ty, rel, Node::Expr(c), visited, depth + 1)?;
                    if !e {
                        return Some((false, l));
                    }
                }
                Some((true, false))
            }
        }
    }
}
