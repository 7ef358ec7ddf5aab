"""Check and prepare the two sides before a task writes: the source collection still
exists, the target is empty (or the user said to drop it or add to it), or still holds
what earlier runs confirmed. Every failure is a ``StateError`` (exit 3), from every
command."""

from __future__ import annotations

from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from vida_loader.endpoint import Endpoint, Timeouts, redact_uri
from vida_loader.errors import StateError
from vida_loader.mongo import close_client, connect, describe_error
from vida_loader.retry import RetryPolicy, patient

Client = MongoClient[dict[str, Any]]


def require_source(client: Client, source: Endpoint, retry: RetryPolicy | None = None) -> None:
    """A ``StateError`` unless the planned source collection still exists. Like every
    call here, tried again within ``retry`` when throttled (Cosmos DB charges metadata
    calls too) or cut off."""
    db = client[source.db]
    try:
        names = patient(
            lambda: db.list_collection_names(filter={"name": source.collection}), retry, "source"
        )
    except PyMongoError as exc:
        raise StateError(
            f"cannot list collections of '{source.db}' on the source: "
            f"{describe_error(exc, source.uri)}"
        ) from None
    if not names:
        raise StateError(
            f"source collection '{source.namespace}' no longer exists on "
            f"'{redact_uri(source.uri)}': check the source or re-plan"
        )


def holds_documents(client: Client, target: Endpoint, retry: RetryPolicy | None = None) -> bool:
    """Whether the target collection holds any document (one index probe, not a count)."""
    coll = client[target.db][target.collection]
    try:
        return patient(lambda: coll.find_one({}, {"_id": 1}), retry, "target") is not None
    except PyMongoError as exc:
        raise StateError(
            f"cannot read target collection '{target.namespace}': {describe_error(exc, target.uri)}"
        ) from None


def check_target_empty(
    client: Client, target: Endpoint, append: bool = False, retry: RetryPolicy | None = None
) -> None:
    """Refuse a target that holds documents, unless the user said to add to it."""
    if holds_documents(client, target, retry) and not append:
        raise StateError(
            f"target collection '{target.namespace}' on '{redact_uri(target.uri)}' already "
            f"holds documents: give --drop-target to empty it first or --append to add to it"
        )


def check_target_kept(
    client: Client, target: Endpoint, confirmed: int, job: str, retry: RetryPolicy | None = None
) -> None:
    """Confirmed partitions are skipped: refuse when the target lost documents since."""
    if not confirmed:
        return
    try:
        # metadata, not a scan: cheap on Atlas and Cosmos DB alike
        coll = client[target.db][target.collection]
        holds = patient(coll.estimated_document_count, retry, "target")
    except PyMongoError as exc:
        raise StateError(
            f"cannot count target collection '{target.namespace}': "
            f"{describe_error(exc, target.uri)}"
        ) from None
    if holds < confirmed:
        raise StateError(
            f"target collection '{target.namespace}' holds {holds:,} documents but earlier "
            f"runs of job '{job}' confirmed {confirmed:,}: it was emptied or changed "
            "since; give --restart (with --drop-target or --append) to copy it all again"
        )


def prepare_target(target: Endpoint, timeouts: Timeouts, drop: bool) -> bool:
    """Reach the target and drop its collection if asked; True when it is empty."""
    if drop:
        drop_target(target, timeouts)
        return True
    client = connect(target.uri, role="target", timeouts=timeouts)
    try:
        return not holds_documents(client, target)
    finally:
        close_client(client)


def drop_target(target: Endpoint, timeouts: Timeouts) -> None:
    client = connect(target.uri, role="target", timeouts=timeouts)
    try:
        client[target.db].drop_collection(target.collection)
    except PyMongoError as exc:
        raise StateError(
            f"cannot drop target collection '{target.namespace}': {describe_error(exc, target.uri)}"
        ) from None
    finally:
        close_client(client)
