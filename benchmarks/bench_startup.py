"""What starting vida-loader costs in CPU: the commands a user types often, and a worker.

Two local servers; ``N`` service orders planned and copied once, so that ``status`` has a
whole job to read. Then, interleaved ``ROUNDS`` times (medians count; the machine is
shared): the bare interpreter (``python -c pass``, the floor), ``vida-loader --version``,
``--help``, ``status``, and a spawned worker: a process whose main module imports the
CLI, as the console script does, starts a spawn pool of one worker and has it import the
copy task; the worker's own CPU is what is counted (it re-imports the main module).

The issue's goal: ``--help``, ``--version`` and ``status`` under 0.15 s of CPU each.

Results: bench/results-startup.json.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import load_and_plan, write_results

from vida_loader.config import RunConfig
from vida_loader.copy.coordinator import run_job
from vida_loader.dev.server import LocalServer

N = int(os.environ.get("BENCH_STARTUP_N", "2000"))
ROUNDS = int(os.environ.get("BENCH_STARTUP_ROUNDS", "15"))
RESULTS = Path(os.environ.get("BENCH_RESULTS", "bench/results-startup.json"))
CLI = Path(sys.executable).parent / "vida-loader"

WORKER = """
from vida_loader.cli import main  # noqa: F401  as the console script does
import multiprocessing, resource
if __name__ == "__main__":
    pool = multiprocessing.get_context("spawn").Pool(1)
    pool.apply(exec, ("import vida_loader.copy.task",))
    pool.close()
    pool.join()
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(r.ru_utime + r.ru_stime)
"""


def _cpu(args: list[str]) -> float:
    """User + system CPU seconds of one run of ``args`` (and anything it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=60
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _worker_cpu(script: Path) -> float:
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    return float(out.stdout.split()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vida-bench-startup-") as tmp:
        work = Path(tmp)
        parts = work / "partitions"
        with LocalServer(work / "source") as src, LocalServer(work / "target") as dst:
            load_and_plan(src.uri, dst.uri, "bench", N, 2, parts)
            run_job(RunConfig(job="bench", manifest_dir=parts, jobs=1))
        script = work / "worker_main.py"
        script.write_text(WORKER)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "--version": [str(CLI), "--version"],
            "--help": [str(CLI), "--help"],
            "status": [str(CLI), "status", "--manifest-dir", str(parts)],
        }
        seen: dict[str, list[float]] = {name: [] for name in [*commands, "spawned worker"]}
        for _ in range(ROUNDS):
            for name, args in commands.items():
                seen[name].append(_cpu(args))
            seen["spawned worker"].append(_worker_cpu(script))
    medians = {name: round(statistics.median(v), 4) for name, v in seen.items()}
    for name, m in medians.items():
        print(f"{name:16} median {m:.3f} s CPU (min {min(seen[name]):.3f}, {ROUNDS} runs)")
    write_results(
        RESULTS,
        {
            "rounds": ROUNDS,
            "documents": N,
            "median_cpu_s": medians,
            "min_cpu_s": {name: round(min(v), 4) for name, v in seen.items()},
            "goal_cpu_s": 0.15,
        },
    )


if __name__ == "__main__":
    main()
