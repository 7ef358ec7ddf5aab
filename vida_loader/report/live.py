"""The live view of a run on a terminal (rich): an overall bar, one row per running task,
counters, RU/s against the budget, and the client's CPU and memory.

It takes the same snapshots (``RunProgress``) as the plain progress lines and redraws at
most ``MAX_FPS`` times a second, so a fast run does not pay for drawing. When stderr is
not a terminal the CLI uses ``progress.ProgressPrinter`` instead: plain lines, never an
escape code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

import psutil
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from vida_loader.errors import format_duration

if TYPE_CHECKING:
    from vida_loader.copy.progress import RunProgress

MAX_FPS = 4
SMOOTHING = 0.3  # weight of the newest rate in the moving averages
CPU_EVERY = 1.0  # seconds between reads of the process tree's CPU and memory


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


class Rates:
    """Documents and bytes per second, smoothed over snapshots (an exponential average)."""

    def __init__(self) -> None:
        self.docs_s = self.bytes_s = 0.0
        self._last: tuple[float, int, int] | None = None

    def update(self, elapsed: float, docs: int, nbytes: int) -> None:
        if self._last is not None:
            t0, d0, b0 = self._last
            dt = elapsed - t0
            if dt <= 0:
                return
            docs_s, bytes_s = (docs - d0) / dt, (nbytes - b0) / dt
            first = self.docs_s == 0 and self.bytes_s == 0
            a = 1.0 if first else SMOOTHING
            self.docs_s += a * (docs_s - self.docs_s)
            self.bytes_s += a * (bytes_s - self.bytes_s)
        self._last = (elapsed, docs, nbytes)


class ProcessTree:
    """CPU (percent of one core) and resident memory of this process and its workers."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.known: dict[int, psutil.Process] = {}
        self.cpu = 0.0
        self.rss = 0
        self._at = float("-inf")

    def read(self) -> tuple[float, int]:
        now = time.monotonic()
        if now - self._at < CPU_EVERY:
            return self.cpu, self.rss
        self._at = now
        cpu, rss = 0.0, 0
        try:
            procs = [self.me, *self.me.children(recursive=True)]
        except psutil.Error:
            procs = [self.me]
        seen = {}
        for proc in procs:
            p = self.known.get(proc.pid, proc)
            try:
                cpu += p.cpu_percent(None)  # since this process's previous read
                rss += p.memory_info().rss
            except psutil.Error:
                continue
            seen[proc.pid] = p
        self.known = seen
        self.cpu, self.rss = cpu, rss
        return cpu, rss


class Frames:
    """Draws what ``render`` makes of each snapshot on a terminal, at most ``MAX_FPS``
    times a second; ``finish`` draws the last snapshot and leaves it on screen."""

    def __init__(self, stream: TextIO, console: Console | None = None) -> None:
        self.console = console or Console(file=stream, highlight=False)
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self._drawn = float("-inf")
        self._pending: Any = None
        self._started = False

    def __call__(self, p: Any) -> None:
        now = time.monotonic()
        if now - self._drawn < 1 / MAX_FPS:
            self._pending = p
            return
        self._draw(p, now)

    def _draw(self, p: Any, now: float) -> None:
        if not self._started:
            self.live.start()
            self._started = True
        self.live.update(self.render(p), refresh=True)
        self._drawn = now
        self._pending = None

    def finish(self) -> None:
        if self._pending is not None:
            self._draw(self._pending, time.monotonic())
        if self._started:
            self.live.stop()

    def render(self, p: Any) -> RenderableType:
        raise NotImplementedError


class LiveBar(Frames):
    """One bar and one line of text: ``generate`` and ``verify`` on a terminal."""

    def __init__(
        self,
        stream: TextIO,
        share: Callable[[Any], float],
        text: Callable[[Any], str],
        prefix: str = "",
        console: Console | None = None,
    ) -> None:
        super().__init__(stream, console)
        self.share, self.text, self.prefix = share, text, prefix

    def render(self, p: Any) -> RenderableType:
        grid = Table.grid(padding=(0, 2))
        grid.add_row(
            Text(self.prefix.strip()),
            ProgressBar(total=1.0, completed=min(self.share(p), 1.0), width=30),
            Text(self.text(p)),
        )
        return grid


class LiveView(Frames):
    """The run's view: receives run snapshots, keeps smoothed rates between frames."""

    def __init__(self, stream: TextIO, console: Console | None = None) -> None:
        super().__init__(stream, console)
        self.rates = Rates()
        self.tree = ProcessTree()

    def __call__(self, p: RunProgress) -> None:
        self.rates.update(p.elapsed, p.docs - p.base_docs, p.bytes - p.base_bytes)
        super().__call__(p)

    # --- drawing -------------------------------------------------------------------------

    def render(self, p: RunProgress) -> RenderableType:
        return Group(self._overall(p), self._counters(p), *self._workers(p))

    def _overall(self, p: RunProgress) -> Table:
        r = self.rates
        done = p.parts_done + p.parts_failed == p.parts_total
        if done:
            eta = f"done in {format_duration(p.elapsed)}"
        elif r.bytes_s > 0 and p.est_bytes > p.bytes:
            eta = f"ETA {format_duration((p.est_bytes - p.bytes) / r.bytes_s)}"
        else:
            eta = "ETA --"
        share = min(p.docs / p.est_docs, 1.0) if p.est_docs else 0.0
        grid = Table.grid(padding=(0, 2))
        grid.add_row(
            ProgressBar(total=1.0, completed=share, width=30),
            Text(
                f"{p.docs:,}/{p.est_docs:,} docs ({share:.0%})  {_mib(p.bytes)}"
                f"/{_mib(p.est_bytes)}  {r.docs_s:,.0f} docs/s  {r.bytes_s / 1e6:,.1f} MB/s  " + eta
            ),
        )
        return grid

    def _counters(self, p: RunProgress) -> Text:
        text = Text(f"partitions {p.parts_done}/{p.parts_total} done, {p.parts_running} running")
        if p.parts_failed:
            text.append(f", {p.parts_failed} failed", style="bold red")
        text.append(f"   repaired {p.repaired:,}   retries {p.retries:,}   ")
        text.append(
            f"throttled {p.throttled:,}" + (" (throttling now)" if p.throttling else ""),
            style="bold red" if p.throttling else "",
        )
        if p.reruns:
            text.append(f"   re-runs {p.reruns}")
        if p.metered:
            budget = f" of {p.ru_budget:,.0f}" if p.ru_budget else ""
            over = p.ru_budget is not None and p.ru_now > p.ru_budget
            text.append("   ")
            text.append(
                f"RU {p.ru:,.0f}  {p.ru_now:,.0f}{budget} RU/s", style="yellow" if over else ""
            )
        if p.indexes_total:
            text.append(f"   indexes {p.indexes_done}/{p.indexes_total} built")
        cpu, rss = self.tree.read()
        text.append(f"   CPU {cpu:,.0f}%  RSS {_mib(rss)}", style="dim")
        return text

    def _workers(self, p: RunProgress) -> list[Table]:
        if not p.workers and not p.building:
            return []
        table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
        for name in ("task", "documents", "docs/s", "time", "doing"):
            table.add_column(name, justify="right" if name in ("documents", "docs/s") else "left")
        for w in p.workers:
            rate = w.docs / w.seconds if w.seconds > 0 else 0.0
            style = "red" if "throttles" in w.doing else ("yellow" if "wait" in w.doing else "")
            table.add_row(
                w.task,
                f"{w.docs:,}",
                f"{rate:,.0f}",
                format_duration(w.seconds),
                Text(w.doing, style=style),
            )
        for b in p.building:
            share = f"{b.done / b.total:.0%}" if b.total else ""
            table.add_row(f"index {b.name}", share, "", format_duration(b.seconds), "building")
        return [table]
