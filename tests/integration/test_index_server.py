"""Indexes against real servers: read by plan, built by run as tasks of the run state,
every supported option round-tripped exactly, a unique index the data breaks failing
alone, --indexes before/skip, and a target that already holds indexes."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.database import Database
from support import fail_commands, indexed_documents, make_indexes, plan_in, raw_hashes, run_in

from vida_loader.config import PlanConfig
from vida_loader.copy import planner
from vida_loader.dev.cosmos import CosmosStandIn
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.errors import StateError
from vida_loader.indexes.definition import Action
from vida_loader.job.runstate import TaskState, index_task

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]


@pytest.fixture
def source(db: DB) -> DB:
    db.src.insert_many(indexed_documents())
    make_indexes(db)
    return db


def test_every_supported_option_round_trips_exactly(
    server: LocalServer, target_server: LocalServer, source: DB, tdb: DB, tmp_path: Path
) -> None:
    manifest = plan_in(server, target_server, source, tmp_path, partitions=3)
    assert manifest.indexes is not None
    assert [ix.action for ix in manifest.indexes].count(Action.BUILD) == 9
    result = run_in(tmp_path, source_uri=server.uri, target_uri=target_server.uri, jobs=2)
    assert result.failed == [] and result.index_failures == []
    assert tdb.dst.index_information() == source.src.index_information()
    assert raw_hashes(tdb.dst) == raw_hashes(source.src)
    recs = result.state.indexes
    assert len(recs) == 9 and all(
        r.state is TaskState.DONE and not r.existed for r in recs.values()
    )
    # Every build finished after every partition was confirmed (--indexes after).
    last_copy = max(str(r.finished_at) for r in result.state.partitions.values())
    assert min(str(r.started_at) for r in recs.values()) >= last_copy


def test_a_unique_index_the_data_breaks_fails_alone_and_is_retried_alone(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": i, "k": i, "m": i} for i in range(300)])
    db.src.create_index("k", unique=True)
    db.src.create_index("m")
    plan_in(server, target_server, db, tmp_path, partitions=2)
    # As on Cosmos DB, where a unique index lets some duplicates through: the source now
    # holds data that breaks the definition the plan read.
    db.src.drop_index("k_1")
    db.src.insert_one({"_id": 1000, "k": 7, "m": 1})
    uris = {"source_uri": server.uri, "target_uri": target_server.uri}
    first = run_in(tmp_path, jobs=2, **uris)
    assert first.failed == []  # the data is copied and confirmed
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    ((name, error),) = first.index_failures
    assert name == "k_1" and "duplicate key {'k': 7}" in error
    rec = first.state.indexes[index_task("k_1")]
    assert rec.duplicate_key == "{'k': 7}" and rec.state is TaskState.FAILED
    assert first.state.indexes[index_task("m_1")].done
    assert "k_1" not in tdb.dst.index_information()

    tdb.dst.update_one({"_id": 1000}, {"$set": {"k": 7000}})  # the user fixes the data
    second = run_in(tmp_path, jobs=2, **uris)
    assert second.index_failures == [] and second.index_builds == 1  # only k_1 again
    assert second.state.indexes[index_task("m_1")].attempts == 1
    assert tdb.dst.index_information()["k_1"]["unique"] is True


def test_indexes_before_the_data_leave_ttl_for_after(
    server: LocalServer, target_server: LocalServer, source: DB, tdb: DB, tmp_path: Path
) -> None:
    plan_in(server, target_server, source, tmp_path, partitions=2)
    result = run_in(tmp_path, source_uri=server.uri, target_uri=target_server.uri, indexes="before")
    assert result.failed == [] and result.index_failures == []
    first_copy = min(str(r.started_at) for r in result.state.partitions.values())
    last_copy = max(str(r.finished_at) for r in result.state.partitions.values())
    for rec in result.state.indexes.values():
        if rec.name == "at_1":  # TTL: would delete documents while they are copied
            assert str(rec.started_at) >= last_copy
        else:
            assert str(rec.finished_at) <= first_copy, rec.name
    assert tdb.dst.index_information() == source.src.index_information()
    assert raw_hashes(tdb.dst) == raw_hashes(source.src)


def test_indexes_before_refuse_documents_that_break_a_unique_index(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": i, "k": i} for i in range(100)])
    db.src.create_index("k", unique=True)
    plan_in(server, target_server, db, tmp_path)
    db.src.drop_index("k_1")
    db.src.insert_one({"_id": 500, "k": 3})
    result = run_in(tmp_path, source_uri=server.uri, target_uri=target_server.uri, indexes="before")
    ((pid, error),) = result.failed
    assert "k_1" in error and "dup key" in error  # not taken for "already there"


def test_skip_then_after_builds_only_the_indexes(
    server: LocalServer, target_server: LocalServer, source: DB, tdb: DB, tmp_path: Path
) -> None:
    plan_in(server, target_server, source, tmp_path)
    uris = {"source_uri": server.uri, "target_uri": target_server.uri}
    skipped = run_in(tmp_path, indexes="skip", **uris)
    assert skipped.state.indexes == {} and list(tdb.dst.index_information()) == ["_id_"]
    later = run_in(tmp_path, **uris)
    assert later.read_docs == 0 and later.index_builds == 9
    assert tdb.dst.index_information() == source.src.index_information()


def test_indexes_already_on_the_target_are_kept_or_refused_by_definition(
    server: LocalServer, target_server: LocalServer, source: DB, tdb: DB, tmp_path: Path
) -> None:
    plan_in(server, target_server, source, tmp_path)
    tdb.create_collection("dst")
    tdb.dst.create_index([("a", 1), ("b", -1)])  # the same definition
    tdb.dst.create_index([("s", 1)], name="s_1")  # the name, without sparse
    result = run_in(tmp_path, source_uri=server.uri, target_uri=target_server.uri, append=True)
    assert result.state.indexes[index_task("a_1_b_-1")].existed
    ((name, error),) = result.index_failures
    assert name == "s_1" and "defined otherwise" in error and "sparse" in error


def test_disable_indexes_drops_the_targets_own_and_recreates_exactly_those(
    server: LocalServer, target_server: LocalServer, source: DB, tdb: DB, tmp_path: Path
) -> None:
    tdb.dst.create_index([("x", 1), ("y", -1)], name="app_xy", sparse=True)
    tdb.dst.create_index([("a", 1)], unique=True, name="a_unique")  # the source has it too
    own = tdb.dst.index_information()["app_xy"]
    plan_in(server, target_server, source, tmp_path)
    seen: list[set[str]] = []

    def watch(p: Any) -> None:
        if not seen and p.parts_done < p.parts_total:  # while the data is loaded
            seen.append(set(tdb.dst.index_information()))

    result = run_in(
        tmp_path,
        source_uri=server.uri,
        target_uri=target_server.uri,
        disable_indexes=True,
        on_progress=watch,
        tick=0.05,
    )
    assert result.failed == [] and result.index_failures == []
    assert seen == [{"_id_"}]
    saved = orjson.loads((tmp_path / "j" / "indexes.json").read_bytes())
    assert [ix["name"] for ix in saved["indexes"]] == ["a_unique", "app_xy"]
    info = tdb.dst.index_information()
    assert info.pop("app_xy") == own
    assert info == source.src.index_information()
    assert raw_hashes(tdb.dst) == raw_hashes(source.src)


def test_an_index_added_on_the_source_changes_the_plan_and_is_named(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": i, "k": i} for i in range(100)])
    plan_in(server, target_server, db, tmp_path)
    uris = {"source_uri": server.uri, "target_uri": target_server.uri}
    assert run_in(tmp_path, **uris).failed == []
    db.src.create_index([("k", -1)], sparse=True)
    plan_in(server, target_server, db, tmp_path, replan=True)
    with pytest.raises(StateError) as info:
        run_in(tmp_path, **uris)
    assert "changed: indexes [] -> ['k_-1 {k: -1} sparse']" in info.value.message


def test_through_the_cosmos_stand_in_the_cosmos_rules_apply(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    """A source that reports request charges is Cosmos DB: its _ts TTL is skipped (the
    documents have no _ts), and its unique index is built with the warning."""
    db.src.insert_many(
        [{"_id": i, "k": i, "at": datetime.datetime(2026, 1, 1)} for i in range(200)]
    )
    db.src.create_index("_ts", expireAfterSeconds=3600)
    db.src.create_index("k", unique=True)
    with CosmosStandIn(server.port, ru=10_000_000) as cosmos:
        cfg = PlanConfig(
            source=Endpoint(cosmos.uri, db.name, "src"),
            target=Endpoint(target_server.uri, db.name, "dst"),
            job="j",
            manifest_dir=tmp_path,
        )
        indexes = {ix.source.name: ix for ix in planner.plan_job(cfg).manifest.indexes or ()}
        assert indexes["_ts_1"].action is Action.SKIP
        assert "inside arrays" in indexes["k_1"].notes[0]
        moved = planner.plan_job(dataclasses.replace(cfg, replan=True, ttl_field="at"))
        result = run_in(tmp_path, source_uri=cosmos.uri, target_uri=target_server.uri)
    assert result.failed == [] and result.index_failures == []
    info = tdb.dst.index_information()
    assert info["at_1"]["expireAfterSeconds"] == 3600 and info["k_1"]["unique"] is True
    assert "_ts_1" not in info and len(moved.manifest.index_builds()) == 2
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_a_build_outliving_the_socket_timeout_is_waited_for_not_failed(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": i, "k": i} for i in range(100)])
    db.src.create_index("k")
    plan_in(server, target_server, db, tmp_path)
    # The build's answer comes after 2.5 s; the client waits 1 s for any answer.
    fail_commands(tdb, ["createIndexes"], {"times": 1}, blockConnection=True, blockTimeMS=2500)
    result = run_in(
        tmp_path,
        source_uri=server.uri,
        target_uri=target_server.uri,
        jobs=1,
        timeouts=Timeouts(socket_ms=1000),
    )
    assert result.failed == [] and result.index_failures == []
    rec = result.state.indexes[index_task("k_1")]
    assert rec.done and rec.attempts == 1 and rec.seconds >= 2.0
    assert rec.retries == 0  # waited for, not sent again
    assert tdb.dst.index_information()["k_1"]["key"] == [("k", 1)]
