"""What files cost against a direct copy: dump and restore throughput vs ``run``, file sizes.

Two local servers; ``N`` service orders in the source, planned in 4 partitions. Measured in
one run, each at ``-j 2``:

- ``run``: the copy into the target (the reference);
- ``dump`` to a folder, plain and ``--gzip``: seconds, MB/s of BSON, file size;
- ``restore`` of each into another collection of the target: seconds, MB/s;
- every restored collection is compared with the source, byte for byte.

Ratios are throughput over ``run``'s (1.0: as fast as the direct copy). SecantusDB answers
every range query with a full scan, so the dump (which reads ranges) pays what ``run``
pays; the restore reads a file and pays nothing of that.

Results: bench/results-dump.json.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from common import hashes, load_and_plan, write_results

from vida_loader.config import DumpConfig, RestoreConfig, RunConfig
from vida_loader.copy.coordinator import run_job
from vida_loader.dev.server import LocalServer
from vida_loader.dump.job import dump_job
from vida_loader.dump.restore import restore_job

N = int(os.environ.get("BENCH_DUMP_N", "50000"))
JOBS = 2
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-dump.json"))
DB = "bench"
MB = 1024 * 1024


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-dump-"))
    parts = workdir / "partitions"
    out: dict[str, Any] = {"docs": N, "jobs": JOBS}
    try:
        with LocalServer(workdir / "source") as src, LocalServer(workdir / "target") as dst:
            load_and_plan(src.uri, dst.uri, DB, N, 4, parts)
            t0 = time.monotonic()
            result = run_job(RunConfig(job="bench", manifest_dir=parts, jobs=JOBS))
            out["run_s"] = time.monotonic() - t0
            if result.failed:
                raise SystemExit(f"copy failed: {result.failed}")
            want = hashes(src.uri, DB, "orders")
            for gz in (False, True):
                name = "gzip" if gz else "plain"
                folder = workdir / f"dump-{name}"
                t0 = time.monotonic()
                d = dump_job(
                    DumpConfig(job="bench", manifest_dir=parts, out=folder, jobs=JOBS, gzip=gz)
                )
                out[f"dump_{name}_s"] = time.monotonic() - t0
                out[f"file_{name}_mb"] = d.file_bytes / MB
                out["bson_mb"] = d.total("bytes") / MB
                t0 = time.monotonic()
                r = restore_job(
                    RestoreConfig(
                        job=f"restore-{name}",
                        manifest_dir=parts,
                        input=d.files.bson,
                        target_uri=dst.uri,
                        target_collection=f"back_{name}",
                        jobs=JOBS,
                    )
                )
                out[f"restore_{name}_s"] = time.monotonic() - t0
                if not r.complete or hashes(dst.uri, DB, f"back_{name}") != want:
                    raise SystemExit(f"the {name} restore differs from the source")
                for step in ("dump", "restore"):
                    secs = out[f"{step}_{name}_s"]
                    out[f"{step}_{name} / run"] = out["run_s"] / secs
                    print(
                        f"{step} {name}: {secs:.1f} s, {out['bson_mb'] / secs:.1f} MB/s, "
                        f"{out[f'{step}_{name} / run']:.2f}x run's throughput",
                        flush=True,
                    )
            print(
                f"run {out['run_s']:.1f} s; files: {out['file_plain_mb']:.1f} MB plain, "
                f"{out['file_gzip_mb']:.1f} MB gzip; every restore equals the source byte for byte",
                flush=True,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_results(RESULTS, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
