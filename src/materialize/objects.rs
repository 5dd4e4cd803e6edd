//! Object-major JSON lines, for search indexes: one line per object with the subjects that may
//! see it, the shape of a search engine's bulk update, ordered by object id (so partitions
//! concatenate). Deltas likewise: one line per changed object with the subjects to add and
//! remove.
//!
//! Streamed like the CSV output: the per-subject rows are transposed a block of objects at a
//! time, blocks rendered in parallel and written in order; no line of the whole output is held.

use super::compute::{Control, Materialized};
use super::delta::{Change, DeltaIds};
use super::text::{block_keys, bounds, json_string, write_blocks};
use super::{MaterializeError, Target};
use crate::eval::Tri;
use crate::index::IndexData;
use crate::store::{Obj, Source};
use rayon::prelude::*;
use std::io::Write;

fn list(buf: &mut Vec<u8>, key: &str, names: &[&str]) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(b"\":[");
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(n.as_bytes());
    }
    buf.push(b']');
}

fn start(buf: &mut Vec<u8>, object: &str, permission: &str) {
    buf.extend_from_slice(b"{\"object\":");
    buf.extend_from_slice(object.as_bytes());
    buf.extend_from_slice(b",\"permission\":");
    buf.extend_from_slice(permission.as_bytes());
}

/// Writes `{"object":…,"permission":…,"allowed":[…],"conditional":[…]}` per object with pairs.
pub(super) fn write(
    data: &IndexData,
    m: &Materialized,
    out: &mut dyn Write,
    ctl: &Control<'_>,
) -> Result<(), MaterializeError> {
    let t = m.target;
    let permission = json_string(t.relation_name(&data.schema));
    let subjects: Vec<String> = m
        .rows
        .par_iter()
        .map(|r| {
            let s = t.subject(r.subject);
            json_string(&data.subject_ref(s).to_string())
        })
        .collect();
    let bounds = bounds(m);
    write_blocks(m, out, ctl, |b| {
        let keys = block_keys(m, &bounds, b);
        let mut buf = Vec::with_capacity(keys.len() * 16);
        let mut lists: [Vec<&str>; 2] = [Vec::new(), Vec::new()];
        let mut i = 0;
        while i < keys.len() {
            let object = (keys[i] >> 32) as u32;
            lists.iter_mut().for_each(Vec::clear);
            while i < keys.len() && (keys[i] >> 32) as u32 == object {
                let row = ((keys[i] & 0xffff_ffff) >> 1) as usize;
                let name = subjects.get(row).map(String::as_str).unwrap_or("");
                lists[(keys[i] & 1) as usize].push(name);
                i += 1;
            }
            let name = data.object_ref(Obj { ty: t.object_type, id: object }).to_string();
            start(&mut buf, &json_string(&name), &permission);
            list(&mut buf, "allowed", &lists[0]);
            list(&mut buf, "conditional", &lists[1]);
            buf.extend_from_slice(b"}\n");
        }
        (buf, keys.len() as u64)
    })
}

/// Writes deltas (sorted by object, as [`super::deltas`] returns them) one line per changed
/// object: `{"object":…,"permission":…,"add":[…],"remove":[…],"add_conditional":[…],
/// "remove_conditional":[…]}` (`add`/`remove` for allowed pairs). Applied to the previous
/// object-major output (remove, then add), they give the new one. `data` names the ids (the
/// later revision).
pub fn write_deltas(
    data: &IndexData,
    t: &Target,
    deltas: &[DeltaIds],
    out: &mut dyn Write,
) -> Result<(), MaterializeError> {
    let permission = json_string(t.relation_name(&data.schema));
    let mut buf = Vec::new();
    for group in deltas.chunk_by(|a, b| a.object == b.object) {
        let names: Vec<(usize, String)> = group
            .iter()
            .map(|d| {
                let slot = match (d.change, d.outcome == Tri::Cond) {
                    (Change::Added, false) => 0,
                    (Change::Removed, false) => 1,
                    (Change::Added, true) => 2,
                    (Change::Removed, true) => 3,
                };
                let s = t.subject(d.subject);
                (slot, json_string(&data.subject_ref(s).to_string()))
            })
            .collect();
        let Some(first) = group.first() else { continue };
        let object = data.object_ref(Obj { ty: t.object_type, id: first.object }).to_string();
        start(&mut buf, &json_string(&object), &permission);
        for (slot, key) in ["add", "remove", "add_conditional", "remove_conditional"].into_iter().enumerate()
        {
            let in_slot: Vec<&str> =
                names.iter().filter(|(s, _)| *s == slot).map(|(_, n)| n.as_str()).collect();
            list(&mut buf, key, &in_slot);
        }
        buf.extend_from_slice(b"}\n");
        if buf.len() > 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    Ok(())
}
