//! OpenFGA modular models: an `fga.mod` manifest names module files, each starting with
//! `module NAME`; their types and conditions combine into one model (schema 1.2), and
//! `extend type X` adds relations to a type another module defines.
//!
//! ```yaml
//! schema: '1.2'
//! contents:
//!   - core.fga
//!   - issue-tracker/projects.fga
//! ```
//!
//! The rules are openfga/language's (`TransformModuleFilesToModel`): every file must be a module;
//! a type or condition defined in two modules is an error, as is extending a type no module
//! defines or adding a relation the type already has. The combined model is then checked as any
//! model. Diagnostics point into the module files: the files are parsed as one text, each in its
//! own range ([`Modules::locate`] maps a span back to its file).

use super::parse_dsl_file;
use crate::diag::{Diagnostic, Diagnostics, SourceFile};
use crate::syntax::ast::{Item, Member, Schema, Span, TypeDef};
use serde::Deserialize;
use std::collections::HashMap;

/// The schema version of a modular model's manifest.
pub const MODULE_SCHEMA_VERSION: &str = "1.2";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    schema: Option<serde_yaml_ng::Value>,
    contents: Option<Vec<String>>,
}

/// Reads an `fga.mod` manifest: the module files it names, in order.
pub fn parse_manifest(text: &str) -> Result<Vec<String>, String> {
    let m: Manifest =
        serde_yaml_ng::from_str(text).map_err(|e| format!("not a valid `fga.mod` manifest: {e}"))?;
    let version = match &m.schema {
        None => return Err("the manifest has no `schema` (write `schema: '1.2'`)".into()),
        Some(serde_yaml_ng::Value::String(s)) => s.clone(),
        Some(serde_yaml_ng::Value::Number(n)) => n.to_string(),
        Some(_) => return Err("`schema` must be a version such as '1.2'".into()),
    };
    if version != MODULE_SCHEMA_VERSION {
        return Err(format!(
            "unsupported schema version `{version}` in the manifest (modular models are schema 1.2)"
        ));
    }
    let contents = m.contents.unwrap_or_default();
    if contents.is_empty() {
        return Err("the manifest names no module files (`contents: [core.fga, ...]`)".into());
    }
    for c in &contents {
        if !c.ends_with(".fga") {
            return Err(format!("`{c}` in `contents` is not a `.fga` file"));
        }
    }
    Ok(contents)
}

/// Reads the manifest and the module files it names; `read` gets a path as the manifest writes
/// it and returns the file's display name and text.
pub fn read_modules(
    manifest: &str,
    mut read: impl FnMut(&str) -> Result<(String, String), String>,
) -> Result<Modules, String> {
    let files = parse_manifest(manifest)?;
    let texts = files.iter().map(|f| read(f)).collect::<Result<Vec<_>, _>>()?;
    Ok(Modules::new(texts))
}

/// Module files laid out as one text, so that one span names a file and a place in it.
#[derive(Clone, Debug)]
pub struct Modules {
    /// (name, start offset, text) per file, in manifest order.
    files: Vec<(String, usize, String)>,
}

impl Modules {
    /// Lays out `(name, text)` files one after the other.
    pub fn new(files: Vec<(String, String)>) -> Modules {
        let mut at = 0;
        let files = files
            .into_iter()
            .map(|(name, text)| {
                let start = at;
                at += text.len() + 1;
                (name, start, text)
            })
            .collect();
        Modules { files }
    }

    /// File `k` alone, at its offset: the text before it blanked (newlines kept), so that
    /// its spans are offsets in the layout.
    fn padded(&self, k: usize) -> String {
        let mut out = String::new();
        for (_, _, text) in self.files.iter().take(k) {
            out.extend(text.bytes().map(|b| if b == b'\n' { '\n' } else { ' ' }));
            out.push('\n');
        }
        if let Some((_, _, text)) = self.files.get(k) {
            out.push_str(text);
        }
        out
    }

    /// The file a span starts in, and the span within that file.
    pub fn locate(&self, span: Span) -> Option<(usize, Span)> {
        let k = self.files.iter().rposition(|(_, start, _)| *start <= span.start)?;
        let (_, start, text) = &self.files[k];
        let end = span.end.saturating_sub(*start).min(text.len());
        Some((k, Span::new(span.start - start, end.max(span.start - start))))
    }

    /// Diagnostics (spans in the layout) grouped by the file each points into; a related place
    /// in another file is named in the note instead.
    pub fn split(&self, d: Diagnostics) -> Vec<(SourceFile, Diagnostics)> {
        let mut by_file: Vec<Vec<Diagnostic>> = vec![Vec::new(); self.files.len()];
        for mut diag in d.0 {
            let Some((k, span)) = self.locate(diag.span) else { continue };
            diag.span = span;
            diag.related = diag
                .related
                .into_iter()
                .filter_map(|(s, note)| {
                    let (j, s) = self.locate(s)?;
                    if j == k {
                        Some((s, note))
                    } else {
                        let (line, col) =
                            SourceFile::new(&self.files[j].0, &*self.files[j].2).line_col(s.start);
                        Some((span, format!("{note}: {}:{line}:{col}", self.files[j].0)))
                    }
                })
                .collect();
            by_file[k].push(diag);
        }
        self.files
            .iter()
            .zip(by_file)
            .filter(|(_, d)| !d.is_empty())
            .map(|((name, _, text), d)| (SourceFile::new(name, &**text), Diagnostics(d)))
            .collect()
    }

    /// Parses every module and combines them into one model (not yet checked as a model), with
    /// the problems found on the way (the model is then what could be combined); spans are
    /// offsets in the layout.
    pub fn combine(&self) -> (Schema, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let mut types: Vec<TypeDef> = Vec::new();
        let mut conditions = Vec::new();
        let mut type_at: HashMap<String, usize> = HashMap::new();
        let mut condition_at: HashMap<String, Span> = HashMap::new();
        let mut extensions: Vec<TypeDef> = Vec::new();
        for (k, (name, start, _)) in self.files.iter().enumerate() {
            let (file, found) = match parse_dsl_file(&self.padded(k)) {
                Ok(f) => f,
                Err(d) => {
                    diags.extend(d.0);
                    continue;
                }
            };
            diags.extend(found);
            if file.module.is_none() {
                diags.push(
                    Diagnostic::new(
                        "openfga-not-a-module",
                        Span::new(*start, *start),
                        format!("`{name}` is not a module"),
                    )
                    .with_help("a file of a modular model starts with `module NAME`"),
                );
                continue;
            }
            for (extend, item) in file.items {
                match item {
                    Item::Type(t) if extend => extensions.push(t),
                    Item::Type(t) => {
                        if let Some(&i) = type_at.get(&t.name.name) {
                            diags.push(
                                Diagnostic::new(
                                    "duplicate-type",
                                    t.name.span,
                                    format!("type `{}` is defined in two modules", t.name.name),
                                )
                                .with_related(types[i].name.span, "first defined here")
                                .with_help("define it once and `extend type` it in the other module"),
                            );
                        } else {
                            type_at.insert(t.name.name.clone(), types.len());
                            types.push(t);
                        }
                    }
                    Item::Condition(c) => {
                        if let Some(first) = condition_at.get(&c.name.name) {
                            diags.push(
                                Diagnostic::new(
                                    "duplicate-condition",
                                    c.name.span,
                                    format!("condition `{}` is defined in two modules", c.name.name),
                                )
                                .with_related(*first, "first defined here"),
                            );
                        } else {
                            condition_at.insert(c.name.name.clone(), c.name.span);
                            conditions.push(Item::Condition(c));
                        }
                    }
                }
            }
        }
        for ext in extensions {
            let Some(&i) = type_at.get(&ext.name.name) else {
                diags.push(
                    Diagnostic::new(
                        "openfga-extend-undefined",
                        ext.name.span,
                        format!("extended type `{}` does not exist", ext.name.name),
                    )
                    .with_help("define the type with `type` in one of the modules"),
                );
                continue;
            };
            for m in ext.members {
                let Some(name) = member_ident(&m) else { continue };
                let first = types[i].members.iter().filter_map(member_ident).find(|x| x.name == name.name);
                if let Some(first) = first {
                    diags.push(
                        Diagnostic::new(
                            "duplicate-relation",
                            name.span,
                            format!("relation `{}` already exists on type `{}`", name.name, ext.name.name),
                        )
                        .with_related(first.span, "first defined here"),
                    );
                    continue;
                }
                types[i].members.push(m);
            }
        }
        let mut items: Vec<Item> = types.into_iter().map(Item::Type).collect();
        items.extend(conditions);
        (Schema { items, end_comments: Vec::new() }, diags)
    }
}

fn member_ident(m: &Member) -> Option<&crate::syntax::ast::Ident> {
    match m {
        Member::Relation(r) => Some(&r.name),
        Member::Permission(p) => Some(&p.name),
        Member::Constraint(_) => None,
    }
}
