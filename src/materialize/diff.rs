//! Who gains and who loses access under a new schema, on the same relationships.
//!
//! [`diff`] compares the two compiled schemas by name ([`structure`](super::structure)), finds
//! the relations whose value may differ on the same data (a changed definition, a changed
//! condition, relationships the new schema cannot hold), and evaluates again only the
//! permissions that read one of them — under both schemas, with the delta machinery's
//! per-subject rows (`what` before and after, then the differences), and only for the subjects
//! for which a differing part of a definition holds on either side. A change to one permission
//! does not evaluate any other; adding `+ sender` to it evaluates the senders only.
//!
//! Permissions present in one schema only have all their pairs added or removed. The data is
//! interpreted under the new schema with [`IndexData::under_schema`]: relationships it cannot
//! hold are left out and reported ([`SchemaDiff::orphaned`]); the pairs they supported are
//! removed, as they would be once those relationships are deleted.

use super::delta::{self, Change, Delta, DeltaIds};
use super::structure::{reach, NodeName, Pair, Part, Parts, StructuralChange};
use super::{Job, MaterializeError, Target};
use crate::eval::{EvalOptions, MissingContext, Tri};
use crate::index::{IndexData, IndexEval, Orphans};
use crate::schema::{RelId, RelKind, Schema, TypeId};
use rayon::prelude::*;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What to compare: permissions (`type#permission`; none means every permission of either
/// schema) for subjects of these types (`user`, or usersets such as `usergroup#member`).
#[derive(Clone, Debug)]
pub struct Targets {
    pub permissions: Vec<String>,
    pub subject_types: Vec<String>,
    /// Context and time for conditions and expirations; pairs that depend on missing context
    /// are `conditional`.
    pub options: EvalOptions,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            permissions: Vec::new(),
            subject_types: vec!["user".into()],
            options: EvalOptions::default(),
        }
    }
}

/// How a permission fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Only in the new schema (or its subject type is): every pair is added.
    Added,
    /// Only in the old schema: every pair is removed.
    Removed,
    /// Its own definition changed.
    Changed,
    /// Its definition is the same, but it reads a relation that changed.
    Affected,
    /// Nothing it reads changed: not evaluated.
    Unchanged,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Changed => "changed",
            Status::Affected => "affected",
            Status::Unchanged => "unchanged",
        }
    }
}

/// The changed pairs of one permission for one subject type.
#[derive(Clone, Debug, Serialize)]
pub struct PermissionDiff {
    /// `message#view`.
    pub permission: String,
    /// `user` or `usergroup#member`.
    pub subject_type: String,
    pub status: Status,
    /// The changed relations it reads (other than itself), `type#relation`.
    pub via: Vec<String>,
    pub added: u64,
    pub removed: u64,
    /// Distinct subjects with an added pair, and with a removed pair.
    pub subjects_gaining: u64,
    pub subjects_losing: u64,
    /// Subjects evaluated under both schemas (`None`: every pair of one side was listed).
    pub subjects_evaluated: Option<u64>,
    /// The pairs, by ids, sorted by object, subject, removals first.
    #[serde(skip)]
    pub pairs: Vec<DeltaIds>,
    #[serde(skip)]
    old: Option<Target>,
    #[serde(skip)]
    new: Option<Target>,
}

/// The result of [`diff`]: the structural changes, the relationships the new schema cannot
/// hold, and the changed pairs of every permission compared.
#[derive(Clone, Debug, Serialize)]
pub struct SchemaDiff {
    pub structure: Vec<StructuralChange>,
    /// Relationships of the data the new schema cannot hold; the new schema was evaluated
    /// without them (a store refuses such a change until they are deleted).
    pub orphaned: Vec<Orphans>,
    pub permissions: Vec<PermissionDiff>,
    #[serde(skip)]
    old: Arc<IndexData>,
    #[serde(skip)]
    new: Arc<IndexData>,
}

impl SchemaDiff {
    /// Whether any pair was added or removed.
    pub fn changes_access(&self) -> bool {
        self.permissions.iter().any(|p| !p.pairs.is_empty())
    }

    /// Pairs added and removed over all permissions.
    pub fn totals(&self) -> (u64, u64) {
        self.permissions.iter().fold((0, 0), |(a, r), p| (a + p.added, r + p.removed))
    }

    /// The data under the old and the new schema.
    pub fn data(&self) -> (&Arc<IndexData>, &Arc<IndexData>) {
        (&self.old, &self.new)
    }

    /// One permission's pairs by name, in the materialize delta format's order.
    pub fn named<'a>(&'a self, p: &'a PermissionDiff) -> impl Iterator<Item = Delta> + 'a {
        p.pairs.iter().filter_map(move |d| match (d.change, p.old, p.new) {
            (Change::Removed, Some(t), _) => Some(delta::name(&self.old, &t, d)),
            (Change::Added, _, Some(t)) => Some(delta::name(&self.new, &t, d)),
            _ => None,
        })
    }
}

/// A differing part to evaluate on one side: the relation's ids there and the part.
type Side = Option<(TypeId, RelId, Part)>;

/// Compares `old` and `new` on `snapshot`'s relationships (which must fit `old`; `snapshot`
/// is usually written under `old` itself) for `targets`.
pub fn diff(
    old: &Arc<Schema>,
    new: &Arc<Schema>,
    snapshot: &IndexData,
    targets: &Targets,
) -> Result<SchemaDiff, MaterializeError> {
    let d1 = if Arc::ptr_eq(old, &snapshot.schema) {
        snapshot.clone()
    } else {
        let (d, misfits) = snapshot.under_schema(old.clone());
        if !misfits.is_empty() {
            return Err(MaterializeError::OldSchema(orphans_text(&misfits)));
        }
        d
    };
    let (d2, orphaned) = d1.under_schema(new.clone());
    let (d1, d2) = (Arc::new(d1), Arc::new(d2));
    let pair = Pair { old, new };
    let orphan_nodes: HashSet<NodeName> = orphaned
        .iter()
        .filter_map(|o| o.relation.split_once('#').map(|(t, r)| (t.to_string(), r.to_string())))
        .collect();
    let roots: HashMap<NodeName, Parts> = pair
        .nodes()
        .into_iter()
        .filter_map(|n| {
            let parts = pair.differing_parts(&n.0, &n.1, orphan_nodes.contains(&n));
            (!parts.is_empty()).then_some((n, parts))
        })
        .collect();
    let mut opts = targets.options.clone();
    opts.missing_context = MissingContext::Conditional;
    opts.limits.max_results = usize::MAX;
    let subjects = subject_types(&pair, &targets.subject_types)?;
    let mut permissions = Vec::new();
    for perm in permission_names(&pair, &targets.permissions)? {
        for st in &subjects {
            let name = format!("{}#{}", perm.0, perm.1);
            let t1 = Target::resolve(old, &name, st).ok();
            let t2 = Target::resolve(new, &name, st).ok();
            let both = old.relation(&perm.0, &perm.1).is_some() && new.relation(&perm.0, &perm.1).is_some();
            let mut p = PermissionDiff {
                permission: name,
                subject_type: st.clone(),
                status: Status::Unchanged,
                via: Vec::new(),
                added: 0,
                removed: 0,
                subjects_gaining: 0,
                subjects_losing: 0,
                subjects_evaluated: None,
                pairs: Vec::new(),
                old: t1,
                new: t2,
            };
            match (t1, t2) {
                (None, None) => continue,
                (Some(t), None) => {
                    p.status = if both { Status::Changed } else { Status::Removed };
                    p.pairs = every_pair(&d1, t, &opts, Change::Removed)?;
                }
                (None, Some(t)) => {
                    p.status = if both { Status::Changed } else { Status::Added };
                    p.pairs = every_pair(&d2, t, &opts, Change::Added)?;
                }
                (Some(t1), Some(t2)) => {
                    let mut read: HashSet<NodeName> = HashSet::new();
                    for (s, t) in [(&**old, t1), (&**new, t2)] {
                        for (ty, rel) in reach(s, t.object_type, t.permission) {
                            read.insert(node_name(s, ty, rel));
                        }
                    }
                    let mut hit: Vec<&NodeName> = roots.keys().filter(|n| read.contains(*n)).collect();
                    hit.sort();
                    if hit.is_empty() {
                        permissions.push(p);
                        continue;
                    }
                    p.status = if roots.contains_key(&perm) { Status::Changed } else { Status::Affected };
                    p.via = hit.iter().filter(|n| ***n != perm).map(|(t, r)| format!("{t}#{r}")).collect();
                    let mut passes: Vec<(Side, Side)> = Vec::new();
                    for n in &hit {
                        for (a, b) in &roots[*n] {
                            let side = |s: &Schema, part: &Option<Part>| -> Side {
                                let (t, r) = s.relation(&n.0, &n.1)?;
                                Some((t, r, part.clone()?))
                            };
                            passes.push((side(old, a), side(new, b)));
                        }
                    }
                    let candidates = candidates(&d1, &t1, &d2, &t2, &passes, &opts)?;
                    p.subjects_evaluated = Some(candidates.len());
                    p.pairs = by_subject(&d1, &t1, &d2, &t2, &opts, &candidates)?;
                }
            }
            let (mut gaining, mut losing) = (RoaringBitmap::new(), RoaringBitmap::new());
            for d in &p.pairs {
                match d.change {
                    Change::Added => {
                        p.added += 1;
                        gaining.insert(d.subject);
                    }
                    Change::Removed => {
                        p.removed += 1;
                        losing.insert(d.subject);
                    }
                }
            }
            (p.subjects_gaining, p.subjects_losing) = (gaining.len(), losing.len());
            permissions.push(p);
        }
    }
    Ok(SchemaDiff { structure: pair.changes(), orphaned, permissions, old: d1, new: d2 })
}

fn node_name(s: &Schema, ty: TypeId, rel: RelId) -> NodeName {
    (s.type_def(ty).name.clone(), s.rel_def(ty, rel).name.clone())
}

/// The misfits as lines, for an error.
pub fn orphans_text(orphans: &[Orphans]) -> String {
    orphans
        .iter()
        .map(|o| {
            let s = if o.count == 1 { "" } else { "s" };
            let e = o.examples.first().map(|e| format!(", e.g. `{e}`")).unwrap_or_default();
            format!("  - {} ({} relationship{s}{e})", o.reason, o.count)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The permissions to compare: those named (each in at least one schema), or every permission
/// of either schema.
fn permission_names(pair: &Pair<'_>, named: &[String]) -> Result<Vec<NodeName>, MaterializeError> {
    if named.is_empty() {
        let is_perm = |s: &Schema, (t, r): &NodeName| {
            s.relation(t, r).is_some_and(|(t, r)| s.rel_def(t, r).kind == RelKind::Permission)
        };
        return Ok(pair
            .nodes()
            .into_iter()
            .filter(|n| is_perm(pair.old, n) || is_perm(pair.new, n))
            .collect());
    }
    let mut out: Vec<NodeName> = Vec::new();
    for p in named {
        let (t, r) = p.split_once('#').ok_or_else(|| MaterializeError::Permission(p.clone()))?;
        let n = (t.trim().to_string(), r.trim().to_string());
        if pair.old.relation(&n.0, &n.1).is_none() && pair.new.relation(&n.0, &n.1).is_none() {
            let ty = pair.new.type_id(&n.0).map(|t| pair.new.type_def(t));
            let ty = ty.or_else(|| pair.old.type_id(&n.0).map(|t| pair.old.type_def(t)));
            let Some(ty) = ty else { return Err(MaterializeError::UnknownType(n.0)) };
            return Err(MaterializeError::UnknownRelation {
                ty: n.0.clone(),
                relation: n.1.clone(),
                hint: crate::diag::did_you_mean(&n.1, ty.relation_names()),
            });
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// The subject types, each known to at least one schema.
fn subject_types(pair: &Pair<'_>, named: &[String]) -> Result<Vec<String>, MaterializeError> {
    let mut out: Vec<String> = Vec::new();
    for st in named {
        let known = |s: &Schema| match st.split_once('#') {
            Some((t, r)) => s.relation(t.trim(), r.trim()).is_some(),
            None => s.type_id(st.trim()).is_some(),
        };
        if !known(pair.old) && !known(pair.new) {
            return Err(match st.split_once('#') {
                Some((t, r)) if pair.new.type_id(t.trim()).is_some() => MaterializeError::UnknownRelation {
                    ty: t.trim().to_string(),
                    relation: r.trim().to_string(),
                    hint: None,
                },
                Some((t, _)) => MaterializeError::UnknownType(t.trim().to_string()),
                None => MaterializeError::UnknownType(st.trim().to_string()),
            });
        }
        if !out.contains(st) {
            out.push(st.trim().to_string());
        }
    }
    Ok(out)
}

/// Every pair of `t` on `data`, as added or removed.
fn every_pair(
    data: &IndexData,
    t: Target,
    opts: &EvalOptions,
    change: Change,
) -> Result<Vec<DeltaIds>, MaterializeError> {
    let m = Job::new(data, t).options(opts.clone()).compute()?;
    let mut out: Vec<DeltaIds> =
        m.triples().map(|(subject, object, outcome)| DeltaIds { object, subject, change, outcome }).collect();
    out.sort_unstable();
    Ok(out)
}

/// Whether a differing part holds anywhere for subject `s` (of `t`'s subject type) on `data`.
fn holds(
    ev: &mut IndexEval<'_>,
    data: &IndexData,
    t: &Target,
    s: u32,
    side: &Side,
) -> Result<bool, MaterializeError> {
    let Some((ty, rel, part)) = side else { return Ok(false) };
    if s >= data.object_count(t.subject_type) {
        return Ok(false);
    }
    let subject = t.subject(s);
    let bits = match part {
        Part::Node => ev.what(subject, *ty, *rel)?,
        Part::Expr(rw) => ev.what_expr(subject, *ty, *rel, rw)?,
    };
    Ok(!bits.maybe.is_empty())
}

/// Subjects evaluated per parallel task.
const PER_TASK: usize = 256;

/// The subjects for which some differing part holds under the old or the new schema: the only
/// ones whose pairs can differ.
fn candidates(
    d1: &IndexData,
    t1: &Target,
    d2: &IndexData,
    t2: &Target,
    passes: &[(Side, Side)],
    opts: &EvalOptions,
) -> Result<RoaringBitmap, MaterializeError> {
    let n = d1.object_count(t1.subject_type).max(d2.object_count(t2.subject_type));
    let ids: Vec<u32> = (0..n).collect();
    let parts: Vec<Vec<u32>> = ids
        .par_chunks(PER_TASK)
        .map(|chunk| -> Result<Vec<u32>, MaterializeError> {
            let (mut ev1, mut ev2) = (IndexEval::new(d1, opts), IndexEval::new(d2, opts));
            let mut out = Vec::new();
            for &s in chunk {
                for (a, b) in passes {
                    if holds(&mut ev1, d1, t1, s, a)? || holds(&mut ev2, d2, t2, s, b)? {
                        out.push(s);
                        break;
                    }
                }
            }
            Ok(out)
        })
        .collect::<Result<_, _>>()?;
    Ok(parts.into_iter().flatten().collect())
}

/// The pairs that differ for each of `subjects`: its whole row under each schema, compared.
fn by_subject(
    d1: &IndexData,
    t1: &Target,
    d2: &IndexData,
    t2: &Target,
    opts: &EvalOptions,
    subjects: &RoaringBitmap,
) -> Result<Vec<DeltaIds>, MaterializeError> {
    let (r1, r2) = (0..d1.object_count(t1.object_type), 0..d2.object_count(t2.object_type));
    delta::rows_compared((d1, t1, r1), (d2, t2, r2), opts, subjects)
}

/// `allowed` or `conditional`, as the delta format writes an outcome.
pub fn outcome_name(t: Tri) -> &'static str {
    if t == Tri::Cond {
        "conditional"
    } else {
        "allowed"
    }
}
