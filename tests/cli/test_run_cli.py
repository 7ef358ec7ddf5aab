"""`vida-loader run` from the command line: summary, exit codes, bad input, kill -9."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
from pymongo.database import Database
from support import ShardedTwin, fail_inserts, raw_hashes, running, start_slow_run, wait_for

from vida_loader.cli import main
from vida_loader.dev.server import LocalServer

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
SECRET = "hunter2-Very-Secret"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_copies_confirms_and_summarises(
    planned: Path, db: DB, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "-j", "1")
    assert code == 0, err
    assert "3/3 partitions confirmed on the target" in out
    assert "3,000 read by this run" in out and "3,000 confirmed on the target" in out
    assert "repaired    0 documents" in out
    assert f"state       {planned / 'state.json'}" in out
    # stderr is not a terminal here: plain lines, the last one complete
    progress = [ln for ln in err.splitlines() if ln.startswith("run: ")]
    assert progress and "3,000/3,000 docs (100%)" in progress[-1]
    assert "\r" not in err
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    state = orjson.loads((planned / "state.json").read_bytes())
    assert {p["state"] for p in state["tasks"].values()} == {"done"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--batch-mb", "0"],
            2,
            "--batch-mb '0.0' is not a valid value: accepted is a number above 0 to 16",
        ),
        (["-j", "0"], 2, "--jobs '0' is not a valid value"),
        (["--write-concern", "2"], 2, "Invalid value for '--write-concern'"),
        (["--job", "nope"], 3, "no manifest at '"),
        (["--job", "a/b"], 2, "--job 'a/b' is not a usable job name"),
        (["--target-uri", "mongodb://elsewhere.example/"], 3, "planned against 127.0.0.1:"),
        (["--source-uri", "postgres://x"], 2, "--source-uri 'postgres:…' is not a MongoDB URI"),
        (["--ru-accounting", "maybe"], 2, "Invalid value for '--ru-accounting'"),
        (["--indexes", "later"], 2, "Invalid value for '--indexes'"),
        (
            ["--disable-indexes", "--indexes", "skip"],
            2,
            "--disable-indexes drops the target's indexes to rebuild them after the data: it "
            "cannot go with --indexes 'skip'",
        ),
        (
            ["--create-indexes", "--indexes", "before"],
            2,
            "--create-indexes builds the indexes after the data: it cannot go with --indexes",
        ),
        (
            ["--max-rus", "0"],
            2,
            "--max-rus '0.0' is not a valid value: accepted is a number above 0",
        ),
        (["--max-rus-percent", "150"], 2, "--max-rus-percent '150.0' is not a valid value"),
        (["--max-rus", "500"], 2, "--max-rus '500': the source's request charges are not read"),
        (["--max-rus-percent", "50"], 2, "--max-rus-percent '50': the source's request charges"),
        (
            ["--ru-accounting", "on"],
            2,
            "--ru-accounting 'on': the source does not answer getLastRequestStatistics",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_no_state(
    planned: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, out, err = _run(capsys, *args)
    assert got == code, err
    assert err.count("\n") == 1 and message in err, err
    assert "Traceback" not in err and out == ""
    assert not (planned / "state.json").exists()


def test_corrupt_manifest_exits_3(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = planned / "manifest.json"
    path.write_bytes(path.read_bytes()[:-40])
    code, _out, err = _run(capsys)
    assert code == 3 and "is corrupt" in err and err.count("\n") == 1


def test_unreachable_target_exits_3_without_the_password(
    server: LocalServer,
    db: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many([{"_id": i} for i in range(10)])
    with LocalServer.temporary() as gone:
        args = ["--source-uri", server.uri, "--source-db", db.name, "--source-collection", "src"]
        args += ["--target-uri", gone.uri, "--target-db", "d", "--target-collection", "c"]
        assert main(["plan", "--manifest-dir", str(tmp_path), "--job", "j", *args]) == 0
        uri = gone.uri.replace("mongodb://", f"mongodb://u:{SECRET}@")
    started = time.monotonic()
    code, out, err = _run(capsys, "--manifest-dir", str(tmp_path), "--target-uri", uri)
    assert code == 3, err
    assert time.monotonic() - started < 20
    assert "cannot reach target at 'mongodb://u:***@127.0.0.1:" in err
    assert SECRET not in out + err
    assert not (tmp_path / "j" / "state.json").exists()


def test_partition_that_cannot_be_confirmed_exits_1_and_is_named(
    planned: Path, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    tdb.dst.insert_one({"_id": 2999.5})  # inside the last range, absent from the source
    code, out, err = _run(capsys, "-j", "1", "--append")
    assert code == 1
    assert "2/3 partitions confirmed" in out
    assert "FAILED p00002: target holds 1 more documents in this range" in out
    assert "1 of 3 partitions failed" in err


def test_kill_9_midway_then_run_again_gives_an_identical_target(
    planned: Path, db: DB, tdb: DB
) -> None:
    proc = start_slow_run(tdb, 100, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: running(planned / "state.json"), 60, "a running partition")
        wait_for(lambda: tdb.dst.estimated_document_count() > 0, 60, "first documents")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    partial = tdb.dst.count_documents({})
    assert partial < 3000
    assert orjson.loads((planned / "state.json").read_bytes())["finished_at"] is None
    tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    again = subprocess.run(
        [sys.executable, "-m", "vida_loader", "run", "-j", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "3/3 partitions confirmed" in again.stdout
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_saves_state_stops_workers_and_exits_130(
    planned: Path, tdb: DB, sig: signal.Signals
) -> None:
    proc = start_slow_run(tdb, 300, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: running(planned / "state.json"), 60, "a running partition")
        workers = psutil.Process(proc.pid).children(recursive=True)
        started = time.monotonic()
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 130, err
    assert time.monotonic() - started < 15
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert re.match(
        r"vida-loader: error: interrupted: [0-2] of 3 partitions confirmed, state saved in", last
    )
    assert last.endswith(
        f"continue with: vida-loader run --job j --manifest-dir {planned.parent} "
        "-j 2 --batch-size 100"
    )
    state = orjson.loads((planned / "state.json").read_bytes())
    states = [p["state"] for p in state["tasks"].values()]
    assert "pending" in states and set(states) <= {"pending", "done"}
    wait_for(lambda: not any(w.is_running() for w in workers), 10, "workers to stop")


def test_throttling_past_the_budget_exits_1_naming_the_partition_then_run_completes(
    planned: Path, db: DB, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two inserts get through (the first partition, batch 1000), then every one is
    # throttled: past 2 retries the other partitions fail; the run goes on to the end.
    fail_inserts(tdb, {"skip": 1}, errorCode=16500)
    try:
        code, out, err = _run(capsys, "-j", "1", "--retry-attempts", "2")
    finally:
        fail_inserts(tdb, "off")
    assert code == 1
    assert "1/3 partitions confirmed on the target" in out
    assert "4 operations retried (4 throttled" in out  # 2 per failed partition
    failed = re.findall(r"FAILED (p\d+): gave up on the target after 3 failures", out)
    assert len(failed) == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("vida-loader: 2 of 3 partitions failed (p")
    assert "16500" in last
    assert last.endswith(
        f"continue with: vida-loader run --job j --manifest-dir {planned.parent} "
        "-j 1 --retry-attempts 2"
    )
    state = orjson.loads((planned / "state.json").read_bytes())
    assert sorted(p["throttled"] for p in state["tasks"].values()) == [0, 2, 2]
    code, out, err = _run(capsys, "-j", "1")
    assert code == 0, err
    assert "3/3 partitions confirmed on the target" in out
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_duplicate_ids_of_a_sharded_source_exit_1_naming_the_list(
    planned: Path,
    db: DB,
    tdb: DB,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ShardedTwin(monkeypatch)  # the source holds _id 450 twice (see ShardedTwin)
    code, out, err = _run(capsys, "-j", "1")
    assert code == 1
    assert "3/3 partitions confirmed on the target" in out
    assert (
        f"duplicates  1 source documents share their _id with another (listed in {planned}" in out
    )
    last = err.strip().splitlines()[-1]
    assert last.startswith("vida-loader: the source holds 1 documents whose _id another")
    assert last.endswith(f"every copy is listed in '{planned / 'duplicates.jsonl'}'")
    code, out, err = _run(capsys, "-j", "1")  # complete, and still not a silent success
    assert code == 1 and "is complete" in out and "duplicates.jsonl" in err
