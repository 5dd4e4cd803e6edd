"""The official SpiceDB Python client (`authzed`) against `purview serve`.

Usage: spicedb_client.py ADDRESS KEY

Speaks to the server only through `authzed.api.v1.Client` with the bearer-token credentials of
`grpcutil`, as an application written for SpiceDB would, and prints one JSON object: what every
call answered (a permissionship, a set of ids, a status code name). The Rust test
(tests/it/server/python.rs) holds the expectations and asserts each answer; this script decides
nothing beyond recording, except that it stops with an exception when a call that must succeed
fails (the traceback is the test's failure message).
"""

import datetime
import json
import sys
import threading
import time

import grpc
from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Client,
    Consistency,
    ContextualizedCaveat,
    DeleteRelationshipsRequest,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    Precondition,
    ReadRelationshipsRequest,
    ReadSchemaRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectFilter,
    SubjectReference,
    WatchRequest,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)
from authzed.api.v1.permission_service_pb2 import (
    ExportBulkRelationshipsRequest,
    ImportBulkRelationshipsRequest,
    LookupPermissionship,
)
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from grpcutil import insecure_bearer_token_credentials

SCHEMA = """
use expiration

caveat on_network(allowed_ip string, ip string) {
  ip == allowed_ip
}

definition user {}

definition group {
  relation member: user | group#member
}

definition folder {
  relation viewer: user | group#member
  permission view = viewer
}

definition document {
  relation folder: folder
  relation owner: user
  relation viewer: user | user:* | group#member | user with on_network | user with expiration
  relation banned: user
  permission view = (viewer + owner + folder->view) - banned
  permission edit = owner
}
"""

TOUCH = RelationshipUpdate.Operation.OPERATION_TOUCH
CREATE = RelationshipUpdate.Operation.OPERATION_CREATE
DELETE = RelationshipUpdate.Operation.OPERATION_DELETE


def obj(t, i):
    return ObjectReference(object_type=t, object_id=i)


def subj(t, i, r=""):
    return SubjectReference(object=obj(t, i), optional_relation=r)


def rel(text, caveat=None, context=None, expires=None):
    """`type:id#rel@stype:sid[#srel]` as a Relationship."""
    res, sub = text.split("@")
    o, r = res.split("#")
    ot, oid = o.split(":")
    s, _, srel = sub.partition("#")
    st, sid = s.split(":")
    out = Relationship(resource=obj(ot, oid), relation=r, subject=subj(st, sid, srel))
    if caveat:
        out.optional_caveat.CopyFrom(ContextualizedCaveat(caveat_name=caveat, context=struct(context or {})))
    if expires is not None:
        ts = Timestamp()
        ts.FromDatetime(expires)
        out.optional_expires_at.CopyFrom(ts)
    return out


def rel_text(r):
    s = f"{r.resource.object_type}:{r.resource.object_id}#{r.relation}@{r.subject.object.object_type}:{r.subject.object.object_id}"
    if r.subject.optional_relation:
        s += "#" + r.subject.optional_relation
    if r.HasField("optional_caveat"):
        s += f"[{r.optional_caveat.caveat_name}]"
    if r.HasField("optional_expires_at"):
        s += "[expires]"
    return s


def struct(d):
    s = Struct()
    s.update(d)
    return s


def updates(op, *rels):
    return [RelationshipUpdate(operation=op, relationship=r) for r in rels]


def full():
    return Consistency(fully_consistent=True)


def perm_name(p):
    return CheckPermissionResponse.Permissionship.Name(p)


def lookup_name(p):
    return LookupPermissionship.Name(p)


def status_name(number):
    """The name of a numeric gRPC status code (as in `google.rpc.Status.code`)."""
    return next((c.name for c in grpc.StatusCode if c.value[0] == number), f"CODE_{number}")


def code_of(call):
    """Runs `call`; the gRPC status code name it failed with, or "OK"."""
    try:
        call()
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def main():
    addr, key = sys.argv[1], sys.argv[2]
    client = Client(addr, insecure_bearer_token_credentials(key))
    out = {}

    # ---- schema ----
    client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
    text = client.ReadSchema(ReadSchemaRequest()).schema_text
    out["schema_read_back"] = all(w in text for w in ("document", "on_network", "banned", "group"))

    # ---- writes ----
    now = datetime.datetime.now(datetime.timezone.utc)
    base = [
        rel("group:eng#member@user:alice"),
        rel("group:eng#member@group:leads#member"),
        rel("group:leads#member@user:bob"),
        rel("folder:f1#viewer@group:eng#member"),
        rel("document:d1#folder@folder:f1"),
        rel("document:d1#owner@user:carol"),
        rel("document:d1#banned@user:bob"),
        rel("document:pub#viewer@user:*"),
        rel("document:pub#banned@user:mallory"),
        rel("document:net#viewer@user:dave", caveat="on_network", context={"allowed_ip": "10.0.0.1"}),
        rel("document:exp#viewer@user:erin", expires=now + datetime.timedelta(hours=1)),
        rel("document:exp#viewer@user:frank", expires=now + datetime.timedelta(seconds=2)),
    ]
    w = client.WriteRelationships(WriteRelationshipsRequest(updates=updates(TOUCH, *base)))
    out["write_token_nonempty"] = bool(w.written_at.token)
    # TOUCH of the same relationships again: no error.
    client.WriteRelationships(WriteRelationshipsRequest(updates=updates(TOUCH, *base[:3])))

    d2 = rel("document:d2#owner@user:alice")
    out["create_new"] = code_of(lambda: client.WriteRelationships(WriteRelationshipsRequest(updates=updates(CREATE, d2))))
    out["create_existing"] = code_of(
        lambda: client.WriteRelationships(WriteRelationshipsRequest(updates=updates(CREATE, d2)))
    )
    out["d2_edit_alice_after_create"] = perm_name(
        client.CheckPermission(
            CheckPermissionRequest(
                consistency=full(), resource=obj("document", "d2"), permission="edit", subject=subj("user", "alice")
            )
        ).permissionship
    )
    out["delete_d2"] = code_of(lambda: client.WriteRelationships(WriteRelationshipsRequest(updates=updates(DELETE, d2))))

    owner_d1 = RelationshipFilter(resource_type="document", optional_resource_id="d1", optional_relation="owner")
    must = Precondition(operation=Precondition.Operation.OPERATION_MUST_MATCH, filter=owner_d1)
    must_not = Precondition(operation=Precondition.Operation.OPERATION_MUST_NOT_MATCH, filter=owner_d1)
    out["precondition_met"] = code_of(
        lambda: client.WriteRelationships(
            WriteRelationshipsRequest(
                updates=updates(TOUCH, rel("document:d3#owner@user:carol")), optional_preconditions=[must]
            )
        )
    )
    out["precondition_failed"] = code_of(
        lambda: client.WriteRelationships(
            WriteRelationshipsRequest(
                updates=updates(TOUCH, rel("document:d4#owner@user:carol")), optional_preconditions=[must_not]
            )
        )
    )

    # ---- checks ----
    def check(resource, permission, user, consistency=None, context=None):
        req = CheckPermissionRequest(
            consistency=consistency or full(),
            resource=obj("document", resource),
            permission=permission,
            subject=subj("user", user),
        )
        if context is not None:
            req.context.CopyFrom(struct(context))
        return client.CheckPermission(req)

    cases = [
        ("d1", "view", "alice"),
        ("d1", "view", "bob"),
        ("d1", "view", "carol"),
        ("d1", "view", "zed"),
        ("d1", "edit", "carol"),
        ("d1", "edit", "alice"),
        ("d3", "edit", "carol"),
        ("d4", "edit", "carol"),
        ("pub", "view", "zed"),
        ("pub", "view", "mallory"),
        ("net", "view", "dave"),
        ("net", "view", "zed"),
        ("exp", "view", "erin"),
    ]
    out["checks"] = {f"{r}#{p}@{u}": perm_name(check(r, p, u).permissionship) for r, p, u in cases}

    conditional = check("net", "view", "dave")
    out["conditional_missing"] = sorted(conditional.partial_caveat_info.missing_required_context)
    out["with_context_match"] = perm_name(check("net", "view", "dave", context={"ip": "10.0.0.1"}).permissionship)
    out["with_context_other"] = perm_name(check("net", "view", "dave", context={"ip": "10.9.9.9"}).permissionship)

    # Frank's relationship expires two seconds after it was written.
    time.sleep(max(0.0, (now + datetime.timedelta(seconds=2.5) - datetime.datetime.now(datetime.timezone.utc)).total_seconds()))
    out["expired"] = perm_name(check("exp", "view", "frank").permissionship)

    # ---- lookups ----
    def lookup_resources(user):
        req = LookupResourcesRequest(
            consistency=full(), resource_object_type="document", permission="view", subject=subj("user", user)
        )
        return {r.resource_object_id: lookup_name(r.permissionship) for r in client.LookupResources(req)}

    out["lookup_resources"] = {u: lookup_resources(u) for u in ("alice", "bob", "dave", "zed")}

    def lookup_subjects(resource):
        req = LookupSubjectsRequest(
            consistency=full(), resource=obj("document", resource), permission="view", subject_object_type="user"
        )
        found = {}
        for r in client.LookupSubjects(req):
            found[r.subject.subject_object_id] = {
                "permissionship": lookup_name(r.subject.permissionship),
                "excluded": sorted(e.subject_object_id for e in r.excluded_subjects),
            }
        return found

    out["lookup_subjects"] = {d: lookup_subjects(d) for d in ("d1", "pub", "net")}

    # ---- bulk checks ----
    items = [("d1", "view", "alice"), ("d1", "view", "bob"), ("pub", "view", "zed"), ("d1", "edit", "carol"), ("d1", "nope", "carol")]
    bulk = client.CheckBulkPermissions(
        CheckBulkPermissionsRequest(
            consistency=full(),
            items=[
                CheckBulkPermissionsRequestItem(resource=obj("document", r), permission=p, subject=subj("user", u))
                for r, p, u in items
            ],
        )
    )
    out["bulk"] = [
        perm_name(pair.item.permissionship) if pair.HasField("item") else "ERROR:" + status_name(pair.error.code)
        for pair in bulk.pairs
    ]
    out["bulk_requests_echoed"] = [
        f"{p.request.resource.object_id}#{p.request.permission}@{p.request.subject.object.object_id}" for p in bulk.pairs
    ]

    # ---- reads ----
    read = client.ReadRelationships(
        ReadRelationshipsRequest(
            consistency=full(), relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id="d1")
        )
    )
    out["read_d1"] = sorted(rel_text(r.relationship) for r in read)
    read = client.ReadRelationships(
        ReadRelationshipsRequest(
            consistency=full(),
            relationship_filter=RelationshipFilter(
                resource_type="group",
                optional_subject_filter=SubjectFilter(
                    subject_type="group", optional_relation=SubjectFilter.RelationFilter(relation="member")
                ),
            ),
        )
    )
    out["read_group_usersets"] = sorted(rel_text(r.relationship) for r in read)
    read = client.ReadRelationships(
        ReadRelationshipsRequest(
            consistency=full(),
            relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id="net"),
        )
    )
    net = [r.relationship for r in read]
    out["read_caveat"] = [
        {"caveat": r.optional_caveat.caveat_name, "context": dict(r.optional_caveat.context.items())} for r in net
    ]
    read = client.ReadRelationships(
        ReadRelationshipsRequest(
            consistency=full(), relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id="exp")
        )
    )
    out["read_expiring"] = sorted(
        (r.relationship.subject.object.object_id, r.relationship.HasField("optional_expires_at")) for r in read
    )

    # ---- watch: from a token, in a thread ----
    start = client.WriteRelationships(
        WriteRelationshipsRequest(updates=updates(TOUCH, rel("document:w0#owner@user:alice")))
    ).written_at
    received = []
    started = threading.Event()
    done = threading.Event()
    watch_client = Client(addr, insecure_bearer_token_credentials(key))
    stream = watch_client.Watch(WatchRequest(optional_object_types=["document"], optional_start_cursor=start))

    def watch():
        started.set()
        try:
            for response in stream:
                for u in response.updates:
                    received.append(
                        {"op": RelationshipUpdate.Operation.Name(u.operation), "rel": rel_text(u.relationship)}
                    )
                if response.updates:
                    received.append({"changes_through": bool(response.changes_through.token)})
                    break
        except grpc.RpcError as e:
            received.append({"error": e.code().name})
        done.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    started.wait(10)
    # Written after the token: the watch must deliver it whether it attached before or after.
    client.WriteRelationships(
        WriteRelationshipsRequest(
            updates=updates(TOUCH, rel("group:eng#member@user:watched"), rel("document:w1#owner@user:watched"))
        )
    )
    done.wait(15)
    stream.cancel()
    out["watch"] = received

    # ---- ZedTokens ----
    before = client.WriteRelationships(
        WriteRelationshipsRequest(updates=updates(TOUCH, rel("document:pub#viewer@user:*")))
    ).written_at
    deleted = client.DeleteRelationships(
        DeleteRelationshipsRequest(relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id="pub"))
    )
    out["deleted_count"] = deleted.relationships_deleted_count
    out["pub_after_delete"] = {
        "at_exact_snapshot_before": perm_name(
            check("pub", "view", "zed", consistency=Consistency(at_exact_snapshot=before)).permissionship
        ),
        "at_least_as_fresh_before": perm_name(
            check("pub", "view", "zed", consistency=Consistency(at_least_as_fresh=before)).permissionship
        ),
        "at_least_as_fresh_delete": perm_name(
            check("pub", "view", "zed", consistency=Consistency(at_least_as_fresh=deleted.deleted_at)).permissionship
        ),
        "fully_consistent": perm_name(check("pub", "view", "zed").permissionship),
        "minimize_latency": perm_name(
            check("pub", "view", "zed", consistency=Consistency(minimize_latency=True)).permissionship
        ),
    }
    out["read_pub_after_delete"] = len(
        list(
            client.ReadRelationships(
                ReadRelationshipsRequest(
                    consistency=full(),
                    relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id="pub"),
                )
            )
        )
    )

    # ---- errors ----
    def check_call(resource_type, permission, subject_type="user"):
        return lambda: client.CheckPermission(
            CheckPermissionRequest(
                consistency=full(),
                resource=obj(resource_type, "x"),
                permission=permission,
                subject=subj(subject_type, "alice"),
            )
        )

    def write_call(*rels, op=TOUCH):
        return lambda: client.WriteRelationships(WriteRelationshipsRequest(updates=updates(op, *rels)))

    bad_key = Client(addr, insecure_bearer_token_credentials("not-the-key"))
    out["errors"] = {
        "check_unknown_type": code_of(check_call("nosuchtype", "view")),
        "check_unknown_permission": code_of(check_call("document", "nosuchperm")),
        "check_unknown_subject_type": code_of(check_call("document", "view", subject_type="nosuchtype")),
        "write_unknown_type": code_of(write_call(rel("nosuchtype:x#owner@user:alice"))),
        "write_unknown_relation": code_of(write_call(rel("document:x#nosuchrel@user:alice"))),
        "write_permission": code_of(write_call(rel("document:x#view@user:alice"))),
        "write_subject_not_allowed": code_of(write_call(rel("document:x#owner@group:eng#member"))),
        "write_bad_id": code_of(write_call(rel("document:a b#owner@user:alice"))),
        "too_many_updates": code_of(write_call(*[rel(f"document:many{i}#owner@user:alice") for i in range(1001)])),
        "lookup_unknown_type": code_of(
            lambda: list(
                client.LookupResources(
                    LookupResourcesRequest(
                        consistency=full(), resource_object_type="nosuchtype", permission="view", subject=subj("user", "a")
                    )
                )
            )
        ),
        "wrong_key": code_of(
            lambda: bad_key.CheckPermission(
                CheckPermissionRequest(resource=obj("document", "d1"), permission="view", subject=subj("user", "alice"))
            )
        ),
        "wrong_key_write": code_of(lambda: bad_key.WriteRelationships(WriteRelationshipsRequest(updates=updates(TOUCH, d2)))),
    }
    out["too_many_wrote_nothing"] = len(
        list(
            client.ReadRelationships(
                ReadRelationshipsRequest(
                    consistency=full(),
                    relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id_prefix="many"),
                )
            )
        )
    )

    # ---- bulk import and export ----
    imported = [rel(f"group:bulk{i // 50}#member@user:u{i}") for i in range(2500)]
    chunks = [imported[i : i + 1000] for i in range(0, len(imported), 1000)]
    resp = client.ImportBulkRelationships(iter(ImportBulkRelationshipsRequest(relationships=c) for c in chunks))
    out["import_loaded"] = resp.num_loaded
    exported = []
    messages = 0
    for r in client.ExportBulkRelationships(
        ExportBulkRelationshipsRequest(
            consistency=full(), optional_relationship_filter=RelationshipFilter(resource_type="group", optional_resource_id_prefix="bulk")
        )
    ):
        messages += 1
        exported.extend(rel_text(x) for x in r.relationships)
    out["export_messages"] = messages
    out["export_round_trip"] = sorted(exported) == sorted(rel_text(r) for r in imported)
    out["export_count"] = len(exported)
    # The imported data answers questions: u1234 is in bulk24.
    client.WriteRelationships(WriteRelationshipsRequest(updates=updates(TOUCH, rel("folder:bulkf#viewer@group:bulk24#member"))))
    out["import_check"] = {
        u: perm_name(
            client.CheckPermission(
                CheckPermissionRequest(consistency=full(), resource=obj("folder", "bulkf"), permission="view", subject=subj("user", u))
            ).permissionship
        )
        for u in ("u1234", "u1250")
    }
    # An import that names an unknown type is refused whole.
    bad = [rel("group:bulkbad#member@user:x"), rel("nosuchtype:y#member@user:x")]
    out["import_bad"] = code_of(lambda: client.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(relationships=bad)])))
    out["import_bad_left_nothing"] = len(
        list(
            client.ReadRelationships(
                ReadRelationshipsRequest(
                    consistency=full(), relationship_filter=RelationshipFilter(resource_type="group", optional_resource_id="bulkbad")
                )
            )
        )
    )

    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
