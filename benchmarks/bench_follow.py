"""What following a source that is still written costs: catch-up time, lag, apply rate.

Two local servers; ``N`` service orders in the source; a writer thread changes the source
at a steady ``RATE`` writes/s (60 % updates of a random order, 25 % inserts, 15 %
deletes) from before the copy until the end. Measured, in one run:

- the copy (``run_job`` ``-j 2``, planned in 4 partitions), then ``follow_job``: seconds
  from the end of the copy until the target is at most ``CAUGHT_UP_S`` behind;
- then ``WINDOW_S`` seconds of following at that steady rate: the lag of every progress
  tick (p50, p95);
- apply rate: the writer stops, ``BURST`` updates are made at once on the source and
  followed from before them (events/s), against the target's own rate for the same
  number of raw replace-with-upsert writes in batches of 1,000 with the same write
  concern (w=1, journaled: the ceiling): goal >= 0.8;
- the target is compared with the source, byte for byte, after the burst (before the
  ceiling's writes change it).

Results: bench/results-follow.json.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient, ReplaceOne

from vida_loader.config import PlanConfig, RunConfig
from vida_loader.copy import planner
from vida_loader.copy.coordinator import run_job
from vida_loader.dev.demo import load_service_orders
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint
from vida_loader.follow.loop import FOLLOW_WRITES, FollowProgress, follow_job

N = int(os.environ.get("BENCH_FOLLOW_N", "20000"))
RATE = float(os.environ.get("BENCH_FOLLOW_RATE", "200"))
WINDOW_S = float(os.environ.get("BENCH_FOLLOW_WINDOW_S", "30"))
BURST = int(os.environ.get("BENCH_FOLLOW_BURST", "20000"))
CAUGHT_UP_S = 2.0
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-follow.json"))
DB = "bench"


class Writer(threading.Thread):
    """``RATE`` writes per second on the source until stopped."""

    def __init__(self, uri: str) -> None:
        super().__init__(daemon=True)
        self.uri = uri
        self.stop = threading.Event()
        self.writes = 0

    def run(self) -> None:
        rng = random.Random(7)
        next_id = 10**9
        with MongoClient(self.uri) as client:
            coll = client[DB]["orders"]
            ids = [d["_id"] for d in coll.find({}, {"_id": 1})]
            started = time.monotonic()
            while not self.stop.is_set():
                roll = rng.random()
                if roll < 0.60 and ids:
                    coll.update_one({"_id": rng.choice(ids)}, {"$set": {"bench_n": self.writes}})
                elif roll < 0.85:
                    coll.insert_one({"_id": next_id, "bench_n": self.writes})
                    ids.append(next_id)
                    next_id += 1
                elif ids:
                    coll.delete_one({"_id": ids.pop(rng.randrange(len(ids)))})
                self.writes += 1
                ahead = self.writes / RATE - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)


def raw_hashes(uri: str) -> dict[Any, bytes]:
    with MongoClient(uri) as client:
        coll = (
            client[DB]
            .get_collection("orders")
            .with_options(
                codec_options=client[DB].codec_options.with_options(document_class=RawBSONDocument)
            )
        )
        return {d["_id"]: bytes(d.raw) for d in coll.find({}, batch_size=5000)}


def upsert_ceiling(uri: str, n: int) -> float:
    """The target's own rate of the writes a follow makes: raw replace-with-upsert of
    ``n`` of its documents, each changed, in batches of 1,000."""
    with MongoClient(uri) as client:
        coll = client[DB]["orders"].with_options(
            codec_options=client[DB].codec_options.with_options(document_class=RawBSONDocument),
            write_concern=FOLLOW_WRITES,  # the same durability as the follow's writes
        )
        # Changed documents, as a follow writes them: a replace by the same bytes is a
        # no-op the server skips, which would flatter the ceiling.
        docs = [
            RawBSONDocument(bson.encode({**bson.decode(d.raw), "ceiling": 1}))
            for d in coll.find({}).limit(n)
        ]
        t0 = time.monotonic()
        for at in range(0, len(docs), 1000):
            ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs[at : at + 1000]]
            coll.bulk_write(ops, ordered=False)
        return len(docs) / (time.monotonic() - t0)


def copy_and_catch_up(
    src: LocalServer, dst: LocalServer, parts: Path, out: dict[str, Any]
) -> RunConfig:
    """Plan, copy while the writer writes, follow until ``CAUGHT_UP_S`` behind."""
    planner.plan_job(
        PlanConfig(
            source=Endpoint(src.uri, DB, "orders"),
            target=Endpoint(dst.uri, DB, "orders"),
            job="bench",
            manifest_dir=parts,
            partitions=4,
        )
    )
    cfg = RunConfig(job="bench", manifest_dir=parts, jobs=2, follow=True)
    t0 = time.monotonic()
    result = run_job(cfg)
    out["copy_s"] = time.monotonic() - t0
    if result.failed:
        raise SystemExit(f"copy failed: {result.failed}")
    print(f"copy: {out['copy_s']:.1f} s", flush=True)
    t0 = time.monotonic()
    caught = follow_job(replace(cfg, until_caught_up=CAUGHT_UP_S))
    out["catch_up_s"] = time.monotonic() - t0
    out["catch_up_events"] = caught.progress.events
    print(f"caught up ({CAUGHT_UP_S:g} s) in {out['catch_up_s']:.1f} s", flush=True)
    return cfg


def steady(cfg: RunConfig, out: dict[str, Any]) -> None:
    """``WINDOW_S`` seconds of following at the writer's rate: the lag at each tick."""
    lags: list[float] = []

    def sample(p: FollowProgress) -> None:
        if p.lag_s is not None:
            lags.append(p.lag_s)

    until = time.monotonic() + WINDOW_S
    result = follow_job(
        cfg, on_progress=sample, tick=0.5, should_stop=lambda: time.monotonic() > until
    )
    lags.sort()
    out["steady_events_s"] = result.progress.rate
    out["lag_p50_s"] = statistics.median(lags) if lags else None
    out["lag_p95_s"] = lags[int(0.95 * (len(lags) - 1))] if lags else None
    print(f"steady: lag p50 {out['lag_p50_s']} s, p95 {out['lag_p95_s']} s", flush=True)


def burst(src: LocalServer, dst: LocalServer, cfg: RunConfig, out: dict[str, Any]) -> None:
    """``BURST`` updates at once, followed: events/s against the target's own rate."""
    follow_job(replace(cfg, until_caught_up=0.0))
    with MongoClient(src.uri) as client:
        coll = client[DB]["orders"]
        some = [d["_id"] for d in coll.find({}, {"_id": 1}).limit(BURST)]
        for at in range(0, len(some), 1000):
            coll.update_many({"_id": {"$in": some[at : at + 1000]}}, {"$inc": {"burst": 1}})
    t0 = time.monotonic()
    result = follow_job(replace(cfg, until_caught_up=0.0))
    out["apply_events_s"] = result.progress.events / (time.monotonic() - t0)
    if raw_hashes(src.uri) != raw_hashes(dst.uri):
        raise SystemExit("the target differs from the source")
    print("the target is the source, byte for byte", flush=True)
    out["upsert_ceiling_s"] = upsert_ceiling(dst.uri, BURST)  # changes the target
    out["apply / ceiling"] = out["apply_events_s"] / out["upsert_ceiling_s"]
    print(
        f"apply {out['apply_events_s']:,.0f} events/s vs plain upserts "
        f"{out['upsert_ceiling_s']:,.0f}/s: {out['apply / ceiling']:.2f}x (goal >= 0.8)",
        flush=True,
    )


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-follow-"))
    out: dict[str, Any] = {"docs": N, "rate": RATE}
    try:
        with LocalServer(workdir / "source") as src, LocalServer(workdir / "target") as dst:
            with MongoClient(src.uri) as client:
                load_service_orders(client[DB]["orders"], N)
            writer = Writer(src.uri)
            writer.start()
            time.sleep(1.0)  # the writer is going when the copy starts
            cfg = copy_and_catch_up(src, dst, workdir / "partitions", out)
            steady(cfg, out)
            writer.stop.set()
            writer.join(timeout=30)
            out["writes"] = writer.writes
            burst(src, dst, cfg, out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
