"""``dump`` against a real server: mongodump's layout comes out (documents back to back,
read by ``bson.decode_file_iter``; metadata parsed by ``json_util``), gzip too, and a
dump killed midway continues to the same files with no document twice."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import json_util
from bson.raw_bson import RawBSONDocument
from pymongo.database import Database
from support import fail_commands, indexed_documents, make_indexes, plan_in, raw_hashes, wait_for

from vida_loader.cli import main
from vida_loader.config import DumpConfig
from vida_loader.dev.server import LocalServer
from vida_loader.dump.job import dump_job
from vida_loader.dump.layout import load_metadata
from vida_loader.jobfiles import DumpFiles

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
N = 600


def file_hashes(data: bytes) -> Counter[str]:
    """The multiset of SHA-256s of the documents of a .bson file's content."""
    docs = bson.decode_all(data, codec_options=bson.CodecOptions(document_class=RawBSONDocument))
    return Counter(hashlib.sha256(d.raw).hexdigest() for d in docs)


def planned(server: LocalServer, target: LocalServer, db: DB, tmp_path: Path) -> None:
    db.src.insert_many(indexed_documents(N))
    make_indexes(db)
    plan_in(server, target, db, tmp_path, partitions=4)


def test_dump_writes_mongodumps_layout_byte_for_byte(
    server: LocalServer, target_server: LocalServer, db: DB, tmp_path: Path
) -> None:
    planned(server, target_server, db, tmp_path)
    out = tmp_path / "out"
    result = dump_job(DumpConfig(job="j", manifest_dir=tmp_path, out=out, jobs=2))
    files = DumpFiles(out, db.name, "src")
    assert result.complete and result.total("docs") == N
    assert sorted(p.name for p in files.folder.iterdir()) == ["src.bson", "src.metadata.json"]
    data = files.bson.read_bytes()
    assert len(data) == result.file_bytes
    assert file_hashes(data) == raw_hashes(db.src)  # every document, once, byte for byte
    with files.bson.open("rb") as f:
        assert sum(1 for _ in bson.decode_file_iter(f)) == N
    meta = json_util.loads(files.metadata.read_text())
    assert list(meta) == ["options", "indexes", "uuid", "collectionName", "type"] or list(meta) == [
        "options",
        "indexes",
        "collectionName",
        "type",
    ]
    assert meta["collectionName"] == "src" and meta["type"] == "collection"
    on_server = {ix["name"]: ix for ix in db.src.list_indexes()}
    assert {ix["name"] for ix in meta["indexes"]} == set(on_server)
    ix = next(i for i in meta["indexes"] if i["name"] == "a_unique")
    assert ix["unique"] is True and dict(ix["key"]) == {"a": 1}
    assert '"$numberInt"' in files.metadata.read_text()  # canonical Extended JSON
    assert load_metadata(files.metadata)["indexes"] == meta["indexes"]


def test_gzip_dump_reads_back_as_one_stream(
    server: LocalServer, target_server: LocalServer, db: DB, tmp_path: Path
) -> None:
    planned(server, target_server, db, tmp_path)
    out = tmp_path / "out"
    args = ["dump", "--job", "j", "--manifest-dir", str(tmp_path), "--out", str(out), "--gzip"]
    assert main([*args, "-q", "-j", "2"]) == 0
    files = DumpFiles(out, db.name, "src", gzip=True)
    assert file_hashes(gzip.decompress(files.bson.read_bytes())) == raw_hashes(db.src)
    meta = load_metadata(files.metadata)
    assert meta["collectionName"] == "src" and len(meta["indexes"]) == 10
    assert main([*args, "-q"]) == 2  # a finished dump is not replaced silently
    assert main([*args, "-q", "--restart"]) == 0


def done_parts(files: DumpFiles) -> int:
    """Parts the dump's state records as written and whose file is there."""
    try:
        tasks = json.loads(files.state.read_bytes())["tasks"]
    except (FileNotFoundError, ValueError):
        return 0
    return sum(1 for pid, t in tasks.items() if t["state"] == "done" and files.part(pid).exists())


def test_a_killed_dump_continues_without_duplicates(
    server: LocalServer, target_server: LocalServer, db: DB, tmp_path: Path
) -> None:
    planned(server, target_server, db, tmp_path)
    out = tmp_path / "out"
    files = DumpFiles(out, db.name, "src")
    # Each range query waits: the dump is mid-way when it is killed.
    fail_commands(db, ["find"], "alwaysOn", blockConnection=True, blockTimeMS=1500)
    cmd = [sys.executable, "-m", "vida_loader", "dump", "--job", "j", "--manifest-dir"]
    cmd += [str(tmp_path), "--out", str(out), "-j", "2", "-q"]
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: done_parts(files) > 0, 60, "a first part recorded as written")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        fail_commands(db, ["find"], "off")
    assert not files.bson.exists()
    kept = done_parts(files)  # a part renamed into place but not yet recorded is redone
    assert 1 <= kept < 4
    result = dump_job(DumpConfig(job="j", manifest_dir=tmp_path, out=out, jobs=2))
    assert result.complete and result.continued == kept
    assert file_hashes(files.bson.read_bytes()) == raw_hashes(db.src)
    assert not files.work.exists()


def test_unwritable_out_is_one_line(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    planned(server, target_server, db, tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = ["dump", "--job", "j", "--manifest-dir", str(tmp_path), "--out", str(blocker)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--out '{blocker}' is not writable" in err[0]
    assert "Traceback" not in err[0]


def test_a_collection_no_job_planned_is_split_by_the_dump_itself(
    server: LocalServer, db: DB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db.src.insert_many(indexed_documents(N))
    out = tmp_path / "out"
    args = ["dump", "--source-uri", server.uri, "--source-db", db.name]
    args += ["--source-collection", "src", "--out", str(out), "--partitions", "3", "-j", "2"]
    assert main([*args, "--manifest-dir", str(tmp_path / "none"), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["partitions"] == 3 and obj["docs"] == N
    files = DumpFiles(out, db.name, "src")
    assert file_hashes(files.bson.read_bytes()) == raw_hashes(db.src)
    assert not (tmp_path / "none").exists()  # no job was planned for it
    assert main([*args[:-4], "--partition-size-mb", "1", "--job", "x"]) == 2
