//! Two compiled schemas compared by name: what was added, removed and changed (with the
//! definitions as text), which relations each permission reads, and — for a changed definition
//! — the smallest parts of it that differ.
//!
//! The parts matter for speed: a pair `(subject, object)` of a permission can change only where
//! some differing part holds in the old schema or in the new one (if all of them are false for
//! a subject, the two schemas' equations are the same for that subject, so their least fixpoints
//! are). Adding `+ sender` to a union differs only by `sender`; adding `- banned` only by
//! `banned`; so only the subjects that are senders (or banned) are evaluated again.

use crate::schema::{AllowedKind, RelId, RelKind, Rewrite, Schema, TypeId};
use crate::syntax::ast::ArrowMode;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};

/// What happened to a type, relation, permission or condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Edit {
    Added,
    Removed,
    Changed,
}

/// One structural change between the two schemas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StructuralChange {
    /// `type`, `relation`, `permission` or `condition` (the new kind when it changed).
    pub kind: &'static str,
    /// `message`, `message#view`, or a condition's name.
    pub name: String,
    pub edit: Edit,
    /// The definition in the old schema (`relation tagged: usergroup`, `permission view = …`).
    pub old: Option<String>,
    pub new: Option<String>,
}

/// A part of a definition, to evaluate for one subject on one side.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// The relation as a whole.
    Node,
    /// A sub-expression of its rewrite.
    Expr(Rewrite),
}

/// The parts of one relation's definition that differ: on each side, `None` is `nil`.
pub type Parts = Vec<(Option<Part>, Option<Part>)>;

fn arrow_text(schema: &Schema, ty: TypeId, tupleset: RelId, target: &str, mode: ArrowMode) -> String {
    let ts = &schema.rel_def(ty, tupleset).name;
    match mode {
        ArrowMode::Any => format!("{ts}->{target}"),
        ArrowMode::All => format!("{ts}.all({target})"),
    }
}

/// A rewrite as Purview schema text, names resolved in `schema` on type `ty`.
pub fn rewrite_text(schema: &Schema, ty: TypeId, rw: &Rewrite) -> String {
    let inner = |x: &Rewrite| match x {
        Rewrite::Union(_) | Rewrite::Intersection(_) | Rewrite::Exclusion(..) => {
            format!("({})", rewrite_text(schema, ty, x))
        }
        _ => rewrite_text(schema, ty, x),
    };
    match rw {
        Rewrite::This => "this".into(),
        Rewrite::Nil => "nil".into(),
        Rewrite::SelfRef => "self".into(),
        Rewrite::Computed(r) => schema.rel_def(ty, *r).name.clone(),
        Rewrite::Arrow { tupleset, target_name, mode, .. } => {
            arrow_text(schema, ty, *tupleset, target_name, *mode)
        }
        Rewrite::Union(v) => v.iter().map(inner).collect::<Vec<_>>().join(" + "),
        Rewrite::Intersection(v) => v.iter().map(inner).collect::<Vec<_>>().join(" & "),
        Rewrite::Exclusion(a, b) => format!("{} - {}", inner(a), inner(b)),
    }
}

/// A relation or permission's definition as schema text.
pub fn definition_text(schema: &Schema, ty: TypeId, rel: RelId) -> String {
    let r = schema.rel_def(ty, rel);
    match r.kind {
        RelKind::Permission => format!("permission {} = {}", r.name, rewrite_text(schema, ty, &r.rewrite)),
        RelKind::Relation => {
            let allowed: Vec<String> = r
                .allowed
                .iter()
                .map(|a| {
                    let t = &schema.type_def(a.ty).name;
                    let mut s = match a.kind {
                        AllowedKind::Direct => t.clone(),
                        AllowedKind::Wildcard => format!("{t}:*"),
                        AllowedKind::Userset(u) => format!("{t}#{}", schema.rel_def(a.ty, u).name),
                    };
                    match (a.condition, a.expiration) {
                        (Some(c), true) => s += &format!(" with {} and expiration", schema.condition(c).name),
                        (Some(c), false) => s += &format!(" with {}", schema.condition(c).name),
                        (None, true) => s += " with expiration",
                        (None, false) => {}
                    }
                    s
                })
                .collect();
            let mut s = format!("relation {}: {}", r.name, allowed.join(" | "));
            if r.rewrite != Rewrite::This {
                s += &format!(" = {}", rewrite_text(schema, ty, &r.rewrite));
            }
            s
        }
    }
}

fn condition_text(schema: &Schema, c: u32) -> String {
    let c = schema.condition(c);
    let params: Vec<String> = c.params.iter().map(|(n, t)| format!("{n}: {t:?}")).collect();
    format!("condition {}({}) {{ {} }}", c.name, params.join(", "), c.source.trim())
}

/// The two schemas side by side, by name.
pub struct Pair<'a> {
    pub old: &'a Schema,
    pub new: &'a Schema,
}

/// A relation by name: `(type, relation)`.
pub type NodeName = (String, String);

impl Pair<'_> {
    /// Every relation and permission name of either schema, old order first.
    pub fn nodes(&self) -> Vec<NodeName> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for s in [self.old, self.new] {
            for t in &s.types {
                for r in &t.relations {
                    let n = (t.name.clone(), r.name.clone());
                    if seen.insert(n.clone()) {
                        out.push(n);
                    }
                }
            }
        }
        out
    }

    /// The conditions a relation's allowed subjects name, whose definitions differ.
    fn conditions_changed(&self, old: (TypeId, RelId), new: (TypeId, RelId)) -> bool {
        let names = |s: &Schema, (t, r): (TypeId, RelId)| -> BTreeSet<String> {
            s.rel_def(t, r).allowed.iter().filter_map(|a| a.condition).map(|c| condition_text(s, c)).collect()
        };
        names(self.old, old) != names(self.new, new)
    }

    /// The structural changes: types, relations and permissions, conditions.
    pub fn changes(&self) -> Vec<StructuralChange> {
        let mut out = Vec::new();
        for (a, b, edit) in [(self.old, self.new, Edit::Removed), (self.new, self.old, Edit::Added)] {
            for t in &a.types {
                if b.type_id(&t.name).is_none() {
                    out.push(StructuralChange {
                        kind: "type",
                        name: t.name.clone(),
                        edit,
                        old: None,
                        new: None,
                    });
                }
            }
        }
        for (ty, rel) in self.nodes() {
            let a = self.old.relation(&ty, &rel);
            let b = self.new.relation(&ty, &rel);
            let kind = |s: &Schema, (t, r): (TypeId, RelId)| match s.rel_def(t, r).kind {
                RelKind::Permission => "permission",
                RelKind::Relation => "relation",
            };
            let (edit, kind) = match (a, b) {
                (Some(a), None) => (Edit::Removed, kind(self.old, a)),
                (None, Some(b)) => (Edit::Added, kind(self.new, b)),
                (Some(a), Some(b)) => {
                    if definition_text(self.old, a.0, a.1) == definition_text(self.new, b.0, b.1) {
                        continue;
                    }
                    (Edit::Changed, kind(self.new, b))
                }
                (None, None) => continue,
            };
            out.push(StructuralChange {
                kind,
                name: format!("{ty}#{rel}"),
                edit,
                old: a.map(|(t, r)| definition_text(self.old, t, r)),
                new: b.map(|(t, r)| definition_text(self.new, t, r)),
            });
        }
        let mut names: Vec<&str> = self.old.conditions.iter().map(|c| c.name.as_str()).collect();
        for c in &self.new.conditions {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
        for name in names {
            let a = self.old.condition_id(name).map(|c| condition_text(self.old, c));
            let b = self.new.condition_id(name).map(|c| condition_text(self.new, c));
            let edit = match (&a, &b) {
                (Some(_), None) => Edit::Removed,
                (None, Some(_)) => Edit::Added,
                (Some(x), Some(y)) if x != y => Edit::Changed,
                _ => continue,
            };
            out.push(StructuralChange { kind: "condition", name: name.to_string(), edit, old: a, new: b });
        }
        out
    }

    /// The differing parts of a relation's definition (empty: its value is the same on the
    /// same data). `orphaned`: some of its relationships do not fit the new schema.
    pub fn differing_parts(&self, ty: &str, rel: &str, orphaned: bool) -> Parts {
        let whole = || vec![(Some(Part::Node), Some(Part::Node))];
        match (self.old.relation(ty, rel), self.new.relation(ty, rel)) {
            (None, None) => Vec::new(),
            (Some(_), None) => vec![(Some(Part::Node), None)],
            (None, Some(_)) => vec![(None, Some(Part::Node))],
            (Some(a), Some(b)) => {
                let (ra, rb) = (self.old.rel_def(a.0, a.1), self.new.rel_def(b.0, b.1));
                if orphaned || ra.kind != rb.kind || self.conditions_changed(a, b) {
                    return whole();
                }
                if ra.kind == RelKind::Relation
                    && definition_text(self.old, a.0, a.1) != definition_text(self.new, b.0, b.1)
                {
                    return whole();
                }
                let mut out = Vec::new();
                self.align(a.0, &ra.rewrite, b.0, &rb.rewrite, &mut out);
                out
            }
        }
    }

    fn same(&self, ta: TypeId, a: &Rewrite, tb: TypeId, b: &Rewrite) -> bool {
        rewrite_text(self.old, ta, a) == rewrite_text(self.new, tb, b)
    }

    /// The members of `xs` and `ys` not matched by an equal member of the other (a multiset
    /// difference by text).
    fn unmatched<'r>(
        &self,
        ta: TypeId,
        xs: &'r [Rewrite],
        tb: TypeId,
        ys: &'r [Rewrite],
    ) -> (Vec<&'r Rewrite>, Vec<&'r Rewrite>) {
        let mut left: Vec<&Rewrite> = Vec::new();
        let mut right: Vec<Option<&Rewrite>> = ys.iter().map(Some).collect();
        for x in xs {
            match right.iter().position(|y| y.is_some_and(|y| self.same(ta, x, tb, y))) {
                Some(i) => right[i] = None,
                None => left.push(x),
            }
        }
        (left, right.into_iter().flatten().collect())
    }

    /// Appends the pairs of parts where `a` (old) and `b` (new) differ, such that wherever all
    /// of them are false for a subject, `a` and `b` are equal for it.
    fn align(&self, ta: TypeId, a: &Rewrite, tb: TypeId, b: &Rewrite, out: &mut Parts) {
        if self.same(ta, a, tb, b) {
            return;
        }
        let expr = |v: &[&Rewrite], union: bool| -> Option<Part> {
            match v {
                [] => None,
                [x] => Some(Part::Expr((*x).clone())),
                _ => {
                    let items = v.iter().map(|x| (*x).clone()).collect();
                    Some(Part::Expr(if union { Rewrite::Union(items) } else { Rewrite::Intersection(items) }))
                }
            }
        };
        let whole = (Some(Part::Expr(a.clone())), Some(Part::Expr(b.clone())));
        match (a, b) {
            (Rewrite::Union(xs), Rewrite::Union(ys)) => {
                let (l, r) = self.unmatched(ta, xs, tb, ys);
                if let ([x], [y]) = (l.as_slice(), r.as_slice()) {
                    self.align(ta, x, tb, y, out);
                } else {
                    // Missing members of a union are `nil`: false, as the parts must be.
                    out.push((expr(&l, true), expr(&r, true)));
                }
            }
            (Rewrite::Intersection(xs), Rewrite::Intersection(ys)) => {
                let (l, r) = self.unmatched(ta, xs, tb, ys);
                match (l.as_slice(), r.as_slice()) {
                    ([x], [y]) => self.align(ta, x, tb, y, out),
                    // A missing member of an intersection is not false: the whole differs.
                    ([], _) | (_, []) => out.push(whole),
                    _ => out.push((expr(&l, false), expr(&r, false))),
                }
            }
            (Rewrite::Exclusion(a1, b1), Rewrite::Exclusion(a2, b2)) => {
                if self.same(ta, a1, tb, a2) {
                    self.align(ta, b1, tb, b2, out);
                } else if self.same(ta, b1, tb, b2) {
                    self.align(ta, a1, tb, a2, out);
                } else {
                    out.push(whole);
                }
            }
            // `x` → `x - y`: differs only where `y` holds (and the reverse).
            (_, Rewrite::Exclusion(a2, b2)) if self.same(ta, a, tb, a2) => {
                out.push((None, Some(Part::Expr((**b2).clone()))));
            }
            (Rewrite::Exclusion(a1, b1), _) if self.same(ta, a1, tb, b) => {
                out.push((Some(Part::Expr((**b1).clone())), None));
            }
            (Rewrite::Union(_), _) => self.align(ta, a, tb, &Rewrite::Union(vec![b.clone()]), out),
            (_, Rewrite::Union(_)) => self.align(ta, &Rewrite::Union(vec![a.clone()]), tb, b, out),
            _ => out.push(whole),
        }
    }
}

/// Every relation `ty#rel`'s value reads (itself included), by id: computed references,
/// tuplesets and the relations their arrows lead to, the usersets its relationships may name.
pub fn reach(schema: &Schema, ty: TypeId, rel: RelId) -> HashSet<(TypeId, RelId)> {
    let mut seen = HashSet::new();
    let mut stack = vec![(ty, rel)];
    while let Some((t, r)) = stack.pop() {
        if seen.insert((t, r)) {
            reads(schema, t, r, &schema.rel_def(t, r).rewrite, &mut stack);
        }
    }
    seen
}

fn reads(schema: &Schema, t: TypeId, r: RelId, rw: &Rewrite, out: &mut Vec<(TypeId, RelId)>) {
    match rw {
        Rewrite::This => {
            for a in &schema.rel_def(t, r).allowed {
                if let AllowedKind::Userset(u) = a.kind {
                    out.push((a.ty, u));
                }
            }
        }
        Rewrite::Computed(x) => out.push((t, *x)),
        Rewrite::Arrow { tupleset, targets, .. } => {
            out.push((t, *tupleset));
            for a in &schema.rel_def(t, *tupleset).allowed {
                if let Some(Some(target)) = targets.get(a.ty as usize) {
                    out.push((a.ty, *target));
                }
            }
        }
        Rewrite::Union(v) | Rewrite::Intersection(v) => v.iter().for_each(|x| reads(schema, t, r, x, out)),
        Rewrite::Exclusion(a, b) => {
            reads(schema, t, r, a, out);
            reads(schema, t, r, b, out);
        }
        Rewrite::Nil | Rewrite::SelfRef => {}
    }
}
