"""Dump one partition to its part file: the task of ``dump``.

``dump_partition`` is a task like ``copy_partition``: a function of (partition,
settings) that reads the source's range undecoded (resuming after broken cursors, as
the copy does), writes the documents back to back to a temporary file beside its part,
fsyncs it and renames it into place. A part file is therefore complete or absent: an
attempt killed midway leaves only a temporary file, which the next attempt replaces.
It returns a ``DumpResult`` and never raises.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from vida_loader.dump.layout import GZIP_LEVEL
from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.execution.events import Moved, Reporter, Started, no_report
from vida_loader.job.runstate import DumpRecord, TaskState
from vida_loader.jobfiles import atomic_file
from vida_loader.pipeline.clients import collection, meter_of
from vida_loader.pipeline.reader import ResumingReader
from vida_loader.pipeline.task import AttemptResult, Retriers, failed_result, with_counts
from vida_loader.retry import RetryPolicy
from vida_loader.settings.registry import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_READ_BATCH_MB,
    DEFAULT_READ_BATCH_SIZE,
    MIB,
)

if TYPE_CHECKING:
    from vida_loader.job.manifest import Partition
    from vida_loader.ru.meter import Charges

CHUNK_BYTES = 1 << 20  # bytes gathered before one write to the file (and one progress event)


@dataclass(frozen=True)
class DumpSettings:
    """What a dump task needs besides its partition. Holds the full source URI."""

    source: Endpoint
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    gzip: bool = False
    read_batch_size: int = DEFAULT_READ_BATCH_SIZE
    read_batch_bytes: int = int(DEFAULT_READ_BATCH_MB * MIB)
    meter_every: int = 0  # > 0: read the source's request charge of every k-th command


@dataclass(frozen=True)
class DumpResult(AttemptResult):
    """One partition dumped (``DONE``: its part file is in place) or not (``FAILED``)."""

    partition_id: str
    state: TaskState
    docs: int = 0
    bytes: int = 0
    file_bytes: int = 0
    charges: Charges | None = None

    def apply_to(self, rec: DumpRecord) -> None:
        """Record this attempt in the partition's dump record (the coordinator's)."""
        rec.attempted(self, self.charges.ru if self.charges else 0.0)
        rec.docs, rec.bytes, rec.file_bytes = self.docs, self.bytes, self.file_bytes


def dump_partition(
    part: Partition, path: Path, settings: DumpSettings, report: Reporter | None = None
) -> DumpResult:
    """Write ``part``'s documents to ``path`` (complete or not at all). Never raises an
    ``Exception``."""
    started = time.monotonic()
    report = report or no_report
    retry = Retriers(settings.retry, report, part.id)
    try:
        result = _dump(part, path, settings, report, retry)
    except Exception as exc:  # the process boundary: return a result, do not raise
        result = failed_result(DumpResult, part.id, exc, settings.source.uri)
    meter = meter_of(settings.source, "source")
    charges = meter.take() if meter is not None else None
    return with_counts(result, started, retry.counts(), charges=charges)


def _dump(
    part: Partition,
    path: Path,
    s: DumpSettings,
    report: Reporter,
    retry: Retriers,
) -> DumpResult:
    src = retry.source.call(lambda: collection(s.source, "source", s.timeouts, s.meter_every))
    report(Started(part.id))
    page = part.page_docs(s.read_batch_size, s.read_batch_bytes, DEFAULT_BATCH_SIZE)
    reader = ResumingReader(part, src, page, retry.source, meter_of(s.source, "source"))
    docs = nbytes = 0
    with atomic_file(path) as raw:
        out: IO[bytes] = raw
        if s.gzip:
            out = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)  # type: ignore[assignment]
        buf: list[Any] = []
        held = held_docs = 0
        for doc in reader:
            data = doc.raw
            buf.append(data)
            held += len(data)
            held_docs += 1
            if held >= CHUNK_BYTES:
                out.write(b"".join(buf))
                report(Moved(part.id, held_docs, held))
                docs, nbytes = docs + held_docs, nbytes + held
                buf, held, held_docs = [], 0, 0
        if buf:
            out.write(b"".join(buf))
            report(Moved(part.id, held_docs, held))
            docs, nbytes = docs + held_docs, nbytes + held
        if out is not raw:
            out.close()  # the gzip trailer; ``raw`` stays open for the fsync
        file_bytes = raw.tell()
    return DumpResult(part.id, TaskState.DONE, docs, nbytes, file_bytes)
