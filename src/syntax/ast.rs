//! The spanned abstract syntax tree of a Purview schema.
//!
//! Every front end (Purview's own language, SpiceDB and OpenFGA imports) lowers into these types;
//! no parser types (pest `Pair`, `Rule`) appear here. Spans are byte offsets into the source text
//! the tree was parsed from, so diagnostics of later stages can point back into that file.

use serde::{Deserialize, Serialize};

/// A half-open byte range `start..end` in one source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span that covers both.
    pub fn join(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// A name with the place it was written.
///
/// Equality ignores the span, so trees parsed from differently formatted texts compare equal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

impl Ident {
    pub fn new(name: impl Into<String>, span: Span) -> Self {
        Ident { name: name.into(), span }
    }
}

impl PartialEq for Ident {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Ident {}

/// A whole schema file: object types and conditions, in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub items: Vec<Item>,
    /// Comment lines after the last item (see [`Trivia`]).
    #[serde(default)]
    pub end_comments: Vec<String>,
}

/// The comments and blank lines around a node, kept so that formatting loses none of them.
///
/// Equality compares them: two trees that differ only in comments or blank lines differ. Every
/// comment is stored with its markers (`// text`, `/* text */`), without trailing whitespace; the
/// lines of a block comment after its first lose the indentation up to the column of its `/*`, so
/// the text does not depend on how deeply the comment was indented. In a list of comment lines
/// (`leading`, [`TypeDef::end_comments`], [`Schema::end_comments`]) an empty string stands for a
/// blank line.
///
/// Where the parser attaches a comment:
/// - A comment that starts and ends on the line where a node's last token ends, after that token,
///   trails the node (`trailing`). The last token of a type or condition is its closing `}`;
///   comments after a type's `{` on the same line are the type's `open_comments`.
/// - Any other comment between two nodes leads the next one (`leading`): the next member of the
///   type or, after the last member, the type's `end_comments`; at the top level the next item or,
///   after the last item, the schema's `end_comments`.
/// - A comment inside a node, between its first token (its first `///` line, if any) and its last,
///   moves to the end of the node's `leading` comments, in order: comments within an expression, a
///   subject list, a constraint, a type head or a condition's parameter list end up on the lines
///   above the member or item, before its doc comment. Comments in the CEL body of a condition
///   are part of its expression text and stay where they are.
/// - Blank lines count before a node and between the comments before it, a run of them as one.
///   Blank lines inside a node, right after a type's `{` line, right before its `}`, and before
///   an item or the schema's end comments (the formatter always separates those by one blank
///   line) are dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trivia {
    /// Comment lines, and blank lines as `""`, before the node and its doc comment.
    pub leading: Vec<String>,
    /// Comments after the node on its last line: each on one line, and only the last may be a
    /// `//` comment.
    pub trailing: Vec<String>,
}

impl Trivia {
    pub fn is_empty(&self) -> bool {
        self.leading.is_empty() && self.trailing.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    Type(TypeDef),
    Condition(ConditionDef),
}

impl Item {
    pub fn trivia(&self) -> &Trivia {
        match self {
            Item::Type(t) => &t.trivia,
            Item::Condition(c) => &c.trivia,
        }
    }

    pub fn trivia_mut(&mut self) -> &mut Trivia {
        match self {
            Item::Type(t) => &mut t.trivia,
            Item::Condition(c) => &mut c.trivia,
        }
    }
}

/// `type company { ... }`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeDef {
    pub name: Ident,
    /// Text of the `///` doc comment lines before the definition, without the markers, joined by `\n`.
    pub doc: Option<String>,
    /// Comments before the type and after its closing `}`.
    #[serde(default)]
    pub trivia: Trivia,
    /// Comments after the opening `{`, on its line.
    #[serde(default)]
    pub open_comments: Vec<String>,
    pub members: Vec<Member>,
    /// Comment lines after the last member, before the closing `}`.
    #[serde(default)]
    pub end_comments: Vec<String>,
    #[serde(skip)]
    pub span: SpanEq,
}

impl TypeDef {
    /// A type without comments.
    pub fn new(name: Ident, doc: Option<String>, members: Vec<Member>, span: Span) -> Self {
        TypeDef {
            name,
            doc,
            trivia: Trivia::default(),
            open_comments: Vec::new(),
            members,
            end_comments: Vec::new(),
            span: span.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Member {
    Relation(RelationDef),
    Permission(PermissionDef),
    Constraint(ConstraintDef),
}

impl Member {
    pub fn trivia(&self) -> &Trivia {
        match self {
            Member::Relation(r) => &r.trivia,
            Member::Permission(p) => &p.trivia,
            Member::Constraint(c) => &c.trivia,
        }
    }

    pub fn trivia_mut(&mut self) -> &mut Trivia {
        match self {
            Member::Relation(r) => &mut r.trivia,
            Member::Permission(p) => &mut p.trivia,
            Member::Constraint(c) => &mut c.trivia,
        }
    }
}

/// `relation subsidiary-of: company` or, with a rewrite, `relation viewer: user = this + editor`.
///
/// A relation stores relationships whose subjects match one of `subjects`. Its value is `this`
/// (the stored relationships) unless `rewrite` says otherwise; `this` may appear in the rewrite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelationDef {
    pub name: Ident,
    pub doc: Option<String>,
    pub subjects: Vec<SubjectType>,
    pub rewrite: Option<Expr>,
    #[serde(default)]
    pub trivia: Trivia,
    #[serde(skip)]
    pub span: SpanEq,
}

/// One allowed subject of a relation: `user`, `user:*`, `usergroup#member`,
/// optionally `with condition_name`, `with expiration` or `with condition_name and expiration`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectType {
    pub ty: Ident,
    pub kind: SubjectKind,
    pub condition: Option<Ident>,
    pub expiration: bool,
    #[serde(skip)]
    pub span: SpanEq,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubjectKind {
    /// `user`: a concrete object of the type.
    Direct,
    /// `user:*`: every object of the type.
    Wildcard,
    /// `usergroup#member`: every subject of that relation of an object of the type.
    Userset(Ident),
}

/// `permission view = viewer + parent->view`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionDef {
    pub name: Ident,
    pub doc: Option<String>,
    pub expr: Expr,
    #[serde(default)]
    pub trivia: Trivia,
    #[serde(skip)]
    pub span: SpanEq,
}

/// A permission (or relation rewrite) expression.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expr {
    /// A relation or permission of the same type, by name.
    Ref(Ident),
    /// The relationships stored in the enclosing relation (only valid inside a relation rewrite).
    This(SpanEq),
    /// `tupleset->target` (any) or `tupleset.all(target)` (all): follow the stored relationships of
    /// `tupleset` to their subject objects and evaluate `target` there.
    Arrow { tupleset: Ident, target: Ident, mode: ArrowMode },
    /// `a + b + c`
    Union(Vec<Expr>),
    /// `a & b & c`
    Intersection(Vec<Expr>),
    /// `a - b`
    Exclusion(Box<Expr>, Box<Expr>),
    /// `nil`: the empty set.
    Nil(SpanEq),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ArrowMode {
    /// Allowed if the target holds on any subject object (`->` or `.any()`).
    Any,
    /// Allowed if the target holds on every subject object, and there is at least one (`.all()`).
    All,
}

/// `condition within_region(region: string, allowed: list<string>) { region in allowed }`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionDef {
    pub name: Ident,
    pub doc: Option<String>,
    pub params: Vec<Param>,
    /// The CEL expression source, trimmed. Lines after the first are stored without the body's own
    /// indentation (up to the column of the first character), and without trailing whitespace;
    /// lines inside multi-line string literals stay as written. So the text does not depend on how
    /// deeply the body was indented, and formatting a schema does not change it.
    pub expr: String,
    /// Where the expression stands in the source (as written: before its indentation is removed).
    #[serde(skip)]
    pub expr_span: SpanEq,
    #[serde(default)]
    pub trivia: Trivia,
    #[serde(skip)]
    pub span: SpanEq,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: Ident,
    pub ty: ParamType,
    #[serde(skip)]
    pub ty_span: SpanEq,
}

/// The type of a condition parameter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParamType {
    Int,
    Uint,
    Bool,
    String,
    Double,
    Bytes,
    Duration,
    Timestamp,
    IpAddress,
    Any,
    List(Box<ParamType>),
    Map(Box<ParamType>),
}

impl ParamType {
    /// Every type name a schema may write (`list` and `map` take an argument).
    pub const NAMES: [&'static str; 12] = [
        "int",
        "uint",
        "bool",
        "string",
        "double",
        "bytes",
        "duration",
        "timestamp",
        "ipaddress",
        "any",
        "list",
        "map",
    ];

    /// The name of a type without arguments, as written in a schema.
    pub fn from_name(name: &str) -> Option<ParamType> {
        Some(match name {
            "int" => ParamType::Int,
            "uint" => ParamType::Uint,
            "bool" => ParamType::Bool,
            "string" => ParamType::String,
            "double" => ParamType::Double,
            "bytes" => ParamType::Bytes,
            "duration" => ParamType::Duration,
            "timestamp" => ParamType::Timestamp,
            "ipaddress" => ParamType::IpAddress,
            "any" => ParamType::Any,
            _ => return None,
        })
    }
}

impl std::fmt::Display for ParamType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamType::Int => f.write_str("int"),
            ParamType::Uint => f.write_str("uint"),
            ParamType::Bool => f.write_str("bool"),
            ParamType::String => f.write_str("string"),
            ParamType::Double => f.write_str("double"),
            ParamType::Bytes => f.write_str("bytes"),
            ParamType::Duration => f.write_str("duration"),
            ParamType::Timestamp => f.write_str("timestamp"),
            ParamType::IpAddress => f.write_str("ipaddress"),
            ParamType::Any => f.write_str("any"),
            ParamType::List(t) => write!(f, "list<{t}>"),
            ParamType::Map(t) => write!(f, "map<{t}>"),
        }
    }
}

/// A schema-level constraint on the relationships of one type, enforced atomically on write.
///
/// A constraint is about the relationships of one object. With valid time (relationships with
/// `[valid:FROM..UNTIL]` or `[expiration:T]`) it must hold at every instant; conditions on
/// relationships are not looked at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstraintDef {
    pub kind: ConstraintKind,
    #[serde(default)]
    pub trivia: Trivia,
    #[serde(skip)]
    pub span: SpanEq,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConstraintKind {
    /// `constraint at most 5 account-admin`: per object, at most N subjects hold the relation.
    AtMost { count: u32, relation: Ident },
    /// `constraint at least 1 admin`: per object, at least N subjects hold the relation whenever
    /// the object has a relationship or is the subject of one.
    AtLeast { count: u32, relation: Ident },
    /// `constraint one of (complaints-supervisor, complaints-manager)`: per object and subject,
    /// at most one of the relations.
    OneOf { relations: Vec<Ident> },
    /// `constraint staff-director requires complaints-role` or `... requires (a, b)`: a subject
    /// holding the first relation on an object holds one of the required ones on it too.
    Requires { relation: Ident, required: Vec<Ident> },
    /// `constraint administrator only on (assured, licensee)` or
    /// `constraint (administrator, private-user) not on partner`: which subjects an object may
    /// relate by `relations` depends on the object itself, through its `guards` relations (held by
    /// any subject). `only on`: while the object has a relationship of one of `relations`, it has
    /// one of `guards` too. `not on`: it never has both.
    OnObject { relations: Vec<Ident>, mode: OnMode, guards: Vec<Ident> },
}

/// How the guards of a [`ConstraintKind::OnObject`] constraint decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OnMode {
    /// `only on`: the relations need one of the guards.
    Only,
    /// `not on`: the relations exclude every guard.
    Not,
}

/// A span that compares equal to every other span, so that trees compare by content only.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct SpanEq(pub Span);

impl PartialEq for SpanEq {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for SpanEq {}

impl From<Span> for SpanEq {
    fn from(s: Span) -> Self {
        SpanEq(s)
    }
}

impl Expr {
    /// The source range the expression covers.
    pub fn span(&self) -> Span {
        match self {
            Expr::Ref(i) => i.span,
            Expr::This(s) | Expr::Nil(s) => s.0,
            Expr::Arrow { tupleset, target, .. } => tupleset.span.join(target.span),
            Expr::Union(v) | Expr::Intersection(v) => match (v.first(), v.last()) {
                (Some(a), Some(b)) => a.span().join(b.span()),
                _ => Span::default(),
            },
            Expr::Exclusion(a, b) => a.span().join(b.span()),
        }
    }
}
