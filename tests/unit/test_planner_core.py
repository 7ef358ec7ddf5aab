"""The pure planning core: boundaries, coverage of the whole key space, estimates."""

import datetime
import math
from typing import Any

from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vida_loader.copy.planner import build_partitions, pick_boundaries, sample_hits, sorted_unique
from vida_loader.job.manifest import RangeMode
from vida_loader.ordering import bracket_of, sort_key


def test_pick_boundaries_takes_quantiles() -> None:
    values = list(range(100))
    assert pick_boundaries(values, 4) == [25, 50, 75]
    assert pick_boundaries(values, 1) == []
    assert pick_boundaries([7], 5) == []
    # More partitions than candidates: every candidate but the first bounds a range.
    assert pick_boundaries([1, 2, 3], 10) == [2, 3]


def test_sorted_unique_merges_equal_ids() -> None:
    assert sorted_unique([2, Int64(1), 1.0, "a", 2.0]) == [Int64(1), 2, "a"]


ids = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, places=3, min_value=-(10**6), max_value=10**6).map(
        lambda d: Decimal128(str(d))
    ),
    st.text(max_size=6),
    st.binary(max_size=6).map(lambda b: Binary(b, 0)),
    st.binary(min_size=16, max_size=16).map(lambda b: Binary(b, 4)),
    st.binary(min_size=12, max_size=12).map(ObjectId),
    st.datetimes(min_value=datetime.datetime(1900, 1, 1)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
    st.dictionaries(st.sampled_from("abc"), st.integers(-5, 5), max_size=2),
    st.booleans(),
    st.builds(Timestamp, st.integers(0, 2**31), st.integers(0, 5)),
    st.sampled_from([None, MinKey(), MaxKey()]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    population=st.lists(ids, min_size=0, max_size=60),
    sample_picks=st.lists(st.integers(min_value=0, max_value=10**6), max_size=40),
    parts=st.integers(min_value=1, max_value=12),
    mode=st.sampled_from(list(RangeMode)),
)
def test_ranges_cover_every_id_exactly_once(
    population: list[Any], sample_picks: list[int], parts: int, mode: RangeMode
) -> None:
    # The collection: unique _ids in the server's sense. The sample: any sub-multiset.
    collection = sorted_unique(population)
    sample = [collection[i % len(collection)] for i in sample_picks] if collection else []
    brackets = {bracket_of(v).name for v in collection}
    partitions = build_partitions(
        sample,
        mode=mode,
        parts=parts,
        count=len(collection),
        avg_doc_bytes=100.0,
        brackets_present=brackets,
    )
    for value in collection:
        holders = [p.id for p in partitions if p.contains(value)]
        assert len(holders) == 1, (value, holders)
    # Every range is non-empty as a key interval and bounds increase.
    for p in partitions:
        if p.lower is not None and p.upper is not None:
            assert sort_key(p.lower) < sort_key(p.upper)
    assert sum(p.est_docs for p in partitions) == len(collection)
    # The binary search that feeds the estimates agrees with asking every range.
    brute = [sum(1 for v in sample if p.contains(v)) for p in partitions]
    assert sample_hits(partitions, sample) == brute
    assert [p.id for p in partitions] == [f"p{i:05d}" for i in range(len(partitions))]


def test_minmax_ranges_span_brackets_and_typed_ranges_do_not() -> None:
    sample = list(range(50)) + [f"s{i:02d}" for i in range(50)]
    minmax = build_partitions(sample, mode=RangeMode.MINMAX, parts=4, count=100, avg_doc_bytes=1)
    assert len(minmax) == 4 and all(p.bracket is None for p in minmax)
    assert minmax[0].lower is None and minmax[-1].upper is None
    typed = build_partitions(
        sample,
        mode=RangeMode.TYPED,
        parts=4,
        count=100,
        avg_doc_bytes=1,
        brackets_present={"number", "string", "objectId"},
    )
    assert [p.bracket for p in typed] == ["number", "number", "string", "string", "objectId"]
    assert [p.est_docs for p in typed] == [25, 25, 25, 25, 0]
    assert typed[-1].query() == {"_id": {"$type": "objectId"}}


def test_typed_first_number_range_takes_nan() -> None:
    parts = build_partitions(
        [1, 2, 3, 4],
        mode=RangeMode.TYPED,
        parts=2,
        count=4,
        avg_doc_bytes=1,
        brackets_present={"number"},
    )
    q = parts[0].query()
    assert q["$or"][0] == {"_id": {"$lt": 3}} and math.isnan(q["$or"][1]["_id"])
    assert parts[1].query() == {"_id": {"$gte": 3}}
    assert parts[0].contains(float("nan")) and not parts[1].contains(float("nan"))


def test_empty_collection_gives_one_partition_for_everything() -> None:
    for mode in RangeMode:
        parts = build_partitions([], mode=mode, parts=1, count=0, avg_doc_bytes=0)
        assert len(parts) == 1
        assert parts[0].query() == {} and parts[0].min_spec() is None
        assert parts[0].contains("anything") and parts[0].contains(MaxKey())
