"""Random differential testing of `purview serve` against real SpiceDB (v1.54, in process).

Usage: spicedb_diff.py PURVIEW_ADDRESS KEY SEED COUNT    (SPICEDB_LIBRARY_PATH names libspicedb.so)

Each of COUNT cases (seeded: case n of seed s is always the same) writes one random schema and
random relationships to both peers, then asks both the same questions and compares the answers:

- schemas: `user`, `team` (nested membership) and two or three resource types whose relations
  allow users, wildcards, team usersets, usersets of their own type (`res0#rel0`), caveats and
  expiration; permissions of union, intersection and exclusion over relations, other
  permissions, `self` (`use self`: the resource itself as a subject) and arrows (`->`, `.any()`, `.all()`) to an earlier type; recursion through an
  `above` chain, through a union (`reach`) and through an exclusion (`unreach`, which SpiceDB
  accepts; the generated data never cycles);
- questions: every check of every resource (and one that no relationship names) and name, for
  users, a user no relationship names, a team userset and usersets of the resource types,
  among them the resource itself (`res0:a#perm@res0:a#rel0`, `res1:b#perm@res0:a#perm` where
  `a` is `b`'s parent); LookupResources and LookupSubjects for a sample of them.

A lookup that differs is followed by both peers' own checks of the pairs that differ: when
SpiceDB's lookup disagrees with SpiceDB's own check (and Purview's answers agree with that
check), it is the peer contradicting itself, reported apart. Prints one JSON object: counts,
disagreements, peer inconsistencies. The Rust test (tests/it/server/spicedb_diff.rs) runs a few
hundred cases and fails on any disagreement; run this script directly for a longer run (see
README, "Peer conformance").
"""

import datetime
import json
import random
import sys

from oracle import (
    DIRECT,
    FRESH,
    NO,
    TEAMS,
    USERS,
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    Oracle,
    Purview,
    SpiceDB,
    WriteSchemaRequest,
    effective_subjects,
    found_resources,
    full,
    obj,
    pair_answer,
    relationship,
    rel_text,
    subj,
    write,
)

EMPTY = "none"  # an id no relationship names


def ids_of(t):
    return [f"{t[:1]}{t[-1]}x{i}" for i in range(3)]


def gen_schema(rng):
    ntypes = rng.randint(2, 3)
    types, order = {}, []
    for i in range(ntypes):
        t = f"res{i}"
        relations = {}
        own_userset = f"{t}#rel0"
        for j in range(rng.randint(1, 3)):
            pool = DIRECT + ([own_userset] if j > 0 else [])
            allowed = rng.sample(pool, rng.randint(1, 3))
            if j == 0:
                extra = ["user with flag"] + (["user:*"] if rng.random() < 0.6 else [])
                allowed = extra + [a for a in allowed if a not in extra]
            relations[f"rel{j}"] = allowed
        if i > 0 and rng.random() < 0.85:
            relations["parent"] = [f"res{rng.randrange(i)}"]
        if rng.random() < 0.5:
            relations["above"] = [t]
        names = list(relations)
        plain = [n for n in relations if n not in ("parent", "above")]
        permissions = {}
        for k in range(rng.randint(1, 3)):
            atoms = plain + list(permissions)
            if "parent" in relations:
                parent = relations["parent"][0]
                atoms += [
                    rng.choice(["parent->{}", "parent->{}", "parent.any({})", "parent.all({})"]).format(n)
                    for n in types[parent]["names"]
                ]
            if rng.random() < 0.1:
                atoms.append("nil")
            if rng.random() < 0.3:
                atoms.append("self")

            def expr(depth):
                if depth == 0 or rng.random() < 0.35:
                    return rng.choice(atoms)
                op = rng.choice(["+", "+", "&", "-", "-"])
                left, right = expr(depth - 1), expr(depth - 1)
                return left if right == left else f"({left} {op} {right})"

            permissions[f"perm{k}"] = expr(2)
        if "above" in relations:
            permissions["reach"] = f"{rng.choice(plain)} + above->reach"
            if rng.random() < 0.7:
                # Recursion through an exclusion: SpiceDB accepts it; the data never cycles.
                permissions["unreach"] = f"{rng.choice(plain)} - above->unreach"
        types[t] = {"relations": relations, "permissions": permissions, "names": names + list(permissions)}
        order.append(t)
    lines = [
        "use expiration",
        "use self",
        "",
        "caveat flag(allowed bool) {\n  allowed\n}",
        "",
        "caveat small(n int) {\n  n < 5\n}",
        "",
        "definition user {}",
        "",
        "definition team {\n  relation member: user | team#member\n}",
    ]
    for t in order:
        body = [f"  relation {n}: {' | '.join(a)}" for n, a in types[t]["relations"].items()]
        body += [f"  permission {n} = {e}" for n, e in types[t]["permissions"].items()]
        lines += ["", f"definition {t} {{", *body, "}"]
    return "\n".join(lines) + "\n", types


def gen_relationships(rng, types, now):
    rels = {}

    def add(r):
        rels[rel_text(r).split("[")[0]] = r

    for i, t in enumerate(TEAMS):
        for u in rng.sample(USERS, rng.randint(0, 2)):
            add(relationship(("team", t), "member", ("user", u)))
        if i + 1 < len(TEAMS) and rng.random() < 0.6:
            add(relationship(("team", t), "member", ("team", TEAMS[rng.randrange(i + 1, len(TEAMS))], "member")))
    for t, d in types.items():
        ids = ids_of(t)
        for k, rid in enumerate(ids):
            for name, allowed in d["relations"].items():
                for _ in range(rng.randint(0, 3)):
                    a = rng.choice(allowed)
                    if a == "user":
                        add(relationship((t, rid), name, ("user", rng.choice(USERS))))
                    elif a == "user:*":
                        add(relationship((t, rid), name, ("user", "*")))
                    elif a == "team#member":
                        add(relationship((t, rid), name, ("team", rng.choice(TEAMS), "member")))
                    elif a == "user with flag":
                        ctx = rng.choice([None, None, {"allowed": True}, {"allowed": False}])
                        add(relationship((t, rid), name, ("user", rng.choice(USERS)), caveat="flag", context=ctx))
                    elif a == "user with small":
                        ctx = rng.choice([None, {"n": 1}, {"n": 9}])
                        add(relationship((t, rid), name, ("user", rng.choice(USERS)), caveat="small", context=ctx))
                    elif a == "user with expiration":
                        delta = rng.choice([datetime.timedelta(hours=1), datetime.timedelta(hours=-1)])
                        add(relationship((t, rid), name, ("user", rng.choice(USERS)), expires=now + delta))
                    elif a == f"{t}#rel0":
                        # Usersets of the same type point to earlier ids (no cycle), or to itself
                        # (rel1 of x includes rel0 of x: no cycle either).
                        add(relationship((t, rid), name, (t, ids[rng.randrange(k + 1)], "rel0")))
                    elif a == t:
                        if k > 0:
                            add(relationship((t, rid), name, (a, ids[rng.randrange(k)])))
                    else:
                        add(relationship((t, rid), name, (a, rng.choice(ids_of(a)))))
    return list(rels.values())


def subjects_for(types, t, rid):
    """The subjects asked about on `t:rid`: users, a fresh user, a team userset, and usersets of
    resources — the resource itself, another of its type, and its possible parents."""
    out = [("user", u) for u in USERS[:3] + [FRESH]] + [("team", TEAMS[0], "member")]
    out.append((t, rid))  # the resource itself as a plain subject (`self`)
    for name in types[t]["names"]:
        out.append((t, rid, name))
    out.append((t, ids_of(t)[0], types[t]["names"][0]))
    parent = types[t]["relations"].get("parent")
    if parent:
        p = parent[0]
        for name in types[p]["names"]:
            out.append((p, ids_of(p)[0], name))
    seen, unique = set(), []
    for s in out:
        if s not in seen:
            seen.add(s)
            unique.append(s)
    return unique


def same_check(x, y):
    """Equal answers; or both conditional, Purview naming every missing parameter SpiceDB names
    (SpiceDB names only those its CEL evaluation met before stopping, Purview all of them)."""
    if x == y:
        return True
    return isinstance(x, tuple) and isinstance(y, tuple) and x[0] == y[0] == "COND" and set(x[1]) <= set(y[1])


def spicedb_bug(o, code, answer, request):
    """SpiceDB failing with an internal error ("BUG: ...") says something about SpiceDB."""
    if code != "OK" and "BUG:" in str(answer):
        o.count("SpiceDB internal errors")
        o.peer_inconsistencies.append({"kind": "SpiceDB internal error", "request": str(request)[:300], "spicedb": str(answer)[:300]})
        return True
    return False


def show(r, p, s):
    return f"{r[0]}:{r[1]}#{p}@{s[0]}:{s[1]}{'#' + s[2] if len(s) > 2 else ''}"


def one_case(o, rng, n):
    schema, types = gen_schema(rng)
    for p in o.peers:
        p.reset()
    (sc, sa), (pc, pa) = o.both("WriteSchema", WriteSchemaRequest(schema=schema))
    o.purview.types = ["team", *types] if pc == "OK" else o.purview.types
    if sc != "OK" or pc != "OK":
        if sc != pc:
            o.disagree("schema", f"WriteSchema #{n}:\n{schema}", f"{sc} {sa if sc != 'OK' else ''}", f"{pc} {pa if pc != 'OK' else ''}")
        o.count("random schemas refused by both")
        return
    o.count("random schemas")
    o.schema = schema
    now = datetime.datetime.now(datetime.timezone.utc)
    rels = gen_relationships(rng, types, now)
    for i in range(0, len(rels), 500):
        o.must("WriteRelationships", write(*rels[i : i + 500]))
    o.count("random relationships", len(rels))

    items = []
    for t, d in types.items():
        for rid in ids_of(t) + [EMPTY]:
            for name in d["names"]:
                for s in subjects_for(types, t, rid):
                    items.append(((t, rid), name, s))
    for i in range(0, len(items), 500):
        chunk = items[i : i + 500]
        req = CheckBulkPermissionsRequest(
            consistency=full(),
            items=[CheckBulkPermissionsRequestItem(resource=obj(*r), permission=p, subject=subj(*s)) for r, p, s in chunk],
        )
        (sc, sa), (pc, pa) = o.both("CheckBulkPermissions", req)
        if sc != "OK" or pc != "OK":
            o.disagree("bulk check", f"case {n}", f"{sc} {sa if sc != 'OK' else ''}", f"{pc} {pa if pc != 'OK' else ''}", schema=schema)
            continue
        for (r, p, s), a, b in zip(chunk, sa.pairs, pa.pairs):
            x, y = pair_answer(a), pair_answer(b)
            o.count("checks compared")
            o.count(f"checks where SpiceDB answered {x[0] if isinstance(x, tuple) else x}")
            if len(s) > 2 and s[0] != "team":
                o.count("userset-subject checks compared")
                if (s[0], s[1]) == r:
                    o.count("checks of a resource's own userset")
            if not same_check(x, y):
                o.disagree("check", show(r, p, s), x, y, schema=schema, case=n)
            elif x != y:
                o.count("conditional checks where Purview names more missing parameters")

    # Lookups on a sample.
    for t, d in types.items():
        for name in rng.sample(d["names"], min(2, len(d["names"]))):
            for s in rng.sample(subjects_for(types, t, ids_of(t)[0]), 3):
                req = LookupResourcesRequest(consistency=full(), resource_object_type=t, permission=name, subject=subj(*s))
                (sc, sa), (pc, pa) = o.both("LookupResources", req)
                o.count("lookup resources compared")
                if spicedb_bug(o, sc, sa, req):
                    continue
                if sc != "OK" or pc != "OK":
                    if sc != pc:
                        o.disagree("lookup resources", req, f"{sc} {sa if sc != 'OK' else ''}", f"{pc} {pa if pc != 'OK' else ''}")
                    continue
                x, y = found_resources(sa), found_resources(pa)
                if x != y:
                    differ = sorted(k for k in set(x) | set(y) if x.get(k, NO) != y.get(k, NO))
                    own = {rid: [o.own_check(peer, (t, rid), name, s) for peer in o.peers] for rid in differ}
                    o.lookup_differs("lookup resources", req, x, y, own)
            rid = rng.choice(ids_of(t))
            for stype, srel in (("user", ""), ("team", "member"), (t, "rel0"), (t, "")):
                req = LookupSubjectsRequest(
                    consistency=full(), resource=obj(t, rid), permission=name, subject_object_type=stype, optional_subject_relation=srel
                )
                (sc, sa), (pc, pa) = o.both("LookupSubjects", req)
                o.count("lookup subjects compared")
                if spicedb_bug(o, sc, sa, req):
                    continue
                if sc != "OK" or pc != "OK":
                    if sc != pc:
                        o.disagree("lookup subjects", req, f"{sc} {sa if sc != 'OK' else ''}", f"{pc} {pa if pc != 'OK' else ''}")
                    continue
                universe = USERS + [FRESH] if stype == "user" else (TEAMS if stype == "team" else ids_of(t))
                # Every subject either answer names, so a wildcard in one covers a name in the other.
                named = {r.subject.subject_object_id for r in list(sa) + list(pa)} - {"*"}
                universe = universe + sorted(named - set(universe))
                x, y = effective_subjects(sa, universe), effective_subjects(pa, universe)
                if x != y:
                    own = {}
                    for sid in sorted(set(x) | set(y)):
                        if x.get(sid, NO) != y.get(sid, NO):
                            s = (stype, sid, srel) if srel else (stype, sid)
                            own[sid] = [o.own_check(peer, (t, rid), name, s) for peer in o.peers]
                    o.lookup_differs("lookup subjects", req, x, y, own)


def main():
    addr, key, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    spicedb, purview = SpiceDB(), Purview(addr, key)
    o = Oracle(spicedb, purview)
    try:
        for n in range(count):
            one_case(o, random.Random(f"{seed}/{n}"), n)
    finally:
        spicedb.close()
    print(json.dumps({"counts": o.counts, "disagreements": o.disagreements, "peer_inconsistencies": o.peer_inconsistencies}, sort_keys=True, default=str))


if __name__ == "__main__":
    main()
