//! ReflectSchema and DiffSchema: a compiled schema as SpiceDB's reflection messages.

use super::proto::authzed::api::v1 as pb;
use crate::eval::explain::describe;
use crate::schema::{AllowedKind, RelKind, Schema};
use pb::reflection_schema_diff::Diff;
use pb::reflection_type_reference::Typeref;

fn relation(schema: &Schema, ty: u32, r: &crate::schema::RelationDef) -> pb::ReflectionRelation {
    let tdef = schema.type_def(ty);
    pb::ReflectionRelation {
        name: r.name.clone(),
        comment: r.doc.clone().unwrap_or_default(),
        parent_definition_name: tdef.name.clone(),
        subject_types: r
            .allowed
            .iter()
            .map(|a| pb::ReflectionTypeReference {
                subject_definition_name: schema.type_def(a.ty).name.clone(),
                optional_caveat_name: a
                    .condition
                    .map(|c| schema.condition(c).name.clone())
                    .unwrap_or_default(),
                typeref: Some(match a.kind {
                    AllowedKind::Direct => Typeref::IsTerminalSubject(true),
                    AllowedKind::Wildcard => Typeref::IsPublicWildcard(true),
                    AllowedKind::Userset(rel) => {
                        Typeref::OptionalRelationName(schema.rel_def(a.ty, rel).name.clone())
                    }
                }),
            })
            .collect(),
    }
}

fn definition(schema: &Schema, ty: u32) -> pb::ReflectionDefinition {
    let t = schema.type_def(ty);
    pb::ReflectionDefinition {
        name: t.name.clone(),
        comment: t.doc.clone().unwrap_or_default(),
        relations: t
            .relations
            .iter()
            .filter(|r| r.kind == RelKind::Relation)
            .map(|r| relation(schema, ty, r))
            .collect(),
        permissions: t
            .relations
            .iter()
            .filter(|r| r.kind == RelKind::Permission)
            .map(|r| pb::ReflectionPermission {
                name: r.name.clone(),
                comment: r.doc.clone().unwrap_or_default(),
                parent_definition_name: t.name.clone(),
            })
            .collect(),
    }
}

fn caveat(c: &crate::schema::condition::CompiledCondition) -> pb::ReflectionCaveat {
    pb::ReflectionCaveat {
        name: c.name.clone(),
        comment: c.doc.clone().unwrap_or_default(),
        parameters: c
            .params
            .iter()
            .map(|(n, t)| pb::ReflectionCaveatParameter {
                name: n.clone(),
                r#type: t.to_string(),
                parent_caveat_name: c.name.clone(),
            })
            .collect(),
        expression: c.source.clone(),
    }
}

/// Every definition and caveat of `schema`.
pub fn reflect(schema: &Schema) -> (Vec<pb::ReflectionDefinition>, Vec<pb::ReflectionCaveat>) {
    let defs = (0..schema.types.len() as u32).map(|t| definition(schema, t)).collect();
    let caveats = schema.conditions.iter().map(caveat).collect();
    (defs, caveats)
}

/// What changes from `current` to `other`, as SpiceDB's DiffSchema lists it.
pub fn diff(current: &Schema, other: &Schema) -> Vec<pb::ReflectionSchemaDiff> {
    let mut out = Vec::new();
    let mut push = |d: Diff| out.push(pb::ReflectionSchemaDiff { diff: Some(d) });
    for t in 0..current.types.len() as u32 {
        let name = &current.type_def(t).name;
        if other.type_id(name).is_none() {
            push(Diff::DefinitionRemoved(definition(current, t)));
        }
    }
    for t in 0..other.types.len() as u32 {
        let def = other.type_def(t);
        let Some(ct) = current.type_id(&def.name) else {
            push(Diff::DefinitionAdded(definition(other, t)));
            continue;
        };
        let cdef = current.type_def(ct);
        if cdef.doc != def.doc {
            push(Diff::DefinitionDocCommentChanged(definition(other, t)));
        }
        for r in &cdef.relations {
            if def.relation_id(&r.name).is_none_or(|id| def.relations[id as usize].kind != r.kind) {
                match r.kind {
                    RelKind::Relation => push(Diff::RelationRemoved(relation(current, ct, r))),
                    RelKind::Permission => push(Diff::PermissionRemoved(permission(cdef, r))),
                }
            }
        }
        for r in &def.relations {
            let old =
                cdef.relation_id(&r.name).map(|id| &cdef.relations[id as usize]).filter(|o| o.kind == r.kind);
            match (r.kind, old) {
                (RelKind::Relation, None) => push(Diff::RelationAdded(relation(other, t, r))),
                (RelKind::Permission, None) => push(Diff::PermissionAdded(permission(def, r))),
                (RelKind::Relation, Some(o)) => {
                    let new_ref = relation(other, t, r);
                    let old_ref = relation(current, ct, o);
                    for s in &new_ref.subject_types {
                        if !old_ref.subject_types.contains(s) {
                            push(Diff::RelationSubjectTypeAdded(pb::ReflectionRelationSubjectTypeChange {
                                relation: Some(new_ref.clone()),
                                changed_subject_type: Some(s.clone()),
                            }));
                        }
                    }
                    for s in &old_ref.subject_types {
                        if !new_ref.subject_types.contains(s) {
                            push(Diff::RelationSubjectTypeRemoved(pb::ReflectionRelationSubjectTypeChange {
                                relation: Some(new_ref.clone()),
                                changed_subject_type: Some(s.clone()),
                            }));
                        }
                    }
                    if o.doc != r.doc {
                        push(Diff::RelationDocCommentChanged(new_ref));
                    }
                }
                (RelKind::Permission, Some(o)) => {
                    if describe(current, ct, &o.rewrite) != describe(other, t, &r.rewrite) {
                        push(Diff::PermissionExprChanged(permission(def, r)));
                    }
                    if o.doc != r.doc {
                        push(Diff::PermissionDocCommentChanged(permission(def, r)));
                    }
                }
            }
        }
    }
    for c in &current.conditions {
        if other.condition_id(&c.name).is_none() {
            push(Diff::CaveatRemoved(caveat(c)));
        }
    }
    for c in &other.conditions {
        match current.condition_id(&c.name).map(|id| current.condition(id)) {
            None => push(Diff::CaveatAdded(caveat(c))),
            Some(o) => {
                if o.source != c.source {
                    push(Diff::CaveatExprChanged(caveat(c)));
                }
                if o.doc != c.doc {
                    push(Diff::CaveatDocCommentChanged(caveat(c)));
                }
                let new = caveat(c);
                for p in &new.parameters {
                    match o.params.iter().find(|(n, _)| *n == p.name) {
                        None => push(Diff::CaveatParameterAdded(p.clone())),
                        Some((_, t)) if t.to_string() != p.r#type => {
                            push(Diff::CaveatParameterTypeChanged(pb::ReflectionCaveatParameterTypeChange {
                                parameter: Some(p.clone()),
                                previous_type: t.to_string(),
                            }))
                        }
                        Some(_) => {}
                    }
                }
                for (n, t) in &o.params {
                    if !c.params.iter().any(|(m, _)| m == n) {
                        push(Diff::CaveatParameterRemoved(pb::ReflectionCaveatParameter {
                            name: n.clone(),
                            r#type: t.to_string(),
                            parent_caveat_name: c.name.clone(),
                        }));
                    }
                }
            }
        }
    }
    out
}

fn permission(t: &crate::schema::TypeDef, r: &crate::schema::RelationDef) -> pb::ReflectionPermission {
    pb::ReflectionPermission {
        name: r.name.clone(),
        comment: r.doc.clone().unwrap_or_default(),
        parent_definition_name: t.name.clone(),
    }
}
