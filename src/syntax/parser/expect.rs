//! Syntax errors a schema author can act on.
//!
//! pest reports the position of a failure and the rules it tried there. Every place where the grammar
//! expects something is a rule of its own (`relation_colon`, `arrow_target`, ...), so that set says
//! what was expected; the tokens around the position (from the lexer) say what stood there instead.

use super::grammar::Rule;
use super::lexer::{Kind, Lexer, Token, MEMBER_KEYWORDS, RESERVED};
use super::MAX_NESTING;
use crate::diag::{did_you_mean, Diagnostic};
use crate::syntax::ast::Span;
use pest::error::{Error, ErrorVariant, InputLocation};

/// What each rule stands for in "expected ...", in the order they are listed.
const PHRASES: &[(Rule, &str)] = &[
    (Rule::type_name, "a type name"),
    (Rule::type_open, "`{`"),
    (Rule::relation_name, "a relation name"),
    (Rule::permission_name, "a permission name"),
    (Rule::relation_colon, "`:`"),
    (Rule::subject_type_name, "a subject type"),
    (Rule::star, "`*`"),
    (Rule::userset_relation, "a relation name"),
    (Rule::pipe, "`|`"),
    (Rule::with_kw, "`with`"),
    (Rule::expiration_kw, "`expiration`"),
    (Rule::condition_ref, "a condition name"),
    (Rule::and_kw, "`and`"),
    (Rule::rewrite_eq, "`=`"),
    (Rule::permission_eq, "`=`"),
    (Rule::arrow_target, "a relation name"),
    (Rule::arrow_fn, "`any` or `all`"),
    (Rule::call_open, "`(`"),
    (Rule::call_target, "a relation name"),
    (Rule::call_close, "`)`"),
    (Rule::at_kw, "`at most`"),
    (Rule::at_kw, "`at least`"),
    (Rule::one_kw, "`one of`"),
    (Rule::most_kw, "`most`"),
    (Rule::least_kw, "`least`"),
    (Rule::of_kw, "`of`"),
    (Rule::count, "a number"),
    (Rule::list_open, "`(`"),
    (Rule::constraint_relation, "a relation name"),
    (Rule::requires_kw, "`requires`"),
    (Rule::only_kw, "`only on`"),
    (Rule::not_kw, "`not on`"),
    (Rule::on_kw, "`on`"),
    (Rule::condition_name, "a condition name"),
    (Rule::params_open, "`(`"),
    (Rule::param_name, "a parameter name"),
    (Rule::param_colon, "`:`"),
    (Rule::type_word, "a parameter type"),
    (Rule::type_args_close, "`>`"),
    (Rule::comma, "`,`"),
    (Rule::list_close, "`)`"),
    (Rule::params_close, "`)`"),
    (Rule::body_open, "`{`"),
];

/// Rules that stand for "an operand here": the operand rules themselves, and the expression rules,
/// which pest reports instead when all their alternatives failed at the same place.
const OPERAND: [Rule; 8] = [
    Rule::tupleset,
    Rule::ref_name,
    Rule::this_kw,
    Rule::nil_kw,
    Rule::paren_open,
    Rule::expr,
    Rule::union,
    Rule::intersection,
];
const OPERATOR: [Rule; 3] = [Rule::plus, Rule::amp, Rule::minus];

/// Rules that expect a name, with what the name would name.
const NAMES: &[(Rule, &str)] = &[
    (Rule::type_name, "type"),
    (Rule::subject_type_name, "type"),
    (Rule::relation_name, "relation"),
    (Rule::permission_name, "permission"),
    (Rule::userset_relation, "relation"),
    (Rule::condition_ref, "condition"),
    (Rule::condition_name, "condition"),
    (Rule::arrow_target, "relation"),
    (Rule::call_target, "relation"),
    (Rule::constraint_relation, "relation"),
    (Rule::tupleset, "relation"),
    (Rule::ref_name, "relation or permission"),
];

const CONSTRAINT_FORMS: &str =
    "a constraint is `at most N relation`, `at least N relation`, `one of (relation, relation)`, `relation requires (relation, ...)`, `relation only on (relation, ...)` or `relation not on (relation, ...)`";

/// The error for a pest failure in the piece of `text` that starts at `base`.
pub(super) fn diagnose(err: &Error<Rule>, text: &str, base: usize) -> Diagnostic {
    let pos = base
        + match err.location {
            InputLocation::Pos(p) => p,
            InputLocation::Span((p, _)) => p,
        };
    let ErrorVariant::ParsingError { positives, .. } = &err.variant else {
        // pest's own limits (call or stack depth).
        return nesting(Span::new(pos, pos));
    };
    let has = |r: Rule| positives.contains(&r);
    let found = Lexer::new(text, pos).next();
    let prev = previous_token(text, base, pos);
    let found_span = Span::new(found.start, found.end);
    let same_line = !found.line_start && found.kind != Kind::Eof;

    if same_line && found.kind == Kind::Word {
        if let Some(d) = reserved_word(&found, positives) {
            return d;
        }
    }

    // The keyword of the member (or item) the error is in.
    let member = Lexer::new(text, base).first_after_docs();
    let mut phrases: Vec<String> = Vec::new();
    if OPERAND.iter().any(|r| has(*r)) {
        phrases.push(match (prev.map(|p| p.text), member) {
            (Some("="), "relation") => "a rewrite expression".into(),
            (Some("="), _) => "a permission expression".into(),
            _ => "an operand".into(),
        });
    }
    if OPERATOR.iter().any(|r| has(*r)) {
        phrases.push("an operator (`+`, `&` or `-`)".into());
    }
    for (rule, phrase) in PHRASES {
        if has(*rule) && !phrases.iter().any(|p| p == phrase) {
            phrases.push((*phrase).to_string());
        }
    }
    if has(Rule::paren_close) {
        phrases.push("`)`".into());
    }

    let after = prev.map(|p| {
        let role = if has(Rule::relation_colon) {
            "relation name "
        } else if has(Rule::permission_eq) {
            "permission name "
        } else if has(Rule::type_open) {
            "type name "
        } else if has(Rule::params_open) {
            "condition name "
        } else if has(Rule::param_colon) {
            "parameter name "
        } else if has(Rule::with_kw) && p.kind == Kind::Word {
            "subject type "
        } else {
            ""
        };
        format!(" after {role}`{}`", p.text)
    });
    let after = after.unwrap_or_default();
    let list = join_or(&phrases);
    let mut d = match (phrases.is_empty(), same_line, prev) {
        (true, _, _) => {
            Diagnostic::new("syntax", found_span, format!("unexpected {}{after}", found.describe()))
        }
        (false, true, _) | (false, false, None) => Diagnostic::new(
            "syntax",
            found_span,
            format!("expected {list}{after}, found {}", found.describe()),
        ),
        (false, false, Some(p)) => {
            Diagnostic::new("syntax", Span::new(p.start, p.end), format!("expected {list}{after}"))
                .with_label(format!("expected {list} after this"))
        }
    };
    d = d.with_help_opt(help(positives, &found, prev.as_ref(), member));
    if [Rule::paren_close, Rule::call_close, Rule::list_close, Rule::params_close].iter().any(|r| has(*r)) {
        if let Some(open) = unclosed_paren(text, base, pos) {
            d = d.with_related(open, "this `(` is not closed");
        }
    }
    d
}

/// A reserved word where a name is expected.
fn reserved_word(found: &Token<'_>, positives: &[Rule]) -> Option<Diagnostic> {
    let (_, what) = NAMES.iter().find(|(r, _)| positives.contains(r))?;
    let span = Span::new(found.start, found.end);
    if found.text == "expiration" && (*what == "condition") {
        let d =
            Diagnostic::new("reserved-word", span, "`expiration` is reserved and cannot name a condition")
                .with_help(
                    "`with expiration` is built in and needs no condition; give the condition another name",
                );
        return Some(d);
    }
    if !RESERVED.contains(&found.text) {
        return None;
    }
    let list = RESERVED.map(|w| format!("`{w}`")).join(", ");
    let d = Diagnostic::new(
        "reserved-word",
        span,
        format!("`{}` is a reserved word and cannot name a {what}", found.text),
    )
    .with_help(format!("choose another name; the reserved words are {list}"));
    Some(d)
}

/// A hint for the most likely mistake.
fn help(positives: &[Rule], found: &Token<'_>, prev: Option<&Token<'_>>, member: &str) -> Option<String> {
    let has = |r: Rule| positives.contains(&r);
    let found_is = |s: &str| found.text == s && matches!(found.kind, Kind::Word | Kind::Punct);
    // A misspelt keyword.
    let keywords: Vec<&str> = [
        (Rule::with_kw, "with"),
        (Rule::and_kw, "and"),
        (Rule::expiration_kw, "expiration"),
        (Rule::arrow_fn, "any"),
        (Rule::arrow_fn, "all"),
        (Rule::at_kw, "at"),
        (Rule::one_kw, "one"),
        (Rule::most_kw, "most"),
        (Rule::least_kw, "least"),
        (Rule::of_kw, "of"),
        (Rule::requires_kw, "requires"),
        (Rule::only_kw, "only"),
        (Rule::not_kw, "not"),
        (Rule::on_kw, "on"),
    ]
    .iter()
    .filter(|(r, _)| has(*r))
    .map(|(_, k)| *k)
    .collect();
    if found.kind == Kind::Word {
        if let Some(h) = did_you_mean(found.text, keywords.iter().copied()) {
            return Some(h);
        }
    }
    let operator_words = [("or", "+"), ("and", "&"), ("but", "-"), ("not", "-"), ("|", "+"), ("||", "+")];
    if has(Rule::plus) {
        if let Some((w, op)) = operator_words.iter().find(|(w, _)| found_is(w)) {
            return Some(format!("write `{op}` instead of `{w}` to combine permissions"));
        }
    }
    if found.is_invisible() {
        return Some(
            "only spaces, tabs and line breaks separate words; replace this character with a space".into(),
        );
    }
    if found_is("-") && has(Rule::param_colon) {
        return Some("parameter names are CEL identifiers: letters, digits and `_`, no `-`".to_string());
    }
    if found_is("-") && prev.is_some_and(|p| p.kind == Kind::Word && p.end == found.start) {
        return Some("a `-` inside a name must be followed by a letter or digit: `view-all`".to_string());
    }
    Some(
        if has(Rule::paren_close) {
            "add a `)` to close the `(`"
        } else if has(Rule::and_kw) && found_is("with") {
            "a subject type takes one `with`; join a condition and `expiration` with `and`: `user with in_region and expiration`"
        } else if has(Rule::pipe) && (found_is(",") || found_is("or")) {
            "separate subject types with `|`: `user | group#member`"
        } else if has(Rule::relation_colon) && found_is("=") {
            "a relation lists the subject types it stores before any rewrite: `relation viewer: user = this + editor`; a value computed from other relations only is a `permission`"
        } else if has(Rule::relation_colon) {
            "a relation lists the subject types it stores: `relation viewer: user | group#member`"
        } else if has(Rule::permission_eq) && found_is(":") {
            "a permission is computed: `permission view = viewer + editor`; to store relationships, declare a `relation`"
        } else if has(Rule::permission_eq) {
            "a permission is computed from an expression: `permission view = viewer + editor`"
        } else if has(Rule::subject_type_name) {
            "a subject type is a type (`user`), all objects of a type (`user:*`) or a relation of a type (`group#member`)"
        } else if has(Rule::with_kw) && found_is(":") {
            "write a wildcard without spaces: `user:*`"
        } else if has(Rule::star) {
            "`user:*` stands for every object of type `user`"
        } else if has(Rule::userset_relation) {
            "`group#member` stands for the subjects related to a `group` by `member`"
        } else if has(Rule::condition_ref) || has(Rule::expiration_kw) {
            "`with` takes a condition, `expiration`, or both joined by `and`: `user with in_region and expiration`"
        } else if has(Rule::arrow_fn) {
            "to follow a relation write `parent->view` (any parent), `parent.any(view)` or `parent.all(view)`"
        } else if has(Rule::call_open) || has(Rule::call_target) || has(Rule::call_close) {
            "`parent.all(view)` names the relation to evaluate on each parent in parentheses"
        } else if OPERATOR.iter().any(|r| has(*r)) {
            "combine operands with `+` (union), `&` (intersection) or `-` (exclusion); exclusion needs a space before its `-`: `a - b`, as `a-b` is one name"
        } else if OPERAND.iter().any(|r| has(*r)) && prev.is_some_and(|p| p.text == "-") {
            "an operand is a name, `this`, `nil`, an arrow (`parent->view`) or an expression in parentheses; `a-b` (no spaces) is one name"
        } else if OPERAND.iter().any(|r| has(*r)) {
            "an operand is a relation or permission name, `this`, `nil`, an arrow (`parent->view`, `parent.all(view)`) or an expression in parentheses"
        } else if has(Rule::only_kw) && found_is(",") {
            "put several relations in parentheses: `(administrator, private-user) not on partner`"
        } else if has(Rule::at_kw)
            || has(Rule::most_kw)
            || has(Rule::count)
            || has(Rule::requires_kw)
            || has(Rule::of_kw)
            || has(Rule::on_kw)
            || (positives == [Rule::EOI] && member == "constraint")
        {
            CONSTRAINT_FORMS
        } else if has(Rule::type_word) {
            "parameter types are `int`, `uint`, `bool`, `string`, `double`, `bytes`, `duration`, `timestamp`, `ipaddress`, `any`, `list<T>` and `map<T>`"
        } else if has(Rule::param_colon) {
            "declare a parameter as `name: type`"
        } else if has(Rule::params_open) {
            "a condition declares its parameters: `condition in_region(region: string) { region == \"eu\" }`"
        } else if has(Rule::body_open) {
            "the CEL expression of a condition follows in braces: `{ region == \"eu\" }`"
        } else if has(Rule::type_open) {
            "the relations and permissions of a type follow in braces: `type document { ... }`"
        } else if has(Rule::type_name) || has(Rule::relation_name) || has(Rule::permission_name) || has(Rule::condition_name) {
            "a name starts with a letter or `_` and continues with letters, digits, `_`, or `-` between them"
        } else {
            return None;
        }
        .to_string(),
    )
}

/// The error for a token that cannot start an item.
pub(super) fn top_level_junk(tok: Token<'_>) -> Diagnostic {
    let span = Span::new(tok.start, tok.end);
    let help = if tok.is_member_keyword() {
        format!("a `{}` belongs inside the braces of a `type`", tok.text)
    } else if tok.is_punct("}") {
        "this `}` closes nothing; remove it, or look for a `}` that ends a type too early".to_string()
    } else if tok.is_word("definition") {
        "Purview declares object types with `type`: `type user {}`".to_string()
    } else if tok.is_word("caveat") {
        "Purview declares conditions with `condition`: `condition c(x: int) { x > 0 }`".to_string()
    } else {
        did_you_mean(tok.text, ["type", "condition"]).unwrap_or_else(|| {
            "a schema is a list of `type name { ... }` and `condition name(params) { ... }`".to_string()
        })
    };
    let msg = format!("expected `type` or `condition`, found {}", tok.describe());
    Diagnostic::new("syntax", span, msg).with_help(help)
}

/// The error for a token that cannot start a member of a type.
pub(super) fn member_junk(tok: Token<'_>) -> Diagnostic {
    let span = Span::new(tok.start, tok.end);
    let help = did_you_mean(tok.text, MEMBER_KEYWORDS).unwrap_or_else(|| {
        "a type holds `relation name: types`, `permission name = expression` and `constraint ...` lines"
            .to_string()
    });
    let msg = format!("expected `relation`, `permission`, `constraint` or `}}`, found {}", tok.describe());
    Diagnostic::new("syntax", span, msg).with_help(help)
}

pub(super) fn nesting(span: Span) -> Diagnostic {
    Diagnostic::new("nesting-limit", span, format!("nesting deeper than {MAX_NESTING} levels"))
        .with_help("split the expression into several permissions")
}

/// The last token before `pos`, from `base` on; a token that runs past `pos` is cut there.
fn previous_token<'a>(text: &'a str, base: usize, pos: usize) -> Option<Token<'a>> {
    let mut lx = Lexer::new(text, base);
    let mut prev = None;
    loop {
        let mut t = lx.next();
        if t.is_end() || t.start >= pos {
            return prev;
        }
        if t.end > pos {
            t.end = pos;
            t.text = &text[t.start..pos];
        }
        prev = Some(t);
    }
}

/// The last `(` between `base` and `pos` that is not closed before `pos`.
fn unclosed_paren(text: &str, base: usize, pos: usize) -> Option<Span> {
    let mut lx = Lexer::new(text, base);
    let mut open = Vec::new();
    loop {
        let t = lx.next();
        if t.is_end() || t.end > pos {
            return open.pop();
        }
        if t.is_punct("(") {
            open.push(Span::new(t.start, t.end));
        } else if t.is_punct(")") {
            open.pop();
        }
    }
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
