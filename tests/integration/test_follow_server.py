"""``run --follow`` against real servers: the change-stream position taken before the
copy, changes made during and after the copy replayed until the target is the source
byte for byte, a kill -9 while following, a position the source no longer has."""

from __future__ import annotations

import datetime
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.database import Database
from support import (
    MIGRATE,
    fail_commands,
    migrated_raw,
    plan_in,
    raw_by_id,
    raw_hashes,
    run_in,
    transform_source,
    wait_for,
)

from vida_loader.cli import main
from vida_loader.config import RunConfig
from vida_loader.dev.server import LocalServer
from vida_loader.follow.loop import follow_job
from vida_loader.job.runstate import load_state, save_state
from vida_loader.jobfiles import JobFiles

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
N = 300


def write_some(db: DB, start: int) -> None:
    """Every kind of change on the source: inserts, an update, a replace, a delete."""
    db.src.insert_many({"_id": i, "n": i, "new": True} for i in range(start, start + 20))
    db.src.update_one({"_id": start % N}, {"$set": {"n": -1}, "$unset": {"name": ""}})
    db.src.replace_one({"_id": (start + 1) % N}, {"replaced": start})
    db.src.delete_one({"_id": (start + 2) % N})


def test_changes_during_and_after_the_copy_are_replayed_byte_for_byte(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many({"_id": i, "n": i, "name": f"n{i}"} for i in range(N))
    plan_in(server, target_server, db, tmp_path, partitions=3)
    during: list[int] = []

    def on_progress(_progress: Any) -> None:
        if not during:  # the copy has started: the position was taken before it
            during.append(1)
            write_some(db, 1000)

    # The position is taken by opening a change stream: a throttled open is waited out.
    fail_commands(db, ["aggregate"], {"times": 2}, errorCode=16500)
    assert not run_in(tmp_path, jobs=1, tick=0.05, on_progress=on_progress).failed
    assert during
    write_some(db, 2000)  # after the copy
    state = load_state(JobFiles(tmp_path, "j").state)
    assert state is not None and state.changes is not None and state.changes["token"]
    cfg = RunConfig(job="j", manifest_dir=tmp_path, follow=True, until_caught_up=0)
    fail_commands(db, ["aggregate"], {"times": 2}, errorCode=16500)  # the follow's open too
    result = follow_job(cfg)
    assert result.caught_up and result.progress.lag_s == 0
    assert result.progress.deletes >= 2 and result.progress.upserts >= 40
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    again = follow_job(cfg)  # from the saved position: nothing new
    assert again.progress.events == 0 and raw_hashes(tdb.dst) == raw_hashes(db.src)
    capsys.readouterr()
    assert main(["status", "--job", "j", "--manifest-dir", str(tmp_path), "--json"]) == 0
    changes = orjson.loads(capsys.readouterr().out)["changes"]
    assert changes["position"] and changes["lag_s"] == 0
    assert changes["events"] == result.progress.events and changes["applied"] > 0
    assert main(["status", "--job", "j", "--manifest-dir", str(tmp_path)]) == 0
    assert f"followed    {changes['events']:,} changes read" in capsys.readouterr().out
    write_some(db, 3000)
    fail_commands(db, ["getMore"], {"times": 2}, errorCode=16500)  # mid-stream throttling
    third = follow_job(cfg)
    assert third.caught_up and third.progress.events >= 23
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def _applied(state_file: Path) -> int:
    try:
        doc = orjson.loads(state_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return 0
    return int((doc.get("changes") or {}).get("events", 0))


@pytest.mark.timeout(180)
def test_kill_9_while_following_then_the_same_command_converges(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many({"_id": i, "n": i} for i in range(N))
    plan_in(server, target_server, db, tmp_path, partitions=2)
    files = JobFiles(tmp_path, "j")
    base = ["run", "--job", "j", "--manifest-dir", str(tmp_path), "-j", "1", "--follow"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vida_loader", *base],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: load_state(files.state) is not None, 60, "the run to start")
        write_some(db, 1000)
        wait_for(lambda: _applied(files.state) > 0, 60, "changes applied by the follow")
        write_some(db, 2000)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    write_some(db, 3000)
    capsys.readouterr()
    assert main([*base, "--until-caught-up", "0", "-q"]) == 0
    out = capsys.readouterr().out
    assert "caught up" in out and "switch over now" in out
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_a_position_the_source_no_longer_has_is_one_line_and_exit_3(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many({"_id": i} for i in range(50))
    plan_in(server, target_server, db, tmp_path, partitions=1)
    assert not run_in(tmp_path, jobs=1).failed
    files = JobFiles(tmp_path, "j")
    state = load_state(files.state)
    assert state is not None and state.changes is not None
    state.changes["token"] = {"_data": "826000000000000000000000"}  # long gone
    save_state(state, files.state)
    capsys.readouterr()
    code = main(["run", "--job", "j", "--manifest-dir", str(tmp_path), "--follow", "-q"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1 and "no longer has the change-stream position" in err
    assert re.search(r"', \d+:\d\d:\d\d behind \(taken 20", err)
    assert "--restart --follow" in err


def test_until_caught_up_without_follow_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--job", "j", "--manifest-dir", str(tmp_path), "--until-caught-up", "5"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "add --follow" in err


def test_unique_and_ttl_indexes_are_relaxed_while_following_and_made_final_at_the_end(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two documents swap their unique keys on the source: replayed in one batch, the
    target is briefly in conflict, which a unique index would refuse. Relaxed while
    following, the indexes are unique and TTL again after --until-caught-up."""
    db.src.insert_many({"_id": i, "k": i, "at": datetime.datetime(2026, 1, 1)} for i in range(40))
    db.src.create_index("k", name="k_1", unique=True)
    db.src.create_index("at", name="at_1", expireAfterSeconds=10**8)
    plan_in(server, target_server, db, tmp_path, partitions=2)
    assert not run_in(tmp_path, jobs=1, follow=True).failed
    info = tdb.dst.index_information()
    assert "unique" not in info["k_1"] and info["at_1"]["expireAfterSeconds"] == 2**31 - 1
    db.src.update_one({"_id": 1}, {"$set": {"k": 100}})
    db.src.update_one({"_id": 2}, {"$set": {"k": 1}})
    db.src.update_one({"_id": 1}, {"$set": {"k": 2}})
    base = ["run", "--job", "j", "--manifest-dir", str(tmp_path), "--follow", "-q"]
    capsys.readouterr()
    assert main([*base, "--until-caught-up", "0"]) == 0
    out = capsys.readouterr().out
    assert "k_1: made final (unique)" in out and "at_1: made final (TTL 100,000,000 s)" in out
    info = tdb.dst.index_information()
    assert info["k_1"]["unique"] and info["at_1"]["expireAfterSeconds"] == 10**8
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    state = load_state(JobFiles(tmp_path, "j").state)
    assert state is not None and not any(r.finalize for r in state.indexes.values())


def test_a_unique_index_that_cannot_be_made_unique_names_the_documents(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many({"_id": i, "k": i} for i in range(20))
    db.src.create_index("k", name="k_1", unique=True)
    plan_in(server, target_server, db, tmp_path, partitions=1)
    assert not run_in(tmp_path, jobs=1, follow=True).failed
    tdb.dst.insert_one({"_id": 99, "k": 5})  # a stray document on the target
    base = ["--job", "j", "--manifest-dir", str(tmp_path)]
    capsys.readouterr()
    assert main(["indexes", "finalize", *base]) == 1
    out, err = capsys.readouterr()
    assert "k_1: NOT final" in out
    assert err.count("\n") == 1 and "key {'k': 5}: _ids 5, 99" in err
    assert "indexes finalize" in err
    tdb.dst.delete_one({"_id": 99})
    assert main(["indexes", "finalize", *base]) == 0
    assert tdb.dst.index_information()["k_1"]["unique"]
    assert main(["indexes", "finalize", *base]) == 0
    assert "no index waits to be made final" in capsys.readouterr().out


def test_a_cosmos_shaped_stream_reports_no_deletes_and_the_sweep_removes_them(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The job's stream is opened with Cosmos DB's required pipeline (no operationType,
    no deletes), against a real change stream: without the sweep the deleted documents
    stay, and say so; with it the target converges byte for byte."""
    db.src.insert_many({"_id": i, "n": i} for i in range(N))
    plan_in(server, target_server, db, tmp_path, partitions=3)
    assert not run_in(tmp_path, jobs=1).failed
    files = JobFiles(tmp_path, "j")
    state = load_state(files.state)
    assert state is not None and state.changes is not None
    state.changes["cosmos"] = True  # as taken from a Cosmos DB account
    save_state(state, files.state)
    write_some(db, 1000)
    db.src.delete_many({"_id": {"$in": [10, 150, 290]}})
    base = ["run", "--job", "j", "--manifest-dir", str(tmp_path), "--follow"]
    capsys.readouterr()
    assert main([*base, "--until-caught-up", "0", "--json"]) == 0
    out, err = capsys.readouterr()
    follow = orjson.loads(out)["follow"]
    assert follow["deletes"] == 0 and follow["upserts"] == 22 and follow["swept"] == 0
    assert "reports no deletes" in err and "--follow-deletes sweep" in err
    assert tdb.dst.count_documents({}) == db.src.count_documents({}) + 4
    assert main([*base, "--until-caught-up", "0", "--follow-deletes", "sweep", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["follow"]["swept"] == 4
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_changes_go_through_the_jobs_transform(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    """Followed changes are reshaped as the copy was: a change that the transform drops
    or rejects removes the document from the target."""
    docs = transform_source(100, pad=10)
    db.src.insert_many(docs)
    path = tmp_path / "migrate.py"
    path.write_text(MIGRATE)
    plan_in(server, target_server, db, tmp_path, partitions=2)
    assert not run_in(tmp_path, jobs=1, transform=str(path)).failed
    db.src.insert_many(transform_source(130, pad=10)[100:])  # 105, 110, 112... refused
    db.src.update_one({"_id": 1}, {"$set": {"i": 7}})  # now dropped by the transform
    db.src.update_one({"_id": 2}, {"$set": {"name": "renamed"}})
    db.src.delete_one({"_id": 3})
    cfg = RunConfig(
        job="j", manifest_dir=tmp_path, follow=True, until_caught_up=0, transform=str(path)
    )
    follow_job(cfg)
    want = migrated_raw(list(db.src.find({})))
    assert raw_by_id(tdb.dst) == want


def test_a_document_leaving_the_transforms_filter_leaves_the_target(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many({"_id": i, "kind": "repair" if i % 2 else "install"} for i in range(60))
    path = tmp_path / "repairs.py"
    path.write_text("class Repairs:\n    filter = {'kind': 'repair'}\n")
    plan_in(server, target_server, db, tmp_path, partitions=2)
    assert not run_in(tmp_path, jobs=1, transform=str(path)).failed
    db.src.update_one({"_id": 1}, {"$set": {"kind": "install"}})  # leaves the filter
    db.src.update_one({"_id": 2}, {"$set": {"kind": "repair"}})  # enters it
    db.src.insert_one({"_id": 100, "kind": "install"})  # never in it
    db.src.update_one({"_id": 3}, {"$set": {"note": "x"}})  # stays in it
    cfg = RunConfig(
        job="j", manifest_dir=tmp_path, follow=True, until_caught_up=0, transform=str(path)
    )
    follow_job(cfg)
    want = {d["_id"]: d for d in db.src.find({"kind": "repair"})}
    got = {d["_id"]: d for d in tdb.dst.find({})}
    assert got == want and 1 not in got and 2 in got and got[3]["note"] == "x"


@pytest.mark.timeout(180)
def test_sigterm_between_batches_stops_the_follow_with_exit_0(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many({"_id": i, "n": i} for i in range(N))
    plan_in(server, target_server, db, tmp_path, partitions=2)
    files = JobFiles(tmp_path, "j")
    args = ["run", "--job", "j", "--manifest-dir", str(tmp_path), "-j", "1", "--follow"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vida_loader", *args],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: load_state(files.state) is not None, 60, "the run to start")
        write_some(db, 1000)
        wait_for(lambda: _applied(files.state) >= 23, 60, "the 23 changes followed")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert "follow of job 'j' stopped" in out and "behind" in out
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
