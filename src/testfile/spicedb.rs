//! SpiceDB validation files, as `zed validate` and SpiceDB's own integration tests read them.
//!
//! ```yaml
//! schema: |                 # SpiceDB schema language (or schemaFile: path)
//!   definition user {}
//!   definition document {
//!     relation viewer: user | user:*
//!     permission view = viewer
//!   }
//! relationships: |          # one per line; blank lines and `//` comments are skipped
//!   document:doc1#viewer@user:tom
//! assertions:
//!   assertTrue: ["document:doc1#view@user:tom"]
//!   assertFalse: ['document:doc1#view@user:fred with {"x": 42}']
//!   assertCaveated: ["document:doc1#view@user:sarah"]
//! validation:               # the exact subjects of object#permission
//!   document:doc1#view:
//!     - "[user:tom] is <document:doc1#viewer>"
//!     - "[user:* - {user:bob}] is <document:doc1#viewer>"
//!     - "[user:sarah[...]] is <document:doc1#viewer>"
//! ```
//!
//! Evaluation is as in SpiceDB: at the current time, and a condition whose parameters are
//! missing makes the answer conditional (`assertCaveated`). Each line under `assertions:` is one
//! assertion. Each key under `validation:` is one assertion, compared as `zed validate` compares
//! it (see `testfile/expected.rs`): the subjects a full expansion of the object and permission
//! reaches — of every type, including usersets such as `group:eng#member` — must be exactly the
//! listed ones, each with the relations it was found under (`is <document:doc1#viewer>`), its
//! caveated mark (`[...]`: a condition on the way, not evaluated) and a wildcard's exclusions.
//!
//! Like SpiceDB's test harness, every file also checks that the lookups agree with check: for
//! each `type#permission` the assertions use, over every object of that type and every subject
//! the file mentions (in relationships or assertions), `check` must equal membership in
//! `who(object, permission)` and in `what(subject, permission, type)`, conditional answers
//! included. That is one more assertion per `type#permission`, named
//! `lookups agree with check for type#permission`; a failure lists the disagreeing triples.

use super::common::{CheckText, Tally};
use super::native::{self, Assertions};
use super::{consistency, expected, FileCtx, Origin};
use crate::api::View;
use crate::api::{parse_relationships, Purview};
use crate::eval::EvalOptions;
use crate::store::{Relationship, WriteOp};
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct File {
    schema: Option<String>,
    schema_file: Option<String>,
    #[serde(default)]
    relationships: Option<String>,
    #[serde(default)]
    assertions: Option<Assertions>,
    #[serde(default)]
    validation: Option<BTreeMap<String, Option<Vec<String>>>>,
}

/// Runs a SpiceDB validation file.
pub(crate) fn run(file: &FileCtx, doc: Value) -> super::Report {
    let mut t = Tally::new(&file.name);
    let f: File = match serde_yaml_ng::from_value(doc) {
        Ok(f) => f,
        Err(e) => {
            t.fail("file", format!("not a valid SpiceDB validation file: {e}"));
            return t.finish();
        }
    };
    let (snap, rels) = match load(file, &f) {
        Ok(x) => x,
        Err(e) => {
            t.fail("file", e);
            return t.finish();
        }
    };
    let base = EvalOptions::default();
    let assertions = f.assertions.as_ref().map(Assertions::all).unwrap_or_default();
    for (kind, text, expected) in &assertions {
        t.record_at(
            (&file.text, "assertions", text),
            format!("{kind} {text}"),
            native::check(&snap, text, *expected, &base),
        );
    }
    for (key, expected) in f.validation.iter().flatten() {
        t.record_at(
            (&file.text, "validation", &format!("{key}:")),
            format!("validation {key}"),
            expected::validate(&snap, key, expected.as_deref().unwrap_or(&[]), &base),
        );
    }
    let checks: Vec<CheckText> =
        assertions.iter().filter_map(|(_, text, _)| CheckText::parse(text).ok()).collect();
    consistency::run(&mut t, "", &snap, &rels, &checks, &base);
    t.finish()
}

fn load(file: &FileCtx, f: &File) -> Result<(View, Vec<Relationship>), String> {
    let schema = match (&f.schema, &f.schema_file) {
        (Some(s), None) => {
            super::compile_spicedb(s, Origin::Inline { file, label: "schema", from_line: 0 }, &file.dir)?
        }
        (None, Some(p)) => {
            let (name, text) = file.read(p)?;
            let dir = file.dir.join(p).parent().map(Path::to_path_buf).unwrap_or_else(|| file.dir.clone());
            super::compile_spicedb(&text, Origin::File(&name), &dir)?
        }
        (Some(_), Some(_)) => return Err("give either `schema` or `schemaFile`, not both".into()),
        (None, None) => return Err("missing `schema` (or `schemaFile`)".into()),
    };
    let rels = parse_relationships(f.relationships.as_deref().unwrap_or(""))
        .map_err(|e| format!("invalid relationships: {e}"))?;
    let pv = Purview::with_engine(schema, file.engine);
    let ops: Vec<WriteOp> = rels.iter().cloned().map(WriteOp::Touch).collect();
    pv.write(&ops).map_err(|e| format!("invalid relationships: {e}"))?;
    Ok((pv.snapshot(), rels))
}
