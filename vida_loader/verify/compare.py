"""Compare two streams of raw documents sorted by ``_id``, byte for byte, in one merge pass
(the core of ``verify --deep``).

Both sides come from the same range query in ``_id`` order (the server's BSON order,
``ordering.sort_key``). The merge holds one document of each side at a time, so memory
stays bounded by the cursors' batches whatever the range's size. Only each document's
``_id`` is decoded, from its first element, without inflating the document.

Kinds of difference:

- ``missing``: the source has the ``_id``, the target does not;
- ``extra``: the target has an ``_id`` the source does not;
- ``altered``: both have it, with different bytes (a changed value, a field added,
  removed or moved: BSON documents that differ only in field order differ here too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import bson

from vida_loader.jobfiles import to_ejson
from vida_loader.mongo import CODEC_OPTIONS
from vida_loader.ordering import sort_key
from vida_loader.pipeline.rawid import raw_id


def id_sort_key(id_doc: bytes) -> tuple[Any, ...]:
    """The server's sort position of the ``_id`` of an ``{_id: value}`` document."""
    return sort_key(bson.decode(id_doc, CODEC_OPTIONS)["_id"])


@dataclass(frozen=True)
class Difference:
    """One document that is not the same on both sides."""

    kind: str  # missing, extra, altered
    id_doc: bytes  # the raw {_id: value}
    source_sha256: str | None  # None: not on that side
    target_sha256: str | None

    def record(self, partition: str) -> dict[str, Any]:
        """Its line of mismatches.jsonl: ``_id`` in canonical Extended JSON."""
        return {
            "partition": partition,
            "_id": to_ejson(bson.decode(self.id_doc, CODEC_OPTIONS)["_id"]),
            "kind": self.kind,
            "source_sha256": self.source_sha256,
            "target_sha256": self.target_sha256,
        }


@dataclass
class Tally:
    """What one merge pass saw."""

    source_docs: int = 0
    target_docs: int = 0
    matched: int = 0
    missing: int = 0
    extra: int = 0
    altered: int = 0

    @property
    def matches(self) -> bool:
        return self.missing == self.extra == self.altered == 0


def sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def differ(id_doc: bytes, source: bytes | None, target: bytes | None) -> Difference | None:
    """The difference between one ``_id``'s documents on both sides (None: the same)."""
    if source == target:
        return None
    if target is None:
        assert source is not None
        return Difference("missing", id_doc, sha256_hex(source), None)
    if source is None:
        return Difference("extra", id_doc, None, sha256_hex(target))
    return Difference("altered", id_doc, sha256_hex(source), sha256_hex(target))


class _Side:
    """One sorted stream, one document ahead: its raw bytes; its ``_id`` and sort key
    are read only when asked (two equal documents need neither)."""

    def __init__(self, docs: Iterable[Any]) -> None:
        self.docs = iter(docs)
        self.raw: bytes | None = None
        self._id_doc: bytes | None = None
        self._key: tuple[Any, ...] | None = None
        self.count = 0
        self.advance()

    def advance(self) -> None:
        doc = next(self.docs, None)
        if doc is None:
            self.raw = None
            return
        self.raw = getattr(doc, "raw", doc)
        self._id_doc = self._key = None
        self.count += 1

    @property
    def id_doc(self) -> bytes:
        if self._id_doc is None:
            assert self.raw is not None
            self._id_doc = raw_id(self.raw)
        return self._id_doc

    @property
    def key(self) -> tuple[Any, ...]:
        if self._key is None:
            self._key = id_sort_key(self.id_doc)
        return self._key


def compare_sorted(
    source: Iterable[Any], target: Iterable[Any], tally: Tally | None = None
) -> Iterator[Difference]:
    """Every difference between two ``_id``-sorted streams of raw documents (bytes or
    ``RawBSONDocument``), in ``_id`` order; ``tally`` counts what was seen.

    Equal bytes are the same document: only where the two differ are the ``_id``s read
    (the same ``_id`` bytes, or the same sort position: 1 and 1.0, are the same ``_id``).
    """
    t = tally if tally is not None else Tally()
    src, dst = _Side(source), _Side(target)
    matched = 0
    while src.raw is not None and dst.raw is not None:
        if src.raw == dst.raw:
            matched += 1
            src.advance()
            dst.advance()
        elif src.id_doc == dst.id_doc or src.key == dst.key:
            t.altered += 1
            yield _differ(src.id_doc, src.raw, dst.raw)
            src.advance()
            dst.advance()
        elif src.key < dst.key:
            t.missing += 1
            yield _differ(src.id_doc, src.raw, None)
            src.advance()
        else:
            t.extra += 1
            yield _differ(dst.id_doc, None, dst.raw)
            dst.advance()
    while src.raw is not None:
        t.missing += 1
        yield _differ(src.id_doc, src.raw, None)
        src.advance()
    while dst.raw is not None:
        t.extra += 1
        yield _differ(dst.id_doc, None, dst.raw)
        dst.advance()
    t.matched += matched
    t.source_docs, t.target_docs = src.count, dst.count


def _differ(id_doc: bytes, source: bytes | None, target: bytes | None) -> Difference:
    """``differ`` where the merge already knows the two sides differ."""
    diff = differ(id_doc, source, target)
    assert diff is not None
    return diff
