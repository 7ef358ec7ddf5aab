"""Crash and resume through the installed CLI: kill -9 of the whole process group at two
different points, the lock, status, and a kill in the middle of a state write."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.database import Database
from support import plan_by_env, raw_hashes, running, start_slow_run, wait_for

from vida_loader.cli import main
from vida_loader.dev.server import LocalServer
from vida_loader.job.runstate import load_state

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
N = 100_000
JOBS, BATCH = 3, 500
CLI = [sys.executable, "-m", "vida_loader"]


class _Run:
    """`run` in its own process group (one killpg reaches every worker), with the
    documents its progress lines report as sent so far."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*CLI, "run", "-j", str(JOBS), "--batch-size", str(BATCH), *args]
            + ["--progress-interval", "0.1"],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.sent = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if m := re.match(r"run: ([\d,]+)/", line):
                self.sent = int(m[1].replace(",", ""))

    def kill_when(self, predicate: Any, what: str) -> None:
        try:
            wait_for(lambda: self.proc.poll() is not None or predicate(), 240, what)
            assert self.proc.poll() is None, f"run ended before {what}"
        finally:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.reader.join(30)
            assert self.proc.stderr is not None
            self.proc.stderr.close()


def _settled_count(tdb: DB) -> int:
    """The target's count once inserts the dead workers had sent have all landed."""
    last = -1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = tdb.dst.count_documents({})
        if now == last:
            return now
        last = now
        time.sleep(0.3)  # inserts already sent by dead clients: nothing to poll for
    raise AssertionError("target count never settled")


def _resume(tdb: DB, before: int) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run the job to its end; the number of documents it sent that were already there."""
    done = subprocess.run(
        [*CLI, "run", "-j", str(JOBS), "--batch-size", str(BATCH)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    read = int(re.search(r"([\d,]+) read by this run", done.stdout)[1].replace(",", ""))  # type: ignore[index]
    return read - (N - before), done


@pytest.fixture
def big(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """100,000 small documents planned in 4 partitions; the job folder."""
    for start in range(0, N, 20_000):
        db.src.insert_many(
            [{"_id": i, "v": i * 7, "s": "x" * 40} for i in range(start, start + 20_000)]
        )
    job = plan_by_env(monkeypatch, server, target_server, db, tmp_path, "big", 4)
    capsys.readouterr()
    return job


def _done_partitions(job: Path, started_after: str = "") -> int:
    """Confirmed partitions of the state started after ``started_after`` (ISO time)."""
    try:
        doc = orjson.loads((job / "state.json").read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return 0
    if doc["started_at"] <= started_after:
        return 0
    return sum(p["state"] == "done" for p in doc["tasks"].values())


@pytest.mark.timeout(600)
def test_kill_9_at_two_points_then_resume_sends_at_most_a_batch_per_worker_again(
    big: Path, db: DB, tdb: DB
) -> None:
    source = raw_hashes(db.src)
    bound = JOBS * BATCH

    # 1. early: the first documents have landed, no partition is done yet
    # (kill when the workers have sent a share: queued writes land after the send)
    run = _Run()
    run.kill_when(lambda: run.sent >= N // 5, "20 % sent")
    before = _settled_count(tdb)
    assert before < N and _done_partitions(big) == 0
    sent_again, done = _resume(tdb, before)
    print(f"early kill at {before:,} documents: {sent_again} sent again")
    assert 0 <= sent_again <= bound
    assert "took over the lock of job 'big' from pid" in done.stderr
    assert "0 partitions confirmed earlier were skipped" in done.stdout
    assert raw_hashes(tdb.dst) == source

    # 2. late: after a partition of the restarted job is confirmed, others in flight
    first = orjson.loads((big / "state.json").read_bytes())["started_at"]
    run = _Run("--restart", "--drop-target")
    run.kill_when(
        lambda: _done_partitions(big, first) >= 1 and run.sent >= N * 3 // 5,
        "a confirmed partition and 60 % sent",
    )
    before = _settled_count(tdb)
    assert before < N
    sent_again, done = _resume(tdb, before)
    print(f"late kill at {before:,} documents: {sent_again} sent again")
    skipped = re.search(r"(\d) partitions confirmed earlier were skipped", done.stdout)
    assert skipped and int(skipped[1]) >= 1, done.stdout
    assert 0 <= sent_again <= bound
    assert raw_hashes(tdb.dst) == source
    state = load_state(big / "state.json")
    assert state is not None and state.finished_at and state.runs == 2


def test_kill_between_write_and_rename_leaves_state_that_loads(planned: Path) -> None:
    assert main(["run", "-j", "1"]) == 0
    before = (planned / "state.json").read_bytes()
    # A process that saves the state and is killed after writing the temp file, before
    # the rename that would publish it.
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from vida_loader.job import runstate
        path = Path({str(planned / "state.json")!r})
        state = runstate.load_state(path)
        state.runs = 99
        os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
        runstate.save_state(state, path)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert list(planned.glob(".state.json.tmp-*")), "the kill came before the temp file"
    assert (planned / "state.json").read_bytes() == before
    state = load_state(planned / "state.json")
    assert state is not None and state.runs == 1
    # and the next run goes on from it
    assert main(["run", "-j", "1"]) == 0


def test_a_second_run_is_refused_while_one_runs_and_status_shows_both(
    planned: Path, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = start_slow_run(tdb, 200, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: running(planned / "state.json"), 60, "a running partition")
        code = main(["run", "-j", "1"])
        _out, err = capsys.readouterr()
        assert code == 3
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"job 'j' is being run by pid {proc.pid} on host '" in err
        assert main(["status"]) == 0
        out, _err = capsys.readouterr()
        assert f"running now: pid {proc.pid} on host" in out
        assert "documents read by" in out and "  continue    " not in out
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert main(["status"]) == 0
    out, _err = capsys.readouterr()
    assert "partitions confirmed, stopped" in out
    assert "were running when the last run stopped: the next run continues them" in out
    assert re.search(
        r"continue    vida-loader run --job j --manifest-dir \S+ -j 2 --batch-size 100", out
    )


def test_status_before_a_run_after_a_failure_and_when_complete(
    planned: Path, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    out, _err = capsys.readouterr()
    assert "job 'j': planned (3 partitions, ~3,000 documents), not run yet" in out
    assert "start       vida-loader run --job j --manifest-dir" in out

    tdb.dst.insert_one({"_id": 2999.5})  # in the last range, not in the source
    assert main(["run", "-j", "1", "--append"]) == 1
    _out, err = capsys.readouterr()
    assert "1 of 3 partitions failed (p00002: target holds 1 more documents" in err
    assert "; fix the cause, then continue with: vida-loader run --job j" in err
    assert main(["status"]) == 0
    out, _err = capsys.readouterr()
    assert "job 'j': 2/3 partitions confirmed, stopped" in out
    assert "pending 0, running 0, done 2, failed 1" in out
    assert "FAILED p00002 after 1 attempts: target holds 1 more documents" in out
    assert "2,000 confirmed on the target of ~3,000 planned (67%)" in out

    tdb.dst.delete_one({"_id": 2999.5})
    assert main(["run", "-j", "1"]) == 0
    out, _err = capsys.readouterr()
    assert "resumed     run 2 of this job: 2 partitions confirmed earlier were skipped" in out
    assert main(["status"]) == 0
    out, _err = capsys.readouterr()
    assert "job 'j': 3/3 partitions confirmed, complete" in out
    assert "check       vida-loader verify --job j --manifest-dir" in out
    assert main(["run"]) == 0
    out, _err = capsys.readouterr()
    assert "job 'j' is complete: all 3 partitions were confirmed by earlier runs" in out
