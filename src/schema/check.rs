//! Name resolution and type checking: AST → [`Schema`], with every error at once.

use super::condition::CompiledCondition;
use super::graph::SchemaGraph;
use super::*;
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::syntax::ast::{self, Expr, Item, Member, SubjectKind};
use std::collections::HashMap;

/// Resolves and checks a parsed schema.
pub fn compile(schema: &ast::Schema) -> Result<Schema, Diagnostics> {
    let mut cx = Checker { diags: Vec::new() };
    let out = cx.run(schema);
    if cx.diags.is_empty() {
        Ok(out)
    } else {
        Err(Diagnostics(cx.diags))
    }
}

struct Checker {
    diags: Vec<Diagnostic>,
}

impl Checker {
    fn run(&mut self, schema: &ast::Schema) -> Schema {
        let mut out = Schema {
            types: Vec::new(),
            conditions: Vec::new(),
            warnings: Vec::new(),
            type_ids: FxHashMap::default(),
            condition_ids: FxHashMap::default(),
        };
        let mut type_spans: HashMap<String, Span> = HashMap::new();
        let mut cond_spans: HashMap<String, Span> = HashMap::new();
        let mut type_asts = Vec::new();
        // Pass 1: declare types, their members and conditions.
        for item in &schema.items {
            match item {
                Item::Type(t) => {
                    if let Some(first) = type_spans.get(&t.name.name) {
                        self.diags.push(
                            Diagnostic::new(
                                "duplicate-type",
                                t.name.span,
                                format!("type `{}` is defined twice", t.name.name),
                            )
                            .with_related(*first, "first defined here")
                            .with_help("rename one of them or merge their members"),
                        );
                        continue;
                    }
                    type_spans.insert(t.name.name.clone(), t.name.span);
                    let id = out.types.len() as TypeId;
                    out.type_ids.insert(t.name.name.clone(), id);
                    out.types.push(self.declare_type(t));
                    type_asts.push(t);
                }
                Item::Condition(c) => {
                    if let Some(first) = cond_spans.get(&c.name.name) {
                        self.diags.push(
                            Diagnostic::new(
                                "duplicate-condition",
                                c.name.span,
                                format!("condition `{}` is defined twice", c.name.name),
                            )
                            .with_related(*first, "first defined here")
                            .with_help("rename one of them"),
                        );
                        continue;
                    }
                    cond_spans.insert(c.name.name.clone(), c.name.span);
                    let params: Vec<(String, ParamType)> =
                        c.params.iter().map(|p| (p.name.name.clone(), p.ty.clone())).collect();
                    match CompiledCondition::compile(&c.name.name, c.doc.clone(), params, &c.expr) {
                        Ok(compiled) => {
                            self.check_free_variables(c, &compiled);
                            out.condition_ids.insert(c.name.name.clone(), out.conditions.len() as CondId);
                            out.conditions.push(compiled);
                        }
                        Err(msg) => self.diags.push(
                            Diagnostic::new(
                                "invalid-condition",
                                c.expr_span.0,
                                format!(
                                    "the expression of condition `{}` is not valid CEL: {msg}",
                                    c.name.name
                                ),
                            )
                            .with_help("conditions are written in CEL, e.g. `region in allowed_regions`"),
                        ),
                    }
                }
            }
        }
        // Pass 2: resolve subject types, then expressions (which need every relation's subjects).
        for (tid, t) in type_asts.iter().enumerate() {
            for m in &t.members {
                if let Member::Relation(r) = m {
                    let allowed = self.resolve_subjects(&out, r);
                    if let Some(rid) = out.types[tid].relation_id(&r.name.name) {
                        out.types[tid].relations[rid as usize].allowed = allowed;
                    }
                }
            }
        }
        for (tid, t) in type_asts.iter().enumerate() {
            for m in &t.members {
                let (name, expr, is_relation) = match m {
                    Member::Relation(r) => (&r.name, r.rewrite.as_ref(), true),
                    Member::Permission(p) => (&p.name, Some(&p.expr), false),
                    Member::Constraint(c) => {
                        if let Some(c) = self.resolve_constraint(&out.types[tid], c) {
                            out.types[tid].constraints.push(c);
                        }
                        continue;
                    }
                };
                let Some(rid) = out.types[tid].relation_id(&name.name) else { continue };
                if out.types[tid].relations[rid as usize].span != name.span {
                    continue; // a duplicate member, already reported
                }
                let rewrite = match expr {
                    Some(e) => self.resolve_expr(&out, tid as TypeId, is_relation, e),
                    None => Rewrite::This,
                };
                out.types[tid].relations[rid as usize].rewrite = rewrite;
            }
        }
        if self.diags.is_empty() {
            out.warnings = ungrounded(&out);
        }
        out
    }

    fn declare_type(&mut self, t: &ast::TypeDef) -> TypeDef {
        let mut def = TypeDef {
            name: t.name.name.clone(),
            doc: t.doc.clone(),
            relations: Vec::new(),
            constraints: Vec::new(),
            rel_ids: FxHashMap::default(),
            span: t.name.span,
        };
        for m in &t.members {
            let (name, doc, kind) = match m {
                Member::Relation(r) => (&r.name, &r.doc, RelKind::Relation),
                Member::Permission(p) => (&p.name, &p.doc, RelKind::Permission),
                Member::Constraint(_) => continue,
            };
            if let Some(&first) = def.rel_ids.get(&name.name) {
                let first_span = def.relations[first as usize].span;
                self.diags.push(
                    Diagnostic::new(
                        "duplicate-member",
                        name.span,
                        format!("`{}` is defined twice in type `{}`", name.name, t.name.name),
                    )
                    .with_related(first_span, "first defined here")
                    .with_help("a type's relations and permissions share one namespace; rename one"),
                );
                continue;
            }
            def.rel_ids.insert(name.name.clone(), def.relations.len() as RelId);
            def.relations.push(RelationDef {
                name: name.name.clone(),
                doc: doc.clone(),
                kind,
                allowed: Vec::new(),
                rewrite: Rewrite::Nil,
                span: name.span,
            });
        }
        def
    }

    fn unknown_type(&mut self, out: &Schema, ident: &ast::Ident) {
        self.diags.push(
            Diagnostic::new("unknown-type", ident.span, format!("unknown type `{}`", ident.name))
                .with_label("not defined in this schema")
                .with_help_opt(did_you_mean(&ident.name, out.type_names())),
        );
    }

    fn resolve_subjects(&mut self, out: &Schema, r: &ast::RelationDef) -> Vec<AllowedSubject> {
        let mut allowed: Vec<AllowedSubject> = Vec::new();
        for s in &r.subjects {
            let Some(ty) = out.type_id(&s.ty.name) else {
                self.unknown_type(out, &s.ty);
                continue;
            };
            let kind = match &s.kind {
                SubjectKind::Direct => AllowedKind::Direct,
                SubjectKind::Wildcard => AllowedKind::Wildcard,
                SubjectKind::Userset(rel) => match out.type_def(ty).relation_id(&rel.name) {
                    Some(rid) => AllowedKind::Userset(rid),
                    None => {
                        self.diags.push(
                            Diagnostic::new(
                                "unknown-relation",
                                rel.span,
                                format!("type `{}` has no relation or permission `{}`", s.ty.name, rel.name),
                            )
                            .with_help_opt(did_you_mean(&rel.name, out.type_def(ty).relation_names())),
                        );
                        continue;
                    }
                },
            };
            let condition = match &s.condition {
                Some(c) => match out.condition_id(&c.name) {
                    Some(id) => Some(id),
                    None => {
                        self.diags.push(
                            Diagnostic::new(
                                "unknown-condition",
                                c.span,
                                format!("unknown condition `{}`", c.name),
                            )
                            .with_help_opt(
                                did_you_mean(&c.name, out.conditions.iter().map(|c| c.name.as_str()))
                                    .or_else(|| {
                                        Some(format!("declare it: `condition {}(...) {{ ... }}`", c.name))
                                    }),
                            ),
                        );
                        continue;
                    }
                },
                None => None,
            };
            let a = AllowedSubject { ty, kind, condition, expiration: s.expiration };
            if allowed.contains(&a) {
                self.diags.push(
                    Diagnostic::new(
                        "duplicate-subject",
                        s.span.0,
                        format!("subject type is listed twice in relation `{}`", r.name.name),
                    )
                    .with_help("remove one of them"),
                );
                continue;
            }
            allowed.push(a);
        }
        allowed
    }

    fn resolve_expr(&mut self, out: &Schema, ty: TypeId, in_relation: bool, e: &Expr) -> Rewrite {
        let tdef = out.type_def(ty);
        match e {
            Expr::Nil(_) => Rewrite::Nil,
            Expr::This(span) => {
                if !in_relation {
                    self.diags.push(
                        Diagnostic::new("this-in-permission", span.0, "`this` used in a permission")
                            .with_help(
                                "`this` stands for a relation's stored relationships; \
                                 name the relation instead, or make this a relation with subject types",
                            ),
                    );
                }
                Rewrite::This
            }
            Expr::Ref(name) => match tdef.relation_id(&name.name) {
                Some(r) => Rewrite::Computed(r),
                // `self`: the object itself as a subject (SpiceDB's `use self`), unless the type
                // has a relation of that name.
                None if name.name == "self" => Rewrite::SelfRef,
                None => {
                    self.diags.push(
                        Diagnostic::new(
                            "unknown-relation",
                            name.span,
                            format!("type `{}` has no relation or permission `{}`", tdef.name, name.name),
                        )
                        .with_help_opt(did_you_mean(&name.name, tdef.relation_names())),
                    );
                    Rewrite::Nil
                }
            },
            Expr::Arrow { tupleset, target, mode } => self.resolve_arrow(out, ty, tupleset, target, *mode),
            Expr::Union(items) => {
                Rewrite::Union(items.iter().map(|i| self.resolve_expr(out, ty, in_relation, i)).collect())
            }
            Expr::Intersection(items) => Rewrite::Intersection(
                items.iter().map(|i| self.resolve_expr(out, ty, in_relation, i)).collect(),
            ),
            Expr::Exclusion(a, b) => Rewrite::Exclusion(
                Box::new(self.resolve_expr(out, ty, in_relation, a)),
                Box::new(self.resolve_expr(out, ty, in_relation, b)),
            ),
        }
    }

    fn resolve_arrow(
        &mut self,
        out: &Schema,
        ty: TypeId,
        tupleset: &ast::Ident,
        target: &ast::Ident,
        mode: ArrowMode,
    ) -> Rewrite {
        let tdef = out.type_def(ty);
        let Some(ts) = tdef.relation_id(&tupleset.name) else {
            self.diags.push(
                Diagnostic::new(
                    "unknown-relation",
                    tupleset.span,
                    format!("type `{}` has no relation `{}` to follow", tdef.name, tupleset.name),
                )
                .with_help_opt(did_you_mean(
                    &tupleset.name,
                    tdef.relations.iter().filter(|r| r.kind == RelKind::Relation).map(|r| r.name.as_str()),
                )),
            );
            return Rewrite::Nil;
        };
        let ts_def = &tdef.relations[ts as usize];
        if ts_def.kind == RelKind::Permission {
            self.diags.push(
                Diagnostic::new(
                    "arrow-through-permission",
                    tupleset.span,
                    format!("`{}` is a permission; an arrow can only follow a relation", tupleset.name),
                )
                .with_help(
                    "arrows walk stored relationships; follow the relation the permission is built from",
                ),
            );
            return Rewrite::Nil;
        }
        let mut targets = vec![None; out.types.len()];
        let mut subject_types: Vec<TypeId> = ts_def.allowed.iter().map(|a| a.ty).collect();
        subject_types.dedup();
        for &st in &subject_types {
            targets[st as usize] = out.type_def(st).relation_id(&target.name);
        }
        if !subject_types.is_empty() && subject_types.iter().all(|&st| targets[st as usize].is_none()) {
            let names: Vec<&str> = subject_types.iter().map(|&t| out.type_def(t).name.as_str()).collect();
            let candidates: Vec<&str> =
                subject_types.iter().flat_map(|&t| out.type_def(t).relation_names()).collect();
            self.diags.push(
                Diagnostic::new(
                    "unknown-relation",
                    target.span,
                    format!(
                        "`{}` leads to {}, which {} no relation or permission `{}`",
                        tupleset.name,
                        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                        if names.len() == 1 { "has" } else { "have" },
                        target.name
                    ),
                )
                .with_help_opt(did_you_mean(&target.name, candidates)),
            );
        }
        Rewrite::Arrow { tupleset: ts, target_name: target.name.clone(), targets, mode }
    }

    fn resolve_constraint(&mut self, tdef: &TypeDef, c: &ast::ConstraintDef) -> Option<Constraint> {
        let rel = |this: &mut Self, i: &ast::Ident| -> Option<RelId> {
            match tdef.relation_id(&i.name) {
                Some(r) if tdef.relations[r as usize].kind == RelKind::Relation => Some(r),
                Some(_) => {
                    this.diags.push(
                        Diagnostic::new(
                            "constraint-on-permission",
                            i.span,
                            format!("`{}` is a permission; constraints apply to stored relations", i.name),
                        )
                        .with_help("constrain the relations the permission is built from"),
                    );
                    None
                }
                None => {
                    this.diags.push(
                        Diagnostic::new(
                            "unknown-relation",
                            i.span,
                            format!("type `{}` has no relation `{}`", tdef.name, i.name),
                        )
                        .with_help_opt(did_you_mean(&i.name, tdef.relation_names())),
                    );
                    None
                }
            }
        };
        let list = |this: &mut Self, rels: &[ast::Ident]| -> Option<Vec<RelId>> {
            let ids: Vec<Option<RelId>> = rels.iter().map(|r| rel(this, r)).collect();
            ids.into_iter().collect()
        };
        match &c.kind {
            ast::ConstraintKind::AtMost { count, relation } => {
                Some(Constraint::AtMost { count: *count, relation: rel(self, relation)? })
            }
            ast::ConstraintKind::AtLeast { count, relation } => {
                Some(Constraint::AtLeast { count: *count, relation: rel(self, relation)? })
            }
            ast::ConstraintKind::OneOf { relations } => {
                let ids = list(self, relations);
                self.repeated_in(relations, "`one of` lists it twice", "list each relation once");
                Some(Constraint::OneOf { relations: ids? })
            }
            ast::ConstraintKind::Requires { relation, required } => {
                let a = rel(self, relation);
                let b = list(self, required);
                if let Some(same) = required.iter().find(|r| r.name == relation.name) {
                    self.diags.push(
                        Diagnostic::new(
                            "constraint-repeats-relation",
                            same.span,
                            format!("`{0}` requires itself, which always holds", relation.name),
                        )
                        .with_related(relation.span, "the same relation")
                        .with_help("name the relations that holders of this one must also hold"),
                    );
                }
                self.repeated_in(required, "`requires` lists it twice", "list each relation once");
                Some(Constraint::Requires { relation: a?, required: b? })
            }
            ast::ConstraintKind::OnObject { relations, mode, guards } => {
                let ids = list(self, relations);
                let guard_ids = list(self, guards);
                let both: Vec<&ast::Ident> = relations.iter().chain(guards).collect();
                let word = if *mode == OnMode::Only { "only on" } else { "not on" };
                self.repeated_in(
                    both,
                    &format!("the relation appears twice in this `{word}` constraint"),
                    "a relation either is constrained (before the keyword) or guards (after it)",
                );
                Some(Constraint::OnObject { relations: ids?, mode: *mode, guards: guard_ids? })
            }
        }
    }

    /// Reports a relation named twice in one constraint.
    fn repeated_in<'i>(&mut self, names: impl IntoIterator<Item = &'i ast::Ident>, label: &str, help: &str) {
        let mut seen: Vec<&ast::Ident> = Vec::new();
        for n in names {
            if let Some(first) = seen.iter().find(|f| f.name == n.name) {
                self.diags.push(
                    Diagnostic::new(
                        "constraint-repeats-relation",
                        n.span,
                        format!("`{}` is named twice in one constraint", n.name),
                    )
                    .with_label(label)
                    .with_related(first.span, "first named here")
                    .with_help(help),
                );
            } else {
                seen.push(n);
            }
        }
    }

    fn check_free_variables(&mut self, c: &ast::ConditionDef, compiled: &CompiledCondition) {
        for v in compiled.free_variables() {
            // Comprehension macros bind their variable as the first argument: `.all(x, ...)`.
            let bound = c.expr.contains(&format!("({v},")) || c.expr.contains(&format!("({v} ,"));
            if !bound {
                self.diags.push(
                    Diagnostic::new(
                        "unknown-parameter",
                        c.expr_span.0,
                        format!("condition `{}` uses `{v}`, which is not one of its parameters", c.name.name),
                    )
                    .with_help(format!("declare it: `{v}: string` (or its type) in the parameter list")),
                );
            }
        }
    }
}

/// Warns about permissions that can never be granted because every branch of them leads back to
/// themselves (SpiceDB and OpenFGA accept them; they are always denied). Recursion through an
/// exclusion is accepted too: evaluation answers wherever the data does not cycle through the
/// exclusion and fails with `EvalError::ExclusionCycle` where it does.
fn ungrounded(out: &Schema) -> Vec<Diagnostic> {
    let graph = SchemaGraph::build(out);
    let grounded = graph.grounded(out);
    let mut warnings = Vec::new();
    for (t, tdef) in out.types.iter().enumerate() {
        for (r, rdef) in tdef.relations.iter().enumerate() {
            let node = (t as TypeId, r as RelId);
            if !grounded.contains(&node) && graph.in_cycle(node) {
                warnings.push(
                    Diagnostic::warning(
                        "ungrounded-permission",
                        rdef.span,
                        format!(
                            "`{}#{}` refers back to itself and can never be granted",
                            tdef.name, rdef.name
                        ),
                    )
                    .with_label("every branch of this definition leads back here")
                    .with_help(
                        "give the recursion a base case, e.g. `permission view = viewer + parent->view`",
                    ),
                );
            }
        }
    }
    warnings
}
