"""The change-stream position of a job: taken when its first run starts, before any
partition is read, so that every change the copy may have missed is replayed after it.

Cosmos DB's API for MongoDB accepts a change stream only with one pipeline (the events'
``operationType`` is then absent and deletes are never reported) and
``fullDocument: "updateLookup"``: ``COSMOS_PIPELINE``. Other servers get every event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymongo.errors import PyMongoError

from vida_loader.endpoint import Endpoint, ServerKind, server_kind
from vida_loader.job.runstate import now_iso
from vida_loader.jobfiles import from_ejson, to_ejson
from vida_loader.mongo import describe_error
from vida_loader.retry import patient

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection

COSMOS_PIPELINE: list[dict[str, Any]] = [
    {"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}},
    {"$project": {"_id": 1, "fullDocument": 1, "ns": 1, "documentKey": 1}},
]
FIRST_WAIT_MS = 1000  # a server that gives no token with the stream's opening: one wait


@dataclass(frozen=True)
class Position:
    """Where the job's change stream starts (or why there is none)."""

    token: dict[str, Any] | None  # the resume token; None: the source gave none
    taken_at: str  # ISO time it was taken
    cosmos: bool = False  # opened with Cosmos DB's pipeline: no deletes, no operationType
    error: str | None = None  # why there is no token

    def to_json(self) -> dict[str, Any]:
        return {
            "token": to_ejson(self.token) if self.token is not None else None,
            "taken_at": self.taken_at,
            "cosmos": self.cosmos,
            "error": self.error,
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Position:
        token = doc.get("token")
        return Position(
            from_ejson(token) if token is not None else None,
            str(doc["taken_at"]),
            bool(doc.get("cosmos", False)),
            doc.get("error"),
        )


def pipeline(cosmos: bool) -> list[dict[str, Any]]:
    return COSMOS_PIPELINE if cosmos else []


def open_stream(
    coll: Collection[Any], cosmos: bool, resume_after: dict[str, Any] | None, await_ms: int
) -> Any:
    """The collection's change stream (full documents looked up), from ``resume_after``
    when given."""
    return coll.watch(
        pipeline(cosmos),
        full_document="updateLookup",
        resume_after=resume_after,
        max_await_time_ms=await_ms,
    )


def take_position(client: MongoClient[Any], source: Endpoint) -> Position:
    """The source collection's change-stream position now, through ``client``; a source
    that refuses change streams gives a ``Position`` without token that says why (a copy
    does not need one; ``run --follow`` does)."""
    cosmos = server_kind(source.uri) is ServerKind.COSMOS
    taken_at = now_iso()
    coll = client[source.db][source.collection]
    try:
        # A throttled open is waited out: a run that took no position cannot --follow.
        token = patient(lambda: _first_token(coll, cosmos), role="source")
    except PyMongoError as exc:
        return Position(None, taken_at, cosmos, describe_error(exc, source.uri))
    if token is None:
        return Position(None, taken_at, cosmos, "the source's change stream gave no resume token")
    return Position(dict(token), taken_at, cosmos)


def _first_token(coll: Collection[Any], cosmos: bool) -> Any:
    with open_stream(coll, cosmos, None, FIRST_WAIT_MS) as stream:
        token = stream.resume_token
        if token is None:
            stream.try_next()
            token = stream.resume_token
    return token
