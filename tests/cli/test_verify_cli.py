"""`vida-loader verify`: per-partition counts on both sides; exit 0 only when all match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from vida_loader.cli import main

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def copied(planned: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["run", "-j", "1"]) == 0
    capsys.readouterr()
    return planned


@pytest.mark.parametrize("jobs", ["1", "3"])
def test_verify_passes_after_a_run(
    copied: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    code, out, err = _verify(capsys, "-j", jobs)
    assert code == 0, err
    assert "3 partitions, 3,000 documents in the source, 3,000 in the target" in out
    assert "all 3 partitions match" in out
    assert "verify: 3/3 partitions counted" in err


def test_verify_names_the_partition_that_lost_a_document(
    copied: Path, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    tdb.dst.delete_one({"_id": 1500})
    tdb.dst.insert_one({"_id": 10**6})
    code, out, err = _verify(capsys)
    assert code == 1
    assert "MISMATCH p00001: source 1,000, target 999 (1 missing)" in out
    assert "MISMATCH p00002: source 1,000, target 1,001 (1 extra)" in out
    assert "p00000" not in out
    assert err.splitlines()[-1] == "vida-loader: 2 of 3 partitions do not match: p00001, p00002"


def test_verify_before_any_run_fails_every_partition(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _err = _verify(capsys)
    assert code == 1
    assert out.count("MISMATCH") == 3 and "(1,000 missing)" in out


def test_verify_of_an_unplanned_job_exits_3(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _verify(capsys, "--job", "other")
    assert code == 3 and out == ""
    assert err.count("\n") == 1 and "run `vida-loader plan` first" in err
