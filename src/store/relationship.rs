//! Relationships as text: `type:id#relation@type:id[#relation][condition:{json}][expiration:time]`.
//!
//! This is SpiceDB's notation, so peer data loads as it is. `#...` after a subject means "the
//! object itself" and is the same as no relation. The bracketed parts may come in either order.

use crate::schema::condition::JsonMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An object named by strings: `document:readme`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub ty: String,
    pub id: String,
}

/// A subject named by strings: `user:tom`, `user:*`, `group:eng#member`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SubjectRef {
    pub ty: String,
    pub id: String,
    pub relation: Option<String>,
}

/// A condition attached to a relationship, with the context stored with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaveatRef {
    pub name: String,
    pub context: Option<JsonMap>,
}

/// One stored fact: `resource#relation@subject`, maybe conditional and time-bounded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Relationship {
    pub resource: ObjectRef,
    pub relation: String,
    pub subject: SubjectRef,
    pub caveat: Option<CaveatRef>,
    /// The relationship holds from this time on (inclusive); `None` means since always.
    pub valid_from: Option<DateTime<Utc>>,
    /// The relationship stops holding at this time (exclusive); `None` means forever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Why a relationship's text could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid relationship `{text}`: {reason}")]
pub struct RelationshipSyntaxError {
    pub text: String,
    pub reason: String,
    /// Byte offset in `text` where the problem is.
    pub offset: usize,
}

impl ObjectRef {
    pub fn new(ty: impl Into<String>, id: impl Into<String>) -> Self {
        ObjectRef { ty: ty.into(), id: id.into() }
    }

    /// Parses `type:id`.
    pub fn parse(text: &str) -> Result<Self, RelationshipSyntaxError> {
        let err = |reason: &str, offset| RelationshipSyntaxError {
            text: text.to_string(),
            reason: reason.to_string(),
            offset,
        };
        let (ty, id) = text.trim().split_once(':').ok_or_else(|| err("expected `type:id`", 0))?;
        check_type_name(ty).map_err(|r| err(&r, 0))?;
        check_id(id, false).map_err(|r| err(&r, ty.len() + 1))?;
        Ok(ObjectRef::new(ty, id))
    }
}

impl SubjectRef {
    pub fn new(ty: impl Into<String>, id: impl Into<String>, relation: Option<&str>) -> Self {
        SubjectRef { ty: ty.into(), id: id.into(), relation: relation.map(str::to_string) }
    }

    pub fn is_wildcard(&self) -> bool {
        self.id == "*"
    }

    /// The object part of the subject.
    pub fn object(&self) -> ObjectRef {
        ObjectRef::new(&self.ty, &self.id)
    }

    /// Parses `type:id`, `type:*` or `type:id#relation` (`#...` means no relation).
    pub fn parse(text: &str) -> Result<Self, RelationshipSyntaxError> {
        let text = text.trim();
        let (obj, rel) = match text.split_once('#') {
            Some((o, "...")) => (o, None),
            Some((o, r)) => (o, Some(r)),
            None => (text, None),
        };
        let err = |reason: String, offset| RelationshipSyntaxError { text: text.to_string(), reason, offset };
        let (ty, id) = obj.split_once(':').ok_or_else(|| err("expected `type:id`".into(), 0))?;
        check_type_name(ty).map_err(|r| err(r, 0))?;
        check_id(id, true).map_err(|r| err(r, ty.len() + 1))?;
        if let Some(r) = rel {
            check_name(r).map_err(|r| err(r, obj.len() + 1))?;
            if id == "*" {
                return Err(err("a wildcard subject cannot have a relation".into(), obj.len()));
            }
        }
        Ok(SubjectRef::new(ty, id, rel))
    }
}

/// A relationship borrowed from its text: what a write needs to resolve one (see
/// [`crate::store::write::resolve`]) without allocating.
#[derive(Clone, Copy, Debug)]
pub struct RelRef<'a> {
    pub resource_ty: &'a str,
    pub resource_id: &'a str,
    pub relation: &'a str,
    pub subject_ty: &'a str,
    pub subject_id: &'a str,
    pub subject_relation: Option<&'a str>,
    pub caveat: Option<&'a CaveatRef>,
    pub valid_from: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl<'a> RelRef<'a> {
    /// A borrowed view of a parsed relationship.
    pub fn of(r: &'a Relationship) -> RelRef<'a> {
        RelRef {
            resource_ty: &r.resource.ty,
            resource_id: &r.resource.id,
            relation: &r.relation,
            subject_ty: &r.subject.ty,
            subject_id: &r.subject.id,
            subject_relation: r.subject.relation.as_deref(),
            caveat: r.caveat.as_ref(),
            valid_from: r.valid_from,
            expires_at: r.expires_at,
        }
    }

    /// Parses a relationship without a condition or times (no `[`) without allocating; `None`
    /// when the line has a `[...]` part or is not well formed (then [`Relationship::parse`] says
    /// why, with the same rules as here).
    pub fn parse_plain(text: &'a str) -> Option<RelRef<'a>> {
        let full = text.trim();
        if full.contains('[') {
            return None;
        }
        let (res_rel, subject) = full.split_once('@')?;
        let (resource, relation) = res_rel.split_once('#')?;
        let (resource_ty, resource_id) = resource.trim().split_once(':')?;
        check_type_name(resource_ty).ok()?;
        check_id(resource_id, false).ok()?;
        check_name(relation).ok()?;
        let subject = subject.trim();
        let (obj, subject_relation) = match subject.split_once('#') {
            Some((o, "...")) => (o, None),
            Some((o, r)) => (o, Some(r)),
            None => (subject, None),
        };
        let (subject_ty, subject_id) = obj.split_once(':')?;
        check_type_name(subject_ty).ok()?;
        check_id(subject_id, true).ok()?;
        if let Some(r) = subject_relation {
            check_name(r).ok()?;
            if subject_id == "*" {
                return None;
            }
        }
        Some(RelRef {
            resource_ty,
            resource_id,
            relation,
            subject_ty,
            subject_id,
            subject_relation,
            caveat: None,
            valid_from: None,
            expires_at: None,
        })
    }

    /// The relationship, owned.
    pub fn to_owned(&self) -> Relationship {
        let mut r = Relationship::new(
            ObjectRef::new(self.resource_ty, self.resource_id),
            self.relation,
            SubjectRef::new(self.subject_ty, self.subject_id, self.subject_relation),
        );
        r.caveat = self.caveat.cloned();
        r.valid_from = self.valid_from;
        r.expires_at = self.expires_at;
        r
    }
}

impl std::fmt::Display for RelRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.caveat.is_some() || self.valid_from.is_some() || self.expires_at.is_some() {
            return write!(f, "{}", self.to_owned());
        }
        write!(
            f,
            "{}:{}#{}@{}:{}",
            self.resource_ty, self.resource_id, self.relation, self.subject_ty, self.subject_id
        )?;
        match self.subject_relation {
            Some(r) => write!(f, "#{r}"),
            None => Ok(()),
        }
    }
}

impl Relationship {
    pub fn new(resource: ObjectRef, relation: impl Into<String>, subject: SubjectRef) -> Self {
        Relationship {
            resource,
            relation: relation.into(),
            subject,
            caveat: None,
            valid_from: None,
            expires_at: None,
        }
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, RelationshipSyntaxError> {
        let full = text.trim();
        let err = |reason: String, offset: usize| RelationshipSyntaxError {
            text: full.to_string(),
            reason,
            offset,
        };
        let (head, mut tail) = match full.find('[') {
            Some(i) => (&full[..i], &full[i..]),
            None => (full, ""),
        };
        let (res_rel, subject) =
            head.split_once('@').ok_or_else(|| err("expected `@` between resource and subject".into(), 0))?;
        let (resource, relation) = res_rel
            .split_once('#')
            .ok_or_else(|| err("expected `#relation` after the resource".into(), res_rel.len()))?;
        let resource = ObjectRef::parse(resource).map_err(|e| err(e.reason, e.offset))?;
        check_name(relation).map_err(|r| err(r, resource.ty.len() + resource.id.len() + 2))?;
        let subject = SubjectRef::parse(subject).map_err(|e| err(e.reason, res_rel.len() + 1 + e.offset))?;
        let mut rel = Relationship::new(resource, relation, subject);
        while !tail.is_empty() {
            let offset = full.len() - tail.len();
            let body_start = 1;
            let close =
                matching_bracket(tail).ok_or_else(|| err("unclosed `[` (expected `]`)".into(), offset))?;
            let body = &tail[body_start..close];
            tail = tail[close + 1..].trim_start();
            let (name, value) = match body.split_once(':') {
                Some((n, v)) => (n.trim(), Some(v.trim())),
                None => (body.trim(), None),
            };
            match (name, value) {
                ("expiration", Some(v)) => {
                    let t = parse_time(v).map_err(|r| err(r, offset))?;
                    rel.expires_at = Some(t);
                }
                ("valid", Some(v)) => {
                    let (from, to) = v.split_once("..").ok_or_else(|| {
                        err("expected `[valid:FROM..UNTIL]` (either side may be empty)".into(), offset)
                    })?;
                    if !from.trim().is_empty() {
                        rel.valid_from = Some(parse_time(from.trim()).map_err(|r| err(r, offset))?);
                    }
                    if !to.trim().is_empty() {
                        rel.expires_at = Some(parse_time(to.trim()).map_err(|r| err(r, offset))?);
                    }
                }
                (name, value) => {
                    if rel.caveat.is_some() {
                        return Err(err("a relationship can have only one condition".into(), offset));
                    }
                    check_name(name).map_err(|r| err(format!("condition name: {r}"), offset))?;
                    let context = match value {
                        None => None,
                        Some(v) => match serde_json::from_str::<serde_json::Value>(v) {
                            Ok(serde_json::Value::Object(m)) => Some(m),
                            Ok(_) => {
                                return Err(err("condition context must be a JSON object".into(), offset))
                            }
                            Err(e) => {
                                return Err(err(format!("condition context is not valid JSON: {e}"), offset))
                            }
                        },
                    };
                    rel.caveat = Some(CaveatRef { name: name.to_string(), context });
                }
            }
        }
        Ok(rel)
    }
}

fn matching_bracket(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escape = false;
    for (i, c) in s.char_indices() {
        if in_str {
            match c {
                _ if escape => escape = false,
                '\\' => escape = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' => depth += 1,
            ']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Parses an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{s}` is not an RFC 3339 time such as `2024-05-01T00:00:00Z`"))
}

pub(crate) fn check_type_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("missing type name".into());
    }
    for seg in s.split('/') {
        check_name(seg).map_err(|_| format!("`{s}` is not a valid type name"))?;
    }
    Ok(())
}

pub(crate) fn check_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("`{s}` is not a valid name"))
    }
}

pub(crate) fn check_id(s: &str, allow_wildcard: bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("missing object id".into());
    }
    if s == "*" {
        return if allow_wildcard { Ok(()) } else { Err("a resource cannot be a wildcard".into()) };
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || matches!(c, '#' | '@' | '[' | ']' | '*')) {
        return Err(format!("object id `{s}` contains `{c}`"));
    }
    if s.len() > 1024 {
        return Err("object id is longer than 1024 bytes".into());
    }
    Ok(())
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ty, self.id)
    }
}

impl fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ty, self.id)?;
        if let Some(r) = &self.relation {
            write!(f, "#{r}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Relationship {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.resource, self.relation, self.subject)?;
        if let Some(c) = &self.caveat {
            write!(f, "[{}", c.name)?;
            if let Some(ctx) = &c.context {
                write!(f, ":{}", serde_json::Value::Object(ctx.clone()))?;
            }
            write!(f, "]")?;
        }
        match (self.valid_from, self.expires_at) {
            (None, None) => {}
            (None, Some(e)) => {
                write!(f, "[expiration:{}]", e.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))?
            }
            (from, to) => {
                let t = |x: Option<DateTime<Utc>>| {
                    x.map(|x| x.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)).unwrap_or_default()
                };
                write!(f, "[valid:{}..{}]", t(from), t(to))?
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spicedb_notation() {
        let r = Relationship::parse(
            r#"document:d1#viewer@user:fred[c:{"x":41}][expiration:2023-12-01T00:00:00Z]"#,
        )
        .unwrap();
        assert_eq!(r.resource, ObjectRef::new("document", "d1"));
        assert_eq!(r.caveat.as_ref().unwrap().name, "c");
        assert!(r.expires_at.is_some());
        assert_eq!(Relationship::parse(&r.to_string()).unwrap(), r);
        let u = Relationship::parse("exm/doc:a#wri@exm/usr:tom#...").unwrap();
        assert_eq!(u.subject.relation, None);
        let g = Relationship::parse("doc:a#viewer@group:eng#member").unwrap();
        assert_eq!(g.subject.relation.as_deref(), Some("member"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_round_trips(text in "[a-z:#@*\\[\\]{}\"0-9_./=+|-]{0,40}") {
            if let Ok(r) = Relationship::parse(&text) {
                proptest::prop_assert_eq!(Relationship::parse(&r.to_string()), Ok(r));
            }
        }

        /// The allocation-free parse of plain lines agrees with the full parser: same fields when
        /// it accepts, and it accepts every plain line the full parser accepts.
        #[test]
        fn plain_parse_agrees_with_the_parser(text in "[ a-z:#@*.\\[\\]0-9_/-]{0,40}") {
            let full = Relationship::parse(&text);
            match RelRef::parse_plain(&text) {
                Some(r) => {
                    let o = full.as_ref().map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
                    proptest::prop_assert_eq!(r.to_owned(), o.clone());
                    proptest::prop_assert_eq!(r.to_string(), o.to_string());
                }
                None => {
                    if let Ok(o) = &full {
                        proptest::prop_assert!(
                            text.contains('[') || o.caveat.is_some() || o.expires_at.is_some() || o.valid_from.is_some(),
                            "the full parser accepts the plain line {:?}", text
                        );
                    }
                }
            }
        }

        /// The same on lines shaped like relationships, with odd names and spacing.
        #[test]
        fn plain_parse_agrees_on_relationship_shapes(
            parts in proptest::collection::vec("[a-z][a-z0-9_/-]{0,6}|\\*|\\.\\.\\.|[A-Z0-9 ]{0,3}", 6),
            spaces in 0usize..3,
            with_rel in proptest::bool::ANY,
        ) {
            let pad = " ".repeat(spaces);
            let sub = if with_rel { format!("#{}", parts[5]) } else { String::new() };
            let text = format!("{pad}{}:{}#{}@{}:{}{sub}{pad}", parts[0], parts[1], parts[2], parts[3], parts[4]);
            let full = Relationship::parse(&text);
            match RelRef::parse_plain(&text) {
                Some(r) => proptest::prop_assert_eq!(Ok(r.to_owned()), full),
                None => proptest::prop_assert!(full.is_err(), "the full parser accepts {:?}", text),
            }
        }

        #[test]
        fn never_panics_on_any_text(text in "\\PC{0,60}") {
            let _ = Relationship::parse(&text);
            let _ = SubjectRef::parse(&text);
            let _ = ObjectRef::parse(&text);
        }
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "doc:a#viewer",
            "doc:a@user:b",
            "doc#v@user:b",
            "doc:a#v@user:*#member",
            "doc:a#v@user:b[c",
            ":a#v@u:b",
        ] {
            assert!(Relationship::parse(bad).is_err(), "{bad}");
        }
    }
}
