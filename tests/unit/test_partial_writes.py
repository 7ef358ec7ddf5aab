"""A bulk insert that half-succeeds: only the failed documents are sent again.

A real server cannot fail some documents of one insert with 16500 (a fail point fails
the whole command, which the integration tests cover), so a stand-in collection
answers the way Cosmos DB does under throttling.
"""

from __future__ import annotations

import random

import bson
import pytest
from bson.raw_bson import RawBSONDocument
from pymongo.errors import AutoReconnect, BulkWriteError

from vida_loader.pipeline.writer import WriteFailedError, insert_retrying
from vida_loader.retry import Retrier, RetryPolicy

THROTTLED = "Error=16500, RetryAfterMs=3, Details='TooManyRequests (429); Substatus: 3200'"


class HalfThrottled:
    """Inserts; on the first call fails the documents whose _id ``fail`` names."""

    def __init__(self, fail: dict[int, int], held: set[int] | None = None) -> None:
        self.fail = fail  # _id -> error code, first call only
        self.held = held or set()  # _ids already on the "server"
        self.calls: list[list[int]] = []

    def insert_many(self, docs: list[RawBSONDocument], ordered: bool) -> None:
        assert ordered is False
        ids = [int(d["_id"]) for d in docs]
        self.calls.append(ids)
        errors = []
        for i, _id in enumerate(ids):
            code = self.fail.get(_id) if len(self.calls) == 1 else None
            if _id in self.held:
                code = 11000
            if code is None:
                self.held.add(_id)
            else:
                msg = THROTTLED if code == 16500 else f"error {code}"
                errors.append({"index": i, "code": code, "errmsg": msg, "op": {"_id": _id}})
        if errors:
            inserted = len(ids) - len(errors)
            raise BulkWriteError(
                {"writeErrors": errors, "writeConcernErrors": [], "nInserted": inserted}
            )


def _docs(n: int) -> list[RawBSONDocument]:
    return [RawBSONDocument(bson.encode({"_id": i, "x": "y" * 10})) for i in range(n)]


def _retrier(sleeps: list[float]) -> Retrier:
    return Retrier(RetryPolicy(), role="target", sleep=sleeps.append, rng=random.Random(1))


def test_only_the_throttled_documents_are_sent_again() -> None:
    coll = HalfThrottled({3: 16500, 7: 16500, 8: 16500})
    sleeps: list[float] = []
    retrier = _retrier(sleeps)
    inserted, already = insert_retrying(coll, _docs(10), retrier, True)  # type: ignore[arg-type]
    assert coll.calls == [list(range(10)), [3, 7, 8]]
    assert (inserted, already) == (10, 0)
    assert coll.held == set(range(10))
    assert retrier.counts.throttled == 1 and 0.003 <= sleeps[0] <= 0.0034  # RetryAfterMs


def test_a_duplicate_among_throttled_documents_counts_as_already_there() -> None:
    coll = HalfThrottled({2: 16500}, held={5})
    inserted, already = insert_retrying(coll, _docs(6), _retrier([]), True)  # type: ignore[arg-type]
    assert coll.calls == [list(range(6)), [2]]
    assert (inserted, already) == (5, 1)


def test_a_fatal_document_error_is_not_retried() -> None:
    coll = HalfThrottled({1: 16500, 4: 121})  # 121: document failed validation
    with pytest.raises(WriteFailedError, match="code 121"):
        insert_retrying(coll, _docs(6), _retrier([]), True)  # type: ignore[arg-type]
    assert len(coll.calls) == 1


def test_whole_command_failure_resends_all_and_absorbs_duplicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    coll = HalfThrottled({})
    real = coll.insert_many

    def first_reply_lost(docs: list[RawBSONDocument], ordered: bool) -> None:
        if not coll.calls:  # the server takes four, then the connection breaks
            real(docs[:4], ordered)
            raise AutoReconnect("connection closed")
        real(docs, ordered)

    monkeypatch.setattr(coll, "insert_many", first_reply_lost)
    inserted, already = insert_retrying(coll, _docs(8), _retrier([]), True)  # type: ignore[arg-type]
    assert coll.calls == [[0, 1, 2, 3], list(range(8))]
    assert (inserted, already) == (4, 4)  # four were in before the break: duplicate keys
    assert coll.held == set(range(8))


def test_a_write_concern_error_round_counts_for_nothing_and_is_sent_again() -> None:
    """Written, but not as durably as asked (two write concern errors, e.g. a primary
    shutting down): the round is not counted, everything is sent again, and the re-send
    finds every document already there."""
    coll = HalfThrottled({})
    real = coll.insert_many

    def unsure_first(docs: list[RawBSONDocument], ordered: bool) -> None:
        first = not coll.calls
        real(docs, ordered)
        if first:
            wc = {"code": 91, "errmsg": "shutting down"}
            raise BulkWriteError(
                {"writeErrors": [], "writeConcernErrors": [wc, wc], "nInserted": len(docs)}
            )

    coll.insert_many = unsure_first  # type: ignore[method-assign]
    inserted, already = insert_retrying(coll, _docs(6), _retrier([]), True)  # type: ignore[arg-type]
    assert coll.calls == [list(range(6))] * 2
    assert (inserted, already) == (0, 6)
