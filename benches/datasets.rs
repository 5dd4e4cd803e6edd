//! Seeded synthetic datasets shaped like the seed products, for the benches.
//!
//! - **eComms**: users, a forest of nested user groups (depth ≥ 8) with supervisors, accounts
//!   with admins, and messages tagged with 1–3 groups. At scale 1.0: 200k users, 5,000 groups,
//!   3.3M messages, about 10.6M relationships.
//! - **insurance**: a company hierarchy (ternary tree, depth ≥ 10) with administrators and
//!   employees. At scale 1.0: 100k companies, 1M employees.
//!
//! Built straight into the index by dense ids (interning the names), which is what a bulk
//! import does after parsing.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use purview::api::compile_schema;
use purview::index::IndexData;
use purview::schema::Schema;
use purview::store::{Obj, Subject, TupleStore};
use std::sync::Arc;

pub const ECOMMS_SCHEMA: &str = r#"
type user {}

/// A user group; groups nest, and a group's supervisors also supervise its subgroups.
type usergroup {
  relation member: user | usergroup#member
  relation parent: usergroup
  relation supervisor: user | usergroup#member
  permission supervise = supervisor + parent->supervise
}

type account {
  relation admin: user
}

type message {
  relation account: account
  relation tagged: usergroup
  permission view = tagged->supervise + account->admin
}
"#;

pub const INSURANCE_SCHEMA: &str = r#"
type user {}

type company {
  relation subsidiary-of: company
  relation administrator: user
  relation power-user: user
  relation employee: user
  /// Administrators manage their company and every subsidiary, at any depth.
  permission manage = administrator + subsidiary-of->manage
  permission see = manage + power-user
}
"#;

/// A tiny deterministic generator (SplitMix64), so every run builds the same data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub struct Dataset {
    pub data: IndexData,
    pub relationships: usize,
}

struct Builder {
    data: IndexData,
    tuples: Vec<(Obj, u32, Subject)>,
}

impl Builder {
    fn new(schema: Schema) -> Builder {
        Builder { data: IndexData::new(Arc::new(schema)), tuples: Vec::new() }
    }

    fn ty(&self, name: &str) -> u32 {
        self.data.schema.type_id(name).unwrap()
    }

    fn rel(&self, ty: &str, rel: &str) -> (u32, u32) {
        self.data.schema.relation(ty, rel).unwrap()
    }

    /// Interns `prefix{0..n}` for a type; ids equal the numbers.
    fn objects(&mut self, ty: &str, prefix: &str, n: u64) {
        let t = self.ty(ty);
        for i in 0..n {
            let id = self.data.intern(t, &format!("{prefix}{i}"));
            debug_assert_eq!(u64::from(id), i);
        }
    }

    fn add(&mut self, (ty, rel): (u32, u32), object: u64, subject_ty: u32, subject: u64, srel: Option<u32>) {
        self.tuples.push((
            Obj { ty, id: object as u32 },
            rel,
            Subject { ty: subject_ty, id: subject as u32, rel: srel },
        ));
    }

    fn finish(mut self) -> Dataset {
        let n = self.tuples.len();
        self.data.bulk_load_plain(&self.tuples);
        Dataset { data: self.data, relationships: n }
    }
}

pub struct EcommsShape {
    pub users: u64,
    pub groups: u64,
    pub roots: u64,
    pub messages: u64,
    pub accounts: u64,
}

impl EcommsShape {
    pub fn at(scale: f64) -> EcommsShape {
        EcommsShape {
            users: (200_000.0 * scale) as u64,
            groups: 5_000,
            roots: 50,
            messages: (3_300_000.0 * scale) as u64,
            accounts: 3,
        }
    }
}

/// The parent of group `g` (≥ roots) in the group forest: a tree about 1.6-ary, depth ≥ 8.
pub fn group_parent(shape: &EcommsShape, g: u64) -> Option<u64> {
    (g >= shape.roots).then(|| (g - shape.roots) * 5 / 8)
}

/// Group `everyone` (id = groups) contains the first half of the root groups' members.
pub fn ecomms(scale: f64) -> (Dataset, EcommsShape) {
    let shape = EcommsShape::at(scale);
    let mut b = Builder::new(compile_schema("ecomms.pv", ECOMMS_SCHEMA).unwrap());
    let (user, group, account) = (b.ty("user"), b.ty("usergroup"), b.ty("account"));
    b.objects("user", "u", shape.users);
    b.objects("usergroup", "g", shape.groups + 1);
    b.objects("account", "a", shape.accounts);
    b.objects("message", "m", shape.messages);
    let mut rng = Rng::new(7);
    let member = b.rel("usergroup", "member");
    let parent = b.rel("usergroup", "parent");
    let supervisor = b.rel("usergroup", "supervisor");
    for g in 0..shape.groups {
        if let Some(p) = group_parent(&shape, g) {
            // Members of a subgroup are members of its parent; the subgroup points to its parent.
            b.add(member, p, group, g, Some(member.1));
            b.add(parent, g, group, p, None);
        }
        for _ in 0..2 {
            let u = rng.below(shape.users);
            b.add(supervisor, g, user, u, None);
        }
        if g % 10 == 0 {
            // A supervision team: the members of a small group (a leaf far away).
            let team = shape.groups - 1 - (g % 97);
            b.add(supervisor, g, group, team, Some(member.1));
        }
    }
    for r in 0..shape.roots / 2 {
        b.add(member, shape.groups, group, r, Some(member.1));
    }
    for u in 0..shape.users {
        b.add(member, u % shape.groups, user, u, None);
        b.add(member, (u * 7 + 3) % shape.groups, user, u, None);
    }
    let admin = b.rel("account", "admin");
    for a in 0..shape.accounts {
        for k in 0..5 {
            b.add(admin, a, user, (a * 1000 + k) % shape.users, None);
        }
    }
    let acc = b.rel("message", "account");
    let tagged = b.rel("message", "tagged");
    for m in 0..shape.messages {
        b.add(acc, m, account, m % shape.accounts, None);
        let tags = 1 + rng.below(3);
        for _ in 0..tags {
            b.add(tagged, m, group, rng.below(shape.groups), None);
        }
    }
    (b.finish(), shape)
}

pub struct InsuranceShape {
    pub companies: u64,
    pub employees: u64,
}

/// The parent of company `c` in the ternary hierarchy (company 0 is headquarters).
pub fn company_parent(c: u64) -> Option<u64> {
    (c > 0).then(|| (c - 1) / 3)
}

pub fn insurance(scale: f64) -> (Dataset, InsuranceShape) {
    let shape =
        InsuranceShape { companies: (100_000.0 * scale) as u64, employees: (1_000_000.0 * scale) as u64 };
    let mut b = Builder::new(compile_schema("insurance.pv", INSURANCE_SCHEMA).unwrap());
    let (user, company) = (b.ty("user"), b.ty("company"));
    b.objects("user", "u", shape.employees);
    b.objects("company", "c", shape.companies);
    let sub = b.rel("company", "subsidiary-of");
    let admin = b.rel("company", "administrator");
    let power = b.rel("company", "power-user");
    let employee = b.rel("company", "employee");
    let mut rng = Rng::new(11);
    for c in 0..shape.companies {
        if let Some(p) = company_parent(c) {
            b.add(sub, c, company, p, None);
        }
    }
    for u in 0..shape.employees {
        let c = rng.below(shape.companies);
        b.add(employee, c, user, u, None);
        match u % 10 {
            0 => b.add(admin, c, user, u, None),
            1 => b.add(power, c, user, u, None),
            _ => {}
        }
    }
    (b.finish(), shape)
}

/// Resident memory of this process, in bytes (Linux), or 0 when unknown.
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}
