"""Clients of a worker: one per process and server, created inside the worker."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

from vida_loader.mongo import close_client, connect
from vida_loader.ru.meter import ChargeMeter

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection

    from vida_loader.endpoint import Endpoint, Timeouts
    from vida_loader.ru.budget import RuBudget

# Documents stay undecoded: each is a slice of the server's reply, inserted as it came.
RAW_OPTIONS: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)

# pymongo logs a failed background killCursors (throttled, connection gone) with its
# traceback; without a handler Python would print it on stderr. The server drops such a
# cursor by itself, so it is not news for the user (who may configure logging).
logging.getLogger("pymongo.client").addHandler(logging.NullHandler())

_CLIENTS: dict[tuple[str, str], MongoClient[dict[str, Any]]] = {}
_METERS: dict[tuple[str, str], ChargeMeter] = {}


def collection(
    ep: Endpoint,
    role: str,
    timeouts: Timeouts,
    meter_every: int = 0,
    budget: RuBudget | None = None,
) -> Collection[Any]:
    """The worker's collection on ``ep``; ``meter_every`` > 0: its client reads the
    request charge of every that-many-th command (see :func:`meter_of`), and paces its
    commands by ``budget`` when there is one."""
    key = (role, ep.uri)
    client = _CLIENTS.get(key)
    if client is None:
        # One connection per worker: commands on it run in order, so the count after
        # unacknowledged inserts follows them, and the request charge read after a
        # command is that command's (Cosmos DB reports it per connection).
        listeners = []
        if meter_every > 0:
            _METERS[key] = ChargeMeter(meter_every, budget)
            listeners.append(_METERS[key])
        client = connect(
            ep.uri, role=role, timeouts=timeouts, maxPoolSize=1, event_listeners=listeners
        )
        _CLIENTS[key] = client
        if key in _METERS:
            _METERS[key].db = client.get_database(ep.db)
    return client.get_database(ep.db).get_collection(ep.collection)


def meter_of(ep: Endpoint, role: str) -> ChargeMeter | None:
    """The charge meter of this process's client of ``ep``, if it meters."""
    return _METERS.get((role, ep.uri))


def close_clients() -> None:
    """Close this process's clients (the inline executor calls it when a run ends)."""
    while _CLIENTS:
        key, client = _CLIENTS.popitem()
        _METERS.pop(key, None)
        close_client(client)
