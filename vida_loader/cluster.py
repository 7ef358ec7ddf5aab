"""Where a command's tasks run: this machine's worker processes (``--executor local``) or
the workers of a Dask cluster (``--executor dask --scheduler tcp://HOST:8786``).

Before anything is written, a cluster's workers are checked: each must run the same
vida-loader, pymongo and Python versions as this coordinator, one task at a time, and
reach both databases. The first worker that does not is named in one line.

What the Dask scheduler sees: task keys name the task's function and a random token,
never an argument; the arguments (the partition, the settings with the full URIs) travel
pickled through it to a worker, as they do through a local process pool's pipe. Secure
the cluster (TLS, a private network) as you would the databases (README).
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pymongo

from vida_loader import __version__
from vida_loader.errors import ConnectError, UsageError, VidaError
from vida_loader.execution.dask import ClusterError, DaskCluster
from vida_loader.execution.pool import TaskPool, make_pool
from vida_loader.mongo import Endpoint, Timeouts, connect, redact_uri

PoolFactory = Callable[[int, Callable[[], None] | None], TaskPool]
WORKER_FIX = (
    "start each worker with `dask worker tcp://HOST:8786 --nthreads 1 --nworkers N`, in an "
    "environment with the same versions (pip install 'vida-loader[dask]==VERSION')"
)


def versions() -> dict[str, str]:
    """What must be the same on the coordinator and every worker."""
    return {
        "vida-loader": __version__,
        "pymongo": pymongo.version,
        "python": platform.python_version(),
    }


def worker_facts(sides: list[tuple[str, Endpoint]], timeouts: Timeouts) -> dict[str, Any]:
    """On a worker: its versions, and for each side the reason it cannot reach it (or
    None). Runs in the worker's process: never raises."""
    facts: dict[str, Any] = dict(versions())
    for role, ep in sides:
        try:
            connect(ep.uri, role=role, timeouts=timeouts).close()
            facts[role] = None
        except VidaError as exc:
            facts[role] = exc.line()
        except Exception as exc:  # never raise into the cluster's logs (the URI is in it)
            facts[role] = f"{type(exc).__name__}"
    return facts


@dataclass
class Executor:
    """An open place to run tasks; ``cluster`` None: this machine."""

    cluster: DaskCluster | None = None

    @property
    def remote(self) -> bool:
        return self.cluster is not None

    def pool_factory(
        self,
        shared: dict[str, Any] | None = None,
        remote_shared: dict[str, Callable[[], Any]] | None = None,
    ) -> PoolFactory:
        """Pools for a ``Scheduler``: ``shared`` objects reach local worker processes;
        on a cluster each task makes its own from ``remote_shared``'s factories."""
        if self.cluster is None:
            return partial(make_pool, shared=shared)
        return partial(self.cluster.pool, shared=remote_shared)


@contextlib.contextmanager
def open_executor(
    executor: str,
    scheduler: str | None,
    sides: list[tuple[str, Endpoint]],
    timeouts: Timeouts,
    patience: float,
) -> Iterator[Executor]:
    """The executor a command asked for, checked; a cluster is closed on the way out.
    ``patience``: how long a run waits when the cluster has no worker left."""
    if executor != "dask":
        yield Executor()
        return
    assert scheduler is not None  # the config refuses dask without one
    try:
        cluster = DaskCluster(scheduler, timeouts.select_ms / 1000, patience)
    except ClusterError as exc:
        raise ConnectError(
            str(exc),
            value=scheduler,
            setting="--scheduler",
            fix="check the address and that `dask scheduler` runs there",
        ) from None
    try:
        check_workers(cluster, sides, timeouts)
        yield Executor(cluster)
    finally:
        cluster.close()


def check_workers(cluster: DaskCluster, sides: list[tuple[str, Endpoint]], t: Timeouts) -> None:
    """Refuse the cluster, in one line, unless every worker is fit for the job."""
    where = f"the Dask scheduler at '{cluster.address}'"
    workers = cluster.workers(wait_s=t.select_ms / 1000)
    if not workers:
        raise ConnectError(
            f"{where} has no workers",
            value=cluster.address,
            setting="--scheduler",
            fix=WORKER_FIX,
        )
    for address, info in sorted(workers.items()):
        if int(info.get("nthreads", 1)) != 1:
            raise UsageError(
                f"Dask worker {address} runs {info['nthreads']} threads: vida-loader runs "
                "one task per worker process",
                value=address,
                setting="--scheduler",
                fix="start workers with --nthreads 1 (and --nworkers N for more processes)",
            )
    try:
        facts = cluster.run_everywhere(worker_facts, sides, t)
    except Exception as exc:
        raise ConnectError(
            f"{where} could not run the environment check on its workers "
            f"({type(exc).__name__}: {str(exc)[:200]})",
            fix="check that every worker has vida-loader installed: pip install "
            "'vida-loader[dask]'",
        ) from None
    mine = versions()
    for address, got in sorted(facts.items()):
        differ = [f"{k} {got.get(k)} (here {v})" for k, v in mine.items() if got.get(k) != v]
        if differ:
            raise UsageError(
                f"Dask worker {address} runs {', '.join(differ)}",
                value=address,
                setting="--scheduler",
                fix=WORKER_FIX.replace("VERSION", __version__),
            )
        for role, ep in sides:
            if got.get(role):
                raise ConnectError(
                    f"Dask worker {address} cannot reach the {role} "
                    f"'{redact_uri(ep.uri)}': {got[role]}",
                    value=address,
                    setting="--scheduler",
                    fix="open the network from the workers to both databases",
                )
