//! A compiled rewrite back as text, the way a schema author writes it.

use super::{Rewrite, Schema};
use crate::syntax::ast::ArrowMode;
use std::fmt::Write as _;

/// A rewrite as the schema author wrote it: `viewer + parent->view - banned`.
pub fn describe(schema: &Schema, ty: u32, rw: &Rewrite) -> String {
    fn go(schema: &Schema, ty: u32, rw: &Rewrite, prec: u8, out: &mut String) {
        let tdef = schema.type_def(ty);
        let wrap = |p: u8, out: &mut String, f: &dyn Fn(&mut String)| {
            if p < prec {
                out.push('(');
                f(out);
                out.push(')');
            } else {
                f(out);
            }
        };
        match rw {
            Rewrite::This => out.push_str("this"),
            Rewrite::Nil => out.push_str("nil"),
            Rewrite::SelfRef => out.push_str("self"),
            Rewrite::Computed(r) => out.push_str(&tdef.relations[*r as usize].name),
            Rewrite::Arrow { tupleset, target_name, mode, .. } => {
                let ts = &tdef.relations[*tupleset as usize].name;
                match mode {
                    ArrowMode::Any => {
                        let _ = write!(out, "{ts}->{target_name}");
                    }
                    ArrowMode::All => {
                        let _ = write!(out, "{ts}.all({target_name})");
                    }
                }
            }
            Rewrite::Exclusion(a, b) => wrap(0, out, &|out| {
                go(schema, ty, a, 0, out);
                out.push_str(" - ");
                go(schema, ty, b, 1, out);
            }),
            Rewrite::Union(v) => wrap(1, out, &|out| {
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" + ");
                    }
                    go(schema, ty, x, 2, out);
                }
            }),
            Rewrite::Intersection(v) => wrap(2, out, &|out| {
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" & ");
                    }
                    go(schema, ty, x, 3, out);
                }
            }),
        }
    }
    let mut out = String::new();
    go(schema, ty, rw, 0, &mut out);
    out
}
