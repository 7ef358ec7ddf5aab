"""Every bad input to run, verify and status: one line on stderr naming it, the right
exit code, no traceback, no password anywhere, and no other file touched."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import OperationFailure
from support import fail_inserts

from vida_loader.cli import main
from vida_loader.dev.server import LocalServer

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
SECRET = "hunter2-Very-Secret"


def _edit(path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    doc = orjson.loads(path.read_bytes())
    change(doc)
    path.write_bytes(orjson.dumps(doc))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-50])


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# (name, commands it applies to, how to break things, extra args, exit code, words)
CASES: list[tuple[str, tuple[str, ...], Callable[[Path, DB], Any], list[str], int, str]] = [
    (
        "unknown job",
        ("run", "verify", "status"),
        lambda j, db: None,
        ["--job", "nope"],
        3,
        "no manifest at '",
    ),
    (
        "bad job name",
        ("run", "verify", "status"),
        lambda j, db: None,
        ["--job", "../x"],
        2,
        "--job '../x' is not a usable job name",
    ),
    (
        "truncated manifest",
        ("run", "verify", "status"),
        lambda j, db: _truncate(j / "manifest.json"),
        [],
        3,
        "manifest '",
    ),
    (
        "newer manifest schema",
        ("run", "verify", "status"),
        lambda j, db: _edit(j / "manifest.json", lambda d: d.update(schema_version=2)),
        [],
        3,
        "schema_version 2, this vida-loader reads 1",
    ),
    (
        "hand-edited partitions",
        ("run", "verify", "status"),
        lambda j, db: _edit(j / "manifest.json", lambda d: d["partitions"].pop()),
        [],
        3,
        "fingerprint does not match its content (edited by hand?)",
    ),
    (
        "torn run state",
        ("run", "status"),
        lambda j, db: (main(["run", "-j", "1"]), _truncate(j / "state.json")),
        [],
        3,
        "run state '",
    ),
    (
        "hand-edited run state",
        ("run",),
        lambda j, db: (
            main(["run", "-j", "1"]),
            _edit(j / "state.json", lambda d: d["tasks"].pop("p00001")),
        ),
        [],
        3,
        "does not list the manifest's partitions (p00001 differ; edited by hand?)",
    ),
    (
        "-j 0",
        ("run", "verify"),
        lambda j, db: None,
        ["-j", "0"],
        2,
        "--jobs '0' is not a valid value",
    ),
    (
        "wrong URI scheme",
        ("run", "verify"),
        lambda j, db: None,
        ["--source-uri", f"http://me:{SECRET}@localhost/"],
        2,
        "--source-uri 'http:…' is not a MongoDB URI",
    ),
    (
        "other hosts",
        ("run", "verify"),
        lambda j, db: None,
        ["--target-uri", f"mongodb://me:{SECRET}@elsewhere.example/"],
        3,
        "--target-uri 'mongodb://me:***@elsewhere.example/' names elsewhere.example:27017",
    ),
    ("missing collection", ("run", "verify"), lambda j, db: db.src.drop(), [], 3, "src"),
]


@pytest.mark.parametrize(
    ("command", "case"),
    [(cmd, case) for case in CASES for cmd in case[1]],
    ids=[f"{cmd}-{case[0]}" for case in CASES for cmd in case[1]],
)
def test_bad_input_is_one_clear_line(
    planned: Path, db: DB, capsys: pytest.CaptureFixture[str], command: str, case: Any
) -> None:
    _name, _cmds, spoil, args, code, words = case
    other = planned.parent / "other"
    shutil.copytree(planned, other)
    spoil(planned, db)
    capsys.readouterr()
    before = _files(planned)
    others = _files(other)
    started = time.monotonic()
    got = main([command, *args])
    out, err = capsys.readouterr()
    assert time.monotonic() - started < 15
    assert got == code, err
    assert err.count("\n") == 1 and words in err, err
    assert "Traceback" not in out + err and SECRET not in out + err
    if command != "status":
        assert out == ""
    assert _files(planned) == before  # nothing half-written
    assert _files(other) == others


def test_a_target_that_refuses_writes_fails_the_run_in_one_line(
    planned: Path, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_inserts(tdb, "alwaysOn", errorCode=13)  # Unauthorized
    started = time.monotonic()
    code = main(["run", "-j", "1"])
    out, err = capsys.readouterr()
    assert time.monotonic() - started < 15
    assert code == 1
    last = err.splitlines()[-1]
    assert last.startswith("vida-loader: 3 of 3 partitions failed (p0000")
    assert "code 13" in last and "then continue with: vida-loader run --job j" in last
    assert "Traceback" not in out + err
    assert out.count("FAILED p0000") == 3
    state = orjson.loads((planned / "state.json").read_bytes())
    assert {p["state"] for p in state["tasks"].values()} == {"failed"}


def test_credentials_never_reach_output_or_job_files(
    planned: Path,
    server: LocalServer,
    target_server: LocalServer,
    tdb: DB,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admins = [MongoClient(srv.uri) for srv in (server, target_server)]
    for admin in admins:
        admin.admin.command("createUser", "loader", pwd=SECRET, roles=["root"])
    try:
        uris = [
            f"mongodb://loader:{SECRET}@127.0.0.1:{srv.port}/?directConnection=true"
            for srv in (server, target_server)
        ]
        args = ["--source-uri", uris[0], "--target-uri", uris[1]]
        fail_inserts(tdb, {"times": 1}, errorCode=13)
        code = main(["run", "-j", "1", "--write-concern", "1", "--attempts", "1", *args])
        out, err = capsys.readouterr()
        assert code == 1  # one partition refused: the run ends with the continue command
        assert "(with --source-uri and --target-uri and credentials again)" in err
        assert main(["run", "-j", "1", *args]) == 0
        assert main(["status"]) == 0
        more_out, more_err = capsys.readouterr()
        files = b"".join(p.read_bytes() for p in planned.parent.rglob("*") if p.is_file())
        assert SECRET not in out + err + more_out + more_err
        assert SECRET.encode() not in files and b"loader" not in files
    finally:
        for admin in admins:
            admin.admin.command("dropUser", "loader")
            admin.close()


def test_a_database_error_no_command_words_is_still_one_line_exit_3_without_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The last net under every command: a pymongo error that reaches the CLI."""

    def refused(*_args: Any, **_kw: Any) -> Any:
        raise OperationFailure(f"bad auth for user:{SECRET}", 16500, {"errmsg": f"no {SECRET}"})

    monkeypatch.setattr("vida_loader.verify.counts.verify_job", refused)  # as cli imports it
    uri = f"mongodb://user:{SECRET}@127.0.0.1:9/"
    code = main(["verify", "--job", "j", "--manifest-dir", str(tmp_path), "--source-uri", uri])
    out = capsys.readouterr()
    assert code == 3
    assert out.err.splitlines() == [
        "vida-loader: error: a database call failed: no *** (code 16500)"
    ]
    assert SECRET not in out.out + out.err
