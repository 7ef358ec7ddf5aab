"""``make bench`` (generate part): how fast ``vida-loader generate`` is, as same-run ratios.

1. To ``/dev/null``: ``generate --out /dev/null`` through the installed CLI at ``-j 1``
   and ``-j 2`` with ``GEN_BENCH_FILE_N`` (default 500,000) documents. "Per core" is
   documents over the client CPU seconds (user + sys of the command and its workers,
   start-up and pool building included). Beside it the seed tool's way: one faker call
   per field per document (``naive``), on ``GEN_BENCH_NAIVE_N`` documents.
2. To a local SecantusDB server, ``GEN_BENCH_SERVER_N`` (default 150,000) documents,
   ``GEN_BENCH_JOBS`` (default 2) processes, each measure on a fresh server, in
   ``GEN_BENCH_ROUNDS`` (default 2) alternating rounds, the best of each kept:
   - ``ceiling``: the server's own ingest: the same documents, encoded before the clock
     starts, inserted as raw batches of 1,000 by the same number of processes (w=1);
   - ``generate w=1`` and ``generate w=0``: the CLI, to the end of its confirmation.
   The ratio generate / ceiling is what the issue asks to be at least 0.9. The command's
   fixed start-up (``--total 1``: imports, connecting, spawning, pools) is measured too,
   and the ratio is also given with it taken out: the ceiling starts its clock after its
   processes have started and encoded their documents.

Results go to stdout and ``bench/results-generate.json``. The machine is shared and
noisy: compare the ratios, which come from one run, not the seconds.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from vida_loader.dev.server import LocalServer
from vida_loader.generate.service_orders import ServiceOrders

FILE_N = int(os.environ.get("GEN_BENCH_FILE_N", "500000"))
NAIVE_N = int(os.environ.get("GEN_BENCH_NAIVE_N", "3000"))
SERVER_N = int(os.environ.get("GEN_BENCH_SERVER_N", "150000"))
JOBS = int(os.environ.get("GEN_BENCH_JOBS", "2"))
ROUNDS = int(os.environ.get("GEN_BENCH_ROUNDS", "2"))
RESULTS = Path(os.environ.get("GEN_BENCH_RESULTS", "bench/results-generate.json"))
SEED = 2026
STEP_TIMEOUT = 1800
VIDA_CLI = str(Path(sys.executable).with_name("vida-loader"))


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed_cli(args: list[str], log: Path) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) of one ``vida-loader`` command."""
    cpu0, t0 = children_cpu(), time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(
            [VIDA_CLI, *args], stdout=out, stderr=subprocess.STDOUT, timeout=STEP_TIMEOUT
        )
    wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"vida-loader {' '.join(args)} failed:\n{log.read_text()[-2000:]}")
    return wall, cpu


def naive_docs_per_s(n: int) -> float:
    """The seed tool's way: one faker call per field per document, then encode."""
    import bson
    from faker import Faker

    fake = Faker("sv_SE")
    fake.seed_instance(1)
    t0 = time.process_time()
    for _ in range(n):
        items = [
            {
                "item_id": fake.bothify("OP-####"),
                "description": fake.sentence(),
                "quantity": fake.random_int(1, 4),
                "unit_price": float(fake.pydecimal(left_digits=4, right_digits=2, positive=True)),
                "labor_hours": fake.pyfloat(min_value=0.2, max_value=4, right_digits=1),
            }
            for _ in range(fake.random_int(1, 3))
        ]
        doc = {
            "order_id": fake.bothify("WO-####-##########"),
            "service_type": fake.word(),
            "service_center_id": fake.bothify("SC-####"),
            "customer": {
                "customer_id": fake.uuid4(),
                "name": fake.name(),
                "email": fake.email(),
                "phone": fake.phone_number(),
                "address": {
                    "street": fake.street_address(),
                    "postal_code": fake.postcode(),
                    "city": fake.city(),
                },
            },
            "vehicle": {
                "vin": fake.bothify("YV1?????????????").upper(),
                "license_plate": fake.license_plate(),
                "make": "Volvo",
                "model": fake.word(),
                "year": fake.random_int(2005, 2024),
                "mileage": fake.random_int(1000, 300000),
            },
            "service_items": items,
            "order_date": fake.date_time_between("-5y"),
            "status": fake.random_element(("scheduled", "in_progress", "completed")),
            "technician_id": fake.bothify("TECH-####-##"),
            "notes": fake.paragraph(),
        }
        bson.encode(doc)
    return n / (time.process_time() - t0)


def _ceiling_worker(uri: str, db: str, coll: str, lo: int, hi: int, ready: Any, go: Any) -> None:
    docs = [RawBSONDocument(d) for d in ServiceOrders(SEED).encode_range(lo, hi)]
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=10_000)
    target = client[db][coll]
    ready.put(lo)
    go.wait(STEP_TIMEOUT)
    for i in range(0, len(docs), 1000):
        target.insert_many(docs[i : i + 1000], ordered=False)
    client.close()


def ceiling(uri: str, n: int, jobs: int) -> float:
    """Seconds for ``jobs`` processes to insert ``n`` pre-encoded documents (w=1)."""
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Queue(), ctx.Event()
    step = -(-n // jobs)
    procs = [
        ctx.Process(
            target=_ceiling_worker,
            args=(uri, "bench", "ceiling", lo, min(n, lo + step), ready, go),
        )
        for lo in range(0, n, step)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=STEP_TIMEOUT)
    t0 = time.monotonic()
    go.set()
    for p in procs:
        p.join(STEP_TIMEOUT)
        if p.exitcode != 0:
            raise SystemExit("a ceiling process failed")
    return time.monotonic() - t0


def _measure(kind: str, server: LocalServer, work: Path) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) of one server measure on ``server``."""
    client: MongoClient[dict[str, Any]] = MongoClient(server.uri)
    try:
        if kind == "ceiling":
            wall = ceiling(server.uri, SERVER_N, JOBS)
            assert client.bench.ceiling.count_documents({}) == SERVER_N
            return wall, 0.0
        base = ["generate", "--seed", str(SEED), "-j", str(JOBS), "--target-uri", server.uri]
        base += ["--target-db", "bench", "--target-collection", "gen"]
        if kind == "startup":
            # The command's fixed start-up (imports, connecting, spawning, pools).
            return timed_cli(base + ["--total", "1"], work / "startup.log")
        args = base + ["--total", str(SERVER_N), "--write-concern", kind]
        wall, cpu = timed_cli(args, work / f"server-w{kind}.log")
        assert client.bench.gen.count_documents({}) == SERVER_N
        return wall, cpu
    finally:
        client.close()


def main() -> int:
    figures: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "sizes": {"file_n": FILE_N, "naive_n": NAIVE_N, "server_n": SERVER_N, "jobs": JOBS},
    }
    with tempfile.TemporaryDirectory(prefix="vida-bench-gen-") as tmp:
        work = Path(tmp)
        rows: list[tuple[str, int, float, float]] = []
        for j in (1, 2):
            args = ["generate", "--total", str(FILE_N), "--seed", str(SEED), "-j", str(j)]
            wall, cpu = timed_cli(args + ["--out", "/dev/null"], work / f"file-{j}.log")
            rows.append((f"--out /dev/null -j {j}", FILE_N, wall, cpu))
        naive = naive_docs_per_s(NAIVE_N)
        # Each server measure on a fresh server (a server holding the previous measure's
        # documents ingests more slowly: measured), in ROUNDS alternating rounds; the
        # best of each kind is kept, as the machine is shared and noisy.
        best: dict[str, tuple[float, float]] = {}
        for round_ in range(ROUNDS):
            for kind in ("ceiling", "startup", "1", "0"):
                data = work / f"server-{round_}-{kind}"
                with LocalServer(data) as server:
                    wall, cpu = _measure(kind, server, work)
                shutil.rmtree(data, ignore_errors=True)
                if kind not in best or wall < best[kind][0]:
                    best[kind] = (wall, cpu)
        rows.append((f"ceiling: {JOBS} processes, pre-encoded, w=1", SERVER_N, *best["ceiling"]))
        figures["startup_s"] = round(best["startup"][0], 2)
        for wc in ("1", "0"):
            rows.append((f"generate -j {JOBS} w={wc} (to confirmation)", SERVER_N, *best[wc]))
    table = []
    for name, n, wall, cpu in rows:
        row = {"name": name, "docs": n, "seconds": round(wall, 2), "docs_per_s": round(n / wall)}
        if cpu:
            row["client_cpu_s"] = round(cpu, 2)
            row["docs_per_cpu_s"] = round(n / cpu)
        table.append(row)
        per_core = f"{n / cpu:>10,.0f}" if cpu else f"{'':>10}"
        print(f"{name:<48} {n:>9,} docs {wall:>7.1f} s {n / wall:>9,.0f} docs/s {per_core} /cpu-s")
    file1, file2, ceil_row, w1, w0 = table
    figures["measures"] = table
    figures["ratios"] = {
        "docs per cpu-second, -j 1 (goal >= 40,000)": file1["docs_per_cpu_s"],
        "docs per cpu-second, -j 2": file2["docs_per_cpu_s"],
        "naive faker-per-field docs per cpu-second": round(naive),
        "-j 1 per cpu-second / naive": round(file1["docs_per_cpu_s"] / naive, 1),
        "generate w=1 / ceiling (goal >= 0.9)": round(w1["docs_per_s"] / ceil_row["docs_per_s"], 2),
        "generate w=1 / ceiling, start-up taken out": round(
            ceil_row["seconds"] / (w1["seconds"] - figures["startup_s"]), 2
        ),
        "generate w=0 / ceiling": round(w0["docs_per_s"] / ceil_row["docs_per_s"], 2),
        "start-up of the command, seconds": figures["startup_s"],
    }
    for key, value in figures["ratios"].items():
        print(f"{key:<48} {value:>10,}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
