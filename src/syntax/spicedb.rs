//! Import of SpiceDB schemas (`.zed`): text → pest tree (`grammar/spicedb.pest`) → [`ast::Schema`].
//!
//! Mapping: `definition` → [`ast::TypeDef`], `relation` → [`ast::RelationDef`] without rewrite,
//! `permission` → [`ast::PermissionDef`], `caveat` → [`ast::ConditionDef`]. `a->b` and `a.any(b)`
//! become an any-arrow, `a.all(b)` an all-arrow. `user#...` is the plain subject type `user`.
//! `/** */` and `///` comments before an item become its doc; plain `//` and `/* */` comments
//! between items and between members become the leading comments of the next one, or the end
//! comments of the type or file after the last one (comments inside a member, a caveat or a
//! partial's last lines are not carried over). `use partial` partials are expanded
//! in place. Permission type annotations (`permission view: user = ...`) are checked syntactically
//! and dropped: they constrain SpiceDB's type checker, not what the permission means.
//!
//! Refused with a diagnostic, because Purview's AST has no equivalent: `self` under `use self`
//! (`unsupported-self`), nested arrows such as `a->b->c` (`unsupported-nested-arrow`, which SpiceDB's
//! own compiler refuses too) and `import` in a text alone (`unsupported-import`: it has no file to
//! read imports relative to; [`imports`] reads a file's imports and lays the files out as one).

use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::syntax::ast::{Ident, Item, Member, Schema, Span, TypeDef};
use crate::syntax::import_diag::{doc_comments, plain_comments, syntax_error};
use pest::iterators::{Pair, Pairs};
use pest::Parser as _;
use std::collections::{HashMap, HashSet};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/spicedb.pest"]
struct SpiceDbGrammar;

/// The `use` flags SpiceDB knows.
const USE_FLAGS: [&str; 5] = ["expiration", "import", "partial", "self", "typechecking"];

/// Parses a SpiceDB schema into Purview's AST, reporting every problem found.
pub fn parse_spicedb(text: &str) -> Result<Schema, Diagnostics> {
    parse(text, None)
}

/// [`parse_spicedb`] of schema files laid out as one text, the importing file's `import`s
/// already laid out beside it (see [`spicedb_imports`]): the `import` statements are accepted.
/// `file_starts` are the offsets where the files begin (`use` flags come first in each file).
pub fn parse_spicedb_imported(text: &str, file_starts: &[usize]) -> Result<Schema, Diagnostics> {
    parse(text, Some(file_starts))
}

/// The paths a schema's `import` statements name, with where each is written (none when the
/// text does not parse: parsing it says why).
pub fn spicedb_imports(text: &str) -> Vec<(String, Span)> {
    let Ok(root) = SpiceDbGrammar::parse(Rule::schema, text) else { return Vec::new() };
    root.flatten()
        .filter(|p| p.as_rule() == Rule::import_stmt)
        .filter_map(|p| {
            let span = span_of(&p);
            p.into_inner().find(|q| q.as_rule() == Rule::string_lit).map(|q| (import_path(q.as_str()), span))
        })
        .collect()
}

/// The `use` flags (their text and place) and the `import` statements (their places) at the top
/// level of a schema (none when the text does not parse).
pub(crate) fn use_and_import_spans(text: &str) -> (Vec<(String, Span)>, Vec<Span>) {
    let Ok(root) = SpiceDbGrammar::parse(Rule::schema, text) else { return (Vec::new(), Vec::new()) };
    let mut uses = Vec::new();
    let mut imports = Vec::new();
    for p in root.flatten() {
        match p.as_rule() {
            Rule::use_flag => {
                let flag = p.clone().into_inner().nth(1).map(|f| f.as_str().to_string()).unwrap_or_default();
                uses.push((flag, span_of(&p)));
            }
            Rule::import_stmt => imports.push(span_of(&p)),
            _ => {}
        }
    }
    (uses, imports)
}

/// A quoted import path without its quotes.
fn import_path(lit: &str) -> String {
    for q in ["\"\"\"", "\"", "'"] {
        if let Some(inner) = lit.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    lit.to_string()
}

fn parse(text: &str, laid_out: Option<&[usize]>) -> Result<Schema, Diagnostics> {
    let root = SpiceDbGrammar::parse(Rule::schema, text)
        .map_err(|e| Diagnostics(vec![syntax_error(&e, text, describe)]))?;
    let mut lower = Lower {
        text,
        diags: Vec::new(),
        flags: HashSet::new(),
        caveats: HashSet::new(),
        imports_laid_out: laid_out.is_some(),
        file_starts: laid_out.map(<[usize]>::to_vec).unwrap_or_default(),
    };
    let (items, end_comments) = lower.schema(root);
    if lower.diags.is_empty() {
        Ok(Schema { items, end_comments })
    } else {
        Err(Diagnostics(lower.diags))
    }
}

fn describe(rule: &Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of input",
        // Reported alone when nothing at the start of the file fits.
        Rule::schema => "a `definition`, `caveat` or `use`",
        Rule::use_flag | Rule::kw_use => "`use`",
        Rule::import_stmt | Rule::kw_import => "`import`",
        Rule::partial_def | Rule::kw_partial => "`partial`",
        Rule::definition | Rule::kw_definition => "`definition`",
        Rule::caveat_def | Rule::kw_caveat => "`caveat`",
        Rule::relation | Rule::kw_relation => "`relation`",
        Rule::permission | Rule::kw_permission => "`permission`",
        Rule::partial_ref => "`...partial`",
        Rule::string_lit => "a quoted path",
        Rule::ident | Rule::arrow => "an identifier",
        Rule::type_path | Rule::subject_type | Rule::caveat_ref => "a type name",
        Rule::subject_rel => "`#`",
        Rule::subject_wildcard => "`:*`",
        Rule::star => "`*`",
        Rule::ellipsis => "`...`",
        Rule::with_clause | Rule::kw_with => "`with`",
        Rule::kw_and => "`and`",
        Rule::kw_expiration => "`expiration`",
        Rule::annotation | Rule::colon => "`:`",
        Rule::expr | Rule::inter | Rule::union => "an expression",
        Rule::paren | Rule::lparen => "`(`",
        Rule::nil => "`nil`",
        Rule::arrow_step => "`->` or `.`",
        Rule::arrow_func => "`any` or `all`",
        Rule::caveat_expr => "a caveat expression",
        Rule::param => "a parameter",
        Rule::param_type => "a parameter type",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::rparen => "`)`",
        Rule::pipe => "`|`",
        Rule::equals => "`=`",
        Rule::plus => "`+`",
        Rule::amp => "`&`",
        Rule::minus => "`-`",
        Rule::arrow_op => "`->`",
        Rule::dot => "`.`",
        Rule::comma => "`,`",
        Rule::langle => "`<`",
        Rule::rangle => "`>`",
        _ => return None,
    })
}

fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span::new(s.start(), s.end())
}

/// Where the last token of `pair` ends: its span can run on over the whitespace and comments pest
/// skips before an optional part that is absent.
fn content_end(pair: &Pair<'_, Rule>) -> usize {
    let mut last = pair.clone();
    while let Some(child) = last.clone().into_inner().last() {
        last = child;
    }
    last.as_span().end()
}

fn ident_of(pair: &Pair<'_, Rule>) -> Ident {
    Ident::new(pair.as_str(), span_of(pair))
}

/// A member of a definition or partial body before partials are expanded.
enum BodyItem {
    Member(Member),
    PartialRef(Ident),
}

struct Partial {
    name: Ident,
    body: Vec<BodyItem>,
}

struct Lower<'t> {
    text: &'t str,
    diags: Vec<Diagnostic>,
    /// The `use` flags in force.
    flags: HashSet<String>,
    /// Names of the caveats the file defines.
    caveats: HashSet<String>,
    /// Whether the imported files are part of the text (else an `import` cannot be followed).
    imports_laid_out: bool,
    /// Where each file laid out in the text begins.
    file_starts: Vec<usize>,
}

impl<'t> Lower<'t> {
    /// The items, and the comments after the last one.
    fn schema(&mut self, mut root: Pairs<'t, Rule>) -> (Vec<Item>, Vec<String>) {
        let top: Vec<Pair<'t, Rule>> = root
            .next()
            .map(|p| p.into_inner().filter(|p| p.as_rule() != Rule::EOI).collect())
            .unwrap_or_default();
        self.collect_flags(&top);
        let mut partials: HashMap<String, Partial> = HashMap::new();
        let mut items = Vec::new();
        let mut bodies: Vec<Vec<BodyItem>> = Vec::new();
        let mut prev_end = 0;
        // Plain comments waiting for the item they come before.
        let mut pending = Vec::new();
        for pair in top {
            let span = span_of(&pair);
            let doc = doc_comments(self.text, prev_end, span.start);
            pending.extend(plain_comments(self.text, prev_end, span.start));
            prev_end = span.end;
            match pair.as_rule() {
                Rule::definition => {
                    let mut inner = pair.into_inner();
                    let _kw = inner.next();
                    let Some(name) = inner.next().map(|p| ident_of(&p)) else { continue };
                    self.check_name(&name, "definition");
                    let (body, end_comments) = self.body(inner);
                    let mut t = TypeDef::new(name, doc, Vec::new(), span);
                    t.trivia.leading = std::mem::take(&mut pending);
                    t.end_comments = end_comments;
                    items.push(Item::Type(t));
                    bodies.push(body);
                }
                Rule::caveat_def => {
                    if let Some(mut c) = self.caveat(pair, doc) {
                        c.trivia.leading = std::mem::take(&mut pending);
                        items.push(Item::Condition(c));
                    }
                }
                Rule::partial_def => {
                    let mut inner = pair.into_inner();
                    let kw = inner.next().map(|p| span_of(&p)).unwrap_or(span);
                    let Some(name) = inner.next().map(|p| ident_of(&p)) else { continue };
                    self.require_flag("partial", kw, "`partial`");
                    let (body, _) = self.body(inner);
                    if let Some(first) = partials.get(&name.name) {
                        let d = Diagnostic::new(
                            "duplicate-partial",
                            name.span,
                            format!("partial `{}` is defined twice", name.name),
                        )
                        .with_related(first.name.span, "first defined here");
                        self.diags.push(d);
                    } else {
                        partials.insert(name.name.clone(), Partial { name, body });
                    }
                }
                Rule::import_stmt => self.import(pair),
                _ => {}
            }
        }
        // Expand partials now that all of them are known, then put the members in place.
        let mut bodies = bodies.into_iter();
        for item in &mut items {
            if let Item::Type(t) = item {
                if let Some(body) = bodies.next() {
                    let mut stack = Vec::new();
                    t.members = self.expand(body, &partials, &mut stack);
                }
            }
        }
        pending.extend(plain_comments(self.text, prev_end, self.text.len()));
        (items, pending)
    }

    /// Records the `use` flags; reports unknown ones and those after the first definition.
    fn collect_flags(&mut self, top: &[Pair<'t, Rule>]) {
        let mut seen_item = false;
        let mut file = 0;
        for pair in top {
            // `use` flags come first in each file of a laid-out schema.
            let start = pair.as_span().start();
            while self.file_starts.get(file + 1).is_some_and(|&s| s <= start) {
                file += 1;
                seen_item = false;
            }
            if pair.as_rule() != Rule::use_flag {
                seen_item = true;
                if pair.as_rule() == Rule::caveat_def {
                    if let Some(name) = pair.clone().into_inner().nth(1) {
                        self.caveats.insert(name.as_str().to_string());
                    }
                }
                continue;
            }
            let Some(flag) = pair.clone().into_inner().nth(1) else { continue };
            let name = flag.as_str();
            if seen_item {
                let d = Diagnostic::new(
                    "spicedb-use-after-definition",
                    span_of(pair),
                    "`use` must come before any definition",
                )
                .with_help("move the `use` statements to the top of the schema");
                self.diags.push(d);
            }
            if USE_FLAGS.contains(&name) {
                self.flags.insert(name.to_string());
            } else {
                let help = did_you_mean(name, USE_FLAGS).unwrap_or_else(|| {
                    "the flags are `expiration`, `import`, `partial`, `self` and `typechecking`".into()
                });
                let d = Diagnostic::new(
                    "spicedb-unknown-use",
                    span_of(&flag),
                    format!("unknown use flag `{name}`"),
                )
                .with_help(help);
                self.diags.push(d);
            }
        }
    }

    fn require_flag(&mut self, flag: &str, span: Span, what: &str) {
        if !self.flags.contains(flag) {
            let d = Diagnostic::new("spicedb-missing-use", span, format!("{what} requires `use {flag}`"))
                .with_help(format!("add `use {flag}` at the top of the schema"));
            self.diags.push(d);
        }
    }

    /// Names SpiceDB reserves; some only under a `use` flag.
    fn check_name(&mut self, name: &Ident, what: &str) {
        let reserved = match name.name.as_str() {
            "definition" | "caveat" | "relation" | "permission" | "nil" | "with" => true,
            "expiration" | "and" => self.flags.contains("expiration"),
            "self" => self.flags.contains("self"),
            "import" => self.flags.contains("import"),
            "partial" => self.flags.contains("partial"),
            _ => false,
        };
        if reserved {
            let d = Diagnostic::new(
                "spicedb-keyword",
                name.span,
                format!("`{}` is a keyword and cannot name a {what}", name.name),
            )
            .with_help("choose another name");
            self.diags.push(d);
        }
    }

    fn import(&mut self, pair: Pair<'t, Rule>) {
        let span = span_of(&pair);
        self.require_flag("import", span, "`import`");
        if self.imports_laid_out {
            return;
        }
        let path =
            pair.into_inner().find(|p| p.as_rule() == Rule::string_lit).map(|p| import_path(p.as_str()));
        let d = Diagnostic::new(
            "unsupported-import",
            span,
            "import statements are not allowed in this context: a schema text alone has no file to read imports relative to",
        )
            .with_help(format!(
                "give the schema as a file (`--schema FILE`: `{}` is read relative to it), or paste its definitions here",
                path.unwrap_or_default()
            ));
        self.diags.push(d);
    }

    /// The members of a definition or partial, and the comments after the last one; `inner` starts
    /// at the `{`.
    fn body(&mut self, inner: Pairs<'t, Rule>) -> (Vec<BodyItem>, Vec<String>) {
        let mut out = Vec::new();
        let mut prev_end = None;
        // Where plain comments may start: pest's span of a member may cover those after it.
        let mut comments_from = None;
        let mut pending = Vec::new();
        for pair in inner {
            let span = span_of(&pair);
            if pair.as_rule() == Rule::lbrace {
                // Comments right after `{` belong to the first member, not to the brace.
                prev_end = Some(span.start + 1);
                comments_from = prev_end;
                continue;
            }
            pending.extend(plain_comments(self.text, comments_from.unwrap_or(span.start), span.start));
            if pair.as_rule() == Rule::rbrace {
                continue;
            }
            let doc = doc_comments(self.text, prev_end.unwrap_or(span.start), span.start);
            prev_end = Some(span.end);
            comments_from = Some(content_end(&pair));
            match pair.as_rule() {
                Rule::relation => {
                    if let Some(mut r) = self.relation(pair, doc) {
                        r.trivia.leading = std::mem::take(&mut pending);
                        out.push(BodyItem::Member(Member::Relation(r)));
                    }
                }
                Rule::permission => {
                    if let Some(mut p) = self.permission(pair, doc) {
                        p.trivia.leading = std::mem::take(&mut pending);
                        out.push(BodyItem::Member(Member::Permission(p)));
                    }
                }
                Rule::partial_ref => {
                    self.require_flag("partial", span, "a partial reference");
                    if let Some(name) = pair.into_inner().next() {
                        out.push(BodyItem::PartialRef(ident_of(&name)));
                    }
                }
                _ => {}
            }
        }
        (out, pending)
    }

    /// Replaces partial references by the members of the partial, recursively.
    fn expand(
        &mut self,
        body: Vec<BodyItem>,
        partials: &HashMap<String, Partial>,
        stack: &mut Vec<String>,
    ) -> Vec<Member> {
        let mut out = Vec::new();
        for item in body {
            match item {
                BodyItem::Member(m) => out.push(m),
                BodyItem::PartialRef(name) => match partials.get(&name.name) {
                    None => {
                        let help = did_you_mean(&name.name, partials.keys().map(String::as_str));
                        let d = Diagnostic::new(
                            "unknown-partial",
                            name.span,
                            format!("unknown partial `{}`", name.name),
                        )
                        .with_help_opt(help);
                        self.diags.push(d);
                    }
                    Some(_) if stack.contains(&name.name) => {
                        let d = Diagnostic::new(
                            "partial-cycle",
                            name.span,
                            format!("partial `{}` includes itself", name.name),
                        )
                        .with_help(format!(
                            "the partials include each other: {} -> {}",
                            stack.join(" -> "),
                            name.name
                        ));
                        self.diags.push(d);
                    }
                    Some(p) => {
                        stack.push(name.name.clone());
                        let copied: Vec<BodyItem> = p
                            .body
                            .iter()
                            .map(|b| match b {
                                BodyItem::Member(m) => BodyItem::Member(m.clone()),
                                BodyItem::PartialRef(r) => BodyItem::PartialRef(r.clone()),
                            })
                            .collect();
                        out.extend(self.expand(copied, partials, stack));
                        stack.pop();
                    }
                },
            }
        }
        out
    }
}

pub mod imports;
mod members;

#[cfg(test)]
mod tests;
