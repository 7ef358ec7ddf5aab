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
objects belong to its process, as in a local worker process, and the pool's ``cleanup``
closes the clients when the task ends (a worker outlives the run).

Nothing here imports the rest of vida-loader; ``distributed`` is imported only when a
cluster is opened (it is an optional extra).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from vida_loader.execution import events as ev
from vida_loader.execution.pool import Stopped, WorkerDied, install_shared

if TYPE_CHECKING:
    from vida_loader.execution.events import Event

T = TypeVar("T")
Args = Callable[[tuple[Any, ...]], tuple[Any, ...]]

STOP_CHECK_S = 0.5  # how often a remote task asks whether the run was stopped
WATCH_EVERY_S = 2.0  # how often the pool asks the scheduler how many workers it has
STOP_WAIT_S = 60.0  # how long a cancelling pool waits for its tasks to stop
_EVENT_KINDS: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (ev.Started, ev.Moved, ev.Waiting, ev.Charged, ev.Phase)
}


def distributed() -> Any:
    """The ``distributed`` package (an optional extra: imported only when used)."""
    import distributed as dd

    return dd


class ClusterLost(Exception):
    """The cluster can no longer run tasks: its scheduler is gone, or it has had no
    worker for longer than the pool's patience."""


class ClusterError(Exception):
    """The Dask cluster cannot be used: ``distributed`` is missing or the scheduler does
    not answer."""


def quiet_logs() -> None:
    """``distributed`` logs to stderr (reconnect attempts, tracebacks of its own shutdown):
    what matters reaches the user as vida-loader's own one-line messages instead."""
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def encode(event: Event) -> list[Any]:
    """An event as plain values (the cluster's event log takes msgpack, not pickles)."""
    return [type(event).__name__, *dataclasses.astuple(event)]


def decode(msg: list[Any]) -> Event:
    kind, *fields = msg
    cls = _EVENT_KINDS[kind]
    return cls(*fields)  # type: ignore[no-any-return]


class DaskCluster:
    """A connection to a Dask scheduler, open for one command; makes its pools."""

    def __init__(self, address: str, timeout: float, patience: float = 60.0) -> None:
        """``timeout``: to connect; ``patience``: how long a run waits for a worker when
        the cluster has none left, before its running tasks fail."""
        try:
            dd = distributed()
        except ImportError as exc:
            raise ClusterError(
                "the Dask executor needs the 'distributed' package: "
                "pip install 'vida-loader[dask]' (here and on every worker)"
            ) from exc
        self.address = address
        self.timeout = timeout
        self.patience = patience
        quiet_logs()
        try:
            with warnings.catch_warnings():
                # Its version warnings: the workers' versions are checked and said in one
                # line by the caller.
                warnings.simplefilter("ignore")
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
        outbound: Args | None = None,
        inbound: Args | None = None,
    ) -> DaskPool:
        """A pool submitting to this cluster (``jobs``: the scheduler's business).
        ``outbound`` changes a task's arguments before they leave this process,
        ``inbound`` (picklable) on the worker before the task runs. ``cleanup``
        (picklable) runs on the worker after each task: a worker outlives the run, and
        its clients must not outlive the task whose budget and settings made them."""
        return DaskPool(
            self.client, shared or {}, self.address, self.patience, outbound, inbound, cleanup
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=self.timeout)


class DaskPool:
    """The scheduler's pool over a Dask client; the same interface as ``Pool``."""

    inline = False

    def __init__(
        self,
        client: Any,
        shared: dict[str, Callable[[], Any]],
        address: str = "",
        patience: float = 60.0,
        outbound: Args | None = None,
        inbound: Args | None = None,
        cleanup: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.cleanup = cleanup
        self.shared = shared
        self.address = address
        self.patience = patience
        self.outbound = outbound
        self.inbound = inbound
        self.broken: str | None = None  # why no task can run any more
        self.watched = time.monotonic()
        self.alone_since: float | None = None  # the cluster has had no worker since then
        self.run_id = uuid.uuid4().hex[:12]
        self.topic = f"vida-{self.run_id}"
        self.stop_name = f"vida-{self.run_id}-stop"
        self.stop_event = distributed().Event(self.stop_name, client=client)
        self.events: queue.Queue[Event] = queue.Queue()
        self.running: dict[Future[Any], Any] = {}  # ours -> Dask's
        # Tasks whose started-marker (an Event on the scheduler) may be left: a task
        # clears its own when it returns, not when its worker dies under it.
        self.markers: set[str] = set()
        self.lock = threading.Lock()
        client.subscribe_topic(self.topic, self._arrived)

    def _arrived(self, event: tuple[float, Any]) -> None:
        self.events.put(decode(event[1]))

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args, report)`` on a Dask worker. The key names the function only
        (keys show in the scheduler's logs and dashboard: never an argument)."""
        ours: Future[T] = Future()
        ours.set_running_or_notify_cancel()
        if self.client.status != "running" and self.broken is None:
            self.broken = f"lost the Dask scheduler at '{self.address}'"
        if self.broken is not None:
            ours.set_exception(ClusterLost(self.broken))
            return ours
        token = f"{fn.__name__}-{uuid.uuid4().hex}"
        if self.outbound is not None:
            args = self.outbound(args)
        theirs = self.client.submit(
            run_remote,
            token,
            self.topic,
            self.stop_name,
            (self.shared, self.inbound, self.cleanup),
            fn,
            *args,
            key=token,
            pure=False,
        )
        with self.lock:
            self.running[ours] = theirs
            self.markers.add(token)
        theirs.add_done_callback(lambda f: self._done(ours, f))
        return ours

    def _done(self, ours: Future[Any], theirs: Any) -> None:
        """Dask's future ended (on the client's callback thread): settle ours, unless the
        watch already failed it."""
        with self.lock:
            self.running.pop(ours, None)
        try:
            outcome = self._outcome(theirs)
        except BaseException as exc:  # the client lost its scheduler while asking
            outcome = ClusterLost(f"lost the Dask scheduler at '{self.address}': {exc}")
        with self.lock:
            if ours.done():
                return
            if isinstance(outcome, BaseException):
                ours.set_exception(outcome)
            else:
                ours.set_result(outcome)

    def _outcome(self, theirs: Any) -> Any:
        """The task's result, or the exception that stands for it."""
        status = theirs.status
        if status == "finished":
            result = theirs.result()
            if isinstance(result, _Rerun):
                return WorkerDied("its Dask worker died")
            with self.lock:
                self.markers.discard(theirs.key)  # cleared by the task itself
            return Stopped() if isinstance(result, _Stopped) else result
        if status == "cancelled":
            return ClusterLost(
                self.broken
                or f"lost the Dask scheduler at '{self.address}' (it stopped, or the network "
                "to it failed)"
            )
        exc = theirs.exception()
        if type(exc).__name__ == "KilledWorker":
            return WorkerDied(f"Dask gave up on it: {exc}")
        return exc

    def drain(self) -> list[Event]:
        """The events that arrived; also, every few seconds, checks that the cluster still
        has a worker (a task waits forever on a cluster without one)."""
        self._watch()
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self.events.get_nowait())
        return out

    def _watch(self) -> None:
        now = time.monotonic()
        if now - self.watched < WATCH_EVERY_S or self.broken is not None:
            return
        self.watched = now
        if self.client.status != "running":
            return  # reconnecting: the client cancels the tasks if it cannot
        try:
            workers = int(self.client.scheduler_info(n_workers=0).get("n_workers", 0))
        except Exception:
            return  # the client is reconnecting: it cancels the tasks if it cannot
        if workers:
            self.alone_since = None
            return
        self.alone_since = self.alone_since or now
        if now - self.alone_since < self.patience:
            return
        self.broken = (
            f"the Dask scheduler at '{self.address}' has had no worker for "
            f"{self.patience:g} s (--retry-window)"
        )
        with self.lock:
            stuck = list(self.running.items())
            self.running.clear()
            for ours, _theirs in stuck:
                if not ours.done():
                    ours.set_exception(ClusterLost(self.broken))
        with contextlib.suppress(Exception):
            self.client.cancel([theirs for _ours, theirs in stuck])

    def close(self, cancel: bool = False) -> None:
        """``cancel``: stop the running tasks at their next event, wait for them (a task
        that writes after the run returned could undo a decision of the next run), then
        drop what never started."""
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
        self._clear_markers()

    def _clear_markers(self) -> None:
        """Drop the started-markers that died with their workers (each an entry on the
        scheduler, which outlives the run); a lost scheduler took them with it."""
        with self.lock:
            left, self.markers = list(self.markers), set()
        dd = distributed()
        for token in left:
            if self.client.status != "running":
                return
            with contextlib.suppress(Exception):
                dd.Event(f"{token}-started", client=self.client).clear()


# --- on a Dask worker ------------------------------------------------------------------


class _Rerun:
    """What a task returns when Dask runs it a second time (its first worker died)."""


class _Stopped:
    """What a task returns when it stopped because the run was cancelled."""


def run_remote(
    token: str,
    topic: str,
    stop_name: str,
    where: tuple[dict[str, Callable[[], Any]], Args | None, Callable[[], None] | None],
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

    shared, inbound, cleanup = where
    with _objects(shared):
        try:
            return fn(*(inbound(args) if inbound is not None else args), report)
        except Stopped:
            return _Stopped()  # a BaseException would take the worker's thread down
        finally:
            with contextlib.suppress(Exception):
                started.clear()
            if cleanup is not None:
                with contextlib.suppress(Exception):
                    cleanup()


@contextlib.contextmanager
def _objects(factories: dict[str, Callable[[], Any]]) -> Iterator[None]:
    """The task's own shared objects, made from the pool's factories."""
    install_shared({name: make() for name, make in factories.items()})
    try:
        yield
    finally:
        install_shared({})
