//! Random schemas and relationship graphs for property tests.
//!
//! Schemas are built as ASTs (independent of any parser): a `user` type, a recursive `group`
//! type, and resource types with relations over users, wildcards, group usersets, conditions,
//! expiration and a recursive `parent` arrow, plus permissions combining them with union,
//! intersection, exclusion, `nil` and arrows (any/all).

use proptest::prelude::*;
use purview::schema::{self, AllowedKind, RelKind, Schema};
use purview::store::{CaveatRef, ObjectRef, Relationship, SubjectRef};
use purview::syntax::ast::{self, ArrowMode, Expr, Ident, Item, Member, ParamType, SubjectKind, SubjectType};

fn id(s: &str) -> Ident {
    Ident::new(s, ast::Span::default())
}

/// One allowed subject kind of a generated relation.
#[derive(Clone, Debug)]
pub enum SubjGen {
    User,
    UserWild,
    GroupMember,
    UserCond,
    UserExpiring,
}

#[derive(Clone, Debug)]
pub enum ExprGen {
    Rel(usize),
    Perm(usize),
    Union(Vec<ExprGen>),
    Inter(Vec<ExprGen>),
    Excl(Box<ExprGen>, Box<ExprGen>),
    ParentArrow(usize, ArrowMode),
    Nil,
}

#[derive(Clone, Debug)]
pub struct SchemaGen {
    /// For each of the relations r0..: the subject kinds it allows.
    pub relations: Vec<Vec<SubjGen>>,
    /// Permissions p0..; pN may refer to relations and to permissions before it, and to any
    /// permission through the `parent` arrow (recursion).
    pub permissions: Vec<ExprGen>,
    pub group_wildcard: bool,
}

fn subj_gen() -> impl Strategy<Value = SubjGen> {
    prop_oneof![
        3 => Just(SubjGen::User),
        1 => Just(SubjGen::UserWild),
        2 => Just(SubjGen::GroupMember),
        3 => Just(SubjGen::UserCond),
        1 => Just(SubjGen::UserExpiring),
    ]
}

fn expr_gen(nrel: usize, nperm_before: usize, nperm: usize) -> impl Strategy<Value = ExprGen> {
    let mut leaves: Vec<BoxedStrategy<ExprGen>> = vec![(0..nrel).prop_map(ExprGen::Rel).boxed()];
    if nperm_before > 0 {
        leaves.push((0..nperm_before).prop_map(ExprGen::Perm).boxed());
    }
    leaves.push(
        (0..nperm, prop_oneof![3 => Just(ArrowMode::Any), 1 => Just(ArrowMode::All)])
            .prop_map(|(p, m)| ExprGen::ParentArrow(p, m))
            .boxed(),
    );
    leaves.push(Just(ExprGen::Nil).boxed());
    let leaf = proptest::strategy::Union::new(leaves);
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(ExprGen::Union),
            prop::collection::vec(inner.clone(), 2..3).prop_map(ExprGen::Inter),
            (inner.clone(), inner).prop_map(|(a, b)| ExprGen::Excl(Box::new(a), Box::new(b))),
        ]
    })
}

pub fn schema_gen() -> impl Strategy<Value = SchemaGen> {
    (1usize..4, 1usize..4, any::<bool>()).prop_flat_map(|(nrel, nperm, gw)| {
        let rels = prop::collection::vec(prop::collection::vec(subj_gen(), 1..4), nrel);
        let perms: Vec<BoxedStrategy<ExprGen>> =
            (0..nperm).map(|i| expr_gen(nrel, i, nperm).boxed()).collect();
        (rels, perms).prop_map(move |(mut relations, permissions)| {
            for r in &mut relations {
                let mut seen = Vec::new();
                r.retain(|s| {
                    let k = format!("{s:?}");
                    let new = !seen.contains(&k);
                    seen.push(k);
                    new
                });
            }
            SchemaGen { relations, permissions, group_wildcard: gw }
        })
    })
}

fn lower_expr(e: &ExprGen) -> Expr {
    match e {
        ExprGen::Rel(i) => Expr::Ref(id(&format!("r{i}"))),
        ExprGen::Perm(i) => Expr::Ref(id(&format!("p{i}"))),
        ExprGen::Union(v) => Expr::Union(v.iter().map(lower_expr).collect()),
        ExprGen::Inter(v) => Expr::Intersection(v.iter().map(lower_expr).collect()),
        ExprGen::Excl(a, b) => Expr::Exclusion(Box::new(lower_expr(a)), Box::new(lower_expr(b))),
        ExprGen::ParentArrow(p, mode) => {
            Expr::Arrow { tupleset: id("parent"), target: id(&format!("p{p}")), mode: *mode }
        }
        ExprGen::Nil => Expr::Nil(Default::default()),
    }
}

fn subject(ty: &str, kind: SubjectKind, condition: Option<&str>, expiration: bool) -> SubjectType {
    SubjectType { ty: id(ty), kind, condition: condition.map(id), expiration, span: Default::default() }
}

impl SchemaGen {
    pub fn to_ast(&self) -> ast::Schema {
        let user = ast::TypeDef::new(id("user"), None, vec![], Default::default());
        let mut group_subjects = vec![
            subject("user", SubjectKind::Direct, None, false),
            subject("group", SubjectKind::Userset(id("member")), None, false),
        ];
        if self.group_wildcard {
            group_subjects.push(subject("user", SubjectKind::Wildcard, None, false));
        }
        let group = ast::TypeDef::new(
            id("group"),
            None,
            vec![Member::Relation(ast::RelationDef {
                name: id("member"),
                doc: None,
                subjects: group_subjects,
                rewrite: None,
                trivia: Default::default(),
                span: Default::default(),
            })],
            Default::default(),
        );
        let mut members = vec![Member::Relation(ast::RelationDef {
            name: id("parent"),
            doc: None,
            subjects: vec![
                subject("doc", SubjectKind::Direct, None, false),
                subject("doc", SubjectKind::Direct, Some("big"), false),
            ],
            rewrite: None,
            trivia: Default::default(),
            span: Default::default(),
        })];
        for (i, r) in self.relations.iter().enumerate() {
            let subjects = r
                .iter()
                .map(|s| match s {
                    SubjGen::User => subject("user", SubjectKind::Direct, None, false),
                    SubjGen::UserWild => subject("user", SubjectKind::Wildcard, None, false),
                    SubjGen::GroupMember => subject("group", SubjectKind::Userset(id("member")), None, false),
                    SubjGen::UserCond => subject("user", SubjectKind::Direct, Some("big"), false),
                    SubjGen::UserExpiring => subject("user", SubjectKind::Direct, None, true),
                })
                .collect();
            members.push(Member::Relation(ast::RelationDef {
                name: id(&format!("r{i}")),
                doc: None,
                subjects,
                rewrite: None,
                trivia: Default::default(),
                span: Default::default(),
            }));
        }
        for (i, p) in self.permissions.iter().enumerate() {
            members.push(Member::Permission(ast::PermissionDef {
                name: id(&format!("p{i}")),
                doc: None,
                expr: lower_expr(p),
                trivia: Default::default(),
                span: Default::default(),
            }));
        }
        let doc = ast::TypeDef::new(id("doc"), None, members, Default::default());
        let cond = ast::ConditionDef {
            name: id("big"),
            doc: None,
            params: vec![ast::Param { name: id("x"), ty: ParamType::Int, ty_span: Default::default() }],
            expr: "x > 5".into(),
            expr_span: Default::default(),
            trivia: Default::default(),
            span: Default::default(),
        };
        ast::Schema {
            items: vec![Item::Type(user), Item::Type(group), Item::Type(doc), Item::Condition(cond)],
            end_comments: vec![],
        }
    }

    /// The compiled schema, or `None` when the random expressions make it invalid (e.g. a
    /// permission that only refers back to itself).
    pub fn compile(&self) -> Option<Schema> {
        schema::compile(&self.to_ast()).ok()
    }

    /// [`SchemaGen::compile`], without the schemas that recurse through an exclusion (where
    /// data that cycles through the exclusion makes questions fail with `ExclusionCycle`; those
    /// are tested in `exclusion_cycles` and `index_diff`).
    pub fn compile_stratified(&self) -> Option<Schema> {
        self.compile().filter(|s| !schema::SchemaGraph::build(s).has_negative_cycles())
    }
}

/// Parameters of a random relationship, resolved against a compiled schema.
#[derive(Clone, Debug)]
pub struct TupleGen {
    pub object: u8,
    pub relation: u8,
    pub subject_pick: u8,
    pub subject_id: u8,
    pub context: Option<i64>,
    pub expired: bool,
}

pub fn tuple_gen() -> impl Strategy<Value = TupleGen> {
    (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), prop::option::of(0i64..10), any::<bool>()).prop_map(
        |(object, relation, subject_pick, subject_id, context, expired)| TupleGen {
            object,
            relation,
            subject_pick,
            subject_id,
            context,
            expired,
        },
    )
}

pub const USERS: u8 = 2;
pub const GROUPS: u8 = 2;
pub const DOCS: u8 = 3;

/// Turns generated parameters into a relationship the schema accepts.
pub fn relationship(schema: &Schema, t: &TupleGen) -> Relationship {
    let stored: Vec<(&str, &str)> = schema
        .types
        .iter()
        .flat_map(|td| {
            td.relations
                .iter()
                .filter(|r| r.kind == RelKind::Relation)
                .map(move |r| (td.name.as_str(), r.name.as_str()))
        })
        .collect();
    let (ty, rel) = stored[t.relation as usize % stored.len()];
    let (tid, rid) = schema.relation(ty, rel).unwrap_or((0, 0));
    let rdef = schema.rel_def(tid, rid);
    let allowed = &rdef.allowed[t.subject_pick as usize % rdef.allowed.len()];
    let sty = &schema.type_def(allowed.ty).name;
    let pool = |ty: &str| match ty {
        "user" => USERS,
        "group" => GROUPS,
        _ => DOCS,
    };
    let object = ObjectRef::new(ty, format!("{}{}", &ty[..1], t.object % pool(ty)));
    let sid = format!("{}{}", &sty[..1], t.subject_id % pool(sty));
    let subject = match allowed.kind {
        AllowedKind::Direct => SubjectRef::new(sty, sid, None),
        AllowedKind::Wildcard => SubjectRef::new(sty, "*", None),
        AllowedKind::Userset(r) => SubjectRef::new(sty, sid, Some(&schema.rel_def(allowed.ty, r).name)),
    };
    let mut r = Relationship::new(object, rel, subject);
    if allowed.condition.is_some() {
        let context = t.context.map(|x| {
            let mut m = serde_json::Map::new();
            m.insert("x".into(), x.into());
            m
        });
        r.caveat = Some(CaveatRef { name: "big".into(), context });
    }
    if allowed.expiration {
        let when = if t.expired { "2000-01-01T00:00:00Z" } else { "2200-01-01T00:00:00Z" };
        r.expires_at = purview::store::relationship::parse_time(when).ok();
    }
    r
}
