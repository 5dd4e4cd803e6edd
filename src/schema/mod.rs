//! The compiled schema: types, relations and conditions resolved to dense ids.
//!
//! [`compile`] takes an [`ast::Schema`](crate::syntax::ast::Schema) from any front end, resolves
//! every name, type-checks subject types, arrows and conditions, and reports every problem at once.
//! Later stages (store, index, evaluation) see only this form: no names are looked up while
//! evaluating, and no syntax types leak past this module.

mod check;
pub mod condition;
mod describe;
mod graph;

pub use check::compile;
pub use condition::{CompiledCondition, ConditionOutcome};
pub use describe::describe;
pub use graph::SchemaGraph;

pub use crate::syntax::ast::OnMode;
use crate::syntax::ast::{ArrowMode, ParamType, Span};
use rustc_hash::FxHashMap;

/// Dense id of an object type.
pub type TypeId = u32;
/// Dense id of a relation or permission within its type.
pub type RelId = u32;
/// Dense id of a condition.
pub type CondId = u32;

/// A compiled, validated schema.
#[derive(Debug, Clone)]
pub struct Schema {
    pub types: Vec<TypeDef>,
    pub conditions: Vec<CompiledCondition>,
    /// What the compiler found questionable but accepted (permissions that can never be
    /// granted, ...): `purview validate` shows them, loading goes on.
    pub warnings: Vec<crate::diag::Diagnostic>,
    type_ids: FxHashMap<String, TypeId>,
    condition_ids: FxHashMap<String, CondId>,
}

#[derive(Debug, Clone)]
pub struct TypeDef {
    pub name: String,
    pub doc: Option<String>,
    pub relations: Vec<RelationDef>,
    pub constraints: Vec<Constraint>,
    rel_ids: FxHashMap<String, RelId>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelKind {
    /// Stores relationships (it has allowed subject types).
    Relation,
    /// Computed only.
    Permission,
}

#[derive(Debug, Clone)]
pub struct RelationDef {
    pub name: String,
    pub doc: Option<String>,
    pub kind: RelKind,
    /// Allowed subjects of stored relationships; empty for permissions.
    pub allowed: Vec<AllowedSubject>,
    /// How the relation's value is computed. `Rewrite::This` for a plain relation.
    pub rewrite: Rewrite,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSubject {
    pub ty: TypeId,
    pub kind: AllowedKind,
    pub condition: Option<CondId>,
    pub expiration: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowedKind {
    Direct,
    Wildcard,
    /// A userset `T#rel` (the relation id is on type `ty`).
    Userset(RelId),
}

/// A resolved permission expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// The relationships stored in this relation.
    This,
    /// Another relation or permission of the same type.
    Computed(RelId),
    /// Follow stored relationships of `tupleset` (a relation of this type) to their subject
    /// objects and evaluate the relation named `target_name` there. `targets[t]` is the target's
    /// id on subject type `t`, or `None` when that type has no such relation (the branch is empty).
    Arrow {
        tupleset: RelId,
        target_name: String,
        targets: Vec<Option<RelId>>,
        mode: ArrowMode,
    },
    Union(Vec<Rewrite>),
    Intersection(Vec<Rewrite>),
    Exclusion(Box<Rewrite>, Box<Rewrite>),
    Nil,
    /// The object itself, as a plain subject (SpiceDB's `self`): `user:a` has it on `user:a`.
    SelfRef,
}

/// A schema-level constraint on the relationships of one object, enforced atomically when
/// relationships are written (see `store::constraints`). With valid time it holds at every
/// instant; conditions on relationships are not looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// At no instant do more than `count` subjects hold `relation` on the object.
    AtMost { count: u32, relation: RelId },
    /// Whenever the object has a relationship, or is the subject of one, at least `count`
    /// subjects hold `relation`.
    AtLeast { count: u32, relation: RelId },
    /// A subject holds at most one of `relations` on the object at any instant.
    OneOf { relations: Vec<RelId> },
    /// A subject holding `relation` on the object holds one of `required` on it too, all the while.
    Requires { relation: RelId, required: Vec<RelId> },
    /// `Only`: while the object has a relationship of `relations`, it has one of `guards` (any
    /// subject). `Not`: it never has a relationship of `relations` and one of `guards` at once.
    OnObject { relations: Vec<RelId>, mode: OnMode, guards: Vec<RelId> },
}

/// The parameter list of a condition.
pub type Params = Vec<(String, ParamType)>;

impl Schema {
    pub fn type_id(&self, name: &str) -> Option<TypeId> {
        self.type_ids.get(name).copied()
    }

    pub fn type_def(&self, id: TypeId) -> &TypeDef {
        &self.types[id as usize]
    }

    pub fn condition_id(&self, name: &str) -> Option<CondId> {
        self.condition_ids.get(name).copied()
    }

    pub fn condition(&self, id: CondId) -> &CompiledCondition {
        &self.conditions[id as usize]
    }

    /// Resolves `type#relation` by name.
    pub fn relation(&self, ty: &str, rel: &str) -> Option<(TypeId, RelId)> {
        let t = self.type_id(ty)?;
        let r = self.type_def(t).relation_id(rel)?;
        Some((t, r))
    }

    pub fn rel_def(&self, ty: TypeId, rel: RelId) -> &RelationDef {
        &self.types[ty as usize].relations[rel as usize]
    }

    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(|t| t.name.as_str())
    }
}

impl TypeDef {
    pub fn relation_id(&self, name: &str) -> Option<RelId> {
        self.rel_ids.get(name).copied()
    }

    pub fn relation_names(&self) -> impl Iterator<Item = &str> {
        self.relations.iter().map(|r| r.name.as_str())
    }
}
