"""plan against a real local server: ranges counted with their own queries add up."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from bson import MaxKey, ObjectId
from pymongo.database import Database
from support import PAD, ints, mixed_ids, objectids, strings

from vida_loader.config import PlanConfig
from vida_loader.copy import planner
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint
from vida_loader.job.manifest import RangeMode, load_manifest
from vida_loader.ordering import sort_key

pytestmark = pytest.mark.integration


KINDS = {"objectid": objectids, "int": ints, "string": strings, "mixed": mixed_ids}


def _load(db: Database[dict[str, Any]], kind: str, n: int = 2400) -> list[Any]:
    ids = KINDS[kind](n, random.Random(kind))
    db.src.insert_many([{"_id": v, "pad": PAD} for v in ids], ordered=False)
    assert db.src.count_documents({}) == len(ids)
    return ids


def _plan(server: LocalServer, db: Database[dict[str, Any]], tmp_path: Path, **kw: Any) -> Any:
    cfg = PlanConfig(
        source=Endpoint(server.uri, db.name, "src"),
        target=Endpoint(server.uri, db.name + "_dst", "dst"),
        job="j",
        manifest_dir=tmp_path,
        **kw,
    )
    result = planner.plan_job(cfg)
    assert load_manifest(result.path).fingerprint == result.manifest.fingerprint
    return result


def _assert_exact_cover(db: Database[dict[str, Any]], manifest: Any, ids: list[Any]) -> None:
    coll = db.get_collection("src", codec_options=planner.CODEC_OPTIONS)
    seen: dict[tuple[Any, ...], str] = {}
    total = 0
    for p in manifest.partitions:
        got = [d["_id"] for d in p.find(coll, {"_id": 1})]
        assert p.count_in(coll) == len(got)
        total += len(got)
        for v in got:
            assert p.contains(v), (p.id, v)  # the client-side rule agrees with the server
            assert sort_key(v) not in seen, f"{v!r} in {seen.get(sort_key(v))} and {p.id}"
            seen[sort_key(v)] = p.id
    assert total == len(ids)
    assert set(seen) == {sort_key(v) for v in ids}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("mode", ["typed", "minmax"])
@pytest.mark.parametrize("sampled", [False, True], ids=["exact", "sampled"])
def test_ranges_add_up_to_the_collection(
    server: LocalServer,
    db: Database[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    mode: str,
    sampled: bool,
) -> None:
    if sampled:
        monkeypatch.setattr(planner, "EXACT_READ_LIMIT", 10)  # force the $sample path
    ids = _load(db, kind)
    result = _plan(server, db, tmp_path, partitions=7, range_mode=mode)
    m = result.manifest
    assert m.split["range_mode"] == mode and m.split["sample_exact"] is not sampled
    assert len(m.partitions) >= 7 if mode == "minmax" else len(m.partitions) >= 6
    assert m.stats["count"] == len(ids)
    _assert_exact_cover(db, m, ids)


def test_server_sorts_ids_in_our_order(db: Database[dict[str, Any]]) -> None:
    ids = _load(db, "mixed", n=400)
    coll = db.get_collection("src", codec_options=planner.CODEC_OPTIONS)
    server_order = [d["_id"] for d in coll.find({}, {"_id": 1}).sort("_id", 1)]
    ours = sorted(ids, key=sort_key)
    assert [sort_key(v) for v in server_order] == [sort_key(v) for v in ours]


def test_auto_mode_picks_by_id_types(
    server: LocalServer, db: Database[dict[str, Any]], tmp_path: Path
) -> None:
    _load(db, "mixed", n=400)
    mixed = _plan(server, db, tmp_path, partitions=3)
    assert mixed.manifest.split["range_mode"] == RangeMode.MINMAX
    assert (
        mixed.manifest.stats["id_brackets"]
        == ("minKey null number string object binData objectId bool date timestamp maxKey").split()
    )
    db.src.drop()
    _load(db, "objectid", n=400)
    single = _plan(server, db, tmp_path, partitions=3, replan=True)
    assert single.manifest.split["range_mode"] == RangeMode.TYPED
    assert single.manifest.stats["id_brackets"] == ["objectId"]
    assert "one _id type bracket" in single.mode_reason


def test_partition_count_follows_the_size(
    server: LocalServer, db: Database[dict[str, Any]], tmp_path: Path
) -> None:
    ids = _load(db, "objectid", n=3000)
    stats = planner.read_stats(db.src)
    want_mb = stats.size_bytes / (1024 * 1024) / 5  # five partitions' worth
    result = _plan(server, db, tmp_path, partition_size_mb=want_mb)
    m = result.manifest
    assert len(m.partitions) == 5
    assert sum(p.est_docs for p in m.partitions) == len(ids)
    assert all(500 <= p.est_docs <= 700 for p in m.partitions)  # exact read: even split
    _assert_exact_cover(db, m, ids)


def test_empty_collection_gives_one_partition(
    server: LocalServer, db: Database[dict[str, Any]], tmp_path: Path
) -> None:
    db.create_collection("src")
    m = _plan(server, db, tmp_path).manifest
    assert len(m.partitions) == 1 and m.stats["count"] == 0
    # Documents that arrive after planning still fall in that one partition.
    later = [1, "a", ObjectId(), None, MaxKey()]
    db.src.insert_many([{"_id": v} for v in later])
    _assert_exact_cover(db, m, later)
