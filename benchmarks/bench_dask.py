"""What the Dask executor costs against the local pool: the same job, the same machine.

Two local servers; ``N`` service orders in the source, planned in ``PARTS`` partitions.
Measured in one run, alternating, ``ROUNDS`` times each (the median counts):

- ``local``: ``run -j 2`` on this machine's spawned worker processes (the reference);
- ``dask``: ``run -j 2 --executor dask`` on a scheduler and 2 one-thread worker processes
  started here (their start is not timed: a cluster is up before a job is submitted).

Every round starts the job over (``--restart --drop-target``) and checks the target
against the source, byte for byte. The ratio is local's seconds over Dask's (1.0: as
fast; the issue expects at least 0.9).

Results: bench/results-dask.json.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import hashes, load_and_plan, write_results

from vida_loader.config import RunConfig
from vida_loader.copy.coordinator import run_job
from vida_loader.dev.dask_cluster import local_dask
from vida_loader.dev.server import LocalServer

N = int(os.environ.get("BENCH_DASK_N", "50000"))
PARTS = int(os.environ.get("BENCH_DASK_PARTS", "8"))
ROUNDS = int(os.environ.get("BENCH_DASK_ROUNDS", "3"))
JOBS = 2
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-dask.json"))
DB = "bench"


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-dask-"))
    parts = workdir / "partitions"
    out: dict[str, Any] = {"docs": N, "partitions": PARTS, "jobs": JOBS, "rounds": ROUNDS}
    seconds: dict[str, list[float]] = {"local": [], "dask": []}
    try:
        with (
            LocalServer(workdir / "source") as src,
            LocalServer(workdir / "target") as dst,
            local_dask(workdir / "dask", workers=JOBS) as cluster,
        ):
            load_and_plan(src.uri, dst.uri, DB, N, PARTS, parts)
            want = hashes(src.uri, DB, "orders")
            for i in range(ROUNDS):
                for where in ("local", "dask"):
                    cfg = RunConfig(
                        job="bench",
                        manifest_dir=parts,
                        jobs=JOBS,
                        restart=True,
                        drop_target=True,
                        executor=where,
                        scheduler=cluster.address if where == "dask" else None,
                    )
                    t0 = time.monotonic()
                    result = run_job(cfg)
                    took = time.monotonic() - t0
                    if result.failed or hashes(dst.uri, DB, "orders") != want:
                        raise SystemExit(f"{where} round {i + 1}: the target differs")
                    seconds[where].append(took)
                    print(f"round {i + 1} {where}: {took:.1f} s", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for where, secs in seconds.items():
        out[f"{where}_s"] = secs
        out[f"{where}_median_s"] = statistics.median(secs)
        out[f"{where}_docs_per_s"] = N / statistics.median(secs)
    out["dask / local"] = out["local_median_s"] / out["dask_median_s"]
    print(
        f"median: local {out['local_median_s']:.1f} s, dask {out['dask_median_s']:.1f} s; "
        f"dask runs at {out['dask / local']:.2f}x the local pool's throughput "
        "(every round byte-identical)",
        flush=True,
    )
    write_results(RESULTS, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
