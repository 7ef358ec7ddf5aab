"""The worker's copy path: writes overlap reads, and acknowledged writes confirm a range."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo.database import Database
from support import PAD, Commands, fail_commands, fail_inserts, ints, listen, raw_hashes, wait_for

from vida_loader.copy.task import CopySettings, copy_partition
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.job.manifest import Partition, RangeMode
from vida_loader.job.runstate import TaskState
from vida_loader.pipeline.writer import Writer
from vida_loader.retry import RetryPolicy

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
FAST = RetryPolicy(attempts=5, window_s=30, base_ms=1, cap_ms=20)  # no long waits in tests


@pytest.fixture
def to_target(target_server: LocalServer) -> Iterator[Commands]:
    yield from listen(target_server.port)


@pytest.fixture
def to_source(server: LocalServer) -> Iterator[Commands]:
    yield from listen(server.port)


def _settings(db: DB, tdb: DB, server: LocalServer, target: LocalServer, **kw: Any) -> CopySettings:
    return CopySettings(
        Endpoint(server.uri, db.name, "src"),
        Endpoint(target.uri, tdb.name, "dst"),
        batch_size=100,
        read_batch_size=250,
        **kw,
    )


WHOLE = Partition("p00000", RangeMode.TYPED, "number")


@pytest.mark.parametrize(
    ("write_concern", "count_always", "counted"),
    [("1", False, False), ("majority", False, False), ("1", True, True), ("0", False, True)],
)
def test_acknowledged_writes_confirm_the_range_without_a_count(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    to_target: Commands,
    write_concern: str,
    count_always: bool,
    counted: bool,
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(1200, random.Random(1))])
    s = _settings(
        db, tdb, server, target_server, write_concern=write_concern, count_always=count_always
    )
    result = copy_partition(WHOLE, s)
    assert result.state is TaskState.DONE, result.error
    assert (result.docs, result.source_docs, result.target_docs) == (1200,) * 3
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    assert to_target.names.count("insert") == 12
    assert bool({"count", "aggregate", "find"} & set(to_target.names)) is counted


def test_a_duplicate_key_falls_back_to_counting_the_range(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, to_target: Commands
) -> None:
    docs = [{"_id": v, "pad": PAD} for v in ints(500, random.Random(2))]
    db.src.insert_many(docs)
    tdb.dst.insert_one(docs[7])  # the target already holds one of them
    result = copy_partition(WHOLE, _settings(db, tdb, server, target_server))
    assert result.state is TaskState.DONE, result.error
    assert result.already_there == 1
    assert result.target_docs == 500
    assert "aggregate" in to_target.names or "count" in to_target.names
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_a_throttled_insert_is_sent_again_inside_the_attempt(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, to_target: Commands
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(1000, random.Random(3))])
    s = _settings(db, tdb, server, target_server, retry=FAST)
    # Let three inserts through, then throttle one: the writer waits and sends it again.
    fail_inserts(tdb, {"skip": 3, "times": 1}, errorCode=16500)
    result = copy_partition(WHOLE, s)
    assert result.state is TaskState.DONE, result.error
    assert (result.retries, result.throttled) == (1, 1)
    assert to_target.names.count("insert") == 11  # 10 batches, one of them twice
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_a_write_failing_past_the_budget_fails_the_partition_and_a_resume_completes_it(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, to_target: Commands
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(1000, random.Random(3))])
    s = _settings(db, tdb, server, target_server, retry=RetryPolicy(2, 30, 1, 5))
    # Let three inserts through, then throttle every one: past the budget of 2 retries.
    fail_inserts(tdb, {"skip": 3}, errorCode=16500)
    try:
        first = copy_partition(WHOLE, s)
    finally:
        fail_inserts(tdb, "off")
    assert first.state is TaskState.FAILED and not first.transient
    assert first.error is not None
    assert "gave up on the target after 3 failures" in first.error and "16500" in first.error
    assert (first.retries, first.throttled) == (2, 2)
    held = tdb.dst.count_documents({})
    assert held == 300  # what was acknowledged before the failure stays
    second = copy_partition(WHOLE, s, resume=True)
    assert second.state is TaskState.DONE, second.error
    assert second.resumed and second.docs == 1000 - held + 1
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


class _SlowCollection:
    """Stands in for a target whose inserts take as long as the test decides.

    A real server cannot hold an insert open until the test says so; this shows that
    ``put`` returns while a write is still in flight, which is what overlaps a worker's
    read with its write.
    """

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.written: list[int] = []

    def insert_many(self, docs: list[Any], ordered: bool) -> None:
        self.started.set()
        assert self.release.wait(10)
        self.written.append(len(docs))


def test_writer_accepts_the_next_batch_while_a_write_is_in_flight() -> None:
    coll = _SlowCollection()
    with Writer(coll, acknowledged=False, depth=2) as w:  # type: ignore[arg-type]
        w.put([1, 2], 20)  # type: ignore[list-item]
        assert coll.started.wait(10)
        w.put([3], 10)  # type: ignore[list-item]
        w.put([4], 10)  # type: ignore[list-item]  # the queue holds two while one is written
        assert coll.written == [] and w.written == (0, 0)
        coll.release.set()
    assert coll.written == [2, 1, 1] and w.written == (4, 40)


def test_writer_stops_writing_when_the_reader_fails() -> None:
    coll = _SlowCollection()
    w = Writer(coll, acknowledged=False, depth=2)  # type: ignore[arg-type]

    def release_once_abandoned() -> None:
        wait_for(lambda: w._abandoned, 10, "the reader's failure reaching the writer")
        coll.release.set()

    with pytest.raises(RuntimeError, match="read failed"), w:
        w.put([1], 10)  # type: ignore[list-item]
        assert coll.started.wait(10)
        w.put([2], 10)  # type: ignore[list-item]
        threading.Thread(target=release_once_abandoned, daemon=True).start()
        raise RuntimeError("read failed")
    # Leaving the block waited for the write in flight; the queued batch was dropped.
    assert coll.written == [1]


# Faults on the source's reads: (fail point commands, mode, data, documents read before
# the last failure). WHOLE has no size estimate, so reads come 100 at a time: a find,
# then getMores; "skip 1" on getMore fails the second getMore, after 200 documents.
# Twice in a row: a find re-opened at document 100 returns it again (passed over), so
# the second failure comes after 199.
READ_FAULTS = [
    ("find throttled", ["find"], {"times": 1}, {"errorCode": 16500}, 0),
    ("getMore throttled", ["getMore"], {"skip": 1, "times": 1}, {"errorCode": 16500}, 200),
    ("getMore throttled twice", ["getMore"], {"times": 2}, {"errorCode": 16500}, 199),
    ("cursor lost", ["getMore"], {"skip": 1, "times": 1}, {"errorCode": 43}, 200),
    ("connection closed", ["getMore"], {"skip": 2, "times": 1}, {"closeConnection": True}, 300),
    ("time limit", ["find", "getMore"], {"skip": 1, "times": 1}, {"errorCode": 50}, 100),
    (
        "blocked past the socket timeout",
        ["getMore"],
        {"times": 1},
        {"blockConnection": True, "blockTimeMS": 2500},
        100,
    ),
]


@pytest.mark.parametrize(
    ("commands", "mode", "data", "read_before"),
    [f[1:] for f in READ_FAULTS],
    ids=[f[0] for f in READ_FAULTS],
)
def test_a_broken_read_continues_from_the_last_id_read(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    to_source: Commands,
    commands: list[str],
    mode: dict[str, int],
    data: dict[str, Any],
    read_before: int,
) -> None:
    ids = ints(1000, random.Random(4))
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ids])
    s = _settings(db, tdb, server, target_server, retry=FAST, timeouts=Timeouts(socket_ms=1000))
    fail_commands(db, commands, mode, **data)
    try:
        result = copy_partition(WHOLE, s)
    finally:
        fail_commands(db, commands, "off")
    assert result.state is TaskState.DONE, result.error
    assert result.docs == 1000  # nothing read twice, nothing skipped
    failures = mode["times"]
    assert result.retries == failures
    assert result.throttled == (failures if data.get("errorCode") in (16500, 50) else 0)
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    # The read started again from the last _id it had read, not from the range's start.
    restarts = to_source.finds[1:]
    assert len(restarts) == failures
    if read_before:
        assert restarts[-1] == {"_id": {"$gte": sorted(ids)[read_before - 1]}}
    else:
        assert restarts == [to_source.finds[0]] * failures


def test_unacknowledged_inserts_lost_midway_are_repaired(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(1000, random.Random(5))])
    s = _settings(db, tdb, server, target_server, write_concern="0", retry=FAST)
    # Batches 3 and 4 of 10 are throttled on the server; with w=0 nobody is told.
    fail_inserts(tdb, {"skip": 2, "times": 2}, errorCode=16500)
    result = copy_partition(WHOLE, s)
    assert result.state is TaskState.DONE, result.error
    assert (result.repaired, result.target_docs) == (200, 1000)
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
