"""Test data shared by the test modules: _id generators and raw-byte comparison."""

from __future__ import annotations

import datetime
import hashlib
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bson
import orjson
from bson import (
    SON,
    Binary,
    Code,
    DBRef,
    Decimal128,
    Int64,
    MaxKey,
    MinKey,
    ObjectId,
    Regex,
    Timestamp,
)
from bson.raw_bson import RawBSONDocument
from pymongo import monitoring
from pymongo.collation import Collation
from pymongo.collection import Collection

from vida_loader.cli import main
from vida_loader.config import PlanConfig, RunConfig
from vida_loader.copy import planner
from vida_loader.copy.coordinator import RunResult, run_job
from vida_loader.copy.progress import RunProgress
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint
from vida_loader.job.manifest import Manifest
from vida_loader.pipeline import confirm, reader
from vida_loader.pipeline.clients import close_clients

PAD = "x" * 200


def objectids(n: int, rng: random.Random) -> list[Any]:
    return [ObjectId(rng.randbytes(12)) for _ in range(n)]


def ints(n: int, rng: random.Random) -> list[Any]:
    return rng.sample(range(-(10**6), 10**6), n)


def strings(n: int, rng: random.Random) -> list[Any]:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_é€"
    return list({"".join(rng.choices(alphabet, k=rng.randint(1, 12))) for _ in range(n)})


def mixed_ids(n: int, rng: random.Random) -> list[Any]:
    per = n // 8
    values: list[Any] = [
        MinKey(),
        MaxKey(),
        None,
        float("nan"),
        True,
        False,
        Timestamp(1700000000, 1),
        Timestamp(1700000000, 2),
        {"k": 1},
        {"k": "a", "z": 2},
        Decimal128("-1.5"),
        Int64(2**40),
    ]
    values += objectids(per, rng) + strings(per, rng)
    values += [rng.randint(-(10**9), 10**9) for _ in range(per)]
    values += [rng.uniform(-1e6, 1e6) for _ in range(per)]
    values += [
        datetime.datetime(2000, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 10**9))
        for _ in range(per)
    ]
    values += [Binary(uuid.UUID(int=rng.getrandbits(128)).bytes, 4) for _ in range(per)]
    # Binary _ids here are UUIDs only (one length, one subtype). SecantusDB deviates from
    # MongoDB for other binaries: its unique index and sort ignore the subtype, and its
    # $lt/$gt compare bytes without the length first. The unit tests pin MongoDB's rule
    # (length, then subtype, then bytes), which Cosmos DB and Atlas follow.
    values += [{"region": rng.choice("NSEW"), "n": i} for i in range(per)]
    return planner.sorted_unique(values)  # unique in the server's sense


def raw_hashes(coll: Collection[Any]) -> Counter[str]:
    """The multiset of SHA-256s of every document's raw BSON: byte-exact comparison."""
    raw = coll.with_options(
        codec_options=coll.codec_options.with_options(document_class=RawBSONDocument)
    )
    return Counter(hashlib.sha256(d.raw).hexdigest() for d in raw.find({}, batch_size=5000))


def every_type_documents() -> list[dict[str, Any]]:
    """Documents holding each BSON type a server stores unchanged, with odd key orders."""
    binaries = [Binary(bytes(range(16)), sub) for sub in (0, 1, 2, 3, 4, 5, 6, 7, 8, 0x80)]
    return [
        {"_id": "types-1", "z": 1, "a": 2, "m": {"y": [1, [2, [3, {"q": None}]]], "b": {}}},
        {"_id": "types-2", "dec": Decimal128("1.2345678901234567890123456789012E+6000")},
        {"_id": "types-3", "dec": [Decimal128("-0"), Decimal128("NaN"), Decimal128("-Infinity")]},
        {"_id": "types-4", "bins": binaries, "uuid": Binary(uuid.UUID(int=7).bytes, 4)},
        {"_id": "types-5", "re": Regex("^a.*b$", "imsx"), "re2": re.compile("x+", re.I)},
        {"_id": "types-6", "code": Code("function(){return 1}"), "scoped": Code("f(x)", {"x": 1})},
        {"_id": "types-7", "ts": Timestamp(1700000000, 17), "ts0": Timestamp(0, 0)},
        {
            "_id": "types-8",
            "old": datetime.datetime(1901, 12, 13, 20, 45, 52),
            "neg": datetime.datetime(1969, 12, 31, 23, 59, 59, 999000),
            "new": datetime.datetime(2262, 4, 11, 23, 47, 16),
        },
        {
            "_id": "types-9",
            "i32": 2**31 - 1,
            "i64": Int64(-(2**63)),
            "d": -0.0,
            "inf": float("inf"),
        },
        {"_id": "types-10", "nan": float("nan"), "min": MinKey(), "max": MaxKey(), "t": True},
        {"_id": "types-11", "ref": DBRef("c", ObjectId(b"0123456789ab"), "db"), "oid": ObjectId()},
        {"_id": "types-12", "son": SON([("b", 1), ("a", 2), ("c", SON([("z", 1), ("y", 2)]))])},
        {"_id": "types-13", "utf8": "h\u00e9llo \u20ac \U0001f600", "empty": "", "nul": "a\u0000b"},
    ]


def fail_inserts(db: Any, mode: Any, **data: Any) -> None:
    """``failCommand`` on the inserts of ``db``'s server (test commands enabled)."""
    fail_commands(db, ["insert"], mode, **data)


def fail_commands(db: Any, commands: list[str], mode: Any, **data: Any) -> None:
    """``failCommand`` on ``commands`` sent to ``db``'s server by vida-loader's clients
    (the test's own client, named otherwise, is left alone)."""
    db.client.admin.command(
        "configureFailPoint",
        "failCommand",
        mode=mode,
        data={"failCommands": commands, "appName": "vida-loader", **data},
    )


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def running(state_file: Path) -> bool:
    try:
        doc = orjson.loads(state_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return False
    return any(p["state"] == "running" for p in doc["tasks"].values())


def start_slow_run(tdb: Any, block_ms: int, **popen: Any) -> subprocess.Popen[Any]:
    """`run -j 2` in its own process group, each insert held ``block_ms`` on the target
    so that whatever the test does lands mid-copy."""
    fail_inserts(tdb, "alwaysOn", blockConnection=True, blockTimeMS=block_ms)
    cmd = [sys.executable, "-m", "vida_loader", "run", "-j", "2", "--batch-size", "100"]
    return subprocess.Popen(cmd, start_new_session=True, **popen)


def plan_in(
    server: LocalServer, target: LocalServer, db: Any, tmp_path: Path, **kw: Any
) -> Manifest:
    """Plan job "j" from ``db.src`` on ``server`` to ``db.dst`` on ``target``."""
    cfg = PlanConfig(
        source=Endpoint(server.uri, db.name, "src"),
        target=Endpoint(target.uri, db.name, "dst"),
        job="j",
        manifest_dir=tmp_path,
        **kw,
    )
    return planner.plan_job(cfg).manifest


def run_in(
    tmp_path: Path,
    *,
    tick: float = 0.5,
    on_progress: Callable[[RunProgress], None] | None = None,
    **kw: Any,
) -> RunResult:
    """Run job "j" planned by ``plan_in``; ``kw`` are ``RunConfig`` fields."""
    return run_job(RunConfig(job="j", manifest_dir=tmp_path, **kw), on_progress, tick=tick)


def plan_by_env(
    monkeypatch: Any,
    server: LocalServer,
    target: LocalServer,
    db: Any,
    tmp_path: Path,
    job: str,
    partitions: int,
) -> Path:
    """Point every VIDA_* variable at ``db.src`` -> ``db.dst`` and job ``job``, plan it
    through the CLI; the job folder."""
    for name, value in {
        "VIDA_SOURCE_URI": server.uri,
        "VIDA_SOURCE_DB": db.name,
        "VIDA_SOURCE_COLLECTION": "src",
        "VIDA_TARGET_URI": target.uri,
        "VIDA_TARGET_DB": db.name,
        "VIDA_TARGET_COLLECTION": "dst",
        "VIDA_MANIFEST_DIR": str(tmp_path / "parts"),
        "VIDA_JOB": job,
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["plan", "--partitions", str(partitions)]) == 0
    return tmp_path / "parts" / job


class ShardedTwin:
    """A stand-in for a sharded Cosmos DB source holding ``_id`` 450 under two shard keys.

    No MongoDB-API server here can hold one ``_id`` twice (the ``_id`` index cannot be
    dropped, SecantusDB refuses it too), so the source's reads (the copy cursor, the
    ``_id`` scan of a repair and its ``$in`` lookups) return the twin beside the real
    document, as such a source would.
    """

    TWIN = RawBSONDocument(bson.encode({"_id": 450, "sk": "B", "pad": PAD}))

    def __init__(self, monkeypatch: Any, in_scans: bool = True) -> None:
        self.read, self.ids = reader.read_raw, confirm._raw_ids
        self.by_ids = confirm.find_raw_by_ids
        monkeypatch.setattr(reader, "read_raw", self._read_raw)
        if in_scans:
            monkeypatch.setattr(confirm, "_raw_ids", self._raw_ids)
            monkeypatch.setattr(confirm, "find_raw_by_ids", self._find_raw_by_ids)

    def _with_twin(self, docs: Any, coll: Any) -> Any:
        for doc in docs:
            yield doc
            if coll.name == "src" and doc["_id"] == 450:
                yield self.TWIN

    def _read_raw(self, part: Any, src: Any, batch_size: int, *shape: Any) -> Any:
        return self._with_twin(self.read(part, src, batch_size, *shape), src)

    def _raw_ids(self, part: Any, coll: Any, *where: Any) -> dict[bytes, int]:
        ids = self.ids(part, coll, *where)
        key = bson.encode({"_id": 450})
        if coll.name == "src" and key in ids:
            ids[key] += 1
        return ids

    def _find_raw_by_ids(self, coll: Any, raw_ids: list[bytes], batch_size: int, *p: Any) -> Any:
        return self._with_twin(self.by_ids(coll, raw_ids, batch_size, *p), coll)


class Commands(monitoring.CommandListener):
    """Names of the commands sent to one server port while listening."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.names: list[str] = []
        self.finds: list[Any] = []  # the filter of each find
        self.inserts: list[tuple[int, Any]] = []  # (documents, writeConcern) of each insert

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.connection_id[1] == self.port:
            self.names.append(event.command_name)
            if event.command_name == "find":
                self.finds.append(event.command.get("filter"))
            if event.command_name == "insert":
                docs = event.command.get("documents", [])
                self.inserts.append((len(docs), event.command.get("writeConcern")))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def listen(port: int) -> Iterator[Commands]:
    # Listeners apply to clients created afterwards: drop the workers' cached clients.
    close_clients()
    listener = Commands(port)
    monitoring.register(listener)
    yield listener
    close_clients()
    listener.port = -1  # pymongo cannot unregister a listener: silence it instead


def legacy_generate_target(monkeypatch: Any, server: LocalServer, db: str, coll: str) -> None:
    """Point generate at ``db.coll`` on ``server`` by the old framework's GEN_DB_* names."""
    monkeypatch.setenv("GEN_DB_CONNECTION_STRING", server.uri)
    monkeypatch.setenv("GEN_DB_NAME", db)
    monkeypatch.setenv("GEN_DB_COLLECTION", coll)


def indexed_documents(n: int = 600) -> list[dict[str, Any]]:
    day = datetime.datetime(2026, 1, 1)
    return [
        {
            "_id": i,
            "a": i,
            "b": i % 37,
            "s": ["x", "y", None][i % 3] if i % 5 else None,
            "at": day + datetime.timedelta(minutes=i),
            "loc": {"type": "Point", "coordinates": [i % 90, (i * 7) % 45]},
            "k": i,
        }
        for i in range(n)
    ]


def make_indexes(db: Any) -> None:
    """On ``db.src``: one index per option the test server has (it has no text or hashed
    ones); the TTL expires nothing while a test runs."""
    c = db.src
    c.create_index([("a", 1)], unique=True, name="a_unique")
    c.create_index([("a", 1), ("b", -1)])
    c.create_index([("s", 1)], sparse=True)
    c.create_index([("b", 1)], partialFilterExpression={"b": {"$gt": 5}})
    c.create_index([("at", 1)], expireAfterSeconds=10**9)
    c.create_index([("s", -1)], name="s_fr", collation=Collation("fr", strength=2))
    c.create_index([("b", 1), ("a", 1)], hidden=True)
    c.create_index([("loc", "2dsphere")])
    c.create_index([("$**", 1)], wildcardProjection={"a": 1, "b": 1})


# --- a transform and its oracle, shared by the transform tests ---------------------------

MIGRATED_AT = datetime.datetime(2026, 11, 30, 12, 0)
MIGRATE = """
import datetime


class Migrate:
    def transform(self, doc):
        if doc["i"] % 7 == 0:
            return None  # test data: dropped
        doc["customer"] = doc.pop("name")
        del doc["pad"]
        doc["migrated_at"] = datetime.datetime(2026, 11, 30, 12, 0)
        return doc

    def validate(self, doc):
        if doc["i"] % 11 == 0:
            return f"i {doc['i']} is a multiple of 11"
        return None
"""


def transform_source(n: int, pad: int) -> list[dict[str, Any]]:
    """``n`` documents for MIGRATE: ``_id`` and ``i`` 0..n-1, a name, a kind, padding."""
    kinds = ["repair", "install", "inspection"]
    return [
        {"_id": i, "i": i, "name": f"c{i}", "kind": kinds[i % 3], "pad": "x" * pad}
        for i in range(n)
    ]


def migrated_raw(docs: list[dict[str, Any]]) -> dict[Any, bytes]:
    """What MIGRATE makes of ``docs``, by _id (dropped and rejected left out), written
    independently of it."""
    return {
        d["_id"]: bson.encode(
            {
                "_id": d["_id"],
                "i": d["i"],
                "kind": d["kind"],
                "customer": d["name"],
                "migrated_at": MIGRATED_AT,
            }
        )
        for d in docs
        if d["i"] % 7 and d["i"] % 11
    }


def raw_by_id(coll: Collection[Any]) -> dict[Any, bytes]:
    """Every document of ``coll`` as raw bytes, by _id."""
    raw = coll.with_options(
        codec_options=coll.codec_options.with_options(document_class=RawBSONDocument)
    )
    return {bson.decode(d.raw)["_id"]: bytes(d.raw) for d in raw.find({})}


def busy_seconds(stats: dict[str, Any]) -> list[float]:
    """The Cosmos DB stand-in's charge per whole second while a copy ran (first and last
    cut off: they hold the start and the end)."""
    seconds = [ru for _s, ru in stats["seconds"]]
    while seconds and seconds[0] < 50:
        seconds.pop(0)  # the run was starting: processes, preflight
    return seconds[1:-1]
