//! The library facade for embedding hosts: load a schema, write relationships, ask questions.
//!
//! ```
//! use purview::{Purview, EvalOptions, Decision};
//! let pv = Purview::from_schema_text("schema.pv", r#"
//!     type user {}
//!     type company {
//!       relation subsidiary-of: company
//!       relation administrator: user
//!       permission administer = administrator + subsidiary-of->administer
//!     }
//! "#)?;
//! pv.write_text("company:emea#subsidiary-of@company:hq\ncompany:hq#administrator@user:ann")?;
//! let snap = pv.snapshot();
//! let opts = EvalOptions::default();
//! assert_eq!(snap.check_str("company:emea", "administer", "user:ann", &opts)?, Decision::Allowed);
//! let who = snap.who_str("company:emea", "administer", "user", &opts)?;
//! assert_eq!(who.subjects[0].subject.to_string(), "user:ann");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::diag::{Diagnostics, SourceFile};
use crate::eval::explain::{self, Tree};
use crate::eval::reference::Reference;
use crate::eval::{Decision, EvalError, EvalOptions, MissingContext, Tri};
use crate::index::{IndexData, IndexEval};
use crate::schema::{self, RelId, Schema};
use crate::store::{
    Obj, ObjectRef, Relationship, RelationshipSyntaxError, Revision, Snapshot, Source, Subject, SubjectRef,
    WriteError, WILDCARD,
};
use crate::syntax;
use serde::Serialize;
use std::sync::Arc;

pub(crate) mod bulk;
mod feed;
mod ids;
mod purview;
mod read;
mod subset;
pub use bulk::{
    relationship_of, Blocker, BulkError, BulkLoad, BulkLoader, LineError, Resolved, SchemaChangeError,
};
pub use feed::{ChangeSet, FeedError, Update, UpdateKind};
pub use ids::{IdSet, ObjectId, PermissionId, SubjectId, SubjectType};
pub(crate) use purview::random_id;
pub use purview::{
    BatchChanges, Caught, Change, Journal, Purview, RowDelta, RowEncoder, Ticket, WeakPurview,
};
pub use read::{Deleted, GuardedWriteError, Precondition, RelationMatch, RelationshipFilter, SubjectMatch};
pub use subset::{ObjectSet, SubsetResult};

/// An object id that was never written: it has no relationships.
const FRESH_OBJECT: u32 = u32::MAX - 1;
/// A subject id that was never written (distinct from [`FRESH_OBJECT`]).
const FRESH_SUBJECT: u32 = u32::MAX - 2;

pub use crate::syntax::formats::SchemaFormat;

/// A schema that did not compile: every diagnostic, with the source to render them against.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.diagnostics.render(&self.file))]
pub struct SchemaError {
    pub file: SourceFile,
    pub diagnostics: Diagnostics,
}

/// Parses and compiles a schema in Purview's language.
pub fn compile_schema(name: &str, text: &str) -> Result<Schema, SchemaError> {
    compile_schema_as(SchemaFormat::Purview, name, text)
}

/// Parses and compiles a schema written in `format` (see [`syntax::detect`]). Diagnostics point
/// into `text` as written, a `.zed` or `.fga` file included.
pub fn compile_schema_as(format: SchemaFormat, name: &str, text: &str) -> Result<Schema, SchemaError> {
    let file = SourceFile::new(name, text);
    let ast = syntax::parse_as(format, text)
        .map_err(|diagnostics| SchemaError { file: file.clone(), diagnostics })?;
    schema::compile(&ast).map_err(|diagnostics| SchemaError { file, diagnostics })
}

/// A bad line in a relationships text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("line {line}: {error}")]
    Syntax { line: usize, error: RelationshipSyntaxError },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// Parses relationships, one per line; blank lines and `//` or `#` comments are skipped.
pub fn parse_relationships(text: &str) -> Result<Vec<Relationship>, LoadError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") || line.starts_with("# ") {
            continue;
        }
        out.push(Relationship::parse(line).map_err(|error| LoadError::Syntax { line: i + 1, error })?);
    }
    Ok(out)
}

/// Which evaluator answers questions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Engine {
    /// The compiled index (bitmaps, closures, parallel lookups).
    #[default]
    Index,
    /// The simple reference evaluator over a plain store: the oracle the index is tested against.
    Reference,
}

/// One question of a bulk check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRequest {
    pub object: ObjectRef,
    pub permission: String,
    pub subject: SubjectRef,
}

/// One revision of the data, for reading: queries never block writers and see no later write.
#[derive(Debug, Clone)]
pub enum View {
    Reference(Snapshot),
    Index(Arc<IndexData>),
}

/// One subject found by `who`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FoundSubject {
    pub subject: SubjectRef,
    /// `Cond` when access depends on context that was not supplied.
    pub outcome: Tri,
}

/// A wildcard found by `who`: every subject of the type, except the listed ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FoundWildcard {
    pub outcome: Tri,
    /// Subjects the wildcard does not cover (`False`) or covers only conditionally (`Cond`).
    pub excluded: Vec<FoundSubject>,
}

/// The answer of `who`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct WhoResult {
    /// In subject-id order.
    pub subjects: Vec<FoundSubject>,
    pub wildcard: Option<FoundWildcard>,
    /// Pass back (in a [`Page`]) to get the next page; `None` when this was the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// One object found by `what`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FoundObject {
    pub object: ObjectRef,
    pub outcome: Tri,
    /// The cursor position just after this object (a service resumes a lookup there).
    #[serde(skip)]
    pub(crate) next: u32,
}

/// A page of `what` results, in object-id order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Default)]
pub struct WhatResult {
    pub objects: Vec<FoundObject>,
    /// Pass back to get the next page; `None` when this was the last one.
    pub cursor: Option<String>,
}

/// Where a lookup starts and how much it returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// The answer of `explain`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub decision: Decision,
    pub tree: Tree,
}

/// One subject an expansion reaches, with the relations it was found under: a line of a
/// SpiceDB validation file's expected relations, `[user:tom] is <document:doc1#viewer>`
/// (see [`View::membership`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The subject: `user:tom`, `group:eng#member`, or a wildcard `user:*`.
    pub subject: SubjectRef,
    /// Whether a condition stands on the way (SpiceDB's `[...]`), whatever it would evaluate to.
    pub caveated: bool,
    /// For a wildcard: the subjects it excludes, each with its caveated mark.
    pub excluded: Vec<(SubjectRef, bool)>,
    /// The relations it was found under, `type:id#relation`, sorted.
    pub found_under: Vec<String>,
}

/// A subject type filter for `who`: `user` or `group#member`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectFilter {
    pub ty: String,
    pub relation: Option<String>,
}

impl SubjectFilter {
    pub fn parse(s: &str) -> SubjectFilter {
        match s.split_once('#') {
            Some((t, r)) => SubjectFilter { ty: t.trim().to_string(), relation: Some(r.trim().to_string()) },
            None => SubjectFilter { ty: s.trim().to_string(), relation: None },
        }
    }
}

/// Read operations on a revision.
impl View {
    /// The relationships, as the reference evaluator reads them.
    pub fn source(&self) -> &dyn Source {
        match self {
            View::Reference(s) => s,
            View::Index(i) => &**i,
        }
    }

    pub fn schema(&self) -> &Arc<Schema> {
        self.source().schema()
    }

    pub fn revision(&self) -> Revision {
        self.source().revision()
    }

    /// Every stored relationship, in the notation of relationship files, sorted.
    pub fn relationship_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = match self {
            View::Reference(s) => s.relationships().iter().map(|r| r.to_string()).collect(),
            View::Index(data) => {
                let mut v = Vec::with_capacity(data.len());
                data.for_each_tuple(|o, r, s, a| v.push(relationship_of(&**data, o, r, s, a).to_string()));
                v
            }
        };
        out.sort();
        out
    }

    fn resolve_rel(&self, ty: u32, name: &str) -> Result<RelId, EvalError> {
        let tdef = self.schema().type_def(ty);
        tdef.relation_id(name)
            .ok_or_else(|| EvalError::UnknownRelation { ty: tdef.name.clone(), relation: name.to_string() })
    }

    /// An object's type (an object is never the wildcard).
    fn object_type(&self, o: &ObjectRef) -> Result<crate::schema::TypeId, EvalError> {
        let ty = self.schema().type_id(&o.ty).ok_or_else(|| EvalError::UnknownType(o.ty.clone()))?;
        if o.id == "*" {
            return Err(EvalError::InvalidSubject(o.to_string()));
        }
        Ok(ty)
    }

    fn resolve_obj(&self, o: &ObjectRef) -> Result<Obj, EvalError> {
        let ty = self.object_type(o)?;
        Ok(Obj { ty, id: self.source().object_id(ty, &o.id).unwrap_or(FRESH_OBJECT) })
    }

    /// A subject's type and relation.
    fn subject_kind(&self, s: &SubjectRef) -> Result<(crate::schema::TypeId, Option<RelId>), EvalError> {
        let ty = self.schema().type_id(&s.ty).ok_or_else(|| EvalError::UnknownType(s.ty.clone()))?;
        let rel = match &s.relation {
            Some(r) => Some(self.resolve_rel(ty, r)?),
            None => None,
        };
        Ok((ty, rel))
    }

    /// The subject, given its type, relation and id if its name is known: an unknown name is
    /// a fresh id (the object's own when the subject names the object).
    fn subject_with(
        (ty, rel): (crate::schema::TypeId, Option<RelId>),
        id: Option<crate::store::ObjId>,
        s: &SubjectRef,
        object: &ObjectRef,
    ) -> Result<Subject, EvalError> {
        let fresh = if s.ty == object.ty && s.id == object.id { FRESH_OBJECT } else { FRESH_SUBJECT };
        let id = id.unwrap_or(fresh);
        if id == WILDCARD && rel.is_some() {
            return Err(EvalError::InvalidSubject(s.to_string()));
        }
        Ok(Subject { ty, id, rel })
    }

    fn resolve_subject(&self, s: &SubjectRef, object: &ObjectRef) -> Result<Subject, EvalError> {
        let st = self.subject_kind(s)?;
        View::subject_with(st, self.source().object_id(st.0, &s.id), s, object)
    }

    /// A question's object, permission and subject; on the index the two names are looked up
    /// together (their cache misses overlap).
    fn resolve_question(
        &self,
        object: &ObjectRef,
        permission: &str,
        subject: &SubjectRef,
    ) -> Result<(Obj, RelId, Subject), EvalError> {
        let View::Index(data) = self else {
            let o = self.resolve_obj(object)?;
            let rel = self.resolve_rel(o.ty, permission)?;
            return Ok((o, rel, self.resolve_subject(subject, object)?));
        };
        let ty = self.object_type(object)?;
        let rel = self.resolve_rel(ty, permission)?;
        let st = self.subject_kind(subject)?;
        let (oid, sid) = data.object_id_pair((ty, &object.id), (st.0, &subject.id));
        let s = View::subject_with(st, sid, subject, object)?;
        Ok((Obj { ty, id: oid.unwrap_or(FRESH_OBJECT) }, rel, s))
    }

    fn name_subject(&self, s: Subject, object: &ObjectRef) -> SubjectRef {
        if s.id == FRESH_OBJECT {
            let t = self.schema().type_def(s.ty);
            return SubjectRef::new(
                &t.name,
                &object.id,
                s.rel.map(|r| t.relations[r as usize].name.as_str()),
            );
        }
        self.source().subject_ref(s)
    }

    /// May `subject` do `permission` on `object`?
    pub fn check(
        &self,
        object: &ObjectRef,
        permission: &str,
        subject: &SubjectRef,
        opts: &EvalOptions,
    ) -> Result<Decision, EvalError> {
        let (o, rel, s) = self.resolve_question(object, permission, subject)?;
        match self {
            View::Index(data) => {
                let mut ev = IndexEval::new(data, opts);
                let t = ev.check(o, rel, s)?;
                ev.decide(t)
            }
            View::Reference(_) => {
                let mut ev = Reference::new(self.source(), opts);
                let t = ev.check(o, rel, s)?;
                ev.decide(t)
            }
        }
    }

    /// Many checks at once, spread over all cores; the answers come in request order.
    pub fn bulk_check(
        &self,
        requests: &[CheckRequest],
        opts: &EvalOptions,
    ) -> Vec<Result<Decision, EvalError>> {
        use rayon::prelude::*;
        requests.par_iter().map(|r| self.check(&r.object, &r.permission, &r.subject, opts)).collect()
    }

    /// [`View::check`] with names as text (`document:d1`, `view`, `user:ann`).
    pub fn check_str(
        &self,
        object: &str,
        permission: &str,
        subject: &str,
        opts: &EvalOptions,
    ) -> Result<Decision, QueryError> {
        let o = ObjectRef::parse(object)?;
        let s = SubjectRef::parse(subject)?;
        Ok(self.check(&o, permission, &s, opts)?)
    }

    /// Which subjects of a type may do `permission` on `object`?
    pub fn who(
        &self,
        object: &ObjectRef,
        permission: &str,
        filter: &SubjectFilter,
        opts: &EvalOptions,
    ) -> Result<WhoResult, EvalError> {
        self.who_page(object, permission, filter, &Page::default(), opts)
    }

    /// [`View::who`] a page at a time: subjects in id order, at most `page.limit` of them,
    /// starting at `page.cursor`; the wildcard (if any) comes with every page.
    pub fn who_page(
        &self,
        object: &ObjectRef,
        permission: &str,
        filter: &SubjectFilter,
        page: &Page,
        opts: &EvalOptions,
    ) -> Result<WhoResult, EvalError> {
        let o = self.resolve_obj(object)?;
        let rel = self.resolve_rel(o.ty, permission)?;
        let fty =
            self.schema().type_id(&filter.ty).ok_or_else(|| EvalError::UnknownType(filter.ty.clone()))?;
        let frel = match &filter.relation {
            Some(r) => Some(self.resolve_rel(fty, r)?),
            None => None,
        };
        let start = parse_cursor(page)?;
        type Ids = Vec<(u32, Tri)>;
        let (members, default, exclusions): (Ids, Tri, Ids) = match self {
            View::Index(data) => {
                let mut ev = IndexEval::new(data, opts);
                let set = ev.who(o, rel, fty, frel)?;
                ev.cond.fail_on_any()?;
                let mut it = set.c().iter();
                it.advance_to(start);
                let limit = page.limit.unwrap_or(usize::MAX).saturating_add(1);
                let members = it.take(limit).map(|id| (id, set.get(id))).collect();
                let exclusions = if set.default == Tri::False {
                    Vec::new()
                } else {
                    (set.keys() - set.t()).iter().map(|id| (id, set.get(id))).collect()
                };
                (members, set.default, exclusions)
            }
            View::Reference(_) => {
                let mut ev = Reference::new(self.source(), opts);
                let set = ev.lookup_subjects(o, rel, fty, frel)?;
                ev.cond.fail_on_any()?;
                let members = set.members().filter(|(s, _)| s.id >= start).map(|(s, t)| (s.id, t)).collect();
                let exclusions = set.exclusions().map(|(s, t)| (s.id, t)).collect();
                (members, set.default, exclusions)
            }
        };
        let name = |id: u32| self.name_subject(Subject { ty: fty, id, rel: frel }, object);
        let found = |(id, outcome): (u32, Tri)| FoundSubject { subject: name(id), outcome };
        let limit = page.limit.unwrap_or(usize::MAX);
        let cursor = members.get(limit).map(|(id, _)| id.to_string());
        let mut out = WhoResult {
            subjects: members.into_iter().take(limit).map(found).collect(),
            wildcard: None,
            cursor,
        };
        if default != Tri::False {
            out.wildcard = Some(FoundWildcard {
                outcome: default,
                excluded: exclusions.into_iter().map(found).collect(),
            });
        }
        Ok(out)
    }

    /// [`View::who`] with names as text.
    pub fn who_str(
        &self,
        object: &str,
        permission: &str,
        filter: &str,
        opts: &EvalOptions,
    ) -> Result<WhoResult, QueryError> {
        let o = ObjectRef::parse(object)?;
        Ok(self.who(&o, permission, &SubjectFilter::parse(filter), opts)?)
    }

    /// Which objects of type `object_type` may `subject` do `permission` on? In object-id order,
    /// a page at a time.
    pub fn what(
        &self,
        subject: &SubjectRef,
        permission: &str,
        object_type: &str,
        page: &Page,
        opts: &EvalOptions,
    ) -> Result<WhatResult, EvalError> {
        let ty = self
            .schema()
            .type_id(object_type)
            .ok_or_else(|| EvalError::UnknownType(object_type.to_string()))?;
        let rel = self.resolve_rel(ty, permission)?;
        let start = parse_cursor(page)?;
        let limit = page.limit.unwrap_or(usize::MAX);
        let mut out = WhatResult::default();
        let placeholder = ObjectRef::new(object_type, "");
        let s = self.resolve_subject(subject, &placeholder)?;
        let push = |out: &mut WhatResult, id: u32, t: Tri| -> Result<bool, EvalError> {
            if out.objects.len() == limit {
                out.cursor = Some(id.to_string());
                return Ok(false);
            }
            if t == Tri::Cond && opts.missing_context == MissingContext::Error {
                return Err(EvalError::MissingContext { missing: Vec::new() });
            }
            let object = self.source().object_ref(Obj { ty, id });
            out.objects.push(FoundObject { object, outcome: t, next: id.saturating_add(1) });
            if out.objects.len() > opts.limits.max_results {
                return Err(EvalError::TooManyResults { limit: opts.limits.max_results });
            }
            Ok(true)
        };
        match self {
            View::Index(data) if page.limit.is_some() && data.what_windowable(ty) => {
                // A page: computed window by window (4k ids, then four times wider each time)
                // until it is full, not the whole set first.
                let count = data.object_count(ty);
                let (mut lo, mut width) = (start, 4096u32);
                'windows: while lo < count {
                    let hi = lo.saturating_add(width).min(count);
                    let set = IndexEval::new(data, opts).what_in(s, ty, rel, lo..hi)?;
                    let mut it = set.maybe.iter();
                    it.advance_to(lo);
                    for id in it {
                        if id >= hi {
                            break;
                        }
                        if !push(&mut out, id, set.get(id))? {
                            break 'windows;
                        }
                    }
                    lo = hi;
                    width = width.saturating_mul(4);
                }
            }
            View::Index(data) => {
                let mut ev = IndexEval::new(data, opts);
                let set = ev.what(s, ty, rel)?;
                let mut it = set.maybe.iter();
                if start > 0 {
                    it.advance_to(start);
                }
                for id in it {
                    if id >= data.object_count(ty) {
                        break;
                    }
                    if !push(&mut out, id, set.get(id))? {
                        break;
                    }
                }
            }
            View::Reference(_) => {
                let mut ev = Reference::new(self.source(), opts);
                for id in start..self.source().object_count(ty) {
                    let t = ev.check(Obj { ty, id }, rel, s)?;
                    if t != Tri::False && !push(&mut out, id, t)? {
                        break;
                    }
                }
            }
        }
        // A subject on an object never written may still hold the permission on itself (a
        // userset contains itself; `self`): `what` names it too (after every stored object), as
        // `check` allows it.
        let fresh = s.ty == ty && s.id >= self.source().object_count(ty) && s.id != WILDCARD;
        if fresh && out.cursor.is_none() && out.objects.len() < limit {
            let t = self.check(&subject.object(), permission, subject, opts)?.tri();
            if t != Tri::False {
                out.objects.push(FoundObject {
                    object: subject.object(),
                    outcome: t,
                    next: s.id.saturating_add(1),
                });
            }
        }
        Ok(out)
    }

    /// [`View::what`] across every object type that has `permission`: for each such type (in
    /// schema order) the objects `subject` may do it on. A type without the permission is left
    /// out; a permission no type has is an unknown relation.
    pub fn what_all(
        &self,
        subject: &SubjectRef,
        permission: &str,
        opts: &EvalOptions,
    ) -> Result<Vec<(String, WhatResult)>, EvalError> {
        let schema = self.schema().clone();
        let mut out = Vec::new();
        for tdef in schema.types.iter().filter(|t| t.relation_id(permission).is_some()) {
            out.push((
                tdef.name.clone(),
                self.what(subject, permission, &tdef.name, &Page::default(), opts)?,
            ));
        }
        if out.is_empty() {
            return Err(EvalError::UnknownRelation {
                ty: "any type".to_string(),
                relation: permission.to_string(),
            });
        }
        Ok(out)
    }

    /// The userset tree of `permission` on `object`.
    pub fn expand(
        &self,
        object: &ObjectRef,
        permission: &str,
        opts: &EvalOptions,
    ) -> Result<Tree, EvalError> {
        let o = self.resolve_obj(object)?;
        let rel = self.resolve_rel(o.ty, permission)?;
        let mut ev = Reference::new(self.source(), opts);
        let mut tree = explain::expand(&mut ev, o, rel)?;
        self.name_fresh(&mut tree, o, object);
        Ok(tree)
    }

    /// Every subject a full expansion of `relation` on `object` reaches, with the relations it
    /// was found under, as SpiceDB's developer API computes them for `zed validate`: relationships
    /// with a condition make what they reach caveated without being evaluated; wildcards carry
    /// their exclusions (see [`crate::eval::membership`]). In (type, relation, id) order.
    pub fn membership(
        &self,
        object: &ObjectRef,
        relation: &str,
        opts: &EvalOptions,
    ) -> Result<Vec<Member>, EvalError> {
        let o = self.resolve_obj(object)?;
        let rel = self.resolve_rel(o.ty, relation)?;
        let src = self.source();
        let mut ev = Reference::new(src, opts);
        let found = crate::eval::membership::membership(&mut ev, o, rel)?;
        let place = |(p, r): crate::eval::membership::Place| {
            let name = if p == o { object.clone() } else { src.object_ref(p) };
            format!("{name}#{}", src.schema().rel_def(p.ty, r).name)
        };
        let subject = |s: crate::store::Subject| {
            if s.object() == o {
                SubjectRef::new(
                    &object.ty,
                    &object.id,
                    s.rel.map(|r| src.schema().rel_def(s.ty, r).name.as_str()),
                )
            } else {
                src.subject_ref(s)
            }
        };
        Ok(found
            .into_iter()
            .map(|f| {
                let mut found_under: Vec<String> = f.places.iter().map(|p| place(*p)).collect();
                found_under.sort();
                Member {
                    subject: subject(f.subject),
                    caveated: f.caveated,
                    excluded: f.excluded.iter().map(|(s, c)| (subject(*s), *c)).collect(),
                    found_under,
                }
            })
            .collect())
    }

    /// An object no relationship names is a placeholder in the store: its trees say its name.
    fn name_fresh(&self, tree: &mut Tree, o: Obj, object: &ObjectRef) {
        if o.id >= self.source().object_count(o.ty) {
            tree.rename(&self.source().object_ref(o).to_string(), &object.to_string());
        }
    }

    /// Why `subject` may (or may not) do `permission` on `object`.
    pub fn explain(
        &self,
        object: &ObjectRef,
        permission: &str,
        subject: &SubjectRef,
        opts: &EvalOptions,
    ) -> Result<Explanation, EvalError> {
        let o = self.resolve_obj(object)?;
        let rel = self.resolve_rel(o.ty, permission)?;
        let s = self.resolve_subject(subject, object)?;
        let mut ev = Reference::new(self.source(), opts);
        let t = ev.check(o, rel, s)?;
        let decision = ev.decide(t)?;
        let mut tree = explain::explain(&mut ev, o, rel, s)?;
        self.name_fresh(&mut tree, o, object);
        Ok(Explanation { decision, tree })
    }
}

fn parse_cursor(page: &Page) -> Result<u32, EvalError> {
    match &page.cursor {
        None => Ok(0),
        Some(c) => c.parse::<u32>().map_err(|_| EvalError::InvalidCursor(c.clone())),
    }
}

/// A question that could not be asked or answered.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Syntax(#[from] RelationshipSyntaxError),
    #[error(transparent)]
    Eval(#[from] EvalError),
}
