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

import hashlib
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import bson
import orjson
from bson import json_util
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.errors import BulkWriteError, PyMongoError

from vida_loader.config import (
    DEFAULT_BATCH_DOCS,
    DEFAULT_BATCH_MB,
    DEFAULT_READ_BATCH_DOCS,
    DEFAULT_READ_BATCH_MB,
    DEFAULT_WRITE_CONCERN,
    Endpoint,
)
from vida_loader.errors import VidaError
from vida_loader.execution.events import Moved, Reporter, Started, Waiting, no_report
from vida_loader.faults import Fault, Verdict, classify, classify_write_error
from vida_loader.manifest import Partition
from vida_loader.mongo import (
    CODEC_OPTIONS,
    Timeouts,
    close_client,
    connect,
    describe_error,
    write_concern,
)
from vida_loader.ordering import usable_boundary
from vida_loader.retry import Retrier, RetryBudgetExceeded, RetryCounts, RetryPolicy

MIB = 1024 * 1024
RAW_OPTIONS: CodecOptions[RawBSONDocument] = CodecOptions(document_class=RawBSONDocument)


class PartitionState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class CopySettings:
    """What a worker needs besides its partition. Holds full URIs: never written to disk."""

    source: Endpoint
    target: Endpoint
    write_concern: str = DEFAULT_WRITE_CONCERN
    batch_docs: int = DEFAULT_BATCH_DOCS
    batch_bytes: int = int(DEFAULT_BATCH_MB * MIB)
    read_batch_docs: int = DEFAULT_READ_BATCH_DOCS
    read_batch_bytes: int = int(DEFAULT_READ_BATCH_MB * MIB)
    count_always: bool = False  # confirm by counting even when every write was acknowledged
    repair_rounds: int = 2
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class PartitionResult:
    """What happened to one partition on one attempt."""

    partition_id: str
    state: PartitionState
    docs: int = 0  # read from the source on this attempt
    bytes: int = 0
    source_docs: int = 0  # what the range holds: read, or counted when resumed
    target_docs: int = 0  # on the target at the end: acknowledged, or counted in the range
    resumed: bool = False  # continued from what the target already held
    repaired: int = 0  # inserted by repair: lost by unacknowledged writes
    already_there: int = 0  # duplicate keys met by acknowledged writes
    seconds: float = 0.0
    error: str | None = None
    transient: bool = False  # a later attempt may succeed
    retries: int = 0  # operations tried again inside this attempt
    throttled: int = 0  # of those, because the server throttled
    wait_s: float = 0.0  # seconds spent waiting to retry
    # The side ("source", "target") that stayed away past the retry budget: an outage,
    # not throttling. The coordinator then starts no more partitions.
    outage: str | None = None
    # Documents whose _id the source held more than once (a sharded Cosmos DB collection
    # keeps _id unique per shard key only): not on the target, described in the records.
    duplicates: int = 0
    duplicate_records: tuple[dict[str, Any], ...] = ()


class WriteFailedError(Exception):
    """A write failed for a reason a retry cannot clear (validation, too large, ...)."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"write failed with code {code}: {message}")
        self.code = code


def wait_reporter(report: Reporter, task: str) -> Callable[[str, Verdict, float], None]:
    """A retrier's ``on_wait`` that reports each wait as a ``Waiting`` event."""

    def on_wait(side: str, verdict: Verdict, delay: float) -> None:
        throttled = verdict.fault is Fault.THROTTLED
        report(Waiting(task, side, verdict.reason, int(delay * 1000), throttled))

    return on_wait


class _Retriers:
    """One retrier per side: a source outage and target throttling have separate budgets."""

    def __init__(self, policy: RetryPolicy, report: Reporter, pid: str) -> None:
        on_wait = wait_reporter(report, pid)
        self.source = Retrier(policy, on_wait, role="source")
        self.target = Retrier(policy, on_wait, role="target")

    def counts(self) -> RetryCounts:
        total = RetryCounts()
        for r in (self.source, self.target):
            total.merge(r.counts.retries, r.counts.throttled, r.counts.wait_s)
        return total


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
    retriers = _Retriers(settings.retry, report, part.id)
    try:
        result = _copy(part, settings, report, started, resume, retriers)
    except Exception as exc:  # the process boundary: return a result, do not raise
        uris = (settings.source.uri, settings.target.uri)
        transient = False
        outage = None
        if isinstance(exc, RetryBudgetExceeded):
            last = exc.last
            if classify(last).fault is Fault.TRANSIENT:
                outage = exc.role
            text = (
                f"gave up on the {exc.role} after {exc.failures} failures in "
                f"{exc.seconds:.0f} s ({classify(last).reason}); last error: "
                f"{type(last).__name__}: {_error_text(last, uris)}"
            )
        else:
            text = f"{type(exc).__name__}: {_error_text(exc, uris)}"
            transient = classify(exc).retryable
        result = PartitionResult(
            part.id,
            PartitionState.FAILED,
            seconds=time.monotonic() - started,
            error=text,
            transient=transient,
            outage=outage,
        )
    counts = retriers.counts()
    return replace(result, retries=counts.retries, throttled=counts.throttled, wait_s=counts.wait_s)


def _error_text(exc: BaseException, uris: tuple[str, ...]) -> str:
    return exc.message if isinstance(exc, VidaError) else describe_error(exc, *uris)


def _copy(
    part: Partition,
    s: CopySettings,
    report: Reporter,
    started: float,
    resume: bool,
    retry: _Retriers,
) -> PartitionResult:
    src = retry.source.call(lambda: _collection(s.source, "source", s.timeouts))
    dst = retry.target.call(lambda: _collection(s.target, "target", s.timeouts))
    report(Started(part.id))
    reading, resumed = part, False
    if resume:
        resumed, last = retry.target.call(lambda: part.last_id(dst))
        if resumed and usable_boundary(last):
            reading = part.starting_at(last)
    docs = nbytes = 0
    acknowledged = s.write_concern != "0"
    writer_coll = dst.with_options(write_concern=write_concern(s.write_concern))
    with Writer(writer_coll, acknowledged, retry.target) as w:
        read = ResumingReader(reading, src, read_batch_size(part, s), retry.source)
        held: tuple[list[RawBSONDocument], int] | None = None
        for chunk, chunk_bytes in chunked(read, s.batch_docs, s.batch_bytes):
            if held is not None:
                w.put(*held)  # written on the writer's thread during the next read
            held = (chunk, chunk_bytes)  # the last chunk goes journaled, below
            docs += len(chunk)
            nbytes += chunk_bytes
            w.report_written(report, part.id)
        if held is not None:
            w.put(*held, last=True)
    w.report_written(report, part.id)
    already = w.already

    crashed = retry.target.counts.outages > 0
    if (
        acknowledged
        and reading is part
        and w.inserted == docs
        and not s.count_always
        and not crashed
    ):
        # Every document read was acknowledged as inserted: the write results prove the
        # range, no count needed (a count is a scan billed in RUs on Cosmos DB).
        # A duplicate key here would mean the source returned an _id twice: counted below.
        # Not after the target went away: a crash can lose acknowledged writes that had
        # not reached its journal yet, so then the range is counted.
        return PartitionResult(
            part.id,
            PartitionState.DONE,
            docs=docs,
            bytes=nbytes,
            source_docs=docs,
            target_docs=docs,
            seconds=time.monotonic() - started,
        )
    # What the range holds: all of it was read, unless this attempt skipped what the
    # target already had (which may itself lack documents lost by unacknowledged writes).
    if reading is not part:
        expected = retry.source.call(lambda: part.count_in(src))
    else:
        expected = docs
    on_target = retry.target.call(lambda: part.count_in(dst))
    repaired = rounds = 0
    repair = None
    while on_target < expected and rounds < s.repair_rounds:
        rounds += 1
        # Idempotent (it sends what the target lacks): retried whole on a fault.
        repair = retry.target.call(lambda: repair_range(part, src, dst, s, retry.target))
        repaired += repair.inserted
        already += repair.already_there
        on_target = retry.target.call(lambda: part.count_in(dst))
        if repair.missing == 0:
            break  # nothing left to send: another round cannot change the count
    error = None
    duplicates = 0
    records: tuple[dict[str, Any], ...] = ()
    if repair is not None and repair.duplicate_ids:
        dup_ids = repair.duplicate_ids
        records = retry.source.call(lambda: describe_duplicates(part, src, dst, dup_ids))
    seconds = time.monotonic() - started
    if on_target != expected:
        if on_target > expected:
            error = (
                f"target holds {on_target - expected:,} more documents in this range than the "
                f"source ({on_target:,} vs {expected:,}): the target collection was not empty"
            )
        elif repair is not None and records and on_target == repair.source_ids:
            # Cosmos DB keeps _id unique per shard key only: one _id can come twice. The
            # target holds one document per _id, all it can; the others are reported.
            duplicates = expected - on_target
        elif repair is not None and repair.source_ids < expected:
            error = (
                f"the source returned {expected - repair.source_ids:,} documents whose _id it "
                f"had already returned in this range, but holds them once when scanned again "
                f"(changed during the copy?); the target keeps one document per _id"
            )
        else:
            error = (
                f"target holds {expected - on_target:,} fewer documents in this range than the "
                f"source ({on_target:,} vs {expected:,}) after {rounds} repair round(s)"
            )
            if repair is not None and repair.extra:
                error += f"; {repair.extra:,} target _ids are not in the source"
    return PartitionResult(
        part.id,
        PartitionState.DONE if error is None else PartitionState.FAILED,
        docs=docs,
        bytes=nbytes,
        source_docs=expected,
        target_docs=on_target,
        resumed=resumed,
        repaired=repaired,
        already_there=already,
        seconds=seconds,
        error=error,
        duplicates=duplicates,
        duplicate_records=records if error is None else (),
    )


class ResumingReader:
    """The range's documents, undecoded, surviving broken cursors.

    When the cursor fails (throttled ``find``/``getMore``, cursor lost, connection reset,
    server restart), the retrier waits, then the range is queried again from the last
    ``_id`` read, inclusive: never from the partition's start, never past a document.
    The documents already read with that ``_id`` (one, or a few when a sharded source
    holds the ``_id`` under several shard keys) are recognised by their bytes and not
    returned twice. Only on a failure is an ``_id`` decoded; reading stays raw.
    """

    KEEP = 16  # trailing documents kept to recognise the ones read again

    def __init__(
        self, part: Partition, src: Collection[Any], batch_docs: int, retrier: Retrier
    ) -> None:
        self.part = part
        self.src = src
        self.batch_docs = batch_docs
        self.retrier = retrier

    def __iter__(self) -> Iterator[RawBSONDocument]:
        part = self.part
        tail: deque[RawBSONDocument] = deque(maxlen=self.KEEP)
        skip: set[bytes] = set()
        while True:
            cursor = _read_raw(part, self.src, self.batch_docs)
            try:
                for doc in cursor:
                    if skip:
                        if doc.raw in skip:
                            continue
                        skip.clear()
                    tail.append(doc)
                    yield doc
                self.retrier.succeeded()
                return
            except Exception as exc:
                _close_cursor(cursor)
                self.retrier.failed(exc)  # waits, or raises past the budget
            part, skip = self._resume_point(tail)

    def _resume_point(self, tail: deque[RawBSONDocument]) -> tuple[Partition, set[bytes]]:
        """Where to query again, and the documents to pass over when they come back."""
        if not tail:
            return self.part, set()
        last_id = bson.decode(tail[-1].raw, CODEC_OPTIONS)["_id"]
        if not usable_boundary(last_id):
            # Null, NaN, MinKey, MaxKey: no bound can start there. They sort first (all
            # but MaxKey), so only they were read: start again, passing over them.
            return self.part, {bytes(d.raw) for d in tail}
        same = {bytes(d.raw) for d in tail if bson.decode(d.raw, CODEC_OPTIONS)["_id"] == last_id}
        return self.part.starting_at(last_id), same


def _close_cursor(cursor: Iterable[Any]) -> None:
    close = getattr(cursor, "close", None)
    if close is not None:
        try:
            close()
        except PyMongoError:
            pass  # the connection is gone: so is the cursor


class Writer:
    """Inserts chunks on a thread of its own, so the next read overlaps the current write.

    One write in flight at a time on the worker's single target connection: commands on
    it stay in order (a count after ``w=0`` inserts follows them). A queue of ``depth``
    chunks bounds memory. Each chunk is written through the target's retrier (only the
    documents that failed are sent again). With ``w=0`` the last chunk still goes
    acknowledged and journaled: the journal is written in order, so its acknowledgement
    means the unacknowledged chunks before it will survive a crash of the target
    (without it, a target killed right after a partition was counted lost its last
    batches: measured). A journaled write that changes nothing did not do that here.
    A write that fails for good stops the writing; the error is raised by the next
    :meth:`put` or on leaving the ``with`` block, which always waits for the thread, so
    nothing is written after the worker has returned.
    """

    def __init__(
        self,
        coll: Collection[Any],
        acknowledged: bool,
        retrier: Retrier | None = None,
        depth: int = 2,
    ) -> None:
        self.coll = coll
        self.acknowledged = acknowledged
        self.retrier = retrier or Retrier(RetryPolicy(), role="target")
        self.inserted = 0  # acknowledged as inserted
        self.already = 0  # acknowledged as duplicate key
        self.written = (0, 0)  # (documents, bytes) written: acknowledged, or sent with w=0
        self._reported = (0, 0)
        self.error: BaseException | None = None
        self._abandoned = False  # the reader failed or was stopped: write nothing more
        self._queue: queue.Queue[tuple[list[RawBSONDocument], int, bool] | None] = queue.Queue(
            depth
        )
        self._thread = threading.Thread(target=self._loop, name="vida-writer", daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._abandoned = exc is not None
        self._queue.put(None)
        self._thread.join()
        if exc is None and self.error is not None:
            raise self.error

    def put(self, chunk: list[RawBSONDocument], nbytes: int, last: bool = False) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put((chunk, nbytes, last))

    def report_written(self, report: Reporter, task: str) -> None:
        """Report what was written since the last call (called on the reading thread)."""
        docs, nbytes = self.written
        if docs > self._reported[0]:
            report(Moved(task, docs - self._reported[0], nbytes - self._reported[1]))
            self._reported = (docs, nbytes)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            chunk, nbytes, last = item
            if self.error is not None or self._abandoned:
                continue  # drain: the reader learns of the failure at its next put
            try:
                if last and not self.acknowledged:
                    durable = self.coll.with_options(write_concern=write_concern("1"))
                    inserted, already = insert_retrying(durable, chunk, self.retrier, True)
                else:
                    inserted, already = insert_retrying(
                        self.coll, chunk, self.retrier, self.acknowledged
                    )
                self.inserted += inserted
                self.already += already
                self.written = (self.written[0] + len(chunk), self.written[1] + nbytes)
            except BaseException as exc:  # handed to the reading thread
                self.error = exc


def read_batch_size(part: Partition, s: CopySettings) -> int:
    """Documents per read: ``s.read_batch_bytes`` by the plan's estimate of the range's
    average document, between 1 and ``s.read_batch_docs``; ``s.batch_docs`` if unknown."""
    if part.est_docs > 0 and part.est_bytes > 0:
        fit = int(s.read_batch_bytes * part.est_docs / part.est_bytes)
        return max(1, min(s.read_batch_docs, fit))
    return min(s.read_batch_docs, s.batch_docs)


def _read_raw(part: Partition, src: Collection[Any], batch_docs: int) -> Cursor[RawBSONDocument]:
    """The range's documents, undecoded.

    A plain cursor with the ``RawBSONDocument`` class, not ``find_raw_batches``: pymongo
    builds a ``RawBSONDocument`` per document of each raw batch reply, throws them away
    and joins the bytes again, and splitting that batch builds them once more. Measured
    with a 1,900-document batch: 2.1-2.5 us of client CPU per document against 3.8-4.4.
    """
    return part.find(src.with_options(codec_options=RAW_OPTIONS), batch_size=batch_docs)


def chunked(
    docs: Iterable[RawBSONDocument], limit_docs: int, limit_bytes: int
) -> Iterator[tuple[list[RawBSONDocument], int]]:
    """Write batches of at most ``limit_docs`` documents and ``limit_bytes`` bytes.

    A document larger than the byte bound travels alone.
    """
    chunk: list[RawBSONDocument] = []
    size = 0
    for doc in docs:
        n = len(doc.raw)
        if chunk and (len(chunk) >= limit_docs or size + n > limit_bytes):
            yield chunk, size
            chunk, size = [], 0
        chunk.append(doc)
        size += n
    if chunk:
        yield chunk, size


def insert_retrying(
    coll: Collection[Any], docs: list[RawBSONDocument], retrier: Retrier, acknowledged: bool
) -> tuple[int, int]:
    """Unordered insert of ``docs``: (inserted, already there), retried within budget.

    A bulk insert can half-succeed (Cosmos DB throttles some documents of a batch): only
    the documents that failed with a retryable error are sent again. Duplicate key means
    "already there" (sent before a connection broke, or by an earlier attempt). With
    ``w=0`` only a network error is seen; what vanished silently the partition's
    confirmation finds. A fatal error raises ``WriteFailedError``.
    """
    pending = docs
    inserted = already = 0
    while pending:
        try:
            # insert_many, not bulk_write(InsertOne...): no wrapper object per document.
            coll.insert_many(pending, ordered=False)
        except BulkWriteError as exc:
            details = exc.details or {}
            wc_errors = details.get("writeConcernErrors", [])
            duplicates = 0
            again: list[RawBSONDocument] = []
            for err in [*details.get("writeErrors", []), *wc_errors]:
                verdict = classify_write_error(err)
                if verdict.fault is Fault.DUPLICATE:
                    duplicates += 1
                elif not verdict.retryable:
                    raise WriteFailedError(err.get("code"), str(err.get("errmsg", ""))) from None
                elif "index" in err:
                    again.append(pending[int(err["index"])])
            if wc_errors:
                # Written, but not as durably as asked: this round counts for nothing;
                # send it all again, duplicate keys absorb what is already there.
                again = pending
            else:
                inserted += int(details.get("nInserted", 0))
                already += duplicates
            if not again:
                break
            retrier.failed(exc)
            pending = again
            continue
        except Exception as exc:
            # The whole command failed (throttled, connection lost, server restarting):
            # some documents may be in; send them all again, duplicate keys absorb them.
            retrier.failed(exc)
            continue
        if acknowledged:
            inserted += len(pending)
        break
    retrier.succeeded()
    return inserted, already


def _raw_ids(part: Partition, coll: Collection[Any]) -> dict[bytes, int]:
    """The range's ``{_id: ...}`` documents as raw bytes, in ``_id`` order, each with
    how often it came (more than once: a sharded source holds that ``_id`` twice)."""
    raw = coll.with_options(codec_options=RAW_OPTIONS)
    ids: dict[bytes, int] = {}
    for doc in part.find(raw, {"_id": 1}, batch_size=10_000):
        key = bytes(doc.raw)
        ids[key] = ids.get(key, 0) + 1
    return ids


def _find_raw_by_ids(
    coll: Collection[Any], raw_ids: list[bytes], batch_docs: int
) -> Iterator[RawBSONDocument]:
    """Every document of ``coll`` whose ``_id`` is one of ``raw_ids``, undecoded."""
    ids = [bson.decode(r, CODEC_OPTIONS)["_id"] for r in raw_ids]
    raw = coll.with_options(codec_options=RAW_OPTIONS)
    yield from raw.find({"_id": {"$in": ids}}, batch_size=batch_docs)


@dataclass(frozen=True)
class RepairResult:
    source_ids: int  # distinct _ids in the range on the source
    duplicate_ids: list[bytes]  # raw {_id: ...} the source returned more than once
    missing: int  # of those, absent from the target
    inserted: int
    already_there: int
    extra: int  # target _ids in the range that the source lacks


def repair_range(
    part: Partition,
    src: Collection[Any],
    dst: Collection[Any],
    s: CopySettings,
    retrier: Retrier | None = None,
) -> RepairResult:
    """Send again every source document whose ``_id`` the target lacks, acknowledged."""
    src_ids = _raw_ids(part, src)
    dst_ids = _raw_ids(part, dst)
    missing = [r for r in src_ids if r not in dst_ids]
    extra = sum(1 for r in dst_ids if r not in src_ids)
    duplicate_ids = [r for r, n in src_ids.items() if n > 1]
    level = "1" if s.write_concern == "0" else s.write_concern
    writer = dst.with_options(write_concern=write_concern(level))
    retrier = retrier or Retrier(RetryPolicy(attempts=0), role="target")
    inserted = already = 0
    for i in range(0, len(missing), s.batch_docs):
        found = _find_raw_by_ids(src, missing[i : i + s.batch_docs], s.batch_docs)
        for chunk, _size in chunked(found, s.batch_docs, s.batch_bytes):
            ins, dup = insert_retrying(writer, chunk, retrier, True)
            inserted += ins
            already += dup
    return RepairResult(len(src_ids), duplicate_ids, len(missing), inserted, already, extra)


def describe_duplicates(
    part: Partition, src: Collection[Any], dst: Collection[Any], raw_ids: list[bytes]
) -> tuple[dict[str, Any], ...]:
    """One record per ``_id`` the source holds more than once: every copy (as canonical
    Extended JSON, with the SHA-256 of its bytes) and whether the target kept it."""
    copies: dict[bytes, list[RawBSONDocument]] = {}
    for doc in _find_raw_by_ids(src, raw_ids, 1000):
        copies.setdefault(_id_key(doc), []).append(doc)
    kept = {_id_key(d): _sha256(d) for d in _find_raw_by_ids(dst, raw_ids, 1000)}
    return tuple(
        {
            "partition": part.id,
            "_id": _ejson(bson.decode(key, CODEC_OPTIONS))["_id"],
            "copies": [
                {
                    "sha256": _sha256(d),
                    "on_target": _sha256(d) == kept.get(key),
                    "document": _ejson(bson.decode(d.raw, CODEC_OPTIONS)),
                }
                for d in docs
            ],
        }
        for key, docs in copies.items()
    )


def _sha256(doc: RawBSONDocument) -> str:
    return hashlib.sha256(doc.raw).hexdigest()


def _ejson(doc: dict[str, Any]) -> Any:
    """``doc`` as canonical Extended JSON, parsed: types survive a JSON file."""
    return orjson.loads(json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS))


def _id_key(doc: RawBSONDocument) -> bytes:
    """The raw ``{_id: ...}`` document of ``doc`` (what ``_raw_ids`` yields)."""
    return bson.encode({"_id": bson.decode(doc.raw, CODEC_OPTIONS)["_id"]})


# --- clients: one per process and endpoint, created inside the worker -------------

_CLIENTS: dict[tuple[str, str], MongoClient[dict[str, Any]]] = {}


def _collection(ep: Endpoint, role: str, timeouts: Timeouts) -> Collection[Any]:
    key = (role, ep.uri)
    client = _CLIENTS.get(key)
    if client is None:
        # One connection per worker: commands on it run in order, so the count after
        # unacknowledged inserts follows them (and Cosmos DB bills per connection).
        client = connect(ep.uri, role=role, timeouts=timeouts, maxPoolSize=1)
        _CLIENTS[key] = client
    return client.get_database(ep.db).get_collection(ep.collection)


def close_clients() -> None:
    """Close this process's clients (the inline executor calls it when a run ends)."""
    while _CLIENTS:
        _key, client = _CLIENTS.popitem()
        close_client(client)
