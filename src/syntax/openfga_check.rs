//! The checks OpenFGA applies to a model before accepting it (openfga/language `validation`), on
//! the AST that [`crate::syntax::openfga`] produced from the DSL or the JSON.
//!
//! In order: names (reserved `self`/`this`, OpenFGA's naming rules), duplicate types, type
//! restrictions (types, relations and conditions that must exist), references in rewrites
//! (relations that must exist; `X from Y` only through a relation `Y` whose types are all plain,
//! with `X` defined on at least one of them), duplicate operands; then, only if all of that holds,
//! that every relation can be reached from a stored relationship (an entry point); finally unused
//! conditions.
//!
//! Entry points: a relation has one if some way of evaluating it bottoms out in a directly
//! assignable type (`user`, `user:*`) without going around a loop. This is the least fixpoint of
//! "direct type, or a userset/computed relation/tupleset target that has one"; unions need one
//! operand with an entry point, intersections and exclusions all of them.

use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::syntax::ast::{
    ConditionDef, Expr, Ident, Item, Member, PermissionDef, RelationDef, Schema, SubjectKind, SubjectType,
    TypeDef,
};
use std::collections::{HashMap, HashSet};

/// What openfga/language's validator reports but the OpenFGA server accepts: a type restriction
/// or an operand given twice, a condition no relation uses. Purview loads such a model and
/// reports these as warnings ([`check_openfga`]).
pub const WARNINGS: [&str; 3] = ["duplicate-type-restriction", "duplicate-operand", "unused-condition"];

/// Checks an imported OpenFGA model as OpenFGA's server does: `Err` holds every problem found,
/// `Ok` the warnings (see [`WARNINGS`]).
pub fn check_openfga(schema: &Schema) -> Result<Vec<Diagnostic>, Diagnostics> {
    let all = validate_openfga(schema).err().map(|d| d.0).unwrap_or_default();
    let (warnings, errors): (Vec<Diagnostic>, Vec<Diagnostic>) =
        all.into_iter().partition(|d| WARNINGS.contains(&d.code));
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    server_entry_points(schema)?;
    Ok(warnings)
}

/// The relations OpenFGA's server refuses for want of an entry point ([`server`]), beyond those
/// the language validator's check finds.
fn server_entry_points(schema: &Schema) -> Result<(), Diagnostics> {
    let mut diags = Vec::new();
    for (ty, rel, looped) in server::no_entry_points(schema) {
        let span = schema.items.iter().find_map(|i| match i {
            Item::Type(t) if t.name.name == ty => t.members.iter().find_map(|m| match m {
                Member::Relation(r) if r.name.name == rel => Some(r.name.span),
                Member::Permission(p) if p.name.name == rel => Some(p.name.span),
                _ => None,
            }),
            _ => None,
        });
        let Some(span) = span else { continue };
        let why = if looped { "OpenFGA finds only a potential loop" } else { "OpenFGA finds no entry point" };
        diags.push(
            Diagnostic::new(
                "no-entrypoint",
                span,
                format!("relation `{rel}` of type `{ty}` is refused by OpenFGA: {why}"),
            )
            .with_help(
                "OpenFGA's server walks each relation once per path: a relation reached a second time \
                 (as in `r and r`) does not count; make the relation directly assignable, or name each \
                 operand once",
            ),
        );
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(diags))
    }
}

/// The model with each repeated type restriction (`[user, user]`, a warning) given once, as
/// OpenFGA evaluates it.
pub fn without_repeated_restrictions(mut schema: Schema) -> Schema {
    for item in &mut schema.items {
        let Item::Type(t) = item else { continue };
        for m in &mut t.members {
            if let Member::Relation(r) = m {
                let mut kept: Vec<SubjectType> = Vec::with_capacity(r.subjects.len());
                for s in r.subjects.drain(..) {
                    if !kept.contains(&s) {
                        kept.push(s);
                    }
                }
                r.subjects = kept;
            }
        }
    }
    schema
}

/// Checks an imported OpenFGA model as openfga/language's validator does (the [`WARNINGS`]
/// are errors); `Err` holds every problem found.
pub fn validate_openfga(schema: &Schema) -> Result<(), Diagnostics> {
    let mut cx = Check {
        types: HashMap::new(),
        members: HashMap::new(),
        conditions: HashMap::new(),
        used: HashSet::new(),
        diags: Vec::new(),
    };
    let types: Vec<&TypeDef> = schema
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Type(t) => Some(t),
            Item::Condition(_) => None,
        })
        .collect();
    for i in &schema.items {
        if let Item::Condition(c) = i {
            cx.conditions.entry(c.name.name.as_str()).or_insert(c);
        }
    }
    for t in &types {
        let mut index = HashMap::new();
        for m in &t.members {
            if let Some(name) = member_name(m) {
                index.entry(name).or_insert(m);
            }
        }
        cx.members.insert(std::ptr::from_ref(*t), index);
    }
    for t in &types {
        cx.names(t);
        if let Some(first) = cx.types.get(t.name.name.as_str()) {
            let d = Diagnostic::new(
                "duplicate-type",
                t.name.span,
                format!("type `{}` is defined twice", t.name.name),
            )
            .with_related(first.name.span, "first defined here");
            cx.diags.push(d);
        } else {
            cx.types.insert(t.name.name.as_str(), t);
        }
    }
    for t in &types {
        for m in &t.members {
            match m {
                Member::Relation(r) => {
                    cx.restrictions(r);
                    if let Some(e) = &r.rewrite {
                        cx.expr(t, &r.name.name, e);
                    }
                }
                Member::Permission(p) => cx.expr(t, &p.name.name, &p.expr),
                Member::Constraint(_) => {}
            }
        }
    }
    if cx.diags.iter().all(|d| WARNINGS.contains(&d.code)) {
        cx.entry_points(&types);
    }
    for i in &schema.items {
        if let Item::Condition(c) = i {
            if !cx.used.contains(c.name.name.as_str()) {
                let d = Diagnostic::new(
                    "unused-condition",
                    c.name.span,
                    format!("condition `{}` is not used", c.name.name),
                )
                .with_help(format!(
                    "remove it, or restrict a relation with it: `[user with {}]`",
                    c.name.name
                ));
                cx.diags.push(d);
            }
        }
    }
    if cx.diags.is_empty() {
        Ok(())
    } else {
        Err(Diagnostics(cx.diags))
    }
}

struct Check<'a> {
    /// Types by name (the first definition of a duplicate).
    types: HashMap<&'a str, &'a TypeDef>,
    /// The members of each type definition by name (the first of a duplicate), keyed by the
    /// definition's identity so that a duplicate type keeps its own members.
    members: HashMap<*const TypeDef, HashMap<&'a str, &'a Member>>,
    conditions: HashMap<&'a str, &'a ConditionDef>,
    /// Conditions some type restriction uses.
    used: HashSet<&'a str>,
    diags: Vec<Diagnostic>,
}

fn member_name(m: &Member) -> Option<&str> {
    match m {
        Member::Relation(r) => Some(&r.name.name),
        Member::Permission(p) => Some(&p.name.name),
        Member::Constraint(_) => None,
    }
}

/// OpenFGA's naming rule `^[^:#@\*\s]{1,max}$`.
fn valid_name(name: &str, max: usize) -> bool {
    let n = name.chars().count();
    (1..=max).contains(&n) && !name.chars().any(|c| matches!(c, ':' | '#' | '@' | '*') || c.is_whitespace())
}

/// How an operand is written in OpenFGA, for messages.
fn operand_text(e: &Expr) -> String {
    match e {
        Expr::Ref(i) => format!("`{}`", i.name),
        Expr::Arrow { tupleset, target, .. } => format!("`{} from {}`", target.name, tupleset.name),
        _ => "this operand".to_string(),
    }
}

impl<'a> Check<'a> {
    fn member(&self, t: &TypeDef, name: &str) -> Option<&'a Member> {
        self.members.get(&std::ptr::from_ref(t)).and_then(|m| m.get(name)).copied()
    }

    fn names(&mut self, t: &TypeDef) {
        let n = &t.name;
        if matches!(n.name.as_str(), "self" | "this") {
            let d = Diagnostic::new("reserved-name", n.span, format!("a type cannot be named `{}`", n.name))
                .with_help("`self` and `this` are reserved in OpenFGA");
            self.diags.push(d);
        } else if !valid_name(&n.name, 254) {
            let d = Diagnostic::new("invalid-name", n.span, format!("type name `{}` is not valid", n.name))
                .with_help(
                    "type names have 1 to 254 characters, none of them `:`, `#`, `@`, `*` or whitespace",
                );
            self.diags.push(d);
        }
        for m in &t.members {
            let (Member::Relation(RelationDef { name, .. }) | Member::Permission(PermissionDef { name, .. })) =
                m
            else {
                continue;
            };
            if matches!(name.name.as_str(), "self" | "this") {
                let d = Diagnostic::new(
                    "reserved-name",
                    name.span,
                    format!("a relation cannot be named `{}`", name.name),
                )
                .with_help("`self` and `this` are reserved in OpenFGA");
                self.diags.push(d);
            } else if !valid_name(&name.name, 50) {
                let d = Diagnostic::new(
                    "invalid-name",
                    name.span,
                    format!("relation name `{}` of type `{}` is not valid", name.name, t.name.name),
                )
                .with_help(
                    "relation names have 1 to 50 characters, none of them `:`, `#`, `@`, `*` or whitespace",
                );
                self.diags.push(d);
            }
        }
    }

    /// The direct types `[...]` of a relation.
    fn restrictions(&mut self, r: &'a RelationDef) {
        for (i, s) in r.subjects.iter().enumerate() {
            if r.subjects.get(..i).unwrap_or(&[]).contains(s) {
                let d = Diagnostic::new(
                    "duplicate-type-restriction",
                    s.span.0,
                    format!(
                        "the type restriction `{}` appears twice in relation `{}`",
                        restriction_text(s),
                        r.name.name
                    ),
                );
                self.diags.push(d);
            }
            match self.types.get(s.ty.name.as_str()) {
                None => {
                    let help = did_you_mean(&s.ty.name, self.types.keys().copied());
                    let d = Diagnostic::new(
                        "unknown-type",
                        s.ty.span,
                        format!("`{}` is not a valid type", s.ty.name),
                    )
                    .with_help_opt(help);
                    self.diags.push(d);
                }
                Some(t) => {
                    if let SubjectKind::Userset(rel) = &s.kind {
                        if self.member(t, &rel.name).is_none() {
                            let help = did_you_mean(&rel.name, t.members.iter().filter_map(member_name));
                            let d = Diagnostic::new(
                                "unknown-relation",
                                s.span.0,
                                format!("`{}` is not a valid relation for `{}`", rel.name, s.ty.name),
                            )
                            .with_help_opt(help);
                            self.diags.push(d);
                        }
                    }
                }
            }
            if let Some(c) = &s.condition {
                if self.conditions.contains_key(c.name.as_str()) {
                    self.used.insert(c.name.as_str());
                } else {
                    let help = did_you_mean(&c.name, self.conditions.keys().copied());
                    let d = Diagnostic::new(
                        "unknown-condition",
                        c.span,
                        format!("`{}` is not a defined condition in the model", c.name),
                    )
                    .with_help_opt(help);
                    self.diags.push(d);
                }
            }
        }
    }

    /// References in the rewrite of relation `rel` of type `t`.
    fn expr(&mut self, t: &TypeDef, rel: &str, e: &Expr) {
        match e {
            Expr::Ref(x) => {
                if self.member(t, &x.name).is_none() {
                    let help = did_you_mean(&x.name, t.members.iter().filter_map(member_name));
                    let d = Diagnostic::new(
                        "unknown-relation",
                        x.span,
                        format!("the relation `{}` does not exist in type `{}`", x.name, t.name.name),
                    )
                    .with_help_opt(help);
                    self.diags.push(d);
                }
            }
            Expr::Arrow { tupleset, target, .. } => self.arrow(t, e, tupleset, target),
            Expr::Union(v) | Expr::Intersection(v) => {
                for (i, x) in v.iter().enumerate() {
                    self.expr(t, rel, x);
                    if v.get(..i).unwrap_or(&[]).contains(x) {
                        self.duplicate_operand(rel, x);
                    }
                }
            }
            Expr::Exclusion(a, b) => {
                self.expr(t, rel, a);
                self.expr(t, rel, b);
                if a == b {
                    self.duplicate_operand(rel, b);
                }
            }
            Expr::This(_) | Expr::Nil(_) => {}
        }
    }

    fn duplicate_operand(&mut self, rel: &str, x: &Expr) {
        let d = Diagnostic::new(
            "duplicate-operand",
            x.span(),
            format!("{} appears twice in the definition of `{rel}`", operand_text(x)),
        );
        self.diags.push(d);
    }

    /// `target from tupleset`: the tupleset must be a relation of plain types only, and the
    /// target must exist on at least one of them.
    fn arrow(&mut self, t: &TypeDef, e: &Expr, tupleset: &Ident, target: &Ident) {
        let not_direct = |span| {
            Diagnostic::new(
                "tupleset-not-direct",
                span,
                format!("`{}` is used in `from` but is not a relation of plain types only", tupleset.name),
            )
            .with_help(format!(
                "give `{}` only directly assignable types such as `[folder]`, without usersets, wildcards or operators",
                tupleset.name
            ))
        };
        match self.member(t, &tupleset.name) {
            None => {
                let help = did_you_mean(&tupleset.name, t.members.iter().filter_map(member_name));
                let d = Diagnostic::new(
                    "unknown-relation",
                    tupleset.span,
                    format!("the relation `{}` does not exist in type `{}`", tupleset.name, t.name.name),
                )
                .with_label(format!("used in `{} from {}`", target.name, tupleset.name))
                .with_help_opt(help);
                self.diags.push(d);
            }
            Some(Member::Relation(r)) if r.rewrite.is_none() => {
                let mut missing = Vec::new();
                for s in &r.subjects {
                    if s.kind != SubjectKind::Direct {
                        self.diags.push(not_direct(tupleset.span));
                    } else if self
                        .types
                        .get(s.ty.name.as_str())
                        .and_then(|u| self.member(u, &target.name))
                        .is_none()
                    {
                        missing.push(&s.ty.name);
                    }
                }
                if missing.len() == r.subjects.len() {
                    for ty in missing {
                        let d = Diagnostic::new(
                            "unknown-relation-on-tupleset",
                            e.span(),
                            format!(
                                "`{}` does not exist on `{}`, which is of type `{ty}`",
                                target.name, tupleset.name
                            ),
                        );
                        self.diags.push(d);
                    }
                }
            }
            Some(_) => self.diags.push(not_direct(tupleset.span)),
        }
    }

    /// Reports the relations without an entry point (see the module docs).
    fn entry_points(&mut self, types: &[&'a TypeDef]) {
        let firsts: Vec<&TypeDef> = types
            .iter()
            .copied()
            .filter(|t| self.types.get(t.name.name.as_str()).is_some_and(|f| std::ptr::eq(*f, *t)))
            .collect();
        let mut entry: HashSet<(&str, &str)> = HashSet::new();
        loop {
            let mut changed = false;
            for t in &firsts {
                for m in &t.members {
                    let Some(name) = member_name(m) else { continue };
                    if !entry.contains(&(t.name.name.as_str(), name)) && self.has_entry(t, m, &entry) {
                        entry.insert((t.name.name.as_str(), name));
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for t in &firsts {
            for m in &t.members {
                let (name, span) = match m {
                    Member::Relation(r) => (&r.name.name, r.name.span),
                    Member::Permission(p) => (&p.name.name, p.name.span),
                    Member::Constraint(_) => continue,
                };
                if entry.contains(&(t.name.name.as_str(), name.as_str())) {
                    continue;
                }
                let why = if self.reaches_loop(t, name) {
                    "it only leads around a loop"
                } else {
                    "it has no entry point"
                };
                let d = Diagnostic::new(
                    "no-entrypoint",
                    span,
                    format!("relation `{name}` of type `{}` can never hold: {why}", t.name.name),
                )
                .with_help(
                    "make it, or a relation it depends on, directly assignable to a type such as `[user]`",
                );
                self.diags.push(d);
            }
        }
    }

    fn has_entry(&self, t: &TypeDef, m: &Member, entry: &HashSet<(&str, &str)>) -> bool {
        match m {
            Member::Relation(r) => match &r.rewrite {
                None => direct_entry(&r.subjects, entry),
                Some(e) => self.expr_entry(t, Some(r), e, entry),
            },
            Member::Permission(p) => self.expr_entry(t, None, &p.expr, entry),
            Member::Constraint(_) => true,
        }
    }

    fn expr_entry(
        &self,
        t: &TypeDef,
        r: Option<&RelationDef>,
        e: &Expr,
        entry: &HashSet<(&str, &str)>,
    ) -> bool {
        match e {
            Expr::This(_) => r.is_some_and(|r| direct_entry(&r.subjects, entry)),
            Expr::Ref(x) => entry.contains(&(t.name.name.as_str(), x.name.as_str())),
            Expr::Arrow { tupleset, target, .. } => match self.member(t, &tupleset.name) {
                Some(Member::Relation(ts)) => ts.subjects.iter().any(|s| {
                    s.kind == SubjectKind::Direct
                        && entry.contains(&(s.ty.name.as_str(), target.name.as_str()))
                }),
                _ => false,
            },
            Expr::Union(v) => v.iter().any(|x| self.expr_entry(t, r, x, entry)),
            Expr::Intersection(v) => v.iter().all(|x| self.expr_entry(t, r, x, entry)),
            Expr::Exclusion(a, b) => self.expr_entry(t, r, a, entry) && self.expr_entry(t, r, b, entry),
            Expr::Nil(_) => false,
        }
    }

    /// Whether following the computed relations of `start` (same type) can go around a loop.
    fn reaches_loop(&self, t: &TypeDef, start: &str) -> bool {
        let refs = |name: &str| -> Vec<&str> {
            let mut out = Vec::new();
            let mut todo: Vec<&Expr> = match self.member(t, name) {
                Some(Member::Relation(r)) => r.rewrite.iter().collect(),
                Some(Member::Permission(p)) => vec![&p.expr],
                _ => Vec::new(),
            };
            while let Some(e) = todo.pop() {
                match e {
                    Expr::Ref(x) => out.push(x.name.as_str()),
                    Expr::Union(v) | Expr::Intersection(v) => todo.extend(v),
                    Expr::Exclusion(a, b) => todo.extend([a.as_ref(), b.as_ref()]),
                    _ => {}
                }
            }
            out
        };
        // Iterative depth-first search; a node met again while still on the path closes a loop.
        let mut on_path: HashSet<&str> = HashSet::new();
        let mut done: HashSet<&str> = HashSet::new();
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(start, refs(start))];
        on_path.insert(start);
        while let Some((node, next)) = stack.last_mut() {
            match next.pop() {
                Some(n) if on_path.contains(n) => return true,
                Some(n) if !done.contains(n) && self.member(t, n).is_some() => {
                    on_path.insert(n);
                    let r = refs(n);
                    stack.push((n, r));
                }
                Some(_) => {}
                None => {
                    let node = *node;
                    on_path.remove(node);
                    done.insert(node);
                    stack.pop();
                }
            }
        }
        false
    }
}

fn direct_entry(subjects: &[SubjectType], entry: &HashSet<(&str, &str)>) -> bool {
    subjects.iter().any(|s| match &s.kind {
        SubjectKind::Direct | SubjectKind::Wildcard => true,
        SubjectKind::Userset(rel) => entry.contains(&(s.ty.name.as_str(), rel.name.as_str())),
    })
}

fn restriction_text(s: &SubjectType) -> String {
    let base = match &s.kind {
        SubjectKind::Direct => s.ty.name.clone(),
        SubjectKind::Wildcard => format!("{}:*", s.ty.name),
        SubjectKind::Userset(r) => format!("{}#{}", s.ty.name, r.name),
    };
    match &s.condition {
        Some(c) => format!("{base} with {}", c.name),
        None => base,
    }
}

mod server;

#[cfg(test)]
mod tests;
