"""Request units: how a copy behaves against a source that meters and throttles RU.

The Cosmos DB stand-in (``vida_loader.dev.cosmos``) provisioned at ``R`` RU/s sits in
front of a local server holding ``N`` service orders; the target is a second local
server. Measured in one run:

(a) the seed tool's way: one process, decoded documents, two attempts 0.1 s apart on
    an error, no resume of a broken cursor: does it complete, how many documents lost;
(b) vida ``-j 4`` without a cap: RU used / provisioned over the seconds it ran, and the
    share of read commands throttled;
(c) vida ``-j 4 --max-rus R/2``: mean and peak second / cap;
(d) the default write concern: vida ``-j 4`` with ``w=1`` and ``w=0`` (i) in the remote
    regime (every command to either side waits ``LATENCY_MS`` first, nothing metered)
    and (ii) in the RU regime (the source at ``R``); seconds, interleaved ``ROUNDS`` times,
    medians;
(e) what reading the charges costs: in (b), the seconds workers spent asking for
    charges (one more round trip per source command) over the workers' seconds.

The source answers pages of at most 4 MB, as Cosmos DB does (the stand-in lowers a larger
``batchSize``). Four partitions for four workers: SecantusDB answers every range query
with a scan of the whole collection, so a worker starting a partition mid-run stalls for
seconds, which a Cosmos DB range query (an index walk) does not.

Every vida run is checked byte for byte (multisets of SHA-256 of the raw documents).
Results: bench/results-ru.json.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench_faults import hashes  # the raw-bytes multiset, as the faults bench checks it
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from vida_loader.config import PlanConfig, RunConfig
from vida_loader.copy.coordinator import RunResult, run_job
from vida_loader.copy.planner import plan_job
from vida_loader.dev.cosmos import CosmosStandIn
from vida_loader.dev.demo import load_service_orders
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint

N = int(os.environ.get("BENCH_RU_N", "20000"))
R = float(os.environ.get("BENCH_RU_R", "3000"))
LATENCY_MS = float(os.environ.get("BENCH_RU_LATENCY_MS", "3"))
ROUNDS = int(os.environ.get("BENCH_RU_ROUNDS", "2"))
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-ru.json"))
DB, SRC = "bench", "orders"
UNMETERED = 1e9


def busy_seconds(stats: dict[str, Any]) -> list[float]:
    """RU per whole second while the copy ran: from the first second that charged to the
    last, both cut off (the run starts and ends inside them: partial by construction)."""
    seconds = [ru for _s, ru in stats["seconds"]]
    while seconds and seconds[0] < 0.02 * R:
        seconds.pop(0)
    while seconds and seconds[-1] < 0.02 * R:
        seconds.pop()
    return seconds[1:-1] if len(seconds) > 3 else seconds


class Bench:
    def __init__(self, workdir: Path, src: LocalServer, dst: LocalServer) -> None:
        self.workdir = workdir
        self.src, self.dst = src, dst
        self.source = CosmosStandIn(src.port, ru=UNMETERED).start()
        self.target = CosmosStandIn(dst.port, ru=UNMETERED).start()  # for latency only
        self.src_client: MongoClient[Any] = MongoClient(src.uri)
        self.dst_client: MongoClient[Any] = MongoClient(dst.uri)
        self.expected: Counter[str] = Counter()
        self.avg_bytes = 1024.0

    def close(self) -> None:
        self.source.stop()
        self.target.stop()

    def setup(self) -> None:
        load_service_orders(self.src_client[DB][SRC], N)
        self.expected = hashes(self.src_client, DB, SRC)
        stats = self.src_client[DB].command("collStats", SRC)
        self.avg_bytes = stats["size"] / max(1, stats["count"])
        plan_job(
            PlanConfig(
                source=Endpoint(self.source.uri, DB, SRC),
                target=Endpoint(self.target.uri, DB, "copy"),
                job="ru",
                manifest_dir=self.workdir,
                partitions=4,
            )
        )

    def regime(self, ru: float, latency_ms: float) -> None:
        page_docs = int(4 * 2**20 / self.avg_bytes)  # Cosmos DB's 4 MB reply limit
        self.source.configure(ru=ru, latencyMs=latency_ms, maxPageDocs=page_docs)
        self.target.configure(latencyMs=latency_ms)
        self.source.reset()

    def seed_way(self) -> dict[str, Any]:
        """(a): read with one cursor, insert 1,000 decoded documents at a time; an error
        gets one more attempt 0.1 s later, then the tool gives up (as the seed did)."""
        self.dst_client[DB].drop_collection("seed")
        self.regime(R, 0)
        src: MongoClient[Any] = MongoClient(self.source.uri, maxPoolSize=1)
        dst = self.dst_client[DB]["seed"]
        completed, error = True, ""
        started = time.monotonic()
        try:
            batch: list[dict[str, Any]] = []
            cursor = src[DB][SRC].find({})
            while True:
                try:
                    doc = next(cursor, None)
                except PyMongoError:
                    time.sleep(0.1)
                    doc = next(cursor, None)  # a dead cursor: raises again, or ends
                if doc is None:
                    break
                batch.append(doc)
                if len(batch) == 1000:
                    dst.insert_many(batch)
                    batch = []
            if batch:
                dst.insert_many(batch)
        except PyMongoError as exc:
            completed, error = False, str(exc)[:120]
        finally:
            src.close()
        copied = dst.count_documents({})
        return {
            "completed": completed,
            "error": error,
            "seconds": time.monotonic() - started,
            "documents copied": copied,
            "documents lost": N - copied,
        }

    def vida(self, jobs: int = 4, **kw: Any) -> tuple[RunResult, float, int]:
        """One clean run of the job with ``kw``; (result, seconds, documents lost)."""
        self.dst_client[DB].drop_collection("copy")
        started = time.monotonic()
        cfg = RunConfig(job="ru", manifest_dir=self.workdir, jobs=jobs, restart=True, **kw)
        result = run_job(cfg)
        seconds = time.monotonic() - started
        got = hashes(self.dst_client, DB, "copy")
        lost = sum((self.expected - got).values()) + sum((got - self.expected).values())
        if result.failed or lost:
            raise SystemExit(f"vida run {kw} lost {lost} documents: {result.failed[:2]}")
        return result, seconds, lost

    def uncapped(self) -> dict[str, Any]:
        self.regime(R, 0)
        result, seconds, lost = self.vida()
        stats = self.source.stats()
        busy = busy_seconds(stats)
        reads = sum(stats["commands"].get(c, 0) for c in ("find", "getMore"))
        throttled = sum(stats["throttled"].values())
        return {
            "seconds": seconds,
            "RU used / provisioned": statistics.mean(busy) / R,
            "peak second / provisioned": max(busy) / R,
            "throttled share of reads": throttled / max(1, reads + throttled),
            "RU counted / charged": (result.charges.ru if result.charges else 0) / stats["charged"],
            "source commands": result.charges.commands if result.charges else 0,
            "share of worker time reading charges": (
                result.charges.reading_s / (4 * seconds) if result.charges else 0
            ),
            "ms per charge read": (
                1000 * result.charges.reading_s / max(1, result.charges.read)
                if result.charges
                else 0
            ),
            "documents lost": lost,
            "per second": [round(s) for s in busy],
        }

    def capped(self) -> dict[str, Any]:
        cap = R / 2
        self.regime(R, 0)
        _result, seconds, lost = self.vida(max_rus=cap)
        stats = self.source.stats()
        busy = busy_seconds(stats)
        return {
            "seconds": seconds,
            "mean second / cap": statistics.mean(busy) / cap,
            "peak second / cap": max(busy) / cap,
            "throttled": sum(stats["throttled"].values()),
            "documents lost": lost,
            "per second": [round(s) for s in busy],
        }

    def write_concerns(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, ru, latency in (("remote", UNMETERED, LATENCY_MS), ("RU", R, 0.0)):
            times: dict[str, list[float]] = {"1": [], "0": []}
            for _ in range(ROUNDS):
                for w in ("1", "0"):
                    self.regime(ru, latency)
                    times[w].append(self.vida(write_concern=w)[1])
            w1, w0 = statistics.median(times["1"]), statistics.median(times["0"])
            out[name] = {"w=1 seconds": w1, "w=0 seconds": w0, "w=0 / w=1 seconds": w0 / w1}
        return out


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-ru-"))
    try:
        with (
            LocalServer(workdir / "source") as src,
            LocalServer(workdir / "target") as dst,
        ):
            bench = Bench(workdir, src, dst)
            try:
                bench.setup()
                seed = bench.seed_way()
                print(f"(a) seed tool's way: {seed}", flush=True)
                uncapped = bench.uncapped()
                print(f"(b) vida -j 4, no cap: {uncapped}", flush=True)
                capped = bench.capped()
                print(f"(c) vida -j 4 --max-rus {R / 2:g}: {capped}", flush=True)
                concerns = bench.write_concerns()
                print(f"(d) write concerns: {concerns}", flush=True)
            finally:
                bench.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {
        "documents": N,
        "provisioned RU/s": R,
        "(a) seed way completed": seed["completed"],
        "(a) seed way documents lost": seed["documents lost"],
        "(b) RU used / provisioned": uncapped["RU used / provisioned"],
        "(b) throttled share of reads": uncapped["throttled share of reads"],
        "(b) RU counted / charged": uncapped["RU counted / charged"],
        "(c) mean second / cap": capped["mean second / cap"],
        "(c) peak second / cap": capped["peak second / cap"],
        "(d) remote: w=0 / w=1 seconds": concerns["remote"]["w=0 / w=1 seconds"],
        "(d) RU: w=0 / w=1 seconds": concerns["RU"]["w=0 / w=1 seconds"],
        "(e) share of worker time reading charges": uncapped[
            "share of worker time reading charges"
        ],
        "(e) ms per charge read": uncapped["ms per charge read"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "figures": figures,
                "seed": seed,
                "uncapped": uncapped,
                "capped": capped,
                "write_concerns": concerns,
            },
            indent=2,
        )
        + "\n"
    )
    width = max(map(len, figures))
    for name, value in figures.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else f"{value}"
        print(f"{name:<{width}}  {shown}")
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
