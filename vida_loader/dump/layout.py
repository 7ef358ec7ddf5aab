"""mongodump's directory layout, declared in one place: the files of one collection's dump
and the ``metadata.json`` that describes it.

``DIR/<db>/<coll>.bson`` holds the documents back to back; ``DIR/<db>/<coll>.metadata.json``
is canonical Extended JSON with ``options``, ``indexes`` (never null), ``uuid`` when the
server reports one, ``collectionName`` and ``type``. With gzip both names end in ``.gz``.

While a dump runs, its parts (one file per partition, each complete or absent) and its
state are kept in a hidden folder beside them (``.<coll>.vida-dump``): mongorestore
skips it, and it goes once the parts are joined into the one ``.bson`` file.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from bson import json_util
from bson.binary import UUID_SUBTYPE, Binary

from vida_loader.errors import UsageError
from vida_loader.jobfiles import EJSON_OPTIONS, GZ
from vida_loader.retry import patient

if TYPE_CHECKING:
    from pymongo.collection import Collection

# mongorestore's own gzip level (Go's default): the file sizes are comparable.
GZIP_LEVEL = 6


def read_metadata(coll: Collection[Any]) -> dict[str, Any]:
    """``coll``'s metadata as mongodump writes it: options, indexes as ``listIndexes``
    gives them (without ``ns``), uuid (hex) when reported, collectionName, type."""
    db = coll.database
    infos = patient(lambda: list(db.list_collections(filter={"name": coll.name})), role="source")
    info = infos[0] if infos else {}
    listed = patient(lambda: list(coll.list_indexes()), role="source")
    indexes = [{k: v for k, v in ix.items() if k != "ns"} for ix in listed]
    meta: dict[str, Any] = {"options": dict(info.get("options") or {}), "indexes": indexes}
    uuid = (info.get("info") or {}).get("uuid")
    if isinstance(uuid, Binary) and uuid.subtype == UUID_SUBTYPE:
        uuid = uuid.as_uuid()
    if isinstance(uuid, UUID):
        meta["uuid"] = uuid.hex  # as mongodump writes it: 32 hex digits
    meta["collectionName"] = coll.name
    meta["type"] = str(info.get("type") or "collection")
    return meta


def metadata_bytes(meta: dict[str, Any]) -> bytes:
    """``meta`` as the text of a ``metadata.json`` (canonical Extended JSON, one line)."""
    return json_util.dumps(meta, json_options=EJSON_OPTIONS).encode()


def load_metadata(path: Path) -> dict[str, Any]:
    """A ``metadata.json`` (gzipped when its name ends in .gz); a corrupt one is one
    ``UsageError`` naming the file."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(GZ) else path.read_bytes()
        meta = json_util.loads(raw.decode(), json_options=EJSON_OPTIONS)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        indexes = meta.get("indexes") or []
        if not isinstance(indexes, list) or not all(
            isinstance(ix, dict) and "key" in ix and "name" in ix for ix in indexes
        ):
            raise ValueError("'indexes' is not a list of index definitions")
        meta["indexes"] = indexes
        if not isinstance(meta.get("options") or {}, dict):
            raise ValueError("'options' is not an object")
        return meta
    except (OSError, EOFError, UnicodeDecodeError, ValueError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(
            f"metadata file '{path}' is corrupt ({reason})",
            value=str(path),
            fix="dump the collection again, or remove the file to restore without indexes",
        ) from None
