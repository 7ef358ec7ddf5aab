"""`vida-loader plan` from the command line: the summary, and every bad input in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from vida_loader.cli import main
from vida_loader.dev.server import LocalServer, free_port

pytestmark = pytest.mark.integration
SECRET = "hunter2-Very-Secret"


@pytest.fixture
def src(db: Database[dict[str, Any]]) -> Database[dict[str, Any]]:
    db.orders.insert_many([{"i": i, "pad": "x" * 500} for i in range(1500)])
    return db


@pytest.fixture
def env(
    server: LocalServer,
    src: Database[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """Every plan option through its VIDA_ variable; tests override with flags."""
    for name, value in {
        "VIDA_SOURCE_URI": server.uri,
        "VIDA_SOURCE_DB": src.name,
        "VIDA_SOURCE_COLLECTION": "orders",
        "VIDA_TARGET_URI": server.uri,
        "VIDA_TARGET_DB": src.name + "_copy",
        "VIDA_TARGET_COLLECTION": "orders",
        "VIDA_MANIFEST_DIR": str(tmp_path / "parts"),
    }.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "parts"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_prints_a_summary_and_writes_the_manifest(
    env: Path, src: Database[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "--partitions", "4")
    assert code == 0, err
    job = f"{src.name}.orders"
    assert f"planned job '{job}'" in out
    assert "documents   1,500" in out and "partitions  4 requested" in out
    assert "range mode typed" in out and "_id types   objectId" in out
    assert "each        ~375 docs" in out  # every _id read: an exact, even split
    assert (env / job / "manifest.json").is_file()
    # A second plan of the same job is refused and leaves the manifest as it was.
    before = (env / job / "manifest.json").read_bytes()
    code, _out, err = _run(capsys, "--partitions", "2")
    assert code == 2 and err.count("\n") == 1
    assert f"job '{job}' is already planned" in err and "--replan" in err
    assert (env / job / "manifest.json").read_bytes() == before
    code, out, _err = _run(capsys, "--partitions", "2", "--replan")
    assert code == 0 and "partitions  2 requested" in out


def test_empty_collection_is_one_partition_and_said(
    env: Path, src: Database[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    src.create_collection("empty")
    code, out, _err = _run(capsys, "--source-collection", "empty", "--job", "e")
    assert code == 0
    assert "partitions  1 " in out and "the source collection is empty" in out


@pytest.mark.parametrize(
    "args, code, words",
    [
        (
            ["--source-uri", f"http://me:{SECRET}@localhost:27017"],
            2,
            "--source-uri 'http:…' is not a MongoDB URI",
        ),
        (
            ["--target-uri", f"mongodb://me:{SECRET}@localhost:notaport"],
            2,
            "--target-uri 'mongodb://me:***@localhost:notaport' is not a valid MongoDB URI",
        ),
        (["--source-db", "no_such_db"], 2, "source database 'no_such_db' does not exist"),
        (["--source-collection", "nope"], 2, "collection '{db}.nope' does not exist"),
        (
            ["--partitions", "0"],
            2,
            "--partitions '0' is not a valid value: accepted is a whole number at least 1",
        ),
        (["--partitions", "3", "--partition-size-mb", "8"], 2, "exclude each other"),
        (["--range-mode", "diagonal"], 2, "'diagonal' is not one of"),
        (["--job", "../escape"], 2, "--job '../escape' is not a usable job name"),
        (["--bogus"], 2, "No such option '--bogus'"),
        (["--target-db", "a/b"], 2, "--target-db 'a/b' cannot be a database name: it holds '/'"),
        (["--target-db", "x" * 64], 2, "is 64 bytes long: database names are at most 63"),
        (["--target-collection", "a$b"], 2, "--target-collection 'a$b' cannot be a collection"),
        (["--target-collection", "system.x"], 2, "names a system collection"),
        (["--target-collection", "c" * 250], 2, "bytes long: at most 255 are allowed"),
        (["--ttl-field", "at"], 2, "--ttl-field 'at' has nothing to move: the source has no"),
        (["--ttl-field", "$at"], 2, "--ttl-field '$at' is not a field path"),
        (["--ttl-field", "a..b"], 2, "--ttl-field 'a..b' is not a field path"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    env: Path,
    src: Database[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    words: str,
) -> None:
    got, out, err = _run(capsys, *args)
    assert got == code
    assert err.count("\n") == 1 and err.startswith("vida-loader: error: "), err
    assert words.format(db=src.name) in err
    assert "Traceback" not in err + out and SECRET not in err + out
    assert not env.exists() or not any(env.iterdir())


def test_missing_source_uri_names_flag_and_variable(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIDA_SOURCE_URI")
    code, _out, err = _run(capsys)
    assert code == 2 and "--source-uri is required" in err and "VIDA_" in err


def test_unreachable_host_fails_fast_with_exit_3(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = f"mongodb://loader:{SECRET}@127.0.0.1:{free_port()}/?directConnection=true"
    started = time.monotonic()
    code, out, err = _run(capsys, "--target-uri", dead)
    assert time.monotonic() - started < 15
    assert code == 3 and err.count("\n") == 1
    assert "cannot reach target at 'mongodb://loader:***@127.0.0.1:" in err
    assert SECRET not in err + out
    assert not env.exists() or not any(env.iterdir())


def test_credentials_work_but_never_reach_output_or_files(
    env: Path,
    server: LocalServer,
    src: Database[dict[str, Any]],
    client: MongoClient[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    client.admin.command("createUser", "loader", pwd=SECRET, roles=["root"])
    try:
        uri = f"mongodb://loader:{SECRET}@127.0.0.1:{server.port}/?directConnection=true"
        code, out, err = _run(capsys, "--source-uri", uri, "--target-uri", uri, "--job", "cred")
        assert code == 0, err
        manifest = (env / "cred" / "manifest.json").read_text()
        assert SECRET not in out + err + manifest and "loader" not in manifest
        assert f'"uri": "mongodb://127.0.0.1:{server.port}/?directConnection=true"' in manifest
        bad = uri.replace(SECRET, SECRET + "x")
        code, out, err = _run(capsys, "--source-uri", bad, "--job", "cred2")
        assert code == 3 and "refused the credentials" in err
        assert SECRET not in out + err
    finally:
        client.admin.command("dropUser", "loader")


def test_debug_shows_the_traceback(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception, match="does not exist"):
        main(["--debug", "plan", "--source-db", "no_such_db"])
    monkeypatch.setenv("VIDA_DEBUG", "1")
    with pytest.raises(Exception, match="does not exist"):
        main(["plan", "--source-db", "no_such_db"])


def test_installed_command_runs_as_a_subprocess(env: Path) -> None:
    exe = Path(sys.executable).with_name("vida-loader")
    proc = subprocess.run(
        [str(exe), "plan", "--partitions", "3", "--job", "sub"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr
    assert "planned job 'sub'" in proc.stdout
    assert "plan: sampling" in proc.stderr  # progress goes to stderr, the summary to stdout


def test_a_cosmos_ts_ttl_is_skipped_or_moved_to_the_ttl_field(
    env: Path, src: Database[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    src.orders.update_many({}, {"$currentDate": {"closed": True}})
    src.orders.create_index("_ts", expireAfterSeconds=3600)  # no document has _ts
    code, out, err = _run(capsys, "--job", "skip")
    assert code == 0, err
    assert "indexes     0 to build, 1 skipped besides _id" in out
    assert "skipped _ts_1 {_ts: 1} ttl 3600 s" in out and "give --ttl-field FIELD" in out
    code, _out, err = _run(capsys, "--job", "none", "--ttl-field", "nosuch")
    assert code == 2 and err.count("\n") == 1
    assert "--ttl-field 'nosuch' names no field of the source: none of 1,000 sampled" in err
    assert not (env / "none").exists()
    code, out, err = _run(capsys, "--job", "moved", "--ttl-field", "closed")
    assert code == 0, err
    assert "adapted _ts_1 {_ts: 1} ttl 3600 s -> closed_1 {closed: 1} ttl 3600 s" in out
    assert "TTL moved from '_ts'" in out and "have no date" not in out
