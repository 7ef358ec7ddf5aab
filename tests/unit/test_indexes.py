"""The index translation table, fed with ``listIndexes`` output as Cosmos DB and MongoDB
give it: what the target gets of each index, and what ``plan`` says about it."""

from __future__ import annotations

import datetime

import pytest
from bson.int64 import Int64
from bson.son import SON
from pymongo.errors import DuplicateKeyError

from vida_loader.copy.progress import RunProgress
from vida_loader.endpoint import ServerKind
from vida_loader.indexes.build import build_progress
from vida_loader.indexes.definition import (
    Action,
    IndexContext,
    IndexPlan,
    IndexSpec,
    compare,
    duplicate_key,
    relaxed,
    satisfies,
    translate,
    wanted_indexes,
)
from vida_loader.indexes.phase import IndexProgress
from vida_loader.report.progress import format_progress

NS = "shop.orders"
# As Cosmos DB for MongoDB (server 4.2) lists them: v 1, ns, the TTL on _ts.
COSMOS_INDEXES = [
    {"v": 1, "key": {"_id": 1}, "name": "_id_", "ns": NS},
    {"v": 1, "key": {"_ts": 1}, "name": "_ts_1", "ns": NS, "expireAfterSeconds": 2592000},
    {
        "v": 1,
        "unique": True,
        "key": {"customerId": 1, "orderId": 1},
        "name": "customerId_1_orderId_1",
        "ns": NS,
    },
    {"v": 1, "key": {"$**": 1}, "name": "$**_1", "ns": NS},
    {"v": 1, "key": {"location": "2dsphere"}, "name": "location_2dsphere", "ns": NS},
    {"v": 1, "key": {"closedAt": 1}, "name": "closedAt_1", "ns": NS, "expireAfterSeconds": 60},
]
# A MongoDB source: what Cosmos DB cannot take.
MONGO_INDEXES = [
    {"v": 2, "key": {"_id": 1}, "name": "_id_"},
    {
        "v": 2,
        "key": SON([("notes", "text")]),
        "name": "notes_text",
        "weights": {"notes": 1},
        "default_language": "english",
        "language_override": "language",
        "textIndexVersion": 3,
    },
    {"v": 2, "key": {"sku": "hashed"}, "name": "sku_hashed"},
    {"v": 2, "key": {"pos": "2d"}, "name": "pos_2d"},
    {"v": 2, "key": {"email": 1}, "name": "email_1", "unique": True, "sparse": True},
    {"v": 2, "key": {"tag": 1}, "name": "tag_1", "sparse": True},
    {
        "v": 2,
        "key": {"total": -1},
        "name": "big",
        "partialFilterExpression": {"total": {"$gt": 100}},
    },
    {
        "v": 2,
        "key": {"code": 1},
        "name": "code_u",
        "unique": True,
        "partialFilterExpression": {"code": {"$exists": True}},
    },
    {
        "v": 2,
        "key": SON([("a", 1), ("b", -1)]),
        "name": "a_1_b_-1",
        "hidden": True,
        "collation": {"locale": "fr", "strength": 2},
    },
]

NOW = datetime.datetime(2026, 11, 30)  # naive, as pymongo decodes dates


def specs(docs: list[dict]) -> list[IndexSpec]:
    return [IndexSpec.from_server(d) for d in docs]


def by_name(plans: list[IndexPlan]) -> dict[str, IndexPlan]:
    return {p.source.name: p for p in plans}


def test_a_definition_keeps_every_option_and_the_key_order_but_not_v_or_ns() -> None:
    spec = IndexSpec.from_server(MONGO_INDEXES[-1])
    assert spec.key == (("a", 1), ("b", -1))
    assert spec.document() == {
        "key": {"a": 1, "b": -1},
        "name": "a_1_b_-1",
        "hidden": True,
        "collation": {"locale": "fr", "strength": 2},
    }
    assert list(spec.document()["key"]) == ["a", "b"]
    text = IndexSpec.from_server(MONGO_INDEXES[1])
    assert text.options["weights"] == {"notes": 1} and "v" not in text.options


def test_the_manifest_form_round_trips_exact_types() -> None:
    spec = IndexSpec.from_server(
        {
            "v": 2,
            "key": {"n": Int64(1)},
            "name": "n",
            "partialFilterExpression": {"at": {"$gt": NOW}},
        }
    )
    back = IndexSpec.from_json(spec.to_json())
    assert back == spec
    assert type(back.key[0][1]) is Int64
    assert back.options["partialFilterExpression"]["at"]["$gt"] == NOW
    plan = IndexPlan(spec, Action.BUILD, spec, ("a note",))
    assert IndexPlan.from_json(plan.to_json()) == plan


def test_a_hand_edited_entry_is_refused() -> None:
    spec = IndexSpec.from_server(MONGO_INDEXES[2])
    entry = IndexPlan(spec, Action.BUILD, spec).to_json()
    with pytest.raises(ValueError, match="action and definition"):
        IndexPlan.from_json({**entry, "build": None})
    with pytest.raises(ValueError, match="another"):
        IndexPlan.from_json({**entry, "name": "other"})


def test_cosmos_ts_ttl_is_skipped_with_the_reason_when_no_field_is_given() -> None:
    ctx = IndexContext(source_kind=ServerKind.COSMOS)
    plans = by_name(translate(specs(COSMOS_INDEXES), ctx))
    assert plans["_id_"].action is Action.EXISTS
    ts = plans["_ts_1"]
    assert ts.action is Action.SKIP and ts.build is None
    assert "would expire nothing" in ts.notes[0] and "--ttl-field" in ts.notes[0]


def test_cosmos_ts_ttl_moves_to_the_ttl_field_and_counts_undated_documents() -> None:
    sample = [{"createdAt": NOW}] * 7 + [{"createdAt": 1700000000000}] * 2 + [{}]
    ctx = IndexContext(source_kind=ServerKind.COSMOS, ttl_field="createdAt", sample=sample)
    ts = by_name(translate(specs(COSMOS_INDEXES), ctx))["_ts_1"]
    assert ts.action is Action.BUILD and ts.adapted
    assert ts.build == IndexSpec(
        "createdAt_1", (("createdAt", 1),), {"expireAfterSeconds": 2592000}
    )
    assert "moved from '_ts'" in ts.notes[0]
    assert ts.notes[1].startswith("3 of 10 sampled documents have no date in 'createdAt'")


def test_a_ts_ttl_on_a_mongodb_source_whose_documents_hold_ts_is_kept() -> None:
    doc = {"v": 2, "key": {"_ts": 1}, "name": "_ts_1", "expireAfterSeconds": 5}
    ctx = IndexContext(sample=[{"_ts": NOW}])
    (plan,) = translate(specs([doc]), ctx)
    assert plan.action is Action.BUILD and not plan.adapted and plan.notes == ()


def test_cosmos_custom_path_ttl_warns_about_numbers_and_per_document_ttl() -> None:
    sample = [{"closedAt": NOW}, {"closedAt": 1700000000000, "ttl": 30}, {"closedAt": Int64(5)}]
    ctx = IndexContext(source_kind=ServerKind.COSMOS, sample=sample)
    plan = by_name(translate(specs(COSMOS_INDEXES), ctx))["closedAt_1"]
    assert plan.action is Action.BUILD and not plan.adapted
    assert plan.notes[0].startswith("2 of 3 sampled documents hold a number in 'closedAt'")
    assert "never expire" in plan.notes[0]
    assert plan.notes[1].startswith("1 of 3 sampled documents carry a per-document 'ttl'")


def test_cosmos_unique_is_built_as_is_with_the_warning() -> None:
    ctx = IndexContext(source_kind=ServerKind.COSMOS)
    plan = by_name(translate(specs(COSMOS_INDEXES), ctx))["customerId_1_orderId_1"]
    assert plan.action is Action.BUILD and not plan.adapted
    assert "inside arrays" in plan.notes[0] and "per shard key" in plan.notes[0]
    for name in ("$**_1", "location_2dsphere"):
        assert by_name(translate(specs(COSMOS_INDEXES), ctx))[name].notes == ()


def test_mongodb_to_mongodb_builds_everything_unchanged() -> None:
    plans = translate(specs(MONGO_INDEXES), IndexContext())
    assert [p.action for p in plans] == [Action.EXISTS] + [Action.BUILD] * 8
    assert all(p.build == p.source and p.notes == () for p in plans[1:])


def test_mongodb_to_cosmos_skips_or_adapts_what_cosmos_lacks() -> None:
    ctx = IndexContext(target_kind=ServerKind.COSMOS)
    plans = by_name(translate(specs(MONGO_INDEXES), ctx))
    for name, kind in (("notes_text", "text"), ("sku_hashed", "hashed"), ("pos_2d", "2d")):
        assert plans[name].action is Action.SKIP
        assert plans[name].notes == (f"skipped: Cosmos DB has no {kind} indexes",)
    email = plans["email_1"].build
    assert email is not None and email.unique and "sparse" not in email.options
    assert email.options["partialFilterExpression"] == {"email": {"$exists": True}}
    tag = plans["tag_1"].build
    assert tag is not None and tag.options == {} and "sparse dropped" in plans["tag_1"].notes[0]
    big = plans["big"].build
    assert (
        big is not None and big.options == {} and "partial filter dropped" in plans["big"].notes[0]
    )
    code = plans["code_u"]
    assert code.build == code.source and code.notes == ()  # partial + unique: Cosmos takes it


def test_relaxed_builds_unique_and_ttl_loose_and_says_how_to_convert() -> None:
    spec = IndexSpec("u", (("k", 1),), {"unique": True, "expireAfterSeconds": 60})
    loose, change = relaxed(spec)
    assert not loose.unique and loose.ttl == 2**31 - 1
    assert change == {"name": "u", "unique": True, "expireAfterSeconds": 60}
    plain = IndexSpec("p", (("k", 1),))
    assert relaxed(plain) == (plain, None)


def test_the_duplicate_key_is_read_from_the_server_error() -> None:
    err = DuplicateKeyError(
        "E11000 duplicate key error collection: t.d index: k_1 dup key: { k: 1 }",
        11000,
        {"code": 11000, "keyPattern": {"k": 1}, "keyValue": {"k": 1}},
    )
    assert duplicate_key(err) == "{'k': 1}"
    bare = DuplicateKeyError("x", 11000, {"code": 11000, "errmsg": "E11000 ... dup key: { k: 2 }"})
    assert duplicate_key(bare) == "{ k: 2 }"


def test_a_server_filled_collation_or_version_is_the_same_definition() -> None:
    wanted = IndexSpec("s", (("s", 1),), {"collation": {"locale": "fr", "strength": 2}})
    atlas = IndexSpec(
        "s",
        (("s", 1),),
        {"collation": {"locale": "fr", "strength": 2, "caseLevel": False, "version": "57.1"}},
    )
    assert satisfies(atlas, wanted)
    assert not satisfies(atlas, wanted.with_options(collation={"locale": "de"}))
    geo = IndexSpec("g", (("loc", "2dsphere"),))
    assert satisfies(geo.with_options(**{"2dsphereIndexVersion": 3}), geo)
    assert not satisfies(geo.with_options(sparse=True), geo)  # not a server default
    assert not satisfies(IndexSpec("g", (("loc", 1),)), geo)


def test_compare_names_what_is_missing_different_and_extra() -> None:
    a, b, c = (IndexSpec(n, ((n, 1),)) for n in "abc")
    present = [
        IndexSpec("_id_", (("_id", 1),)),
        a,
        b.with_options(unique=True),
        IndexSpec("z", (("z", 1),)),
    ]
    diff = compare([a, b, c], present)
    assert diff.same == [a] and diff.missing == [c]
    assert diff.differ == [(b, b.with_options(unique=True))]
    assert [s.name for s in diff.extra] == ["z"] and not diff.clean
    assert compare([a], [a]).clean


def test_the_target_own_saved_indexes_come_after_the_planned_ones() -> None:
    a, b = IndexSpec("a", (("a", 1),)), IndexSpec("b", (("b", 1),))
    own_a = a.with_options(unique=True)
    assert wanted_indexes([a], [own_a, b]) == [a, b]


class FakeAdmin:
    def __init__(self, inprog: list[dict]) -> None:
        self.inprog = inprog

    def command(self, *_args: object) -> dict:
        return {"inprog": self.inprog}


def test_build_progress_is_read_from_current_op_where_the_server_reports_it() -> None:
    mongodb_op = {
        "command": {"createIndexes": "orders", "indexes": [{"key": {"k": 1}, "name": "k_1"}]},
        "progress": {"done": 450, "total": 1000},
        "msg": "Index Build: scanning collection",
    }
    other_coll = {**mongodb_op, "command": {"createIndexes": "other", "indexes": [{"name": "x"}]}}
    secantus_op = {"op": "createIndexes", "command": {"createIndexes": 1}}  # says nothing more
    client = type("C", (), {"admin": FakeAdmin([mongodb_op, other_coll, secantus_op])})()
    assert build_progress(client, "orders") == {"k_1": (450, 1000)}
    shown = format_progress(
        RunProgress(
            docs=10,
            bytes=1,
            base_docs=0,
            base_bytes=0,
            est_docs=10,
            est_bytes=1,
            elapsed=1,
            parts_done=1,
            parts_failed=0,
            parts_running=0,
            parts_total=1,
            repaired=0,
            retries=0,
            indexes_done=2,
            indexes_total=4,
            building=(IndexProgress("k_1", 70.0, 450, 1000), IndexProgress("s_1", 3.0)),
        )
    )
    assert "indexes 2/4 built, building k_1 45% 0:01:10, s_1 0:00:03" in shown
