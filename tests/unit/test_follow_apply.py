"""Change events reduced to one idempotent write per _id (follow/apply.py), for both
MongoDB's event shape and Cosmos DB's (no operationType, no deletes)."""

from __future__ import annotations

import datetime
from typing import Any

import bson
import pytest
from bson.raw_bson import RawBSONDocument
from bson.timestamp import Timestamp
from pymongo import DeleteOne, ReplaceOne

from vida_loader.errors import StateError
from vida_loader.follow.apply import Batch


def event(
    kind: str | None, _id: Any, full: dict[str, Any] | None = None, t: int = 1
) -> RawBSONDocument:
    doc: dict[str, Any] = {"_id": {"_data": f"{t:08x}"}, "documentKey": {"_id": _id}}
    if kind is not None:
        doc["operationType"] = kind
        doc["clusterTime"] = Timestamp(t, 1)
    if full is not None:
        doc["fullDocument"] = full
    return RawBSONDocument(bson.encode(doc))


def test_the_last_event_of_each_id_wins_and_upserts_keep_the_source_bytes() -> None:
    b = Batch()
    b.extend(
        [
            event("insert", 1, {"_id": 1, "a": 1}, 10),
            event("update", 1, {"_id": 1, "a": 2}, 11),
            event("insert", 2, {"_id": 2}, 12),
            event("delete", 2, None, 13),
            event("update", 3, None, 14),  # updated, then deleted before the lookup
            event("replace", 1.5, {"_id": 1.5, "z": 0, "a": 1}, 15),
        ]
    )
    assert (b.events, b.upserts, b.deletes, b.skipped) == (6, 2, 1, 1)
    ops = list(b.writes.values())
    assert len(ops) == 3  # 1, 2 and 1.5: one write each
    by_id = {op._filter["_id"]: op for op in ops}
    assert isinstance(by_id[2], DeleteOne)
    one = by_id[1]
    assert isinstance(one, ReplaceOne) and one._upsert
    assert bytes(one._doc.raw) == bson.encode({"_id": 1, "a": 2})
    assert b.last_at == 15.0  # clusterTime: whole seconds


def test_cosmos_events_without_operation_type_are_upserts() -> None:
    b = Batch()
    b.extend([event(None, 7, {"_id": 7, "v": 1}), event(None, 7, {"_id": 7, "v": 2})])
    (op,) = b.writes.values()
    assert isinstance(op, ReplaceOne) and op._doc["v"] == 2
    assert b.last_at is None  # Cosmos DB's events carry no time


def test_the_collection_dropped_ends_follow() -> None:
    with pytest.raises(StateError, match="'drop' event"):
        Batch().add(event("drop", 1))


def test_wall_time_gives_the_lag_to_the_millisecond() -> None:
    raw = bson.encode(
        {
            "_id": {"_data": "01"},
            "operationType": "insert",
            "clusterTime": Timestamp(100, 1),
            "wallTime": datetime.datetime(2026, 11, 30, 12, 0, 0, 250000),
            "documentKey": {"_id": 1},
            "fullDocument": {"_id": 1},
        }
    )
    b = Batch()
    b.add(RawBSONDocument(raw))
    assert b.last_at == datetime.datetime(2026, 11, 30, 12, 0, 0, 250000, datetime.UTC).timestamp()
