"""A pool whose workers are the processes of a Dask cluster (``distributed``), on any
number of machines.

The scheduler here hands tasks to it exactly as to the local pool: ``submit(fn, *args)``
runs ``fn(*args, report)`` on some Dask worker, and the task's events come back in order
through the cluster's event topics (a worker's ``log_event``, the client's
``subscribe_topic``). What differs, and how this module makes it look the same:

- A Dask worker that dies has its task run again on another worker by the Dask scheduler
  itself, with the same arguments. The coordinator must hear of it instead (its retry
  continues from what the target holds): each submission marks itself started on the
  Dask scheduler (a ``distributed.Event``), and a second start of it returns at once as
  :class:`~vida_loader.execution.pool.WorkerDied`, which is what a dead local process
  gives. So does a task Dask gave up on (``KilledWorker``).
- Ctrl-C cannot terminate remote processes: ``close(cancel=True)`` sets the run's stop
  event, and each running task stops at its next event (as the inline thread does,
  with :class:`~vida_loader.execution.pool.Stopped`), and is waited for, so nothing
  writes after the run has returned.
- Shared objects (a run's RU budget) cannot cross machines: a Dask pool is given
  factories instead, and each task makes its own objects.

Workers run one task at a time (``--nthreads 1``): a task's clients, meters and shared
objects belong to its process, as in a local worker process.

Nothing here imports the rest of vida-loader; ``distributed`` is imported only when a
cluster is opened (it is an optional extra).
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from typing import Any, TypeVar

from vida_loader.execution import events as ev
from vida_loader.execution.events import Event
from vida_loader.execution.pool import Stopped, WorkerDied, install_shared

T = TypeVar("T")

STOP_CHECK_S = 0.5  # how often a remote task asks whether the run was stopped
STOP_WAIT_S = 60.0  # how long a cancelling pool waits for its tasks to stop
_EVENT_KINDS: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (ev.Started, ev.Moved, ev.Waiting, ev.Charged, ev.Phase)
}


def distributed() -> Any:
    """The ``distributed`` package (an optional extra: imported only when used)."""
    import distributed as dd

    return dd


class ClusterError(Exception):
    """The Dask cluster cannot be used: unreachable, no workers, or a worker unfit
    (``worker`` names it)."""

    def __init__(self, message: str, worker: str | None = None) -> None:
        super().__init__(message)
        self.worker = worker


def encode(event: Event) -> list[Any]:
    """An event as plain values (the cluster's event log takes msgpack, not pickles)."""
    return [type(event).__name__, *dataclasses.astuple(event)]


def decode(msg: list[Any]) -> Event:
    kind, *fields = msg
    cls = _EVENT_KINDS[kind]
    return cls(*fields)  # type: ignore[no-any-return]


class DaskCluster:
    """A connection to a Dask scheduler, open for one command; makes its pools."""

    def __init__(self, address: str, timeout: float) -> None:
        try:
            dd = distributed()
        except ImportError as exc:
            raise ClusterError(
                "the Dask executor needs the 'distributed' package: "
                "pip install 'vida-loader[dask]' (here and on every worker)"
            ) from exc
        self.address = address
        self.timeout = timeout
        try:
            self.client = dd.Client(
                address, timeout=timeout, set_as_default=False, name="vida-loader"
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at '{address}' within {timeout:g} s "
                f"({type(exc).__name__})"
            ) from None

    def workers(self, wait_s: float) -> dict[str, dict[str, Any]]:
        """Each worker's address -> its scheduler info (``nthreads``, ``name``); waits up to
        ``wait_s`` for a first worker."""
        with contextlib.suppress(TimeoutError, OSError):
            self.client.wait_for_workers(1, timeout=wait_s)
        info = self.client.scheduler_info(n_workers=-1)
        return dict(info.get("workers", {}))

    def run_everywhere(self, fn: Callable[..., T], *args: Any) -> dict[str, T]:
        """``fn(*args)`` on every worker, each answer by worker address."""
        return dict(self.client.run(fn, *args, wait=True))

    def pool(
        self,
        jobs: int,
        cleanup: Callable[[], None] | None = None,
        shared: dict[str, Callable[[], Any]] | None = None,
    ) -> DaskPool:
        """A pool submitting to this cluster (``jobs``: the scheduler's business)."""
        return DaskPool(self.client, shared or {})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=self.timeout)


class DaskPool:
    """The scheduler's pool over a Dask client; the same interface as ``Pool``."""

    inline = False

    def __init__(self, client: Any, shared: dict[str, Callable[[], Any]]) -> None:
        self.client = client
        self.shared = shared
        self.run_id = uuid.uuid4().hex[:12]
        self.topic = f"vida-{self.run_id}"
        self.stop_name = f"vida-{self.run_id}-stop"
        self.stop_event = distributed().Event(self.stop_name, client=client)
        self.events: queue.Queue[Event] = queue.Queue()
        self.running: dict[Future[Any], Any] = {}  # ours -> Dask's
        self.lock = threading.Lock()
        self.stopping = False
        client.subscribe_topic(self.topic, self._arrived)

    def _arrived(self, event: tuple[float, Any]) -> None:
        self.events.put(decode(event[1]))

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args, report)`` on a Dask worker. The key names the function only
        (keys show in the scheduler's logs and dashboard: never an argument)."""
        ours: Future[T] = Future()
        ours.set_running_or_notify_cancel()
        token = f"{fn.__name__}-{uuid.uuid4().hex}"
        theirs = self.client.submit(
            run_remote,
            token,
            self.topic,
            self.stop_name,
            self.shared,
            fn,
            *args,
            key=token,
            pure=False,
        )
        with self.lock:
            self.running[ours] = theirs
        theirs.add_done_callback(lambda f: self._done(ours, f))
        return ours

    def _done(self, ours: Future[Any], theirs: Any) -> None:
        with self.lock:
            self.running.pop(ours, None)
        try:
            status = theirs.status
            if status == "finished":
                result = theirs.result()
                if isinstance(result, _Rerun):
                    ours.set_exception(WorkerDied("its Dask worker died"))
                elif isinstance(result, _Stopped):
                    ours.set_exception(Stopped())
                else:
                    ours.set_result(result)
            elif status == "cancelled":
                ours.set_exception(CancelledError("the Dask scheduler cancelled the task"))
            else:
                exc = theirs.exception()
                if type(exc).__name__ == "KilledWorker":
                    exc = WorkerDied(f"Dask gave up on it: {exc}")
                ours.set_exception(exc)
        except BaseException as exc:  # the client lost its scheduler while asking
            if not ours.done():
                ours.set_exception(CancelledError(f"{type(exc).__name__}: {exc}"))

    def drain(self) -> list[Event]:
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self.events.get_nowait())
        return out

    def close(self, cancel: bool = False) -> None:
        """``cancel``: stop the running tasks at their next event, wait for them (a task
        that writes after the run returned could undo a decision of the next run), then
        drop what never started."""
        self.stopping = cancel
        with self.lock:
            theirs = list(self.running.values())
        if cancel and theirs:
            with contextlib.suppress(Exception):
                self.stop_event.set()
            with contextlib.suppress(Exception):
                self.client.cancel([f for f in theirs if f.status == "pending"])
            deadline = time.monotonic() + STOP_WAIT_S
            while time.monotonic() < deadline:
                with self.lock:
                    if not self.running:
                        break
                time.sleep(0.05)
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        with contextlib.suppress(Exception):
            self.stop_event.clear()


# --- on a Dask worker ------------------------------------------------------------------


class _Rerun:
    """What a task returns when Dask runs it a second time (its first worker died)."""


class _Stopped:
    """What a task returns when it stopped because the run was cancelled."""


def run_remote(
    token: str,
    topic: str,
    stop_name: str,
    shared: dict[str, Callable[[], Any]],
    fn: Callable[..., T],
    *args: Any,
) -> T | _Rerun | _Stopped:
    """A task on a Dask worker: ``fn(*args, report)``, its events sent to ``topic``."""
    dd = distributed()
    worker = dd.get_worker()
    client = dd.get_client()
    started = dd.Event(f"{token}-started", client=client)
    if started.is_set():
        return _Rerun()  # the coordinator decides how it runs again
    started.set()
    stop = dd.Event(stop_name, client=client)
    checked = [time.monotonic()]

    def report(event: Event) -> None:
        now = time.monotonic()
        if now - checked[0] >= STOP_CHECK_S:
            checked[0] = now
            if stop.is_set():
                raise Stopped
        worker.log_event(topic, encode(event))

    with _objects(shared):
        try:
            return fn(*args, report)
        except Stopped:
            return _Stopped()  # a BaseException would take the worker's thread down
        finally:
            with contextlib.suppress(Exception):
                started.clear()


@contextlib.contextmanager
def _objects(factories: dict[str, Callable[[], Any]]) -> Iterator[None]:
    """The task's own shared objects, made from the pool's factories."""
    install_shared({name: make() for name, make in factories.items()})
    try:
        yield
    finally:
        install_shared({})
