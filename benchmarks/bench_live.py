"""What the live view costs a run: throughput with the view drawing to a terminal, with
plain progress lines, and with no progress at all, on the same data in one run.

``N`` service orders on a local server are copied by ``run_job`` (4 partitions, -j 2, the
target dropped each time) ``ROUNDS`` times per variant, interleaved. The view draws into a
terminal-like console whose output is thrown away (what a terminal shows costs the
terminal, not vida). Reported: the median seconds of each variant, the ratio of the
view's to none's, and the seconds spent inside the view's calls over the run's seconds
(its direct share of the coordinator's core). Results: bench/results-live.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from rich.console import Console

from vida_loader.config import PlanConfig, RunConfig
from vida_loader.copy.coordinator import run_job
from vida_loader.copy.planner import plan_job
from vida_loader.copy.progress import RunProgress
from vida_loader.dev.demo import load_service_orders
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint
from vida_loader.report.live import LiveView
from vida_loader.report.progress import ProgressPrinter

N = int(os.environ.get("BENCH_LIVE_N", "40000"))
ROUNDS = int(os.environ.get("BENCH_LIVE_ROUNDS", "3"))
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-live.json"))
DB = "bench"


class Timed:
    """A progress sink that counts the seconds spent inside it."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, p: RunProgress) -> None:
        t0 = time.perf_counter()
        self.sink(p)
        self.seconds += time.perf_counter() - t0
        self.calls += 1

    def finish(self) -> None:
        t0 = time.perf_counter()
        self.sink.finish()
        self.seconds += time.perf_counter() - t0


def sink(kind: str) -> Timed | None:
    devnull = open(os.devnull, "w")  # lives as long as the sink
    if kind == "live":
        console = Console(file=devnull, force_terminal=True, width=160, color_system="truecolor")
        return Timed(LiveView(devnull, console=console))
    if kind == "lines":
        return Timed(ProgressPrinter(devnull, tty=False, interval=5.0))
    return None


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-live-"))
    runs: dict[str, list[dict[str, Any]]] = {"none": [], "lines": [], "live": []}
    try:
        with LocalServer(workdir / "source") as src, LocalServer(workdir / "target") as dst:
            with MongoClient(src.uri) as client:
                load_service_orders(client[DB]["orders"], N)
            plan_job(
                PlanConfig(
                    source=Endpoint(src.uri, DB, "orders"),
                    target=Endpoint(dst.uri, DB, "orders"),
                    job="live",
                    manifest_dir=workdir,
                    partitions=4,
                )
            )
            for r in range(ROUNDS):
                for kind in runs:
                    view = sink(kind)
                    cfg = RunConfig(
                        job="live", manifest_dir=workdir, jobs=2, restart=True, drop_target=True
                    )
                    t0 = time.monotonic()
                    result = run_job(cfg, on_progress=view, tick=0.25)
                    seconds = time.monotonic() - t0
                    if view is not None:
                        view.finish()
                    if result.failed or result.confirmed_docs != N:
                        raise SystemExit(f"{kind}: run failed: {result.failed[:1]}")
                    m = {
                        "seconds": seconds,
                        "view_s": view.seconds if view else 0.0,
                        "calls": view.calls if view else 0,
                    }
                    runs[kind].append(m)
                    print(
                        f"round {r + 1} {kind:6} {seconds:6.2f} s  view {m['view_s']:.3f} s "
                        f"in {m['calls']} calls",
                        flush=True,
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    median = {k: statistics.median(m["seconds"] for m in v) for k, v in runs.items()}
    share = statistics.median(m["view_s"] / m["seconds"] for m in runs["live"])
    out = {
        "docs": N,
        "rounds": ROUNDS,
        "seconds_median": median,
        "live / none": median["live"] / median["none"],
        "lines / none": median["lines"] / median["none"],
        "view seconds / run seconds": share,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nmedian seconds: {median}")
    print(
        f"live / none {out['live / none']:.3f}, lines / none {out['lines / none']:.3f}, "
        f"time inside the view: {share:.2%} of the run"
    )
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
