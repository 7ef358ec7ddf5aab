"""``make bench``: vida-loader's copy against a reference copy and a naive copy, same run.

Starts two local SecantusDB servers, loads ``BENCH_N`` (default 100,000) service orders
of about 1.1 KB into the source, then times, each on a fresh target collection and until
every document has landed on the target:

1. local regime (no added latency)
   - ``ceiling``: the target's own ingest of pre-read raw batches (context only)
   - ``reference``: the best plain raw copy, ``_id`` range split evenly over {1, 2}
     processes x {w=0, w=1}, reading and writing in 1,000-document batches
   - ``naive``: the seed tool's way: one process, decoded dicts, acknowledged insert_many
   - ``vida -j 1`` / ``vida -j 2``: ``vida-loader plan`` + ``run`` through the installed
     CLI, to the end of confirmation
2. remote regime: every ``find``/``getMore`` at the source and ``insert`` at the target
   is delayed by ``BENCH_LATENCY_MS`` (default 100) with failCommand ``blockConnection``,
   which blocks only the command's own connection: a round trip to a remote database.
   ``BENCH_REMOTE_N`` (default 50,000) documents; naive, reference at 4 processes, vida
   ``-j 4`` and ``-j 8``.

Client CPU is user+sys of the client processes only (``RUSAGE_CHILDREN`` around each
copy, servers excluded); peak RSS per worker is sampled with psutil. With ``BENCH_N``
above ``BENCH_SMALL_N`` (100k) it also measures plan time and peak RSS per worker at both
sizes (the ``-j 2`` plan run by one worker); ``BENCH_ONLY=scale`` measures only those,
into ``bench/results-scale.json``. The table goes to stdout and everything to
``bench/results.json`` (``BENCH_RESULTS``). The machine is shared: compare the ratios,
which come from one run, not the seconds.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import bson
import psutil
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient
from pymongo.collection import Collection

from vida_loader.dev.demo import load_service_orders
from vida_loader.dev.server import LocalServer

N = int(os.environ.get("BENCH_N", "100000"))
REMOTE_N = int(os.environ.get("BENCH_REMOTE_N", "50000"))
LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "100"))
# "scale": only plan time and peak RSS at BENCH_N beside 100k (the copy regimes take an
# hour at 1M on this machine)
ONLY = os.environ.get("BENCH_ONLY", "")
RESULTS = Path(os.environ.get("BENCH_RESULTS", f"bench/results{'-' + ONLY if ONLY else ''}.json"))
EXTRA_RUN_ARGS = os.environ.get("BENCH_RUN_ARGS", "").split()  # e.g. "--write-concern 0"
BATCH = 1000  # documents per read and per write in the reference and naive copies
SMALL_N = int(os.environ.get("BENCH_SMALL_N", "100000"))  # the size 1M is compared with
# Plan and RSS at both sizes: the plan of `-j 2` ($sample included) run by one worker.
# Two concurrent range scans of 1M documents got the source server (which holds each
# scan's result in memory) OOM-killed at 23 GB RSS on this 24 GB machine.
SCALE_JOBS, SCALE_PARTITIONS = 1, 2
STEP_TIMEOUT = 1800  # seconds: no copy may hang the benchmark
DB = "bench"
RAW = CodecOptions(document_class=RawBSONDocument)
VIDA_CLI = str(Path(sys.executable).with_name("vida-loader"))

Client = MongoClient[dict[str, Any]]


@dataclass
class Measure:
    name: str
    regime: str
    docs: int
    seconds: float
    cpu_seconds: float | None = None
    peak_rss_worker_mb: float | None = None
    peak_rss_coordinator_mb: float | None = None
    plan_seconds: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def docs_per_s(self) -> float:
        return self.docs / self.seconds if self.seconds else 0.0

    @property
    def run_docs_per_s(self) -> float:
        """Without the plan step: what the copy itself (run, confirmation, state) does."""
        run = self.seconds - (self.plan_seconds or 0.0)
        return self.docs / run if run > 0 else 0.0

    @property
    def cpu_us_per_doc(self) -> float | None:
        return None if self.cpu_seconds is None else self.cpu_seconds / self.docs * 1e6

    def row(self) -> dict[str, Any]:
        out = asdict(self)
        out["docs_per_s"] = round(self.docs_per_s, 1)
        out["cpu_us_per_doc"] = self.cpu_us_per_doc
        return out


def split_raw(batch: bytes) -> list[RawBSONDocument]:
    """The documents of a raw batch (BSON documents back to back), still encoded."""
    return bson.decode_all(batch, RAW)


# --- the copies being compared (run in spawned processes) ---------------------------


def _range_query(lo: Any, hi: Any) -> dict[str, Any]:
    bounds = {}
    if lo is not None:
        bounds["$gte"] = lo
    if hi is not None:
        bounds["$lt"] = hi
    return {"_id": bounds} if bounds else {}


def reference_slice(
    src_uri: str, dst_uri: str, src: str, dst: str, lo: Any, hi: Any, w: int
) -> None:
    """A plain raw copy of one ``_id`` slice: read a raw batch, insert it, repeat."""
    sc: Client = MongoClient(src_uri)
    dc: Client = MongoClient(dst_uri, w=w)
    with sc, dc:
        target = dc[DB].get_collection(dst, codec_options=RAW)
        cursor = sc[DB][src].find_raw_batches(
            _range_query(lo, hi), sort=[("_id", 1)], batch_size=BATCH
        )
        for batch in cursor.hint([("_id", 1)]):
            target.insert_many(split_raw(cast(bytes, batch)), ordered=False)


def naive_copy(src_uri: str, dst_uri: str, src: str, dst: str) -> None:
    """The seed tool's way: decoded dicts, acknowledged ``insert_many`` per batch."""
    sc: Client = MongoClient(src_uri)
    dc: Client = MongoClient(dst_uri)
    with sc, dc:
        target = dc[DB][dst]
        batch: list[dict[str, Any]] = []
        for doc in sc[DB][src].find({}, batch_size=BATCH):
            batch.append(doc)
            if len(batch) >= BATCH:
                target.insert_many(batch, ordered=False)
                batch = []
        if batch:
            target.insert_many(batch, ordered=False)


# --- measuring ------------------------------------------------------------------------


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class RssSampler(threading.Thread):
    """Peak RSS of a process and each of its descendants, sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = pid
        self.peaks: dict[int, int] = {}
        self.workers: set[int] = set()
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                root = psutil.Process(self.root)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    if p.pid != self.root and "resource_tracker" not in " ".join(p.cmdline()):
                        self.workers.add(p.pid)
                except psutil.Error:
                    continue
                self.peaks[p.pid] = max(self.peaks.get(p.pid, 0), rss)
            self.stop_event.wait(0.05)

    def result(self) -> tuple[float, float]:
        """(peak RSS of any worker, of the root) in MB; the root is the worker at -j 1."""
        self.stop_event.set()
        self.join(5)
        root = self.peaks.get(self.root, 0) / 1e6
        workers = [self.peaks[p] / 1e6 for p in self.workers if p in self.peaks]
        return (max(workers) if workers else root), root


def wait_landed(coll: Collection[Any], n: int, timeout: float = STEP_TIMEOUT) -> None:
    """Poll until the target holds ``n`` documents (``w=0`` writes land after the send)."""
    deadline = time.monotonic() + timeout
    while coll.count_documents({}) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{coll.name}: fewer than {n:,} documents after {timeout} s")
        time.sleep(0.02)


def _tail(log: Path, lines: int = 15) -> str:
    """The end of a CLI log: the work folder holding it is removed when the bench stops."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _nothing() -> None:
    """A spawned process that only starts: what the naive copy pays before copying."""


def startup_cpu(cli: str) -> tuple[float, float]:
    """Client CPU seconds of starting (``vida-loader --version``, a spawned bench process),
    each the median of 3: fixed costs, mostly importing pymongo, that weigh per document
    at 100k and vanish at 60M."""
    vida, spawn = [], []
    for _ in range(3):
        c0 = _children_cpu()
        subprocess.run([cli, "--version"], check=True, capture_output=True, timeout=60)
        c1 = _children_cpu()
        run_processes(_nothing, [()])
        vida.append(c1 - c0)
        spawn.append(_children_cpu() - c1)
    return sorted(vida)[1], sorted(spawn)[1]


def run_processes(target: Callable[..., None], args_list: list[tuple[Any, ...]]) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=target, args=args) for args in args_list]
    for p in procs:
        p.start()
    for p in procs:
        p.join(STEP_TIMEOUT)
        if p.exitcode != 0:
            raise RuntimeError(f"{target.__name__} exited with {p.exitcode}")


@dataclass
class Bench:
    source: LocalServer
    target: LocalServer
    workdir: Path
    client_s: Client = field(init=False)
    client_t: Client = field(init=False)
    counter: int = 0

    def __post_init__(self) -> None:
        self.client_s = MongoClient(self.source.uri, socketTimeoutMS=600_000)
        self.client_t = MongoClient(self.target.uri, socketTimeoutMS=600_000)

    def fresh_target(self, label: str) -> str:
        self.counter += 1
        name = f"{label}_{self.counter}"
        self.client_t[DB].drop_collection(name)
        return name

    def done_with(self, name: str) -> None:
        """Drop a measured target collection so the next copy meets the same server."""
        self.client_t[DB].drop_collection(name)

    def load(self, coll: str, n: int) -> None:
        t0 = time.monotonic()
        c = self.client_s[DB][coll]
        c.drop()
        load_service_orders(c, n)
        print(f"loaded {n:,} service orders into {DB}.{coll} in {time.monotonic() - t0:.0f} s")

    def slices(self, coll: str, parts: int) -> list[tuple[Any, Any]]:
        """``parts`` half-open ``_id`` ranges holding equal numbers of documents."""
        ids = [d["_id"] for d in self.client_s[DB][coll].find({}, {"_id": 1}).sort("_id", 1)]
        cuts = [ids[len(ids) * k // parts] for k in range(1, parts)]
        bounds: list[Any] = [None, *cuts, None]
        return list(zip(bounds[:-1], bounds[1:], strict=True))

    @contextmanager
    def timed(self, dst: str, n: int) -> Iterator[dict[str, float]]:
        out: dict[str, float] = {}
        cpu0, t0 = _children_cpu(), time.monotonic()
        yield out
        wait_landed(self.client_t[DB][dst], n)
        out["seconds"] = time.monotonic() - t0
        out["cpu"] = _children_cpu() - cpu0

    def ceiling(self, coll: str, n: int) -> Measure:
        """The target's ingest rate of raw batches read beforehand (one process, w=1)."""
        cursor = self.client_s[DB][coll].find_raw_batches({}, batch_size=BATCH)
        batches = [cast(bytes, b) for b in cursor]
        dst = self.fresh_target("ceiling")
        target = self.client_t[DB].get_collection(dst, codec_options=RAW)
        t0 = time.monotonic()
        for batch in batches:
            target.insert_many(split_raw(batch), ordered=False)
        wait_landed(target, n)
        m = Measure("ceiling (target ingest)", "local", n, time.monotonic() - t0)
        self.done_with(dst)
        return m

    def reference(self, regime: str, coll: str, n: int, procs: int, w: int) -> Measure:
        dst = self.fresh_target(f"ref{procs}w{w}")
        args = [
            (self.source.uri, self.target.uri, coll, dst, lo, hi, w)
            for lo, hi in self.slices(coll, procs)
        ]
        with self.timed(dst, n) as t:
            run_processes(reference_slice, args)
        self.done_with(dst)
        return Measure(f"reference {procs}p w={w}", regime, n, t["seconds"], t["cpu"])

    def naive(self, regime: str, coll: str, n: int) -> Measure:
        dst = self.fresh_target("naive")
        with self.timed(dst, n) as t:
            run_processes(naive_copy, [(self.source.uri, self.target.uri, coll, dst)])
        self.done_with(dst)
        return Measure("naive (decode, w=1)", regime, n, t["seconds"], t["cpu"])

    def vida(self, regime: str, coll: str, n: int, jobs: int, partitions: int) -> Measure:
        dst = self.fresh_target(f"vida{jobs}")
        job = dst
        env = dict(
            os.environ,
            VIDA_SOURCE_URI=self.source.uri,
            VIDA_SOURCE_DB=DB,
            VIDA_SOURCE_COLLECTION=coll,
            VIDA_TARGET_URI=self.target.uri,
            VIDA_TARGET_DB=DB,
            VIDA_TARGET_COLLECTION=dst,
            VIDA_MANIFEST_DIR=str(self.workdir / "partitions"),
            VIDA_JOB=job,
        )
        cli = [VIDA_CLI]
        log = self.workdir / f"{job}.log"
        with self.timed(dst, n) as t, open(log, "w") as out:
            p0 = time.monotonic()
            plan = ["plan", "--partitions", str(partitions)]
            if subprocess.run(cli + plan, env=env, stdout=out, stderr=out, timeout=600).returncode:
                raise RuntimeError(f"vida-loader plan failed:\n{_tail(log)}")
            plan_s = time.monotonic() - p0
            proc = subprocess.Popen(
                [*cli, "run", "-j", str(jobs), *EXTRA_RUN_ARGS], env=env, stdout=out, stderr=out
            )
            sampler = RssSampler(proc.pid)
            sampler.start()
            code = proc.wait(STEP_TIMEOUT)
            rss_worker, rss_root = sampler.result()
            if code != 0:
                raise RuntimeError(f"vida-loader run -j {jobs} exited with {code}:\n{_tail(log)}")
        self.done_with(dst)
        return Measure(
            f"vida -j {jobs} ({partitions} partitions)",
            regime,
            n,
            t["seconds"],
            t["cpu"],
            peak_rss_worker_mb=rss_worker,
            peak_rss_coordinator_mb=rss_root,
            plan_seconds=plan_s,
        )

    def query_seconds(self, coll: str) -> float:
        """One index-edge read (smallest ``_id``): what each planning query costs here."""
        t0 = time.monotonic()
        self.client_s[DB][coll].find_one({}, {"_id": 1}, sort=[("_id", 1)])
        return time.monotonic() - t0

    def latency(self, ms: int) -> None:
        """Delay source reads and target inserts by ``ms`` each (0: remove the delay)."""
        for client, commands in ((self.client_s, ["find", "getMore"]), (self.client_t, ["insert"])):
            if ms:
                spec = {
                    "configureFailPoint": "failCommand",
                    "mode": "alwaysOn",
                    "data": {"failCommands": commands, "blockConnection": True, "blockTimeMS": ms},
                }
            else:
                spec = {"configureFailPoint": "failCommand", "mode": "off"}
            client.admin.command(spec)

    def close(self) -> None:
        self.client_s.close()
        self.client_t.close()


def shown(m: Measure) -> Measure:
    """Print one line per finished copy: a long benchmark shows where it is."""
    cpu = f", client CPU {m.cpu_us_per_doc:.1f} us/doc" if m.cpu_us_per_doc is not None else ""
    print(f"  {m.name} ({m.regime}): {m.docs_per_s:,.0f} docs/s{cpu}", flush=True)
    return m


def _best(measures: list[Measure], prefix: str) -> Measure:
    return max((m for m in measures if m.name.startswith(prefix)), key=lambda m: m.docs_per_s)


def ratios(
    local: list[Measure], remote: list[Measure], startup: tuple[float, float]
) -> dict[str, float]:
    """The figures compared with the goals; ``startup`` from :func:`startup_cpu`."""
    out: dict[str, float] = {}
    ref, naive, vida = _best(local, "reference"), _best(local, "naive"), _best(local, "vida")
    out["local vida (best -j) / reference"] = vida.docs_per_s / ref.docs_per_s
    out["local vida (best -j) / naive"] = vida.docs_per_s / naive.docs_per_s
    out["local reference / ceiling"] = ref.docs_per_s / _best(local, "ceiling").docs_per_s
    out["local vida run only (best -j) / reference"] = (
        max(m.run_docs_per_s for m in local if m.name.startswith("vida")) / ref.docs_per_s
    )
    if vida.cpu_us_per_doc and naive.cpu_us_per_doc:
        out["client CPU per doc: vida / naive"] = vida.cpu_us_per_doc / naive.cpu_us_per_doc
    vida1 = _best(local, "vida -j 1")
    if vida1.cpu_us_per_doc and naive.cpu_us_per_doc:
        # Same worker count as naive; the goal line above uses the fastest vida copy.
        out["client CPU per doc: vida -j 1 / naive"] = vida1.cpu_us_per_doc / naive.cpu_us_per_doc
    if vida1.cpu_seconds and naive.cpu_seconds:
        # The reason at 100k: vida -j 1 starts two processes (plan, run), naive one.
        start_vida, start_spawn = startup
        out["client start-up CPU us/doc: vida -j 1 (2 processes)"] = 2e6 * start_vida / vida1.docs
        out["client start-up CPU us/doc: naive (1 process)"] = 1e6 * start_spawn / naive.docs
        out["client CPU per doc without start-up: vida -j 1 / naive"] = (
            vida1.cpu_seconds - 2 * start_vida
        ) / (naive.cpu_seconds - start_spawn)
    if remote:
        ref4, naive_r = _best(remote, "reference"), _best(remote, "naive")
        vida4 = _best(remote, "vida -j 4")
        out["remote vida -j 4 / reference 4p"] = vida4.docs_per_s / ref4.docs_per_s
        out["remote vida -j 4 / naive"] = vida4.docs_per_s / naive_r.docs_per_s
        out["remote vida (best -j) / naive"] = _best(remote, "vida").docs_per_s / naive_r.docs_per_s
        out["remote vida -j 4 run only / reference 4p"] = vida4.run_docs_per_s / ref4.docs_per_s
        # Whether this machine can show round trips at all: 4 processes over 1.
        out["remote reference 4p / naive"] = ref4.docs_per_s / naive_r.docs_per_s
    return out


GOALS = {
    "local vida (best -j) / reference": (">=", 0.95),
    "client CPU per doc: vida / naive": ("<=", 0.33),
    "remote vida -j 4 / reference 4p": (">=", 1.2),
    "remote vida -j 4 / naive": (">=", 2.5),
    "peak RSS per worker MB": ("<=", 150.0),
    "peak RSS per worker 1M / 100k": ("<=", 1.2),
    "plan time 1M / 100k": ("<=", 1.5),
}


def _met(name: str, value: float) -> str:
    if name not in GOALS:
        return ""
    op, goal = GOALS[name]
    ok = value >= goal if op == ">=" else value <= goal
    return f"goal {op} {goal:g}: {'met' if ok else 'NOT met'}"


def print_table(measures: list[Measure], figures: dict[str, float]) -> None:
    print(
        f"\n{'copy':34} {'regime':7} {'docs':>9} {'s':>7} {'docs/s':>8} {'cpu us/doc':>10}"
        f" {'rss worker MB':>13} {'plan s':>7}"
    )
    for m in measures:
        cpu = f"{m.cpu_us_per_doc:10.0f}" if m.cpu_us_per_doc is not None else " " * 10
        rss = f"{m.peak_rss_worker_mb:13.0f}" if m.peak_rss_worker_mb is not None else " " * 13
        plan = f"{m.plan_seconds:7.2f}" if m.plan_seconds is not None else ""
        if m.plan_seconds is not None:
            plan += f"  (run only {m.run_docs_per_s:,.0f} docs/s)"
        print(
            f"{m.name:34} {m.regime:7} {m.docs:9,} {m.seconds:7.1f} {m.docs_per_s:8,.0f} "
            f"{cpu} {rss} {plan}"
        )
    print()
    width = max(map(len, figures), default=0)
    for name, value in figures.items():
        print(f"{name:{width}} {value:7.2f}   {_met(name, value)}")


def main() -> int:
    # `timeout` and Ctrl-C end the benchmark through the `with` blocks: servers stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="vida-bench-"))
    try:
        return _main(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _regimes(bench: Bench, figures: dict[str, float]) -> list[Measure]:
    """The local and remote regimes on the loaded ``orders``: their measures, in order."""
    local = [shown(bench.ceiling("orders", N))]
    for procs in (1, 2):
        for w in (0, 1):
            local.append(shown(bench.reference("local", "orders", N, procs, w)))
    local.append(shown(bench.naive("local", "orders", N)))
    for jobs in (1, 2):
        local.append(shown(bench.vida("local", "orders", N, jobs, partitions=jobs)))
    remote: list[Measure] = []
    if REMOTE_N:
        bench.load("remote", REMOTE_N)
        bench.latency(LATENCY_MS)
        try:
            remote.append(shown(bench.naive("remote", "remote", REMOTE_N)))
            for w in (0, 1):
                remote.append(shown(bench.reference("remote", "remote", REMOTE_N, 4, w)))
            for jobs in (4, 8):
                remote.append(shown(bench.vida("remote", "remote", REMOTE_N, jobs, jobs)))
        finally:
            bench.latency(0)
    figures.update(ratios(local, remote, startup_cpu(VIDA_CLI)))
    # On MongoDB an index-edge read takes milliseconds; where this server scans
    # the collection for it, plan time is (queries x this), not the copy's cost.
    edge = bench.query_seconds("orders")
    figures["server seconds per _id edge query"] = edge
    figures["local vida -j 1 plan time / edge query"] = (
        _best(local, "vida -j 1").plan_seconds or 0.0
    ) / edge
    return local + remote


def _main(workdir: Path) -> int:
    measures: list[Measure] = []
    with (
        LocalServer(workdir / "source", test_commands=True) as source,
        LocalServer(workdir / "target", test_commands=True) as target,
    ):
        bench = Bench(source, target, workdir)
        try:
            print(f"servers: source {source.uri}, target {target.uri}; work in {workdir}")
            bench.load("orders", N)
            figures: dict[str, float] = {}
            if ONLY != "scale":
                measures += _regimes(bench, figures)
            if N > SMALL_N:
                big = shown(bench.vida("local", "orders", N, SCALE_JOBS, SCALE_PARTITIONS))
                bench.load("small", SMALL_N)
                small = shown(bench.vida("local", "small", SMALL_N, SCALE_JOBS, SCALE_PARTITIONS))
                measures += [big, small]
                assert small.plan_seconds and big.plan_seconds
                assert small.peak_rss_worker_mb and big.peak_rss_worker_mb
                figures["plan time 1M / 100k"] = big.plan_seconds / small.plan_seconds
                figures["peak RSS per worker 1M / 100k"] = (
                    big.peak_rss_worker_mb / small.peak_rss_worker_mb
                )
                # The reason plan time grows here: this server scans for an index read.
                figures["server edge query 1M / 100k"] = bench.query_seconds(
                    "orders"
                ) / bench.query_seconds("small")
            figures["peak RSS per worker MB"] = max(
                m.peak_rss_worker_mb for m in measures if m.peak_rss_worker_mb
            )
            print_table(measures, figures)
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(
                json.dumps(
                    {
                        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "machine": {
                            "cpus": os.cpu_count(),
                            "python": platform.python_version(),
                            "platform": platform.platform(),
                            "load_avg_at_end": os.getloadavg(),
                        },
                        "settings": {
                            "n": N,
                            "remote_n": REMOTE_N,
                            "latency_ms": LATENCY_MS,
                            "batch": BATCH,
                        },
                        "measures": [m.row() for m in measures],
                        "figures": figures,
                        "goals": {k: f"{op} {v:g}" for k, (op, v) in GOALS.items()},
                    },
                    indent=2,
                )
                + "\n"
            )
            print(f"\nwrote {RESULTS}")
        finally:
            bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
