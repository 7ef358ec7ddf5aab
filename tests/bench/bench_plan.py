"""How planning scales with the collection: plan time against a full read, same run.

    .venv/bin/python tests/bench/bench_plan.py --sizes 100000 1000000

Starts a local SecantusDB (or uses --uri), loads ~1.1 KB service-order-like documents
into one collection per size (kept between runs with --storage-path), then for each
size times `plan` (64 MB partitions) and a full raw read of the collection. Timings on
a shared machine are noisy: compare the ratios printed, not the seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bson import ObjectId
from pymongo import MongoClient, monitoring

from vida_loader.config import PlanConfig
from vida_loader.copy.planner import plan_job
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint


class CommandCounter(monitoring.CommandListener):
    """Counts the commands plan sends and the bytes of their replies."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.seconds: dict[str, float] = {}
        self.reply_bytes = 0
        self.active = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.active:
            self.commands.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if self.active:
            self.reply_bytes += len(str(event.reply))
            name = event.command_name
            self.seconds[name] = self.seconds.get(name, 0.0) + event.duration_micros / 1e6

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def load(coll: Any, n: int) -> None:
    have = coll.estimated_document_count()
    if have == n:
        return
    coll.drop()
    pad = "x" * 1000
    for start in range(0, n, 5000):
        batch = [
            {"_id": ObjectId(), "n": i, "pad": pad} for i in range(start, min(n, start + 5000))
        ]
        coll.insert_many(batch, ordered=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--uri", help="use a running server instead of starting one")
    ap.add_argument("--db", default="bench")
    ap.add_argument("--storage-path", type=Path, help="keep the server's data here")
    args = ap.parse_args()
    server = None
    uri = args.uri
    if uri is None:
        path = args.storage_path or Path(tempfile.mkdtemp(prefix="vida-bench-")) / "data"
        server = LocalServer(path).start()
        uri = server.uri
    client: MongoClient[dict[str, Any]] = MongoClient(uri, socketTimeoutMS=600_000)
    counter = CommandCounter()
    monitoring.register(counter)  # applies to the clients plan_job creates
    rows = []
    try:
        for n in args.sizes:
            coll = client[args.db][f"orders_{n}"]
            load(coll, n)
            t0 = time.monotonic()
            read = sum(len(b) for b in coll.find_raw_batches({}, batch_size=5000))
            full_read = time.monotonic() - t0
            with tempfile.TemporaryDirectory() as tmp:
                cfg = PlanConfig(
                    source=Endpoint(uri, args.db, coll.name),
                    target=Endpoint(uri, args.db + "_copy", coll.name),
                    job="bench",
                    manifest_dir=Path(tmp),
                )
                counter.commands, counter.reply_bytes, counter.active = [], 0, True
                counter.seconds = {}
                res = plan_job(cfg)
                counter.active = False
            m = res.manifest
            rows.append((n, res.seconds, full_read, len(m.partitions), m.split["sample_size"]))
            print(
                f"{n:>10,} docs  plan {res.seconds:7.2f} s  full read {full_read:7.2f} s "
                f"({read / 2**20:,.0f} MiB)  plan/read {res.seconds / full_read:5.2f}  "
                f"partitions {len(m.partitions)}  _ids sampled {m.split['sample_size']:,}  "
                f"plan sent {len(counter.commands)} commands, read ~{counter.reply_bytes:,} B",
                flush=True,
            )
            spent = sorted(counter.seconds.items(), key=lambda kv: -kv[1])
            print("    server time by command: " + ", ".join(f"{k} {v:.2f} s" for k, v in spent))
        if len(rows) >= 2:
            (n0, p0, r0, *_), (n1, p1, r1, *_) = rows[0], rows[-1]
            print(
                f"x{n1 / n0:g} documents: plan time x{p1 / p0:.2f}, full read x{r1 / r0:.2f}, "
                f"plan/read ratio {p0 / r0:.2f} -> {p1 / r1:.2f}"
            )
    finally:
        client.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
