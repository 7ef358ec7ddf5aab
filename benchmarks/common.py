"""What the benchmarks share: the byte-for-byte check of a collection and the results file."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient


def hashes(uri: str, db: str, coll: str) -> Counter[str]:
    """The SHA-256 of every document's raw bytes in ``db.coll`` (a multiset: equal
    counters mean byte-identical collections, whatever the order)."""
    with MongoClient(uri) as client:
        c = client[db][coll]
        raw = c.with_options(
            codec_options=c.codec_options.with_options(document_class=RawBSONDocument)
        )
        return Counter(hashlib.sha256(d.raw).hexdigest() for d in raw.find({}, batch_size=5000))


def write_results(path: Path, out: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results: {path}")


def load_and_plan(src: str, dst: str, db: str, n: int, partitions: int, parts: Path) -> None:
    """``n`` service orders into ``db.orders`` at ``src``, planned as job "bench" in
    ``partitions`` partitions to the same namespace at ``dst``."""
    from vida_loader.config import PlanConfig
    from vida_loader.copy import planner
    from vida_loader.dev.demo import load_service_orders
    from vida_loader.endpoint import Endpoint

    with MongoClient(src) as client:
        load_service_orders(client[db]["orders"], n)
    planner.plan_job(
        PlanConfig(
            source=Endpoint(src, db, "orders"),
            target=Endpoint(dst, db, "orders"),
            job="bench",
            manifest_dir=parts,
            partitions=partitions,
        )
    )
