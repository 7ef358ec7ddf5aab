"""The delete sweep of ``run --follow --follow-deletes sweep``: target documents whose
``_id`` the source no longer has are deleted, range by range.

Cosmos DB's change stream never reports deletes, so without a sweep a document deleted
on the source stays on the target. Each range's ``_id``s are read on the target first,
then on the source (raw ``{_id: ...}`` documents compared as bytes, as repair does): a
document inserted on the source in between is on the source's list and stays; only an
``_id`` the target holds and the source no longer has is deleted. The follow loop applies
no change meanwhile, so the target's list holds still.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bson

from vida_loader.mongo import CODEC_OPTIONS
from vida_loader.pipeline.confirm import range_ids

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from vida_loader.job.manifest import Manifest
    from vida_loader.retry import Retrier

CHUNK = 1000  # _ids per delete


def sweep_deletes(
    manifest: Manifest, src: Collection[Any], dst: Collection[Any], retrier: Retrier
) -> int:
    """Delete the target's documents the source no longer holds; how many were deleted."""
    deleted = 0
    for part in manifest.partitions:
        on_target = retrier.call(lambda: range_ids(part, dst))  # noqa: B023 - called at once
        if not on_target:
            continue
        on_source = retrier.call(lambda: range_ids(part, src))  # noqa: B023
        gone = sorted(on_target - on_source)
        for at in range(0, len(gone), CHUNK):
            ids = [bson.decode(r, CODEC_OPTIONS)["_id"] for r in gone[at : at + CHUNK]]
            result = retrier.call(lambda: dst.delete_many({"_id": {"$in": ids}}))  # noqa: B023
            deleted += result.deleted_count
    return deleted
