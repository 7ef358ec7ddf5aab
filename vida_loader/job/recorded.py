"""The scheduler handler every kind of recorded task shares: each task has a record in a
job state (a ``TaskRecord``), its events mark it running and count what it moved, its
result goes into the record, a passing failure runs it again within ``attempts``, and an
interrupt leaves the state saved with nothing marked running.

A kind subclasses ``RecordedTasks`` with what differs: where the records are, how the
state is saved, the task function, and what an interrupt tells the user.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

from vida_loader.cluster import Executor
from vida_loader.errors import RunInterruptedError
from vida_loader.execution.events import Event, Moved, Started
from vida_loader.execution.scheduler import Scheduler
from vida_loader.job.runstate import TaskRecord, TaskState, now_iso
from vida_loader.retry import RetryCounts


class TaskResult(Protocol):
    """What the handler reads of a task's result."""

    @property
    def state(self) -> TaskState: ...

    @property
    def transient(self) -> bool: ...

    @property
    def outage(self) -> str | None: ...

    @property
    def retries(self) -> int: ...

    @property
    def throttled(self) -> int: ...

    @property
    def wait_s(self) -> float: ...

    def apply_to(self, rec: Any) -> None: ...


R = TypeVar("R", bound=TaskResult)


class RecordedTasks(Generic[R]):
    """A scheduler handler over tasks recorded in a job state; the only writer of it."""

    def __init__(self, attempts: int, cleanup: Callable[[], None] | None = None) -> None:
        self.attempts = attempts
        self.cleanup = cleanup
        self.tries: dict[str, int] = {}  # attempts in this command
        self.live: dict[str, tuple[int, int]] = {}  # docs, bytes moved by running tasks
        self.outage: str | None = None  # a side stayed away past the retry budget
        self.retried = RetryCounts()  # finished attempts' retries
        self.executor = Executor()  # where the tasks run (a kind may open a cluster)

    # --- what a kind provides -------------------------------------------------------------

    def record(self, key: str) -> TaskRecord | None:
        """The record of task ``key`` (None: not one of these tasks)."""
        raise NotImplementedError

    def save(self) -> None:
        raise NotImplementedError

    def task(self, key: str) -> tuple[Callable[..., R], tuple[Any, ...]]:
        raise NotImplementedError

    def lost(self, key: str, why: str, died: bool) -> R:
        raise NotImplementedError

    def take(self, key: str, result: R, rec: TaskRecord) -> None:
        """Put ``result`` into ``rec`` (a kind may first write what it found)."""
        result.apply_to(rec)

    def interrupted(self) -> str:
        """The line for an interrupt: how far it got, where the state is, how to go on."""
        raise NotImplementedError

    # --- the scheduler's handler ------------------------------------------------------------

    def admit(self, key: str) -> bool:
        return self.outage is None

    def events(self, events: list[Event]) -> None:
        started = False
        for ev in events:
            rec = self.record(ev.task)
            if rec is None or rec.state in (TaskState.DONE, TaskState.FAILED):
                continue
            if isinstance(ev, Started):
                rec.state = TaskState.RUNNING
                rec.started_at = rec.started_at or now_iso()
                self.live[ev.task] = (0, 0)
                started = True
            elif isinstance(ev, Moved):
                docs, nbytes = self.live.get(ev.task, (0, 0))
                self.live[ev.task] = (docs + ev.docs, nbytes + ev.bytes)
        if started:
            self.save()

    def finished(self, key: str, result: R) -> bool:
        rec = self.record(key)
        assert rec is not None, key
        rec.attempts += 1
        self.tries[key] = self.tries.get(key, 0) + 1
        self.live.pop(key, None)
        self.take(key, result, rec)
        self.retried.merge(result.retries, result.throttled, result.wait_s)
        if result.outage is not None:
            self.outage = self.outage or result.outage
        again = (
            result.state is TaskState.FAILED
            and result.transient
            and self.tries[key] < self.attempts
        )
        if again:
            rec.state = TaskState.PENDING
        self.save()
        return again

    def tick(self) -> None:
        return None

    # --- running them -----------------------------------------------------------------------

    def moving(self) -> tuple[int, int]:
        """Documents and bytes the running tasks have moved so far."""
        return sum(d for d, _ in self.live.values()), sum(b for _, b in self.live.values())

    def run_all(self, keys: Iterable[str], jobs: int, tick: float) -> None:
        """Run ``keys`` on ``jobs`` workers. Ctrl-C (or SIGTERM) and any error leave the
        state saved with nothing running; an interrupt becomes ``RunInterruptedError``."""
        self.schedule(lambda scheduler: scheduler.run(keys, self), jobs, tick)

    def schedule(
        self, work: Callable[[Scheduler[str, Any]], object], jobs: int, tick: float
    ) -> None:
        """``work(scheduler)`` with the interrupt handling of ``run_all``."""
        try:
            with Scheduler[str, Any](
                jobs, tick=tick, cleanup=self.cleanup, pool_factory=self.executor.pool_factory()
            ) as scheduler:
                work(scheduler)
        except BaseException as exc:
            self.stopped()
            if not isinstance(exc, KeyboardInterrupt):
                raise
            raise RunInterruptedError(self.interrupted()) from None
        self.save()
        self.tick()

    def stopped(self) -> None:
        """Records left running by a stop are pending again (``interrupted``), saved."""
        for rec in self.records():
            if rec.state is TaskState.RUNNING:
                rec.state, rec.error = TaskState.PENDING, "interrupted"
        self.save()

    def records(self) -> Iterable[TaskRecord]:
        """Every record a stop may have left running."""
        raise NotImplementedError
