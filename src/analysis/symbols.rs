//! The symbol table of a parsed schema: every definition (types, relations, permissions,
//! conditions) and every place a name refers to one, with byte spans into the source text.

use crate::syntax::ast::{self, ConstraintKind, Expr, Ident, Item, Member, Span, SubjectKind};
use crate::syntax::format;
use std::collections::HashMap;

/// What a definition defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymbolKind {
    Type,
    Relation,
    Permission,
    Condition,
}

impl SymbolKind {
    pub fn word(self) -> &'static str {
        match self {
            SymbolKind::Type => "type",
            SymbolKind::Relation => "relation",
            SymbolKind::Permission => "permission",
            SymbolKind::Condition => "condition",
        }
    }
}

/// One definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub kind: SymbolKind,
    pub name: String,
    /// The type a relation or permission belongs to.
    pub owner: Option<String>,
    /// Where the name is written in the definition.
    pub name_span: Span,
    /// The whole definition.
    pub span: Span,
    /// The doc comment.
    pub doc: Option<String>,
    /// The definition in one line of Purview's language, without its doc comment and body:
    /// `type company`, `relation viewer: user | team#member`, `permission view = viewer + editor`,
    /// `condition in_region(region: string)`.
    pub signature: String,
    /// For a relation: the types of its subjects (what an arrow from it reaches), in order.
    pub subject_types: Vec<String>,
}

/// The definitions and references of one schema.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    pub symbols: Vec<Symbol>,
    /// `(span, symbol)`, definitions included (at their name), sorted by span. A name can refer
    /// to several symbols at once: the target of `parent->view` is `view` on every type `parent`
    /// reaches.
    pub occurrences: Vec<(Span, usize)>,
}

impl Symbols {
    /// Builds the table. `text` is the source the spans point into: a name is recorded at a
    /// span only where the text there is that name (importers may make up nodes).
    pub fn build(schema: &ast::Schema, text: &str) -> Symbols {
        let mut b = Builder {
            text,
            out: Symbols::default(),
            types: HashMap::new(),
            members: HashMap::new(),
            conditions: HashMap::new(),
        };
        b.definitions(schema);
        b.references(schema);
        b.out.occurrences.sort_by_key(|(span, sym)| (span.start, span.end, *sym));
        b.out.occurrences.dedup();
        b.out
    }

    /// The symbols the name at byte `offset` refers to (or defines).
    pub fn at(&self, offset: usize) -> (Option<Span>, Vec<usize>) {
        let mut span = None;
        let mut found = Vec::new();
        for (s, sym) in &self.occurrences {
            if s.start <= offset && offset <= s.end && span.is_none_or(|sp: Span| sp == *s) {
                span = Some(*s);
                found.push(*sym);
            }
        }
        (span, found)
    }

    /// `syms` and every symbol that shares a reference with one of them, until nothing is added:
    /// renaming `view` in `parent->view` renames `view` on every type `parent` reaches.
    pub fn linked(&self, syms: &[usize]) -> Vec<usize> {
        let mut set: Vec<usize> = syms.to_vec();
        loop {
            let mut added = false;
            let mut i = 0;
            while i < self.occurrences.len() {
                let span = self.occurrences.get(i).map(|(s, _)| *s).unwrap_or_default();
                let group: Vec<usize> = self
                    .occurrences
                    .iter()
                    .skip(i)
                    .take_while(|(s, _)| *s == span)
                    .map(|(_, x)| *x)
                    .collect();
                i += group.len().max(1);
                if group.iter().any(|g| set.contains(g)) {
                    for g in group {
                        if !set.contains(&g) {
                            set.push(g);
                            added = true;
                        }
                    }
                }
            }
            if !added {
                set.sort_unstable();
                return set;
            }
        }
    }

    /// Every span where one of `syms` is written, definitions included, in order.
    pub fn spans_of(&self, syms: &[usize]) -> Vec<Span> {
        let mut spans: Vec<Span> =
            self.occurrences.iter().filter(|(_, s)| syms.contains(s)).map(|(span, _)| *span).collect();
        spans.dedup();
        spans
    }

    /// The relations and permissions of type `ty`.
    pub fn members_of<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a Symbol> + 'a {
        self.symbols.iter().filter(move |s| s.owner.as_deref() == Some(ty))
    }

    pub fn of_kind(&self, kind: SymbolKind) -> impl Iterator<Item = &Symbol> + '_ {
        self.symbols.iter().filter(move |s| s.kind == kind)
    }

    /// The member `name` of type `ty`.
    pub fn member(&self, ty: &str, name: &str) -> Option<&Symbol> {
        self.symbols.iter().find(|s| s.owner.as_deref() == Some(ty) && s.name == name)
    }
}

struct Builder<'t> {
    text: &'t str,
    out: Symbols,
    types: HashMap<String, usize>,
    members: HashMap<(String, String), usize>,
    conditions: HashMap<String, usize>,
}

impl Builder<'_> {
    fn push(&mut self, sym: Symbol) -> usize {
        let id = self.out.symbols.len();
        let span = sym.name_span;
        let written = self.text.get(span.start..span.end) == Some(sym.name.as_str());
        self.out.symbols.push(sym);
        if written {
            self.out.occurrences.push((span, id));
        }
        id
    }

    fn definitions(&mut self, schema: &ast::Schema) {
        for item in &schema.items {
            match item {
                Item::Type(t) => {
                    let id = self.push(Symbol {
                        kind: SymbolKind::Type,
                        name: t.name.name.clone(),
                        owner: None,
                        name_span: t.name.span,
                        span: t.span.0,
                        doc: t.doc.clone(),
                        signature: format!("type {}", t.name.name),
                        subject_types: Vec::new(),
                    });
                    self.types.entry(t.name.name.clone()).or_insert(id);
                    for m in &t.members {
                        let sym = match m {
                            Member::Relation(r) => {
                                let subjects: Vec<String> = r.subjects.iter().map(format::subject).collect();
                                let mut signature =
                                    format!("relation {}: {}", r.name.name, subjects.join(" | "));
                                if let Some(e) = &r.rewrite {
                                    signature.push_str(" = ");
                                    signature.push_str(&format::expr(e));
                                }
                                let mut reach: Vec<String> = Vec::new();
                                for s in &r.subjects {
                                    if !reach.contains(&s.ty.name) {
                                        reach.push(s.ty.name.clone());
                                    }
                                }
                                Symbol {
                                    kind: SymbolKind::Relation,
                                    name: r.name.name.clone(),
                                    owner: Some(t.name.name.clone()),
                                    name_span: r.name.span,
                                    span: r.span.0,
                                    doc: r.doc.clone(),
                                    signature,
                                    subject_types: reach,
                                }
                            }
                            Member::Permission(p) => Symbol {
                                kind: SymbolKind::Permission,
                                name: p.name.name.clone(),
                                owner: Some(t.name.name.clone()),
                                name_span: p.name.span,
                                span: p.span.0,
                                doc: p.doc.clone(),
                                signature: format!("permission {} = {}", p.name.name, format::expr(&p.expr)),
                                subject_types: Vec::new(),
                            },
                            Member::Constraint(_) => continue,
                        };
                        let key = (t.name.name.clone(), sym.name.clone());
                        let id = self.push(sym);
                        self.members.entry(key).or_insert(id);
                    }
                }
                Item::Condition(c) => {
                    let params: Vec<String> =
                        c.params.iter().map(|p| format!("{}: {}", p.name.name, p.ty)).collect();
                    let id = self.push(Symbol {
                        kind: SymbolKind::Condition,
                        name: c.name.name.clone(),
                        owner: None,
                        name_span: c.name.span,
                        span: c.span.0,
                        doc: c.doc.clone(),
                        signature: format!("condition {}({})", c.name.name, params.join(", ")),
                        subject_types: Vec::new(),
                    });
                    self.conditions.entry(c.name.name.clone()).or_insert(id);
                }
            }
        }
    }

    fn refer(&mut self, ident: &Ident, sym: Option<usize>) {
        let written = self.text.get(ident.span.start..ident.span.end) == Some(ident.name.as_str());
        if let (Some(sym), true) = (sym, written) {
            self.out.occurrences.push((ident.span, sym));
        }
    }

    fn member(&self, ty: &str, name: &str) -> Option<usize> {
        self.members.get(&(ty.to_string(), name.to_string())).copied()
    }

    fn references(&mut self, schema: &ast::Schema) {
        for item in &schema.items {
            let Item::Type(t) = item else { continue };
            let ty = t.name.name.as_str();
            for m in &t.members {
                match m {
                    Member::Relation(r) => {
                        for s in &r.subjects {
                            self.refer(&s.ty, self.types.get(&s.ty.name).copied());
                            if let SubjectKind::Userset(rel) = &s.kind {
                                self.refer(rel, self.member(&s.ty.name, &rel.name));
                            }
                            if let Some(c) = &s.condition {
                                self.refer(c, self.conditions.get(&c.name).copied());
                            }
                        }
                        if let Some(e) = &r.rewrite {
                            self.expr(ty, e);
                        }
                    }
                    Member::Permission(p) => self.expr(ty, &p.expr),
                    Member::Constraint(c) => {
                        let names: Vec<&Ident> = match &c.kind {
                            ConstraintKind::AtMost { relation, .. }
                            | ConstraintKind::AtLeast { relation, .. } => {
                                vec![relation]
                            }
                            ConstraintKind::OneOf { relations } => relations.iter().collect(),
                            ConstraintKind::Requires { relation, required } => {
                                std::iter::once(relation).chain(required).collect()
                            }
                            ConstraintKind::OnObject { relations, guards, .. } => {
                                relations.iter().chain(guards).collect()
                            }
                        };
                        for n in names {
                            self.refer(n, self.member(ty, &n.name));
                        }
                    }
                }
            }
        }
    }

    fn expr(&mut self, ty: &str, e: &Expr) {
        match e {
            Expr::Ref(i) => self.refer(i, self.member(ty, &i.name)),
            Expr::This(_) | Expr::Nil(_) => {}
            Expr::Arrow { tupleset, target, .. } => {
                let via = self.member(ty, &tupleset.name);
                self.refer(tupleset, via);
                let reach = via
                    .and_then(|v| self.out.symbols.get(v))
                    .map(|s| s.subject_types.clone())
                    .unwrap_or_default();
                for r in reach {
                    if let Some(t) = self.member(&r, &target.name) {
                        self.refer(target, Some(t));
                    }
                }
            }
            Expr::Union(v) | Expr::Intersection(v) => {
                for x in v {
                    self.expr(ty, x);
                }
            }
            Expr::Exclusion(a, b) => {
                self.expr(ty, a);
                self.expr(ty, b);
            }
        }
    }
}
