"""BSON comparison order of ``_id`` values, as the server sorts them.

The planner needs it to sort and de-duplicate sampled ``_id``s, and the tests need it to
decide, without a server, which partition a value falls in. The server remains the
authority: an integration test checks this order against ``sort({_id: 1})``.

Type brackets, lowest first (MongoDB's comparison/sort order)::

    MinKey < Null < Numbers < String/Symbol < Object < Array < BinData < ObjectId
    < Boolean < Date < Timestamp < Regex < MaxKey

``$gte``/``$lt`` only match values of the operand's bracket; ``$type`` names a bracket.
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bson import Binary, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.code import Code
from bson.datetime_ms import DatetimeMS

from vida_loader.errors import UsageError


class RangeMode(StrEnum):
    """How a partition's range is expressed to the server."""

    TYPED = "typed"  # $gte/$lt inside one BSON type bracket (works everywhere)
    MINMAX = "minmax"  # find().min().max().hint({_id: 1}): spans type brackets


@dataclass(frozen=True)
class Bracket:
    """One BSON type bracket: its rank in the sort order and its ``$type`` aliases."""

    name: str
    rank: int
    type_aliases: tuple[str, ...]
    splittable: bool  # whether ranges inside it are worth making with $gte/$lt

    @property
    def type_spec(self) -> str | list[str]:
        """The ``$type`` operand that matches exactly this bracket."""
        return self.type_aliases[0] if len(self.type_aliases) == 1 else list(self.type_aliases)


BRACKETS: tuple[Bracket, ...] = (
    Bracket("minKey", 0, ("minKey",), False),
    Bracket("null", 1, ("null",), False),
    Bracket("number", 2, ("number",), True),
    Bracket("string", 3, ("string", "symbol"), True),
    Bracket("object", 4, ("object",), True),
    Bracket("array", 5, ("array",), False),
    Bracket("binData", 6, ("binData",), True),
    Bracket("objectId", 7, ("objectId",), True),
    Bracket("bool", 8, ("bool",), False),
    Bracket("date", 9, ("date",), True),
    Bracket("timestamp", 10, ("timestamp",), True),
    Bracket("regex", 11, ("regex",), False),
    Bracket("maxKey", 12, ("maxKey",), False),
)
BRACKET_BY_NAME: dict[str, Bracket] = {b.name: b for b in BRACKETS}
# `_id` can never be an array: no partition is ever made for that bracket.
ID_BRACKETS: tuple[Bracket, ...] = tuple(b for b in BRACKETS if b.name != "array")


def bracket_of(value: Any) -> Bracket:
    """The type bracket a decoded BSON value sorts in."""
    return BRACKET_BY_NAME[_bracket_name(value)]


# The first entry whose types match names the bracket. Order matters: bool before int
# (bool is an int), Code before str (Code is a str).
_TYPE_BRACKETS: tuple[tuple[Any, str], ...] = (
    (MinKey, "minKey"),
    (MaxKey, "maxKey"),
    (type(None), "null"),
    (bool, "bool"),
    (Code, "code"),
    ((int, float, Decimal128), "number"),
    (str, "string"),
    (Mapping, "object"),
    ((list, tuple), "array"),
    ((bytes, Binary, uuid.UUID), "binData"),
    (ObjectId, "objectId"),
    ((datetime.datetime, DatetimeMS), "date"),
    (Timestamp, "timestamp"),
    ((Regex, re.Pattern), "regex"),
)


def _bracket_name(value: Any) -> str:
    for types, name in _TYPE_BRACKETS:
        if isinstance(value, types):
            if name == "code":
                raise UsageError(
                    f"_id value {value!r} is JavaScript code, which vida-loader cannot range"
                )
            return name
    raise UsageError(f"_id value {value!r} has a BSON type vida-loader cannot range")


def sort_key(value: Any) -> tuple[Any, ...]:
    """A key whose Python order is the server's BSON comparison order.

    Values the server treats as equal (``1``, ``Int64(1)``, ``1.0``) get equal keys.
    """
    bracket = bracket_of(value)
    return (bracket.rank, _within_key(bracket.name, value))


def _within_key(name: str, value: Any) -> Any:
    return _WITHIN[name](value)


def _document_key(value: Any) -> tuple[Any, ...]:
    items = value.items() if isinstance(value, Mapping) else enumerate(value)
    # Field by field: value type first, then field name, then value; a prefix is less.
    return tuple((sort_key(v)[0], str(k).encode("utf-8"), sort_key(v)[1]) for k, v in items)


def _binary_key(value: Any) -> tuple[int, int, bytes]:
    if isinstance(value, uuid.UUID):
        data, subtype = value.bytes, 4
    elif isinstance(value, Binary):
        data, subtype = bytes(value), value.subtype
    else:
        data, subtype = bytes(value), 0
    # Length first, then subtype, then the bytes.
    return (len(data), subtype, data)


# Within a bracket: a key whose Python order is the server's.
_WITHIN: dict[str, Callable[[Any], Any]] = {
    "minKey": lambda _v: (),
    "maxKey": lambda _v: (),
    "null": lambda _v: (),
    "number": lambda v: _number_key(v),
    "string": lambda v: v.encode("utf-8", "surrogatepass"),
    "object": _document_key,
    "array": _document_key,
    "binData": _binary_key,
    "objectId": lambda v: v.binary,
    "bool": int,
    "date": lambda v: int(v) if isinstance(v, DatetimeMS) else int(DatetimeMS(v)),
    "timestamp": lambda v: (v.time, v.inc),
    "regex": lambda v: (v.pattern, str(v.flags)),
}


def _number_key(value: Any) -> tuple[int, decimal.Decimal | int]:
    # NaN sorts below every other number; everything else compares by exact value.
    if isinstance(value, Decimal128):
        d = value.to_decimal()
        return (0, 0) if d.is_nan() else (1, d)
    if isinstance(value, float):
        if math.isnan(value):
            return (0, 0)
        return (1, decimal.Decimal(value))
    return (1, decimal.Decimal(int(value)))


def is_nan(value: Any) -> bool:
    """Whether a number is NaN (float or Decimal128): never a usable range boundary."""
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal128):
        return value.to_decimal().is_nan()
    return False


__all__ = [
    "BRACKETS",
    "BRACKET_BY_NAME",
    "Bracket",
    "ID_BRACKETS",
    "bracket_of",
    "is_nan",
    "sort_key",
]


def usable_boundary(value: Any) -> bool:
    """Null, NaN, MinKey and MaxKey never serve as bounds (``None`` means unbounded)."""
    return bracket_of(value).splittable and not is_nan(value)
