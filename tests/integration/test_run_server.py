"""run against two real local servers: what arrives is byte-identical, whatever breaks."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
from bson import Binary, ObjectId
from pymongo import MongoClient
from pymongo.database import Database
from support import (
    PAD,
    ShardedTwin,
    every_type_documents,
    fail_commands,
    fail_inserts,
    ints,
    mixed_ids,
    plan_in,
    raw_hashes,
    run_in,
)

from vida_loader.config import VerifyConfig
from vida_loader.copy.coordinator import RunResult
from vida_loader.copy.progress import RunProgress
from vida_loader.dev.server import LocalServer
from vida_loader.job.runstate import TaskState, load_state
from vida_loader.verify.counts import verify_job

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]


def _ordinary(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"_id": ObjectId(rng.randbytes(12)), "n": i, "pad": PAD, "f": rng.random()}
        for i in range(n)
    ]


def _assert_same(db: DB, tdb: DB, result: RunResult) -> None:
    assert result.failed == []
    source = raw_hashes(db.src)
    assert raw_hashes(tdb.dst) == source
    assert result.confirmed_docs == sum(source.values())
    state = load_state(result.state_path)
    assert state is not None and state.finished_at
    assert all(r.state is TaskState.DONE for r in state.partitions.values())


@pytest.mark.parametrize(("mode", "ordinary"), [("minmax", 20_000), ("typed", 4000)])
def test_every_type_arrives_byte_identical(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    mode: str,
    ordinary: int,
) -> None:
    ids = mixed_ids(400, random.Random(3))
    db.src.insert_many(every_type_documents())
    db.src.insert_many([{"_id": v, "pad": PAD, "k": i} for i, v in enumerate(ids)])
    db.src.insert_many(_ordinary(ordinary, 1))
    # Near the 16 MiB limit; it must travel alone in its write batch.
    db.src.insert_one({"_id": "big", "blob": Binary(b"\x07" * (16 * 1024 * 1024 - 1024))})
    m = plan_in(server, target_server, db, tmp_path, partitions=5, range_mode=mode)
    assert m.split["range_mode"] == mode
    result = run_in(tmp_path, jobs=1)
    _assert_same(db, tdb, result)
    assert result.repaired == 0


def test_silently_lost_unacknowledged_writes_are_repaired(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(6000, random.Random(5))])
    plan_in(server, target_server, db, tmp_path, partitions=3)
    # The first three w=0 insert batches fail on the server; nobody tells the client.
    fail_inserts(tdb, {"times": 3}, errorCode=16500)
    result = run_in(tmp_path, jobs=1, write_concern="0", batch_size=500)
    _assert_same(db, tdb, result)
    assert result.repaired == 1500
    state = load_state(result.state_path)
    assert state is not None
    assert sum(r.repaired for r in state.partitions.values()) == 1500


def test_throttled_acknowledged_write_is_retried(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(3000, random.Random(6))])
    plan_in(server, target_server, db, tmp_path, partitions=3)
    fail_inserts(tdb, {"times": 1}, errorCode=16500)
    result = run_in(tmp_path, jobs=1, write_concern="1", batch_size=400)
    _assert_same(db, tdb, result)
    # Retried inside the attempt: no partition ran twice.
    assert (result.retries, result.throttled, result.reruns) == (1, 1, 0)
    recs = result.state.partitions.values()
    assert sorted(r.attempts for r in recs) == [1, 1, 1]
    assert sorted(r.throttled for r in recs) == [0, 0, 1]


def test_throttled_metadata_calls_of_plan_run_and_verify_are_waited_out(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    """Cosmos DB charges and throttles listCollections and collStats too: a command must
    wait them out as it waits out a throttled read, not stop (or plan without sizes)."""
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(3000, random.Random(8))])
    vida = MongoClient(server.uri, appname="vida-loader", serverSelectionTimeoutMS=5000)

    def throttle(commands: list[str]) -> None:
        fail_commands(db, commands, {"times": 2}, errorCode=16500)

    def worn_off() -> bool:  # the next call of vida-loader's passes: both were refused
        return vida[db.name].list_collection_names() == ["src"]

    throttle(["collStats"])
    manifest = plan_in(server, target_server, db, tmp_path, partitions=3)
    # A throttled collStats once fell back to a count and planned without sizes.
    assert manifest.stats["size_bytes"] >= 3000 * len(PAD)
    throttle(["listCollections"])
    result = run_in(tmp_path, jobs=1)
    _assert_same(db, tdb, result)
    assert worn_off()
    throttle(["listCollections"])
    checked = verify_job(VerifyConfig(job="j", manifest_dir=tmp_path))
    assert checked.mismatches == [] and len(checked.counts) == 3
    assert worn_off()
    vida.close()


def test_inline_and_processes_give_the_same_target(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in mixed_ids(800, random.Random(9))])
    db.src.insert_many(_ordinary(4000, 2))
    plan_in(server, target_server, db, tmp_path, partitions=6)
    inline = run_in(tmp_path, jobs=1)
    _assert_same(db, tdb, inline)
    first = raw_hashes(tdb.dst)
    pooled = run_in(tmp_path, jobs=3, restart=True, drop_target=True)
    _assert_same(db, tdb, pooled)
    assert raw_hashes(tdb.dst) == first


def test_killed_worker_process_is_replaced_and_its_partition_redone(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(6000, random.Random(7))])
    plan_in(server, target_server, db, tmp_path, partitions=4)
    # Slow every insert down so that partitions are mid-copy when the kill comes.
    fail_inserts(tdb, "alwaysOn", blockConnection=True, blockTimeMS=150)
    killed: list[int] = []

    def kill_a_worker(p: RunProgress) -> None:
        if killed or p.docs == 0:
            return
        children = psutil.Process().children(recursive=True)
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        if workers:
            killed.append(workers[0].pid)
            workers[0].kill()

    result = run_in(tmp_path, jobs=2, batch_size=200, tick=0.05, on_progress=kill_a_worker)
    assert killed, "no worker was seen running"
    assert result.reruns >= 1
    _assert_same(db, tdb, result)


def test_target_documents_outside_the_source_fail_their_partition(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": i, "pad": PAD} for i in range(0, 3000, 2)])
    m = plan_in(server, target_server, db, tmp_path, partitions=3)
    tdb.dst.insert_one({"_id": 1, "stray": True})  # odd: not in the source
    result = run_in(tmp_path, jobs=1, append=True)
    holder = next(p.id for p in m.partitions if p.contains(1))
    assert [pid for pid, _ in result.failed] == [holder]
    assert "1 more documents" in result.failed[0][1]
    assert result.state.partitions[holder].state is TaskState.FAILED
    others = [r for pid, r in result.state.partitions.items() if pid != holder]
    assert all(r.state is TaskState.DONE for r in others)


@pytest.mark.parametrize("write_concern", ["1", "0"])
def test_an_id_held_twice_by_a_sharded_source_is_listed_and_reported(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_concern: str,
) -> None:
    db.src.insert_many([{"_id": i, "sk": "A", "pad": PAD} for i in range(900)])
    m = plan_in(server, target_server, db, tmp_path, partitions=3)
    ShardedTwin(monkeypatch)
    result = run_in(tmp_path, jobs=1, write_concern=write_concern)
    holder = next(p.id for p in m.partitions if p.contains(450))
    assert result.failed == []  # every partition holds all it can: one document per _id
    assert result.duplicates == 1
    assert result.state.partitions[holder].duplicates == 1
    assert result.repaired == 0
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)  # the first copy of 450 is there
    lines = result.duplicates_path.read_bytes().splitlines()
    assert len(lines) == 1
    record = orjson.loads(lines[0])
    assert record["partition"] == holder and record["_id"] == {"$numberInt": "450"}
    copies = {c["document"]["sk"]: c for c in record["copies"]}
    assert set(copies) == {"A", "B"}
    assert copies["A"]["on_target"] and not copies["B"]["on_target"]
    assert copies["B"]["sha256"] == hashlib.sha256(ShardedTwin.TWIN.raw).hexdigest()
    # A second run finds the job complete and still counts it; a restart starts a new list.
    again = run_in(tmp_path, jobs=1)
    assert again.duplicates == 1 and again.read_docs == 0
    run_in(tmp_path, jobs=1, restart=True, drop_target=True)
    assert len(result.duplicates_path.read_bytes().splitlines()) == 1


def test_an_id_returned_twice_but_held_once_fails_its_partition(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db.src.insert_many([{"_id": i, "sk": "A", "pad": PAD} for i in range(900)])
    m = plan_in(server, target_server, db, tmp_path, partitions=3)
    ShardedTwin(monkeypatch, in_scans=False)  # the copy cursor alone returns it twice
    result = run_in(tmp_path, jobs=1)
    holder = next(p.id for p in m.partitions if p.contains(450))
    assert [pid for pid, _ in result.failed] == [holder]
    assert "returned 1 documents whose _id it had already returned" in result.failed[0][1]
    assert result.duplicates == 0 and not result.duplicates_path.exists()
    assert tdb.dst.count_documents({}) == 900
