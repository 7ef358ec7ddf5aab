"""A real Dask cluster on this machine for the tests, the demo and the benchmark: `dask
scheduler` and `dask worker` processes started from this environment's own commands, each
start bounded in time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vida_loader.execution.dask import distributed

DASK = str(Path(sys.executable).with_name("dask"))
START_S = 60.0  # a scheduler or worker that has not come up by then fails the test


class LocalDask:
    """A scheduler and its workers, each a process of its own (no nanny: a killed worker
    stays dead, as a lost host does)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = folder / "scheduler.json"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.address = ""

    def _start(self, name: str, args: list[str], env: dict[str, str] | None) -> None:
        with (self.folder / f"{name}.log").open("wb") as log:  # the child keeps its own
            self.procs[name] = subprocess.Popen(
                [DASK, *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )

    def start_scheduler(self) -> str:
        self._start(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(self.file),
            ],
            None,
        )
        deadline = time.monotonic() + START_S
        while True:
            try:
                self.address = json.loads(self.file.read_text())["address"]
                return self.address
            except (FileNotFoundError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline or self.procs["scheduler"].poll() is not None:
                raise AssertionError(f"dask scheduler did not start: {self.log('scheduler')}")
            time.sleep(0.1)

    def start_worker(
        self,
        name: str,
        *,
        preload: Path | None = None,
        nthreads: int = 1,
        wait: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        args = ["worker", self.address, "--nthreads", str(nthreads), "--no-nanny"]
        args += ["--no-dashboard", "--memory-limit", "0", "--name", name]
        if preload is not None:
            args += ["--preload", str(preload)]
        before = len(self.workers())
        self._start(name, args, env)
        if wait:
            self.wait_workers(before + 1)

    def _client(self) -> Any:
        return distributed().Client(self.address, timeout=10, set_as_default=False)

    def workers(self) -> dict[str, Any]:
        """Address -> info of the workers the scheduler knows now."""
        with self._client() as c:
            return dict(c.scheduler_info(n_workers=-1)["workers"])

    def events(self, prefix: str) -> list[Any]:
        """Every message the workers logged under topics starting with ``prefix``."""
        with self._client() as c:
            topics = c.get_events()
        return [msg for t, evs in topics.items() if t.startswith(prefix) for _ts, msg in evs]

    def processing(self) -> int:
        """Tasks the workers run now."""
        with self._client() as c:
            return sum(len(keys) for keys in c.processing().values())

    def clients_held(self) -> dict[str, int]:
        """Worker address -> the database clients its process holds now."""
        with self._client() as c:
            return dict(c.run(_clients_held))

    def markers_held(self) -> list[str]:
        """The names of the ``distributed.Event``s the scheduler keeps now."""
        with self._client() as c:
            return list(c.run_on_scheduler(_events_held))

    def wait_workers(self, n: int) -> None:
        deadline = time.monotonic() + START_S
        while len(self.workers()) != n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{n} dask workers did not come up")
            time.sleep(0.2)

    def kill(self, name: str) -> None:
        """SIGKILL a worker process: it dies as a lost host does, mid-task."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        """SIGKILL: nothing of a test cluster needs keeping (SIGTERM takes seconds)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(timeout=10)
        self.procs.clear()


def _clients_held() -> int:
    """(On a worker.) The clients of vida-loader's per-process cache."""
    from vida_loader.pipeline import clients

    return len(clients._CLIENTS)


def _events_held(dask_scheduler: Any) -> list[str]:
    """(On the scheduler.) Its events' names (``distributed.Event``, not log events)."""
    return [str(name) for name in dask_scheduler.extensions["events"]._events]


@contextmanager
def local_dask(
    folder: Path, workers: int = 2, env: dict[str, str] | None = None
) -> Iterator[LocalDask]:
    """A scheduler and ``workers`` one-thread workers (``env`` added to theirs); all
    stopped on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    cluster = LocalDask(folder)
    try:
        cluster.start_scheduler()
        for i in range(workers):
            cluster.start_worker(f"w{i}", wait=False, env=env)
        cluster.wait_workers(workers)
        yield cluster
    finally:
        cluster.stop()
