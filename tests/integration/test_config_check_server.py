"""`vida-loader config check` against real servers: reachable, unreachable, missing
collection, a driver too new for the server, users without the right to read or write."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pymongo
import pytest
from pymongo import MongoClient
from pymongo.database import Database
from support import legacy_generate_target

from vida_loader.cli import main
from vida_loader.dev.server import LocalServer, free_port
from vida_loader.mongo import wire_advice

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
SECRET = "Chk-Very-Secret-9"


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    started = time.monotonic()
    code = main(["config", "check", *args])
    out, err = capsys.readouterr()
    assert time.monotonic() - started < 30
    assert SECRET not in out + err
    return code, out, err


def _endpoints(monkeypatch: pytest.MonkeyPatch, source: str, target: str, db: str) -> None:
    for name, value in {
        "GEN_DB_CONNECTION_STRING": source,
        "GEN_DB_NAME": db,
        "GEN_DB_COLLECTION": "src",
        "MIG_TARGET_DB_CONNECTION_STRING": target,
        "MIG_TARGET_DB_NAME": db,
        "MIG_TARGET_DB_COLLECTION": "dst",
    }.items():
        monkeypatch.setenv(name, value)


def test_a_copy_can_start_between_two_reachable_servers(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many([{"_id": i} for i in range(1234)])
    _endpoints(monkeypatch, server.uri, target_server.uri, db.name)
    code, out, err = _check(capsys)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == f"source  {server.uri}"
    assert any(
        ln.startswith("  ok    server      other: SecantusDB") and "wire version" in ln
        for ln in lines
    )
    assert f"pymongo {pymongo.version} talks wire" in out
    assert f"'{db.name}.src': 1,234 documents" in out
    assert f"may read '{db.name}.src'" in out
    assert f"may write to '{db.name}' (scratch collection written and dropped)" in out
    assert "off (plain TCP across this host only)" in out
    assert lines[-1] == "a copy can start"
    assert tdb.list_collection_names() == []  # the scratch collection is gone


def test_unreachable_missing_and_unwritable_each_fail_the_check(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    closed = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    _endpoints(monkeypatch, server.uri, closed, db.name)
    code, out, err = _check(capsys, "--select-timeout", "1")
    assert code == 1
    assert "FAIL  server      cannot reach it within 1 s" in out
    assert "FAIL  collection  '" + db.name + ".src' does not exist" in out
    assert err.startswith("vida-loader: a copy cannot start: source collection:")
    assert err.count("\n") == 1 and "(and 1 more above)" in err

    db.src.insert_one({"_id": 1})
    # w=0 in the URI must not turn the scratch write into one whose refusal goes unheard.
    _endpoints(monkeypatch, server.uri, target_server.uri + "&w=0", db.name)
    target = MongoClient(target_server.uri)
    try:
        target.admin.command(
            "configureFailPoint",
            "failCommand",
            mode="alwaysOn",
            data={"failCommands": ["insert"], "errorCode": 13},
        )
        code, out, err = _check(capsys)
    finally:
        target.admin.command("configureFailPoint", "failCommand", mode="off")
        target.close()
    assert code == 1
    assert f"FAIL  write       may not write to '{db.name}'" in out
    assert "vida-loader: a copy cannot start: target write: may not write" in err


def test_a_server_too_old_for_this_pymongo_gets_the_range_to_install(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The real server, with this pymongo pretending to need a newer wire version than it
    # speaks: pymongo's own compatibility check refuses it, as it refuses Cosmos DB 3.6.
    monkeypatch.setattr(pymongo.common, "MIN_SUPPORTED_WIRE_VERSION", 99)
    db.src.insert_one({"_id": 1})
    _endpoints(monkeypatch, server.uri, target_server.uri, db.name)
    code, out, err = _check(capsys)
    assert code == 1
    assert "FAIL  driver      the server speaks wire version" in out
    assert "needs at least 99: install an older one beside vida-loader with `pip install" in out
    assert main(["plan", "--job", "old"]) == 3
    assert "needs at least 99" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("wire", "install"),
    [(6, "pymongo>=4.6,<4.11"), (7, "pymongo>=4.6,<4.14"), (8, "pymongo>=4.6,<4.14")],
)
def test_cosmos_wire_versions_get_the_pymongo_that_talks_to_them(wire: int, install: str) -> None:
    message = (
        f"Server at acct.mongo.cosmos.azure.com:10255 reports wire version {wire}, but this "
        "version of PyMongo requires at least 9 (MongoDB 4.4)."
    )
    advice = wire_advice(message)
    assert advice is not None and f"`pip install '{install}'`" in advice
    assert "older than any pymongo 4" in str(wire_advice(message.replace(f"n {wire},", "n 5,")))
    assert wire_advice("connection refused") is None


@pytest.fixture(scope="module")
def auth_server() -> Iterator[LocalServer]:
    """A server requiring authentication, with a reader and a stranger to database d."""
    srv = LocalServer.temporary().start()
    try:
        admin: MongoClient[dict[str, Any]] = MongoClient(srv.uri)
        admin.d.src.insert_many([{"_id": i} for i in range(10)])
        for user, db in (("reader", "d"), ("stranger", "elsewhere")):
            admin.admin.command("createUser", user, pwd=SECRET, roles=[{"role": "read", "db": db}])
        admin.admin.command(
            "createUser", "writer", pwd=SECRET, roles=[{"role": "readWrite", "db": "d"}]
        )
        admin.close()
        srv.stop(keep_data=True)
        srv.auth = True
        srv.start()
        yield srv
    finally:
        srv.stop()


def _as(srv: LocalServer, user: str, password: str = SECRET) -> str:
    return f"mongodb://{user}:{password}@127.0.0.1:{srv.port}/?directConnection=true"


def test_users_without_the_rights_a_copy_needs_are_told_so(
    auth_server: LocalServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A reader may read the source but not write the target.
    _endpoints(monkeypatch, _as(auth_server, "reader"), _as(auth_server, "reader"), "d")
    code, out, err = _check(capsys)
    assert code == 1
    assert "ok    read        may read 'd.src'" in out
    assert "FAIL  write       may not write to 'd'" in out
    assert "reader:***@" in out
    # A user of another database may not even look at the source.
    _endpoints(monkeypatch, _as(auth_server, "stranger"), _as(auth_server, "writer"), "d")
    code, out, err = _check(capsys)
    assert code == 1
    assert "FAIL  collection  may not list the collections of 'd'" in out
    assert "ok    write       may write to 'd'" in out
    # A wrong password is refused, and said so without the password.
    _endpoints(
        monkeypatch, _as(auth_server, "reader", "wrong" + SECRET), _as(auth_server, "writer"), "d"
    )
    code, out, err = _check(capsys)
    assert code == 1
    assert "FAIL  server      refused the credentials" in out
    # Reader on the source, writer on the target: a copy can start.
    _endpoints(monkeypatch, _as(auth_server, "reader"), _as(auth_server, "writer"), "d")
    code, out, err = _check(capsys)
    assert code == 0, out + err
    assert out.splitlines()[-1] == "a copy can start"


def test_generate_checks_only_its_target(
    target_server: LocalServer,
    tdb: DB,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    legacy_generate_target(monkeypatch, target_server, tdb.name, "orders")
    code, out, err = _check(capsys, "--for", "generate")
    assert code == 0, out + err
    assert out.splitlines()[0] == f"target  {target_server.uri}"
    assert "source" not in out
    assert f"'{tdb.name}.orders' does not exist yet" in out
    assert out.splitlines()[-1] == "generate can start"


def test_passwords_from_env_files_reach_no_output_and_no_job_file(
    auth_server: LocalServer, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old framework's .env_local, with real credentials, through every command."""
    env_local = tmp_path / ".env_local"
    env_local.write_text(
        f"GEN_DB_CONNECTION_STRING={_as(auth_server, 'reader')}\n"
        "GEN_DB_NAME=d\nGEN_DB_COLLECTION=src\n"
        f"MIG_TARGET_DB_CONNECTION_STRING={_as(auth_server, 'writer')}\n"
        "MIG_TARGET_DB_NAME=d\nMIG_TARGET_DB_COLLECTION=dst\n"
        "MIG_BATCH_SIZE=3\nFRAMEWORK_PROFILE=dev\n"
        f"VIDA_MANIFEST_DIR={tmp_path / 'parts'}\n"
    )
    common = ["--env-file", str(env_local)]
    outputs = []
    for argv in (
        ["config", *common],
        ["config", "check", *common],
        ["plan", "--job", "secret", *common],
        ["run", *common],
        ["verify", *common],
        ["status", *common],
    ):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 0, (argv, out, err)
        outputs.append(out + err)
    text = "\n".join(outputs)
    assert SECRET not in text
    assert "reader:***@" in text and "writer:***@" in text
    assert "batch_size         3" in text  # verbose (dev profile) showed the legacy value
    files = [p for p in (tmp_path / "parts").rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        assert SECRET.encode() not in data and b"reader" not in data, path
    target: MongoClient[dict[str, Any]] = MongoClient(_as(auth_server, "writer"))
    try:
        assert target.d.dst.count_documents({}) == 10
    finally:
        target.close()
