"""One scheduling loop for every kind of task: hand a task out only when a worker is free,
run failed tasks again before anything new, replace a pool whose worker process died,
and give the caller periodic ticks. The caller's ``Handler`` decides what a task is, what
its result means and whether it runs again; the scheduler holds no state of the job.

An executor's own queue would start the next task before a result (an outage, an
interrupt) is seen here, so at most ``slots`` tasks are ever submitted.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from vida_loader.execution.pool import PoolFactory, TaskPool, WorkerDied, make_pool

if TYPE_CHECKING:
    from vida_loader.execution.events import Event

K = TypeVar("K")
R = TypeVar("R")
K_contra = TypeVar("K_contra", contravariant=True)

DIED = "worker process died (killed or out of memory)"


class Handler(Protocol[K_contra, R]):
    """What the scheduler asks of its caller; all of it runs in the caller's process."""

    def task(self, key: K_contra) -> tuple[Callable[..., R], tuple[Any, ...]]:
        """The function and arguments to run for ``key`` (``report`` is added last)."""

    def lost(self, key: K_contra, why: str, died: bool) -> R:
        """The result standing in for one that never came back: ``why``; ``died`` when its
        worker process died (a passing failure), not when the task's wrapper raised."""

    def finished(self, key: K_contra, result: R) -> bool:
        """Take in a result; True to run ``key`` again, before anything new."""

    def events(self, events: list[Event]) -> None:
        """Events the tasks reported since the last call (called every round)."""

    def tick(self) -> None:
        """Called about every ``tick`` seconds while tasks run."""

    def admit(self, key: K_contra) -> bool:
        """May ``key`` start now? A task never admitted is handed back by ``run``."""


class Scheduler(Generic[K, R]):
    """Runs tasks on a pool of ``jobs`` workers, ``slots`` of them submitted at a time.

    Use as a context manager: leaving it closes the pool, cancelling running tasks when
    an exception (Ctrl-C included) is on its way out.
    """

    def __init__(
        self,
        jobs: int,
        slots: int | None = None,
        tick: float = 0.5,
        cleanup: Callable[[], None] | None = None,
        pool_factory: PoolFactory = make_pool,
    ) -> None:
        self.jobs = max(1, jobs)
        self.slots = max(1, slots or self.jobs)
        self.tick = tick
        self.cleanup = cleanup
        self.pool_factory = pool_factory
        self.pool: TaskPool | None = None
        self.replaced = 0  # pools replaced after a worker process died

    def __enter__(self) -> Scheduler[K, R]:
        self.pool = self.pool_factory(self.jobs, self.cleanup)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.pool is not None:
            self.pool.close(cancel=exc is not None)
            self.pool = None

    def run(self, keys: Iterable[K], handler: Handler[K, R]) -> list[K]:
        """Run every key's task to a result the handler keeps; returns the keys it never
        admitted (in order), once nothing else is running."""
        assert self.pool is not None, "use the scheduler as a context manager"
        pending: deque[K] = deque(keys)
        futures: dict[Future[R], K] = {}
        last_tick = time.monotonic()
        while True:
            self._hand_out(pending, futures, handler)
            if not futures:
                break
            finished, _ = wait(list(futures), timeout=self.tick, return_when=FIRST_COMPLETED)
            handler.events(self.pool.drain())
            broken = False
            for fut in finished:
                key = futures.pop(fut)
                result, died = self._result(fut, key, handler)
                broken |= died
                if handler.finished(key, result):
                    pending.appendleft(key)
            if broken:
                self._replace_pool(futures, pending)
            now = time.monotonic()
            if now - last_tick >= self.tick:
                last_tick = now
                handler.tick()
        handler.events(self.pool.drain())
        return list(pending)

    def _hand_out(
        self, pending: deque[K], futures: dict[Future[R], K], handler: Handler[K, R]
    ) -> None:
        assert self.pool is not None
        while pending and len(futures) < self.slots:
            key = next((k for k in pending if handler.admit(k)), None)
            if key is None:
                return
            pending.remove(key)
            fn, args = handler.task(key)
            futures[self.pool.submit(fn, *args)] = key

    def _result(self, fut: Future[R], key: K, handler: Handler[K, R]) -> tuple[R, bool]:
        """The future's result; a dead worker process becomes the handler's ``lost``."""
        try:
            return fut.result(), False
        except BrokenProcessPool:
            return handler.lost(key, DIED, True), True
        except WorkerDied as exc:  # a remote worker: the pool itself goes on
            return handler.lost(key, f"{DIED}: {exc}", True), False
        except Exception as exc:  # a bug in a task's wrapper: never lose the task's record
            return handler.lost(key, f"{type(exc).__name__}: {exc}", False), False

    def _replace_pool(self, futures: dict[Future[R], K], pending: deque[K]) -> None:
        """A dead process pool fails every future it holds: close it, put its tasks back
        at the front of ``pending`` (their attempts do not count) and start a new pool."""
        assert self.pool is not None
        self.pool.close(cancel=True)
        pending.extendleft(futures.values())
        futures.clear()
        self.pool = self.pool_factory(self.jobs, self.cleanup)
        self.replaced += 1


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (systemd, Kubernetes, `kill`) stops what runs inside the way Ctrl-C does."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
