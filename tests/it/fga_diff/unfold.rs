//! Whether OpenFGA's checks agree with each other: a check's answer must equal its definition
//! unfolded one step, with every check that step needs answered by OpenFGA itself (any fixpoint
//! of the model, the least included, satisfies this). Where it does not, OpenFGA contradicts
//! itself there, and the answer says nothing about Purview.
//!
//! Three-valued: a tuple with a condition counts as unknown (`None`), and an unknown answer
//! concludes nothing.

use purview::syntax::ast::{Expr, Item, Member, Schema, SubjectType};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

type Key = (String, String, String);

pub struct Unfold<'a> {
    defs: HashMap<(String, String), (Vec<SubjectType>, Option<Expr>)>,
    /// (object, relation) → the subjects of its tuples, with whether the tuple has a condition.
    tuples: HashMap<(String, String), Vec<(String, bool)>>,
    check: &'a dyn Fn(&str, &str, &str) -> Option<bool>,
    /// The checks asked while unfolding (see [`Unfold::deps`]).
    asked: RefCell<Vec<Key>>,
}

fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

impl<'a> Unfold<'a> {
    /// `check(user, relation, object)` is OpenFGA's answer.
    pub fn new(
        model: &Schema,
        tuples: &[Value],
        check: &'a dyn Fn(&str, &str, &str) -> Option<bool>,
    ) -> Self {
        let mut defs = HashMap::new();
        for item in &model.items {
            let Item::Type(t) = item else { continue };
            for m in &t.members {
                let (name, def) = match m {
                    Member::Relation(r) => (&r.name.name, (r.subjects.clone(), r.rewrite.clone())),
                    Member::Permission(p) => (&p.name.name, (Vec::new(), Some(p.expr.clone()))),
                    Member::Constraint(_) => continue,
                };
                defs.insert((t.name.name.clone(), name.clone()), def);
            }
        }
        let mut by_key: HashMap<(String, String), Vec<(String, bool)>> = HashMap::new();
        for t in tuples {
            let key =
                (t["object"].as_str().unwrap().to_string(), t["relation"].as_str().unwrap().to_string());
            by_key
                .entry(key)
                .or_default()
                .push((t["user"].as_str().unwrap().to_string(), t.get("condition").is_some()));
        }
        Unfold { defs, tuples: by_key, check, asked: RefCell::new(Vec::new()) }
    }

    fn ask(&self, user: &str, rel: &str, object: &str) -> Option<bool> {
        self.asked.borrow_mut().push((user.to_string(), rel.to_string(), object.to_string()));
        (self.check)(user, rel, object)
    }

    /// The checks whose answers unfolding this one uses.
    fn deps(&self, user: &str, rel: &str, object: &str) -> Vec<Key> {
        self.asked.borrow_mut().clear();
        let _ = self.expected(user, rel, object);
        std::mem::take(&mut *self.asked.borrow_mut())
    }

    /// The checks (of `answered`) on which OpenFGA contradicts its other checks, and those whose
    /// unfolding uses one of them, transitively (their answers rest on a contradiction).
    pub fn contradicted(&self, answered: &[(Key, bool)]) -> HashSet<Key> {
        let mut out: HashSet<Key> = answered
            .iter()
            .filter(|((u, r, o), got)| self.expected(u, r, o) == Some(!*got))
            .map(|(k, _)| k.clone())
            .collect();
        let deps: Vec<(&Key, Vec<Key>)> =
            answered.iter().map(|(k, _)| (k, self.deps(&k.0, &k.1, &k.2))).collect();
        loop {
            let before = out.len();
            for (k, ds) in &deps {
                if !out.contains(*k) && ds.iter().any(|d| out.contains(d)) {
                    out.insert((*k).clone());
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    /// The answer for `user` `rel` `object` that OpenFGA's other checks imply, if they do.
    pub fn expected(&self, user: &str, rel: &str, object: &str) -> Option<bool> {
        // A userset holds itself.
        if user == format!("{object}#{rel}") {
            return Some(true);
        }
        let ty = object.split_once(':')?.0;
        let (_, rewrite) = self.defs.get(&(ty.to_string(), rel.to_string()))?;
        match rewrite {
            None => self.direct(user, rel, object),
            Some(e) => self.expr(e, user, rel, object),
        }
    }

    fn expr(&self, e: &Expr, user: &str, rel: &str, object: &str) -> Option<bool> {
        match e {
            Expr::This(_) => self.direct(user, rel, object),
            Expr::Ref(x) => self.ask(user, &x.name, object),
            Expr::Arrow { tupleset, target, .. } => {
                let mut out = Some(false);
                for (subject, conditional) in self.tuples.get(&(object.to_string(), tupleset.name.clone()))? {
                    let ty = subject.split_once(':')?.0;
                    if !self.defs.contains_key(&(ty.to_string(), target.name.clone())) {
                        continue;
                    }
                    let hit = self.ask(user, &target.name, subject);
                    out = or(out, if *conditional { and(hit, None) } else { hit });
                }
                out
            }
            Expr::Union(v) => {
                let mut out = Some(false);
                for x in v {
                    out = or(out, self.expr(x, user, rel, object));
                }
                out
            }
            Expr::Intersection(v) => {
                let mut out = Some(true);
                for x in v {
                    out = and(out, self.expr(x, user, rel, object));
                }
                out
            }
            Expr::Exclusion(a, b) => {
                and(self.expr(a, user, rel, object), self.expr(b, user, rel, object).map(|b| !b))
            }
            Expr::Nil(_) => Some(false),
        }
    }

    /// The tuples of `object#rel`: the user itself, the wildcard of its type, or a userset that
    /// holds it.
    fn direct(&self, user: &str, rel: &str, object: &str) -> Option<bool> {
        let Some(tuples) = self.tuples.get(&(object.to_string(), rel.to_string())) else {
            return Some(false);
        };
        let plain_user = !user.contains('#');
        let user_ty = user.split_once(':')?.0;
        let mut out = Some(false);
        for (subject, conditional) in tuples {
            let hit = if subject == user || (plain_user && *subject == format!("{user_ty}:*")) {
                Some(true)
            } else if let Some((set, srel)) = subject.split_once('#') {
                self.ask(user, srel, set)
            } else {
                Some(false)
            };
            out = or(out, if *conditional { and(hit, None) } else { hit });
        }
        out
    }
}
