//! The relationship store: validated writes, dense ids, immutable snapshots with revisions.
//!
//! Strings are interned on the way in: every object id gets a dense `u32` per type, so later
//! stages work on `(TypeId, ObjId)` pairs. A write batch is validated whole (names, subject
//! types, conditions, expiration, schema constraints) against a copy of the data; only if all of
//! it is valid does the copy become the next snapshot. A failed write changes nothing.

mod constraints;
mod intern;
pub mod relationship;
mod timeline;
pub mod write;

pub use intern::{Interner, Probe};
pub use relationship::{CaveatRef, ObjectRef, Relationship, RelationshipSyntaxError, SubjectRef};
pub use write::{apply_batch, apply_batch_logged, expand_replacements, Key, Prior, WriteError, WriteOp};

use crate::schema::condition::JsonMap;
use crate::schema::{CondId, RelId, Schema, TypeId};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Dense id of an object within its type.
pub type ObjId = u32;
/// The object id that stands for `*` in a subject.
pub const WILDCARD: ObjId = u32::MAX;

/// An object, by dense ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Obj {
    pub ty: TypeId,
    pub id: ObjId,
}

/// A subject, by dense ids: an object, a wildcard (`id == WILDCARD`) or a userset (`rel` set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Subject {
    pub ty: TypeId,
    pub id: ObjId,
    pub rel: Option<RelId>,
}

impl Subject {
    pub fn object(self) -> Obj {
        Obj { ty: self.ty, id: self.id }
    }
    pub fn is_wildcard(self) -> bool {
        self.id == WILDCARD
    }
}

/// What is stored with a relationship besides its key.
#[derive(Clone, Debug, PartialEq)]
pub struct TupleAttrs {
    pub caveat: Option<StoredCaveat>,
    pub valid_from: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl TupleAttrs {
    /// Whether the relationship holds at `at` (ignoring its condition).
    pub fn active_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_from.is_none_or(|f| f <= at) && self.expires_at.is_none_or(|e| at < e)
    }
}

/// [`TupleAttrs`] in a form that serializes anywhere (bincode included): the condition by a
/// caller-chosen id, its context as JSON text, times as seconds and nanoseconds since 1970.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortableAttrs {
    pub cond: Option<u32>,
    pub context: Option<String>,
    pub valid_from: Option<(i64, u32)>,
    pub expires_at: Option<(i64, u32)>,
}

impl PortableAttrs {
    pub fn is_plain(&self) -> bool {
        self.cond.is_none() && self.valid_from.is_none() && self.expires_at.is_none()
    }
}

fn time_parts(t: DateTime<Utc>) -> (i64, u32) {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

fn time_of((secs, nanos): (i64, u32)) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(secs, nanos).ok_or_else(|| format!("time {secs}.{nanos:09} is out of range"))
}

impl TupleAttrs {
    /// The attributes with the condition numbered by `cond`.
    pub fn to_portable(&self, cond: impl Fn(CondId) -> u32) -> PortableAttrs {
        PortableAttrs {
            cond: self.caveat.as_ref().map(|c| cond(c.cond)),
            context: self
                .caveat
                .as_ref()
                .and_then(|c| c.context.as_ref())
                .map(|m| serde_json::to_string(&**m).unwrap_or_default()),
            valid_from: self.valid_from.map(time_parts),
            expires_at: self.expires_at.map(time_parts),
        }
    }

    /// The attributes back, the condition resolved by `cond`.
    pub fn from_portable(
        p: &PortableAttrs,
        cond: impl Fn(u32) -> Option<CondId>,
    ) -> Result<TupleAttrs, String> {
        let caveat = match p.cond {
            None => None,
            Some(c) => {
                let id = cond(c).ok_or_else(|| format!("unknown condition number {c}"))?;
                let context = match &p.context {
                    None => None,
                    Some(text) => Some(Arc::new(
                        serde_json::from_str::<JsonMap>(text)
                            .map_err(|e| format!("bad condition context: {e}"))?,
                    )),
                };
                Some(StoredCaveat { cond: id, context })
            }
        };
        Ok(TupleAttrs {
            caveat,
            valid_from: p.valid_from.map(time_of).transpose()?,
            expires_at: p.expires_at.map(time_of).transpose()?,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredCaveat {
    pub cond: CondId,
    pub context: Option<Arc<JsonMap>>,
}

/// A revision token: the number of the snapshot a write produced.
pub type Revision = u64;

/// The relationships at one revision, by dense ids.
#[derive(Clone, Debug, Default)]
pub struct Data {
    names: Vec<Interner>,
    /// `(object, relation)` → subject → attributes.
    tuples: BTreeMap<(Obj, RelId), BTreeMap<Subject, TupleAttrs>>,
    len: usize,
}

impl Data {
    fn new(schema: &Schema) -> Self {
        Data { names: vec![Interner::default(); schema.types.len()], tuples: BTreeMap::new(), len: 0 }
    }

    /// The stored relationships of `object#rel`, in subject order.
    pub fn subjects(&self, object: Obj, rel: RelId) -> impl Iterator<Item = (&Subject, &TupleAttrs)> {
        self.tuples.get(&(object, rel)).into_iter().flat_map(|m| m.iter())
    }

    pub fn get(&self, object: Obj, rel: RelId, subject: Subject) -> Option<&TupleAttrs> {
        self.tuples.get(&(object, rel)).and_then(|m| m.get(&subject))
    }

    /// Every stored relationship, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (Obj, RelId, Subject, &TupleAttrs)> {
        self.tuples.iter().flat_map(|(&(o, r), m)| m.iter().map(move |(s, a)| (o, r, *s, a)))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of distinct object ids interned for a type.
    pub fn object_count(&self, ty: TypeId) -> u32 {
        self.names.get(ty as usize).map_or(0, |n| n.len() as u32)
    }

    pub fn object_id(&self, ty: TypeId, name: &str) -> Option<ObjId> {
        if name == "*" {
            return Some(WILDCARD);
        }
        self.names.get(ty as usize)?.get(name)
    }

    pub fn object_name(&self, ty: TypeId, id: ObjId) -> &str {
        if id == WILDCARD {
            return "*";
        }
        self.names.get(ty as usize).and_then(|n| n.name(id)).unwrap_or("?")
    }

    pub(crate) fn intern(&mut self, ty: TypeId, name: &str) -> ObjId {
        if name == "*" {
            return WILDCARD;
        }
        match self.names.get_mut(ty as usize) {
            Some(n) => n.intern(name),
            None => WILDCARD,
        }
    }

    pub(crate) fn insert(&mut self, object: Obj, rel: RelId, subject: Subject, attrs: TupleAttrs) {
        if self.tuples.entry((object, rel)).or_default().insert(subject, attrs).is_none() {
            self.len += 1;
        }
    }

    pub(crate) fn remove(&mut self, object: Obj, rel: RelId, subject: Subject) -> Option<TupleAttrs> {
        let m = self.tuples.get_mut(&(object, rel))?;
        let old = m.remove(&subject);
        if m.is_empty() {
            self.tuples.remove(&(object, rel));
        }
        if old.is_some() {
            self.len -= 1;
        }
        old
    }
}

/// What the write path needs from a storage: interning, lookups and changes by dense ids.
/// Implemented by the reference [`Data`] and by the compiled index.
pub trait TupleStore {
    fn intern(&mut self, ty: TypeId, name: &str) -> ObjId;
    /// The id of an object name, if it was ever interned (no interning).
    fn lookup(&self, ty: TypeId, name: &str) -> Option<ObjId>;
    fn object_name(&self, ty: TypeId, id: ObjId) -> String;
    fn get(&self, object: Obj, rel: RelId, subject: Subject) -> Option<TupleAttrs>;
    fn insert(&mut self, object: Obj, rel: RelId, subject: Subject, attrs: TupleAttrs);
    fn remove(&mut self, object: Obj, rel: RelId, subject: Subject) -> Option<TupleAttrs>;
    /// The relationships stored for `object#rel` (expired ones included), in subject order.
    fn stored(&self, object: Obj, rel: RelId) -> Vec<(Subject, TupleAttrs)>;
    /// The attributes of every relationship whose subject is `object` or one of its usersets.
    fn referencing(&self, object: Obj) -> Vec<TupleAttrs>;
}

impl TupleStore for Data {
    fn intern(&mut self, ty: TypeId, name: &str) -> ObjId {
        Data::intern(self, ty, name)
    }
    fn lookup(&self, ty: TypeId, name: &str) -> Option<ObjId> {
        self.object_id(ty, name)
    }
    fn object_name(&self, ty: TypeId, id: ObjId) -> String {
        Data::object_name(self, ty, id).to_string()
    }
    fn get(&self, object: Obj, rel: RelId, subject: Subject) -> Option<TupleAttrs> {
        Data::get(self, object, rel, subject).cloned()
    }
    fn insert(&mut self, object: Obj, rel: RelId, subject: Subject, attrs: TupleAttrs) {
        Data::insert(self, object, rel, subject, attrs)
    }
    fn remove(&mut self, object: Obj, rel: RelId, subject: Subject) -> Option<TupleAttrs> {
        Data::remove(self, object, rel, subject)
    }
    fn stored(&self, object: Obj, rel: RelId) -> Vec<(Subject, TupleAttrs)> {
        self.subjects(object, rel).map(|(s, a)| (*s, a.clone())).collect()
    }
    fn referencing(&self, object: Obj) -> Vec<TupleAttrs> {
        // The reference store has no reverse index: a scan, as simple as can be.
        self.iter()
            .filter(|(_, _, s, _)| !s.is_wildcard() && s.object() == object)
            .map(|(.., a)| a.clone())
            .collect()
    }
}

/// Read access to the relationships of one revision, as the reference evaluator needs it.
/// Implemented by the reference [`Snapshot`] and by the index.
pub trait Source: Send + Sync {
    fn schema(&self) -> &Arc<Schema>;
    fn revision(&self) -> Revision;
    /// Every stored relationship of `object#rel`, with its attributes.
    fn tuples(&self, object: Obj, rel: RelId) -> Vec<(Subject, TupleAttrs)>;
    /// Objects of a type have ids `0..object_count(ty)`.
    fn object_count(&self, ty: TypeId) -> u32;
    fn object_id(&self, ty: TypeId, name: &str) -> Option<ObjId>;
    fn object_name(&self, ty: TypeId, id: ObjId) -> String;

    /// Names an object for output.
    fn object_ref(&self, o: Obj) -> ObjectRef {
        ObjectRef::new(&self.schema().type_def(o.ty).name, self.object_name(o.ty, o.id))
    }

    /// Names a subject for output.
    fn subject_ref(&self, s: Subject) -> SubjectRef {
        let t = self.schema().type_def(s.ty);
        SubjectRef::new(
            &t.name,
            self.object_name(s.ty, s.id),
            s.rel.map(|r| t.relations[r as usize].name.as_str()),
        )
    }
}

impl Source for Snapshot {
    fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }
    fn revision(&self) -> Revision {
        self.revision
    }
    fn tuples(&self, object: Obj, rel: RelId) -> Vec<(Subject, TupleAttrs)> {
        self.data.subjects(object, rel).map(|(s, a)| (*s, a.clone())).collect()
    }
    fn object_count(&self, ty: TypeId) -> u32 {
        self.data.object_count(ty)
    }
    fn object_id(&self, ty: TypeId, name: &str) -> Option<ObjId> {
        self.data.object_id(ty, name)
    }
    fn object_name(&self, ty: TypeId, id: ObjId) -> String {
        self.data.object_name(ty, id).to_string()
    }
}

/// An immutable view of the store at one revision. Cheap to clone; readers never block writers.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub schema: Arc<Schema>,
    pub revision: Revision,
    pub data: Arc<Data>,
}

impl Snapshot {
    /// Every stored relationship, as text types.
    pub fn relationships(&self) -> Vec<Relationship> {
        self.data
            .iter()
            .map(|(o, r, s, a)| {
                let mut rel = Relationship::new(
                    Source::object_ref(self, o),
                    self.schema.rel_def(o.ty, r).name.clone(),
                    Source::subject_ref(self, s),
                );
                rel.caveat = a.caveat.as_ref().map(|c| CaveatRef {
                    name: self.schema.condition(c.cond).name.clone(),
                    context: c.context.as_ref().map(|c| (**c).clone()),
                });
                rel.valid_from = a.valid_from;
                rel.expires_at = a.expires_at;
                rel
            })
            .collect()
    }
}

/// A store of relationships for one schema: the writer side. Readers take [`Store::snapshot`].
#[derive(Debug, Clone)]
pub struct Store {
    current: Snapshot,
}

impl Store {
    pub fn new(schema: Arc<Schema>) -> Self {
        let data = Arc::new(Data::new(&schema));
        Store { current: Snapshot { schema, revision: 0, data } }
    }

    /// A store continuing from `snapshot`.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        Store { current: snapshot }
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.current.schema
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.current.clone()
    }

    pub fn revision(&self) -> Revision {
        self.current.revision
    }

    /// Applies a batch atomically: all of it, or (on any error) nothing.
    pub fn write(&mut self, ops: &[WriteOp]) -> Result<Revision, WriteError> {
        let mut data = (*self.current.data).clone();
        write::apply_batch(&self.current.schema, &mut data, ops)?;
        self.current = Snapshot {
            schema: self.current.schema.clone(),
            revision: self.current.revision + 1,
            data: Arc::new(data),
        };
        Ok(self.current.revision)
    }

    /// Writes (touches) relationships.
    pub fn touch(&mut self, rels: impl IntoIterator<Item = Relationship>) -> Result<Revision, WriteError> {
        let ops: Vec<WriteOp> = rels.into_iter().map(WriteOp::Touch).collect();
        self.write(&ops)
    }
}

/// Names a stored relationship (for output, export and re-validation).
pub fn relationship_of(source: &dyn Source, o: Obj, r: RelId, s: Subject, a: &TupleAttrs) -> Relationship {
    let schema = source.schema();
    let mut rel =
        Relationship::new(source.object_ref(o), schema.rel_def(o.ty, r).name.clone(), source.subject_ref(s));
    rel.caveat = a.caveat.as_ref().map(|c| CaveatRef {
        name: schema.condition(c.cond).name.clone(),
        context: c.context.as_ref().map(|c| (**c).clone()),
    });
    rel.valid_from = a.valid_from;
    rel.expires_at = a.expires_at;
    rel
}
