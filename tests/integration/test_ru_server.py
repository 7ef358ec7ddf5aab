"""Request-unit accounting of a copy from a source that meters RU (the Cosmos DB
stand-in in front of a real local server): what the run adds up is what was charged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from support import PAD, raw_hashes, run_in

from vida_loader import planner
from vida_loader.cli import main
from vida_loader.config import PlanConfig
from vida_loader.dev.cosmos import CosmosStandIn
from vida_loader.dev.server import LocalServer
from vida_loader.mongo import Endpoint
from vida_loader.runstate import load_state

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
DB = Database[dict[str, Any]]


@pytest.fixture
def cosmos(server: LocalServer) -> Iterator[CosmosStandIn]:
    with CosmosStandIn(server.port, ru=10_000_000) as s:
        yield s


def _plan(cosmos: CosmosStandIn, target: LocalServer, db: DB, tmp_path: Path, docs: int) -> None:
    db.src.insert_many([{"_id": i, "pad": PAD * 5, "n": i} for i in range(docs)])
    planner.plan_job(
        PlanConfig(
            source=Endpoint(cosmos.uri, db.name, "src"),
            target=Endpoint(target.uri, db.name, "dst"),
            job="j",
            manifest_dir=tmp_path,
            partitions=3,
        )
    )
    cosmos.reset()  # what the plan's reads cost is not the copy's


def _within(got: float, charged: float, share: float) -> bool:
    return abs(got - charged) <= share * charged


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_run_adds_up_what_the_source_charged(
    cosmos: CosmosStandIn,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    jobs: int,
) -> None:
    _plan(cosmos, target_server, db, tmp_path, 3000)
    result = run_in(tmp_path, jobs=jobs, batch_size=200)
    charged = cosmos.stats()["charged"]
    assert not result.failed and result.charges is not None
    assert charged > 3000  # ~1 KB documents: about 1 RU each, plus the pages
    assert _within(result.charges.ru, charged, 0.05), (result.charges, charged)
    state = load_state(tmp_path / "j" / "state.json")
    assert state is not None
    assert sum(r.ru for r in state.partitions.values()) == pytest.approx(result.charges.ru)
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_a_throttling_source_is_copied_whole_and_its_charges_still_add_up(
    cosmos: CosmosStandIn, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    _plan(cosmos, target_server, db, tmp_path, 3000)
    cosmos.configure(ru=1500)  # the copy costs about two seconds of it
    result = run_in(tmp_path, jobs=2, batch_size=200)
    stats = cosmos.stats()
    assert sum(stats["throttled"].values()) > 0, stats  # it did throttle
    assert not result.failed and result.throttled > 0
    assert result.charges is not None
    assert _within(result.charges.ru, stats["charged"], 0.05), (result.charges, stats)
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_the_summary_and_status_show_request_units_unless_off(
    cosmos: CosmosStandIn,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _plan(cosmos, target_server, db, tmp_path, 600)
    args = ["--manifest-dir", str(tmp_path), "--job", "j"]
    assert main(["run", *args, "--ru-accounting", "off", "-j", "1"]) == 0
    out, err = capsys.readouterr()
    assert "RU  " not in out and " RU " not in err
    assert main(["run", *args, "--restart", "--drop-target", "-j", "1"]) == 0
    out, err = capsys.readouterr()
    assert "request units charged by the source" in out
    assert "RU/s)" in err.splitlines()[-1]  # the progress line
    assert main(["status", *args]) == 0
    out, _ = capsys.readouterr()
    assert "request units charged by the source, all runs" in out
