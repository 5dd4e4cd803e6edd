//! Schema constraints, checked after a batch is applied to a copy of the data.
//!
//! Every constraint is about the relationships of one object, so only the objects a batch touched
//! are checked, each constraint once per object (or once per object and subject, for `one of` and
//! `requires`). Relationships with valid time count while they hold: a constraint must hold at
//! every instant, so an administrator whose relationship ends at noon and a successor whose
//! relationship starts at noon never count as two. Expired relationships stay in the store (as
//! history) and are checked like any other. Conditions on relationships are not looked at.

use super::timeline::{self, from_text, interval_text, Interval};
use super::write::{WriteError, WriteOp};
use super::{Obj, Subject, TupleAttrs, TupleStore};
use crate::schema::{Constraint, OnMode, RelId, RelKind, Schema};
use std::collections::{BTreeMap, BTreeSet};

type Key = (Obj, RelId, Subject);

/// What a batch changed: for every relationship it touched, the last operation on it (with its
/// position in the batch) and the attributes it had before the batch (`None`: it did not exist).
#[derive(Default)]
pub(crate) struct Changes<'o> {
    keys: BTreeMap<Key, (usize, &'o WriteOp, Option<TupleAttrs>)>,
    /// The keys in the order the batch first named them.
    order: Vec<Key>,
    count: usize,
}

impl<'o> Changes<'o> {
    /// Records `op` on `key`; `before` is asked only for the first operation on the key.
    pub fn record(&mut self, key: Key, op: &'o WriteOp, before: impl FnOnce() -> Option<TupleAttrs>) {
        self.count += 1;
        match self.keys.get_mut(&key) {
            Some(entry) => (entry.0, entry.1) = (self.count, op),
            None => {
                self.keys.insert(key, (self.count, op, before()));
                self.order.push(key);
            }
        }
    }

    /// Every relationship the batch named, once, in the order it first named them, with its
    /// attributes before the batch.
    pub fn into_priors(mut self) -> Vec<(Key, Option<TupleAttrs>)> {
        let order = std::mem::take(&mut self.order);
        order.into_iter().filter_map(|k| self.keys.remove(&k).map(|(_, _, before)| (k, before))).collect()
    }

    /// The change a violation of `c` on `object` is blamed on: the last one in the batch that
    /// `c` is checked for (so a load file points at the relationship that went one too far).
    fn culprit(&self, c: &Constraint, object: Obj, subject: Option<Subject>) -> Option<&'o WriteOp> {
        let relevant = |&(o, rel, s): &Key| {
            let on_object =
                o == object && triggers(c, rel).is_some() && subject.is_none_or(|subject| subject == s);
            let referencing =
                matches!(c, Constraint::AtLeast { .. }) && !s.is_wildcard() && s.object() == object;
            on_object || referencing
        };
        self.keys.iter().filter(|(k, _)| relevant(k)).max_by_key(|(_, v)| v.0).map(|(_, v)| v.1)
    }
}

/// Whether a change of `rel` is checked against `c`: `Some(true)` per subject (`one of`,
/// `requires`), `Some(false)` per object.
fn triggers(c: &Constraint, rel: RelId) -> Option<bool> {
    match c {
        Constraint::AtMost { relation, .. } if *relation == rel => Some(false),
        Constraint::AtLeast { .. } => Some(false),
        Constraint::OnObject { relations, guards, .. }
            if relations.contains(&rel) || guards.contains(&rel) =>
        {
            Some(false)
        }
        Constraint::OneOf { relations } if relations.contains(&rel) => Some(true),
        Constraint::Requires { relation, required } if *relation == rel || required.contains(&rel) => {
            Some(true)
        }
        _ => None,
    }
}

/// Checks every constraint that a changed relationship could break.
pub(crate) fn check<S: TupleStore>(
    schema: &Schema,
    data: &S,
    changes: &Changes<'_>,
) -> Result<(), WriteError> {
    let mut done: BTreeSet<(Obj, usize, Option<Subject>)> = BTreeSet::new();
    for (&(object, rel, subject), &(_, op, _)) in &changes.keys {
        for (i, c) in schema.type_def(object.ty).constraints.iter().enumerate() {
            let per_subject = match triggers(c, rel) {
                Some(true) => Some(subject),
                Some(false) => None,
                None => continue,
            };
            if !done.insert((object, i, per_subject)) {
                continue;
            }
            let cx = Cx { schema, data, changes, object };
            if let Some(reason) = cx.violation(c, subject) {
                let op = changes.culprit(c, object, per_subject).unwrap_or(op);
                return Err(cx.error(c, op, reason));
            }
        }
        // `at least` holds for an object that is the subject of a relationship too.
        if subject.is_wildcard() {
            continue;
        }
        let referenced = subject.object();
        for (i, c) in schema.type_def(referenced.ty).constraints.iter().enumerate() {
            if matches!(c, Constraint::AtLeast { .. }) && done.insert((referenced, i, None)) {
                let cx = Cx { schema, data, changes, object: referenced };
                if let Some(reason) = cx.violation(c, subject) {
                    let op = changes.culprit(c, referenced, None).unwrap_or(op);
                    return Err(cx.error(c, op, reason));
                }
            }
        }
    }
    Ok(())
}

struct Cx<'a, S> {
    schema: &'a Schema,
    data: &'a S,
    changes: &'a Changes<'a>,
    object: Obj,
}

impl<S: TupleStore> Cx<'_, S> {
    fn rel_name(&self, r: RelId) -> &str {
        &self.schema.rel_def(self.object.ty, r).name
    }

    fn object_name(&self) -> String {
        format!(
            "{}:{}",
            self.schema.type_def(self.object.ty).name,
            self.data.object_name(self.object.ty, self.object.id)
        )
    }

    fn subject_name(&self, s: Subject) -> String {
        let t = self.schema.type_def(s.ty);
        let mut n = format!("{}:{}", t.name, self.data.object_name(s.ty, s.id));
        if let Some(r) = s.rel {
            n = format!("{n}#{}", t.relations[r as usize].name);
        }
        n
    }

    fn intervals(&self, rel: RelId) -> Vec<(Subject, Interval)> {
        self.data.stored(self.object, rel).iter().map(|(s, a)| (*s, Interval::of(a))).collect()
    }

    fn held(&self, rel: RelId, subject: Subject) -> Option<Interval> {
        self.data.get(self.object, rel, subject).map(|a| Interval::of(&a))
    }

    /// What is wrong after the batch, if anything.
    fn violation(&self, c: &Constraint, subject: Subject) -> Option<String> {
        let obj = self.object_name();
        match c {
            Constraint::AtMost { count, relation } => {
                let ivs: Vec<Interval> = self.intervals(*relation).into_iter().map(|(_, i)| i).collect();
                let (t, n) = timeline::first_over(&ivs, *count as usize)?;
                let rel = self.rel_name(*relation);
                Some(format!("`{obj}` would have {n} `{rel}`{}, more than {count}", from_text(t)))
            }
            Constraint::AtLeast { count, relation } => {
                let ivs: Vec<Interval> = self.intervals(*relation).into_iter().map(|(_, i)| i).collect();
                let gaps = timeline::under(&ivs, *count as usize);
                if gaps.is_empty() {
                    return None;
                }
                // A gap matters only while the object has a relationship, or is the subject of one.
                let tdef = self.schema.type_def(self.object.ty);
                let rels = (0..tdef.relations.len() as RelId)
                    .filter(|&r| tdef.relations[r as usize].kind == RelKind::Relation);
                let own = rels.flat_map(|r| self.intervals(r)).map(|(_, i)| i);
                let references = self.data.referencing(self.object).into_iter().map(|a| Interval::of(&a));
                let (t, n) = own
                    .chain(references)
                    .flat_map(|i| gaps.iter().filter_map(move |(g, n)| Some((i.overlap(*g)?.from, *n))))
                    .min()?;
                let rel = self.rel_name(*relation);
                Some(format!("`{obj}` would have {n} `{rel}`{}, fewer than {count}", from_text(t)))
            }
            Constraint::OneOf { relations } => {
                let held: Vec<(RelId, Interval)> =
                    relations.iter().filter_map(|&r| Some((r, self.held(r, subject)?))).collect();
                let (a, b, t) = held.iter().enumerate().find_map(|(i, &(a, ia))| {
                    held[i + 1..].iter().find_map(|&(b, ib)| Some((a, b, ia.overlap(ib)?.from)))
                })?;
                Some(format!(
                    "`{}` would hold both `{}` and `{}` on `{obj}`{}",
                    self.subject_name(subject),
                    self.rel_name(a),
                    self.rel_name(b),
                    from_text(t)
                ))
            }
            Constraint::Requires { relation, required } => {
                let iv = self.held(*relation, subject)?;
                let held: Vec<Interval> = required.iter().filter_map(|&r| self.held(r, subject)).collect();
                let t = timeline::first_uncovered(iv, &timeline::union(&held))?;
                let names: Vec<String> =
                    required.iter().map(|&r| format!("`{}`", self.rel_name(r))).collect();
                Some(format!(
                    "`{}` would hold `{}` on `{obj}` without {}{}",
                    self.subject_name(subject),
                    self.rel_name(*relation),
                    or_list(&names),
                    from_text(t)
                ))
            }
            Constraint::OnObject { relations, mode, guards } => {
                let guard_ivs: Vec<(RelId, Subject, Interval)> = guards
                    .iter()
                    .flat_map(|&g| self.intervals(g).into_iter().map(move |(s, i)| (g, s, i)))
                    .collect();
                let cover = timeline::union(&guard_ivs.iter().map(|g| g.2).collect::<Vec<_>>());
                for &r in relations {
                    for (s, iv) in self.intervals(r) {
                        let holder = format!("`{}` (`{}`)", self.rel_name(r), self.subject_name(s));
                        match mode {
                            OnMode::Only => {
                                if let Some(t) = timeline::first_uncovered(iv, &cover) {
                                    let names: Vec<String> =
                                        guards.iter().map(|&g| format!("`{}`", self.rel_name(g))).collect();
                                    return Some(format!(
                                        "`{obj}` would have {holder} without {}{}",
                                        or_list(&names),
                                        from_text(t)
                                    ));
                                }
                            }
                            OnMode::Not => {
                                let hit =
                                    guard_ivs.iter().find_map(|&(g, gs, gi)| Some((g, gs, iv.overlap(gi)?)));
                                if let Some((g, gs, o)) = hit {
                                    return Some(format!(
                                        "`{obj}` would have {holder} together with `{}` (`{}`){}",
                                        self.rel_name(g),
                                        self.subject_name(gs),
                                        from_text(o.from)
                                    ));
                                }
                            }
                        }
                    }
                }
                None
            }
        }
    }

    /// The relations whose holders the error lists.
    fn listed(c: &Constraint) -> Vec<RelId> {
        match c {
            Constraint::AtMost { relation, .. } | Constraint::AtLeast { relation, .. } => vec![*relation],
            Constraint::OneOf { relations } => relations.clone(),
            Constraint::Requires { relation, required } => {
                std::iter::once(relation).chain(required).copied().collect()
            }
            Constraint::OnObject { relations, guards, .. } => {
                relations.iter().chain(guards).copied().collect()
            }
        }
    }

    /// The holders of `rel` on the object as they were before the batch.
    fn holders_before(&self, rel: RelId) -> Vec<(Subject, TupleAttrs)> {
        let mut now: BTreeMap<Subject, TupleAttrs> = self.data.stored(self.object, rel).into_iter().collect();
        let lo = (self.object, rel, MIN_SUBJECT);
        let hi = (self.object, rel, MAX_SUBJECT);
        for (&(_, _, s), (_, _, before)) in self.changes.keys.range(lo..=hi) {
            match before {
                Some(a) => now.insert(s, a.clone()),
                None => now.remove(&s),
            };
        }
        now.into_iter().collect()
    }

    fn error(&self, c: &Constraint, op: &WriteOp, reason: String) -> WriteError {
        let rels = Self::listed(c);
        let lists: Vec<String> = rels
            .iter()
            .map(|&r| {
                let mut names: Vec<String> = self
                    .holders_before(r)
                    .iter()
                    .map(|(s, a)| format!("`{}`{}", self.subject_name(*s), interval_text(Interval::of(a))))
                    .collect();
                names.sort();
                let names = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                if rels.len() == 1 {
                    names
                } else {
                    format!("{} {names}", self.rel_name(r))
                }
            })
            .collect();
        let action = match op {
            WriteOp::Delete(_) => "deleting",
            WriteOp::Touch(_) | WriteOp::Create(_) | WriteOp::Replace(_) => "writing",
        };
        WriteError::Constraint {
            constraint: describe(self.schema, self.object.ty, c),
            action,
            relationship: op.relationship().to_string(),
            reason,
            holders: lists.join("; "),
        }
    }
}

const MIN_SUBJECT: Subject = Subject { ty: 0, id: 0, rel: None };
const MAX_SUBJECT: Subject = Subject { ty: u32::MAX, id: u32::MAX, rel: Some(u32::MAX) };

/// `a`, `a or b`, `a, b or c`.
fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The constraint as written in a schema, prefixed by its type: `agency: at most 5 account-admin`.
pub fn describe(schema: &Schema, ty: u32, c: &Constraint) -> String {
    let name = |r: &RelId| schema.rel_def(ty, *r).name.clone();
    let list = |rs: &[RelId]| match rs {
        [one] => name(one),
        _ => format!("({})", rs.iter().map(name).collect::<Vec<_>>().join(", ")),
    };
    let t = &schema.type_def(ty).name;
    match c {
        Constraint::AtMost { count, relation } => format!("{t}: at most {count} {}", name(relation)),
        Constraint::AtLeast { count, relation } => format!("{t}: at least {count} {}", name(relation)),
        Constraint::OneOf { relations } => {
            format!("{t}: one of ({})", relations.iter().map(name).collect::<Vec<_>>().join(", "))
        }
        Constraint::Requires { relation, required } => {
            format!("{t}: {} requires {}", name(relation), list(required))
        }
        Constraint::OnObject { relations, mode, guards } => {
            let word = if *mode == OnMode::Only { "only" } else { "not" };
            format!("{t}: {} {word} on {}", list(relations), list(guards))
        }
    }
}
