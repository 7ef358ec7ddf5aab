"""The ``_id`` of a raw BSON document, read from its bytes: what confirmation, repair and
the deep verify's byte-for-byte merge key their documents by, without decoding them."""

from __future__ import annotations

import struct

import bson

from vida_loader.mongo import CODEC_OPTIONS

# Value sizes of the BSON types with a fixed length (type byte -> bytes).
FIXED = {
    0x01: 8,  # double
    0x06: 0,  # undefined
    0x07: 12,  # ObjectId
    0x08: 1,  # boolean
    0x09: 8,  # UTC datetime
    0x0A: 0,  # null
    0x10: 4,  # int32
    0x11: 8,  # timestamp
    0x12: 8,  # int64
    0x13: 16,  # decimal128
    0xFF: 0,  # MinKey
    0x7F: 0,  # MaxKey
}
LENGTH_PREFIXED = {0x02: 4, 0x0D: 4, 0x0E: 4}  # string, code, symbol: int32 + bytes
SELF_SIZED = {0x03, 0x04, 0x0F}  # document, array, code with scope: int32 total size
INT32 = struct.Struct("<i")


def raw_id(raw: bytes) -> bytes:
    """The ``{_id: value}`` document of a raw BSON document, as ``bson.encode`` makes it.

    Read from the first element when it is ``_id`` (drivers and servers put it first);
    otherwise the document is decoded.
    """
    if raw[5:9] == b"_id\x00":
        size = _value_size(raw, 9, raw[4])
        if size is not None:
            element = raw[4 : 9 + size]
            return INT32.pack(len(element) + 5) + element + b"\x00"
    return bson.encode({"_id": bson.decode(raw, CODEC_OPTIONS)["_id"]})


def _value_size(raw: bytes, at: int, kind: int) -> int | None:
    """The size of the value at ``at`` of BSON type ``kind`` (None: not read here)."""
    if kind in FIXED:
        return FIXED[kind]
    if kind in LENGTH_PREFIXED:
        return 4 + int(INT32.unpack_from(raw, at)[0])
    if kind in SELF_SIZED:
        return int(INT32.unpack_from(raw, at)[0])
    if kind == 0x05:  # binary: int32 length, subtype, bytes
        return 5 + int(INT32.unpack_from(raw, at)[0])
    if kind == 0x0B:  # regex: two C strings
        end = raw.index(b"\x00", raw.index(b"\x00", at) + 1)
        return end + 1 - at
    return None  # DBPointer and anything else: decoded the slow way
