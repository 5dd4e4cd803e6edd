//! Which objects and which subjects a changed relationship can affect, for incremental deltas.
//!
//! Evaluating `x#q` reads the stored relationships of `x#q` (`this`) and of arrow tuplesets
//! (`x#parent`), and the values of other relations: `x#r` (a computed reference), `y#r` for a
//! userset subject `y#r` stored on `x#q`, and `y#t` for an arrow's `x#tupleset@y`. [`Deps`]
//! inverts that, from the schema: who reads a relation's relationships, and who reads a
//! relation's value. Walking it from the changed relationships, with the index's reverse lists
//! for the data, finds every object whose permission may have changed (`affected_objects`); the
//! subjects a changed relationship can matter to are the ones it names or leads to
//! (`affected_subjects`).

use super::Target;
use crate::eval::{EvalError, EvalOptions, Tri};
use crate::index::plan::SlotKind;
use crate::index::{IndexData, IndexEval, WhoCache};
use crate::schema::{RelId, Rewrite, Schema, TypeId};
use crate::store::{Obj, Subject};
use crate::syntax::ast::ArrowMode;
use roaring::RoaringBitmap;
use std::collections::{HashMap, HashSet};

/// A relation whose value reads the stored relationships of `type#relation`.
#[derive(Clone, Debug, PartialEq)]
pub enum TupleReader {
    /// The relation itself (`this`).
    This(RelId),
    /// A relation with an arrow over them.
    Arrow { rel: RelId, mode: ArrowMode, targets: Vec<Option<RelId>> },
}

/// A relation whose value reads the value of `type#relation` on some object `o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueReader {
    /// `o#rel` (a computed reference on the same object).
    Same(RelId),
    /// `y#rel` of type `ty`, where `y#rel@o#relation` is stored.
    Userset { ty: TypeId, rel: RelId },
    /// `y#rel` of type `ty`, where `rel` has the arrow `tupleset->relation` and `y#tupleset@o`.
    Arrow { ty: TypeId, tupleset: RelId, rel: RelId },
}

/// The schema's read dependencies, inverted.
#[derive(Debug, Default)]
pub struct Deps {
    tuple: HashMap<(TypeId, RelId), Vec<TupleReader>>,
    value: HashMap<(TypeId, RelId), Vec<ValueReader>>,
}

fn push<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl Deps {
    pub fn new(schema: &Schema) -> Deps {
        let mut d = Deps::default();
        for (t, tdef) in schema.types.iter().enumerate() {
            for q in 0..tdef.relations.len() {
                d.walk(schema, t as TypeId, q as RelId, &tdef.relations[q].rewrite);
            }
        }
        d
    }

    fn walk(&mut self, schema: &Schema, t: TypeId, q: RelId, rw: &Rewrite) {
        match rw {
            Rewrite::This => {
                push(self.tuple.entry((t, q)).or_default(), TupleReader::This(q));
                for a in &schema.rel_def(t, q).allowed {
                    if let crate::schema::AllowedKind::Userset(ur) = a.kind {
                        push(
                            self.value.entry((a.ty, ur)).or_default(),
                            ValueReader::Userset { ty: t, rel: q },
                        );
                    }
                }
            }
            Rewrite::Computed(r) => push(self.value.entry((t, *r)).or_default(), ValueReader::Same(q)),
            Rewrite::Arrow { tupleset, targets, mode, .. } => {
                let reader = TupleReader::Arrow { rel: q, mode: *mode, targets: targets.clone() };
                push(self.tuple.entry((t, *tupleset)).or_default(), reader);
                for (st, tr) in targets.iter().enumerate() {
                    if let Some(tr) = tr {
                        let reader = ValueReader::Arrow { ty: t, tupleset: *tupleset, rel: q };
                        push(self.value.entry((st as TypeId, *tr)).or_default(), reader);
                    }
                }
            }
            Rewrite::Union(v) | Rewrite::Intersection(v) => v.iter().for_each(|x| self.walk(schema, t, q, x)),
            Rewrite::Exclusion(a, b) => {
                self.walk(schema, t, q, a);
                self.walk(schema, t, q, b);
            }
            Rewrite::Nil | Rewrite::SelfRef => {}
        }
    }

    pub fn tuple_readers(&self, ty: TypeId, rel: RelId) -> &[TupleReader] {
        self.tuple.get(&(ty, rel)).map_or(&[], Vec::as_slice)
    }

    pub fn value_readers(&self, ty: TypeId, rel: RelId) -> &[ValueReader] {
        self.value.get(&(ty, rel)).map_or(&[], Vec::as_slice)
    }
}

/// A changed relationship, by ids: `object#rel@subject`.
pub type Changed = (Obj, RelId, Subject);

/// What one walk needs: the schema tables and the nodes the target's evaluation can reach.
pub struct Walk<'a> {
    pub deps: &'a Deps,
    pub relevant: &'a HashSet<(TypeId, RelId)>,
    pub target: Target,
}

impl Walk<'_> {
    /// Adds to `out` the objects of the target type whose permission reads, in `data`, any of
    /// the changed relationships (directly or through other relations). Returns `false` (and
    /// stops) once more than `budget` nodes were visited.
    pub fn affected_objects(
        &self,
        data: &IndexData,
        changes: &[Changed],
        budget: usize,
        out: &mut RoaringBitmap,
    ) -> bool {
        let mut seen: HashSet<(Obj, RelId)> = HashSet::new();
        let mut queue: Vec<(Obj, RelId)> = Vec::new();
        let mut visit = |o: Obj, q: RelId, queue: &mut Vec<(Obj, RelId)>| {
            if self.relevant.contains(&(o.ty, q)) && seen.insert((o, q)) {
                queue.push((o, q));
            }
        };
        for &(o, r, _) in changes {
            for reader in self.deps.tuple_readers(o.ty, r) {
                let q = match reader {
                    TupleReader::This(q) | TupleReader::Arrow { rel: q, .. } => *q,
                };
                visit(o, q, &mut queue);
            }
        }
        let mut visited = 0usize;
        while let Some((o, q)) = queue.pop() {
            visited += 1;
            if visited > budget {
                return false;
            }
            if (o.ty, q) == (self.target.object_type, self.target.permission) {
                out.insert(o.id);
            }
            for reader in self.deps.value_readers(o.ty, q) {
                let (ty, via, kind, rel) = match *reader {
                    ValueReader::Same(q2) => {
                        visit(o, q2, &mut queue);
                        continue;
                    }
                    ValueReader::Userset { ty, rel } => (ty, rel, SlotKind::Userset(q), rel),
                    ValueReader::Arrow { ty, tupleset, rel } => (ty, tupleset, SlotKind::Direct, rel),
                };
                if !self.relevant.contains(&(ty, rel)) {
                    continue;
                }
                if let Some(slot) = data.plan.slot(ty, via, o.ty, kind) {
                    for y in data.rev(slot, o.id).iter() {
                        visit(Obj { ty, id: y }, rel, &mut queue);
                    }
                }
                let subject = Subject {
                    ty: o.ty,
                    id: o.id,
                    rel: if kind == SlotKind::Direct { None } else { Some(q) },
                };
                let special: Vec<u32> =
                    data.special_of_rel(ty, via).filter(|(k, _)| k.3 == subject).map(|(k, _)| k.2).collect();
                for y in special {
                    visit(Obj { ty, id: y }, rel, &mut queue);
                }
            }
        }
        true
    }

    /// Adds to `out` the subjects (of the target's subject type) that any changed relationship
    /// can matter to, in `data`: the subject it names, or the subjects of the userset or arrow
    /// target it leads to. Returns `false` when that is every subject (a wildcard, an `all`
    /// arrow, a userset that reaches a wildcard).
    pub fn affected_subjects(
        &self,
        data: &IndexData,
        opts: &EvalOptions,
        changes: &[Changed],
        out: &mut RoaringBitmap,
    ) -> Result<bool, EvalError> {
        let (fty, frel) = (self.target.subject_type, self.target.subject_relation);
        let mut ev = IndexEval::new(data, opts);
        let mut cache = WhoCache::default();
        let mut leads_to = |o: Obj, rel: RelId, out: &mut RoaringBitmap| -> Result<bool, EvalError> {
            let set = ev.who_cached(o, rel, fty, frel, &mut cache)?;
            *out |= set.c();
            Ok(set.default == Tri::False)
        };
        for &(o, r, s) in changes {
            for reader in self.deps.tuple_readers(o.ty, r) {
                let q = match reader {
                    TupleReader::This(q) | TupleReader::Arrow { rel: q, .. } => *q,
                };
                if !self.relevant.contains(&(o.ty, q)) {
                    continue;
                }
                let bounded = match reader {
                    TupleReader::This(_) if s.is_wildcard() => !(s.ty == fty && frel.is_none()),
                    TupleReader::This(_) => match s.rel {
                        None => {
                            if s.ty == fty && frel.is_none() {
                                out.insert(s.id);
                            }
                            true
                        }
                        Some(r2) => leads_to(s.object(), r2, out)?,
                    },
                    TupleReader::Arrow { mode: ArrowMode::All, .. } => false,
                    TupleReader::Arrow { .. } if s.is_wildcard() => true,
                    TupleReader::Arrow { targets, .. } => match targets.get(s.ty as usize).copied().flatten()
                    {
                        Some(t) => leads_to(s.object(), t, out)?,
                        None => true,
                    },
                };
                if !bounded {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}
