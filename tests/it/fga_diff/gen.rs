//! Random OpenFGA store files for the differential test: a model (direct types with usersets,
//! wildcards and conditions; computed relations; `from` arrows; union, intersection and exclusion;
//! recursion through usersets and arrows), tuples it accepts, and every check, list-objects and
//! list-users question over a small universe, with placeholder expectations for OpenFGA to answer.

use serde_json::{json, Map, Value};

/// splitmix64: a seeded, portable stream (a case is reproduced from its seed alone).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// A condition the generator may use: its declaration, and a random value per parameter.
struct Cond {
    name: &'static str,
    decl: &'static str,
    params: &'static [&'static str],
}

const CONDS: [Cond; 6] = [
    Cond { name: "c_int", decl: "c_int(x: int, limit: int) {\n    x < limit\n  }", params: &["x", "limit"] },
    Cond {
        name: "c_ip",
        decl: "c_ip(ip: ipaddress) {\n    ip.in_cidr(\"10.0.0.0/8\")\n  }",
        params: &["ip"],
    },
    Cond {
        name: "c_list",
        decl: "c_list(s: string, allowed: list<string>) {\n    s in allowed\n  }",
        params: &["s", "allowed"],
    },
    Cond {
        name: "c_time",
        decl: "c_time(now: timestamp, until: timestamp, grace: duration) {\n    now < until + grace\n  }",
        params: &["now", "until", "grace"],
    },
    Cond {
        name: "c_num",
        decl: "c_num(d: double, n: uint, m: map<bool>) {\n    d < 2.5 && n > 3u && m[\"k\"]\n  }",
        params: &["d", "n", "m"],
    },
    Cond { name: "c_bool", decl: "c_bool(b: bool) {\n    b\n  }", params: &["b"] },
];

fn param_value(rng: &mut Rng, param: &str) -> Value {
    match param {
        "x" | "limit" => json!(rng.below(20)),
        "ip" => json!(["10.1.2.3", "192.168.0.1", "10.255.0.9", "11.0.0.1"][rng.below(4)]),
        "s" => json!(["a", "b", "c"][rng.below(3)]),
        "allowed" => {
            let all = ["a", "b", "c"];
            json!(all.iter().filter(|_| rng.chance(50)).collect::<Vec<_>>())
        }
        "now" | "until" => json!(format!("2026-01-0{}T00:00:00Z", 1 + rng.below(5))),
        "grace" => json!(["0s", "24h", "36h", "1h30m"][rng.below(4)]),
        "d" => json!([1.5, 2.5, 3.0, 0.0][rng.below(4)]),
        "n" => json!(rng.below(8)),
        "m" => json!({"k": rng.chance(60), "j": rng.chance(50)}),
        _ => json!(rng.chance(50)),
    }
}

/// A restriction in `[...]`.
#[derive(Clone, PartialEq)]
enum Restriction {
    User,
    Wildcard,
    UserWith(usize),
    Object(usize),
    Userset(usize, usize),
}

struct Relation {
    /// The direct types, if the relation has any (an empty list: computed only).
    direct: Vec<Restriction>,
    /// The rest of the definition after the direct types (or all of it), as DSL text.
    rest: Option<(&'static str, String)>,
}

pub struct Case {
    /// The model in OpenFGA's DSL.
    pub model: String,
    /// The store file with placeholder expectations.
    pub file: Value,
}

const USERS: [&str; 4] = ["user:u0", "user:u1", "user:u2", "user:u3"];
const IDS: [&str; 3] = ["o0", "o1", "o2"];

pub fn case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let ntypes = 2 + rng.below(2);
    let nrels: Vec<usize> = (0..ntypes).map(|_| 1 + rng.below(3)).collect();
    // First the direct types of every relation, so that later choices know which relations are
    // plain (usable as a tupleset).
    let mut rels: Vec<Vec<Relation>> = Vec::new();
    for n in &nrels {
        let mut v = Vec::new();
        for j in 0..*n {
            let direct = if j == 0 || rng.chance(60) { restrictions(&mut rng, &nrels) } else { Vec::new() };
            v.push(Relation { direct, rest: None });
        }
        rels.push(v);
    }
    for t in 0..ntypes {
        for j in 0..nrels[t] {
            let direct = &rels[t][j].direct;
            let has_direct = !direct.is_empty();
            // A tupleset stays a relation of object types only.
            let tupleset = has_direct && direct.iter().all(|x| matches!(x, Restriction::Object(_)));
            if tupleset || (has_direct && rng.chance(50)) {
                continue;
            }
            let op = *rng.pick(&["or", "and", "but not"]);
            let a = operand(&mut rng, &rels, t, j);
            let b = operand(&mut rng, &rels, t, j);
            let (Some(a), Some(b)) = (a, b) else {
                if !has_direct {
                    rels[t][j].direct = vec![Restriction::User];
                }
                continue;
            };
            let rest = if has_direct {
                // `[..] or (a op b)`
                let outer = *rng.pick(&["or", "and", "but not"]);
                (outer, format!("({a} {op} {b})"))
            } else {
                ("", format!("{a} {op} {b}"))
            };
            rels[t][j].rest = Some(rest);
        }
    }
    let mut used = vec![false; CONDS.len()];
    let mut model = String::from("model\n  schema 1.1\ntype user\n");
    for (t, rs) in rels.iter().enumerate() {
        model.push_str(&format!("type t{t}\n  relations\n"));
        for (j, r) in rs.iter().enumerate() {
            let mut def = String::new();
            if !r.direct.is_empty() {
                let parts: Vec<String> = r.direct.iter().map(|x| restriction_text(x, &mut used)).collect();
                def.push_str(&format!("[{}]", parts.join(", ")));
            }
            if let Some((op, text)) = &r.rest {
                if def.is_empty() {
                    def.push_str(text);
                } else {
                    def.push_str(&format!(" {op} {text}"));
                }
            }
            model.push_str(&format!("    define r{j}: {def}\n"));
        }
    }
    // Sometimes a condition no relation uses (OpenFGA accepts it).
    if rng.chance(15) {
        used[rng.below(CONDS.len())] = true;
    }
    for (c, _) in CONDS.iter().zip(&used).filter(|(_, u)| **u) {
        model.push_str(&format!("condition {}\n", c.decl));
    }
    let conds: Vec<&Cond> = CONDS.iter().zip(&used).filter(|(_, u)| **u).map(|(c, _)| c).collect();

    let mut tests = Vec::new();
    for k in 0..2 {
        let tuples = tuples(&mut rng, &rels, &conds);
        let mut context = Map::new();
        for c in &conds {
            for p in c.params {
                context.insert((*p).to_string(), param_value(&mut rng, p));
            }
        }
        tests.push(questions(&rels, format!("t{k}"), tuples, Value::Object(context)));
    }
    let file = json!({"name": format!("seed {seed}"), "model": model, "tests": tests});
    Case { model, file }
}

fn restrictions(rng: &mut Rng, nrels: &[usize]) -> Vec<Restriction> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let r = match rng.below(10) {
            0..=2 => Restriction::User,
            3 => Restriction::Wildcard,
            4 => Restriction::UserWith(rng.below(CONDS.len())),
            5..=6 => Restriction::Object(rng.below(nrels.len())),
            _ => {
                let t = rng.below(nrels.len());
                Restriction::Userset(t, rng.below(nrels[t]))
            }
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    // Mostly with users, so that most models have entry points.
    let users =
        out.iter().any(|r| matches!(r, Restriction::User | Restriction::Wildcard | Restriction::UserWith(_)));
    if !users && rng.chance(70) {
        out.insert(0, Restriction::User);
    }
    out
}

fn restriction_text(r: &Restriction, used: &mut [bool]) -> String {
    match r {
        Restriction::User => "user".into(),
        Restriction::Wildcard => "user:*".into(),
        Restriction::UserWith(c) => {
            used[*c] = true;
            format!("user with {}", CONDS[*c].name)
        }
        Restriction::Object(t) => format!("t{t}"),
        Restriction::Userset(t, j) => format!("t{t}#r{j}"),
    }
}

/// A computed relation (an earlier one of the same type) or `rX from rY`, where `rY` is a
/// relation of object types only and `rX` exists on one of them (any relation: recursion).
fn operand(rng: &mut Rng, rels: &[Vec<Relation>], t: usize, j: usize) -> Option<String> {
    let tuplesets: Vec<(usize, usize)> = rels[t]
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.direct.is_empty() && r.direct.iter().all(|x| matches!(x, Restriction::Object(_))))
        .filter_map(|(k, r)| match r.direct.first() {
            Some(Restriction::Object(u)) => Some((k, *u)),
            _ => None,
        })
        .collect();
    if !tuplesets.is_empty() && rng.chance(45) {
        let (k, target_type) = *rng.pick(&tuplesets);
        let x = rng.below(rels[target_type].len());
        return Some(format!("r{x} from r{k}"));
    }
    if j > 0 {
        return Some(format!("r{}", rng.below(j)));
    }
    None
}

fn tuples(rng: &mut Rng, rels: &[Vec<Relation>], conds: &[&Cond]) -> Vec<Value> {
    let direct: Vec<(usize, usize)> = rels
        .iter()
        .enumerate()
        .flat_map(|(t, rs)| {
            rs.iter().enumerate().filter(|(_, r)| !r.direct.is_empty()).map(move |(j, _)| (t, j))
        })
        .collect();
    let mut out: Vec<Value> = Vec::new();
    for _ in 0..6 + rng.below(20) {
        let (t, j) = *rng.pick(&direct);
        let r = rng.pick(&rels[t][j].direct).clone();
        let object = format!("t{t}:{}", rng.pick(&IDS));
        let mut tuple = Map::new();
        let user: String = match &r {
            Restriction::User | Restriction::UserWith(_) => (*rng.pick(&USERS[..3])).to_string(),
            Restriction::Wildcard => "user:*".into(),
            Restriction::Object(u) => format!("t{u}:{}", rng.pick(&IDS)),
            Restriction::Userset(u, k) => format!("t{u}:{}#r{k}", rng.pick(&IDS)),
        };
        tuple.insert("user".into(), json!(user.clone()));
        tuple.insert("relation".into(), json!(format!("r{j}")));
        tuple.insert("object".into(), json!(object));
        if let Restriction::UserWith(c) = r {
            let cond = &CONDS[c];
            let mut condition = Map::new();
            condition.insert("name".into(), json!(cond.name));
            // Some parameters fixed by the tuple, the rest from the request.
            let mut ctx = Map::new();
            for p in cond.params {
                if rng.chance(30) {
                    ctx.insert((*p).to_string(), param_value(rng, p));
                }
            }
            if !ctx.is_empty() {
                condition.insert("context".into(), Value::Object(ctx));
            }
            tuple.insert("condition".into(), Value::Object(condition));
            debug_assert!(conds.iter().any(|x| x.name == cond.name));
        }
        if user == object_userset(&object, j) {
            // OpenFGA refuses to store what always holds (`t0:o0#r0@t0:o0#r0`).
            continue;
        }
        let tuple = Value::Object(tuple);
        // OpenFGA refuses a tuple given twice (with or without a condition).
        let key = |v: &Value| (v["user"].clone(), v["relation"].clone(), v["object"].clone());
        if !out.iter().any(|o| key(o) == key(&tuple)) {
            out.push(tuple);
        }
    }
    out
}

fn object_userset(object: &str, j: usize) -> String {
    format!("{object}#r{j}")
}

/// Every check (users × objects × relations), list-objects (user × type × relation) and
/// list-users (object × relation, for the filter `user` and for each userset restriction).
fn questions(rels: &[Vec<Relation>], name: String, tuples: Vec<Value>, context: Value) -> Value {
    let mut check = Vec::new();
    let mut list_objects = Vec::new();
    let mut list_users = Vec::new();
    let mut filters = vec![json!({"type": "user"})];
    for r in rels.iter().flatten() {
        for x in &r.direct {
            if let Restriction::Userset(u, k) = x {
                let f = json!({"type": format!("t{u}"), "relation": format!("r{k}")});
                if !filters.contains(&f) {
                    filters.push(f);
                }
            }
        }
    }
    for (t, rs) in rels.iter().enumerate() {
        let falses: Map<String, Value> = (0..rs.len()).map(|j| (format!("r{j}"), json!(false))).collect();
        let empties: Map<String, Value> = (0..rs.len()).map(|j| (format!("r{j}"), json!([]))).collect();
        let objects: Vec<String> = IDS.iter().map(|i| format!("t{t}:{i}")).collect();
        check.push(json!({"users": USERS, "objects": objects, "context": context, "assertions": falses}));
        // Usersets as users, to compare list-users on usersets with OpenFGA's own checks.
        for f in filters.iter().skip(1) {
            let users: Vec<String> = IDS
                .iter()
                .map(|i| {
                    format!(
                        "{}:{i}#{}",
                        f["type"].as_str().unwrap_or(""),
                        f["relation"].as_str().unwrap_or("")
                    )
                })
                .collect();
            check.push(json!({"users": users, "objects": objects, "context": context, "assertions": falses}));
        }
        for u in USERS {
            list_objects
                .push(json!({"user": u, "type": format!("t{t}"), "context": context, "assertions": empties}));
        }
        let users: Map<String, Value> =
            (0..rs.len()).map(|j| (format!("r{j}"), json!({"users": []}))).collect();
        for o in &objects {
            for f in &filters {
                list_users
                    .push(json!({"object": o, "user_filter": [f], "context": context, "assertions": users}));
            }
        }
    }
    json!({
        "name": name,
        "tuples": tuples,
        "check": check,
        "list_objects": list_objects,
        "list_users": list_users,
    })
}
