//! What the formats share: counting, assertion text, expected subjects, lookups as sets.

use super::{Failure, Report};
use crate::api::View;
use crate::api::{Page, SubjectFilter, WhoResult};
use crate::diag::did_you_mean;
use crate::eval::{EvalError, EvalOptions, Tri};
use crate::schema::condition::JsonMap;
use crate::store::relationship::parse_time;
use crate::store::{ObjectRef, Relationship, SubjectRef};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::fmt;

/// Counts the assertions of one file.
pub(crate) struct Tally {
    file: String,
    report: Report,
}

impl Tally {
    pub fn new(file: &str) -> Self {
        Tally { file: file.to_string(), report: Report::default() }
    }

    pub fn pass(&mut self) {
        self.report.passed += 1;
    }

    pub fn fail(&mut self, assertion: impl Into<String>, message: impl Into<String>) {
        self.report.failed += 1;
        self.report.failures.push(Failure {
            file: self.file.clone(),
            assertion: assertion.into(),
            message: message.into(),
        });
    }

    pub fn record(&mut self, assertion: impl Into<String>, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.pass(),
            Err(m) => self.fail(assertion, m),
        }
    }

    /// Like [`Tally::record`], but a failure's message starts with the line where `needle` is
    /// written under the top-level key `section` of `source`, when it can be found.
    pub fn record_at(
        &mut self,
        (source, section, needle): (&str, &str, &str),
        assertion: impl Into<String>,
        outcome: Result<(), String>,
    ) {
        let outcome = outcome.map_err(|m| match line_of(source, section, needle) {
            Some(n) => format!("line {n}: {m}"),
            None => m,
        });
        self.record(assertion, outcome);
    }

    pub fn finish(self) -> Report {
        self.report
    }
}

/// The 1-based line, after the top-level key `section:`, that starts with `needle` followed by the
/// end of a word, ignoring indentation, list dashes and quotes. A needle of several words is
/// looked for whole first, then by its first word.
fn line_of(source: &str, section: &str, needle: &str) -> Option<usize> {
    let start = source.lines().position(|l| l.starts_with(section) && l[section.len()..].starts_with(':'))?;
    let unquote = |s: &str| s.replace(['\'', '"'], "");
    let find = |needle: &str| {
        let needle = unquote(needle);
        source.lines().enumerate().skip(start + 1).find(|(_, l)| {
            let l = unquote(l);
            l.trim_start_matches([' ', '\t', '-']).strip_prefix(needle.as_str()).is_some_and(|rest| {
                rest.chars().next().is_none_or(|c| !(c.is_alphanumeric() || "_-#@*".contains(c)))
            })
        })
    };
    let head = needle.split_whitespace().next().filter(|n| n.len() > 2)?;
    find(needle.trim()).or_else(|| find(head)).map(|(i, _)| i + 1)
}

/// A check written as `object#permission@subject [with {json}] [at TIME]`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CheckText {
    pub object: ObjectRef,
    pub permission: String,
    pub subject: SubjectRef,
    pub context: JsonMap,
    pub at: Option<DateTime<Utc>>,
}

/// Splits ` with {json}` and ` at TIME` (in either order) off the end of a line.
pub(crate) fn split_suffixes(text: &str) -> Result<(&str, JsonMap, Option<DateTime<Utc>>), String> {
    let text = text.trim();
    let cut = find_suffix_start(text);
    let (head, mut rest) = text.split_at(cut);
    let mut context = JsonMap::new();
    let mut at = None;
    let mut seen_with = false;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix("with") {
            if seen_with {
                return Err("`with` given twice".into());
            }
            seen_with = true;
            let r = r.trim_start();
            let mut values = serde_json::Deserializer::from_str(r).into_iter::<serde_json::Value>();
            match values.next() {
                Some(Ok(serde_json::Value::Object(m))) => context = m,
                Some(Ok(_)) => return Err("the context after `with` must be a JSON object".into()),
                Some(Err(e)) => return Err(format!("the context after `with` is not valid JSON: {e}")),
                None => return Err("expected a JSON object after `with`".into()),
            }
            let used = values.byte_offset();
            rest = r.get(used..).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix("at ") {
            if at.is_some() {
                return Err("`at` given twice".into());
            }
            let r = r.trim_start();
            let end = r.find(char::is_whitespace).unwrap_or(r.len());
            at = Some(parse_time(&r[..end])?);
            rest = &r[end..];
        } else {
            return Err(format!("unexpected `{rest}`; expected ` with {{json}}` or ` at TIME`"));
        }
    }
    Ok((head.trim(), context, at))
}

/// Where the ` with ` / ` at ` suffixes start (the text before them has no spaces around them).
fn find_suffix_start(text: &str) -> usize {
    let mut best = text.len();
    for kw in [" with ", " with{", " at "] {
        if let Some(i) = text.find(kw) {
            best = best.min(i);
        }
    }
    best
}

impl CheckText {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (head, context, at) = split_suffixes(text)?;
        if head.contains('[') {
            return Err(format!(
                "`{head}`: an assertion cannot carry a condition or expiration; pass context with ` with {{json}}`"
            ));
        }
        let rel = Relationship::parse(head).map_err(|e| e.to_string())?;
        Ok(CheckText { object: rel.resource, permission: rel.relation, subject: rel.subject, context, at })
    }

    pub fn opts(&self, base: &EvalOptions) -> EvalOptions {
        let mut o = base.clone();
        o.context = self.context.clone();
        if let Some(at) = self.at {
            o.at = at;
        }
        o
    }
}

/// One entry of a `who` answer, in a form that compares: `user:tom`, `user:sarah (conditional)`,
/// `user:* - {user:bob, user:carl (conditional)}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FoundText {
    pub subject: String,
    pub conditional: bool,
    pub except: Vec<(String, bool)>,
}

impl fmt::Display for FoundText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject)?;
        if self.conditional {
            f.write_str(" (conditional)")?;
        }
        if !self.except.is_empty() {
            f.write_str(" - {")?;
            for (i, (s, c)) in self.except.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(s)?;
                if *c {
                    f.write_str(" (conditional)")?;
                }
            }
            f.write_str("}")?;
        }
        Ok(())
    }
}

/// Strips a conditional mark: ` (conditional)`, ` (caveated)` or SpiceDB's `[...]`.
fn strip_mark(s: &str) -> (&str, bool) {
    let s = s.trim();
    for mark in ["[...]", "(conditional)", "(caveated)"] {
        if let Some(h) = s.strip_suffix(mark) {
            return (h.trim_end(), true);
        }
    }
    (s, false)
}

fn subject_name(s: &str) -> Result<String, String> {
    SubjectRef::parse(s).map(|s| s.to_string()).map_err(|e| e.to_string())
}

impl FoundText {
    /// Parses `SUBJECT [MARK] [- {SUBJECT [MARK], ...}]`, MARK being `(conditional)` or `[...]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (head, except) = match text.find('{') {
            Some(i) if text.ends_with('}') => {
                let head = text[..i].trim_end();
                let head = head
                    .strip_suffix('-')
                    .ok_or_else(|| format!("`{text}`: expected `SUBJECT - {{EXCLUDED, ...}}`"))?;
                (head, Some(&text[i + 1..text.len() - 1]))
            }
            _ => (text, None),
        };
        let (subject, conditional) = strip_mark(head);
        let mut out = FoundText { subject: subject_name(subject)?, conditional, except: Vec::new() };
        for e in except.unwrap_or("").split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (s, c) = strip_mark(e);
            out.except.push((subject_name(s)?, c));
        }
        out.except.sort();
        out.except.dedup();
        Ok(out)
    }
}

/// An object in a `what` answer: `document:d1` or `document:d2 (conditional)`.
pub(crate) fn parse_found_object(text: &str) -> Result<(String, bool), String> {
    let (o, c) = strip_mark(text);
    ObjectRef::parse(o).map(|o| (o.to_string(), c)).map_err(|e| e.to_string())
}

/// A `who` answer as comparable entries; subjects named in `skip` are left out.
pub(crate) fn who_texts(w: &WhoResult, ty: &str, skip: Option<&SubjectRef>) -> BTreeSet<FoundText> {
    let mut out = BTreeSet::new();
    for s in &w.subjects {
        if Some(&s.subject) == skip {
            continue;
        }
        out.insert(FoundText {
            subject: s.subject.to_string(),
            conditional: s.outcome == Tri::Cond,
            except: vec![],
        });
    }
    if let Some(wc) = &w.wildcard {
        let mut except: Vec<(String, bool)> =
            wc.excluded.iter().map(|e| (e.subject.to_string(), e.outcome == Tri::Cond)).collect();
        except.sort();
        out.insert(FoundText { subject: format!("{ty}:*"), conditional: wc.outcome == Tri::Cond, except });
    }
    out
}

/// `who` over several filters, as one set of comparable entries.
pub(crate) fn who_union(
    snap: &View,
    object: &ObjectRef,
    permission: &str,
    filters: &[SubjectFilter],
    opts: &EvalOptions,
    skip: Option<&SubjectRef>,
) -> Result<BTreeSet<FoundText>, EvalError> {
    let mut out = BTreeSet::new();
    for f in filters {
        let w = snap.who(object, permission, f, opts)?;
        out.extend(who_texts(&w, &f.ty, skip));
    }
    Ok(out)
}

/// Every object of a type `what` finds, as `(name, conditional)`, all pages.
pub(crate) fn what_all(
    snap: &View,
    subject: &SubjectRef,
    permission: &str,
    object_type: &str,
    opts: &EvalOptions,
) -> Result<BTreeSet<(String, bool)>, EvalError> {
    let mut out = BTreeSet::new();
    let mut page = Page { limit: Some(1000), cursor: None };
    loop {
        let r = snap.what(subject, permission, object_type, &page, opts)?;
        out.extend(r.objects.iter().map(|o| (o.object.to_string(), o.outcome == Tri::Cond)));
        match r.cursor {
            Some(c) if page.cursor.as_ref() != Some(&c) => page.cursor = Some(c),
            _ => break,
        }
    }
    Ok(out)
}

/// Compares expected `who` entries with the found ones. A subject that a found wildcard already
/// lists as conditionally excluded (`user:* - {user:bob (conditional)}`) is conditional through
/// the wildcard anyway, so listing it on its own as well (`user:bob (conditional)`) is optional.
pub(crate) fn compare_who(expected: &BTreeSet<FoundText>, found: &BTreeSet<FoundText>) -> Result<(), String> {
    let optional = |f: &FoundText| {
        f.conditional
            && f.except.is_empty()
            && found.iter().any(|w| w.except.iter().any(|(s, c)| *c && *s == f.subject))
    };
    let keep =
        |set: &BTreeSet<FoundText>| set.iter().filter(|f| !optional(f)).cloned().collect::<BTreeSet<_>>();
    compare_sets(&keep(expected), &keep(found))
}

/// Compares an expected set with the found one; the error names what is missing and extra.
pub(crate) fn compare_sets<T: Ord + fmt::Display>(
    expected: &BTreeSet<T>,
    found: &BTreeSet<T>,
) -> Result<(), String> {
    if expected == found {
        return Ok(());
    }
    let list = |it: Vec<&T>| it.iter().map(|x| format!("`{x}`")).collect::<Vec<_>>().join(", ");
    let missing: Vec<&T> = expected.difference(found).collect();
    let extra: Vec<&T> = found.difference(expected).collect();
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", list(missing)));
    }
    if !extra.is_empty() {
        parts.push(format!("unexpected {}", list(extra)));
    }
    Err(format!(
        "{}; found [{}]",
        parts.join("; "),
        found.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
    ))
}

/// An evaluation error as a message, with a "did you mean" for a misspelt type or relation.
pub(crate) fn eval_message(view: &View, e: EvalError) -> String {
    let schema = view.schema();
    let hint = match &e {
        EvalError::UnknownType(t) => did_you_mean(t, schema.type_names()),
        EvalError::UnknownRelation { ty, relation } => {
            schema.type_id(ty).and_then(|t| did_you_mean(relation, schema.type_def(t).relation_names()))
        }
        _ => None,
    };
    match hint {
        Some(h) => format!("{e}; {h}"),
        None => e.to_string(),
    }
}

/// The expectation as a word, for messages.
pub(crate) fn tri_word(t: Tri) -> &'static str {
    match t {
        Tri::True => "allowed",
        Tri::False => "denied",
        Tri::Cond => "conditional",
    }
}
