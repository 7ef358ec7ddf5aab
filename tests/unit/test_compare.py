"""The merge comparison of two _id-sorted raw streams: every kind of difference found,
in _id order, against a naive comparison; the _id read from the first element is what
bson.encode makes of it, for every BSON type."""

from __future__ import annotations

import random
from typing import Any

import bson
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.raw_bson import RawBSONDocument
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import every_type_documents
from vida_loader.ordering import sort_key
from vida_loader.verify.compare import Tally, compare_sorted, raw_id

IDS: list[Any] = [
    1,
    Int64(2**40),
    2.5,
    Decimal128("3.25"),
    "a string",
    {"a": 1, "b": [1, 2]},
    Binary(b"\x01\x02", 4),
    ObjectId(b"0123456789ab"),
    False,
    Timestamp(1700000000, 3),
    Regex("^x.*", "i"),
    Code("f()"),
    Code("f(x)", {"x": 1}),
    MinKey(),
    MaxKey(),
    None,
]


def test_raw_id_of_every_id_type_is_bson_encodes() -> None:
    for value in IDS:
        raw = bson.encode({"_id": value, "x": "after"})
        assert raw_id(raw) == bson.encode({"_id": value}), value
    # _id not first: decoded the slow way, same answer.
    assert raw_id(bson.encode({"x": 1, "_id": "k"})) == bson.encode({"_id": "k"})
    for doc in every_type_documents():
        assert raw_id(bson.encode(doc)) == bson.encode({"_id": doc["_id"]})


def reordered(doc: dict[str, Any]) -> bytes:
    """``doc`` encoded in its own key order (bson.encode puts a top-level _id first)."""
    outer = bson.encode({"d": doc})
    return outer[4 + 1 + 2 : -1]  # the embedded document's bytes


def sorted_raw(docs: list[dict[str, Any]]) -> list[RawBSONDocument]:
    return [RawBSONDocument(bson.encode(d)) for d in sorted(docs, key=lambda d: sort_key(d["_id"]))]


def test_each_kind_is_found_in_id_order() -> None:
    source = [{"_id": i, "v": i} for i in range(10)]
    target = [dict(d) for d in source]
    target[2]["v"] = -1  # altered value
    del target[5]  # missing
    target.append({"_id": 42, "v": 0})  # extra
    tally = Tally()
    dst = sorted_raw(target)
    dst[0] = RawBSONDocument(reordered({"v": 0, "_id": 0}))  # same fields, another order
    found = list(compare_sorted(sorted_raw(source), dst, tally))
    got = [(d.kind, bson.decode(d.id_doc)["_id"]) for d in found]
    assert got == [("altered", 0), ("altered", 2), ("missing", 5), ("extra", 42)]
    assert (tally.source_docs, tally.target_docs, tally.matched) == (10, 10, 7)
    assert not tally.matches
    assert found[2].target_sha256 is None and found[3].source_sha256 is None
    assert found[0].record("p00001")["_id"] == {"$numberInt": "0"}


def test_mixed_id_types_merge_in_the_servers_order() -> None:
    rangeable = [v for v in IDS if not isinstance(v, Code)]  # code cannot be ranged
    docs = [{"_id": v, "n": i} for i, v in enumerate(rangeable)]
    tally = Tally()
    assert list(compare_sorted(sorted_raw(docs), sorted_raw(docs), tally)) == []
    assert tally.matched == len(rangeable) and tally.matches


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 60), unique=True),
    st.lists(st.integers(0, 60), unique=True),
    st.randoms(use_true_random=False),
)
def test_the_merge_agrees_with_a_naive_comparison(
    src_ids: list[int], dst_ids: list[int], rng: random.Random
) -> None:
    source = {i: {"_id": i, "v": i % 7} for i in src_ids}
    target = {i: {"_id": i, "v": i % 7 if rng.random() < 0.7 else -i} for i in dst_ids}
    want = []
    for i in sorted(set(source) | set(target)):
        if i not in target:
            want.append(("missing", i))
        elif i not in source:
            want.append(("extra", i))
        elif source[i] != target[i]:
            want.append(("altered", i))
    found = compare_sorted(sorted_raw(list(source.values())), sorted_raw(list(target.values())))
    assert [(d.kind, bson.decode(d.id_doc)["_id"]) for d in found] == want


def test_memory_holds_one_document_per_side() -> None:
    """The streams are read lazily: a difference comes out before the rest is read."""
    read = []

    def stream(n: int) -> Any:
        for i in range(n):
            read.append(i)
            yield bson.encode({"_id": i})

    found = compare_sorted(stream(1000), [])
    first = next(found)
    assert first.kind == "missing" and len(read) <= 2
