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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bson import Binary, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.code import Code
from bson.datetime_ms import DatetimeMS

from vida_loader.errors import UsageError


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


def _bracket_name(value: Any) -> str:
    # Order matters: bool before int (bool is an int), Code before str (Code is a str).
    if isinstance(value, MinKey):
        return "minKey"
    if isinstance(value, MaxKey):
        return "maxKey"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Code):
        raise UsageError(f"_id value {value!r} is JavaScript code, which vida-loader cannot range")
    if isinstance(value, (int, float, Decimal128)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, (bytes, Binary, uuid.UUID)):
        return "binData"
    if isinstance(value, ObjectId):
        return "objectId"
    if isinstance(value, (datetime.datetime, DatetimeMS)):
        return "date"
    if isinstance(value, Timestamp):
        return "timestamp"
    if isinstance(value, (Regex, re.Pattern)):
        return "regex"
    raise UsageError(f"_id value {value!r} has a BSON type vida-loader cannot range")


def sort_key(value: Any) -> tuple[Any, ...]:
    """A key whose Python order is the server's BSON comparison order.

    Values the server treats as equal (``1``, ``Int64(1)``, ``1.0``) get equal keys.
    """
    bracket = bracket_of(value)
    return (bracket.rank, _within_key(bracket.name, value))


def _within_key(name: str, value: Any) -> Any:
    if name in ("minKey", "maxKey", "null"):
        return ()
    if name == "number":
        return _number_key(value)
    if name == "string":
        return value.encode("utf-8", "surrogatepass")
    if name in ("object", "array"):
        items = value.items() if isinstance(value, Mapping) else enumerate(value)
        # Field by field: value type first, then field name, then value; a prefix is less.
        return tuple((sort_key(v)[0], str(k).encode("utf-8"), sort_key(v)[1]) for k, v in items)
    if name == "binData":
        if isinstance(value, uuid.UUID):
            data, subtype = value.bytes, 4
        elif isinstance(value, Binary):
            data, subtype = bytes(value), value.subtype
        else:
            data, subtype = bytes(value), 0
        # Length first, then subtype, then the bytes.
        return (len(data), subtype, data)
    if name == "objectId":
        return value.binary
    if name == "bool":
        return int(value)
    if name == "date":
        return int(value) if isinstance(value, DatetimeMS) else int(DatetimeMS(value))
    if name == "timestamp":
        return (value.time, value.inc)
    if name == "regex":
        flags = value.flags
        return (value.pattern, str(flags))
    raise AssertionError(name)  # pragma: no cover


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
