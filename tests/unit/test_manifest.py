import dataclasses
import datetime
import os
from pathlib import Path
from typing import Any

import bson
import orjson
import pytest
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.datetime_ms import DatetimeMS

from vida_loader.errors import StateError
from vida_loader.indexes.definition import Action, IndexPlan, IndexSpec
from vida_loader.job.manifest import (
    Manifest,
    Partition,
    RangeMode,
    from_ejson,
    load_manifest,
    save_manifest,
    to_ejson,
)

EXACT_VALUES: list[Any] = [
    ObjectId("5f1d7c2e9b1e8a3d4c2b1a09"),
    Int64(2**62 + 1),
    7,
    -0.0,
    1e308,
    Decimal128("1234567890.123456789012345678901234"),
    Decimal128("-0E-6176"),
    Binary(b"\x00\xff", 0),
    Binary(b"\x01" * 16, 3),
    Binary(b"\x02" * 16, 4),
    Binary(b"x", 0x80),
    datetime.datetime(2024, 2, 29, 23, 59, 59, 999000),
    DatetimeMS(-(2**50)),  # far outside Python's datetime range
    Timestamp(1700000000, 3),
    "ünïcode \x00 string",
    {"nested": {"a": Int64(1), "b": [1, "x"]}},
    MinKey(),
    MaxKey(),
    Regex("^a.*", "im"),
    True,
    None,
]


@pytest.mark.parametrize("value", EXACT_VALUES, ids=lambda v: type(v).__name__)
def test_values_round_trip_exactly_through_canonical_ejson(value: Any) -> None:
    text = orjson.dumps(to_ejson({"_id": value}))
    back = from_ejson(orjson.loads(text))
    assert bson.encode(back) == bson.encode({"_id": value})


UNIQUE = IndexSpec("sku_1", (("sku", 1),), {"unique": True})


def _manifest(parts: tuple[Partition, ...]) -> Manifest:
    m = Manifest(
        job="shop.orders",
        source={
            "uri": "mongodb://src:27017",
            "hosts": ["src:27017"],
            "kind": "other",
            "db": "shop",
            "collection": "orders",
        },
        target={
            "uri": "mongodb://dst:27017",
            "hosts": ["dst:27017"],
            "kind": "other",
            "db": "shop",
            "collection": "orders",
        },
        stats={"count": 10, "size_bytes": 1000, "avg_doc_bytes": 100.0, "id_brackets": []},
        split={"range_mode": "typed", "partitions": 3},
        partitions=parts,
        indexes=(
            IndexPlan(IndexSpec("_id_", (("_id", 1),)), Action.EXISTS),
            IndexPlan(UNIQUE, Action.BUILD, UNIQUE),
        ),
    )
    return dataclasses.replace(m, fingerprint=m.compute_fingerprint())


PARTS = (
    Partition("p00000", RangeMode.TYPED, "number", None, Int64(5), 3, 300),
    Partition("p00001", RangeMode.TYPED, "number", Int64(5), Decimal128("9.5"), 3, 300),
    Partition(
        "p00002",
        RangeMode.MINMAX,
        None,
        Binary(b"\x02" * 16, 4),
        datetime.datetime(2030, 1, 1),
        4,
        400,
    ),
)


def test_manifest_round_trips_and_carries_the_exact_queries(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    m = _manifest(PARTS)
    save_manifest(m, path)
    back = load_manifest(path)
    assert back.fingerprint == m.fingerprint
    for a, b in zip(PARTS, back.partitions, strict=True):
        assert bson.encode({"l": a.lower, "u": a.upper}) == bson.encode(
            {"l": b.lower, "u": b.upper}
        )
        assert bson.encode(a.query()) == bson.encode(b.query())
    raw = orjson.loads(path.read_bytes())
    assert raw["schema_version"] == 1
    assert raw["partitions"][1]["query"] == {
        "_id": {"$gte": {"$numberLong": "5"}, "$lt": {"$numberDecimal": "9.5"}}
    }
    assert raw["partitions"][2]["min"] == {
        "_id": {"$binary": {"base64": "AgICAgICAgICAgICAgICAg==", "subType": "04"}}
    }


def test_interrupted_save_leaves_the_old_file_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "manifest.json"
    old = _manifest(PARTS[:1])
    save_manifest(old, path)

    def crash(*_args: Any) -> None:
        raise KeyboardInterrupt  # the process dies between write and rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        save_manifest(_manifest(PARTS), path)
    monkeypatch.undo()
    assert load_manifest(path).fingerprint == old.fingerprint
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temp left


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda d: d.update(schema_version=99), "schema_version 99"),
        (
            lambda d: d["partitions"][1]["query"]["_id"].update({"$lt": {"$numberInt": "7"}}),
            "stored 'query' does not match",
        ),
        (lambda d: d["stats"].update(count=11), "fingerprint does not match"),
        (lambda d: d.pop("partitions"), "missing field 'partitions'"),
        (lambda d: d["partitions"][0].update(mode="sideways"), "sideways"),
        (lambda d: d["indexes"][1]["build"].pop("unique"), "fingerprint does not match"),
        (lambda d: d["indexes"][1].update(build=None), "action and definition disagree"),
    ],
)
def test_edited_or_torn_manifest_is_refused_naming_the_file(
    tmp_path: Path, mutate: Any, words: str
) -> None:
    path = tmp_path / "manifest.json"
    save_manifest(_manifest(PARTS), path)
    doc = orjson.loads(path.read_bytes())
    mutate(doc)
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(StateError) as err:
        load_manifest(path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_a_manifest_planned_before_indexes_were_read_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    old = dataclasses.replace(_manifest(PARTS), indexes=None, fingerprint="")
    save_manifest(dataclasses.replace(old, fingerprint=old.compute_fingerprint()), path)
    assert "indexes" not in orjson.loads(path.read_bytes())
    back = load_manifest(path)
    assert back.indexes is None and back.index_builds() == []
    assert _manifest(PARTS).index_builds() == [UNIQUE]


def test_truncated_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    save_manifest(_manifest(PARTS), path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(StateError, match="is corrupt"):
        load_manifest(path)
