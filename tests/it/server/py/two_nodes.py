"""The official SpiceDB Python client (`authzed`) against two `purview serve` nodes that share
one PostgreSQL database: writes on one node, reads on the other with the write's ZedToken.

Usage: two_nodes.py ADDRESS_A ADDRESS_B KEY

Speaks to the nodes only through `authzed.api.v1.Client` with the bearer-token credentials of
`grpcutil`, as an application spread over several SpiceDB replicas would, and prints one JSON
object: what every call answered. The Rust test (tests/it/postgres/python.rs) holds the
expectations; this script decides nothing beyond recording, except that it stops with an
exception when a call that must succeed fails (the traceback is the test's failure message).
"""

import json
import sys
import threading

import grpc
from authzed.api.v1 import (
    CheckPermissionRequest,
    CheckPermissionResponse,
    Client,
    Consistency,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    ReadRelationshipsRequest,
    ReadSchemaRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectReference,
    WatchRequest,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)
from grpcutil import insecure_bearer_token_credentials

SCHEMA = """
definition user {}

definition group {
  relation member: user | group#member
}

definition document {
  relation viewer: user | group#member
  relation owner: user
  permission view = viewer + owner
}
"""

TOUCH = RelationshipUpdate.Operation.OPERATION_TOUCH
CREATE = RelationshipUpdate.Operation.OPERATION_CREATE
DELETE = RelationshipUpdate.Operation.OPERATION_DELETE

# What is asked on the other node right after each write.
USERS = ("alice", "bob", "carol", "dave")
DOCUMENTS = ("d1", "d2", "d3", "d4")

# The writes on node A, in order: (label, [(operation, relationship)]).
WRITES_ON_A = [
    ("owner_alice", [(TOUCH, "document:d1#owner@user:alice")]),
    ("viewers", [(TOUCH, "document:d1#viewer@group:eng#member"), (CREATE, "document:d2#viewer@user:bob")]),
    ("member_bob", [(TOUCH, "group:eng#member@user:bob")]),
    ("delete_owner_alice", [(DELETE, "document:d1#owner@user:alice")]),
    ("carol_and_nested", [(TOUCH, "document:d3#owner@user:carol"), (TOUCH, "group:eng#member@group:leads#member"),
                          (TOUCH, "group:leads#member@user:carol"), (DELETE, "document:d2#viewer@user:bob")]),
]
# The write on node B, read back on A.
WRITE_ON_B = ("viewer_dave", [(TOUCH, "document:d4#viewer@user:dave")])


def obj(t, i):
    return ObjectReference(object_type=t, object_id=i)


def subj(t, i, r=""):
    return SubjectReference(object=obj(t, i), optional_relation=r)


def rel(text):
    """`type:id#rel@stype:sid[#srel]` as a Relationship."""
    res, sub = text.split("@")
    o, r = res.split("#")
    ot, oid = o.split(":")
    s, _, srel = sub.partition("#")
    st, sid = s.split(":")
    return Relationship(resource=obj(ot, oid), relation=r, subject=subj(st, sid, srel))


def rel_text(r):
    s = f"{r.resource.object_type}:{r.resource.object_id}#{r.relation}@{r.subject.object.object_type}:{r.subject.object.object_id}"
    if r.subject.optional_relation:
        s += "#" + r.subject.optional_relation
    return s


def op_name(op):
    return RelationshipUpdate.Operation.Name(op)


def perm_name(p):
    return CheckPermissionResponse.Permissionship.Name(p)


def fresh(token):
    return Consistency(at_least_as_fresh=token)


def write(client, ops):
    """One WriteRelationships call; its written_at token."""
    request = WriteRelationshipsRequest(
        updates=[RelationshipUpdate(operation=op, relationship=rel(text)) for op, text in ops]
    )
    return client.WriteRelationships(request).written_at


def answers(client, token):
    """Everything asked of `client` at least as fresh as `token`: every (document, user) check,
    the documents each user may view, the users who may view each document, and the
    relationships of every document."""
    # First, before anything else waits for `token`: one check at exactly its revision (the
    # node catches up first if it must).
    exact = client.CheckPermission(
        CheckPermissionRequest(
            consistency=Consistency(at_exact_snapshot=token),
            resource=obj("document", DOCUMENTS[0]),
            permission="view",
            subject=subj("user", USERS[0]),
        )
    )
    checks = {}
    for d in DOCUMENTS:
        for u in USERS:
            r = client.CheckPermission(
                CheckPermissionRequest(
                    consistency=fresh(token), resource=obj("document", d), permission="view", subject=subj("user", u)
                )
            )
            checks[f"{d}@{u}"] = perm_name(r.permissionship)
    resources = {
        u: sorted(
            r.resource_object_id
            for r in client.LookupResources(
                LookupResourcesRequest(
                    consistency=fresh(token), resource_object_type="document", permission="view", subject=subj("user", u)
                )
            )
        )
        for u in USERS
    }
    subjects = {
        d: sorted(
            r.subject.subject_object_id
            for r in client.LookupSubjects(
                LookupSubjectsRequest(
                    consistency=fresh(token), resource=obj("document", d), permission="view", subject_object_type="user"
                )
            )
        )
        for d in DOCUMENTS
    }
    relationships = sorted(
        rel_text(r.relationship)
        for r in client.ReadRelationships(
            ReadRelationshipsRequest(consistency=fresh(token), relationship_filter=RelationshipFilter(resource_type="document"))
        )
    )
    return {
        "exact": {f"{DOCUMENTS[0]}@{USERS[0]}": perm_name(exact.permissionship)},
        "checks": checks,
        "lookup_resources": resources,
        "lookup_subjects": subjects,
        "relationships": relationships,
    }


def main():
    addr_a, addr_b, key = sys.argv[1], sys.argv[2], sys.argv[3]
    a = Client(addr_a, insecure_bearer_token_credentials(key))
    b = Client(addr_b, insecure_bearer_token_credentials(key))
    out = {}

    # ---- the schema, written on A, read on B ----
    schema_token = a.WriteSchema(WriteSchemaRequest(schema=SCHEMA)).written_at
    out["schema_token_nonempty"] = bool(schema_token.token)
    # ---- a watch on B, from the schema's token (written on A), limited to documents; started
    # at once, before B may have caught up with A: B catches up first, as SpiceDB on a shared
    # datastore accepts any committed revision ----
    watch_client = Client(addr_b, insecure_bearer_token_credentials(key))
    stream = watch_client.Watch(WatchRequest(optional_object_types=["document"], optional_start_cursor=schema_token))
    # A check on B at least as fresh as the schema's token (answered against the new schema).
    first = b.CheckPermission(
        CheckPermissionRequest(
            consistency=fresh(schema_token), resource=obj("document", "d1"), permission="view", subject=subj("user", "alice")
        )
    )
    out["check_on_b_after_schema"] = perm_name(first.permissionship)
    text = b.ReadSchema(ReadSchemaRequest()).schema_text
    out["schema_read_on_b"] = all(w in text for w in ("definition document", "group#member", "permission view"))

    expected_updates = sum(
        sum(1 for _, text in ops if text.startswith("document:")) for _, ops in WRITES_ON_A + [WRITE_ON_B]
    )
    seen = []  # one entry per response: {"updates": [...], "changes_through": token}
    done = threading.Event()

    def watch():
        try:
            count = 0
            for response in stream:
                ups = [f"{op_name(u.operation)} {rel_text(u.relationship)}" for u in response.updates]
                seen.append({"updates": ups, "changes_through": response.changes_through.token})
                count += len(ups)
                if count >= expected_updates:
                    break
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.CANCELLED:
                seen.append({"error": e.code().name, "details": e.details()})
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()

    # ---- writes on A, each read at once on B with its token ----
    steps = []
    tokens = {}
    for label, ops in WRITES_ON_A:
        token = write(a, ops)
        tokens[token.token] = label
        steps.append({"label": label, "on": "B", **answers(b, token)})

    # ---- a write on B, read at once on A with B's token ----
    label, ops = WRITE_ON_B
    token = write(b, ops)
    tokens[token.token] = label
    steps.append({"label": label, "on": "A", **answers(a, token)})
    out["steps"] = steps

    done.wait(10)
    stream.cancel()
    thread.join(5)
    # Which write each response's changes_through names (the token its write returned).
    out["watch"] = [
        {"write": tokens.get(s["changes_through"], "unknown token " + s["changes_through"]), "updates": sorted(s["updates"])}
        if "updates" in s
        else s
        for s in list(seen)
    ]
    out["watch_complete"] = done.is_set()

    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
