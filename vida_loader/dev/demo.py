"""``make demo``: two local servers, sample service orders, then plan, run and verify.

Starts two SecantusDB servers (``dev.server``, a subprocess each) in a temporary folder,
and drives the installed ``vida-loader`` command through ``generate`` (service orders into
the source, which then gets an application's indexes), ``plan``, ``run`` (data, then
indexes), ``status``, ``verify``, ``report``, ``indexes diff``, ``dump`` and ``restore``, then
``verify --deep`` on a Dask cluster started here (a scheduler and two worker processes,
when the ``[dask]`` extra is installed); then a second job of the same
orders through ``examples/transforms/rename_fields.py`` (plan, run --transform, verify).
The servers and the cluster stop and the folder goes away even when a step fails.

With ``--cosmos RU`` (``make demo-cosmos``) the source is read through the Cosmos DB
stand-in (``dev.cosmos``) provisioned at that many RU/s: ``plan`` estimates the request
units and the time, ``run`` keeps 30 % of the throughput free and shows RU on its
progress line, and the stand-in's own total is printed beside the run's.

    python -m vida_loader.dev.demo [--docs 50000] [--jobs 4] [--partitions 8] [--cosmos RU]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from vida_loader.dev.cosmos import CosmosStandIn
from vida_loader.dev.dask_cluster import local_dask
from vida_loader.dev.server import LocalServer, ServerStartError
from vida_loader.generate.service_orders import ServiceOrders

if TYPE_CHECKING:
    from pymongo.collection import Collection

STEP_TIMEOUT = 600  # seconds; no step may hang
SEED = 42


def load_service_orders(coll: Collection[dict[str, Any]], n: int) -> None:
    """Insert the built-in generator's orders 0 to ``n - 1`` (seed 42) into ``coll`` in
    batches of 1,000, acknowledged (benchmarks fill their source with this)."""
    source = ServiceOrders(SEED)
    for i in range(0, n, 10_000):
        docs = [RawBSONDocument(d) for d in source.encode_range(i, min(n, i + 10_000))]
        for j in range(0, len(docs), 1000):
            coll.insert_many(docs[j : j + 1000], ordered=False)


APP_INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("order_id", 1)], {"unique": True}),
    ([("service_center_id", 1), ("order_date", -1)], {}),
    ([("customer.customer_id", 1)], {}),
    ([("completion_date", 1)], {"partialFilterExpression": {"status": "completed"}}),
]


def create_app_indexes(uri: str) -> None:
    """The indexes an application of service orders would have on demo.orders."""
    client: MongoClient[dict[str, Any]]
    with MongoClient(uri, serverSelectionTimeoutMS=10_000, socketTimeoutMS=600_000) as client:
        coll: Collection[dict[str, Any]] = client.demo.orders
        for keys, options in APP_INDEXES:
            name = coll.create_index(keys, **options)
            print(f"created index {name} {options or ''}".rstrip(), flush=True)


EXAMPLE_TRANSFORM = Path(__file__).resolve().parents[2] / "examples/transforms/rename_fields.py"
MIGRATED = ["--job", "demo-migrated"]
FLAW = "flaw"  # a step done here, not by the CLI
WRITES = "writes"  # the application's writes after the copy: a step done here
EXPECT_1 = "<exit 1>"  # a step whose success is exit code 1 (it finds what it should)


def flaw_orders(uri: str) -> None:
    """Make three orders test orders and give two a bad VIN: what the example transform
    drops and rejects."""
    client: MongoClient[dict[str, Any]]
    with MongoClient(uri, serverSelectionTimeoutMS=10_000, socketTimeoutMS=60_000) as client:
        coll: Collection[dict[str, Any]] = client.demo.orders
        ids = [d["_id"] for d in coll.find({}, {"_id": 1}).sort("_id", 1).limit(500)][::100]
        for n, _id in enumerate(ids):
            if n < 3:
                coll.update_one({"_id": _id}, {"$set": {"order_id": f"TEST-{n}"}})
            else:
                coll.update_one({"_id": _id}, {"$set": {"vehicle.vin": "UNKNOWN"}})
    print("3 orders became test orders (order_id TEST-...), 2 got the VIN 'UNKNOWN'")


def app_writes(uri: str) -> None:
    """What the application goes on writing after the copy: new orders, changed ones, and
    deleted ones (the first job's follow step replays them)."""
    client: MongoClient[dict[str, Any]]
    with MongoClient(uri, serverSelectionTimeoutMS=10_000) as client:
        coll: Collection[dict[str, Any]] = client.demo.orders
        ids = [d["_id"] for d in coll.find({}, {"_id": 1}).sort("_id", -1).limit(30)]
        new = ServiceOrders(SEED).encode_range(10**7, 10**7 + 20)  # past the loaded ones
        coll.insert_many([RawBSONDocument(d) for d in new])
        coll.update_many({"_id": {"$in": ids[:10]}}, {"$set": {"status": "completed"}})
        coll.delete_many({"_id": {"$in": ids[10:15]}})
    print("the application wrote 20 new orders, completed 10 and deleted 5")


RESTORED = ["--job", "restore-demo", "--target-collection", "orders_restored"]


def _transform_steps(plan: list[str], run: list[str]) -> list[tuple[str, list[str]]]:
    """The source changes after the copy: a deep verify finds the changed orders and
    repair brings them over. Then a second job: the same orders reshaped on their way
    (docs/transforms.md)."""
    example = os.path.relpath(EXAMPLE_TRANSFORM)  # as a user in the repository types it
    return [
        ("the source gets 3 test orders and 2 orders with a bad VIN", [FLAW]),
        (
            "verify --deep: counts still match, but 5 orders differ byte for byte "
            "(exit code 1 expected)",
            ["verify", "--deep", EXPECT_1],
        ),
        ("repair: the 5 orders again from the source, then checked", ["repair"]),
        ("the application goes on writing to the source", [WRITES]),
        (
            "run --follow --until-caught-up 0: the changes since the copy started, applied "
            "to the target (the position was taken before the copy)",
            ["run", "--follow", "--until-caught-up", "0"],
        ),
        ("verify --deep again: every document the same", ["verify", "--deep"]),
        (
            "plan a second job: the same orders into demo.orders_migrated",
            [*plan, *MIGRATED, "--target-collection", "orders_migrated"],
        ),
        (
            "run it with --transform: drop test orders, rename fields, leave out notes, "
            "reject bad VINs (indexes skipped: they name the old fields)",
            [*run, *MIGRATED, "--transform", example, "--indexes", "skip"],
        ),
        ("verify it against what the run recorded", ["verify", *MIGRATED]),
    ]


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


def _run_steps(
    steps: list[tuple[str, list[str]]],
    total: int,
    source_uri: str,
    env: dict[str, str],
    standin: CosmosStandIn | None,
) -> int:
    """Each step in turn (numbered from 2); the exit code of the first that fails."""
    for n, (title, args) in enumerate(steps, start=2):
        _step(f"{n}/{total} {title}")
        if not args:
            create_app_indexes(source_uri)
            continue
        if args == [FLAW]:
            flaw_orders(source_uri)
            continue
        if args == [WRITES]:
            app_writes(source_uri)
            continue
        expected = 1 if EXPECT_1 in args else 0
        args = [a for a in args if a != EXPECT_1]
        code = _cli(args, env)
        if code != expected:
            print(f"\ndemo: step '{args[0]}' failed with exit code {code}", file=sys.stderr)
            return code or 1
        if standin is not None and args[0] == "plan":
            standin.reset()  # from here on: what the copy costs
        if standin is not None and args[0] == "run":
            charged = standin.stats()["charged"]
            print(f"the Cosmos DB stand-in charged {charged:,.0f} RU for the run")
    return 0


def _demo_env(read_from: str, target_uri: str, workdir: Path) -> dict[str, str]:
    """The environment of every step: both sides and the job, as VIDA_* variables."""
    return dict(
        os.environ,
        VIDA_SOURCE_URI=read_from,
        VIDA_SOURCE_DB="demo",
        VIDA_SOURCE_COLLECTION="orders",
        VIDA_TARGET_URI=target_uri,
        VIDA_TARGET_DB="demo",
        VIDA_TARGET_COLLECTION="orders",
        VIDA_MANIFEST_DIR=str(workdir / "partitions"),
        VIDA_JOB="demo",
    )


def _copy_commands(
    docs: int, jobs: int, partitions: int, source_uri: str, cosmos: bool
) -> tuple[list[str], list[str], list[str]]:
    """The generate, plan and run command lines (within 70 % of the RU/s on Cosmos DB)."""
    gen = ["generate", "--total", str(docs), "--seed", str(SEED)]
    gen += ["--target-uri", source_uri, "--target-db", "demo"]
    gen += ["--target-collection", "orders", "--drop-target"]
    plan = ["plan", "--partitions", str(partitions)]
    run = ["run", "-j", str(jobs)]
    if cosmos:
        plan += ["--max-rus-percent", "70"]
        run += ["--max-rus-percent", "70"]
    return gen, plan, run


def _core_steps(
    docs: int,
    jobs: int,
    commands: tuple[list[str], list[str], list[str]],
    cosmos: bool,
    report_dir: Path,
    workdir: Path,
) -> list[tuple[str, list[str]]]:
    """The steps every demo makes: generate, copy, look, check, dump and restore."""
    gen, plan, run = commands
    return [
        (f"generate: {docs:,} service orders into the source (demo.orders)", gen),
        ("the application's indexes on the source", []),
        (
            "config check: servers, driver, source collection, rights to read and write",
            ["config", "check"],
        ),
        ("plan: split the source into _id ranges, read its indexes", plan),
        (
            f"run -j {jobs}: copy raw BSON, confirm every partition, then build "
            "the indexes" + (", within 70 % of the source's RU/s" if cosmos else ""),
            run,
        ),
        ("status: what the job's files say (works during a run too)", ["status"]),
        ("verify: count every range on both sides", ["verify"]),
        (
            f"report: report.html with plots of the run, kept in {report_dir}",
            ["report", "--out", str(report_dir)],
        ),
        ("indexes diff: the target's indexes against the source's", ["indexes", "diff"]),
        (
            f"dump -j {jobs} --gzip: the source in mongodump's layout (a backup "
            "before the switch-over, or for a target this machine cannot reach)",
            ["dump", "--out", str(workdir / "dump"), "--gzip", "-j", str(jobs)],
        ),
        (
            "restore: that dump into demo.orders_restored on the target, its "
            "indexes included",
            ["restore", str(workdir / "dump"), *RESTORED, "-j", str(jobs)],
        ),
    ]


def _dask_step(scheduler: str) -> tuple[str, list[str]]:
    return (
        "verify --deep on the Dask cluster: the same job's comparisons run by "
        "its workers (which could be other machines), every document the same",
        ["verify", "--deep", "--executor", "dask", "--scheduler", scheduler],
    )


def run_demo(
    docs: int,
    jobs: int,
    partitions: int,
    cosmos_ru: float | None = None,
    report_dir: Path = Path("demo-report"),
) -> int:
    """The whole demo; returns the exit code of the first failing step, else 0."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="vida-demo-"))
    standin: CosmosStandIn | None = None
    try:
        with_transform = EXAMPLE_TRANSFORM.is_file()  # not in an installed package
        with_dask = importlib.util.find_spec("distributed") is not None  # the [dask] extra
        total = (21 if with_transform else 12) + int(with_dask)
        dask_note = " and a Dask cluster (a scheduler, 2 worker processes)" if with_dask else ""
        _step(f"1/{total} starting two local SecantusDB servers{dask_note}")
        with (
            LocalServer(workdir / "source-data") as source,
            LocalServer(workdir / "target-data") as target,
            local_dask(workdir / "dask") if with_dask else contextlib.nullcontext() as dask,
        ):
            print(f"source {source.uri}\ntarget {target.uri}")
            if dask is not None:
                print(f"dask scheduler {dask.address}")
            read_from = source.uri
            if cosmos_ru is not None:
                standin = CosmosStandIn(source.port, ru=cosmos_ru).start()
                read_from = standin.uri
                print(f"source as Cosmos DB: {read_from} ({cosmos_ru:,.0f} RU/s provisioned)")
            env = _demo_env(read_from, target.uri, workdir)
            commands = _copy_commands(docs, jobs, partitions, source.uri, standin is not None)
            steps = _core_steps(docs, jobs, commands, standin is not None, report_dir, workdir)
            if dask is not None:
                steps.append(_dask_step(dask.address))
            if with_transform:
                steps += _transform_steps(commands[1], commands[2])
            code = _run_steps(steps, total, source.uri, env, standin)
            if code != 0:
                return code
        print(f"\ndemo: done in {time.monotonic() - started:.1f} s; both servers stopped")
        return 0
    except ServerStartError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 3
    finally:
        if standin is not None:
            standin.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vida_loader.dev.demo", description=__doc__)
    parser.add_argument("--docs", type=int, default=50_000, help="documents to load")
    parser.add_argument("--jobs", type=int, default=4, help="worker processes for run")
    parser.add_argument("--partitions", type=int, default=4, help="partitions to plan")
    parser.add_argument(
        "--cosmos", type=float, metavar="RU", help="read through a Cosmos DB stand-in at RU/s"
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=Path("demo-report"),
        help="where the run's report.html stays after the demo",
    )
    args = parser.parse_args(argv)
    return run_demo(args.docs, args.jobs, args.partitions, args.cosmos, args.report_dir)


if __name__ == "__main__":
    sys.exit(main())
