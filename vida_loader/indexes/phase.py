"""The index phase of a run: the scheduler's handler for index builds (``build_index``
tasks), and what it knows of the builds in progress.

It writes nothing itself: every change goes to the run state through the coordinator's
run (``RunHost``), which saves it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pymongo.errors import PyMongoError

from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.errors import VidaError
from vida_loader.execution.events import Event, Started
from vida_loader.indexes.build import IndexResult, IndexSettings, build_index, build_progress
from vida_loader.indexes.definition import IndexSpec, relaxed
from vida_loader.job.runstate import IndexRecord, TaskState, index_task, now_iso
from vida_loader.mongo import close_client, connect

if TYPE_CHECKING:
    from pymongo import MongoClient

    from vida_loader.execution.scheduler import Scheduler
    from vida_loader.retry import RetryCounts, RetryPolicy

PROGRESS_POLL_S = 5.0  # seconds between reads of the server's index build progress
PROGRESS_TIMEOUTS = Timeouts(select_ms=2000, connect_ms=5000, socket_ms=5000)


@dataclass(frozen=True)
class IndexProgress:
    """An index being built: for how long, and how far where the server says."""

    name: str
    seconds: float
    done: int = 0  # of ``total`` (0/0: the server reports no progress)
    total: int = 0


class IndexTasks(Protocol):
    """A job state holding index build records (a run's, a restore's)."""

    @property
    def indexes(self) -> dict[str, IndexRecord]: ...


class IndexConfig(Protocol):
    """What the builds take of a command's config."""

    @property
    def attempts(self) -> int: ...

    @property
    def timeouts(self) -> Timeouts: ...

    @property
    def retry(self) -> RetryPolicy: ...


class HasTarget(Protocol):
    @property
    def target(self) -> Endpoint: ...


class RunHost(Protocol):
    """What the index phase uses of the coordinator's run (or restore)."""

    @property
    def state(self) -> IndexTasks: ...

    @property
    def cfg(self) -> IndexConfig: ...

    @property
    def settings(self) -> HasTarget: ...

    index_specs: list[IndexSpec]
    outage: str | None
    retried: RetryCounts

    def save(self) -> None: ...

    def tick(self) -> None: ...


class IndexBuilds:
    """The scheduler's handler for the index builds of a run; writes through ``run``."""

    def __init__(self, run: RunHost, relax: bool = False, recheck_done: bool = False) -> None:
        """``relax``: build unique and TTL indexes relaxed (a follow replays changes after);
        ``recheck_done``: look at the builds recorded as done again (`indexes build`)."""
        self.run_ = run
        self.recheck_done = recheck_done
        self.specs = {index_task(s.name): s for s in run.index_specs}
        # While a run follows the source's changes, unique and TTL indexes are built
        # relaxed (a replayed change briefly in conflict must not be refused, a TTL must not
        # delete before the switch-over); ``finalize`` makes them what they are at the end.
        self.finalize: dict[str, dict[str, Any]] = {}
        if relax:
            for tid, spec in list(self.specs.items()):
                loose, change = relaxed(spec)
                if change is not None:
                    self.specs[tid], self.finalize[tid] = loose, change
        self.settings = IndexSettings(run.settings.target, run.cfg.timeouts, run.cfg.retry)
        self.tries: dict[str, int] = {}
        self.seconds = 0.0  # spent in index phases
        self.since: dict[str, float] = {}  # task -> when its running attempt started
        self.progress: dict[str, tuple[int, int]] = {}  # name -> (done, total), by the server
        self.last_poll = 0.0
        self.client: MongoClient[Any] | None = None  # to read the server's progress

    def run(self, scheduler: Scheduler[str, Any], before_data: bool) -> None:
        """Build what is not done yet. Before the data: all but TTL indexes, which would
        delete documents while they are copied."""
        todo = [
            tid
            for tid, rec in self.run_.state.indexes.items()
            if (not rec.done or self.recheck_done)
            and tid in self.specs
            and not (before_data and self.specs[tid].ttl is not None)
        ]
        started = time.monotonic()
        try:
            scheduler.run(todo, self)
        finally:
            self.seconds += time.monotonic() - started
            if self.client is not None:
                close_client(self.client)
                self.client = None

    def task(self, tid: str) -> tuple[Callable[..., IndexResult], tuple[Any, ...]]:
        return build_index, (tid, self.specs[tid], self.settings)

    def admit(self, tid: str) -> bool:
        return self.run_.outage is None

    def lost(self, tid: str, why: str, died: bool) -> IndexResult:
        return IndexResult(tid, TaskState.FAILED, error=why, transient=died)

    def events(self, events: list[Event]) -> None:
        started = False
        for ev in events:
            rec = self.run_.state.indexes.get(ev.task)
            if rec is not None and isinstance(ev, Started) and not rec.done:
                rec.state = TaskState.RUNNING
                rec.started_at = now_iso()
                self.since[ev.task] = time.monotonic()
                started = True
        if started:
            self.run_.save()

    def finished(self, tid: str, result: IndexResult) -> bool:
        self.since.pop(tid, None)
        rec = self.run_.state.indexes[tid]
        rec.attempts += 1
        self.tries[tid] = self.tries.get(tid, 0) + 1
        result.apply_to(rec)
        if result.state is TaskState.DONE and tid in self.finalize:
            rec.finalize = self.finalize[tid]
        self.run_.retried.merge(result.retries, result.throttled, result.wait_s)
        if result.outage is not None:
            self.run_.outage = self.run_.outage or result.outage
        again = (
            result.state is TaskState.FAILED
            and result.transient
            and self.tries[tid] < self.run_.cfg.attempts
        )
        if again:
            rec.state = TaskState.PENDING
        self.run_.save()
        return again

    def tick(self) -> None:
        if self.since and time.monotonic() - self.last_poll >= PROGRESS_POLL_S:
            self._poll()
        self.run_.tick()

    def _poll(self) -> None:
        """Read the server's progress of the running builds (best effort: none on error)."""
        self.last_poll = time.monotonic()
        target = self.settings.target
        try:
            if self.client is None:
                self.client = connect(target.uri, role="target", timeouts=PROGRESS_TIMEOUTS)
            self.progress = build_progress(self.client, target.collection)
        except (PyMongoError, VidaError):
            self.progress = {}

    def building(self) -> tuple[IndexProgress, ...]:
        now = time.monotonic()
        return tuple(
            IndexProgress(
                rec.name, now - self.since.get(tid, now), *self.progress.get(rec.name, (0, 0))
            )
            for tid, rec in self.run_.state.indexes.items()
            if rec.state is TaskState.RUNNING
        )
