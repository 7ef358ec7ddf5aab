"""One pool factory: a worker thread in this process for ``-j 1`` (and tests), spawned
processes otherwise (never fork: pymongo is not fork-safe). Both run a task the same
way, ``fn(*args, report)``, and deliver its events on one queue.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import ProcessPoolExecutor
from concurrent.futures.thread import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from vida_loader.execution.events import Event

T = TypeVar("T")


class Stopped(BaseException):
    """Raised inside the inline worker thread, at its next event, to stop it when the pool
    is cancelled. A ``BaseException``: a task's never-raise wrapper does not catch it."""


class WorkerDied(Exception):
    """A task's worker died while it ran (a remote pool's word for a broken process
    pool); the pool itself goes on."""


class TaskPool(Protocol):
    """What the scheduler asks of a pool: this module's, or a cluster's."""

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]: ...

    def drain(self) -> list[Event]: ...

    def close(self, cancel: bool = False) -> None: ...


# (jobs, cleanup) -> a pool: how the scheduler makes (and replaces) its pool
PoolFactory = Callable[[int, Callable[[], None] | None], TaskPool]


class Pool:
    """An executor running tasks plus the queue their events arrive on."""

    def __init__(
        self,
        executor: Executor,
        events: Any,
        inline: bool,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.executor = executor
        self.events = events
        self.inline = inline
        self.cleanup = cleanup
        self.stopping = False

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args, report)``: a task that reports events and never raises."""
        if self.inline:
            return self.executor.submit(fn, *args, self._report)
        return self.executor.submit(run_task, fn, *args)

    def _report(self, event: Event) -> None:
        if self.stopping:
            raise Stopped  # between two write batches: the next run continues from here
        self.events.put(event)

    def drain(self) -> list[Event]:
        """Every event that has arrived, oldest first."""
        out = []
        try:
            if self.inline:
                while True:
                    out.append(self.events.get_nowait())
            else:
                while not self.events.empty():
                    out.append(self.events.get())
        except (queue.Empty, OSError, ValueError, EOFError):
            pass
        return out

    def close(self, cancel: bool = False) -> None:
        """Wait for the workers; ``cancel``: drop queued work and stop running workers now."""
        self.stopping = cancel
        if cancel and isinstance(self.executor, ProcessPoolExecutor):
            # A worker mid-task would otherwise run to its end before we can exit; what
            # it wrote is redone (idempotently) by the next run.
            for proc in list(getattr(self.executor, "_processes", {}).values()):
                proc.terminate()
        # The inline thread stops at its next event (``Stopped``): wait for it, so that
        # nothing writes after the run has returned.
        self.executor.shutdown(wait=self.inline or not cancel, cancel_futures=cancel)
        if self.inline and self.cleanup is not None:
            self.cleanup()  # the inline worker's clients live in this process


def make_pool(
    jobs: int,
    cleanup: Callable[[], None] | None = None,
    shared: dict[str, Any] | None = None,
) -> Pool:
    """``jobs`` <= 1: one worker thread in this process; else ``jobs`` spawned processes.

    ``cleanup`` runs when an inline pool closes (a process pool's workers exit instead).
    ``shared``: objects every worker reaches by name with :func:`shared_object` (shared
    memory, locks: what can cross only when a process starts, never with a task).
    """
    _SHARED.clear()
    _SHARED.update(shared or {})
    if jobs <= 1:
        thread = ThreadPoolExecutor(1, thread_name_prefix="vida-worker")
        return Pool(thread, queue.Queue(), True, cleanup)
    ctx = multiprocessing.get_context("spawn")
    # A SimpleQueue writes each event into its pipe before ``put`` returns (a Queue hands
    # it to a feeder thread): a task's events are all there when its result arrives.
    events = ctx.SimpleQueue()
    executor = ProcessPoolExecutor(
        jobs, mp_context=ctx, initializer=init_process, initargs=(events, dict(_SHARED))
    )
    return Pool(executor, events, False)


# --- inside a worker process ---------------------------------------------------------

_EVENTS: Any = None  # the parent's queue, set once per worker process
_SHARED: dict[str, Any] = {}  # the run's shared objects (this process's, or the parent's)


def shared_object(name: str) -> Any:
    """The object the pool was made with under ``name``, or None."""
    return _SHARED.get(name)


def install_shared(objects: dict[str, Any]) -> None:
    """Replace this process's shared objects (a remote task's own, made where it runs)."""
    _SHARED.clear()
    _SHARED.update(objects)


def init_process(events: Any, shared: dict[str, Any] | None = None) -> None:
    """Initializer of a worker process: remember where events go.

    Ctrl-C reaches the whole process group; only the parent acts on it (it records the
    state and stops the workers), so workers ignore it instead of dying mid-write with
    a traceback each.
    """
    global _EVENTS
    _EVENTS = events
    _SHARED.update(shared or {})
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _queue_report(event: Event) -> None:
    if _EVENTS is not None:
        _EVENTS.put(event)


def run_task(fn: Callable[..., Any], *args: Any) -> Any:
    """A task in a worker process: ``fn(*args, report)`` reporting to the queue."""
    return fn(*args, _queue_report)
