//! `expand` (the userset tree of a permission on an object) and `explain` (why a subject is
//! allowed: a witness; or why not: the branches tried and what was missing). Both are data: a
//! serializable [`Tree`] with a plain-text rendering.

use super::reference::Reference;
use super::{EvalError, Tri};
use crate::schema::{RelId, RelKind, Rewrite};
use crate::store::{Obj, Subject, TupleAttrs};
use crate::syntax::ast::ArrowMode;
use serde::Serialize;
use std::fmt::Write as _;

/// How many nodes a tree may have before the rest is summarised.
const MAX_NODES: usize = 500;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A relation or permission of an object: `document:d1#view`.
    Relation,
    Union,
    Intersection,
    Exclusion,
    /// `parent->view`: the children are the objects followed to.
    Arrow,
    /// A stored relationship.
    Relationship,
    /// A relationship that would have granted access does not exist.
    Missing,
    /// The relation is already being evaluated on this path.
    Cycle,
    Nil,
    /// Further nodes left out.
    More,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tree {
    pub step: Step,
    pub label: String,
    /// For explain: whether this node holds for the subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Tri>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Tree>,
}

impl Tree {
    fn new(step: Step, label: impl Into<String>, outcome: Option<Tri>) -> Tree {
        Tree { step, label: label.into(), outcome, children: Vec::new() }
    }

    /// An indented rendering, one node a line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out, "", "");
        out
    }

    fn render_into(&self, out: &mut String, first: &str, rest: &str) {
        let mark = match self.outcome {
            Some(Tri::True) => "✓ ",
            Some(Tri::False) => "✗ ",
            Some(Tri::Cond) => "? ",
            None => "",
        };
        let _ = writeln!(out, "{first}{mark}{}", self.label);
        let n = self.children.len();
        for (i, c) in self.children.iter().enumerate() {
            let last = i + 1 == n;
            let (f, r) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
            c.render_into(out, &format!("{rest}{f}"), &format!("{rest}{r}"));
        }
    }

    pub fn node_count(&self) -> usize {
        1 + self.children.iter().map(Tree::node_count).sum::<usize>()
    }

    /// Replaces `from` by `to` in every label (names an object no relationship names, which
    /// the store only knows as a placeholder).
    pub fn rename(&mut self, from: &str, to: &str) {
        self.label = self.label.replace(from, to);
        for c in &mut self.children {
            c.rename(from, to);
        }
    }
}

struct Builder<'r, 'a> {
    ev: &'r mut Reference<'a>,
    /// `Some(subject)` for explain, `None` for expand.
    subject: Option<Subject>,
    stack: Vec<(Obj, RelId)>,
    nodes: usize,
}

/// The userset tree of `object#rel`, expanded down to stored relationships.
pub fn expand(ev: &mut Reference<'_>, object: Obj, rel: RelId) -> Result<Tree, EvalError> {
    let mut b = Builder { ev, subject: None, stack: Vec::new(), nodes: 0 };
    b.relation(object, rel)
}

/// Why `subject` has (or has not) `rel` on `object`.
pub fn explain(ev: &mut Reference<'_>, object: Obj, rel: RelId, subject: Subject) -> Result<Tree, EvalError> {
    let mut b = Builder { ev, subject: Some(subject), stack: Vec::new(), nodes: 0 };
    b.relation(object, rel)
}

impl Builder<'_, '_> {
    fn name(&self, o: Obj, rel: RelId) -> String {
        format!("{}#{}", self.ev.snap.object_ref(o), self.ev.snap.schema().rel_def(o.ty, rel).name)
    }

    fn outcome(&mut self, o: Obj, rel: RelId) -> Result<Option<Tri>, EvalError> {
        match self.subject {
            Some(s) => Ok(Some(self.ev.check(o, rel, s)?)),
            None => Ok(None),
        }
    }

    fn relation(&mut self, o: Obj, rel: RelId) -> Result<Tree, EvalError> {
        self.nodes += 1;
        let outcome = self.outcome(o, rel)?;
        if self.subject.is_some_and(|s| s.rel == Some(rel) && s.object() == o) {
            // As in check: a userset is a member of itself, whatever is stored.
            return Ok(Tree::new(
                Step::Relation,
                format!("{} (the subject itself: a userset contains itself)", self.name(o, rel)),
                outcome,
            ));
        }
        let rdef = self.ev.snap.schema().rel_def(o.ty, rel);
        let kind = if rdef.kind == RelKind::Permission { "permission" } else { "relation" };
        let label = match &rdef.rewrite {
            Rewrite::This => format!("{} ({kind})", self.name(o, rel)),
            rw => format!("{} ({kind}: {})", self.name(o, rel), describe(self.ev.snap.schema(), o.ty, rw)),
        };
        if self.stack.contains(&(o, rel)) {
            return Ok(Tree::new(
                Step::Cycle,
                format!("{} (already being evaluated: a cycle)", self.name(o, rel)),
                outcome,
            ));
        }
        if self.nodes > MAX_NODES {
            return Ok(Tree::new(
                Step::More,
                format!("{} (not expanded: tree too large)", self.name(o, rel)),
                outcome,
            ));
        }
        if self.stack.len() >= self.ev.opts.limits.max_depth as usize {
            return Err(EvalError::DepthExceeded { limit: self.ev.opts.limits.max_depth });
        }
        self.stack.push((o, rel));
        let rewrite = rdef.rewrite.clone();
        let body = self.rewrite(o, rel, &rewrite, outcome);
        self.stack.pop();
        let mut body = body?;
        // A plain relation shows its relationships directly under its name; a plain alias shows
        // what it stands for.
        if matches!(rewrite, Rewrite::This) {
            body.label = label;
            body.outcome = outcome;
            return Ok(body);
        }
        let mut t = Tree::new(Step::Relation, label, outcome);
        t.children.push(body);
        Ok(t)
    }

    /// Keeps the children that explain `outcome`: one witness for a granted union, the failing
    /// parts of a denied intersection, everything tried for a denial.
    fn prune(step: &Step, outcome: Option<Tri>, children: Vec<Tree>) -> Vec<Tree> {
        let Some(outcome) = outcome else { return children };
        match (step, outcome) {
            (Step::Union | Step::Arrow, Tri::True) => {
                children.into_iter().find(|c| c.outcome == Some(Tri::True)).into_iter().collect()
            }
            (Step::Union | Step::Arrow, Tri::Cond) => {
                children.into_iter().filter(|c| c.outcome != Some(Tri::False)).collect()
            }
            (Step::Intersection, Tri::False) => {
                children.into_iter().filter(|c| c.outcome == Some(Tri::False)).collect()
            }
            _ => children,
        }
    }

    fn rewrite(&mut self, o: Obj, rel: RelId, rw: &Rewrite, outcome: Option<Tri>) -> Result<Tree, EvalError> {
        self.nodes += 1;
        match rw {
            Rewrite::Nil => Ok(Tree::new(Step::Nil, "nil (nothing)", outcome.map(|_| Tri::False))),
            Rewrite::SelfRef => Ok(Tree::new(
                Step::Relation,
                format!("self ({} itself, as a subject)", self.ev.snap.object_ref(o)),
                outcome,
            )),
            Rewrite::Computed(r) => self.relation(o, *r),
            Rewrite::This => self.this(o, rel, outcome),
            Rewrite::Union(items) | Rewrite::Intersection(items) => {
                let step = if matches!(rw, Rewrite::Union(_)) { Step::Union } else { Step::Intersection };
                let mut children = Vec::new();
                for i in items {
                    let out = self.sub_outcome(o, rel, i)?;
                    children.push(self.rewrite(o, rel, i, out)?);
                    if step == Step::Union && out == Some(Tri::True) {
                        break;
                    }
                }
                let label = if step == Step::Union { "any of" } else { "all of" };
                let mut children = Self::prune(&step, outcome, children);
                // A granted union shows its one witness in its place: the label of the relation
                // above already shows the whole expression.
                if step == Step::Union && outcome == Some(Tri::True) && children.len() == 1 {
                    if let Some(witness) = children.pop() {
                        return Ok(witness);
                    }
                }
                let mut t = Tree::new(step.clone(), label, outcome);
                t.children = children;
                Ok(t)
            }
            Rewrite::Exclusion(a, b) => {
                let oa = self.sub_outcome(o, rel, a)?;
                let ob = self.sub_outcome(o, rel, b)?;
                let label = match (oa, ob) {
                    (None, _) => "but not",
                    (Some(Tri::False), _) => "not granted (so the exclusion does not matter)",
                    (_, Some(Tri::True)) => "granted, but excluded",
                    (_, Some(Tri::Cond)) => "granted, unless excluded (depends on conditions)",
                    (Some(Tri::Cond), _) => "granted only conditionally, and not excluded",
                    _ => "granted, and not excluded",
                };
                let mut t = Tree::new(Step::Exclusion, label, outcome);
                t.children.push(self.rewrite(o, rel, a, oa)?);
                if oa != Some(Tri::False) {
                    let mut excluded = self.rewrite(o, rel, b, ob)?;
                    let prefix = match ob {
                        None => "excluded",
                        Some(Tri::False) => "not excluded by",
                        Some(_) => "excluded by",
                    };
                    excluded.label = format!("{prefix}: {}", excluded.label);
                    t.children.push(excluded);
                }
                Ok(t)
            }
            Rewrite::Arrow { tupleset, target_name, targets, mode } => {
                let ts_name = self.ev.snap.schema().rel_def(o.ty, *tupleset).name.clone();
                let how = if *mode == ArrowMode::All { "every" } else { "any" };
                let mut t = Tree::new(
                    Step::Arrow,
                    format!("{how} `{ts_name}` of {} with `{target_name}`", self.ev.snap.object_ref(o)),
                    outcome,
                );
                let tuples: Vec<(Subject, TupleAttrs)> = self.ev.snap.tuples(o, *tupleset);
                for (s, attrs) in tuples {
                    if s.is_wildcard() {
                        continue;
                    }
                    let exists = self.ev.tuple_tri(&attrs)?;
                    let rel_label =
                        format!("{}#{ts_name}@{}", self.ev.snap.object_ref(o), self.ev.snap.subject_ref(s));
                    if exists == Tri::False {
                        if self.subject.is_some() {
                            t.children.push(Tree::new(
                                Step::Relationship,
                                format!("{rel_label}{}", self.attrs_note(&attrs)),
                                Some(Tri::False),
                            ));
                        }
                        continue;
                    }
                    let mut step = Tree::new(Step::Relationship, rel_label, self.subject.map(|_| exists));
                    match targets.get(s.ty as usize).copied().flatten() {
                        Some(target) => step.children.push(self.relation(s.object(), target)?),
                        None => step.children.push(Tree::new(
                            Step::Missing,
                            format!(
                                "type `{}` has no `{target_name}`",
                                self.ev.snap.schema().type_def(s.ty).name
                            ),
                            self.subject.map(|_| Tri::False),
                        )),
                    }
                    if self.subject.is_some() {
                        let inner = step.children.first().and_then(|c| c.outcome).unwrap_or(Tri::False);
                        step.outcome = Some(exists.and(inner));
                    }
                    t.children.push(step);
                }
                if t.children.is_empty() {
                    t.children.push(Tree::new(
                        Step::Missing,
                        format!("no relationship {}#{ts_name}@…", self.ev.snap.object_ref(o)),
                        self.subject.map(|_| Tri::False),
                    ));
                }
                if *mode == ArrowMode::Any {
                    t.children = Self::prune(&Step::Arrow, outcome, std::mem::take(&mut t.children));
                }
                Ok(t)
            }
        }
    }

    fn sub_outcome(&mut self, o: Obj, rel: RelId, rw: &Rewrite) -> Result<Option<Tri>, EvalError> {
        match self.subject {
            None => Ok(None),
            Some(s) => Ok(Some(self.ev.check_rewrite_pub(o, rel, rw, s)?)),
        }
    }

    fn this(&mut self, o: Obj, rel: RelId, outcome: Option<Tri>) -> Result<Tree, EvalError> {
        let mut t = Tree::new(Step::Union, "stored relationships", outcome);
        let tuples: Vec<(Subject, TupleAttrs)> = self.ev.snap.tuples(o, rel);
        let rname = self.ev.snap.schema().rel_def(o.ty, rel).name.clone();
        for (s, attrs) in tuples {
            let label = format!(
                "{}#{rname}@{}{}",
                self.ev.snap.object_ref(o),
                self.ev.snap.subject_ref(s),
                self.attrs_note(&attrs)
            );
            let exists = self.ev.tuple_tri(&attrs)?;
            match self.subject {
                None => {
                    let mut leaf = Tree::new(Step::Relationship, label, None);
                    if let (Some(r), true) = (s.rel, exists != Tri::False) {
                        leaf.children.push(self.relation(s.object(), r)?);
                    }
                    t.children.push(leaf);
                }
                Some(subj) => {
                    let direct = s == subj || (s.is_wildcard() && s.ty == subj.ty && subj.rel.is_none());
                    if direct {
                        t.children.push(Tree::new(Step::Relationship, label, Some(exists)));
                    } else if let Some(r) = s.rel {
                        let mut leaf = Tree::new(Step::Relationship, label, Some(exists));
                        if exists != Tri::False {
                            let inner = self.relation(s.object(), r)?;
                            leaf.outcome = Some(exists.and(inner.outcome.unwrap_or(Tri::False)));
                            leaf.children.push(inner);
                        }
                        t.children.push(leaf);
                    }
                }
            }
        }
        if let Some(subj) = self.subject {
            if t.children.is_empty() {
                t.children.push(Tree::new(
                    Step::Missing,
                    format!(
                        "no relationship {}#{rname}@{}",
                        self.ev.snap.object_ref(o),
                        self.ev.snap.subject_ref(subj)
                    ),
                    Some(Tri::False),
                ));
            }
            t.children = Self::prune(&Step::Union, outcome, std::mem::take(&mut t.children));
        }
        Ok(t)
    }

    /// ` [if `cond`, from T, until T]`, saying which part keeps a relationship from holding at
    /// the evaluation time: `not yet valid`, `expired`.
    fn attrs_note(&self, a: &TupleAttrs) -> String {
        let at = self.ev.opts.at;
        let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let mut parts = Vec::new();
        if let Some(c) = &a.caveat {
            parts.push(format!("if `{}`", self.ev.snap.schema().condition(c.cond).name));
        }
        match a.valid_from {
            Some(f) if at < f => parts.push(format!("not yet valid: from {}", time(f))),
            Some(f) => parts.push(format!("from {}", time(f))),
            None => {}
        }
        match a.expires_at {
            Some(e) if e <= at => parts.push(format!("expired {}", time(e))),
            Some(e) => parts.push(format!("until {}", time(e))),
            None => {}
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" [{}]", parts.join(", "))
        }
    }
}

/// A rewrite as the schema author wrote it (now in `schema`; kept here for existing callers).
pub use crate::schema::describe;
