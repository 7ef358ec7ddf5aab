"""The report's plots (matplotlib, PNG) from a job's ``metrics.jsonl``.

Each plot is a function of the records; one that has nothing to show (no RU read, no
finished partition) is left out, never drawn empty. matplotlib is imported when a plot is
drawn, so the other commands do not pay for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

Drawer = Callable[[Any, list[dict[str, Any]]], bool]
DPI = 100
SIZE = (9, 3.6)  # inches


@dataclass(frozen=True)
class Plot:
    title: str
    path: Path


def _seconds(records: list[dict[str, Any]]) -> list[float]:
    """Each record's time as seconds since the first (runs of a job on one axis)."""
    times = [datetime.fromisoformat(r["time"]) for r in records]
    return [(t - times[0]).total_seconds() for t in times] if times else []


def _rate_of(values: list[float], t: list[float]) -> list[float]:
    """Per-second change of a running count between records (0 at the first)."""
    out = [0.0]
    for i in range(1, len(values)):
        dt = t[i] - t[i - 1]
        out.append(max(values[i] - values[i - 1], 0) / dt if dt > 0 else 0.0)
    return out


def draw_plots(metrics: list[dict[str, Any]], out: Path) -> list[Plot]:
    """Write every plot the records allow into ``out``; returns them in page order."""
    import matplotlib

    matplotlib.use("Agg")
    runs = [r for r in metrics if r.get("kind") == "run"]
    tasks = [r for r in metrics if r.get("kind") == "task" and r.get("state") == "done"]
    out.mkdir(parents=True, exist_ok=True)
    makers: list[tuple[str, str, Drawer, list[dict[str, Any]]]] = [
        ("Throughput over time", "throughput.png", _throughput, runs),
        ("Active workers, retries and throttling over time", "workers.png", _workers, runs),
        ("Request units per second against the budget", "ru.png", _ru, runs),
        ("Partition durations (stragglers and skew)", "durations.png", _durations, tasks),
        ("Partition size against duration", "size_duration.png", _size_duration, tasks),
    ]
    return [
        Plot(title, out / name)
        for title, name, draw, records in makers
        if _one(title, out / name, draw, records)
    ]


def _one(title: str, path: Path, draw: Drawer, records: list[dict[str, Any]]) -> bool:
    """One figure: ``draw`` fills the axes and says whether there was anything to show."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    try:
        if not draw(ax, records):
            return False
        ax.set_title(title)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(path)
        return True
    finally:
        plt.close(fig)


def _throughput(ax: Any, runs: list[dict[str, Any]]) -> bool:
    if len(runs) < 2:
        return False
    # Between consecutive records (the records' own rates are averages since the start).
    t = _seconds(runs)
    docs_s = _rate_of([r["docs"] for r in runs], t)[1:]
    mb_s = [b / 1e6 for b in _rate_of([r["bytes"] for r in runs], t)[1:]]
    ax.stairs(docs_s, t, label="documents/s", color="tab:blue", linewidth=2)
    ax.set_xlabel("seconds")
    ax.set_ylabel("documents/s")
    ax.set_ylim(bottom=0)
    mb = ax.twinx()
    mb.stairs(mb_s, t, label="MB/s", color="tab:orange", alpha=0.7)
    mb.set_ylim(bottom=0)
    mb.set_ylabel("MB/s")
    ax.legend(loc="upper left")
    mb.legend(loc="upper right")
    return True


def _workers(ax: Any, runs: list[dict[str, Any]]) -> bool:
    if len(runs) < 2:
        return False
    t = _seconds(runs)
    ax.step(t, [r["partitions_running"] for r in runs], where="post", label="active workers")
    ax.set_xlabel("seconds")
    ax.set_ylabel("running partitions")
    ev = ax.twinx()
    ev.plot(t, _rate_of([r["retries"] for r in runs], t), color="tab:gray", label="retries/s")
    ev.plot(t, _rate_of([r["throttled"] for r in runs], t), color="tab:red", label="throttled/s")
    ev.set_ylabel("per second")
    ev.set_ylim(bottom=0)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    ev.legend(loc="upper right")
    return True


def _ru(ax: Any, runs: list[dict[str, Any]]) -> bool:
    metered = [r for r in runs if r.get("ru_s") is not None]
    if len(metered) < 2:
        return False
    t = _seconds(metered)
    ax.plot(t, [r["ru_s"] for r in metered], label="RU/s", color="tab:green")
    budget = [r.get("ru_budget") for r in metered]
    if any(b is not None for b in budget):
        ax.plot(
            t,
            [b if b is not None else float("nan") for b in budget],
            "--",
            color="tab:red",
            label="budget",
        )
    ax.set_xlabel("seconds")
    ax.set_ylabel("RU/s")
    ax.legend(loc="upper left")
    return True


def _durations(ax: Any, tasks: list[dict[str, Any]]) -> bool:
    if not tasks:
        return False
    ax.hist([r["seconds"] for r in tasks], bins=min(30, max(5, len(tasks))), color="tab:blue")
    ax.set_xlabel("seconds per partition (last attempt)")
    ax.set_ylabel("partitions")
    return True


def _size_duration(ax: Any, tasks: list[dict[str, Any]]) -> bool:
    if not tasks:
        return False
    ax.scatter([r["bytes"] / 2**20 for r in tasks], [r["seconds"] for r in tasks], s=14)
    ax.set_xlabel("MiB read")
    ax.set_ylabel("seconds")
    return True
