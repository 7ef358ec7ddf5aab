"""Indexes through the installed CLI: kill -9 during the copy and again during the index
builds, then the same command; status and the summary of the index phase."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.collation import Collation
from pymongo.database import Database
from support import (
    fail_commands,
    indexed_documents,
    make_indexes,
    plan_by_env,
    raw_hashes,
    running,
    start_slow_run,
    wait_for,
)

from vida_loader.cli import main
from vida_loader.dev.server import LocalServer

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]


def _builds(state_file: Path) -> Counter[str]:
    """Index tasks per state in the saved run state."""
    try:
        doc = orjson.loads(state_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return Counter()
    return Counter(t["state"] for t in doc["tasks"].values() if t["kind"] == "index")


def _kill(proc: subprocess.Popen[Any]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.timeout(300)
def test_kill_9_during_the_copy_and_during_the_builds_then_the_same_command(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many(indexed_documents(1500))
    make_indexes(db)
    job = plan_by_env(monkeypatch, server, target_server, db, tmp_path, "ix", 3)
    state = job / "state.json"
    quiet: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}

    proc = start_slow_run(tdb, 300, **quiet)  # every insert held 0.3 s
    try:
        wait_for(lambda: running(state), 60, "a running partition")
    finally:
        _kill(proc)
    tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    assert not _builds(state)["done"]

    # Each build held 1 s: the kill lands after some are built, while others run.
    fail_commands(tdb, ["createIndexes"], "alwaysOn", blockConnection=True, blockTimeMS=1000)
    cmd = [sys.executable, "-m", "vida_loader", "run", "-j", "2", "--batch-size", "100"]
    proc = subprocess.Popen(cmd, start_new_session=True, **quiet)
    try:
        wait_for(
            lambda: (b := _builds(state))["done"] >= 2 and b["running"] > 0,
            120,
            "two index builds done and another running",
        )
    finally:
        _kill(proc)
    tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    built = _builds(state)["done"]

    capsys.readouterr()
    assert main(["run", "-j", "2"]) == 0
    out, _err = capsys.readouterr()
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    assert tdb.dst.index_information() == db.src.index_information()
    # The builds that finished before the kill were not sent again.
    assert "indexes     9/9 built" in out and f"({9 - built} builds by this run" in out
    assert main(["status"]) == 0
    out, _err = capsys.readouterr()
    assert "complete" in out.splitlines()[0] and "indexes     9/9 built" in out


def test_a_failed_index_is_in_the_exit_code_the_message_and_status(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many([{"_id": i, "k": i} for i in range(200)])
    db.src.create_index("k", unique=True)
    plan_by_env(monkeypatch, server, target_server, db, tmp_path, "u", 2)
    db.src.drop_index("k_1")
    db.src.insert_one({"_id": 900, "k": 5})
    capsys.readouterr()
    assert main(["run", "-j", "1"]) == 1
    out, err = capsys.readouterr()
    err = err.splitlines()[-1]  # after the progress line
    assert "1 of 1 indexes failed to build (index 'k_1': the data breaks unique index" in err
    assert "duplicate key {'k': 5}); the data is copied and confirmed" in err
    assert "FAILED index k_1: the data breaks unique index 'k_1'" in out
    assert main(["status"]) == 0
    out, _err = capsys.readouterr()
    assert "stopped" in out.splitlines()[0]
    assert "indexes     0/1 built" in out and ", 1 failed" in out
    assert "FAILED index k_1 after 1 attempts: the data breaks unique index" in out


def test_disable_indexes_killed_before_the_rebuild_recreates_the_saved_definitions(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many(indexed_documents(900))
    exists = {"k": {"$exists": True}}
    tdb.dst.create_index([("k", 1)], name="app_k", unique=True, partialFilterExpression=exists)
    tdb.dst.create_index([("s", -1), ("b", 1)], name="app_sb", collation=Collation("fr"))
    before = tdb.dst.index_information()
    job = plan_by_env(monkeypatch, server, target_server, db, tmp_path, "dis", 3)
    monkeypatch.setenv("VIDA_DISABLE_INDEXES", "true")
    proc = start_slow_run(tdb, 300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: running(job / "state.json"), 60, "a running partition")
    finally:
        _kill(proc)
    tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    assert list(tdb.dst.index_information()) == ["_id_"]  # dropped, not yet rebuilt
    assert (job / "indexes.json").is_file()

    monkeypatch.delenv("VIDA_DISABLE_INDEXES")  # the file, not the flag, brings them back
    capsys.readouterr()
    assert main(["run", "-j", "2"]) == 0
    out, _err = capsys.readouterr()
    assert "indexes     2/2 built" in out
    assert tdb.dst.index_information() == before
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_indexes_list_diff_and_build_against_the_target(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many(indexed_documents(300))
    make_indexes(db)
    plan_by_env(monkeypatch, server, target_server, db, tmp_path, "ls", 2)
    capsys.readouterr()

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, _out, err = cli("indexes", "build")
    assert code == 2 and "job 'ls' has not run yet: `vida-loader run` builds" in err
    assert cli("run", "-j", "1", "--indexes", "skip")[0] == 0
    code, out, _err = cli("indexes", "diff")
    assert code == 1 and "9 wanted; 0 as defined, 9 missing" in out
    code, out, _err = cli("indexes", "build")
    assert code == 0 and "indexes     9/9 built (9 builds by this run" in out
    code, out, _err = cli("indexes", "diff")
    assert code == 0 and f"target {db.name}.dst holds the 9 indexes of job 'ls' as defined" in out

    tdb.dst.drop_index("s_1")
    tdb.dst.create_index("zz")
    code, out, _err = cli("indexes", "diff")
    assert code == 1
    assert "  missing  s_1 {s: 1} sparse" in out and "  extra    zz_1 {zz: 1}" in out
    code, out, _err = cli("indexes", "list")
    assert code == 0 and "  ok       a_unique {a: 1} unique" in out and "missing  s_1" in out
    code, out, _err = cli("indexes", "build")  # the state says done; the target does not
    assert code == 0 and "8 already there" in out
    info = tdb.dst.index_information()
    assert info.pop("zz_1") and info == db.src.index_information()
