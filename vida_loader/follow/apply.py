"""The source's change events as idempotent writes on the target, by ``_id``.

An insert, replace or update (its full document looked up) becomes a replace with
upsert of the whole document as the source holds it (raw bytes: the target gets the
same bytes); a delete becomes a delete; an update whose document is already gone (it
was deleted since) is skipped: its delete follows. Within one batch only the last event
of each ``_id`` counts, so the batch's writes are independent of their order and one
unordered bulk write applies them; replayed again (after a kill, or a Cosmos DB page
read twice) they give the same target.

Cosmos DB's events carry no ``operationType`` (its required pipeline projects it away)
and it never reports deletes: each of its events is an upsert of its full document.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteOne, ReplaceOne

from vida_loader.errors import StateError
from vida_loader.mongo import CODEC_OPTIONS

if TYPE_CHECKING:
    from vida_loader.transform.plugin import Transform

UPSERTS = ("insert", "replace", "update")
# What ends a collection's stream: follow cannot go on after them.
ENDINGS = ("drop", "rename", "dropDatabase", "invalidate")


@dataclass
class Batch:
    """One batch of events reduced to one write per ``_id`` (the last event wins)."""

    writes: dict[bytes, Any] = field(default_factory=dict)  # raw {_id} -> ReplaceOne/DeleteOne
    ids: dict[bytes, Any] = field(default_factory=dict)  # raw {_id} -> the _id
    events: int = 0
    skipped: int = 0  # updates of documents gone since
    dropped: int = 0  # the transform dropped the document: deleted from the target
    rejected: int = 0  # the transform refused it: deleted from the target
    last_at: float | None = None  # when the last event happened (epoch seconds), if told

    def add(self, event: Mapping[str, Any], t: Transform | None = None) -> None:
        """Take in one change event (a raw document of the stream)."""
        self.events += 1
        kind = event.get("operationType")
        when = _event_time(event)
        if when is not None:
            self.last_at = when
        if kind in ENDINGS:
            raise StateError(
                f"the source collection's change stream ended with a '{kind}' event (the "
                "collection was dropped or renamed): follow cannot go on; the copy must "
                "start over (--restart)"
            )
        key = event.get("documentKey")
        full = event.get("fullDocument")
        if kind == "delete":
            self._delete(key)
            return
        if kind is not None and kind not in UPSERTS:
            self.skipped += 1  # createIndexes, modify...: not a document's change
            return
        if full is None:
            self.skipped += 1  # updated, then deleted before the lookup: its delete follows
            return
        doc = RawBSONDocument(bytes(full.raw)) if hasattr(full, "raw") else full
        if t is not None:
            out = t.apply(doc)
            if not isinstance(out, RawBSONDocument):
                self.dropped += out is None
                self.rejected += out is not None
                self._delete(key or {"_id": doc["_id"]})
                return
            doc = out
        _id = doc["_id"]
        key = _id_key(_id)
        self.writes[key], self.ids[key] = ReplaceOne({"_id": _id}, doc, upsert=True), _id

    def _delete(self, key: Any) -> None:
        _id = _decoded(key)["_id"]
        raw = _id_key(_id)
        self.writes[raw], self.ids[raw] = DeleteOne({"_id": _id}), _id

    def upserted_ids(self) -> list[Any]:
        """The ``_id``s this batch writes whole."""
        return [self.ids[k] for k, w in self.writes.items() if isinstance(w, ReplaceOne)]

    def keep_only(self, matching: Set[bytes]) -> None:
        """Upserts of ``_id``s not in ``matching`` (raw ``{_id: ...}``) become deletes: the
        transform's filter no longer selects those documents."""
        for key, w in list(self.writes.items()):
            if isinstance(w, ReplaceOne) and key not in matching:
                self.writes[key] = DeleteOne({"_id": self.ids[key]})
                self.dropped += 1

    @property
    def upserts(self) -> int:
        """Writes that put a whole document (one per _id)."""
        return sum(isinstance(w, ReplaceOne) for w in self.writes.values())

    @property
    def deletes(self) -> int:
        return sum(isinstance(w, DeleteOne) for w in self.writes.values())

    def extend(self, events: Iterable[Mapping[str, Any]], t: Transform | None = None) -> None:
        for event in events:
            self.add(event, t)


def _event_time(event: Mapping[str, Any]) -> float | None:
    """When the change happened: ``wallTime`` (milliseconds, MongoDB 6+), else
    ``clusterTime`` (whole seconds); None when the event tells neither (Cosmos DB)."""
    wall = event.get("wallTime")
    if isinstance(wall, datetime.datetime):
        return wall.replace(tzinfo=datetime.UTC).timestamp()
    cluster = event.get("clusterTime")
    return float(cluster.time) if cluster is not None else None


def _decoded(doc: Any) -> Mapping[str, Any]:
    if isinstance(doc, RawBSONDocument):
        return bson.decode(doc.raw, CODEC_OPTIONS)
    return dict(doc)


def _id_key(_id: Any) -> bytes:
    """The ``_id`` as BSON bytes: 1 and 1.0 are different keys, as on the server."""
    return bson.encode({"_id": _id}, codec_options=CODEC_OPTIONS)
