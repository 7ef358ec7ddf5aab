"""Clients of a worker: one per process and server, created inside the worker."""

from __future__ import annotations

from typing import Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.collection import Collection

from vida_loader.mongo import Endpoint, Timeouts, close_client, connect

# Documents stay undecoded: each is a slice of the server's reply, inserted as it came.
RAW_OPTIONS: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)

_CLIENTS: dict[tuple[str, str], MongoClient[dict[str, Any]]] = {}


def collection(ep: Endpoint, role: str, timeouts: Timeouts) -> Collection[Any]:
    key = (role, ep.uri)
    client = _CLIENTS.get(key)
    if client is None:
        # One connection per worker: commands on it run in order, so the count after
        # unacknowledged inserts follows them (and Cosmos DB bills per connection).
        client = connect(ep.uri, role=role, timeouts=timeouts, maxPoolSize=1)
        _CLIENTS[key] = client
    return client.get_database(ep.db).get_collection(ep.collection)


def close_clients() -> None:
    """Close this process's clients (the inline executor calls it when a run ends)."""
    while _CLIENTS:
        _key, client = _CLIENTS.popitem()
        close_client(client)
