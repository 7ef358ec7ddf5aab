"""``make demo``: two local servers, sample service orders, then plan, run and verify.

Starts two SecantusDB servers (``devserver``, a subprocess each) in a temporary folder,
loads service-order-like documents into the source, and drives the installed
``vida-loader`` command through ``plan``, ``run``, ``status`` and ``verify``. Both servers stop
and the folder goes away even when a step fails.

    python -m vida_loader.demo [--docs 50000] [--jobs 4] [--partitions 8]
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from bson import Decimal128, ObjectId
from pymongo import MongoClient
from pymongo.collection import Collection

from vida_loader.devserver import LocalServer, ServerStartError

STEP_TIMEOUT = 600  # seconds; no step may hang
STATUSES = ["new", "scheduled", "dispatched", "in_progress", "on_hold", "completed", "cancelled"]
CITIES = ["Lisboa", "Porto", "Madrid", "Sevilla", "Lyon", "Berlin", "Milano", "Dublin"]
PARTS = ["filter", "valve", "pump", "sensor", "gasket", "board", "fan", "relay", "hose"]


def service_orders(n: int, seed: int = 42, first: int = 0) -> list[dict[str, Any]]:
    """Orders ``first`` to ``first + n - 1``, about 1 KB each, the same for the same seed."""
    rng = random.Random(f"{seed}:{first}")
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    orders = []
    for i in range(first, first + n):
        created = start + datetime.timedelta(seconds=i * 37 + rng.randint(0, 30))
        oid = ObjectId.from_datetime(created).binary[:4] + rng.randbytes(8)
        lines = []
        total = Decimal(0)
        for _ in range(rng.randint(1, 5)):
            qty = rng.randint(1, 4)
            price = Decimal(rng.randint(500, 50_000)) / 100
            total += price * qty
            lines.append(
                {
                    "sku": f"{rng.choice(PARTS).upper()}-{rng.randint(100, 999)}",
                    "description": f"{rng.choice(PARTS)} replacement",
                    "quantity": qty,
                    "unitPrice": Decimal128(price),
                }
            )
        status = rng.choice(STATUSES)
        orders.append(
            {
                "_id": ObjectId(oid),
                "orderNumber": f"SO-{i:08d}",
                "status": status,
                "priority": rng.choice(["low", "normal", "high", "urgent"]),
                "customer": {
                    "id": f"C{rng.randint(1, 20_000):06d}",
                    "name": f"Customer {rng.randint(1, 20_000)}",
                    "email": f"contact{rng.randint(1, 99_999)}@example.com",
                    "phone": f"+351 {rng.randint(200_000_000, 999_999_999)}",
                },
                "site": {
                    "address": {
                        "street": f"Rua {rng.randint(1, 500)}",
                        "city": rng.choice(CITIES),
                        "postalCode": f"{rng.randint(1000, 9999)}-{rng.randint(100, 999)}",
                    },
                    "geo": {
                        "type": "Point",
                        "coordinates": [rng.uniform(-9.5, 13.4), rng.uniform(37.0, 52.5)],
                    },
                },
                "createdAt": created,
                "scheduledFor": created + datetime.timedelta(days=rng.randint(1, 20)),
                "technician": None
                if status == "new"
                else {"id": f"T{rng.randint(1, 400):04d}", "skills": rng.sample(PARTS, 3)},
                "lines": lines,
                "total": Decimal128(total),
                "notes": " ".join(rng.choices(PARTS + ["check", "call", "urgent"], k=30)),
                "tags": rng.sample(["warranty", "vip", "repeat", "remote", "night"], 2),
            }
        )
    return orders


def load_service_orders(coll: Collection[dict[str, Any]], n: int) -> None:
    """Insert orders 0 to ``n - 1`` into ``coll`` in batches of 5,000 (demo and bench)."""
    for i in range(0, n, 5000):
        coll.insert_many(service_orders(min(5000, n - i), first=i), ordered=False)


def _command() -> list[str]:
    """The installed ``vida-loader`` beside this Python, else ``python -m vida_loader``."""
    script = Path(sys.executable).with_name("vida-loader")
    return [str(script)] if script.exists() else [sys.executable, "-m", "vida_loader"]


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def _cli(args: list[str], env: dict[str, str]) -> int:
    cmd = _command() + args
    print("$ vida-loader " + " ".join(args), flush=True)
    return subprocess.run(cmd, env=env, timeout=STEP_TIMEOUT, check=False).returncode


def run_demo(docs: int, jobs: int, partitions: int) -> int:
    """The whole demo; returns the exit code of the first failing step, else 0."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="vida-demo-"))
    try:
        _step("1/6 starting two local SecantusDB servers")
        with (
            LocalServer(workdir / "source-data") as source,
            LocalServer(workdir / "target-data") as target,
        ):
            print(f"source {source.uri}\ntarget {target.uri}")
            _step(f"2/6 loading {docs:,} service orders into the source (demo.orders)")
            t0 = time.monotonic()
            client: MongoClient[dict[str, Any]]
            with MongoClient(source.uri, serverSelectionTimeoutMS=10_000) as client:
                load_service_orders(client["demo"]["orders"], docs)
                size = client["demo"].command("collStats", "orders").get("size", 0)
            secs = time.monotonic() - t0
            print(f"loaded {docs:,} documents, {size / 1e6:,.1f} MB, in {secs:.1f} s")
            env = dict(
                os.environ,
                VIDA_SOURCE_URI=source.uri,
                VIDA_SOURCE_DB="demo",
                VIDA_SOURCE_COLLECTION="orders",
                VIDA_TARGET_URI=target.uri,
                VIDA_TARGET_DB="demo",
                VIDA_TARGET_COLLECTION="orders",
                VIDA_MANIFEST_DIR=str(workdir / "partitions"),
                VIDA_JOB="demo",
            )
            steps = [
                (
                    "3/6 plan: split the source into _id ranges",
                    ["plan", "--partitions", str(partitions)],
                ),
                (
                    f"4/6 run -j {jobs}: copy raw BSON, confirm every partition",
                    ["run", "-j", str(jobs)],
                ),
                ("5/6 status: what the job's files say (works during a run too)", ["status"]),
                ("6/6 verify: count every range on both sides", ["verify"]),
            ]
            for title, args in steps:
                _step(title)
                code = _cli(args, env)
                if code != 0:
                    print(f"\ndemo: step '{args[0]}' failed with exit code {code}", file=sys.stderr)
                    return code
        print(f"\ndemo: done in {time.monotonic() - started:.1f} s; both servers stopped")
        return 0
    except ServerStartError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 3
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vida_loader.demo", description=__doc__)
    parser.add_argument("--docs", type=int, default=50_000, help="documents to load")
    parser.add_argument("--jobs", type=int, default=4, help="worker processes for run")
    parser.add_argument("--partitions", type=int, default=4, help="partitions to plan")
    args = parser.parse_args(argv)
    return run_demo(args.docs, args.jobs, args.partitions)


if __name__ == "__main__":
    sys.exit(main())
