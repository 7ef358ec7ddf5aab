"""A run riding through a target that crashes and comes back, or stays away too long."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from support import (
    PAD,
    fail_commands,
    fail_inserts,
    ints,
    plan_in,
    raw_hashes,
    run_in,
    running,
    wait_for,
)

from vida_loader.cli import main
from vida_loader.copy.progress import RunProgress
from vida_loader.copy.task import CopySettings, copy_partition
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.job.manifest import Partition, RangeMode
from vida_loader.job.runstate import TaskState
from vida_loader.pipeline.clients import close_clients
from vida_loader.report.progress import format_progress

pytestmark = pytest.mark.integration


@pytest.fixture
def crashing_target() -> Iterator[LocalServer]:
    """A target of this test's own: it is killed and started again."""
    with LocalServer.temporary(test_commands=True) as srv:
        yield srv
    close_clients()


@pytest.fixture
def crashing_source() -> Iterator[LocalServer]:
    """A source of this test's own: it is killed and started again."""
    with LocalServer.temporary(test_commands=True) as srv:
        yield srv
    close_clients()


def _client(srv: LocalServer) -> MongoClient[dict[str, Any]]:
    return MongoClient(srv.uri, serverSelectionTimeoutMS=20_000)


@pytest.mark.parametrize("write_concern", ["1", "0"])
@pytest.mark.timeout(240)
def test_target_killed_and_restarted_mid_run_completes_by_itself(
    server: LocalServer,
    crashing_target: LocalServer,
    db: Any,
    tmp_path: Path,
    write_concern: str,
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(6000, random.Random(8))])
    plan_in(server, crashing_target, db, tmp_path, partitions=4)
    with _client(crashing_target) as c:
        # Slow inserts, so that the kill comes while partitions are mid-copy.
        fail_inserts(c[db.name], "alwaysOn", blockConnection=True, blockTimeMS=40)
    seen: list[RunProgress] = []
    restarted = threading.Event()

    def crash_then_restart(p: RunProgress) -> None:
        seen.append(p)
        if crashing_target.process is not None and 1000 <= p.docs and not restarted.is_set():
            crashing_target.kill()
        elif "target" in p.waiting_for and crashing_target.process is None:
            restarted.set()
            threading.Thread(target=crashing_target.start, daemon=True).start()

    result = run_in(
        tmp_path,
        jobs=2,
        batch_size=200,
        write_concern=write_concern,
        tick=0.05,
        on_progress=crash_then_restart,
    )
    assert restarted.is_set(), "the target was never seen as waited for"
    assert result.failed == []
    assert result.retries >= 1 and result.reruns == 0
    assert any("waiting for target" in format_progress(p) for p in seen)
    with _client(crashing_target) as c:
        assert raw_hashes(c[db.name].dst) == raw_hashes(db.src)
    assert all(r.state is TaskState.DONE for r in result.state.partitions.values())


@pytest.mark.timeout(240)
def test_an_outage_past_the_retry_window_stops_the_run_and_a_later_run_completes(
    server: LocalServer, crashing_target: LocalServer, db: Any, tmp_path: Path
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(6000, random.Random(9))])
    plan_in(server, crashing_target, db, tmp_path, partitions=6)
    with _client(crashing_target) as c:
        fail_inserts(c[db.name], "alwaysOn", blockConnection=True, blockTimeMS=40)

    def crash(p: RunProgress) -> None:
        if crashing_target.process is not None and p.docs >= 300:
            crashing_target.kill()  # and it stays down

    started = time.monotonic()
    result = run_in(
        tmp_path,
        jobs=1,
        batch_size=100,
        retry_window=1.0,
        timeouts=Timeouts(select_ms=2000),
        tick=0.05,
        on_progress=crash,
    )
    took = time.monotonic() - started
    assert result.outage == "target"
    # The running partition waited out the window (a try takes a 2 s server selection,
    # two with pymongo's own write retry); the queued ones were never started, instead
    # of each waiting in turn (5 x 4 s more).
    assert took < 15
    errors = [error for _pid, error in result.failed]
    assert len(errors) == 6 - sum(r.done for r in result.state.partitions.values())
    assert any(e.startswith("gave up on the target after") for e in errors)
    assert sum(e.startswith("not started: the target stayed away") for e in errors) >= 4
    crashing_target.start()
    again = run_in(tmp_path, jobs=1, batch_size=100)
    assert again.failed == [] and again.outage is None
    with _client(crashing_target) as c:
        assert raw_hashes(c[db.name].dst) == raw_hashes(db.src)


@pytest.mark.parametrize("write_concern", ["1", "0"])
@pytest.mark.timeout(240)
def test_a_confirmed_partition_survives_a_crash_right_after(
    server: LocalServer, crashing_target: LocalServer, db: Any, write_concern: str
) -> None:
    """Write results confirm a partition only if they are durable: the target is
    SIGKILLed the moment the copy returns. Without journaled acknowledgements its last
    batch was lost in about half of such crashes; five rounds catch that almost surely."""
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(750, random.Random(10))])
    settings = CopySettings(
        Endpoint(server.uri, db.name, "src"),
        Endpoint(crashing_target.uri, db.name, "dst"),
        batch_size=100,
        write_concern=write_concern,
    )
    for _round in range(5):
        with _client(crashing_target) as c:
            c[db.name].drop_collection("dst")
        result = copy_partition(Partition("p00000", RangeMode.TYPED, "number"), settings)
        assert result.state is TaskState.DONE and result.target_docs == 750
        crashing_target.kill()
        close_clients()
        crashing_target.start()
        with _client(crashing_target) as c:
            assert raw_hashes(c[db.name].dst) == raw_hashes(db.src)


@pytest.mark.timeout(240)
def test_source_killed_and_restarted_mid_run_completes_by_itself(
    crashing_source: LocalServer, target_server: LocalServer, tdb: Any, tmp_path: Path
) -> None:
    with _client(crashing_source) as c:
        src = c[tdb.name]
        src.src.insert_many([{"_id": v, "pad": PAD} for v in ints(6000, random.Random(11))])
        plan_in(crashing_source, target_server, src, tmp_path, partitions=4)
        expected = raw_hashes(src.src)
        # Slow reads, so that the kill comes while partitions are mid-copy.
        fail_commands(src, ["find", "getMore"], "alwaysOn", blockConnection=True, blockTimeMS=40)
    seen: list[str] = []
    restarted = threading.Event()

    def crash_then_restart(p: RunProgress) -> None:
        seen.append(format_progress(p))
        if crashing_source.process is not None and p.docs >= 1000 and not restarted.is_set():
            crashing_source.kill()
        elif "source" in p.waiting_for and crashing_source.process is None:
            restarted.set()
            threading.Thread(target=crashing_source.start, daemon=True).start()

    result = run_in(tmp_path, jobs=2, batch_size=200, tick=0.05, on_progress=crash_then_restart)
    assert restarted.is_set(), "the source was never seen as waited for"
    assert result.failed == [] and result.reruns == 0 and result.retries >= 1
    assert any("waiting for source" in line for line in seen)
    assert raw_hashes(tdb.dst) == expected


@pytest.mark.timeout(240)
def test_run_command_ends_an_outage_past_the_window_with_the_resume_command(
    server: LocalServer,
    crashing_target: LocalServer,
    db: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ints(3000, random.Random(12))])
    plan_in(server, crashing_target, db, tmp_path, partitions=4)
    with _client(crashing_target) as c:
        fail_inserts(c[db.name], "alwaysOn", blockConnection=True, blockTimeMS=100)

    # Batches of 50 make each partition 15 slow inserts (1.5 s or more): the kill lands in
    # the first partition however late the killer thread gets the GIL, so partitions are
    # left that the run must decline to start. One 2 MB batch per partition let a busy
    # machine finish three partitions before the kill (CI, stop 23).
    def kill_once_copying() -> None:
        wait_for(lambda: running(tmp_path / "j" / "state.json"), 60, "a running partition")
        crashing_target.kill()

    killer = threading.Thread(target=kill_once_copying, daemon=True)
    killer.start()
    args = ["run", "--job", "j", "--manifest-dir", str(tmp_path), "-j", "1"]
    code = main([*args, "--batch-size", "50", "--retry-window", "1"])
    killer.join(5)
    out, err = capsys.readouterr()
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert re.match(
        r"vida-loader: the target stayed unreachable for longer than --retry-window \(1 s\): "
        r"run stopped with [0-3] of 4 partitions confirmed; once it is back, continue with: ",
        last,
    )
    assert last.endswith(f"--manifest-dir {tmp_path} -j 1 --batch-size 50 --retry-window 1")
    # The partition the kill hit gave up; none of the others was handed to the worker.
    assert out.count("not started: the target stayed away past the retry window") == 3
    assert out.count("gave up on the target") == 1
    crashing_target.start()
    assert main(args) == 0
    with _client(crashing_target) as c:
        assert raw_hashes(c[db.name].dst) == raw_hashes(db.src)
