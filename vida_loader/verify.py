"""Compare source and target partition by partition: each range counted on both sides."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from vida_loader.config import DEFAULT_JOBS, DEFAULT_MANIFEST_DIR, check_job_name
from vida_loader.coordinator import planned_endpoint
from vida_loader.errors import UsageError
from vida_loader.manifest import Manifest, Partition, load_manifest, manifest_path
from vida_loader.mongo import Timeouts, connect, describe_error


@dataclass(frozen=True)
class VerifyConfig:
    job: str
    manifest_dir: Path = DEFAULT_MANIFEST_DIR
    source_uri: str | None = None
    target_uri: str | None = None
    jobs: int = DEFAULT_JOBS
    timeouts: Timeouts = Timeouts()

    def __post_init__(self) -> None:
        check_job_name(self.job)
        if self.jobs < 1:
            raise UsageError(f"--jobs '{self.jobs}' must be at least 1")


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
    manifest = load_manifest(manifest_path(cfg.manifest_dir, cfg.job))
    source = planned_endpoint(manifest.source, cfg.source_uri, "source", cfg.job)
    target = planned_endpoint(manifest.target, cfg.target_uri, "target", cfg.job)
    src = connect(source.uri, role="source", timeouts=cfg.timeouts, maxPoolSize=cfg.jobs)
    try:
        dst = connect(target.uri, role="target", timeouts=cfg.timeouts, maxPoolSize=cfg.jobs)
        try:
            src_coll = src[source.db][source.collection]
            dst_coll = dst[target.db][target.collection]
            uris = (source.uri, target.uri)
            counts: dict[str, PartitionCount] = {}
            with ThreadPoolExecutor(cfg.jobs, thread_name_prefix="vida-verify") as pool:
                futures = [
                    pool.submit(count_both, p, src_coll, dst_coll, uris)
                    for p in manifest.partitions
                ]
                for fut in as_completed(futures):
                    c = fut.result()
                    counts[c.partition_id] = c
                    if on_progress:
                        on_progress(len(counts), len(futures))
        finally:
            dst.close()
    finally:
        src.close()
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
