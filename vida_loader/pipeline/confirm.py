"""Confirm a range on the target, repair what it lacks, describe what the source holds twice."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import bson
import orjson
from bson import json_util
from bson.raw_bson import RawBSONDocument

from vida_loader.mongo import CODEC_OPTIONS
from vida_loader.pipeline.clients import RAW_OPTIONS
from vida_loader.pipeline.rawid import raw_id
from vida_loader.pipeline.writer import resend
from vida_loader.retry import Retrier, RetryPolicy

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from vida_loader.job.manifest import Partition


def _raw_ids(
    part: Partition, coll: Collection[Any], where: dict[str, Any] | None = None
) -> dict[bytes, int]:
    """The range's ``{_id: ...}`` documents (of those matching ``where``) as raw bytes, in
    ``_id`` order, each with how often it came (more than once: a sharded source holds
    that ``_id`` twice)."""
    raw = coll.with_options(codec_options=RAW_OPTIONS)
    ids: dict[bytes, int] = {}
    for doc in part.find(raw, {"_id": 1}, where=where, batch_size=10_000):
        key = bytes(doc.raw)
        ids[key] = ids.get(key, 0) + 1
    return ids


def range_ids(part: Partition, coll: Collection[Any]) -> set[bytes]:
    """The range's ``_id``s on ``coll``, each as its raw ``{_id: ...}`` document."""
    return set(_raw_ids(part, coll))


def find_raw_by_ids(
    coll: Collection[Any],
    raw_ids: list[bytes],
    batch_size: int,
    projection: dict[str, Any] | None = None,
    where: dict[str, Any] | None = None,
) -> Iterator[RawBSONDocument]:
    """Every document of ``coll`` (matching ``where``) whose ``_id`` is one of
    ``raw_ids`` (raw ``{_id: ...}``), undecoded."""
    ids = [bson.decode(r, CODEC_OPTIONS)["_id"] for r in raw_ids]
    query: dict[str, Any] = {"_id": {"$in": ids}}
    if where:
        query = {"$and": [where, query]}
    raw = coll.with_options(codec_options=RAW_OPTIONS)
    yield from raw.find(query, projection, batch_size=batch_size)


Shape = Callable[[Iterable[RawBSONDocument]], Iterable[RawBSONDocument]]


@dataclass(frozen=True)
class Reading:
    """How a job reads its source: a transform's filter and projection, and what it does
    to each document read (``shape``: the documents the target gets; None: as read)."""

    where: dict[str, Any] | None = None
    projection: dict[str, Any] | None = None
    shape: Shape | None = None
    refused: Set[bytes] = frozenset()  # raw _ids not meant for the target


AS_READ = Reading()


@dataclass(frozen=True)
class RepairResult:
    source_ids: int  # distinct _ids in the range on the source
    duplicate_ids: list[bytes]  # raw {_id: ...} the source returned more than once
    missing: int  # of those, absent from the target
    inserted: int
    already_there: int
    extra: int  # target _ids in the range that the source lacks


def repair_range(
    part: Partition,
    src: Collection[Any],
    dst: Collection[Any],
    level: str,
    batch_size: int,
    batch_bytes: int,
    retrier: Retrier | None = None,
    reading: Reading = AS_READ,
) -> RepairResult:
    """Send again every source document whose ``_id`` the target lacks, acknowledged
    (shaped as ``reading`` says; those it refused are not missing)."""
    src_ids = _raw_ids(part, src, reading.where)
    dst_ids = _raw_ids(part, dst)
    refused = reading.refused
    missing = [r for r in src_ids if r not in dst_ids and r not in refused]
    extra = sum(1 for r in dst_ids if r not in src_ids)
    duplicate_ids = [r for r, n in src_ids.items() if n > 1]
    retrier = retrier or Retrier(RetryPolicy(attempts=0), role="target")
    inserted = already = 0
    for i in range(0, len(missing), batch_size):
        found: Iterable[RawBSONDocument] = find_raw_by_ids(
            src, missing[i : i + batch_size], batch_size, reading.projection
        )
        if reading.shape is not None:
            found = reading.shape(found)
        ins, dup = resend(dst, found, level, batch_size, batch_bytes, retrier)
        inserted += ins
        already += dup
    return RepairResult(len(src_ids), duplicate_ids, len(missing), inserted, already, extra)


def describe_duplicates(
    part: Partition, src: Collection[Any], dst: Collection[Any], raw_ids: list[bytes]
) -> tuple[dict[str, Any], ...]:
    """One record per ``_id`` the source holds more than once: every copy (as canonical
    Extended JSON, with the SHA-256 of its bytes) and whether the target kept it."""
    copies: dict[bytes, list[RawBSONDocument]] = {}
    for doc in find_raw_by_ids(src, raw_ids, 1000):
        copies.setdefault(id_key(doc), []).append(doc)
    kept = {id_key(d): _sha256(d) for d in find_raw_by_ids(dst, raw_ids, 1000)}
    return tuple(
        {
            "partition": part.id,
            "_id": _ejson(bson.decode(key, CODEC_OPTIONS))["_id"],
            "copies": [
                {
                    "sha256": _sha256(d),
                    "on_target": _sha256(d) == kept.get(key),
                    "document": _ejson(bson.decode(d.raw, CODEC_OPTIONS)),
                }
                for d in docs
            ],
        }
        for key, docs in copies.items()
    )


def _sha256(doc: RawBSONDocument) -> str:
    return hashlib.sha256(doc.raw).hexdigest()


def _ejson(doc: dict[str, Any]) -> Any:
    """``doc`` as canonical Extended JSON, parsed: types survive a JSON file."""
    return orjson.loads(json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS))


def id_key(doc: RawBSONDocument) -> bytes:
    """The raw ``{_id: ...}`` document of ``doc`` (what ``_raw_ids`` yields), read from its
    first element without decoding the document (``rawid.raw_id``)."""
    raw = doc.raw
    return raw_id(raw if isinstance(raw, bytes) else bytes(raw))
