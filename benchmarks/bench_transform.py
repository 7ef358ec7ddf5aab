"""What a transform costs the client: CPU per document of the raw copy and of transforms.

One partition of ``N`` service orders (the built-in generator, seed 42) on a local
server is copied by ``copy_partition`` in this process (so the process's CPU time is
the client's: the reader, the transform and the writer thread; the servers are other
processes) to an emptied target, ``ROUNDS`` times interleaved:

- raw: no transform, documents stay raw BSON;
- filter: ``examples/transforms/service_types.py`` (a filter only: still raw, fewer read);
- identity: ``transform`` returns the document (decode + encode, nothing changed);
- rename: ``examples/transforms/rename_fields.py`` (decode, rename, drop a field, add a
  date, validate, encode).

Reported: medians of client CPU microseconds per document read, and the ratios to raw
measured in the same run. Every copy is checked: the target holds what the transform
makes of the source (raw and identity: the same bytes). Results: bench/results-transform.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from vida_loader.copy.task import CopySettings, copy_partition
from vida_loader.dev.demo import load_service_orders
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint
from vida_loader.job.manifest import Partition, RangeMode
from vida_loader.job.runstate import TaskState
from vida_loader.pipeline.clients import close_clients
from vida_loader.transform.plugin import load_transform

N = int(os.environ.get("BENCH_TRANSFORM_N", "50000"))
ROUNDS = int(os.environ.get("BENCH_TRANSFORM_ROUNDS", "3"))
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-transform.json"))
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "transforms"
DB = "bench"
WHOLE = Partition("p00000", RangeMode.MINMAX, None)


def identity_file(workdir: Path) -> Path:
    path = workdir / "identity.py"
    path.write_text("class Identity:\n    def transform(self, doc):\n        return doc\n")
    return path


def raw_hashes(client: MongoClient[Any], coll: str) -> Counter[str]:
    c = client[DB][coll]
    raw = c.with_options(codec_options=c.codec_options.with_options(document_class=RawBSONDocument))
    return Counter(hashlib.sha256(d.raw).hexdigest() for d in raw.find({}, batch_size=5000))


def copy_once(src: LocalServer, dst: LocalServer, transform: Path | None) -> dict[str, Any]:
    with MongoClient(dst.uri) as client:
        client[DB].drop_collection("orders")
    settings = CopySettings(
        Endpoint(src.uri, DB, "orders"),
        Endpoint(dst.uri, DB, "orders"),
        transform=load_transform(str(transform)).spec if transform else None,
        keep_rejects=1000,
    )
    cpu0, t0 = time.process_time(), time.monotonic()
    result = copy_partition(WHOLE, settings)
    cpu, seconds = time.process_time() - cpu0, time.monotonic() - t0
    close_clients()
    if result.state is not TaskState.DONE:
        raise SystemExit(f"copy failed: {result.error}")
    return {
        "docs": result.docs,
        "written": result.target_docs,
        "dropped": result.dropped,
        "rejected": result.rejected,
        "seconds": seconds,
        "cpu_s": cpu,
        "cpu_us_per_doc": cpu / max(result.docs, 1) * 1e6,
    }


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-transform-"))
    kinds: dict[str, Path | None] = {
        "raw": None,
        "filter": EXAMPLES / "service_types.py",
        "identity": identity_file(workdir),
        "rename": EXAMPLES / "rename_fields.py",
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    try:
        with LocalServer(workdir / "source") as src, LocalServer(workdir / "target") as dst:
            with MongoClient(src.uri) as client:
                load_service_orders(client[DB]["orders"], N)
                source = raw_hashes(client, "orders")
            for r in range(ROUNDS):
                for kind, path in kinds.items():
                    m = copy_once(src, dst, path)
                    runs[kind].append(m)
                    print(
                        f"round {r + 1} {kind:8} {m['docs']:>7,} read {m['written']:>7,} "
                        f"written {m['seconds']:6.1f} s  {m['cpu_us_per_doc']:6.1f} us/doc",
                        flush=True,
                    )
                    if kind in ("raw", "identity"):
                        with MongoClient(dst.uri) as client:
                            if raw_hashes(client, "orders") != source:
                                raise SystemExit(f"{kind}: the target differs from the source")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    median = {k: statistics.median(m["cpu_us_per_doc"] for m in v) for k, v in runs.items()}
    ratios = {f"{k} / raw": median[k] / median["raw"] for k in kinds if k != "raw"}
    out = {
        "docs": N,
        "rounds": ROUNDS,
        "cpu_us_per_doc_median": median,
        "ratios": ratios,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print("\nclient CPU per document read (median of", ROUNDS, "rounds):")
    for k, v in median.items():
        print(
            f"  {k:8} {v:6.1f} us" + (f"  ({ratios[k + ' / raw']:.2f}x raw)" if k != "raw" else "")
        )
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
