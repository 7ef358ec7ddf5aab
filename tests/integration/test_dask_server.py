"""run --executor dask: the tasks run on the workers of a real Dask cluster (a scheduler
and two worker processes started here), the coordinator stays the only writer."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo import MongoClient
from pymongo.database import Database
from support import (
    PAD,
    busy_seconds,
    fail_inserts,
    plan_by_env,
    plan_in,
    raw_hashes,
    run_in,
    running,
    wait_for,
)

from vida_loader.cli import main
from vida_loader.config import PlanConfig, VerifyConfig
from vida_loader.copy import planner
from vida_loader.copy.coordinator import RunResult
from vida_loader.copy.progress import RunProgress
from vida_loader.dev.cosmos import CosmosStandIn
from vida_loader.dev.dask_cluster import LocalDask, local_dask
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint
from vida_loader.job.manifest import Manifest
from vida_loader.job.runstate import TaskState
from vida_loader.verify.deep_job import deep_verify_job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
DB = Database[dict[str, Any]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDask]:
    with local_dask(tmp_path_factory.mktemp("dask")) as c:
        yield c


@pytest.fixture
def four(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> Manifest:
    """4,000 documents planned in 4 partitions."""
    db.src.insert_many([{"_id": i, "pad": PAD, "n": i % 7} for i in range(4000)])
    return plan_in(server, target_server, db, tmp_path, partitions=4)


def test_a_job_copied_on_dask_is_byte_identical(
    cluster: LocalDask, four: Manifest, db: DB, tdb: DB, tmp_path: Path
) -> None:
    result = run_in(tmp_path, tick=0.05, jobs=2, executor="dask", scheduler=cluster.address)

    assert result.failed == []
    assert all(r.state is TaskState.DONE for r in result.state.partitions.values())
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    assert result.state.settings["executor"] == "dask"
    # The tasks ran on the cluster: their events went through its scheduler.
    started = [m for m in cluster.events("vida-") if m[0] == "Started"]
    assert sorted(m[1] for m in started) == sorted(p.id for p in four.partitions)
    # Workers outlive the run: a client (its RU meter and budget) must not outlive its task.
    assert set(cluster.clients_held().values()) == {0}

    # verify --deep on the same cluster: one altered document is found, byte for byte.
    tdb.dst.update_one({"_id": 1234}, {"$set": {"n": -1}})
    cfg = VerifyConfig(
        job="j",
        manifest_dir=tmp_path,
        deep=True,
        jobs=2,
        executor="dask",
        scheduler=cluster.address,
    )
    deep = deep_verify_job(cfg, tick=0.05)
    assert not deep.matches
    assert deep.total("altered") == 1 and deep.total("matched") == 3999
    verify_started = [m for m in cluster.events("vida-") if m[0] == "Started"]
    assert len(verify_started) == 2 * len(four.partitions)
    assert set(cluster.clients_held().values()) == {0}


def _run_killing(
    tmp_path: Path, tdb: DB, workers: list[str], copying: int, **kw: Any
) -> tuple[RunResult, str]:
    """Run job "j" at -j 2 on a cluster of its own (the test leaves it short of workers),
    each insert held 60 ms; SIGKILL ``workers`` once ``copying`` tasks have written.
    The result and the cluster's address."""
    with local_dask(tmp_path / "dask") as own:
        fail_inserts(tdb, "alwaysOn", blockConnection=True, blockTimeMS=60)
        killed: list[str] = []

        def kill_mid_copy(p: RunProgress) -> None:
            if not killed and sum(w.docs > 0 for w in p.workers) >= copying:
                for name in workers:
                    own.kill(name)  # mid-batch
                killed.extend(workers)

        try:
            result = run_in(
                tmp_path,
                tick=0.05,
                jobs=2,
                batch_size=100,
                executor="dask",
                scheduler=own.address,
                on_progress=kill_mid_copy,
                **kw,
            )
        finally:
            fail_inserts(tdb, "off")
        markers = own.markers_held()
    assert killed == workers, "the run ended before the workers could be killed"
    assert markers == [], "the run left events on the scheduler"
    return result, own.address


def test_a_worker_killed_mid_run_costs_nothing(
    tmp_path: Path, four: Manifest, db: DB, tdb: DB
) -> None:
    result, _address = _run_killing(tmp_path, tdb, ["w0"], copying=2)  # w1 takes over
    assert result.failed == []
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    # The lost attempt was a passing failure; its retry went on from the target.
    assert result.reruns >= 1
    assert result.resumed >= 1
    assert max(r.attempts for r in result.state.partitions.values()) == 2


@pytest.fixture
def by_env(
    monkeypatch: pytest.MonkeyPatch,
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
) -> Path:
    """3,000 documents, job "j" planned in 3 partitions through VIDA_* variables."""
    db.src.insert_many([{"_id": i, "pad": PAD} for i in range(3000)])
    return plan_by_env(monkeypatch, server, target_server, db, tmp_path, "j", 3)


def test_ctrl_c_on_dask_saves_state_stops_the_tasks_and_the_same_command_continues(
    cluster: LocalDask, by_env: Path, db: DB, tdb: DB
) -> None:
    cmd = [sys.executable, "-m", "vida_loader", "run", "-j", "2", "--batch-size", "100"]
    cmd += ["--executor", "dask", "--scheduler", cluster.address]
    fail_inserts(tdb, "alwaysOn", blockConnection=True, blockTimeMS=200)
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: running(by_env / "state.json"), 60, "a running partition")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        fail_inserts(tdb, "off")
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert re.match(r"vida-loader: error: interrupted: [0-2] of 3 partitions confirmed", last)
    assert last.endswith(f"-j 2 --executor dask --scheduler {cluster.address} --batch-size 100")
    state = orjson.loads((by_env / "state.json").read_bytes())
    assert set(p["state"] for p in state["tasks"].values()) <= {"pending", "done"}
    # Nothing of the run is left running on the cluster: no write after the exit.
    assert cluster.processing() == 0

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "3/3 partitions confirmed" in again.stdout
    assert f"workers     2 tasks in flight on the Dask cluster at {cluster.address}" in again.stdout
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_a_wrong_scheduler_address_is_one_line_exit_3_within_the_select_timeout(
    by_env: Path, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code = main(
        ["run", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9", "--select-timeout", "2"]
    )
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 3, err
    assert err.strip().splitlines() == [
        "vida-loader: error: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9' within 2 s "
        "(OSError): check the address and that `dask scheduler` runs there"
    ]
    assert took < 2 + 8  # the select timeout, plus starting the client
    assert not (by_env / "state.json").exists()
    assert tdb.dst.estimated_document_count() == 0


PRELOAD = "import vida_loader\nvida_loader.__version__ = '0.0.1'\n"


@pytest.mark.parametrize("unfit", ["version", "threads"])
def test_an_unfit_worker_is_refused_before_anything_is_written(
    cluster: LocalDask,
    by_env: Path,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    unfit: str,
) -> None:
    preload = tmp_path / "other_version.py"
    preload.write_text(PRELOAD)
    if unfit == "version":
        cluster.start_worker("odd", preload=preload)
    else:
        cluster.start_worker("odd", nthreads=2)
    try:
        odd = next(a for a, w in cluster.workers().items() if w["name"] == "odd")
        code = main(["run", "-j", "2", "--executor", "dask", "--scheduler", cluster.address])
    finally:
        cluster.kill("odd")
        cluster.wait_workers(2)
    err = capsys.readouterr().err
    assert code == 2, err
    [line] = err.strip().splitlines()
    if unfit == "version":
        assert line.startswith(
            f"vida-loader: error: Dask worker {odd} runs vida-loader 0.0.1 (here 0.1.0): "
        )
        assert "--nthreads 1" in line and "vida-loader[dask]==0.1.0" in line
    else:
        assert line.startswith(f"vida-loader: error: Dask worker {odd} runs 2 threads")
    assert not (by_env / "state.json").exists()
    assert "dst" not in tdb.list_collection_names()


def test_dask_without_a_scheduler_address_is_one_line_exit_2(
    by_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VIDA_EXECUTOR", "dask")
    assert main(["run"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "vida-loader: error: --executor dask needs the address of a Dask scheduler: "
        "add --scheduler tcp://HOST:8786 (or VIDA_SCHEDULER)"
    ]
    assert not (by_env / "state.json").exists()


def test_a_cluster_left_without_workers_fails_in_time_and_the_job_finishes_locally(
    tmp_path: Path, four: Manifest, db: DB, tdb: DB
) -> None:
    lost, address = _run_killing(tmp_path, tdb, ["w0", "w1"], copying=1, retry_window=3)
    assert lost.failed, "the running partitions fail once the patience is spent"
    errors = {error for _pid, error in lost.failed}
    assert errors == {
        f"ClusterLost: the Dask scheduler at '{address}' has had no worker for 3 s (--retry-window)"
    }
    again = run_in(tmp_path, tick=0.05, jobs=2)  # here, on this machine's processes
    assert again.failed == []
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_a_dask_run_keeps_its_ru_cap_and_adds_up_what_the_source_charged(
    cluster: LocalDask,
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
) -> None:
    with CosmosStandIn(server.port, ru=10_000_000) as cosmos:
        db.src.insert_many([{"_id": i, "pad": PAD * 5, "n": i} for i in range(4000)])
        plan_in(cosmos, target_server, db, tmp_path, partitions=4)  # read via Cosmos DB
        cosmos.reset()
        result = run_in(
            tmp_path,
            jobs=2,
            batch_size=200,
            max_rus=1000.0,
            executor="dask",
            scheduler=cluster.address,
        )
        stats = cosmos.stats()
    assert not result.failed and result.charges is not None
    # The workers' charges came back with their results and events.
    assert abs(result.charges.ru - stats["charged"]) <= 0.05 * stats["charged"]
    busy = busy_seconds(stats)
    assert len(busy) >= 2, stats["seconds"]
    # Each of the 2 tasks in flight paces itself to half the cap.
    assert max(busy) <= 1100, stats["seconds"]
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


SECRET = "s3cr3t-dask"


def test_worker_uris_env_the_workers_use_their_own_credentials(
    server: LocalServer,
    target_server: LocalServer,
    client: MongoClient[dict[str, Any]],
    target_client: MongoClient[dict[str, Any]],
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for c in (client, target_client):
        c.admin.command("createUser", "loader", pwd=SECRET, roles=["root"])
    try:
        src, dst = (
            f"mongodb://loader:{SECRET}@127.0.0.1:{s.port}/?directConnection=true"
            for s in (server, target_server)
        )
        db.src.insert_many([{"_id": i, "pad": PAD} for i in range(2000)])
        planner.plan_job(
            PlanConfig(
                source=Endpoint(src, db.name, "src"),
                target=Endpoint(dst, db.name, "dst"),
                job="j",
                manifest_dir=tmp_path,
                partitions=2,
            )
        )
        run = ["run", "--job", "j", "--manifest-dir", str(tmp_path), "--source-uri", src]
        run += ["--target-uri", dst, "--executor", "dask", "--worker-uris", "env"]
        # Workers whose own source password is wrong: refused before anything is written,
        # which shows that they use their own and that none travelled with the check.
        wrong = {"VIDA_SOURCE_URI": src.replace(SECRET, "nope"), "VIDA_TARGET_URI": dst}
        with local_dask(tmp_path / "wrong", workers=1, env=wrong) as bad:
            assert main([*run, "--scheduler", bad.address]) == 3
        [line] = capsys.readouterr().err.strip().splitlines()
        assert re.match(r"vida-loader: error: Dask worker tcp://\S+ cannot use the source: ", line)
        assert (
            "refused the credentials: check the user and password in the worker's "
            "VIDA_SOURCE_URI: give every worker VIDA_SOURCE_URI" in line
        )
        assert SECRET not in line, line
        assert "dst" not in tdb.list_collection_names()

        own = {"VIDA_SOURCE_URI": src, "VIDA_TARGET_URI": dst}
        with local_dask(tmp_path / "own", env=own) as good:
            assert main([*run, "--scheduler", good.address]) == 0
            logs = good.log("scheduler") + good.log("w0") + good.log("w1")
        assert raw_hashes(tdb.dst) == raw_hashes(db.src)
        assert SECRET not in logs + capsys.readouterr().err
    finally:
        for c in (client, target_client):
            c.admin.command("dropUser", "loader")
