"""Request-unit accounting of a copy from a source that meters RU (the Cosmos DB
stand-in in front of a real local server): what the run adds up is what was charged."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import orjson
import pytest
from bson.raw_bson import RawBSONDocument
from pymongo.database import Database
from support import PAD, busy_seconds, raw_hashes, run_in

from vida_loader.cli import main
from vida_loader.config import DumpConfig, PlanConfig
from vida_loader.copy import planner
from vida_loader.dev.cosmos import CosmosStandIn
from vida_loader.dev.server import LocalServer
from vida_loader.dump.job import dump_job
from vida_loader.endpoint import Endpoint
from vida_loader.job.runstate import load_state
from vida_loader.jobfiles import DumpFiles, JobFiles, read_jsonl

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
    metrics = read_jsonl(JobFiles(tmp_path, "j").metrics)
    tasks = [m for m in metrics if m["kind"] == "task"]
    assert len(tasks) == 3
    assert sum(t["ru"] for t in tasks) == pytest.approx(result.charges.ru, abs=0.05)
    last = [m for m in metrics if m["kind"] == "run"][-1]
    assert last["ru"] == pytest.approx(result.charges.ru, abs=0.01) and last["docs"] == 3000
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_a_throttling_source_is_copied_whole_and_its_charges_still_add_up(
    cosmos: CosmosStandIn, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    _plan(cosmos, target_server, db, tmp_path, 1500)
    # The copy costs about three seconds of it; not telling its throughput, the source
    # is read at full speed until it throttles, and the run learns its limit from that.
    cosmos.configure(ru=500, hideThroughput=True)
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


def test_max_rus_caps_every_second_with_one_budget_for_all_workers(
    cosmos: CosmosStandIn, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    _plan(cosmos, target_server, db, tmp_path, 4000)  # about 4,300 RU
    result = run_in(tmp_path, jobs=4, batch_size=200, max_rus=1000.0)
    stats = cosmos.stats()
    busy = busy_seconds(stats)
    assert not result.failed and result.budget is not None and "1,000 RU/s" in result.budget
    assert len(busy) >= 2, stats["seconds"]
    # Four workers each with the whole budget would spend up to four times it.
    assert max(busy) <= 1100, stats["seconds"]
    assert sum(busy) / len(busy) >= 700, stats["seconds"]  # the bench holds it to 0.9
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_without_a_cap_the_run_stays_under_the_provisioned_throughput(
    cosmos: CosmosStandIn, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    _plan(cosmos, target_server, db, tmp_path, 4000)
    cosmos.configure(ru=1500)  # told by customAction GetCollection
    result = run_in(tmp_path, jobs=4, batch_size=200)
    stats = cosmos.stats()
    reads = sum(stats["commands"].get(c, 0) for c in ("find", "getMore"))
    throttled = sum(stats["throttled"].values())
    assert not result.failed and result.budget is not None and "adaptive" in result.budget
    assert throttled <= 0.02 * (reads + throttled), stats
    # How much of the 1,500 RU/s it uses (>= 0.9) is `make bench-ru`'s to measure: a
    # three-second copy on a busy test machine has too few whole seconds to judge.
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_server_side_retry_timeouts_are_throttling_too(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    with CosmosStandIn(server.port, ru=10_000_000, server_side_retry=0.2) as cosmos:
        _plan(cosmos, target_server, db, tmp_path, 1500)
        cosmos.configure(ru=500, hideThroughput=True)
        result = run_in(tmp_path, jobs=2, batch_size=200)
        stats = cosmos.stats()
    assert sum(stats["throttled"].values()) > 0  # answered with code 50
    assert not result.failed and result.throttled > 0
    assert result.charges is not None
    assert _within(result.charges.ru, stats["charged"], 0.05)
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_plan_estimates_the_copys_request_units_and_time(
    cosmos: CosmosStandIn,
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many([{"_id": i, "pad": PAD * (1 + i % 9), "n": i} for i in range(3000)])
    cosmos.configure(ru=4000)
    args = ["--source-db", db.name, "--source-collection", "src", "--target-uri"]
    args += [target_server.uri, "--target-db", db.name, "--target-collection", "dst"]
    args += ["--manifest-dir", str(tmp_path), "--job", "j", "--partitions", "3"]
    assert main(["plan", "--source-uri", cosmos.uri, *args]) == 0
    out, _ = capsys.readouterr()
    assert "RU/KB measured on 3 pages" in out
    assert "at 3,800 RU/s (adaptive, at most 95% of the 4,000 RU/s provisioned)" in out
    cosmos.reset()
    result = run_in(tmp_path, jobs=2)
    manifest_ru = result.manifest.stats["ru"]
    assert manifest_ru["provisioned_ru_s"] == 4000
    assert result.charges is not None
    assert _within(manifest_ru["estimate_ru"], result.charges.ru, 0.2), (
        manifest_ru,
        result.charges,
    )
    # --json: the same figures on stdout, the summary on stderr.
    assert main(["plan", "--source-uri", cosmos.uri, *args, "--job", "m", "--json"]) == 0
    out, err = capsys.readouterr()
    doc = orjson.loads(out)
    assert "RU/KB measured" in err and doc["job"] == "m" and doc["documents"] == 3000
    assert doc["ru"]["provisioned_ru_s"] == 4000 and doc["ru"]["rate_ru_s"] == 3800
    assert doc["ru"]["estimate_seconds"] == pytest.approx(doc["ru"]["estimate_ru"] / 3800, abs=0.06)
    # A source that does not meter: no estimate, and nothing else changes.
    assert main(["plan", "--source-uri", server.uri, *args, "--job", "k", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "RU/KB" not in err and orjson.loads(out)["ru"] is None


def test_the_data_migration_profile_keeps_30_percent_for_the_applications(
    cosmos: CosmosStandIn,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _plan(cosmos, target_server, db, tmp_path, 600)
    cosmos.configure(ru=2000)
    args = ["--manifest-dir", str(tmp_path), "--job", "j", "--profile", "data-migration"]
    assert main(["run", *args, "-j", "2"]) == 0
    out, err = capsys.readouterr()
    assert "capped at 1,400 RU/s (70% of the 2,000 provisioned, --max-rus-percent)" in out
    # A source that tells no throughput: the profile's share cannot apply; a notice says so.
    cosmos.configure(hideThroughput=True)
    assert main(["run", *args, "-j", "2", "--restart", "--drop-target"]) == 0
    out, err = capsys.readouterr()
    assert "max_rus_percent 70 (profile) is not applied" in err
    assert "adaptive to the source's throttling" in out
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_pages_are_resized_when_the_source_charges_more_than_guessed(
    cosmos: CosmosStandIn, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    _plan(cosmos, target_server, db, tmp_path, 1000)
    # Four times Cosmos DB's 1 RU per KB: the first page of each range costs four times
    # its target of 50 RU (a tenth of a second of 1,000 RU/s, shared by two workers).
    cosmos.configure(readRuPerKb=4)
    result = run_in(tmp_path, jobs=2, max_rus=1000.0)
    stats = cosmos.stats()
    assert stats["largest"]["find"] > 150  # the first pages, at the guessed size
    assert stats["largest"]["getMore"] <= 100, stats["largest"]  # all later ones: resized
    assert not result.failed and result.charges is not None
    assert _within(result.charges.ru, stats["charged"], 0.05)
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_deep_verify_adds_up_what_the_source_charged(
    cosmos: CosmosStandIn,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A deep verify reads the whole source again: its summary says what that cost."""
    _plan(cosmos, target_server, db, tmp_path, 2000)
    assert not run_in(tmp_path, jobs=1).failed
    cosmos.reset()
    args = ["verify", "--deep", "--job", "j", "--manifest-dir", str(tmp_path), "-j", "2"]
    assert main([*args, "--json"]) == 0
    out, err = capsys.readouterr()
    charged = cosmos.stats()["charged"]
    got = orjson.loads(out)["ru"]
    assert charged > 2000 and _within(got, charged, 0.05), (got, charged)
    assert f"RU          {got:,.0f} request units charged by the source" in err
    assert main([*args, "--restart", "--ru-accounting", "off", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["ru"] is None


def test_a_dump_of_a_throttling_source_is_whole_and_adds_up_its_charges(
    cosmos: CosmosStandIn, target_server: LocalServer, db: DB, tmp_path: Path
) -> None:
    _plan(cosmos, target_server, db, tmp_path, 1500)
    cosmos.configure(ru=500, hideThroughput=True)
    out = tmp_path / "out"
    result = dump_job(DumpConfig(job="j", manifest_dir=tmp_path, out=out, jobs=2))
    stats = cosmos.stats()
    assert sum(stats["throttled"].values()) > 0, stats  # it did throttle
    assert result.complete and result.metered
    assert sum(r.throttled for r in result.records.values()) > 0
    assert _within(result.total("ru"), stats["charged"], 0.05), (result.total("ru"), stats)
    data = DumpFiles(out, db.name, "src").bson.read_bytes()
    docs = bson.decode_all(data, codec_options=bson.CodecOptions(document_class=RawBSONDocument))
    assert Counter(hashlib.sha256(d.raw).hexdigest() for d in docs) == raw_hashes(db.src)
