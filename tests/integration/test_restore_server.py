"""``restore`` against real servers: a dump restores into another server byte for byte
with the same indexes (plain and gzip), a restore killed midway continues to the same
result, a directory laid out by hand the way mongodump writes it restores, and a cut or
corrupt file is refused as the issue asks."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pymongo.database import Database
from support import (
    every_type_documents,
    fail_commands,
    fail_inserts,
    indexed_documents,
    make_indexes,
    plan_in,
    raw_hashes,
    wait_for,
)

from vida_loader.cli import main
from vida_loader.config import DumpConfig, RestoreConfig
from vida_loader.dev.server import LocalServer
from vida_loader.dump.job import dump_job
from vida_loader.dump.restore import restore_job
from vida_loader.jobfiles import DumpFiles, JobFiles

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
N = 3000


def definitions(db: DB, coll: str) -> dict[str, dict[str, Any]]:
    """Index definitions by name, without what describes the server (v, ns)."""
    return {
        ix["name"]: {k: v for k, v in ix.items() if k not in ("v", "ns")}
        for ix in db[coll].list_indexes()
    }


def dumped(
    server: LocalServer, target: LocalServer, db: DB, tmp_path: Path, gzip: bool = False
) -> DumpFiles:
    db.src.insert_many(indexed_documents(N))
    make_indexes(db)
    plan_in(server, target, db, tmp_path, partitions=3)
    out = tmp_path / "out"
    assert dump_job(DumpConfig(job="j", manifest_dir=tmp_path, out=out, gzip=gzip)).complete
    return DumpFiles(out, db.name, "src", gzip)


def restore_args(tmp_path: Path, target: LocalServer, tdb: DB, source: Path) -> list[str]:
    return [
        "restore",
        str(source),
        "--manifest-dir",
        str(tmp_path),
        "--target-uri",
        target.uri,
        "--target-db",
        tdb.name,
        "--target-collection",
        "back",
        "-q",
    ]


@pytest.mark.parametrize("gzip", [False, True])
def test_a_dump_restores_byte_for_byte_with_its_indexes(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path, gzip: bool
) -> None:
    files = dumped(server, target_server, db, tmp_path, gzip)
    args = restore_args(tmp_path, target_server, tdb, files.out)
    assert main([*args, "-j", "2"]) == 0
    assert raw_hashes(tdb.back) == raw_hashes(db.src)
    assert definitions(tdb, "back") == definitions(db, "src")
    assert main([*args, "-j", "2"]) == 0  # a finished restore run again: nothing twice
    assert raw_hashes(tdb.back) == raw_hashes(db.src)


def test_a_killed_restore_continues_to_the_same_result(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    files = dumped(server, target_server, db, tmp_path)
    job = JobFiles(tmp_path, "restore.x")
    args = [*restore_args(tmp_path, target_server, tdb, files.bson), "--job", "restore.x"]
    fail_inserts(tdb, "alwaysOn", blockConnection=True, blockTimeMS=300)
    cmd = [sys.executable, "-m", "vida_loader", *args, "-j", "2", "--batch-size", "100"]
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: tdb.back.estimated_document_count() >= 300, 60, "documents restored")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        fail_inserts(tdb, "off")
    assert 300 <= tdb.back.count_documents({}) < N
    result = restore_job(
        RestoreConfig(
            job="restore.x",
            manifest_dir=tmp_path,
            input=files.bson,
            target_uri=target_server.uri,
            target_db=tdb.name,
            target_collection="back",
            jobs=2,
        )
    )
    assert result.complete and result.total("docs") == N
    assert result.total("already_there") > 0  # written before the kill, found there
    assert raw_hashes(tdb.back) == raw_hashes(db.src)
    assert definitions(tdb, "back") == definitions(db, "src")
    assert job.restore.exists()


def handmade(
    folder: Path, docs: list[dict[str, Any]], indexes: list[dict[str, Any]], coll: str = "orders"
) -> Path:
    """A dump folder the way mongodump lays it out: <db>/<coll>.bson, .metadata.json."""
    (folder / "shop").mkdir(parents=True, exist_ok=True)
    with open(folder / "shop" / f"{coll}.bson", "wb") as f:
        for d in docs:
            f.write(bson.encode(d))
    meta = {
        "options": {},
        "indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}, *indexes],
        "uuid": "0123456789abcdef0123456789abcdef",
        "collectionName": coll,
        "type": "collection",
    }
    text = json_util.dumps(meta, json_options=CANONICAL_JSON_OPTIONS)
    (folder / "shop" / f"{coll}.metadata.json").write_text(text)
    return folder / "shop" / f"{coll}.bson"


def test_a_handmade_mongodump_folder_restores_and_drop_empties_first(
    target_server: LocalServer, tdb: DB, tmp_path: Path
) -> None:
    docs = every_type_documents()
    ix = {"v": 2, "key": {"utf8": 1}, "name": "utf8_1", "sparse": True}
    handmade(tmp_path / "dump", docs, [ix])
    tdb.back.insert_one({"_id": "stale", "left": "by an earlier load"})
    args = restore_args(tmp_path, target_server, tdb, tmp_path / "dump")
    assert main([*args, "--drop"]) == 0
    want = Counter(hashlib.sha256(bson.encode(d)).hexdigest() for d in docs)
    assert raw_hashes(tdb.back) == want  # the stale document went with --drop
    assert definitions(tdb, "back")["utf8_1"] == {
        "key": {"utf8": 1},
        "name": "utf8_1",
        "sparse": True,
    }


def test_a_cut_file_restores_the_whole_documents_and_names_the_offset(
    target_server: LocalServer, tdb: DB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = [{"_id": i, "s": "x" * i} for i in range(50)]
    path = handmade(tmp_path / "dump", docs, [])
    data = path.read_bytes()
    cut_at = len(data) - len(bson.encode(docs[-1]))
    path.write_bytes(data[: cut_at + 7])  # the last document is cut short
    assert main(restore_args(tmp_path, target_server, tdb, path)) == 1
    err = capsys.readouterr().err
    assert f"byte offset {cut_at:,}" in err and "Traceback" not in err
    assert sorted(d["_id"] for d in tdb.back.find()) == list(range(49))


def test_a_corrupt_metadata_file_is_named(
    target_server: LocalServer, tdb: DB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = handmade(tmp_path / "dump", [{"_id": 1}], [])
    meta = path.with_name("orders.metadata.json")
    meta.write_text('{"indexes": [')
    assert main(restore_args(tmp_path, target_server, tdb, path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"metadata file '{meta}' is corrupt" in err[0]
    assert tdb.back.count_documents({}) == 0  # nothing written


def test_a_restore_never_takes_over_a_copy_jobs_folder(
    target_server: LocalServer, tdb: DB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = handmade(tmp_path / "dump", [{"_id": 1}], [])
    JobFiles(tmp_path, "j").folder.mkdir()
    JobFiles(tmp_path, "j").manifest.write_text("{}")
    assert main([*restore_args(tmp_path, target_server, tdb, path), "--job", "j"]) == 2
    assert "job 'j' is a copy planned by `vida-loader plan`" in capsys.readouterr().err
    assert not JobFiles(tmp_path, "j").restore.exists()


def test_a_folder_of_several_collections_restores_each(
    target_server: LocalServer, tdb: DB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handmade(tmp_path / "dump", [{"_id": i, "o": i} for i in range(30)], [])
    ix = {"v": 2, "key": {"name": 1}, "name": "name_1", "unique": True}
    handmade(tmp_path / "dump", [{"_id": i, "name": f"c{i}"} for i in range(20)], [ix], "customers")
    args = restore_args(tmp_path, target_server, tdb, tmp_path / "dump")
    assert main(args) == 2  # --target-collection names one collection of two
    err = capsys.readouterr().err
    assert "--target-collection 'back' names one collection but" in err
    many = [a for a in args if a not in ("--target-collection", "back")]
    assert main([*many, "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["exit_reason"] == "done"
    assert [c["namespace"] for c in obj["collections"]] == [
        f"{tdb.name}.customers",
        f"{tdb.name}.orders",
    ]
    assert tdb.orders.count_documents({}) == 30 and tdb.customers.count_documents({}) == 20
    assert definitions(tdb, "customers")["name_1"]["unique"] is True
    assert JobFiles(tmp_path, "restore.shop.customers").restore.exists()
    status = ["status", "--job", "restore.shop.orders", "--manifest-dir", str(tmp_path)]
    assert main(status) == 2
    assert "job 'restore.shop.orders' is a restore" in capsys.readouterr().err


def test_a_throttling_and_dropping_target_still_gets_every_document_once(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    files = dumped(server, target_server, db, tmp_path)
    fail_inserts(tdb, {"skip": 2, "times": 6}, errorCode=16500)
    cfg = RestoreConfig(
        job="r",
        manifest_dir=tmp_path,
        input=files.bson,
        target_uri=target_server.uri,
        target_db=tdb.name,
        target_collection="back",
        jobs=2,
        batch_size=100,
    )
    result = restore_job(cfg)
    assert result.complete and sum(r.throttled for r in result.state.restores.values()) >= 6
    fail_inserts(tdb, {"skip": 3, "times": 2}, closeConnection=True)
    tdb.back.drop()
    again = restore_job(replace(cfg, restart=True))
    assert again.complete and again.total("docs") == N
    assert raw_hashes(tdb.back) == raw_hashes(db.src)
    assert definitions(tdb, "back") == definitions(db, "src")
    # --drop on a target that throttles the drop itself: waited out, not a failed restore.
    fail_commands(tdb, ["drop"], {"times": 2}, errorCode=16500)
    dropped = restore_job(replace(cfg, restart=True, drop=True))
    assert dropped.complete and dropped.total("docs") == N
    assert raw_hashes(tdb.back) == raw_hashes(db.src)
