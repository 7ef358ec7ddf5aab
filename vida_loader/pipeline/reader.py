"""Read a partition's documents, undecoded, through broken cursors."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.errors import PyMongoError

from vida_loader.manifest import Partition
from vida_loader.mongo import CODEC_OPTIONS
from vida_loader.ordering import usable_boundary
from vida_loader.pipeline.clients import RAW_OPTIONS
from vida_loader.retry import Retrier
from vida_loader.ru import ChargeMeter


class ResumingReader:
    """The range's documents, undecoded, surviving broken cursors.

    When the cursor fails (throttled ``find``/``getMore``, cursor lost, connection reset,
    server restart), the retrier waits, then the range is queried again from the last
    ``_id`` read, inclusive: never from the partition's start, never past a document.
    The documents already read with that ``_id`` (one, or a few when a sharded source
    holds the ``_id`` under several shard keys) are recognised by their bytes and not
    returned twice. Only on a failure is an ``_id`` decoded; reading stays raw.

    With a ``meter``, the charge of each page is read as its first document comes out,
    before the cursor asks for the next page.
    """

    KEEP = 16  # trailing documents kept to recognise the ones read again

    def __init__(
        self,
        part: Partition,
        src: Collection[Any],
        batch_size: int,
        retrier: Retrier,
        meter: ChargeMeter | None = None,
    ) -> None:
        self.part = part
        self.src = src
        self.batch_size = batch_size
        self.retrier = retrier
        self.meter = meter

    def __iter__(self) -> Iterator[RawBSONDocument]:
        part = self.part
        tail: deque[RawBSONDocument] = deque(maxlen=self.KEEP)
        skip: set[bytes] = set()
        meter = self.meter
        while True:
            cursor = read_raw(part, self.src, self.batch_size)
            try:
                for doc in cursor:
                    if meter is not None and meter.pending is not None:
                        meter.settle()
                    if skip:
                        if doc.raw in skip:
                            continue
                        skip.clear()
                    tail.append(doc)
                    yield doc
                self.retrier.succeeded()
                return
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


def _close_cursor(cursor: Iterable[Any]) -> None:
    close = getattr(cursor, "close", None)
    if close is not None:
        try:
            close()
        except PyMongoError:
            pass  # the connection is gone: so is the cursor


def read_raw(part: Partition, src: Collection[Any], batch_size: int) -> Cursor[RawBSONDocument]:
    """The range's documents, undecoded.

    A plain cursor with the ``RawBSONDocument`` class, not ``find_raw_batches``: pymongo
    builds a ``RawBSONDocument`` per document of each raw batch reply, throws them away
    and joins the bytes again, and splitting that batch builds them once more (figures
    in docs/design-notes.md).
    """
    return part.find(src.with_options(codec_options=RAW_OPTIONS), batch_size=batch_size)
