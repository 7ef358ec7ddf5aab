"""The merge comparison against real servers: both sides read with the copy's range query
in _id order, mixed _id types; each way of altering the target is named with its kind."""

from __future__ import annotations

import random
from typing import Any

import bson
import pytest
from bson.raw_bson import RawBSONDocument
from pymongo.database import Database
from support import mixed_ids

from vida_loader.job.manifest import Partition, RangeMode
from vida_loader.pipeline.reader import read_raw
from vida_loader.verify.compare import Tally, compare_sorted

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
WHOLE = Partition("p00000", RangeMode.MINMAX, None)


def test_each_way_of_altering_the_target_is_named(db: DB, tdb: DB) -> None:
    ids = mixed_ids(400, random.Random(3))
    docs = [{"_id": v, "n": i, "pad": "x" * 20} for i, v in enumerate(ids)]
    db.src.insert_many(docs)
    tdb.dst.insert_many(docs)
    changed, deleted, stub, moved = ids[10], ids[20], ids[30], ids[40]
    tdb.dst.update_one({"_id": changed}, {"$set": {"n": -1}})
    tdb.dst.delete_one({"_id": deleted})
    tdb.dst.insert_one({"_id": "zz-extra", "n": 0})
    tdb.dst.delete_one({"_id": stub})
    tdb.dst.insert_one({"_id": stub})  # a stub with the same _id
    tdb.dst.delete_one({"_id": moved})
    # The same fields in another order: written as raw bytes, as they are.
    tdb.dst.insert_one(RawBSONDocument(bson.encode({"_id": moved, "pad": "x" * 20, "n": 40})))
    tally = Tally()
    found = list(compare_sorted(read_raw(WHOLE, db.src, 100), read_raw(WHOLE, tdb.dst, 100), tally))
    got = {(d.kind, repr(bson.decode(d.id_doc)["_id"])) for d in found}
    assert got == {
        ("altered", repr(changed)),
        ("missing", repr(deleted)),
        ("extra", repr("zz-extra")),
        ("altered", repr(stub)),
        ("altered", repr(moved)),
    }
    n = len(ids)
    assert (tally.source_docs, tally.target_docs, tally.matched) == (n, n, n - 4)
