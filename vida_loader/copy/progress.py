"""A run's progress as the coordinator sees it: what each running copy attempt is doing,
told by its events (``Attempts``), and the snapshots that progress lines, the live view
and metrics.jsonl are made from (``RunProgress``, ``WorkerProgress``)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vida_loader.retry import RetryCounts

if TYPE_CHECKING:
    from vida_loader.execution.events import Waiting
    from vida_loader.indexes.phase import IndexProgress
    from vida_loader.job.runstate import PartitionRecord

RU_NOW_WINDOW = 5.0  # seconds over which "RU/s now" is measured


@dataclass(frozen=True)
class WorkerProgress:
    """One running copy task, as the live view shows it."""

    task: str  # the partition
    docs: int  # written by its current attempt
    bytes: int
    seconds: float  # since its attempt started
    doing: str  # copying, confirming, repairing, waiting for the target, backing off...


@dataclass(frozen=True)
class RunProgress:
    """A snapshot for progress output."""

    docs: int
    bytes: int
    base_docs: int  # of ``docs``: confirmed by earlier runs of the job
    base_bytes: int
    est_docs: int
    est_bytes: int
    elapsed: float
    parts_done: int
    parts_failed: int
    parts_running: int
    parts_total: int
    repaired: int
    retries: int  # operations tried again by this run (throttled, network, cursor lost)
    throttled: int = 0  # of those, throttled by the server
    reruns: int = 0  # partitions started again after a failed attempt
    waiting_for: tuple[str, ...] = ()  # sides some worker is waiting for ("target", ...)
    metered: bool = False  # the source's request charges are read
    ru: float = 0.0  # request units this run's commands were charged
    ru_now: float = 0.0  # RU per second over the last few seconds
    indexes_done: int = 0  # index builds done (all runs)
    indexes_total: int = 0  # index builds this run makes or made (0: none, or skipped)
    indexes_failed: int = 0
    building: tuple[IndexProgress, ...] = ()  # indexes being built now
    workers: tuple[WorkerProgress, ...] = ()  # the running copy tasks
    throttling: bool = False  # some task is backing off because the server throttled
    ru_budget: float | None = None  # the RU/s the run paces itself to, when known
    wait_s: float = 0.0  # seconds tasks of this run spent waiting to retry


ProgressSink = Callable[[RunProgress], None]


class Attempts:
    """What the running copy attempts are doing, as their events tell it, until each
    one's result replaces it: retries so far, the side it waits for, whether it backs off
    a throttle, the step it is at, when it began, the RU charged to it."""

    def __init__(self) -> None:
        self.retried: dict[str, RetryCounts] = {}  # pid -> counted from its wait events
        self.waiting: dict[str, str] = {}  # pid -> side it waits for
        self.throttled: set[str] = set()  # of those, the ones backing off a throttle
        self.doing: dict[str, str] = {}  # pid -> the step its attempt is at
        self.began: dict[str, float] = {}  # pid -> when its attempt started (monotonic)
        self.ru: dict[str, float] = {}  # pid -> charged to its running attempt

    def started(self, pid: str) -> None:
        self.doing[pid] = "copying"
        self.began[pid] = time.monotonic()

    def moved(self, pid: str) -> None:
        """Documents moved (or a step began): whatever it waited for answered."""
        self.waiting.pop(pid, None)
        self.throttled.discard(pid)

    def phase(self, pid: str, phase: str) -> None:
        self.doing[pid] = phase
        self.moved(pid)

    def charged(self, pid: str, ru: float) -> None:
        self.ru[pid] = self.ru.get(pid, 0.0) + ru

    def waited(self, ev: Waiting) -> None:
        self.retried.setdefault(ev.task, RetryCounts()).merge(
            1, int(ev.throttled), ev.delay_ms / 1000
        )
        self.waiting[ev.task] = ev.side
        if ev.throttled:
            self.throttled.add(ev.task)
        else:
            self.throttled.discard(ev.task)

    def ended(self, pid: str) -> None:
        """Its result came: the result's own counts replace these."""
        for tally in (self.retried, self.waiting, self.doing, self.began, self.ru):
            tally.pop(pid, None)
        self.throttled.discard(pid)

    def retries(self, finished: RetryCounts) -> RetryCounts:
        """``finished`` (the attempts that ended) plus what the running ones counted."""
        total = RetryCounts()
        for counts in (finished, *self.retried.values()):
            total.merge(counts.retries, counts.throttled, counts.wait_s)
        return total

    def workers(self, running: dict[str, PartitionRecord]) -> tuple[WorkerProgress, ...]:
        """A row per running attempt: its documents, time and what it is doing."""
        now = time.monotonic()
        rows = []
        for pid, rec in running.items():
            doing = self.doing.get(pid, "copying")
            if pid in self.throttled:
                doing = f"backing off: the {self.waiting.get(pid, 'source')} throttles"
            elif pid in self.waiting:
                doing = f"waiting for the {self.waiting[pid]}"
            since = self.began.get(pid, now)
            rows.append(WorkerProgress(pid, rec.docs, rec.bytes, now - since, doing))
        return tuple(rows)


class RuRate:
    """RU per second over the last ``RU_NOW_WINDOW`` seconds of snapshots."""

    def __init__(self) -> None:
        self.seen: deque[tuple[float, float]] = deque()  # (time, RU so far)

    def now(self, ru: float) -> float:
        now, seen = time.monotonic(), self.seen
        seen.append((now, ru))
        while len(seen) > 2 and now - seen[1][0] >= RU_NOW_WINDOW:
            seen.popleft()
        then, ru_then = seen[0]
        return (ru - ru_then) / (now - then) if now > then else 0.0
