"""Copy one partition: raw BSON from source to target, then prove that it arrived.

``copy_partition`` is a task: a function of (partition, settings) that reads and writes
the two servers, reports typed events, returns a ``PartitionResult`` and never raises
(except on interrupt), so any executor of ``execution`` can run it: a thread in the
coordinator's process, a spawned worker process, later a cluster node.

Documents stay undecoded on the copy path: the cursor decodes each reply with the
``RawBSONDocument`` class, so every document is a slice of the reply's bytes, inserted as
it came.
With acknowledged writes (the default) a partition whose every document was acknowledged
as inserted is ``done`` on those results alone. Otherwise (``w=0`` writes, which lose
failures silently; a duplicate key; a resumed range; ``--append``) it is ``done`` only
when the target's count inside its range equals what the range holds; a short count
triggers a repair (missing ``_id``s re-sent with acknowledged writes, duplicate key
meaning "already there", as mongorestore does), then a recount.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.execution.events import Charged, Phase, Reporter, Started, no_report
from vida_loader.execution.pool import shared_object
from vida_loader.job.runstate import PartitionRecord, TaskState
from vida_loader.ordering import usable_boundary
from vida_loader.pipeline.clients import collection, meter_of
from vida_loader.pipeline.confirm import (
    AS_READ,
    Reading,
    RepairResult,
    describe_duplicates,
    repair_range,
)
from vida_loader.pipeline.reader import PageSizer, ResumingReader
from vida_loader.pipeline.task import AttemptResult, Retriers, failed_result, with_counts
from vida_loader.pipeline.writer import chunked, writer_for
from vida_loader.retry import RetryPolicy
from vida_loader.ru.budget import UNBOUNDED, RuBudget
from vida_loader.settings.registry import (
    DEFAULT_BATCH_MB,
    DEFAULT_BATCH_SIZE,
    DEFAULT_READ_BATCH_MB,
    DEFAULT_READ_BATCH_SIZE,
    DEFAULT_WRITE_CONCERN,
    MIB,
)
from vida_loader.transform.plugin import Outcomes, Reject, transform_for
from vida_loader.transform.spec import TransformSpec

if TYPE_CHECKING:
    from bson.raw_bson import RawBSONDocument

    from vida_loader.job.manifest import Partition
    from vida_loader.ru.meter import ChargeMeter, Charges

T = TypeVar("T")
RU_BUDGET = "ru_budget"  # the pool's shared object: the run's RU budget
RU_PER_KB_READ = 1.0  # Cosmos DB: a 1 KB read costs about 1 RU


@dataclass(frozen=True)
class CopySettings:
    """What a worker needs besides its partition. Holds full URIs: never written to disk."""

    source: Endpoint
    target: Endpoint
    write_concern: str = DEFAULT_WRITE_CONCERN
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_bytes: int = int(DEFAULT_BATCH_MB * MIB)
    read_batch_size: int = DEFAULT_READ_BATCH_SIZE
    read_batch_bytes: int = int(DEFAULT_READ_BATCH_MB * MIB)
    count_always: bool = False  # confirm by counting even when every write was acknowledged
    repair_rounds: int = 2
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    meter_every: int = 0  # > 0: read the source's request charge of every k-th command
    workers: int = 1  # of the run: they share its RU budget (the pool's "ru_budget")
    transform: TransformSpec | None = None  # the job's: loaded by each worker process
    keep_rejects: int = 0  # rejected documents an attempt hands back, at most


@dataclass(frozen=True)
class PartitionResult(AttemptResult):
    """What happened to one partition on one attempt."""

    partition_id: str
    state: TaskState
    docs: int = 0  # read from the source on this attempt
    bytes: int = 0
    source_docs: int = 0  # what the range holds: read, or counted when resumed
    target_docs: int = 0  # on the target at the end: acknowledged, or counted in the range
    resumed: bool = False  # continued from what the target already held
    repaired: int = 0  # inserted by repair: lost by unacknowledged writes
    already_there: int = 0  # duplicate keys met by acknowledged writes
    # Documents whose _id the source held more than once (a sharded Cosmos DB collection
    # keeps _id unique per shard key only): not on the target, described in the records.
    duplicates: int = 0
    duplicate_records: tuple[dict[str, Any], ...] = ()
    charges: Charges | None = None  # the source's request units, when metered
    # A transform's: documents it dropped, documents refused (validate, or transform
    # raised) in the whole range, and the refused documents to keep (a bounded number).
    dropped: int = 0
    rejected: int = 0
    rejects: tuple[Reject, ...] = ()

    def apply_to(self, rec: PartitionRecord) -> None:
        """Record this attempt in the partition's run-state record (the coordinator's)."""
        rec.attempted(self, self.charges.ru if self.charges else 0.0)
        rec.docs = self.docs
        rec.bytes = self.bytes
        rec.source_docs = self.source_docs
        rec.target_docs = self.target_docs
        rec.resumes += int(self.resumed)
        rec.repaired += self.repaired
        rec.already_there += self.already_there
        rec.duplicates = self.duplicates
        rec.dropped = self.dropped
        rec.rejected = self.rejected


def copy_partition(
    part: Partition, settings: CopySettings, resume: bool = False, report: Reporter | None = None
) -> PartitionResult:
    """Copy ``part`` and confirm it on the target. Never raises an ``Exception``.

    ``resume``: an earlier attempt may have written part of the range; continue from the
    highest ``_id`` the target holds in it (that one document is sent again and absorbed
    as a duplicate key), then confirm against the source's count of the whole range.
    Throttling, network errors, lost cursors and restarts are retried inside the attempt
    (``settings.retry``); past that budget the result is ``failed``, not transient.
    """
    started = time.monotonic()
    report = report or no_report
    retriers = Retriers(settings.retry, report, part.id)
    try:
        result = _Copy(part, settings, report, retriers).run(resume)
    except Exception as exc:  # the process boundary: return a result, do not raise
        uris = (settings.source.uri, settings.target.uri)
        result = failed_result(PartitionResult, part.id, exc, *uris)
    meter = meter_of(settings.source, "source")
    charges = meter.take() if meter is not None else None
    return with_counts(result, started, retriers.counts(), charges=charges)


class _Copy:
    """One attempt at one partition, in named steps: open, write, confirm, judge."""

    def __init__(self, part: Partition, s: CopySettings, report: Reporter, retry: Retriers) -> None:
        self.part = part
        self.s = s
        self.report = report
        self.retry = retry

    def run(self, resume: bool) -> PartitionResult:
        part, s, retry = self.part, self.s, self.retry
        self._open()
        self._shape(s.transform)
        self.report(Started(part.id))
        self.resumed = False
        reading = self._resume_point() if resume else part
        docs, nbytes, inserted, already = self._write(reading)
        read = self.outcomes.read if self.outcomes is not None else docs
        proven = (
            s.write_concern != "0"
            and reading is part
            and inserted == docs
            and not s.count_always
            and retry.target.counts.outages == 0
        )
        if proven:
            # Every document read was acknowledged as inserted: the write results prove the
            # range, no count needed (a count is a scan billed in RUs on Cosmos DB).
            # A duplicate key here would mean the source returned an _id twice: counted
            # below. Not after the target went away: a crash can lose acknowledged writes
            # that had not reached its journal yet, so then the range is counted.
            return self._refusals(
                PartitionResult(
                    part.id, TaskState.DONE, read, nbytes, source_docs=read, target_docs=docs
                )
            )
        # What the target must hold: all that was written, unless this attempt skipped
        # what the target already had (which may itself lack documents lost by
        # unacknowledged writes): then the source's count, or with a transform, what the
        # repair's comparison of _ids finds (the skipped part's refusals are unknown).
        expected: int | None = docs
        if reading is not part:
            where = self.reading.where
            expected = (
                None
                if self.outcomes is not None
                else self._on_source(lambda: part.count_in(self.src, where))
            )
        self.report(Phase(part.id, "confirming"))
        result = self._confirm(expected)
        return self._refusals(
            replace(
                result,
                docs=read,
                bytes=nbytes,
                resumed=self.resumed,
                already_there=result.already_there + already,
            )
        )

    def _open(self) -> None:
        """This attempt's two collections, the source's meter and its page sizes (paced by
        the run's RU budget when the source is metered)."""
        part, s, retry = self.part, self.s, self.retry
        budget = shared_object(RU_BUDGET) if s.meter_every else None
        self.src = retry.source.call(
            lambda: collection(s.source, "source", s.timeouts, s.meter_every, budget)
        )
        self.dst = retry.target.call(lambda: collection(s.target, "target", s.timeouts))
        self.meter: ChargeMeter | None = meter_of(s.source, "source")
        self.batch_size = read_batch_size(part, s, budget)
        self.sizer = None
        if budget is not None:
            largest = read_batch_size(part, s)
            self.sizer = PageSizer(lambda: budget.page_ru(s.workers), largest)
        if self.meter is not None:
            report = self.report
            self.meter.on_charge = lambda ru: report(Charged(part.id, ru))
            self.meter.guess = expected_page_ru(part, self.batch_size)

    def _shape(self, spec: TransformSpec | None) -> None:
        """How this job reads and reshapes documents: ``self.reading``, ``self.outcomes``."""
        self.outcomes: Outcomes | None = None
        self.reading = AS_READ
        if spec is None:
            return
        t = transform_for(spec)
        shape = None
        if t.decodes:
            seen = self.outcomes = Outcomes(self.s.keep_rejects)
            shape = partial(seen.stream, t=t)
        refused = self.outcomes.refused if self.outcomes is not None else frozenset()
        self.reading = Reading(t.filter, t.projection, shape, refused)

    def _refusals(self, result: PartitionResult) -> PartitionResult:
        """``result`` with what the transform dropped and rejected in the range."""
        seen = self.outcomes
        if seen is None:
            return result
        return replace(
            result,
            source_docs=result.source_docs
            if result.state is not TaskState.DONE
            else result.target_docs + seen.dropped + seen.rejected,
            dropped=seen.dropped,
            rejected=seen.rejected,
            rejects=tuple(seen.rejects),
        )

    def _on_source(self, op: Callable[[], T]) -> T:
        """``op`` on the source, retried; then its charge is read while the line is quiet."""
        try:
            return self.retry.source.call(op)
        finally:
            if self.meter is not None:
                self.meter.settle()

    def _resume_point(self) -> Partition:
        """The range still to read: from the highest ``_id`` the target holds in it."""
        part, dst = self.part, self.dst
        found, last = self.retry.target.call(lambda: part.last_id(dst))
        self.resumed = found
        return part.starting_at(last) if found and usable_boundary(last) else part

    def _write(self, reading: Partition) -> tuple[int, int, int, int]:
        """Read ``reading`` and write it: (documents, bytes, inserted, already there)."""
        s = self.s
        with writer_for(self.dst, s.write_concern, self.retry.target) as w:
            how = self.reading
            read: Iterable[RawBSONDocument] = ResumingReader(
                reading,
                self.src,
                self.batch_size,
                self.retry.source,
                self.meter,
                self.sizer,
                how.where,
                how.projection,
            )
            if how.shape is not None:
                read = how.shape(read)
            docs, nbytes = w.write_all(
                chunked(read, s.batch_size, s.batch_bytes), self.report, self.part.id
            )
        w.report_written(self.report, self.part.id)
        return docs, nbytes, w.inserted, w.already

    def _confirm(self, expected: int | None) -> PartitionResult:
        """Count the range on the target; repair it while it is short; judge the outcome.

        ``expected`` None: unknown until a repair round compared the _ids of both sides
        (a transformed range resumed: what the transform refused before is found then).
        """
        part, s, retry, src, dst = self.part, self.s, self.retry, self.src, self.dst
        on_target = retry.target.call(lambda: part.count_in(dst))
        repaired = already = rounds = 0
        repair = None
        how = self.reading
        while (expected is None and rounds == 0) or (
            expected is not None and on_target < expected and rounds < s.repair_rounds
        ):
            rounds += 1
            self.report(Phase(part.id, "repairing"))
            # Idempotent (it sends what the target lacks): retried whole on a fault.
            repair = retry.target.call(
                lambda: repair_range(
                    part, src, dst, s.write_concern, s.batch_size, s.batch_bytes, retry.target, how
                )
            )
            if self.meter is not None:
                self.meter.settle()  # repair read the source last
            if expected is None and self.outcomes is not None:
                expected = repair.source_ids - self.outcomes.dropped - self.outcomes.rejected
            repaired += repair.inserted
            already += repair.already_there
            on_target = retry.target.call(lambda: part.count_in(dst))
            if repair.missing == 0:
                break  # nothing left to send: another round cannot change the count
        assert expected is not None  # set by the first round
        records: tuple[dict[str, Any], ...] = ()
        if repair is not None and repair.duplicate_ids:
            dup_ids = repair.duplicate_ids
            records = self._on_source(lambda: describe_duplicates(part, src, dst, dup_ids))
        error, duplicates = _judge(expected, on_target, rounds, repair, records)
        return PartitionResult(
            part.id,
            TaskState.DONE if error is None else TaskState.FAILED,
            source_docs=expected,
            target_docs=on_target,
            repaired=repaired,
            already_there=already,
            error=error,
            duplicates=duplicates,
            duplicate_records=records if error is None else (),
        )


def _judge(
    expected: int,
    on_target: int,
    rounds: int,
    repair: RepairResult | None,
    records: tuple[dict[str, Any], ...],
) -> tuple[str | None, int]:
    """(the error, or None when the range is confirmed; source duplicates left out)."""
    if on_target == expected:
        return None, 0
    if on_target > expected:
        return (
            f"target holds {on_target - expected:,} more documents in this range than the "
            f"source ({on_target:,} vs {expected:,}): the target collection was not empty"
        ), 0
    if repair is not None and records and on_target == repair.source_ids:
        # Cosmos DB keeps _id unique per shard key only: one _id can come twice. The
        # target holds one document per _id, all it can; the others are reported.
        return None, expected - on_target
    if repair is not None and repair.source_ids < expected:
        return (
            f"the source returned {expected - repair.source_ids:,} documents whose _id it "
            f"had already returned in this range, but holds them once when scanned again "
            f"(changed during the copy?); the target keeps one document per _id"
        ), 0
    error = (
        f"target holds {expected - on_target:,} fewer documents in this range than the "
        f"source ({on_target:,} vs {expected:,}) after {rounds} repair round(s)"
    )
    if repair is not None and repair.extra:
        error += f"; {repair.extra:,} target _ids are not in the source"
    return error, 0


def read_batch_size(part: Partition, s: CopySettings, budget: RuBudget | None = None) -> int:
    """Documents per read: ``s.read_batch_bytes`` by the plan's estimate of the range's
    average document, between 1 and ``s.read_batch_size``; ``s.batch_size`` if unknown.

    With an RU budget, also no more than a page of ``budget.page_ru`` is expected to
    cost (Cosmos DB: about 1 RU per KB read): a page charged after it was read must not
    spend a second's budget at once, or the requests after it are throttled.
    """
    size = part.page_docs(s.read_batch_size, s.read_batch_bytes, s.batch_size)
    if budget is not None:
        page_ru = budget.page_ru(s.workers)
        if page_ru != UNBOUNDED:
            size = max(1, min(size, int(page_ru / ru_per_doc(part))))
    return size


def ru_per_doc(part: Partition) -> float:
    """The expected charge of reading one of the range's documents: 1 RU per KB."""
    if part.est_docs > 0 and part.est_bytes > 0:
        return max(part.est_bytes / part.est_docs / 1024, 0.01) * RU_PER_KB_READ
    return RU_PER_KB_READ


def expected_page_ru(part: Partition, docs: int) -> float:
    return docs * ru_per_doc(part)
