"""Restore one byte range of a ``.bson`` file: the task of ``restore``.

``restore_range`` reads the range's documents undecoded and inserts them with the same
writer as ``run`` (bounded chunks on a thread of their own, unordered inserts retried
within budget, only the failed documents sent again). A duplicate key means the document
is there already (an earlier attempt, or a rerun), so an attempt is simply the range
again. The range is done when the target acknowledged every one of its documents,
inserted or already there. It returns a ``RestoreResult`` and never raises.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vida_loader.dump.bson_file import FileRange, read_range
from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.execution.events import Reporter, Started, no_report
from vida_loader.job.runstate import RestoreRecord, TaskState
from vida_loader.pipeline.clients import collection
from vida_loader.pipeline.task import AttemptResult, Retriers, failed_result, with_counts
from vida_loader.pipeline.writer import chunked, writer_for
from vida_loader.retry import RetryPolicy
from vida_loader.settings.registry import DEFAULT_BATCH_MB, DEFAULT_BATCH_SIZE, MIB


@dataclass(frozen=True)
class RestoreSettings:
    """What a restore task needs besides its range. Holds the full target URI."""

    target: Endpoint
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    write_concern: str = "1"  # acknowledged: the write results confirm the range
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_bytes: int = int(DEFAULT_BATCH_MB * MIB)


@dataclass(frozen=True)
class RestoreResult(AttemptResult):
    """One range restored (``DONE``: every document acknowledged) or not (``FAILED``)."""

    task: str
    state: TaskState
    docs: int = 0
    bytes: int = 0
    inserted: int = 0
    already_there: int = 0

    def apply_to(self, rec: RestoreRecord) -> None:
        """Record this attempt in the range's record (the coordinator's)."""
        rec.attempted(self)
        rec.docs, rec.bytes = self.docs, self.bytes
        rec.inserted, rec.already_there = self.inserted, self.already_there


def restore_range(
    r: FileRange, settings: RestoreSettings, report: Reporter | None = None
) -> RestoreResult:
    """Insert the documents of ``r`` into the target. Never raises an ``Exception``."""
    started = time.monotonic()
    report = report or no_report
    retry = Retriers(settings.retry, report, r.id)
    try:
        result = _restore(r, settings, report, retry)
    except Exception as exc:  # the process boundary: return a result, do not raise
        result = failed_result(RestoreResult, r.id, exc, settings.target.uri)
    return with_counts(result, started, retry.counts())


def _restore(r: FileRange, s: RestoreSettings, report: Reporter, retry: Retriers) -> RestoreResult:
    coll = retry.target.call(lambda: collection(s.target, "target", s.timeouts))
    report(Started(r.id))
    writer = writer_for(coll, s.write_concern, retry.target)
    with writer:
        docs, nbytes = writer.write_all(
            chunked(read_range(r), s.batch_size, s.batch_bytes), report, r.id
        )
    writer.report_written(report, r.id)
    if docs != r.docs:
        raise OSError(f"range {r.id} held {docs} documents, the scan counted {r.docs}")
    acked = writer.inserted + writer.already
    if acked != docs:
        return RestoreResult(
            r.id,
            TaskState.FAILED,
            docs,
            nbytes,
            writer.inserted,
            writer.already,
            error=f"the target acknowledged {acked:,} of {docs:,} documents",
            transient=True,
        )
    return RestoreResult(r.id, TaskState.DONE, docs, nbytes, writer.inserted, writer.already)
