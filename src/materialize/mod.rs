//! Bulk visibility jobs: every (subject, object) pair of a permission, or only the pairs a batch
//! of writes changed, computed on all cores over the compiled index.
//!
//! - [`Job`] (`compute.rs`): the full recomputation. For every subject of the subject type it
//!   asks the index's bottom-up `what` (one bitmap of objects per subject, by bitmap algebra),
//!   in parallel chunks of subjects, clipped to the partition's object range. Per subject is the
//!   fast direction: `what` computes a subject's whole row with a few unions of reverse lists,
//!   and the rows are exactly the compact form; per object (`who`) costs a walk per object.
//! - Sinks: CSV and JSONL (`text.rs`, object-major so that partitions concatenate), and the
//!   compact form (`compact.rs`: per-subject roaring bitmaps plus the names, with a reader).
//! - Parquet (`columns.rs`: dictionary-encoded string columns, zstd, a row group per block of
//!   objects; `chunk.rs`: column chunks encoded from dictionary indices) and object-major JSON lines for search indexes (`objects.rs`: one line per object
//!   with its subjects), for pairs and for deltas.
//! - [`output::AtomicFile`]: output is written under a `.partial` name and renamed only when
//!   complete.
//! - [`delta`]: incremental recomputation — the pairs added and removed by a write batch, from
//!   the objects or the subjects the changed relationships can reach (whichever is fewer).
//! - [`diff()`] (`diff.rs`, `structure.rs`): the pairs a new *schema* adds and removes on the
//!   same relationships, evaluating only the permissions that read a changed relation, for the
//!   subjects a differing part of a definition holds for.
//!
//! An embedding host keeps a search index in sync with the deltas of each write:
//!
//! ```
//! use purview::materialize::{Change, Target};
//! use purview::{EvalOptions, Purview, Relationship, WriteOp};
//!
//! let pv = Purview::from_schema_text("s.pv", r#"
//!     type user {}
//!     type usergroup { relation member: user }
//!     type message {
//!       relation tagged: usergroup
//!       permission view = tagged->member
//!     }
//! "#)?;
//! pv.write_text("usergroup:emea#member@user:dana\nmessage:m1#tagged@usergroup:emea\nmessage:m2#tagged@usergroup:apac")?;
//! let view = Target::resolve(&pv.schema(), "message#view", "user")?;
//! let moved = [
//!     WriteOp::Delete(Relationship::parse("usergroup:emea#member@user:dana")?),
//!     WriteOp::Touch(Relationship::parse("usergroup:apac#member@user:dana")?),
//! ];
//! let (_revision, deltas) = pv.write_with_deltas(&moved, &[view], &EvalOptions::default())?;
//! let lines: Vec<String> =
//!     deltas.iter().map(|d| format!("{} {} {}", d.change.name(), d.subject, d.object)).collect();
//! assert_eq!(lines, ["removed user:dana message:m1", "added user:dana message:m2"]);
//! assert_eq!(deltas[0].change, Change::Removed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chunk;
mod columns;
pub mod compact;
mod compute;
pub mod delta;
mod deps;
pub mod diff;
mod objects;
pub mod output;
pub mod structure;
mod text;

pub use columns::write_deltas as write_parquet_deltas;
pub use compute::{Job, Materialized, Row};
pub use delta::{deltas, Change, Delta, DeltaIds, Strategy};
pub use deps::{Deps, TupleReader, ValueReader};
pub use diff::{diff, PermissionDiff, SchemaDiff, Status, Targets};
pub use objects::write_deltas as write_object_deltas;
pub use text::pair_blocks;

use crate::eval::EvalError;
use crate::schema::{RelId, Schema, TypeId};
use crate::store::Subject;
use serde::Serialize;
use std::ops::Range;
use std::time::Duration;

/// What to materialize: one permission (or relation) of an object type, for the subjects of one
/// type (`user`) or one userset (`usergroup#member`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub object_type: TypeId,
    pub permission: RelId,
    pub subject_type: TypeId,
    pub subject_relation: Option<RelId>,
}

impl Target {
    /// The subject with id `id` of the target's subject type (and relation).
    pub fn subject(&self, id: u32) -> Subject {
        Subject { ty: self.subject_type, id, rel: self.subject_relation }
    }

    /// Resolves `message#view` and `user` (or `usergroup#member`) against a schema.
    pub fn resolve(schema: &Schema, permission: &str, subject: &str) -> Result<Target, MaterializeError> {
        let bad = || MaterializeError::Permission(permission.to_string());
        let (ty, rel) = permission.split_once('#').ok_or_else(bad)?;
        let object_type =
            schema.type_id(ty.trim()).ok_or_else(|| MaterializeError::UnknownType(ty.into()))?;
        let permission = relation(schema, object_type, rel.trim())?;
        let (sty, srel) = match subject.split_once('#') {
            Some((t, r)) => (t.trim(), Some(r.trim())),
            None => (subject.trim(), None),
        };
        let subject_type = schema.type_id(sty).ok_or_else(|| MaterializeError::UnknownType(sty.into()))?;
        let subject_relation = srel.map(|r| relation(schema, subject_type, r)).transpose()?;
        Ok(Target { object_type, permission, subject_type, subject_relation })
    }

    /// `message#view`.
    pub fn permission_name(&self, schema: &Schema) -> String {
        let t = schema.type_def(self.object_type);
        format!("{}#{}", t.name, t.relations[self.permission as usize].name)
    }

    /// `view`.
    pub fn relation_name<'s>(&self, schema: &'s Schema) -> &'s str {
        &schema.rel_def(self.object_type, self.permission).name
    }

    /// `user` or `usergroup#member`.
    pub fn subject_name(&self, schema: &Schema) -> String {
        let t = schema.type_def(self.subject_type);
        match self.subject_relation {
            Some(r) => format!("{}#{}", t.name, t.relations[r as usize].name),
            None => t.name.clone(),
        }
    }
}

fn relation(schema: &Schema, ty: TypeId, name: &str) -> Result<RelId, MaterializeError> {
    let tdef = schema.type_def(ty);
    tdef.relation_id(name).ok_or_else(|| MaterializeError::UnknownRelation {
        ty: tdef.name.clone(),
        relation: name.to_string(),
        hint: crate::diag::did_you_mean(name, tdef.relation_names()),
    })
}

/// One piece of a job split by object id range: piece `index` of `count` (`--partition i/n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Default for Partition {
    fn default() -> Self {
        Partition { index: 0, count: 1 }
    }
}

impl Partition {
    /// Parses `i/n` with `0 <= i < n`.
    pub fn parse(text: &str) -> Result<Partition, MaterializeError> {
        let bad = || MaterializeError::Partition(text.to_string());
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Partition { index, count })
    }

    /// The object ids of this piece, out of `0..objects`: contiguous, in order, covering all.
    pub fn range(&self, objects: u32) -> Range<u32> {
        let at = |i: u32| (u64::from(objects) * u64::from(i) / u64::from(self.count.max(1))) as u32;
        at(self.index)..at(self.index + 1)
    }

    /// Whether this is the first piece (the one that carries a CSV header).
    pub fn is_first(&self) -> bool {
        self.index == 0
    }
}

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `subject,permission,object,outcome`, a header line in the first partition only.
    Csv,
    /// One JSON object a line: `{"subject":…,"permission":…,"object":…,"outcome":…}`.
    Jsonl,
    /// Per-subject roaring bitmaps and the names (see [`compact`]).
    Compact,
    /// Parquet: string columns `subject`, `permission`, `object`, `outcome`, dictionary-encoded,
    /// zstd, one row group per block of objects.
    Parquet,
    /// Object-major JSON lines: `{"object":…,"permission":…,"allowed":[…],"conditional":[…]}`
    /// per object with at least one pair.
    ObjectJsonl,
}

impl Format {
    /// The name a user gives (`--format`, with `--by object` for [`Format::ObjectJsonl`]).
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Compact => "compact",
            Format::Parquet => "parquet",
            Format::ObjectJsonl => "jsonl by object",
        }
    }
}

/// Where a running job is, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Subjects evaluated, out of all subjects.
    Compute,
    /// Pairs written, out of all pairs.
    Write,
}

/// The outcome of a finished job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// `message#view`.
    pub permission: String,
    /// `user` or `usergroup#member`.
    pub subject_type: String,
    pub revision: u64,
    pub partition: Partition,
    /// Object ids covered: `[start, end)`.
    pub objects: (u32, u32),
    /// Subjects evaluated.
    pub subjects: u32,
    /// Subjects with at least one pair.
    pub subjects_with_pairs: u32,
    /// Pairs written, conditional ones included.
    pub pairs: u64,
    pub conditional: u64,
    pub bytes: u64,
    #[serde(serialize_with = "secs")]
    pub elapsed: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Summary {
    pub fn pairs_per_second(&self) -> f64 {
        self.pairs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} for {} at revision {}: {} pairs ({} conditional), {} of {} subjects, objects {}..{} \
             (partition {}/{}), {} bytes in {:.2?} ({} pairs/s)",
            self.permission,
            self.subject_type,
            self.revision,
            self.pairs,
            self.conditional,
            self.subjects_with_pairs,
            self.subjects,
            self.objects.0,
            self.objects.1,
            self.partition.index,
            self.partition.count,
            self.bytes,
            self.elapsed,
            rate(self.pairs_per_second())
        )
    }
}

fn rate(r: f64) -> String {
    match r {
        r if r >= 1e6 => format!("{:.1}M", r / 1e6),
        r if r >= 1e3 => format!("{:.1}k", r / 1e3),
        r => format!("{r:.0}"),
    }
}

/// Why a job failed. No output that claims to be complete is left behind.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error("`{0}` is not a permission; write `type#permission`, e.g. `message#view`")]
    Permission(String),
    #[error("unknown type `{0}`")]
    UnknownType(String),
    #[error("type `{ty}` has no relation or permission `{relation}`")]
    UnknownRelation {
        ty: String,
        relation: String,
        /// `did you mean …?`
        hint: Option<String>,
    },
    #[error("invalid partition `{0}`: write `i/n` with 0 <= i < n, e.g. `0/4`")]
    Partition(String),
    #[error(transparent)]
    Eval(#[from] EvalError),
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Write(#[from] crate::store::WriteError),
    #[error("the job was cancelled")]
    Cancelled,
    #[error("incremental deltas need the index engine")]
    NeedsIndex,
    #[error("the compact file is invalid: {0}")]
    Compact(String),
    #[error("{0} is not available for deltas; use csv, jsonl or parquet")]
    DeltaFormat(&'static str),
    #[error("the data does not fit the old schema:\n{0}")]
    OldSchema(String),
    #[error("cannot write the Parquet output: {0}")]
    Parquet(String),
}
