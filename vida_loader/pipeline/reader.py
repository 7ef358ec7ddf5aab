"""Read a partition's documents, undecoded, through broken cursors."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import bson
from pymongo.errors import PyMongoError

from vida_loader.mongo import CODEC_OPTIONS
from vida_loader.ordering import usable_boundary
from vida_loader.pipeline.clients import RAW_OPTIONS

if TYPE_CHECKING:
    from bson.raw_bson import RawBSONDocument
    from pymongo.collection import Collection
    from pymongo.cursor import Cursor

    from vida_loader.job.manifest import Partition
    from vida_loader.retry import Retrier
    from vida_loader.ru.meter import ChargeMeter


class ResumingReader:
    """The range's documents, undecoded, surviving broken cursors.

    When the cursor fails (throttled ``find``/``getMore``, cursor lost, connection reset,
    server restart), the retrier waits, then the range is queried again from the last
    ``_id`` read, inclusive: never from the partition's start, never past a document.
    The documents already read with that ``_id`` (one, or a few when a sharded source
    holds the ``_id`` under several shard keys) are recognised by their bytes and not
    returned twice. Only on a failure is an ``_id`` decoded; reading stays raw.

    With a ``meter``, the charge of each page is read as its first document comes out,
    before the cursor asks for the next page; with a ``sizer`` too, a page that cost far
    more or less than its target has the range queried again from that document with
    pages of the right size (the rest of that page is read twice: a few times per range).
    """

    KEEP = 16  # trailing documents kept to recognise the ones read again

    def __init__(
        self,
        part: Partition,
        src: Collection[Any],
        batch_size: int,
        retrier: Retrier,
        meter: ChargeMeter | None = None,
        sizer: PageSizer | None = None,
        where: dict[str, Any] | None = None,
        projection: dict[str, Any] | None = None,
    ) -> None:
        self.part = part
        self.where = where  # a transform's filter and projection
        self.projection = projection
        self.src = src
        self.batch_size = batch_size
        self.retrier = retrier
        self.meter = meter
        self.sizer = sizer if meter is not None else None

    def __iter__(self) -> Iterator[RawBSONDocument]:
        part = self.part
        tail: deque[RawBSONDocument] = deque(maxlen=self.KEEP)
        skip: set[bytes] = set()
        meter, sizer = self.meter, self.sizer
        while True:
            cursor = read_raw(part, self.src, self.batch_size, self.where, self.projection)
            resized = False
            try:
                for doc in cursor:
                    if meter is not None and meter.pending is not None:
                        meter.settle()
                        if sizer is not None:
                            wanted = sizer.check(cursor, meter.last, self.batch_size)
                            if wanted is not None:
                                self.batch_size, resized = wanted, True
                                break  # this document comes again with the new pages
                    if skip:
                        if doc.raw in skip:
                            continue
                        skip.clear()
                    tail.append(doc)
                    yield doc
                if not resized:
                    self.retrier.succeeded()
                    return
                _close_cursor(cursor)
            except Exception as exc:
                if meter is not None:
                    meter.settle()  # the failed command's: a throttled one costs little
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


class PageSizer:
    """Keeps a metered cursor's pages near an RU target (``page_ru()``, which may change
    as the run's budget does) from the charge per document measured on each page."""

    MAX_RESIZES = 3  # per range: a source whose charges vary must not make it thrash
    READS = ("find", "getMore", "aggregate")

    def __init__(self, page_ru: Callable[[], float], largest: int) -> None:
        self.page_ru = page_ru
        self.largest = largest  # the batch size without a budget
        self.resizes = 0
        self._cursor: Any = None
        self._seen = 0

    def check(self, cursor: Cursor[Any], last: tuple[str, float], batch: int) -> int | None:
        """After a page's charge was read: a new batch size if that page cost more than
        twice its target, or less than half of it while larger pages are allowed."""
        if cursor is not self._cursor:
            self._cursor, self._seen = cursor, 0
        got, self._seen = cursor.retrieved - self._seen, cursor.retrieved
        name, charge = last
        target = self.page_ru()
        if name not in self.READS or got <= 0 or charge <= 0 or target == float("inf"):
            return None
        wanted = max(1, min(self.largest, int(target * got / charge)))
        if self.resizes < self.MAX_RESIZES and (wanted * 2 <= batch or wanted >= batch * 2):
            self.resizes += 1
            return wanted
        return None


def _close_cursor(cursor: Iterable[Any]) -> None:
    close = getattr(cursor, "close", None)
    if close is not None:
        try:
            close()
        except PyMongoError:
            pass  # the connection is gone: so is the cursor


def read_raw(
    part: Partition,
    src: Collection[Any],
    batch_size: int,
    where: dict[str, Any] | None = None,
    projection: dict[str, Any] | None = None,
) -> Cursor[RawBSONDocument]:
    """The range's documents (those matching ``where``, with ``projection``), undecoded.

    A plain cursor with the ``RawBSONDocument`` class, not ``find_raw_batches``: pymongo
    builds a ``RawBSONDocument`` per document of each raw batch reply, throws them away
    and joins the bytes again, and splitting that batch builds them once more (figures
    in docs/design-notes.md).
    """
    raw = src.with_options(codec_options=RAW_OPTIONS)
    return part.find(raw, projection, where=where, batch_size=batch_size)
