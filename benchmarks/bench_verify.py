"""What a deep verify costs against one plain read of the source, and whether its memory
stays flat as the collection grows.

Throughput: the source and the target hold the same ``N`` service orders (the built-in
generator, seed 42, inserted raw into both: the same bytes). In this process,
``ROUNDS`` times interleaved:

- read: one ``ResumingReader`` pass over the source's whole range (raw documents, the
  copy's read path), nothing else;
- deep: ``verify_partition`` of the same range (the source read on its own thread,
  the target merged against it, every byte compared).

Reported: medians of documents per second and deep / read (the goal: at least 0.8,
both sides being read at once). Every deep pass must find all documents the same.

Memory: ``SMALL`` then ``LARGE`` small documents (about 120 bytes) in both servers; a
fresh child process deep-verifies the whole range and reports its peak RSS. Flat means
the large collection's peak is about the small one's (the merge holds a few pages).

Results: bench/results-verify.json (``BENCH_ONLY=throughput`` or ``memory`` runs that part
alone and keeps the other's figures).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from vida_loader.dev.demo import load_service_orders
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.job.manifest import Partition, RangeMode
from vida_loader.job.runstate import TaskState
from vida_loader.pipeline.clients import close_clients, collection
from vida_loader.pipeline.reader import ResumingReader
from vida_loader.retry import Retrier, RetryPolicy
from vida_loader.verify.deep import DeepSettings, verify_partition

N = int(os.environ.get("BENCH_VERIFY_N", "50000"))
ROUNDS = int(os.environ.get("BENCH_VERIFY_ROUNDS", "3"))
SMALL = int(os.environ.get("BENCH_VERIFY_SMALL", "100000"))
LARGE = int(os.environ.get("BENCH_VERIFY_LARGE", "1000000"))
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-verify.json"))
ONLY = os.environ.get("BENCH_ONLY", "")  # "throughput" or "memory": that part alone
DB = "bench"
WHOLE = Partition("p00000", RangeMode.MINMAX, None)
# Service orders average about 1.4 KB: 2 MB pages hold about 1,400 (the copy's sizing).
PAGE = 1400


def plain_read(src: LocalServer, coll: str) -> dict[str, Any]:
    c = collection(Endpoint(src.uri, DB, coll), "source", Timeouts())
    t0 = time.monotonic()
    docs = sum(1 for _ in ResumingReader(WHOLE, c, PAGE, Retrier(RetryPolicy())))
    seconds = time.monotonic() - t0
    close_clients()
    return {"docs": docs, "seconds": seconds, "docs_s": docs / seconds}


def deep(src: LocalServer, dst: LocalServer, coll: str, batch: int = PAGE) -> dict[str, Any]:
    s = DeepSettings(
        Endpoint(src.uri, DB, coll), Endpoint(dst.uri, DB, coll), read_batch_size=batch
    )
    t0 = time.monotonic()
    result = verify_partition(WHOLE, s)
    seconds = time.monotonic() - t0
    close_clients()
    if result.state is not TaskState.DONE or not result.tally.matches:
        raise SystemExit(f"deep verify failed or found differences: {result.error or result.tally}")
    docs = result.tally.source_docs
    return {"docs": docs, "seconds": seconds, "docs_s": docs / seconds}


def load_small(uri: str, n: int) -> None:
    with MongoClient(uri) as client:
        coll = client[DB]["small"]
        coll.drop()
        for i in range(0, n, 10_000):
            batch = [
                RawBSONDocument(
                    bson.encode({"_id": j, "n": j, "name": f"order-{j:09d}", "pad": "x" * 64})
                )
                for j in range(i, min(n, i + 10_000))
            ]
            coll.insert_many(batch, ordered=False)


def peak_rss_mb(src: LocalServer, dst: LocalServer) -> float:
    """A fresh process deep-verifies ``small`` and reports its peak RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", src.uri, dst.uri],
        check=True,
        capture_output=True,
        text=True,
        timeout=3600,
    ).stdout
    return float(out.strip().splitlines()[-1])


def child(src_uri: str, dst_uri: str) -> int:
    s = DeepSettings(Endpoint(src_uri, DB, "small"), Endpoint(dst_uri, DB, "small"))
    result = verify_partition(WHOLE, s)
    if result.state is not TaskState.DONE or not result.tally.matches:
        raise SystemExit(f"deep verify failed: {result.error or result.tally}")
    print(result.tally.source_docs)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return 0


def throughput(src: LocalServer, dst: LocalServer) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {"read": [], "deep": []}
    for server in (src, dst):
        with MongoClient(server.uri) as client:
            load_service_orders(client[DB]["orders"], N)
    for r in range(ROUNDS):
        for kind in ("read", "deep"):
            m = plain_read(src, "orders") if kind == "read" else deep(src, dst, "orders")
            runs[kind].append(m)
            print(
                f"round {r + 1} {kind:5} {m['docs']:>8,} docs {m['seconds']:6.2f} s "
                f"{m['docs_s']:>9,.0f} docs/s",
                flush=True,
            )
    median = {k: statistics.median(m["docs_s"] for m in v) for k, v in runs.items()}
    ratio = median["deep"] / median["read"]
    print(
        f"deep verify {median['deep']:,.0f} docs/s vs one plain read {median['read']:,.0f} "
        f"docs/s: {ratio:.2f}x (goal >= 0.8)",
        flush=True,
    )
    return {
        "docs": N,
        "rounds": ROUNDS,
        "docs_s_median": median,
        "deep / read": ratio,
        "runs": runs,
    }


def memory(src: LocalServer, dst: LocalServer) -> dict[str, Any]:
    peaks: dict[str, float] = {}
    for n in (SMALL, LARGE):
        for server in (src, dst):
            load_small(server.uri, n)
        peaks[str(n)] = peak_rss_mb(src, dst)
        print(f"memory: {n:>9,} documents, peak RSS {peaks[str(n)]:.0f} MB", flush=True)
    growth = peaks[str(LARGE)] / peaks[str(SMALL)]
    print(f"peak RSS {SMALL:,} -> {LARGE:,} documents: {growth:.2f}x (flat: about 1)")
    return {"peak_rss_mb": peaks, "rss large / small": growth}


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-verify-"))
    try:
        out = json.loads(RESULTS.read_text()) if ONLY and RESULTS.exists() else {}
    except ValueError:
        out = {}
    try:
        with LocalServer(workdir / "source") as src, LocalServer(workdir / "target") as dst:
            if ONLY != "memory":
                out["throughput"] = throughput(src, dst)
            if ONLY != "throughput":
                out["memory"] = memory(src, dst)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        raise SystemExit(child(sys.argv[2], sys.argv[3]))
    raise SystemExit(main())
