"""Compare one partition byte for byte: the task of ``verify --deep``.

``verify_partition`` is a task like ``copy_partition``: a function of (partition,
settings) that reads both servers, returns a ``DeepResult`` and never raises. The source
is read on a thread of its own, feeding a bounded queue, while this thread reads the
target and merges both (``compare.compare_sorted``): both servers work at once, memory
holds a few pages. Both reads resume after a broken cursor, as the copy's do.

With a transform, the source is read through its filter and projection and each document
goes through it (dropped and rejected ones are not expected on the target), so the
target is compared with what the copy wrote.

``recheck_s`` > 0: the documents that differed are read again on both sides after that
many seconds; those equal by then (the source was still being written) are not
differences. Only the first ``max_listed`` differences of a range are listed (and
rechecked); all are counted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bson.raw_bson import RawBSONDocument

from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.execution.events import Moved, Phase, Reporter, Started, no_report
from vida_loader.job.runstate import TaskState, VerifyRecord
from vida_loader.pipeline.ahead import ReadAhead
from vida_loader.pipeline.clients import collection, meter_of
from vida_loader.pipeline.confirm import find_raw_by_ids
from vida_loader.pipeline.rawid import raw_id
from vida_loader.pipeline.reader import ResumingReader
from vida_loader.pipeline.task import AttemptResult, Retriers, failed_result, with_counts
from vida_loader.retry import Retrier, RetryPolicy
from vida_loader.settings.registry import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_READ_BATCH_MB,
    DEFAULT_READ_BATCH_SIZE,
    MIB,
)
from vida_loader.transform.plugin import Outcomes, Transform, ignoring, transform_for
from vida_loader.transform.spec import TransformSpec
from vida_loader.verify.compare import (
    Difference,
    Tally,
    compare_sorted,
    differ,
    id_sort_key,
)

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from vida_loader.job.manifest import Partition
    from vida_loader.ru.meter import Charges

DEFAULT_MAX_LISTED = 10_000  # differences a range lists (the rest are counted)
CHUNK = 256  # most documents per hand-over from a reading thread
CHUNK_BYTES = 1 << 20  # most bytes per hand-over (a chunk ends past this size)
AHEAD = 16  # chunks a reading thread may be ahead of the merge: about 16 MiB at most
LOOKUP = 1000  # _ids per $in query of a recheck


@dataclass(frozen=True)
class DeepSettings:
    """What a deep-verify task needs besides its partition. Holds full URIs."""

    source: Endpoint
    target: Endpoint
    read_batch_size: int = DEFAULT_READ_BATCH_SIZE  # most documents per page
    read_batch_bytes: int = int(DEFAULT_READ_BATCH_MB * MIB)  # by the plan's estimate
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    transform: TransformSpec | None = None  # the job's: the source goes through it
    recheck_s: float = 0.0
    max_listed: int = DEFAULT_MAX_LISTED
    meter_every: int = 0  # > 0: read the source's request charge of every k-th command


@dataclass(frozen=True)
class DeepResult(AttemptResult):
    """One partition compared (``DONE`` whatever it found) or not (``FAILED``)."""

    partition_id: str
    state: TaskState
    tally: Tally = field(default_factory=Tally)
    differences: tuple[Difference, ...] = ()  # the first ``max_listed``
    cleared: int = 0  # differences gone when read again (--recheck)
    charges: Charges | None = None

    def apply_to(self, rec: VerifyRecord) -> None:
        """Record this attempt in the partition's verify record (the coordinator's)."""
        t = self.tally
        rec.attempted(self, self.charges.ru if self.charges else 0.0)
        rec.source_docs, rec.target_docs, rec.matched = t.source_docs, t.target_docs, t.matched
        rec.missing, rec.extra, rec.altered = t.missing, t.extra, t.altered
        rec.listed = len(self.differences)
        rec.cleared = self.cleared


def verify_partition(
    part: Partition, settings: DeepSettings, report: Reporter | None = None
) -> DeepResult:
    """Compare ``part`` on both sides. Never raises an ``Exception``."""
    started = time.monotonic()
    report = report or no_report
    retry = Retriers(settings.retry, report, part.id)
    try:
        result = _Compare(part, settings, report, retry.source, retry.target).run()
    except Exception as exc:  # the process boundary: return a result, do not raise
        uris = (settings.source.uri, settings.target.uri)
        result = failed_result(DeepResult, part.id, exc, *uris)
    meter = meter_of(settings.source, "source")
    charges = meter.take() if meter is not None else None
    return with_counts(result, started, retry.counts(), charges=charges)


class _Compare:
    """One attempt at one partition: read both sides, merge, recheck."""

    def __init__(
        self,
        part: Partition,
        s: DeepSettings,
        report: Reporter,
        src_retry: Retrier,
        dst_retry: Retrier,
    ) -> None:
        self.part, self.s, self.report = part, s, report
        self.src_retry, self.dst_retry = src_retry, dst_retry

    def run(self) -> DeepResult:
        part, s = self.part, self.s
        self.src = self.src_retry.call(
            lambda: collection(s.source, "source", s.timeouts, s.meter_every)
        )
        self.dst = self.dst_retry.call(lambda: collection(s.target, "target", s.timeouts))
        self.where: dict[str, Any] | None = None
        self.projection: dict[str, Any] | None = None
        self.outcomes: Outcomes | None = None
        t = transform_for(s.transform) if s.transform is not None else None
        self.ignore = t.verify_ignore if t is not None else ()
        if t is not None:
            self.where, self.projection = t.filter, t.projection
            if t.decodes:
                self.outcomes = Outcomes(0)
        self.report(Started(part.id))
        page = part.page_docs(s.read_batch_size, s.read_batch_bytes, DEFAULT_BATCH_SIZE)
        # The source's request charges are read on its reading thread, page by page
        # (the meter's commands go on the source's one connection, after each page).
        source = ResumingReader(
            part,
            self.src,
            page,
            self.src_retry,
            meter_of(s.source, "source"),
            where=self.where,
            projection=self.projection,
        )
        target = ResumingReader(part, self.dst, page, self.dst_retry)
        tally = Tally()
        listed: list[Difference] = []
        # Each side on its own thread: both servers start their query at once (a range
        # query's first page can take as long as the rest together) and keep reading
        # while this thread merges.
        src_in: Iterable[RawBSONDocument] = self._shaped(source)
        dst_in: Iterable[RawBSONDocument] = target
        if self.ignore:
            src_in, dst_in = self._ignoring(src_in), self._ignoring(dst_in)
        with (
            _ahead(src_in, "vida-verify-source") as src_docs,
            _ahead(dst_in, "vida-verify-target") as dst_docs,
        ):
            for diff in compare_sorted(src_docs, self._counted(dst_docs), tally):
                if len(listed) < s.max_listed:
                    listed.append(diff)
        cleared = 0
        if listed and s.recheck_s > 0:
            self._wait(s.recheck_s)
            listed, cleared = self._recheck(listed, tally)
        return DeepResult(part.id, TaskState.DONE, tally, tuple(listed), cleared)

    def _wait(self, seconds: float) -> None:
        """The wait the user asked for before a recheck (writes settle meanwhile), a
        second at a time: each ``Phase`` event lets an interrupt stop the task."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            self.report(Phase(self.part.id, "rechecking"))
            time.sleep(min(1.0, left))

    def _shaped(self, docs: Iterable[RawBSONDocument]) -> Iterable[RawBSONDocument]:
        """The source's documents as the copy wrote them."""
        if self.outcomes is None or self.s.transform is None:
            return docs
        return self.outcomes.stream(docs, transform_for(self.s.transform))

    def _ignoring(self, docs: Iterable[RawBSONDocument]) -> Iterator[RawBSONDocument]:
        """``docs`` without the fields the transform's ``verify_ignore`` names."""
        for doc in docs:
            yield RawBSONDocument(ignoring(bytes(doc.raw), self.ignore))

    def _counted(self, docs: Iterable[RawBSONDocument]) -> Iterator[RawBSONDocument]:
        """``docs``, reporting each page compared (the progress of the range)."""
        n = nbytes = 0
        for doc in docs:
            n += 1
            nbytes += len(doc.raw)
            if n == CHUNK:
                self.report(Moved(self.part.id, n, nbytes))
                n = nbytes = 0
            yield doc
        if n:
            self.report(Moved(self.part.id, n, nbytes))

    def _recheck(self, listed: list[Difference], tally: Tally) -> tuple[list[Difference], int]:
        """Read the differing documents again on both sides: (still differing, cleared)."""
        ids = [d.id_doc for d in listed]
        src = self.src_retry.call(lambda: self._lookup(self.src, ids, True))
        dst = self.dst_retry.call(lambda: self._lookup(self.dst, ids, False))
        left: list[Difference] = []
        for old in listed:
            key = id_sort_key(old.id_doc)
            new = differ(old.id_doc, src.get(key), dst.get(key))
            setattr(tally, old.kind, getattr(tally, old.kind) - 1)
            if new is None:
                tally.matched += 1
            else:
                setattr(tally, new.kind, getattr(tally, new.kind) + 1)
                left.append(new)
        return left, len(listed) - len(left)

    def _lookup(
        self, coll: Collection[Any], ids: list[bytes], source: bool
    ) -> dict[tuple[Any, ...], bytes]:
        t = transform_for(self.s.transform) if self.s.transform is not None else None
        found = lookup(coll, ids, t if source else None)
        if self.ignore:
            return {k: ignoring(raw, self.ignore) for k, raw in found.items()}
        return found


def lookup(
    coll: Collection[Any], ids: list[bytes], t: Transform | None = None
) -> dict[tuple[Any, ...], bytes]:
    """The documents of ``coll`` with these ``_id``s (raw ``{_id: ...}``), by the sort key
    of their ``_id``; with a transform ``t`` (the source's), as the copy writes them."""
    found: dict[tuple[Any, ...], bytes] = {}
    for at in range(0, len(ids), LOOKUP):
        batch = ids[at : at + LOOKUP]
        docs: Iterable[RawBSONDocument] = find_raw_by_ids(
            coll,
            batch,
            len(batch) + 1,
            t.projection if t is not None else None,
            t.filter if t is not None else None,
        )
        if t is not None and t.decodes:
            docs = Outcomes(0).stream(docs, t)
        for doc in docs:
            raw = bytes(doc.raw)
            found[id_sort_key(raw_id(raw))] = raw
    return found


def _ahead(docs: Iterable[RawBSONDocument], name: str) -> ReadAhead[RawBSONDocument]:
    """``docs`` read on their own thread, ``AHEAD`` chunks ahead of the merge."""
    return ReadAhead(
        docs, AHEAD, name, chunk=CHUNK, chunk_bytes=CHUNK_BYTES, size=lambda d: len(d.raw)
    )
