"""Indexes: building them after the data against having them while the data loads.

``N`` (200k: see ``N``) service orders with three secondary indexes (a unique
``order_id``, a compound ``service_center_id`` + ``order_date`` descending, the nested
``customer.customer_id``) on one local server, copied to a second with ``run -j 4``
(4 partitions), in one process:

(a) ``--indexes skip``: the copy alone, the reference;
(b) ``--indexes after`` (the default): the copy, then the three builds;
(c) ``--indexes before``: the three indexes built on the empty target, then the copy
    into an indexed collection.

For each: copy seconds (from the first partition's start to the last one's end), index
seconds, total. Rounds alternate the order (skip, after, before / before, after, skip);
medians. Every run is checked: the target's documents byte for byte (multisets of
SHA-256 of the raw documents) and, for (b) and (c), ``index_information()`` equal to the
source's.

Results: bench/results-indexes.json.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_faults import hashes  # the raw-bytes multiset, as the faults bench checks it
from pymongo import MongoClient

from vida_loader.config import PlanConfig, RunConfig
from vida_loader.copy.coordinator import RunResult, run_job
from vida_loader.copy.planner import plan_job
from vida_loader.dev.demo import load_service_orders
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint

# 1M asked for; this server holds each range scan's whole result in memory and four
# concurrent scans of 1M documents took it to 18 GB of this machine's 24 (two were
# OOM-killed at 23 GB in the scale bench): 200k is the largest that -j 4 runs safely.
N = int(os.environ.get("BENCH_IX_N", "200000"))
ROUNDS = int(os.environ.get("BENCH_IX_ROUNDS", "1"))
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-indexes.json"))
DB, SRC, DST = "bench", "orders", "copy"
INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("order_id", 1)], {"unique": True}),
    ([("service_center_id", 1), ("order_date", -1)], {}),
    ([("customer.customer_id", 1)], {}),
]
MODES = ("skip", "after", "before")


def copy_seconds(result: RunResult) -> float:
    """From the first partition's start to the last one's end, as the state says."""
    parts = result.state.partitions.values()
    first = min(datetime.datetime.fromisoformat(str(r.started_at)) for r in parts)
    last = max(datetime.datetime.fromisoformat(str(r.finished_at)) for r in parts)
    return (last - first).total_seconds()


def one_run(
    workdir: Path, src: MongoClient[Any], dst: MongoClient[Any], mode: str
) -> dict[str, Any]:
    dst[DB].drop_collection(DST)
    started = time.monotonic()
    result = run_job(RunConfig(job="ix", manifest_dir=workdir, jobs=4, restart=True, indexes=mode))
    total = time.monotonic() - started
    if result.failed or result.index_failures:
        raise SystemExit(f"--indexes {mode}: {result.failed[:2]} {result.index_failures[:2]}")
    if hashes(dst, DB, DST) != hashes(src, DB, SRC):
        raise SystemExit(f"--indexes {mode}: the target's documents differ from the source's")
    have = dst[DB][DST].index_information()
    if have != src[DB][SRC].index_information() and (mode != "skip" or list(have) != ["_id_"]):
        raise SystemExit(f"--indexes {mode}: the target's indexes differ from the source's")
    return {"copy_s": copy_seconds(result), "index_s": result.index_s, "total_s": total}


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-ix-"))
    try:
        with LocalServer(workdir / "src") as s, LocalServer(workdir / "dst") as d:
            src: MongoClient[Any] = MongoClient(s.uri, socketTimeoutMS=3_600_000)
            dst: MongoClient[Any] = MongoClient(d.uri, socketTimeoutMS=3_600_000)
            t0 = time.monotonic()
            load_service_orders(src[DB][SRC], N)
            for keys, options in INDEXES:
                src[DB][SRC].create_index(keys, **options)
            print(
                f"loaded {N:,} orders with {len(INDEXES)} indexes in {time.monotonic() - t0:.0f} s"
            )
            plan_job(
                PlanConfig(
                    source=Endpoint(s.uri, DB, SRC),
                    target=Endpoint(d.uri, DB, DST),
                    job="ix",
                    manifest_dir=workdir,
                    partitions=4,
                )
            )
            runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
            for r in range(ROUNDS):
                for mode in MODES if r % 2 == 0 else tuple(reversed(MODES)):
                    got = one_run(workdir, src, dst, mode)
                    print(
                        f"round {r + 1} --indexes {mode}: "
                        + ", ".join(f"{k} {v:.1f}" for k, v in got.items())
                    )
                    runs[mode].append(got)
            src.close()
            dst.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    med = {m: {k: statistics.median(x[k] for x in runs[m]) for k in runs[m][0]} for m in MODES}
    figures = {
        "documents": N,
        "copy alone (skip), s": med["skip"]["copy_s"],
        "after: copy s": med["after"]["copy_s"],
        "after: index builds s": med["after"]["index_s"],
        "after: total s": med["after"]["total_s"],
        "before: index builds s": med["before"]["index_s"],
        "before: copy with indexes s": med["before"]["copy_s"],
        "before: total s": med["before"]["total_s"],
        "before copy / skip copy": med["before"]["copy_s"] / med["skip"]["copy_s"],
        "after total / before total": med["after"]["total_s"] / med["before"]["total_s"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"figures": figures, "runs": runs}, indent=2) + "\n")
    width = max(map(len, figures))
    for name, value in figures.items():
        print(
            f"{name:<{width}}  {value:,.3f}"
            if isinstance(value, float)
            else f"{name:<{width}}  {value:,}"
        )
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
