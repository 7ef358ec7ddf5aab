import datetime
import uuid

import pytest
from bson import Binary, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.code import Code

from vida_loader.errors import UsageError
from vida_loader.ordering import BRACKETS, bracket_of, sort_key

ONE_PER_BRACKET = [
    MinKey(),
    None,
    -3.5,
    "abc",
    {"a": 1},
    Binary(b"\x01", 0),
    ObjectId("000000000000000000000001"),
    False,
    datetime.datetime(2020, 1, 1),
    Timestamp(1, 1),
    Regex("^a"),
    MaxKey(),
]


def test_brackets_follow_mongodb_type_order() -> None:
    names = [b.name for b in BRACKETS]
    assert (
        names
        == (
            "minKey null number string object array "
            "binData objectId bool date timestamp regex maxKey"
        ).split()
    )
    assert [b.rank for b in BRACKETS] == list(range(len(BRACKETS)))


def test_values_sort_by_bracket_first() -> None:
    shuffled = list(reversed(ONE_PER_BRACKET))
    assert sorted(shuffled, key=sort_key) == ONE_PER_BRACKET
    assert [bracket_of(v).name for v in ONE_PER_BRACKET] == (
        "minKey null number string object binData objectId bool date timestamp regex maxKey"
    ).split()


def test_numbers_compare_by_value_across_types() -> None:
    assert sort_key(1) == sort_key(Int64(1)) == sort_key(1.0) == sort_key(Decimal128("1.00"))
    ordered = [float("nan"), float("-inf"), Int64(-(2**62)), -1, 0.5, Decimal128("0.75"), 2**40]
    assert sorted(reversed(ordered), key=sort_key)[1:] == ordered[1:]
    assert sort_key(float("nan")) < sort_key(float("-inf"))
    assert sort_key(Decimal128("NaN")) == sort_key(float("nan"))
    assert sort_key(True) > sort_key(ObjectId())  # a bool is not a number


def test_bindata_orders_by_length_then_subtype_then_bytes() -> None:
    short = Binary(b"\xff", 5)
    longer = Binary(b"\x00\x00", 0)
    uuid4 = Binary(uuid.UUID(int=1).bytes, 4)
    same_len_low_subtype = Binary(b"\xff" * 16, 3)
    assert sort_key(short) < sort_key(longer) < sort_key(same_len_low_subtype) < sort_key(uuid4)
    assert sort_key(b"ab") == sort_key(Binary(b"ab", 0))


def test_objects_compare_field_by_field() -> None:
    assert sort_key({"a": 1}) < sort_key({"a": 2}) < sort_key({"b": 0})
    assert sort_key({"a": 1}) < sort_key({"a": 1, "b": 0})  # a prefix is less
    assert sort_key({"a": 99}) < sort_key({"a": "x"})  # field value type first


def test_strings_compare_by_utf8_bytes() -> None:
    assert sort_key("Z") < sort_key("a") < sort_key("ab") < sort_key("é")


def test_unrangeable_id_types_are_refused() -> None:
    with pytest.raises(UsageError):
        bracket_of(Code("function(){}"))
    with pytest.raises(UsageError):
        bracket_of(object())
