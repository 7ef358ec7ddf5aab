"""Compare source and target partition by partition: each range counted on both sides.

A transformed job (its run state names a transform) cannot expect the target to hold what
the source does: each range's source count (through the transform's filter) must equal
what the run read, and the target's count what the run confirmed, read − dropped −
rejected, as recorded in the run state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pymongo.errors import PyMongoError

from vida_loader.job.planned import open_job
from vida_loader.job.runstate import PartitionRecord, load_state, now_iso
from vida_loader.jobfiles import from_ejson, write_json_atomic
from vida_loader.mongo import connect, describe_error
from vida_loader.pipeline.target import require_source
from vida_loader.transform.spec import TransformSpec

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from vida_loader.config import VerifyConfig
    from vida_loader.job.manifest import Manifest, Partition


@dataclass(frozen=True)
class Recorded:
    """What the run recorded of a transformed partition."""

    read: int  # source documents in the range (through the filter)
    dropped: int
    rejected: int

    @property
    def expected(self) -> int:
        """What the target must hold."""
        return self.read - self.dropped - self.rejected


@dataclass(frozen=True)
class PartitionCount:
    partition_id: str
    source: int | None
    target: int | None
    error: str | None = None
    recorded: Recorded | None = None  # a transformed job's figures

    @property
    def matches(self) -> bool:
        if self.error is not None:
            return False
        if self.recorded is None:
            return self.source == self.target
        return self.source == self.recorded.read and self.target == self.recorded.expected


@dataclass(frozen=True)
class VerifyResult:
    manifest: Manifest
    counts: tuple[PartitionCount, ...]  # in partition order
    seconds: float
    transform: str | None = None  # a transformed job's transform, described

    @property
    def mismatches(self) -> list[PartitionCount]:
        return [c for c in self.counts if not c.matches]

    def record(self) -> dict[str, Any]:
        """What ``verify.json`` keeps of this verification (the report shows it)."""
        return {
            "time": now_iso(),
            "seconds": round(self.seconds, 3),
            "partitions": len(self.counts),
            "source_docs": self.source_total,
            "target_docs": self.target_total,
            "matches": not self.mismatches,
            "transform": self.transform,
            "mismatches": [
                {
                    "partition": c.partition_id,
                    "source": c.source,
                    "target": c.target,
                    "error": c.error,
                }
                for c in self.mismatches
            ],
        }

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
    state = load_state(cfg.files.state)
    transform = state.transform if state is not None else None
    where = from_ejson(transform["filter"]) if transform and transform.get("filter") else None
    uris = (source.uri, target.uri)
    counts: dict[str, PartitionCount] = {}
    with (
        connect(source.uri, role="source", timeouts=cfg.timeouts, maxPoolSize=cfg.jobs) as src,
        connect(target.uri, role="target", timeouts=cfg.timeouts, maxPoolSize=cfg.jobs) as dst,
        ThreadPoolExecutor(cfg.jobs, thread_name_prefix="vida-verify") as pool,
    ):
        require_source(src, source, cfg.retry)  # else a dropped source "matches" an empty target
        src_coll = src[source.db][source.collection]
        dst_coll = dst[target.db][target.collection]
        futures = [
            pool.submit(count_both, p, src_coll, dst_coll, uris, where) for p in manifest.partitions
        ]
        for fut in as_completed(futures):
            c = fut.result()
            if transform is not None and state is not None:
                c = _with_record(c, state.partitions.get(c.partition_id))
            counts[c.partition_id] = c
            if on_progress:
                on_progress(len(counts), len(futures))
    ordered = tuple(counts[p.id] for p in manifest.partitions)
    described = TransformSpec.from_json(transform).describe() if transform else None
    result = VerifyResult(manifest, ordered, time.monotonic() - started, described)
    write_json_atomic(cfg.files.verify, result.record())
    return result


def _with_record(c: PartitionCount, rec: PartitionRecord | None) -> PartitionCount:
    """A transformed partition's counts beside what the run recorded of it."""
    if rec is None or not rec.done:
        return replace(c, error=c.error or "not confirmed by a run: nothing recorded to compare")
    return replace(c, recorded=Recorded(rec.source_docs, rec.dropped, rec.rejected))


def count_both(
    part: Partition,
    src: Collection[Any],
    dst: Collection[Any],
    uris: tuple[str, ...],
    where: dict[str, Any] | None = None,
) -> PartitionCount:
    """Both sides' counts of one range (the source's through ``where``); a failure
    becomes the partition's error."""
    side = "source"
    try:
        n_src = part.count_in(src, where)
        side = "target"
        n_dst = part.count_in(dst)
    except PyMongoError as exc:
        return PartitionCount(
            part.id, None, None, f"counting on the {side} failed: {describe_error(exc, *uris)}"
        )
    return PartitionCount(part.id, n_src, n_dst)
