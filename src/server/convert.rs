//! SpiceDB's v1 messages to and from Purview's types.

use super::errors::invalid;
use super::proto::authzed::api::v1 as pb;
use crate::api::{RelationMatch, RelationshipFilter, SubjectMatch};
use crate::eval::explain::{Step, Tree};
use crate::store::relationship::{check_id, check_name, check_type_name};
use crate::store::{CaveatRef, ObjectRef, Relationship, SubjectRef};
use chrono::{DateTime, TimeZone, Utc};
use prost_types::value::Kind;
use serde_json::{Map, Number, Value};
use tonic::Status;

/// A type name, an id and (for subjects) a relation, each checked on its own: a `:` or `#`
/// inside one field is an error, never read as a separator. `what` and `part` make the field's
/// name in the message (put together only on an error: this runs on every request).
fn check_field(what: &str, part: &str, r: Result<(), String>) -> Result<(), Status> {
    r.map_err(|reason| invalid(format!("invalid {what}{part}: {reason}")))
}

fn check_object(o: &pb::ObjectReference, what: &str) -> Result<(), Status> {
    check_field(what, " type", check_type_name(&o.object_type))?;
    check_field(what, " id", check_id(&o.object_id, false))
}

/// An object reference (a resource: no wildcard).
pub fn object(o: Option<&pb::ObjectReference>, what: &str) -> Result<ObjectRef, Status> {
    let o = o.ok_or_else(|| invalid(format!("missing {what}")))?;
    check_object(o, what)?;
    Ok(ObjectRef::new(o.object_type.clone(), o.object_id.clone()))
}

/// [`object`], taking the message's strings instead of copying them.
pub fn object_owned(o: Option<pb::ObjectReference>, what: &str) -> Result<ObjectRef, Status> {
    let o = o.ok_or_else(|| invalid(format!("missing {what}")))?;
    check_object(&o, what)?;
    Ok(ObjectRef { ty: o.object_type, id: o.object_id })
}

fn check_subject(s: &pb::SubjectReference) -> Result<&pb::ObjectReference, Status> {
    let o = s.object.as_ref().ok_or_else(|| invalid("missing subject object"))?;
    check_field("subject", " type", check_type_name(&o.object_type))?;
    check_field("subject", " id", check_id(&o.object_id, true))?;
    if !s.optional_relation.is_empty() {
        check_field("subject", " relation", check_name(&s.optional_relation))?;
        if o.object_id == "*" {
            return Err(invalid("a wildcard subject cannot have a relation"));
        }
    }
    Ok(o)
}

pub fn subject(s: Option<&pb::SubjectReference>) -> Result<SubjectRef, Status> {
    let s = s.ok_or_else(|| invalid("missing subject"))?;
    let o = check_subject(s)?;
    let relation = (!s.optional_relation.is_empty()).then(|| s.optional_relation.clone());
    Ok(SubjectRef { ty: o.object_type.clone(), id: o.object_id.clone(), relation })
}

/// [`subject`], taking the message's strings instead of copying them.
pub fn subject_owned(s: Option<pb::SubjectReference>) -> Result<SubjectRef, Status> {
    let s = s.ok_or_else(|| invalid("missing subject"))?;
    check_subject(&s)?;
    let relation = (!s.optional_relation.is_empty()).then_some(s.optional_relation);
    let o = s.object.ok_or_else(|| invalid("missing subject object"))?;
    Ok(SubjectRef { ty: o.object_type, id: o.object_id, relation })
}

pub fn object_ref(o: &ObjectRef) -> pb::ObjectReference {
    pb::ObjectReference { object_type: o.ty.clone(), object_id: o.id.clone() }
}

pub fn subject_ref(s: &SubjectRef) -> pb::SubjectReference {
    pb::SubjectReference {
        object: Some(pb::ObjectReference { object_type: s.ty.clone(), object_id: s.id.clone() }),
        optional_relation: s.relation.clone().unwrap_or_default(),
    }
}

pub fn timestamp(t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Status> {
    let nanos = u32::try_from(t.nanos).map_err(|_| invalid("invalid timestamp"))?;
    Utc.timestamp_opt(t.seconds, nanos).single().ok_or_else(|| invalid("invalid timestamp"))
}

pub fn to_timestamp(t: &DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: t.timestamp_subsec_nanos() as i32 }
}

pub fn relationship(r: Option<&pb::Relationship>) -> Result<Relationship, Status> {
    let r = r.ok_or_else(|| invalid("missing relationship"))?;
    check_field("relation", "", check_name(&r.relation))?;
    let mut out = Relationship::new(
        object(r.resource.as_ref(), "resource")?,
        r.relation.clone(),
        subject(r.subject.as_ref())?,
    );
    if let Some(c) = &r.optional_caveat {
        if c.caveat_name.is_empty() {
            return Err(invalid("a caveat needs a name"));
        }
        out.caveat =
            Some(CaveatRef { name: c.caveat_name.clone(), context: c.context.as_ref().map(json_map) });
    }
    out.expires_at = r.optional_expires_at.as_ref().map(timestamp).transpose()?;
    Ok(out)
}

pub fn to_relationship(r: &Relationship) -> pb::Relationship {
    pb::Relationship {
        resource: Some(object_ref(&r.resource)),
        relation: r.relation.clone(),
        subject: Some(subject_ref(&r.subject)),
        optional_caveat: r.caveat.as_ref().map(|c| pb::ContextualizedCaveat {
            caveat_name: c.name.clone(),
            context: c.context.as_ref().map(to_struct),
        }),
        optional_expires_at: r.expires_at.as_ref().map(to_timestamp),
    }
}

pub fn filter(f: Option<&pb::RelationshipFilter>, required: bool) -> Result<RelationshipFilter, Status> {
    let Some(f) = f else {
        return if required {
            Err(invalid("missing relationship filter"))
        } else {
            Ok(RelationshipFilter::default())
        };
    };
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    if !f.optional_resource_id.is_empty() && !f.optional_resource_id_prefix.is_empty() {
        return Err(invalid("a filter takes a resource id or a resource id prefix, not both"));
    }
    let out = RelationshipFilter {
        resource_type: opt(&f.resource_type),
        resource_id: opt(&f.optional_resource_id),
        resource_id_prefix: opt(&f.optional_resource_id_prefix),
        relation: opt(&f.optional_relation),
        subject: f.optional_subject_filter.as_ref().map(|s| SubjectMatch {
            ty: s.subject_type.clone(),
            id: opt(&s.optional_subject_id),
            relation: s.optional_relation.as_ref().map(|r| {
                if r.relation.is_empty() {
                    RelationMatch::None
                } else {
                    RelationMatch::Named(r.relation.clone())
                }
            }),
        }),
    };
    if required && out == RelationshipFilter::default() {
        return Err(invalid(
            "the relationship filter is empty: name at least a resource type, id, prefix or relation",
        ));
    }
    if out.subject.as_ref().is_some_and(|s| s.ty.is_empty()) {
        return Err(invalid("a subject filter needs a subject type"));
    }
    Ok(out)
}

/// `google.protobuf.Struct` as condition context.
pub fn json_map(s: &prost_types::Struct) -> Map<String, Value> {
    s.fields.iter().map(|(k, v)| (k.clone(), json_value(v))).collect()
}

fn json_value(v: &prost_types::Value) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => {
            // Whole numbers are integers (the CEL `int` parameters expect them).
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Value::Number(Number::from(*n as i64))
            } else {
                Number::from_f64(*n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(json_value).collect()),
        Some(Kind::StructValue(s)) => Value::Object(json_map(s)),
    }
}

pub fn to_struct(m: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct { fields: m.iter().map(|(k, v)| (k.clone(), to_value(v))).collect() }
}

fn to_value(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => {
            Kind::ListValue(prost_types::ListValue { values: a.iter().map(to_value).collect() })
        }
        Value::Object(o) => Kind::StructValue(to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Purview's expand tree as SpiceDB's `PermissionRelationshipTree`.
pub fn tree(t: &Tree) -> pb::PermissionRelationshipTree {
    use pb::permission_relationship_tree::TreeType;
    let head = t.label.split(' ').next().unwrap_or("");
    let (expanded_object, expanded_relation) = match head.split_once('#') {
        Some((o, r)) => (ObjectRef::parse(o).ok().map(|o| object_ref(&o)), r.to_string()),
        None => (None, String::new()),
    };
    let op = |o: pb::algebraic_subject_set::Operation, children: &[Tree]| {
        TreeType::Intermediate(pb::AlgebraicSubjectSet {
            operation: o as i32,
            children: children.iter().map(tree).collect(),
        })
    };
    use pb::algebraic_subject_set::Operation as Op;
    let tree_type = match t.step {
        Step::Intersection => op(Op::Intersection, &t.children),
        Step::Exclusion => op(Op::Exclusion, &t.children),
        Step::Relation
            if !t.children.is_empty() && t.children.iter().all(|c| c.step == Step::Relationship) =>
        {
            TreeType::Leaf(pb::DirectSubjectSet {
                subjects: t
                    .children
                    .iter()
                    .filter_map(|c| c.label.split(' ').next())
                    .filter_map(|s| SubjectRef::parse(s).ok())
                    .map(|s| subject_ref(&s))
                    .collect(),
            })
        }
        Step::Relationship => TreeType::Leaf(pb::DirectSubjectSet {
            subjects: SubjectRef::parse(head).ok().map(|s| subject_ref(&s)).into_iter().collect(),
        }),
        Step::Relation if t.children.len() == 1 => {
            return with_object(tree(&t.children[0]), expanded_object, expanded_relation)
        }
        _ => op(Op::Union, &t.children),
    };
    pb::PermissionRelationshipTree { tree_type: Some(tree_type), expanded_object, expanded_relation }
}

fn with_object(
    mut t: pb::PermissionRelationshipTree,
    o: Option<pb::ObjectReference>,
    r: String,
) -> pb::PermissionRelationshipTree {
    if o.is_some() {
        t.expanded_object = o;
        t.expanded_relation = r;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(ty: &str, id: &str) -> pb::ObjectReference {
        pb::ObjectReference { object_type: ty.into(), object_id: id.into() }
    }

    fn subj(ty: &str, id: &str, relation: &str) -> pb::SubjectReference {
        pb::SubjectReference { object: Some(obj(ty, id)), optional_relation: relation.into() }
    }

    /// The borrowing and the owning conversions agree, answers and error messages alike.
    #[test]
    fn owned_and_borrowed_references_convert_alike() {
        let objects = [obj("document", "d1"), obj("", "d1"), obj("doc#x", "d1"), obj("document", "a b")];
        let messages: Vec<Result<ObjectRef, String>> = objects
            .iter()
            .map(|o| {
                let borrowed = object(Some(o), "resource").map_err(|e| e.message().to_string());
                let owned = object_owned(Some(o.clone()), "resource").map_err(|e| e.message().to_string());
                assert_eq!(borrowed, owned);
                borrowed
            })
            .collect();
        assert_eq!(messages[0], Ok(ObjectRef::new("document", "d1")));
        assert_eq!(messages[1], Err("invalid resource type: missing type name".to_string()));
        assert!(messages[2].as_ref().is_err_and(|m| m.starts_with("invalid resource type: ")));
        assert!(messages[3].as_ref().is_err_and(|m| m.starts_with("invalid resource id: ")));
        assert!(object_owned(None, "resource").is_err_and(|e| e.message() == "missing resource"));

        let subjects = [
            subj("user", "ann", ""),
            subj("group", "eng", "member"),
            subj("user", "*", ""),
            subj("user", "*", "member"),
            subj("group", "eng", "mem ber"),
            subj("user", "", ""),
            pb::SubjectReference { object: None, optional_relation: String::new() },
        ];
        let answers: Vec<Result<SubjectRef, String>> = subjects
            .iter()
            .map(|s| {
                let borrowed = subject(Some(s)).map_err(|e| e.message().to_string());
                let owned = subject_owned(Some(s.clone())).map_err(|e| e.message().to_string());
                assert_eq!(borrowed, owned);
                borrowed
            })
            .collect();
        assert_eq!(answers[0], Ok(SubjectRef::new("user", "ann", None)));
        assert_eq!(answers[1], Ok(SubjectRef::new("group", "eng", Some("member"))));
        assert_eq!(answers[2], Ok(SubjectRef::new("user", "*", None)));
        assert_eq!(answers[3], Err("a wildcard subject cannot have a relation".to_string()));
        assert!(answers[4].as_ref().is_err_and(|m| m.starts_with("invalid subject relation: ")));
        assert_eq!(answers[5], Err("invalid subject id: missing object id".to_string()));
        assert_eq!(answers[6], Err("missing subject object".to_string()));
    }
}
