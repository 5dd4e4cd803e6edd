//! A SpiceDB validation file's expected relations (`validation:`), compared as `zed validate`
//! compares them (SpiceDB's `pkg/development/validation.go`).
//!
//! Each key `object#relation` lists lines `[SUBJECT] is <object#relation>/<object#relation>`.
//! The subjects a full expansion reaches ([`View::membership`]) must be exactly the listed ones;
//! for each, the relations after `is` must be exactly those it was found under (in any order),
//! its caveated mark (`[...]`) must match, and a wildcard's exclusions (`user:* - {user:bob}`)
//! must be exactly the listed ones, with their marks. Every difference is reported, one per
//! line, with zed's wording.

use super::common::FoundText;
use crate::api::{Member, View};
use crate::eval::EvalOptions;
use crate::store::ObjectRef;
use std::collections::BTreeSet;

/// One expected line: its subject (when it names one) and the relations after `is`.
struct Expected<'a> {
    line: &'a str,
    subject: Option<FoundText>,
    found_under: Vec<String>,
}

impl<'a> Expected<'a> {
    /// Parses `[SUBJECT] is <a#r>/<b#r>` as SpiceDB does: the subject is what stands between the
    /// first `[` and the last `]`; the relations are every `<...>` of the line.
    fn parse(line: &'a str) -> Result<Self, String> {
        let subject = match (line.find('['), line.rfind(']')) {
            (Some(open), Some(close)) if open < close => {
                let text = line.get(open + 1..close).unwrap_or("").trim();
                Some(
                    FoundText::parse(text)
                        .map_err(|e| format!("invalid subject: `{text}` in `{line}`: {e}"))?,
                )
            }
            _ => None,
        };
        let mut found_under = Vec::new();
        let mut rest = line;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('>') else { break };
            let onr = &after[..close];
            found_under.push(place(onr).map_err(|e| {
                format!(
                    "invalid resource and relation: `{onr}` in `{line}`: {e}; expected `type:id#relation`"
                )
            })?);
            rest = &after[close + 1..];
        }
        found_under.sort();
        Ok(Expected { line, subject, found_under })
    }
}

/// `type:id#relation`, normalized.
fn place(text: &str) -> Result<String, String> {
    let (object, relation) = text.split_once('#').ok_or("no `#relation`")?;
    let object = ObjectRef::parse(object).map_err(|e| e.to_string())?;
    if relation.is_empty() || relation.contains(['#', '@', ' ']) {
        return Err(format!("`{relation}` is not a relation name"));
    }
    Ok(format!("{object}#{relation}"))
}

fn wrap(items: &[String], sep: &str) -> String {
    items.iter().map(|s| format!("<{s}>")).collect::<Vec<_>>().join(sep)
}

/// A subject with its caveated mark, as SpiceDB writes it: `user:bob[...]`.
fn marked(subject: &str, caveated: bool) -> String {
    if caveated {
        format!("{subject}[...]")
    } else {
        subject.to_string()
    }
}

/// One key of `validation:`: the expansion of `key` must be exactly `expected`.
pub(crate) fn validate(
    snap: &View,
    key: &str,
    expected: &[String],
    opts: &EvalOptions,
) -> Result<(), String> {
    let (object, relation) =
        key.split_once('#').ok_or_else(|| format!("`{key}`: expected `object#permission`"))?;
    let object = ObjectRef::parse(object).map_err(|e| e.to_string())?;
    let found = snap.membership(&object, relation, opts).map_err(|e| super::common::eval_message(snap, e))?;
    let lines = expected.iter().map(|l| Expected::parse(l)).collect::<Result<Vec<_>, _>>()?;
    let errors = compare(&found, &lines);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn compare(found: &[Member], expected: &[Expected<'_>]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut listed = BTreeSet::new();
    for e in expected {
        let Some(want) = &e.subject else {
            errors.push(format!("no expected subject specified in `{}`", e.line));
            continue;
        };
        listed.insert(want.subject.clone());
        let Some(got) = found.iter().find(|m| m.subject.to_string() == want.subject) else {
            errors.push(format!("missing expected subject `{}`", want.subject));
            continue;
        };
        if e.found_under != got.found_under {
            errors.push(format!(
                "found different relationships for subject `{}`: Specified: `{}`, Computed: `{}`",
                want.subject,
                wrap(&e.found_under, "/"),
                wrap(&got.found_under, "/")
            ));
        }
        if got.subject.is_wildcard() {
            let mut specified: Vec<String> = want.except.iter().map(|(s, c)| marked(s, *c)).collect();
            let mut computed: Vec<String> =
                got.excluded.iter().map(|(s, c)| marked(&s.to_string(), *c)).collect();
            specified.sort();
            computed.sort();
            if specified != computed {
                errors.push(format!(
                    "found different excluded subjects for subject `{}`: Specified: `{}`, Computed: `{}`",
                    want.subject,
                    wrap(&specified, ", "),
                    wrap(&computed, ", ")
                ));
            }
        } else if !want.except.is_empty() {
            errors.push(format!("found unexpected excluded subjects for subject `{}`", want.subject));
        }
        if got.caveated != want.conditional {
            let how = if want.conditional {
                "listed as caveated (`[...]`) but found without a caveat"
            } else {
                "listed without a caveat but found caveated (`[...]`)"
            };
            errors.push(format!("found caveat mismatch for subject `{}`: {how}", want.subject));
        }
    }
    for m in found {
        let s = m.subject.to_string();
        if !listed.contains(&s) {
            errors.push(format!(
                "subject `{}` found but not listed in expected subjects (as `[{}] is {}`)",
                s,
                listed_form(m),
                wrap(&m.found_under, "/")
            ));
        }
    }
    errors
}

/// How zed would list a found subject: `user:* - {user:bob[...]}`.
fn listed_form(m: &Member) -> String {
    let mut out = marked(&m.subject.to_string(), m.caveated);
    if !m.excluded.is_empty() {
        let mut ex: Vec<String> = m.excluded.iter().map(|(s, c)| marked(&s.to_string(), *c)).collect();
        ex.sort();
        out += &format!(" - {{{}}}", ex.join(", "));
    }
    out
}
