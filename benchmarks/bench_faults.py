"""What faults cost a run: throttling and a target outage, measured in one run.

Two local servers (test commands on). One collection of service orders is planned
once, then copied (``-j 2``, 100-document write batches so that 5 % is many inserts):

- clean and with 5 % of target inserts throttled (16500), interleaved, ``ROUNDS``
  times each: the throughput ratio throttled / clean, from the medians;
- once with the target SIGKILLed a third of the way in and started again 10 s later
  on the same port and storage: how long after the server answered again the copy
  moved again, and the whole run's time against the clean median.

Every run is checked byte for byte (multisets of SHA-256 of the raw documents):
documents lost must be 0. SecantusDB ignores ``activationProbability``, so 5 % is
made by re-arming ``{skip: 19, times: 1}`` each time the run reports a throttle; the
share actually throttled is measured and reported. Results: bench/results-faults.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from vida_loader.config import PlanConfig, RunConfig
from vida_loader.copy.coordinator import RunResult, run_job
from vida_loader.copy.planner import plan_job
from vida_loader.copy.progress import RunProgress
from vida_loader.dev.demo import load_service_orders
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint

N = int(os.environ.get("BENCH_FAULTS_N", "30000"))
ROUNDS = int(os.environ.get("BENCH_FAULTS_ROUNDS", "2"))
OUTAGE_S = float(os.environ.get("BENCH_OUTAGE_S", "10"))
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-faults.json"))
EVERY = 20  # one insert in EVERY throttled: 5 %
BATCH = 100


def hashes(client: MongoClient[Any], db: str, coll: str) -> Counter[str]:
    raw = (
        client[db]
        .get_collection(coll)
        .with_options(
            codec_options=client.codec_options.with_options(document_class=RawBSONDocument)
        )
    )
    return Counter(hashlib.sha256(d.raw).hexdigest() for d in raw.find({}, batch_size=5000))


def arm(client: MongoClient[Any], mode: Any) -> None:
    client.admin.command(
        "configureFailPoint",
        "failCommand",
        mode=mode,
        data={"failCommands": ["insert"], "errorCode": 16500, "appName": "vida-loader"},
    )


class Bench:
    def __init__(self, workdir: Path, source: LocalServer, target: LocalServer) -> None:
        self.workdir = workdir
        self.source = source
        self.target = target
        self.src: MongoClient[Any] = MongoClient(source.uri)
        self.expected = Counter[str]()

    def cfg(self) -> RunConfig:
        return RunConfig(
            job="faults",
            manifest_dir=self.workdir / "partitions",
            jobs=2,
            batch_size=BATCH,
            restart=True,
            drop_target=True,
        )

    def setup(self) -> None:
        load_service_orders(self.src.bench.orders, N)
        self.expected = hashes(self.src, "bench", "orders")
        plan_job(
            PlanConfig(
                source=Endpoint(self.source.uri, "bench", "orders"),
                target=Endpoint(self.target.uri, "bench", "orders"),
                job="faults",
                manifest_dir=self.workdir / "partitions",
                partitions=4,
            )
        )

    def lost(self) -> int:
        dst: MongoClient[Any]
        with MongoClient(self.target.uri, serverSelectionTimeoutMS=30_000) as dst:
            got = hashes(dst, "bench", "orders")
        return sum((self.expected - got).values()) + sum((got - self.expected).values())

    def run(self, on_progress: Any = None) -> tuple[RunResult, float]:
        started = time.monotonic()
        result = run_job(self.cfg(), on_progress, tick=0.05)
        return result, time.monotonic() - started

    def clean(self) -> dict[str, float]:
        result, seconds = self.run()
        return {
            "seconds": seconds,
            "docs_per_s": N / seconds,
            "lost": self.lost(),
            "failed": len(result.failed),
        }

    def throttled(self) -> dict[str, float]:
        admin: MongoClient[Any]
        with MongoClient(self.target.uri) as admin:
            arm(admin, {"skip": EVERY - 1, "times": 1})
            seen = [0]

            def rearm(p: RunProgress) -> None:
                if p.throttled > seen[0]:  # it fired: throttle the EVERY-th insert again
                    seen[0] = p.throttled
                    arm(admin, {"skip": EVERY - 1, "times": 1})

            try:
                result, seconds = self.run(rearm)
            finally:
                arm(admin, "off")
        inserts = N / BATCH + result.throttled
        return {
            "seconds": seconds,
            "docs_per_s": N / seconds,
            "lost": self.lost(),
            "failed": len(result.failed),
            "throttled": result.throttled,
            "throttled_share": result.throttled / inserts,
            "wait_s": result.wait_s,
        }

    def outage(self) -> dict[str, float]:
        marks: dict[str, float] = {}
        after_back = [0]

        def crash(p: RunProgress) -> None:
            now = time.monotonic()
            if "killed" not in marks and p.docs >= N // 3:
                marks["killed"] = now
                self.target.kill()
                threading.Timer(OUTAGE_S, self._back, args=(marks,)).start()
            elif "back" in marks and "moving" not in marks:
                if not after_back[0]:
                    after_back[0] = p.docs
                elif p.docs > after_back[0]:
                    marks["moving"] = now

        result, seconds = self.run(crash)
        if "back" not in marks:  # the run ended first (too small a collection): wait
            deadline = time.monotonic() + OUTAGE_S + 60
            while "back" not in marks and time.monotonic() < deadline:
                time.sleep(0.1)
        return {
            "seconds": seconds,
            "lost": self.lost(),
            "failed": len(result.failed),
            "outage_s": marks["back"] - marks["killed"],
            "recovery_s": marks.get("moving", float("nan")) - marks["back"],
            "run_outlived_outage": float("moving" in marks),
            "retries": result.retries,
        }

    def _back(self, marks: dict[str, float]) -> None:
        self.target.start()
        marks["back"] = time.monotonic()


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-faults-"))
    try:
        with (
            LocalServer(workdir / "source", test_commands=True) as source,
            LocalServer(workdir / "target", test_commands=True) as target,
        ):
            bench = Bench(workdir, source, target)
            bench.setup()
            clean, throttled = [], []
            for i in range(ROUNDS):
                clean.append(bench.clean())
                throttled.append(bench.throttled())
                print(
                    f"round {i + 1}: clean {clean[-1]}\n         throttled {throttled[-1]}",
                    flush=True,
                )
            outage = bench.outage()
            print(f"outage {outage}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    clean_rate = statistics.median(m["docs_per_s"] for m in clean)
    throttled_rate = statistics.median(m["docs_per_s"] for m in throttled)
    figures = {
        "docs": N,
        "clean docs/s (median)": clean_rate,
        "5% throttled docs/s (median)": throttled_rate,
        "throttled / clean docs/s": throttled_rate / clean_rate,
        "share of inserts throttled": statistics.median(m["throttled_share"] for m in throttled),
        "outage seconds": outage["outage_s"],
        "recovery seconds after the target answered again": outage["recovery_s"],
        "outage run seconds / clean run seconds": outage["seconds"]
        / statistics.median(m["seconds"] for m in clean),
        "documents lost (all runs)": sum(m["lost"] for m in [*clean, *throttled, outage]),
        "partitions failed (all runs)": sum(m["failed"] for m in [*clean, *throttled, outage]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"figures": figures, "clean": clean, "throttled": throttled, "outage": outage}, indent=2
        )
        + "\n"
    )
    width = max(map(len, figures))
    for name, value in figures.items():
        print(
            f"{name:<{width}}  {value:,.3f}"
            if isinstance(value, float)
            else f"{name:<{width}}  {value:,}"
        )
    print(f"results: {RESULTS}")
    return 0 if figures["documents lost (all runs)"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
