"""Tasks for the scheduler's tests: importable by name, so spawned workers can run them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from vida_loader.execution.events import Moved, Reporter, Started


def square(n: int, report: Reporter) -> int:
    report(Started(f"t{n}"))
    report(Moved(f"t{n}", n, n * 10))
    return n * n


def flaky(n: int, marker: str, report: Reporter) -> int:
    """Fails (returns -1) the first time it runs for ``n``: the marker file remembers."""
    path = Path(marker) / f"{n}"
    if not path.exists():
        path.write_text("tried")
        return -1
    return n


def die_once(n: int, marker: str, report: Reporter) -> int:
    """Task 0 kills its worker process the first time it runs."""
    path = Path(marker) / "died"
    if n == 0 and not path.exists():
        path.write_text("died")
        os._exit(9)
    return n


def broken(n: int, report: Reporter) -> int:
    raise RuntimeError(f"bug in task {n}")


def endless(n: int, marker: str, report: Reporter) -> int:
    """Reports forever (a long copy): only a cancelled pool stops it."""
    path = Path(marker) / f"beat{n}"
    beats = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        beats += 1
        path.write_text(str(beats))
        report(Moved(f"t{n}", 1, 1))
        time.sleep(0.01)
    return n
