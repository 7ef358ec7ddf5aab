"""Each shipped profile changes what `run` and `generate` do: the batches and write
concern the target receives, the workers and retry budget the library records."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.database import Database
from support import legacy_generate_target, listen, raw_hashes

from vida_loader.cli import main
from vida_loader.dev.server import LocalServer
from vida_loader.settings.registry import available_cores

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]

# What each profile file says (vida_loader/settings/profiles/*.toml), as the library records it.
EXPECTED = {
    "data-ingest": {"write_concern": "0", "batch_size": 10_000, "batch_bytes": 16 * 2**20},
    "data-migration": {
        "write_concern": "0",
        "batch_size": 1000,
        "batch_bytes": 2 * 2**20,
        "attempts": 5,
        "retry_attempts": 1000,
        "retry_window": 900.0,
        "max_rus_percent": 70.0,
    },
    "dev": {"write_concern": "1", "batch_size": 100, "batch_bytes": 2**20, "attempts": 1},
}
W = {"0": {"w": 0}, "1": {"w": 1, "j": True}}


@pytest.fixture
def one_big_partition(plan_of: Callable[..., Path]) -> Path:
    """25,000 documents in one partition: room for several batches of every profile."""
    return plan_of(25_000, 1, "big")


@pytest.mark.parametrize("profile", sorted(EXPECTED))
def test_a_profile_sets_what_run_does(
    profile: str,
    one_big_partition: Path,
    db: DB,
    tdb: DB,
    target_server: LocalServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    planned = one_big_partition
    listener = next(it := listen(target_server.port))
    try:
        code = main(["run", "--profile", profile, "-j", "1"])
    finally:
        next(it, None)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    settings = orjson.loads((planned / "state.json").read_bytes())["settings"]
    assert settings["jobs"] == 1  # the flag beats the profile
    for key, value in EXPECTED[profile].items():
        assert settings[key] == value, key
    wanted = EXPECTED[profile]
    sizes = [n for n, _wc in listener.inserts]
    assert sum(sizes) == 25_000
    # Reads of ~2 MB may cut a batch short; data-ingest's are still above the default 1,000.
    assert max(sizes) <= wanted["batch_size"]
    assert max(sizes) == wanted["batch_size"] if profile != "data-ingest" else max(sizes) > 1000
    # The last batch of a partition is acknowledged; the others use the profile's concern.
    assert [wc for _n, wc in listener.inserts[:-1]] == [W[wanted["write_concern"]]] * (
        len(sizes) - 1
    )
    assert listener.inserts[-1][1] == W["1"]
    if profile == "dev":
        assert max(sizes) == 100
        # verbose: every setting and where it came from, before the run starts
        assert re.search(r"^  batch_size\s+100\s+profile 'dev'$", err, re.M)
        assert re.search(r"^  jobs\s+1\s+flag --jobs$", err, re.M)
    else:
        assert "settings of `vida-loader run`" not in err


def test_a_profile_sets_the_workers_of_run(
    planned: Path, db: DB, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--profile", "data-migration"])
    out, err = capsys.readouterr()
    assert code == 0, err
    settings = orjson.loads((planned / "state.json").read_bytes())["settings"]
    assert settings["jobs"] == available_cores()
    assert f"workers     {available_cores()} " in out
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


@pytest.mark.parametrize("profile", sorted(EXPECTED))
def test_a_profile_sets_what_generate_does(
    profile: str,
    target_server: LocalServer,
    tdb: DB,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    legacy_generate_target(monkeypatch, target_server, tdb.name, "orders")
    monkeypatch.setenv("FRAMEWORK_PROFILE", profile)
    total = 40_000 if profile == "data-ingest" else 12_000  # a slice holds 10,000
    listener = next(it := listen(target_server.port))
    try:
        code = main(["generate", "--total", str(total), "--seed", "3", "-j", "1"])
    finally:
        next(it, None)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert tdb.orders.count_documents({}) == total
    wanted = EXPECTED[profile]
    sizes = [n for n, _wc in listener.inserts]
    assert sum(sizes) == total and max(sizes) == wanted["batch_size"], sizes
    # A slice's last batch is acknowledged; the others go with the profile's write concern.
    concerns = [wc for _n, wc in listener.inserts]
    assert W[wanted["write_concern"]] in concerns
    assert all(wc in (W[wanted["write_concern"]], W["1"]) for wc in concerns)
    assert f"write concern {wanted['write_concern']}" in out
    assert f"up to {wanted['batch_size']:,} documents" in out


def test_a_profile_sets_the_processes_of_generate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "x.bson"
    code = main(["generate", "--profile", "dev", "--total", "3000", "--out", str(out_file)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert " 1 process" in out  # dev: one in-process worker
    code = main(["generate", "--profile", "data-ingest", "--total", "3000", "--out", str(out_file)])
    out, err = capsys.readouterr()
    assert code == 0, err
    cores = available_cores()
    assert f" {cores} process{'es' if cores > 1 else ''}" in out
