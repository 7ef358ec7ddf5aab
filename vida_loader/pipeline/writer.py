"""Write documents: bounded chunks, retried inserts that re-send only what failed, on a
thread of their own; and the one rule for what unacknowledged writes must do last."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pymongo.errors import BulkWriteError

from vida_loader.execution.events import Moved, Reporter
from vida_loader.faults import Fault, classify_write_error
from vida_loader.mongo import write_concern
from vida_loader.retry import Retrier, RetryPolicy

if TYPE_CHECKING:
    from bson.raw_bson import RawBSONDocument
    from pymongo.collection import Collection


class WriteFailedError(Exception):
    """A write failed for a reason a retry cannot clear (validation, too large, ...)."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"write failed with code {code}: {message}")
        self.code = code


class Writer:
    """Inserts chunks on a thread of its own, so the next read overlaps the current write.

    One write in flight at a time on the worker's single target connection: commands on
    it stay in order (a count after ``w=0`` inserts follows them). A queue of ``depth``
    chunks bounds memory. Each chunk is written through the target's retrier (only the
    documents that failed are sent again). With ``w=0`` the last chunk still goes
    acknowledged and journaled: the journal is written in order, so its acknowledgement
    means the unacknowledged chunks before it will survive a crash of the target
    (without it, a target killed right after a partition was counted could lose its last
    batches: docs/design-notes.md). A journaled write that changes nothing does not.
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

    def write_all(
        self, chunks: Iterable[tuple[list[RawBSONDocument], int]], report: Reporter, task: str
    ) -> tuple[int, int]:
        """Put every chunk; returns the (documents, bytes) put.

        Acknowledged chunks go at once. Unacknowledged ones are each held until the next
        shows it is not the last: the last goes acknowledged and journaled (see above).
        """
        docs = nbytes = 0
        held: tuple[list[RawBSONDocument], int] | None = None
        for chunk, size in chunks:
            if held is not None:
                self.put(*held)  # written on the writer's thread while the next is made
                held = None
            if self.acknowledged:
                self.put(chunk, size)
            else:
                held = (chunk, size)
            docs += len(chunk)
            nbytes += size
            self.report_written(report, task)
        if held is not None:
            self.put(*held, last=True)
        return docs, nbytes

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


def chunked(
    docs: Iterable[RawBSONDocument], batch_size: int, batch_bytes: int
) -> Iterator[tuple[list[RawBSONDocument], int]]:
    """Write batches of at most ``batch_size`` documents and ``batch_bytes`` bytes.

    A document larger than the byte bound travels alone.
    """
    chunk: list[RawBSONDocument] = []
    size = 0
    for doc in docs:
        n = len(doc.raw)
        if chunk and (len(chunk) >= batch_size or size + n > batch_bytes):
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
            done, there, again = _after_bulk_error(exc, pending)
            inserted += done
            already += there
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


def _after_bulk_error(
    exc: BulkWriteError, pending: list[RawBSONDocument]
) -> tuple[int, int, list[RawBSONDocument]]:
    """What a half-done bulk insert did: (inserted, already there, the documents to send
    again). A fatal error of one document raises ``WriteFailedError``."""
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
        return 0, 0, pending
    return int(details.get("nInserted", 0)), duplicates, again


def writer_for(coll: Collection[Any], level: str, retrier: Retrier) -> Writer:
    """A ``Writer`` into ``coll`` at write concern ``level`` ("0" writes unacknowledged)."""
    return Writer(coll.with_options(write_concern=write_concern(level)), level != "0", retrier)


def acknowledged_level(level: str) -> str:
    """The write concern for writes that must be heard back: ``level``, or 1 for w=0."""
    return "1" if level == "0" else level


def resend(
    coll: Collection[Any],
    docs: Iterable[RawBSONDocument],
    level: str,
    batch_size: int,
    batch_bytes: int,
    retrier: Retrier,
) -> tuple[int, int]:
    """Send ``docs`` again, acknowledged (a repair): (inserted, already there)."""
    acked = coll.with_options(write_concern=write_concern(acknowledged_level(level)))
    inserted = already = 0
    for chunk, _size in chunked(docs, batch_size, batch_bytes):
        ins, dup = insert_retrying(acked, chunk, retrier, True)
        inserted += ins
        already += dup
    return inserted, already
