"""Progress lines for long operations: one live line on a terminal, periodic lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from vida_loader.errors import format_duration
from vida_loader.settings.registry import DEFAULT_PROGRESS_INTERVAL as DEFAULT_INTERVAL

if TYPE_CHECKING:
    from vida_loader.copy.progress import RunProgress
    from vida_loader.generate.runner import GenerateProgress
    from vida_loader.indexes.phase import IndexProgress


def _retries(retries: int, throttled: int) -> list[str]:
    """``retries 12 (3 throttled)``, or nothing when there were none."""
    if not retries:
        return []
    return [f"retries {retries:,}" + (f" ({throttled:,} throttled)" if throttled else "")]


def _building(b: IndexProgress) -> str:
    """``k_1 45% 0:01:10``: the server's progress where it reports one, and the time."""
    share = f" {b.done / b.total:.0%}" if b.total else ""
    return f"{b.name}{share} {format_duration(b.seconds)}"


def format_progress(p: RunProgress) -> str:
    """``12,000/50,000 docs (24%)  8,000 docs/s  8.5 MB/s  partitions 2/8 ...  ETA 0:00:05``."""
    elapsed = max(p.elapsed, 1e-9)
    rate = (p.docs - p.base_docs) / elapsed  # this run's pace, not earlier runs' work
    parts = [f"{p.docs:,}/{p.est_docs:,} docs" if p.est_docs else f"{p.docs:,} docs"]
    if p.est_docs:
        parts[0] += f" ({min(p.docs / p.est_docs, 9.99):.0%})"
    parts.append(f"{rate:,.0f} docs/s")
    parts.append(f"{(p.bytes - p.base_bytes) / 1e6 / elapsed:,.1f} MB/s")
    state = f"partitions {p.parts_done}/{p.parts_total} done"
    if p.parts_running:
        state += f", {p.parts_running} running"
    if p.parts_failed:
        state += f", {p.parts_failed} failed"
    parts.append(state)
    if p.repaired:
        parts.append(f"repaired {p.repaired:,}")
    if p.indexes_total and (p.building or p.indexes_done or p.indexes_failed):
        built = f"indexes {p.indexes_done}/{p.indexes_total} built"
        built += f", {p.indexes_failed} failed" if p.indexes_failed else ""
        if p.building:
            built += ", building " + ", ".join(map(_building, p.building))
        parts.append(built)
    if p.metered:
        parts.append(f"RU {p.ru:,.0f} ({p.ru_now:,.0f} RU/s)")
    parts += _retries(p.retries, p.throttled)
    if p.reruns:
        parts.append(f"re-runs {p.reruns}")
    for side in p.waiting_for:
        parts.append(f"waiting for {side}")
    if p.parts_done + p.parts_failed == p.parts_total:
        parts.append(f"in {format_duration(p.elapsed)}")
    elif rate > 0 and p.est_docs > p.docs:
        parts.append(f"ETA {format_duration((p.est_docs - p.docs) / rate)}")
    else:
        parts.append("ETA --")
    return "  ".join(parts)


def format_generate(p: GenerateProgress) -> str:
    """``120,000/1,000,000 docs (12%)  41,000 docs/s  55.0 MB/s  ETA 0:00:21``."""
    elapsed = max(p.elapsed, 1e-9)
    rate = p.docs / elapsed
    parts = [
        f"{p.docs:,}/{p.total:,} docs ({min(p.docs / p.total, 1):.0%})",
        f"{rate:,.0f} docs/s",
        f"{p.bytes / 1e6 / elapsed:,.1f} MB/s",
    ]
    parts += _retries(p.retries, p.throttled)
    if p.failed_slices:
        parts.append(f"{p.failed_slices} slices failed")
    if p.phase == "confirming":
        parts.append(f"confirming on the target ({p.confirmed:,} confirmed)")
        return "  ".join(parts)
    if p.confirmed >= p.total:
        parts.append(f"in {format_duration(p.elapsed)}")
    elif rate > 0:
        parts.append(f"ETA {format_duration((p.total - p.docs) / rate)}")
    else:
        parts.append("ETA --")
    return "  ".join(parts)


class ProgressPrinter:
    """Receives snapshots (``RunProgress`` unless ``formatter`` says) and writes them.

    On a terminal the line is rewritten in place; otherwise a plain line is logged at
    most every ``interval`` seconds (and the last snapshot always).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        tty: bool | None = None,
        interval: float = DEFAULT_INTERVAL,
        prefix: str = "run: ",
        formatter: Callable[[Any], str] = format_progress,
        silent: bool = False,
    ) -> None:
        self.silent = silent  # --quiet: show nothing
        self.formatter = formatter
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.interval = interval
        self.prefix = prefix
        self._last = float("-inf")
        self._pending: Any = None
        self._shown = False

    def __call__(self, progress: Any) -> None:
        if self.silent:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write(f"\r{self.prefix}{self.formatter(progress)}\x1b[K")
            self.stream.flush()
            self._shown = True
        elif now - self._last >= self.interval:
            self._last = now
            self._write_line(progress)
        else:
            self._pending = progress

    def _write_line(self, progress: Any) -> None:
        self.stream.write(f"{self.prefix}{self.formatter(progress)}\n")
        self.stream.flush()
        self._pending = None

    def finish(self) -> None:
        """End the live line, or log the last snapshot not yet shown."""
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
        elif self._pending is not None:
            self._write_line(self._pending)
