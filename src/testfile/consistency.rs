//! Lookups agree with check: `check(o, p, s)` ⇔ `s ∈ who(o, p)` ⇔ `o ∈ what(s, p)`.
//!
//! SpiceDB's test harness requires this of every validation file; [`run`] does the same over the
//! objects and subjects a file mentions, for the permissions its assertions use.

use super::common::{self, CheckText, Tally};
use crate::api::View;
use crate::api::{SubjectFilter, WhoResult};
use crate::eval::{EvalError, EvalOptions, Tri};
use crate::store::{ObjectRef, Relationship, SubjectRef};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// At most this many disagreements are listed in one failure message.
const SHOWN: usize = 10;

/// Records one assertion per asserted `type#permission`.
pub(crate) fn run(
    t: &mut Tally,
    label: &str,
    snap: &View,
    rels: &[Relationship],
    checks: &[CheckText],
    opts: &EvalOptions,
) {
    let mut objects: BTreeMap<String, BTreeSet<ObjectRef>> = BTreeMap::new();
    let mut subjects: BTreeSet<SubjectRef> = BTreeSet::new();
    let mut add_object = |o: ObjectRef| {
        objects.entry(o.ty.clone()).or_default().insert(o);
    };
    for r in rels {
        add_object(r.resource.clone());
        if !r.subject.is_wildcard() {
            add_object(r.subject.object());
        }
    }
    for c in checks {
        add_object(c.object.clone());
    }
    for s in rels.iter().map(|r| &r.subject).chain(checks.iter().map(|c| &c.subject)) {
        if !s.is_wildcard() {
            subjects.insert(s.clone());
            subjects.insert(SubjectRef::new(&s.ty, &s.id, None));
        }
    }
    let perms: BTreeSet<(&str, &str)> =
        checks.iter().map(|c| (c.object.ty.as_str(), c.permission.as_str())).collect();
    for (ty, perm) in perms {
        if snap.schema().relation(ty, perm).is_none() {
            continue; // the assertions naming it fail on their own
        }
        let empty = BTreeSet::new();
        let objs = objects.get(ty).unwrap_or(&empty);
        let outcome = agree(snap, ty, perm, objs, &subjects, opts);
        t.record(format!("{label}lookups agree with check for {ty}#{perm}"), outcome);
    }
}

type WhatSet = BTreeSet<(String, bool)>;

fn agree(
    snap: &View,
    ty: &str,
    perm: &str,
    objects: &BTreeSet<ObjectRef>,
    subjects: &BTreeSet<SubjectRef>,
    opts: &EvalOptions,
) -> Result<(), String> {
    let mut who_cache: HashMap<(&ObjectRef, &str, Option<&str>), Result<WhoResult, EvalError>> =
        HashMap::new();
    let mut what_cache: HashMap<&SubjectRef, Result<WhatSet, EvalError>> = HashMap::new();
    let mut bad = Vec::new();
    let mut pairs = 0usize;
    for o in objects {
        for s in subjects {
            let c = match snap.check(o, perm, s, opts) {
                Ok(d) => d.tri(),
                // Subjects that cannot have this permission at all (wrong relation on their type).
                Err(
                    EvalError::UnknownRelation { .. }
                    | EvalError::UnknownType(_)
                    | EvalError::InvalidSubject(_),
                ) => continue,
                Err(e) => {
                    bad.push(format!("`{o}#{perm}@{s}`: check failed: {e}"));
                    continue;
                }
            };
            pairs += 1;
            let who = who_cache.entry((o, s.ty.as_str(), s.relation.as_deref())).or_insert_with(|| {
                let f = SubjectFilter { ty: s.ty.clone(), relation: s.relation.clone() };
                snap.who(o, perm, &f, opts)
            });
            let w = match who {
                Ok(w) => who_member(w, s),
                Err(e) => {
                    bad.push(format!("`{o}#{perm}@{s}`: who failed: {e}"));
                    continue;
                }
            };
            let what = what_cache.entry(s).or_insert_with(|| common::what_all(snap, s, perm, ty, opts));
            let m = match what {
                Ok(set) => {
                    let name = o.to_string();
                    if set.contains(&(name.clone(), true)) {
                        Tri::Cond
                    } else {
                        Tri::from_bool(set.contains(&(name, false)))
                    }
                }
                Err(e) => {
                    bad.push(format!("`{o}#{perm}@{s}`: what failed: {e}"));
                    continue;
                }
            };
            if c != w || c != m {
                bad.push(format!(
                    "`{o}#{perm}@{s}`: check says {}, who says {}, what says {}",
                    common::tri_word(c),
                    common::tri_word(w),
                    common::tri_word(m)
                ));
            }
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    let more = bad.len().saturating_sub(SHOWN);
    let mut msg =
        format!("{} of {pairs} pairs disagree: {}", bad.len(), bad[..bad.len().min(SHOWN)].join("; "));
    if more > 0 {
        msg += &format!("; and {more} more");
    }
    Err(msg)
}

/// Membership of `s` in a `who` answer.
fn who_member(w: &WhoResult, s: &SubjectRef) -> Tri {
    if let Some(f) = w.subjects.iter().find(|f| &f.subject == s) {
        return f.outcome;
    }
    match &w.wildcard {
        Some(wc) if s.relation.is_none() => match wc.excluded.iter().find(|e| &e.subject == s) {
            Some(e) => e.outcome,
            None => wc.outcome,
        },
        _ => Tri::False,
    }
}
