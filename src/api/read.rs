//! Reading relationships by filter, writes guarded by preconditions, and deletes by filter: the
//! relationship-level operations a service API (SpiceDB's ReadRelationships, WriteRelationships
//! with preconditions, DeleteRelationships) needs, on the same [`View`] and [`Purview`].

use super::bulk::relationship_of;
use super::{Purview, View};
use crate::eval::EvalError;
use crate::index::IndexData;
use crate::schema::{RelId, Schema, TypeId};
use crate::store::{
    Obj, Relationship, Revision, Source, Subject, TupleAttrs, TupleStore, WriteError, WriteOp,
};
use std::ops::ControlFlow;
use std::sync::Arc;

/// Which relationships a read, a delete or a precondition matches. Every part left `None`
/// matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelationshipFilter {
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// Resource ids starting with this text.
    pub resource_id_prefix: Option<String>,
    pub relation: Option<String>,
    pub subject: Option<SubjectMatch>,
}

/// The subject part of a [`RelationshipFilter`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectMatch {
    pub ty: String,
    pub id: Option<String>,
    pub relation: Option<RelationMatch>,
}

/// Which subject relation a [`SubjectMatch`] takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelationMatch {
    /// Subjects that are plain objects (`user:ann`, not `group:g#member`).
    None,
    /// Subjects that are this relation of an object (`group:g#member`).
    Named(String),
}

impl std::fmt::Display for RelationshipFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.resource_type.as_deref().unwrap_or("*"))?;
        match (&self.resource_id, &self.resource_id_prefix) {
            (Some(id), _) => write!(f, ":{id}")?,
            (None, Some(p)) => write!(f, ":{p}*")?,
            (None, None) => write!(f, ":*")?,
        }
        write!(f, "#{}", self.relation.as_deref().unwrap_or("*"))?;
        if let Some(s) = &self.subject {
            write!(f, "@{}:{}", s.ty, s.id.as_deref().unwrap_or("*"))?;
            match &s.relation {
                Some(RelationMatch::Named(r)) => write!(f, "#{r}")?,
                Some(RelationMatch::None) => write!(f, "#...")?,
                None => {}
            }
        }
        Ok(())
    }
}

/// A filter with its names resolved against one schema and index. `None` when it can match
/// nothing (an id that was never written).
struct Resolved {
    ty: Option<TypeId>,
    id: Option<u32>,
    prefix: Option<String>,
    rel: Option<RelId>,
    subject: Option<(TypeId, Option<u32>, Option<Option<RelId>>)>,
}

fn resolve(
    schema: &Schema,
    source: &dyn Source,
    f: &RelationshipFilter,
) -> Result<Option<Resolved>, EvalError> {
    let type_id = |name: &str| schema.type_id(name).ok_or_else(|| EvalError::UnknownType(name.to_string()));
    let rel_id = |ty: TypeId, name: &str| {
        schema.type_def(ty).relation_id(name).ok_or_else(|| EvalError::UnknownRelation {
            ty: schema.type_def(ty).name.clone(),
            relation: name.to_string(),
        })
    };
    let ty = f.resource_type.as_deref().map(type_id).transpose()?;
    let rel = match (&f.relation, ty) {
        (Some(r), Some(ty)) => Some(rel_id(ty, r)?),
        (Some(r), None) => {
            // A relation without a type: it must exist on some type; match it by name below.
            if !schema.types.iter().any(|t| t.relation_id(r).is_some()) {
                return Err(EvalError::UnknownRelation { ty: "*".into(), relation: r.clone() });
            }
            None
        }
        (None, _) => None,
    };
    let id = match (&f.resource_id, ty) {
        (Some(id), Some(ty)) => match source.object_id(ty, id) {
            Some(i) => Some(i),
            None => return Ok(None),
        },
        (Some(_), None) => None,
        (None, _) => None,
    };
    let subject = match &f.subject {
        None => None,
        Some(s) => {
            let sty = type_id(&s.ty)?;
            let sid = match &s.id {
                Some(id) => match source.object_id(sty, id) {
                    Some(i) => Some(i),
                    None => return Ok(None),
                },
                None => None,
            };
            let srel = match &s.relation {
                None => None,
                Some(RelationMatch::None) => Some(None),
                Some(RelationMatch::Named(r)) => Some(Some(rel_id(sty, r)?)),
            };
            Some((sty, sid, srel))
        }
    };
    Ok(Some(Resolved { ty, id, prefix: f.resource_id_prefix.clone(), rel, subject }))
}

impl Resolved {
    fn matches(&self, f: &RelationshipFilter, source: &dyn Source, o: Obj, r: RelId, s: Subject) -> bool {
        let schema = source.schema();
        if self.ty.is_some_and(|t| t != o.ty) || self.rel.is_some_and(|x| x != r) {
            return false;
        }
        if self.ty.is_none() {
            if let Some(name) = &f.relation {
                if schema.rel_def(o.ty, r).name != *name {
                    return false;
                }
            }
            if let Some(id) = &f.resource_id {
                if source.object_ref(o).id != *id {
                    return false;
                }
            }
        }
        if self.id.is_some_and(|i| i != o.id) {
            return false;
        }
        if let Some(p) = &self.prefix {
            if !source.object_ref(o).id.starts_with(p.as_str()) {
                return false;
            }
        }
        if let Some((sty, sid, srel)) = self.subject {
            if s.ty != sty || sid.is_some_and(|i| i != s.id) || srel.is_some_and(|r| r != s.rel) {
                return false;
            }
        }
        true
    }
}

/// Calls `f` on every relationship of `data` that `filter` matches, until it breaks.
fn scan(
    data: &IndexData,
    filter: &RelationshipFilter,
    mut f: impl FnMut(Obj, RelId, Subject, &TupleAttrs) -> ControlFlow<()>,
) -> Result<(), EvalError> {
    let schema = data.schema.clone();
    let Some(m) = resolve(&schema, data, filter)? else { return Ok(()) };
    if let (Some(ty), Some(id)) = (m.ty, m.id) {
        // One object: read its relations directly.
        let o = Obj { ty, id };
        let rels: Vec<RelId> = match m.rel {
            Some(r) => vec![r],
            None => (0..schema.type_def(ty).relations.len() as RelId).collect(),
        };
        for r in rels {
            for (s, a) in data.stored(o, r) {
                if m.matches(filter, data, o, r, s) && f(o, r, s, &a).is_break() {
                    return Ok(());
                }
            }
        }
        return Ok(());
    }
    let mut done = false;
    data.for_each_tuple(|o, r, s, a| {
        if !done && m.matches(filter, data, o, r, s) && f(o, r, s, a).is_break() {
            done = true;
        }
    });
    Ok(())
}

impl View {
    /// Calls `f` with every relationship `filter` matches after the first `skip`, in a stable
    /// order for this revision, until it breaks: one pass, however many there are.
    pub fn scan_relationships(
        &self,
        filter: &RelationshipFilter,
        skip: usize,
        mut f: impl FnMut(Relationship) -> ControlFlow<()>,
    ) -> Result<(), EvalError> {
        let mut seen = 0usize;
        let mut take = |r: &dyn Fn() -> Relationship| {
            seen += 1;
            if seen <= skip {
                return ControlFlow::Continue(());
            }
            f(r())
        };
        match self {
            View::Index(data) => {
                scan(data, filter, |o, r, s, a| take(&|| relationship_of(&**data, o, r, s, a)))
            }
            View::Reference(snap) => {
                let schema = snap.schema().clone();
                if let Some(m) = resolve(&schema, snap, filter)? {
                    let mut all: Vec<(Obj, RelId, Subject, TupleAttrs)> =
                        snap.data.iter().map(|(o, r, s, a)| (o, r, s, a.clone())).collect();
                    all.sort_by_key(|&(o, r, s, _)| (o, r, s));
                    for (o, r, s, a) in all {
                        if m.matches(filter, snap, o, r, s)
                            && take(&|| relationship_of(snap, o, r, s, &a)).is_break()
                        {
                            break;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// The relationships `filter` matches, skipping the first `skip`, at most `limit` of them,
    /// in a stable order for this revision. The flag says whether more follow.
    pub fn read_relationships(
        &self,
        filter: &RelationshipFilter,
        skip: usize,
        limit: Option<usize>,
    ) -> Result<(Vec<Relationship>, bool), EvalError> {
        let limit = limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        let mut more = false;
        self.scan_relationships(filter, skip, |r| {
            if out.len() == limit {
                more = true;
                return ControlFlow::Break(());
            }
            out.push(r);
            ControlFlow::Continue(())
        })?;
        Ok((out, more))
    }

    /// Whether any relationship matches `filter`.
    pub fn any_relationship(&self, filter: &RelationshipFilter) -> Result<bool, EvalError> {
        Ok(!self.read_relationships(filter, 0, Some(1))?.0.is_empty())
    }
}

/// A condition on the data a write is applied to, checked atomically with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precondition {
    /// `true`: some relationship must match; `false`: none may.
    pub must_exist: bool,
    pub filter: RelationshipFilter,
}

/// Why a guarded write or a delete by filter was refused; nothing was written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardedWriteError {
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("precondition failed: {}relationship matching `{filter}` {}", if *.must_exist { "a " } else { "no " }, if *.must_exist { "must exist" } else { "may exist" })]
    Precondition { must_exist: bool, filter: Box<RelationshipFilter> },
    /// A filter named something the schema does not have.
    #[error(transparent)]
    Filter(#[from] EvalError),
    #[error("{matched} relationships match the delete, more than its limit of {limit}, and partial deletion was not allowed")]
    TooMany { matched: usize, limit: usize },
}

/// What a delete by filter did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The revision of the delete (the current one if nothing matched).
    pub revision: Revision,
    pub count: usize,
    /// `true` when more relationships matched than the limit allowed to delete.
    pub partial: bool,
}

fn check_preconditions(
    before: &Arc<IndexData>,
    preconditions: &[Precondition],
) -> Result<(), GuardedWriteError> {
    let view = View::Index(before.clone());
    for p in preconditions {
        if view.any_relationship(&p.filter)? != p.must_exist {
            return Err(GuardedWriteError::Precondition {
                must_exist: p.must_exist,
                filter: Box::new(p.filter.clone()),
            });
        }
    }
    Ok(())
}

impl Purview {
    /// Applies `ops` atomically if every precondition holds on the state they apply to.
    pub fn write_if(
        &self,
        preconditions: &[Precondition],
        ops: &[WriteOp],
    ) -> Result<Revision, GuardedWriteError> {
        if preconditions.is_empty() {
            return Ok(self.write(ops)?);
        }
        self.write_computed(|before| {
            check_preconditions(before, preconditions)?;
            Ok(ops.to_vec())
        })
    }

    /// Deletes every relationship `filter` matches (if the preconditions hold), at most `limit`
    /// of them: with more, fails unless `allow_partial`, then deletes the first `limit`.
    pub fn delete_where(
        &self,
        filter: &RelationshipFilter,
        preconditions: &[Precondition],
        limit: Option<usize>,
        allow_partial: bool,
    ) -> Result<Deleted, GuardedWriteError> {
        let mut count = 0;
        let mut partial = false;
        let revision = self.write_computed(|before| {
            check_preconditions(before, preconditions)?;
            let mut ops = Vec::new();
            let cap = limit.unwrap_or(usize::MAX);
            scan(before, filter, |o, r, s, a| {
                if ops.len() == cap {
                    partial = true;
                    return ControlFlow::Break(());
                }
                ops.push(WriteOp::Delete(relationship_of(&**before, o, r, s, a)));
                ControlFlow::Continue(())
            })?;
            if partial && !allow_partial {
                let mut matched = 0;
                scan(before, filter, |_, _, _, _| {
                    matched += 1;
                    ControlFlow::Continue(())
                })?;
                return Err(GuardedWriteError::TooMany { matched, limit: cap });
            }
            count = ops.len();
            Ok(ops)
        })?;
        Ok(Deleted { revision, count, partial })
    }
}
