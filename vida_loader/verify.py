"""Compare source and target partition by partition: each range counted on both sides."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from vida_loader.config import VerifyConfig
from vida_loader.job import open_job
from vida_loader.manifest import Manifest, Partition
from vida_loader.mongo import connect, describe_error
from vida_loader.pipeline.target import require_source


@dataclass(frozen=True)
class PartitionCount:
    partition_id: str
    source: int | None
    target: int | None
    error: str | None = None

    @property
    def matches(self) -> bool:
        return self.error is None and self.source == self.target


@dataclass(frozen=True)
class VerifyResult:
    manifest: Manifest
    counts: tuple[PartitionCount, ...]  # in partition order
    seconds: float

    @property
    def mismatches(self) -> list[PartitionCount]:
        return [c for c in self.counts if not c.matches]

    @property
    def source_total(self) -> int:
        return sum(c.source or 0 for c in self.counts)

    @property
    def target_total(self) -> int:
        return sum(c.target or 0 for c in self.counts)


VerifyProgress = Callable[[int, int], None]  # partitions counted, partitions in all


def verify_job(cfg: VerifyConfig, on_progress: VerifyProgress | None = None) -> VerifyResult:
    """Count every partition's range on both sides, ``cfg.jobs`` partitions at a time."""
    started = time.monotonic()
    manifest, source, target = open_job(cfg)
    uris = (source.uri, target.uri)
    counts: dict[str, PartitionCount] = {}
    with (
        connect(source.uri, role="source", timeouts=cfg.timeouts, maxPoolSize=cfg.jobs) as src,
        connect(target.uri, role="target", timeouts=cfg.timeouts, maxPoolSize=cfg.jobs) as dst,
        ThreadPoolExecutor(cfg.jobs, thread_name_prefix="vida-verify") as pool,
    ):
        require_source(src, source)  # else a dropped source "matches" an empty target
        src_coll = src[source.db][source.collection]
        dst_coll = dst[target.db][target.collection]
        futures = [
            pool.submit(count_both, p, src_coll, dst_coll, uris) for p in manifest.partitions
        ]
        for fut in as_completed(futures):
            c = fut.result()
            counts[c.partition_id] = c
            if on_progress:
                on_progress(len(counts), len(futures))
    ordered = tuple(counts[p.id] for p in manifest.partitions)
    return VerifyResult(manifest, ordered, time.monotonic() - started)


def count_both(
    part: Partition,
    src: Collection[Any],
    dst: Collection[Any],
    uris: tuple[str, ...],
) -> PartitionCount:
    """Both sides' counts of one range; a failure becomes the partition's error."""
    side = "source"
    try:
        n_src = part.count_in(src)
        side = "target"
        n_dst = part.count_in(dst)
    except PyMongoError as exc:
        return PartitionCount(
            part.id, None, None, f"counting on the {side} failed: {describe_error(exc, *uris)}"
        )
    return PartitionCount(part.id, n_src, n_dst)
