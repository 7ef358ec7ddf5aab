"""A transform on the copy path, against real servers: the target holds exactly the
transform applied to the source, document by document, through resumes, unacknowledged
writes and broken cursors; a filter alone keeps the documents raw."""

from __future__ import annotations

import datetime
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import bson
import pytest
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.database import Database
from support import (
    MIGRATE,
    fail_commands,
    migrated_raw,
    raw_by_id,
    raw_hashes,
    transform_source,
)

from vida_loader.copy.task import CopySettings, copy_partition
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint
from vida_loader.errors import UsageError
from vida_loader.generate.service_orders import ServiceOrders
from vida_loader.job.manifest import Partition, RangeMode
from vida_loader.job.runstate import TaskState
from vida_loader.retry import RetryPolicy
from vida_loader.transform.plugin import check_transform_query, load_transform

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
FAST = RetryPolicy(attempts=5, window_s=30, base_ms=1, cap_ms=20)
WHOLE = Partition("p00000", RangeMode.TYPED, "number")
N = 600

KEEP_SOME = """
class KeepSome:
    filter = {"kind": {"$in": ["repair", "install"]}}
    projection = {"pad": 0}
"""


def source_docs(n: int = N) -> list[dict[str, Any]]:
    return transform_source(n, pad=50)


def settings(
    db: DB, tdb: DB, server: LocalServer, target: LocalServer, path: Path, **kw: Any
) -> CopySettings:
    return CopySettings(
        Endpoint(server.uri, db.name, "src"),
        Endpoint(target.uri, tdb.name, "dst"),
        batch_size=50,
        read_batch_size=100,
        retry=FAST,
        transform=load_transform(str(path)).spec,
        keep_rejects=1000,
        **kw,
    )


def transform_file(tmp_path: Path, text: str = MIGRATE) -> Path:
    path = tmp_path / "migrate.py"
    path.write_text(text)
    return path


REFUSED = {i for i in range(N) if i % 7 == 0 or i % 11 == 0}
DROPPED = sum(1 for i in range(N) if i % 7 == 0)


@pytest.mark.parametrize("write_concern", ["1", "0"])
def test_the_target_holds_the_transform_of_the_source(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    write_concern: str,
) -> None:
    docs = source_docs()
    db.src.insert_many(docs)
    s = settings(
        db, tdb, server, target_server, transform_file(tmp_path), write_concern=write_concern
    )
    result = copy_partition(WHOLE, s)
    assert result.state is TaskState.DONE, result.error
    assert raw_by_id(tdb.dst) == migrated_raw(docs)
    rejected = len(REFUSED) - DROPPED
    assert (result.docs, result.source_docs) == (N, N)
    assert (result.dropped, result.rejected) == (DROPPED, rejected)
    assert result.target_docs == N - len(REFUSED)
    assert [bson.decode(r.raw)["_id"] for r in result.rejects] == [
        i for i in range(N) if i % 11 == 0 and i % 7 != 0
    ]
    assert result.rejects[0].reason == "i 11 is a multiple of 11"
    assert bson.decode(result.rejects[0].raw) == docs[11]  # the source document, as read


def test_a_resumed_transformed_range_finds_what_was_refused_before(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    """A killed attempt left the first part written: the resumed attempt writes the rest
    once and accounts for the whole range (the skipped part's refusals too)."""
    docs = source_docs()
    db.src.insert_many(docs)
    want = migrated_raw(docs)
    written_before = [RawBSONDocument(want[i]) for i in range(250) if i in want]
    tdb.dst.insert_many(written_before[:-5] + written_before[-3:])  # a gap: a lost write
    s = settings(db, tdb, server, target_server, transform_file(tmp_path))
    result = copy_partition(WHOLE, s, resume=True)
    assert result.state is TaskState.DONE, result.error
    assert result.resumed and result.repaired == 2
    assert raw_by_id(tdb.dst) == want
    assert (result.source_docs, result.dropped, result.target_docs) == (N, DROPPED, len(want))
    assert result.rejected == len(REFUSED) - DROPPED == len(result.rejects)
    assert len({r.raw for r in result.rejects}) == len(result.rejects)  # each once


def test_a_broken_cursor_transforms_no_document_twice(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    docs = source_docs()
    db.src.insert_many(docs)
    fail_commands(db, ["getMore"], {"skip": 2, "times": 2}, closeConnection=True)
    s = settings(db, tdb, server, target_server, transform_file(tmp_path))
    result = copy_partition(WHOLE, s)
    assert result.state is TaskState.DONE, result.error
    assert result.retries >= 1
    assert raw_by_id(tdb.dst) == migrated_raw(docs)
    assert (result.docs, result.dropped) == (N, DROPPED)


def test_a_filter_alone_keeps_documents_raw(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = source_docs()
    db.src.insert_many(docs)
    decoded = []
    real = bson.decode
    monkeypatch.setattr(bson, "decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    s = settings(db, tdb, server, target_server, transform_file(tmp_path, KEEP_SOME))
    result = copy_partition(WHOLE, s)
    assert result.state is TaskState.DONE, result.error
    assert decoded == []
    kept = [d for d in docs if d["kind"] != "inspection"]
    assert (result.docs, result.dropped, result.rejected) == (len(kept), 0, 0)
    assert raw_by_id(tdb.dst) == {
        d["_id"]: bson.encode({k: v for k, v in d.items() if k != "pad"}) for d in kept
    }


def test_the_transforms_query_check_waits_out_throttling_and_still_refuses_a_bad_query(
    server: LocalServer, db: DB, tmp_path: Path
) -> None:
    db.src.insert_many(source_docs(50))
    vida: MongoClient[dict[str, Any]] = MongoClient(server.uri, appname="vida-loader")
    coll = vida[db.name].src
    # A throttled find once read as "the source refuses the filter": a usage error.
    fail_commands(db, ["find"], {"times": 2}, errorCode=16500)
    check_transform_query(coll, load_transform(str(transform_file(tmp_path, KEEP_SOME))))
    assert coll.find_one({}) is not None  # both throttles were spent on the check
    bad = "class Bad:\n    filter = {'$bogus': 1}\n"
    (tmp_path / "b").mkdir()
    with pytest.raises(UsageError, match="the source refuses the filter/projection"):
        check_transform_query(coll, load_transform(str(transform_file(tmp_path / "b", bad))))
    vida.close()


def test_a_filtered_range_resumed_counts_only_what_matches(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    docs = source_docs()
    db.src.insert_many(docs)
    s = settings(db, tdb, server, target_server, transform_file(tmp_path, KEEP_SOME))
    first = [
        {k: v for k, v in d.items() if k != "pad"} for d in docs[:100] if d["kind"] != "inspection"
    ]
    tdb.dst.insert_many(first[:10] + first[12:])
    result = copy_partition(WHOLE, s, resume=True)
    assert result.state is TaskState.DONE, result.error
    assert result.repaired == 2
    assert result.target_docs == result.source_docs == 400
    assert tdb.dst.count_documents({"kind": "inspection"}) == 0


def test_a_changed_id_fails_the_partition_naming_it(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    db.src.insert_many(source_docs(50))
    text = "class T:\n    def transform(self, d):\n        return {**d, '_id': str(d['_id'])}\n"
    s = settings(db, tdb, server, target_server, transform_file(tmp_path, text))
    result = copy_partition(WHOLE, s)
    assert result.state is TaskState.FAILED and not result.transient
    assert result.error is not None and "changed _id 0 to '0'" in result.error
    assert tdb.dst.count_documents({}) == 0
    assert raw_hashes(db.src)  # the source is untouched


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "transforms"


def service_orders(n: int) -> list[RawBSONDocument]:
    return [RawBSONDocument(d) for d in ServiceOrders(42).encode_range(0, n)]


def test_the_rename_example_reshapes_drops_and_rejects_service_orders(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB
) -> None:
    orders = [bson.decode(d.raw) for d in service_orders(300)]
    orders[3]["order_id"] = "TEST-1"
    orders[5]["vehicle"]["vin"] = "SHORT"
    db.src.insert_many(orders)
    s = settings(db, tdb, server, target_server, EXAMPLES / "rename_fields.py")
    result = copy_partition(Partition("p00000", RangeMode.MINMAX, None), s)
    assert result.state is TaskState.DONE, result.error
    assert (result.dropped, result.rejected) == (1, 1)
    assert result.rejects[0].reason == "vehicle.vin 'SHORT' is not 17 characters"
    got = {d["_id"]: d for d in tdb.dst.find({})}
    assert len(got) == 298
    for order in orders:
        if order["_id"] not in got:
            continue
        new = dict(got[order["_id"]])
        assert new.pop("workshop_id") == order["service_center_id"]
        assert new.pop("technician") == order["technician_id"]
        assert isinstance(new.pop("migrated_at"), datetime.datetime)
        old = {
            k: v
            for k, v in order.items()
            if k not in ("service_center_id", "technician_id", "notes")
        }
        assert new == old


def test_the_service_type_example_reads_only_those_orders_raw(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    orders = service_orders(400)
    db.src.insert_many(orders)
    decoded = []
    real = bson.decode
    monkeypatch.setattr(bson, "decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    s = settings(db, tdb, server, target_server, EXAMPLES / "service_types.py")
    result = copy_partition(Partition("p00000", RangeMode.MINMAX, None), s)
    assert result.state is TaskState.DONE, result.error
    assert decoded == []
    monkeypatch.undo()
    wanted = {"annual_service", "brake_service", "recall_campaign", "warranty_repair"}
    kept = [d for d in orders if bson.decode(d.raw)["service_type"] in wanted]
    assert 0 < len(kept) < len(orders) and result.docs == len(kept)
    assert raw_hashes(tdb.dst) == Counter(hashlib.sha256(d.raw).hexdigest() for d in kept)
