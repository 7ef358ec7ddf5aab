"""Transforms through the CLI: a killed run resumed, rejects read back, the job's
transform guarded, verify on a transformed copy, --max-rejects, loading errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import bson
import orjson
import pytest
from pymongo.database import Database
from support import (
    MIGRATE,
    migrated_raw,
    plan_by_env,
    raw_by_id,
    start_slow_run,
    transform_source,
    wait_for,
)

from vida_loader.cli import main
from vida_loader.dev.server import LocalServer

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
N = 1500


def source_docs(n: int = N) -> list[dict[str, Any]]:
    return transform_source(n, pad=200)


def rejected_ids(n: int = N) -> list[int]:
    return [i for i in range(n) if i % 11 == 0 and i % 7]


@pytest.fixture
def job(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """N documents planned in 3 partitions, MIGRATE in tmp_path/migrate.py; the job folder."""
    db.src.insert_many(source_docs())
    (tmp_path / "migrate.py").write_text(MIGRATE)
    folder = plan_by_env(monkeypatch, server, target_server, db, tmp_path, "t", 3)
    capsys.readouterr()
    return folder


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.timeout(300)
def test_kill_9_mid_run_then_resume_gives_each_document_once(
    job: Path,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VIDA_TRANSFORM", str(tmp_path / "migrate.py"))
    proc = start_slow_run(tdb, 200, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: tdb.dst.estimated_document_count() >= 300, 60, "300 documents written")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    assert 0 < tdb.dst.count_documents({}) < len(migrated_raw(source_docs()))

    code, out, err = cli(capsys, "run", "-j", "2")
    assert code == 0, err
    resumed = re.search(r"skipped, (\d+) continued from the target's last _id", out)
    assert resumed is not None and int(resumed[1]) >= 1
    assert raw_by_id(tdb.dst) == migrated_raw(source_docs())
    dropped = sum(1 for i in range(N) if i % 7 == 0)
    assert f"{dropped:,} documents dropped, {len(rejected_ids()):,} rejected" in out
    lines = [orjson.loads(x) for x in (job / "rejects.jsonl").read_bytes().splitlines()]
    assert sorted(x["_id"]["$numberInt"] for x in lines) == sorted(map(str, rejected_ids()))
    with (job / "rejects.bson").open("rb") as f:
        rejects = list(bson.decode_file_iter(f))
    by_id = {d["_id"]: d for d in source_docs()}
    assert sorted(d["_id"] for d in rejects) == rejected_ids()
    assert all(d == by_id[d["_id"]] for d in rejects)  # the source documents, as read
    assert all(x["reason"] == f"i {int(x['_id']['$numberInt'])} is a multiple of 11" for x in lines)

    code, out, _err = cli(capsys, "verify")
    assert (
        code == 0 and "transformed by migrate.py:Migrate" in out and "all 3 partitions match" in out
    )
    tdb.dst.delete_one({"_id": 1})
    code, out, _err = cli(capsys, "verify")
    assert code == 1 and "MISMATCH p00000" in out and "dropped" in out
    code, out, _err = cli(capsys, "status")
    assert f"{dropped:,} documents dropped, {len(rejected_ids()):,} rejected" in out


def test_the_jobs_transform_is_guarded(
    job: Path, tdb: DB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "migrate.py"
    code, _out, err = cli(capsys, "run", "-j", "1", "--strategy", str(path))
    assert code == 0, err
    path.write_text(MIGRATE.replace("% 11 == 0", "% 13 == 0"))
    code, _out, err = cli(capsys, "run", "-j", "1", "--transform", str(path))
    assert code == 3
    assert "was started with another transform (transform file migrate.py changed" in err
    code, _out, err = cli(capsys, "run", "-j", "1")
    assert code == 3 and f"give --transform {path}:Migrate again, or pass --restart" in err
    code, _out, err = cli(
        capsys, "run", "-j", "1", "--transform", str(path), "--restart", "--drop-target"
    )
    assert code == 0, err
    assert tdb.dst.count_documents({"i": 11}) == 1


def test_more_rejects_than_allowed_stop_the_run(
    job: Path, tdb: DB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        capsys, "run", "-j", "1", "--transform", str(tmp_path / "migrate.py"), "--max-rejects", "5"
    )
    assert code == 1
    assert "more than --max-rejects 5: the run stopped starting partitions (1 of 3" in err
    assert "raise --max-rejects and continue with: vida-loader run" in err
    assert "--max-rejects 5" in err.splitlines()[-1]
    assert "not started: more than --max-rejects 5 documents were rejected" in out


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, "--transform '{path}': no such Python file"),
        ("class T:\n    def transform(self, doc)\n", "{path}:2: syntax error"),
        ("class T:\n    def validate(self):\n        pass\n", "must take one document"),
        ("class T:\n    filter = {'$bogus': 1}\n", "the source refuses the filter/projection"),
    ],
)
def test_a_bad_transform_is_one_line_and_nothing_is_written(
    job: Path,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str | None,
    words: str,
) -> None:
    path = tmp_path / "bad.py"
    if text is not None:
        path.write_text(text)
    code, _out, err = cli(capsys, "run", "-j", "1", "--transform", str(path))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words.format(path=path) in err
    assert "Traceback" not in err
    assert not (job / "state.json").exists() and tdb.dst.count_documents({}) == 0


def test_strategy_and_transform_naming_two_files_is_refused(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = cli(capsys, "run", "--transform", "a.py", "--strategy", "b.py")
    assert code == 2 and "name two transforms: give one" in err
