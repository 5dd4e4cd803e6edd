//! The id-level query API: resolve names to dense ids once ([`ObjectId`], [`SubjectId`],
//! [`PermissionId`], [`SubjectType`]), then ask check / bulk check / who / what on ids, with
//! results as bitmaps ([`IdSet`]) and names fetched only when asked for.
//!
//! Ids never change meaning: an id resolved on one [`View`] means the same object on every later
//! view of the same Purview (object names are only ever added). A name that was never written
//! resolves to a *fresh* id, which has no relationships on the view it was resolved on; resolve
//! it again on a later view to see relationships written since.
//!
//! ```
//! use purview::{Purview, EvalOptions, Decision};
//! use purview::store::{ObjectRef, SubjectRef};
//! let pv = Purview::from_schema_text("s.pv", "type user {}\ntype doc {\n  relation viewer: user\n  permission view = viewer\n}\n")?;
//! pv.write_text("doc:d1#viewer@user:ann\ndoc:d2#viewer@user:ann")?;
//! let view = pv.snapshot();
//! let opts = EvalOptions::default();
//! let (doc_view, ann) = (view.permission_id("doc", "view")?, view.subject_id(&SubjectRef::parse("user:ann")?)?);
//! let d1 = view.object_id(&ObjectRef::parse("doc:d1")?)?;
//! assert_eq!(view.check_ids(&d1, doc_view, &ann, &opts)?, Decision::Allowed);
//! let docs = view.what_ids(&ann, doc_view, &opts)?;
//! assert_eq!(docs.allowed.len(), 2);
//! assert_eq!(view.names(&docs).collect::<Vec<_>>(), ["doc:d1", "doc:d2"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{SubjectFilter, View, FRESH_OBJECT, FRESH_SUBJECT};
use crate::eval::reference::Reference;
use crate::eval::{Decision, EvalError, EvalOptions, MissingContext, Tri};
use crate::index::IndexEval;
use crate::schema::{RelId, TypeId};
use crate::store::{Obj, ObjectRef, Subject, SubjectRef, WILDCARD};
use roaring::RoaringBitmap;
use std::sync::Arc;

/// An object resolved on a view (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId {
    pub ty: TypeId,
    pub id: u32,
    /// The name of an object never written (its id is a placeholder): kept so that a userset
    /// of the same fresh name is recognised as itself.
    fresh: Option<Arc<str>>,
}

/// A subject resolved on a view: an object, a wildcard, or a userset (`group:eng#member`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SubjectId {
    pub ty: TypeId,
    pub id: u32,
    pub relation: Option<RelId>,
    fresh: Option<Arc<str>>,
}

/// A permission (or relation) of an object type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PermissionId {
    pub ty: TypeId,
    pub rel: RelId,
}

/// The subjects `who` lists: objects of a type, or usersets of a type's relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubjectType {
    pub ty: TypeId,
    pub relation: Option<RelId>,
}

/// A set of objects (or subjects) of one type, by id: those allowed, those allowed only with
/// context that was not given, and for `who`, a wildcard.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdSet {
    pub ty: TypeId,
    /// For `who` on usersets: the relation of every member.
    pub relation: Option<RelId>,
    pub allowed: RoaringBitmap,
    /// Allowed only with context that was not given (disjoint from `allowed`).
    pub conditional: RoaringBitmap,
    /// `who` only: every subject of the type is allowed (`True`) or conditionally (`Cond`),
    /// except those in `excluded` (denied) or in `conditional` (when `True`).
    pub wildcard: Tri,
    pub excluded: RoaringBitmap,
    /// `who` on an object never written: its name (its own usersets appear under a placeholder
    /// id, named by [`View::names`]).
    fresh: Option<Arc<str>>,
}

impl IdSet {
    fn empty(ty: TypeId, relation: Option<RelId>) -> IdSet {
        IdSet { ty, relation, wildcard: Tri::False, ..IdSet::default() }
    }

    /// The answer for one id.
    pub fn get(&self, id: u32) -> Tri {
        if self.allowed.contains(id) {
            Tri::True
        } else if self.conditional.contains(id) {
            Tri::Cond
        } else if self.excluded.contains(id) {
            Tri::False
        } else {
            self.wildcard
        }
    }

    /// Ids allowed or conditional, in id order.
    pub fn ids(&self) -> impl Iterator<Item = (u32, Tri)> + '_ {
        (&self.allowed | &self.conditional).into_iter().map(move |id| (id, self.get(id)))
    }
}

impl View {
    fn type_of(&self, name: &str) -> Result<TypeId, EvalError> {
        self.schema().type_id(name).ok_or_else(|| EvalError::UnknownType(name.to_string()))
    }

    /// A permission (or relation) of a type, resolved once.
    pub fn permission_id(&self, object_type: &str, permission: &str) -> Result<PermissionId, EvalError> {
        let ty = self.type_of(object_type)?;
        Ok(PermissionId { ty, rel: self.resolve_rel(ty, permission)? })
    }

    /// An object, resolved once (a name never written gets a fresh id).
    pub fn object_id(&self, object: &ObjectRef) -> Result<ObjectId, EvalError> {
        let o = self.resolve_obj(object)?;
        let fresh = (o.id == FRESH_OBJECT).then(|| Arc::from(object.id.as_str()));
        Ok(ObjectId { ty: o.ty, id: o.id, fresh })
    }

    /// A subject, resolved once (a name never written gets a fresh id).
    pub fn subject_id(&self, subject: &SubjectRef) -> Result<SubjectId, EvalError> {
        // A fresh subject is never the same as a fresh object (no object is named after it).
        let placeholder = ObjectRef::new("", "");
        let s = self.resolve_subject(subject, &placeholder)?;
        let fresh = (s.id == FRESH_SUBJECT).then(|| Arc::from(subject.id.as_str()));
        Ok(SubjectId { ty: s.ty, id: s.id, relation: s.rel, fresh })
    }

    /// The subjects `who` lists: `user`, or `group#member`.
    pub fn subject_type(&self, filter: &SubjectFilter) -> Result<SubjectType, EvalError> {
        let ty = self.type_of(&filter.ty)?;
        let relation = match &filter.relation {
            Some(r) => Some(self.resolve_rel(ty, r)?),
            None => None,
        };
        Ok(SubjectType { ty, relation })
    }

    /// Computes the permission sets of `object_type#permission` for every subject of
    /// `subject_type` now (see the README's "Permission sets"), so that checks through arrows
    /// pointing at it never walk. Returns how many subjects have a non-empty set, or `None`
    /// when no arrow points at it, or its answers are not all definite (then nothing is kept).
    /// The sets serve this revision and later ones until a write touches what they depend on.
    pub fn precompute(
        &self,
        object_type: &str,
        permission: &str,
        subject_type: &str,
        opts: &EvalOptions,
    ) -> Result<Option<usize>, EvalError> {
        let p = self.permission_id(object_type, permission)?;
        let st = self.type_of(subject_type)?;
        Ok(match self {
            View::Index(data) => data.precompute_sets(p.ty, p.rel, st, opts),
            View::Reference(_) => None,
        })
    }

    /// An object's name, fetched when asked for (`type:id`).
    pub fn object_name(&self, ty: TypeId, id: u32) -> String {
        self.source().object_ref(Obj { ty, id }).to_string()
    }

    /// The names of a set's members (allowed, then conditional, in id order), fetched lazily.
    pub fn names<'a>(&'a self, set: &'a IdSet) -> impl Iterator<Item = String> + 'a {
        set.ids().map(move |(id, _)| match (&set.fresh, set.relation) {
            (Some(name), Some(r)) if id == FRESH_OBJECT => {
                let t = self.schema().type_def(set.ty);
                format!("{}:{name}#{}", t.name, t.relations[r as usize].name)
            }
            (_, None) => self.object_name(set.ty, id),
            (_, Some(r)) => self.source().subject_ref(Subject { ty: set.ty, id, rel: Some(r) }).to_string(),
        })
    }

    /// An id resolved on a later view names nothing here: no relationships.
    fn visible(&self, ty: TypeId, id: u32, fresh: u32) -> u32 {
        if id == WILDCARD || id == FRESH_OBJECT || id == FRESH_SUBJECT || id < self.source().object_count(ty)
        {
            id
        } else {
            fresh
        }
    }

    fn obj_of(&self, o: &ObjectId) -> Obj {
        Obj { ty: o.ty, id: self.visible(o.ty, o.id, FRESH_OBJECT) }
    }

    fn subject_of(&self, s: &SubjectId) -> Subject {
        Subject { ty: s.ty, id: self.visible(s.ty, s.id, FRESH_SUBJECT), rel: s.relation }
    }

    /// The subject of a check on `o`: a fresh subject named as the fresh object is that object.
    fn subject_on(&self, s: &SubjectId, o: &ObjectId) -> Subject {
        let mut subject = self.subject_of(s);
        if s.ty == o.ty && s.fresh.is_some() && s.fresh == o.fresh {
            subject.id = FRESH_OBJECT;
        }
        subject
    }

    fn check_types(&self, o: &ObjectId, p: PermissionId) -> Result<(), EvalError> {
        if o.ty != p.ty {
            let s = self.schema();
            return Err(EvalError::UnknownRelation {
                ty: s.type_def(o.ty).name.clone(),
                relation: s.type_def(p.ty).relations[p.rel as usize].name.clone(),
            });
        }
        Ok(())
    }

    /// [`View::check`] on ids: no name is looked up.
    pub fn check_ids(
        &self,
        object: &ObjectId,
        permission: PermissionId,
        subject: &SubjectId,
        opts: &EvalOptions,
    ) -> Result<Decision, EvalError> {
        self.check_types(object, permission)?;
        let (o, s) = (self.obj_of(object), self.subject_on(subject, object));
        match self {
            View::Index(data) => {
                let mut ev = IndexEval::new(data, opts);
                let t = ev.check(o, permission.rel, s)?;
                ev.decide(t)
            }
            View::Reference(_) => {
                let mut ev = Reference::new(self.source(), opts);
                let t = ev.check(o, permission.rel, s)?;
                ev.decide(t)
            }
        }
    }

    /// Many checks on ids, spread over every core in chunks; answers in request order.
    pub fn bulk_check_ids(
        &self,
        items: &[(ObjectId, PermissionId, SubjectId)],
        opts: &EvalOptions,
    ) -> Vec<Result<Decision, EvalError>> {
        use rayon::prelude::*;
        let chunk = (items.len() / (rayon::current_num_threads() * 4)).clamp(64, 4096);
        items
            .par_chunks(chunk)
            .flat_map_iter(|part| {
                part.iter().map(|(o, p, s)| self.check_ids(o, *p, s, opts)).collect::<Vec<_>>()
            })
            .collect()
    }

    /// [`View::who`] on ids: every subject of `subjects` with `permission` on `object`, as a
    /// bitmap.
    pub fn who_ids(
        &self,
        object: &ObjectId,
        permission: PermissionId,
        subjects: SubjectType,
        opts: &EvalOptions,
    ) -> Result<IdSet, EvalError> {
        self.check_types(object, permission)?;
        let o = self.obj_of(object);
        let mut out = IdSet::empty(subjects.ty, subjects.relation);
        out.fresh = object.fresh.clone();
        match self {
            View::Index(data) => {
                let mut ev = IndexEval::new(data, opts);
                let set = ev.who(o, permission.rel, subjects.ty, subjects.relation)?;
                ev.cond.fail_on_any()?;
                if set.has_conditional() {
                    out.conditional = set.c() - set.t();
                }
                out.wildcard = set.default;
                if set.default != Tri::False {
                    out.excluded = set.keys() - set.c();
                }
                out.allowed = set.into_t();
            }
            View::Reference(_) => {
                let mut ev = Reference::new(self.source(), opts);
                let set = ev.lookup_subjects(o, permission.rel, subjects.ty, subjects.relation)?;
                ev.cond.fail_on_any()?;
                for (s, t) in set.members() {
                    match t {
                        Tri::True => out.allowed.insert(s.id),
                        Tri::Cond => out.conditional.insert(s.id),
                        Tri::False => false,
                    };
                }
                out.wildcard = set.default;
                for (s, t) in set.exclusions() {
                    match t {
                        Tri::False => out.excluded.insert(s.id),
                        Tri::Cond => out.conditional.insert(s.id),
                        Tri::True => out.allowed.insert(s.id),
                    };
                }
            }
        }
        Ok(out)
    }

    /// A page of [`View::what_ids`]: at most `limit` objects with ids from `from` on (allowed
    /// and conditional, in id order), and the id to start the next page at (`None` after the
    /// last). Computed window by window until the page is full where the schema allows it (see
    /// [`View::what`]), so a first page costs in proportion to the page, not to the whole set.
    pub fn what_ids_page(
        &self,
        subject: &SubjectId,
        permission: PermissionId,
        from: u32,
        limit: usize,
        opts: &EvalOptions,
    ) -> Result<(IdSet, Option<u32>), EvalError> {
        let s = self.subject_of(subject);
        let ty = permission.ty;
        let mut out = IdSet::empty(ty, None);
        let View::Index(data) = self else {
            // The reference engine: the whole set, then the page.
            let all = self.what_ids(subject, permission, opts)?;
            let mut next = None;
            for (id, t) in all.ids().filter(|(id, _)| *id >= from) {
                if (out.allowed.len() + out.conditional.len()) as usize == limit {
                    next = Some(id);
                    break;
                }
                match t {
                    Tri::True => out.allowed.insert(id),
                    _ => out.conditional.insert(id),
                };
            }
            return Ok((out, next));
        };
        let count = data.object_count(ty);
        let windowed = data.what_windowable(ty);
        let (mut lo, mut width) = (from, if windowed { 4096u32 } else { u32::MAX });
        while lo < count {
            let hi = lo.saturating_add(width).min(count);
            let set = IndexEval::new(data, opts).what_in(s, ty, permission.rel, lo..hi)?;
            let mut it = set.maybe.iter();
            it.advance_to(lo);
            for id in it {
                if id >= hi {
                    break;
                }
                if (out.allowed.len() + out.conditional.len()) as usize == limit {
                    return Ok((out, Some(id)));
                }
                match set.get(id) {
                    Tri::True => out.allowed.insert(id),
                    Tri::Cond if opts.missing_context == MissingContext::Error => {
                        return Err(EvalError::MissingContext { missing: Vec::new() })
                    }
                    _ => out.conditional.insert(id),
                };
            }
            lo = hi;
            width = width.saturating_mul(4);
        }
        Ok((out, None))
    }

    /// [`View::what`] on ids: every object of the permission's type `subject` has it on, as a
    /// bitmap (no names: fetch them with [`View::names`] when needed).
    pub fn what_ids(
        &self,
        subject: &SubjectId,
        permission: PermissionId,
        opts: &EvalOptions,
    ) -> Result<IdSet, EvalError> {
        let s = self.subject_of(subject);
        let ty = permission.ty;
        let mut out = IdSet::empty(ty, None);
        match self {
            View::Index(data) => {
                let mut ev = IndexEval::new(data, opts);
                let set = ev.what(s, ty, permission.rel)?;
                let count = data.object_count(ty);
                out.allowed = set.yes;
                out.allowed.remove_range(count..);
                out.conditional = set.maybe - &out.allowed;
                out.conditional.remove_range(count..);
            }
            View::Reference(_) => {
                let mut ev = Reference::new(self.source(), opts);
                for id in 0..self.source().object_count(ty) {
                    match ev.check(Obj { ty, id }, permission.rel, s)? {
                        Tri::True => out.allowed.insert(id),
                        Tri::Cond => out.conditional.insert(id),
                        Tri::False => false,
                    };
                }
            }
        }
        if !out.conditional.is_empty() && opts.missing_context == MissingContext::Error {
            return Err(EvalError::MissingContext { missing: Vec::new() });
        }
        let limit = opts.limits.max_results as u64;
        if out.allowed.len() + out.conditional.len() > limit {
            return Err(EvalError::TooManyResults { limit: opts.limits.max_results });
        }
        Ok(out)
    }
}
