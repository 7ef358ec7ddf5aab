"""What a server holds: a collection's indexes (a throttled or cut-off ``listIndexes``
is tried again), a sample of its TTL fields, and the plan of what the target gets of each
source index (``plan``). The definitions and the translation are in ``definition``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vida_loader.errors import UsageError
from vida_loader.indexes.definition import (
    COSMOS_DOC_TTL,
    COSMOS_TS,
    ID_INDEX,
    TTL_SAMPLE,
    IndexContext,
    IndexPlan,
    IndexSpec,
    field_value,
    translate,
    ttl_fields,
)
from vida_loader.retry import patient

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from vida_loader.endpoint import ServerKind


def read_indexes(coll: Collection[Any]) -> list[IndexSpec]:
    """Every index of ``coll`` as the server defines it, in the server's order (a
    throttled or cut-off ``listIndexes`` is tried again)."""
    return [IndexSpec.from_server(doc) for doc in patient(lambda: list(coll.list_indexes()))]


def secondary_indexes(coll: Collection[Any]) -> list[IndexSpec]:
    """The indexes of ``coll`` besides the ``_id`` one every collection has."""
    return [s for s in read_indexes(coll) if s.name != ID_INDEX]


def sample_fields(
    coll: Collection[Any], fields: Sequence[str], size: int = TTL_SAMPLE
) -> list[Any]:
    """``size`` random documents of ``coll`` holding only ``fields`` (and the Cosmos DB
    TTL fields): what a TTL decision counts over."""
    keep = {f: 1 for f in (*fields, COSMOS_TS, COSMOS_DOC_TTL)}
    pipeline = [{"$sample": {"size": size}}, {"$project": {"_id": 0, **keep}}]
    return list(coll.aggregate(pipeline))


def plan_indexes(
    coll: Collection[Any],
    source_kind: ServerKind,
    target_kind: ServerKind,
    ttl_field: str | None = None,
) -> tuple[IndexPlan, ...]:
    """Read ``coll``'s indexes and decide what the target gets of each (``plan``).

    A TTL judgement counts over a sample of the TTL fields; ``ttl_field`` must name a
    field the sampled documents have, and there must be a TTL on ``_ts`` to move to it.
    """
    specs = read_indexes(coll)
    fields = ttl_fields(specs)
    if ttl_field is not None:
        fields = sorted({*fields, ttl_field})
    sample = sample_fields(coll, fields) if fields else []
    plans = translate(specs, IndexContext(source_kind, target_kind, ttl_field, sample))
    if ttl_field is not None:
        moved = [p for p in plans if p.source.fields == [COSMOS_TS] and p.adapted]
        if not moved:
            raise UsageError(
                f"--ttl-field '{ttl_field}' has nothing to move: the source has no TTL index "
                f"on '{COSMOS_TS}' (Cosmos DB's); leave --ttl-field out"
            )
        if sample and not any(field_value(d, ttl_field) is not None for d in sample):
            raise UsageError(
                f"--ttl-field '{ttl_field}' names no field of the source: none of "
                f"{len(sample):,} sampled documents has it; name a date field they hold"
            )
    return tuple(plans)
