"""Where a command's tasks run: this machine's worker processes (``--executor local``) or
the workers of a Dask cluster (``--executor dask --scheduler tcp://HOST:8786``).

Before anything is written, a cluster's workers are checked: each must run the same
vida-loader, pymongo and Python versions as this coordinator, one task at a time, and
reach both databases. The first worker that does not is named in one line.

What the Dask scheduler sees: task keys name the task's function and a random token,
never an argument; the arguments (the partition, the settings with the full URIs) travel
pickled through it to a worker, as they do through a local process pool's pipe. Secure
the cluster (TLS, a private network) as you would the databases (docs/many-machines.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import os
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import pymongo

from vida_loader import __version__
from vida_loader.endpoint import Endpoint, Timeouts, strip_credentials, uri_hosts
from vida_loader.errors import ConnectError, UsageError, VidaError
from vida_loader.execution.dask import ClusterError, DaskCluster
from vida_loader.execution.pool import PoolFactory, make_pool
from vida_loader.mongo import connect

if TYPE_CHECKING:
    from vida_loader.config import JobConfig

ROLES = ("source", "target")
WORKER_FIX = (
    "start each worker with `dask worker tcp://HOST:8786 --nthreads 1 --nworkers N`, in an "
    "environment with the same versions (pip install 'vida-loader[dask]==VERSION')"
)


def strip_endpoints(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """A task's arguments with every URI stripped of user, password and secret options
    (``--worker-uris env``: they travel so, the workers add their own)."""
    return tuple(_endpoints(a, lambda ep, _role: strip_credentials(ep.uri)) for a in args)


def own_endpoints(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """On a worker: a task's arguments with each URI replaced by the worker's own
    ``VIDA_SOURCE_URI`` / ``VIDA_TARGET_URI`` (the field names the role; a bare endpoint
    is matched by its hosts)."""
    own = {role: os.environ.get(f"VIDA_{role.upper()}_URI") for role in ROLES}
    by_hosts = {strip_credentials(u): u for u in own.values() if u}

    def mine(ep: Endpoint, role: str | None) -> str:
        uri = own.get(role) if role else by_hosts.get(ep.uri)
        return uri or ep.uri

    return tuple(_endpoints(a, mine) for a in args)


def _endpoints(value: Any, uri: Callable[[Endpoint, str | None], str]) -> Any:
    """``value`` with each endpoint in it (itself, or a field of a dataclass) given
    ``uri(endpoint, role)``."""
    if isinstance(value, Endpoint):
        return dataclasses.replace(value, uri=uri(value, None))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: dataclasses.replace(ep, uri=uri(ep, f.name if f.name in ROLES else None))
            for f in dataclasses.fields(value)
            if isinstance(ep := getattr(value, f.name), Endpoint)
        }
        return dataclasses.replace(value, **changes) if changes else value
    return value


def versions() -> dict[str, str]:
    """What must be the same on the coordinator and every worker."""
    try:
        dask = importlib.metadata.version("distributed")
    except importlib.metadata.PackageNotFoundError:
        dask = "none"
    return {
        "vida-loader": __version__,
        "pymongo": pymongo.version,
        "python": platform.python_version(),
        "distributed": dask,
    }


def worker_facts(
    sides: list[tuple[str, Endpoint]], timeouts: Timeouts, own: bool
) -> dict[str, Any]:
    """On a worker: its versions, and for each side the reason it cannot reach it (or
    None); ``own``: with the URIs of its own environment. Runs in the worker's process:
    never raises."""
    facts: dict[str, Any] = dict(versions())
    for role, ep in sides:
        uri, name = ep.uri, f"VIDA_{role.upper()}_URI"
        if own:
            uri = os.environ.get(name, "")
            if not uri:
                facts[role] = f"it has no {name} in its environment (--worker-uris env)"
                continue
            if uri_hosts(uri) != uri_hosts(ep.uri):
                facts[role] = (
                    f"its {name} names {','.join(uri_hosts(uri))}, not the job's "
                    f"{','.join(uri_hosts(ep.uri))}"
                )
                continue
        try:
            connect(uri, role=role, timeouts=timeouts).close()
            facts[role] = None
        except VidaError as exc:
            said = exc.line()
            facts[role] = said.replace(f"--{role}-uri", f"the worker's {name}") if own else said
        except Exception as exc:  # never raise into the cluster's logs (the URI is in it)
            facts[role] = f"{type(exc).__name__}"
    return facts


@dataclass
class Executor:
    """An open place to run tasks; ``cluster`` None: this machine."""

    cluster: DaskCluster | None = None
    own_uris: bool = False  # the workers use the URIs of their own environment

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
        if self.own_uris:
            return partial(
                self.cluster.pool,
                shared=remote_shared,
                outbound=strip_endpoints,
                inbound=own_endpoints,
            )
        return partial(self.cluster.pool, shared=remote_shared)


@contextlib.contextmanager
def open_executor(cfg: JobConfig, sides: list[tuple[str, Endpoint]]) -> Iterator[Executor]:
    """The executor ``cfg`` asks for, checked; a cluster is closed on the way out. A run
    waits ``cfg.retry_window`` seconds when its cluster has no worker left."""
    executor, scheduler, timeouts = cfg.executor, cfg.scheduler, cfg.timeouts
    if executor != "dask":
        yield Executor()
        return
    assert scheduler is not None  # the config refuses dask without one
    try:
        cluster = DaskCluster(scheduler, timeouts.select_ms / 1000, cfg.retry_window)
    except ClusterError as exc:
        raise ConnectError(
            str(exc),
            value=scheduler,
            setting="--scheduler",
            fix="check the address and that `dask scheduler` runs there",
        ) from None
    own = cfg.worker_uris == "env"
    try:
        check_workers(cluster, sides, timeouts, own)
        yield Executor(cluster, own)
    finally:
        cluster.close()


def check_workers(
    cluster: DaskCluster, sides: list[tuple[str, Endpoint]], t: Timeouts, own: bool
) -> None:
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
        sent = [(role, strip_endpoints((ep,))[0]) if own else (role, ep) for role, ep in sides]
        facts = cluster.run_everywhere(worker_facts, sent, t, own)
    except Exception as exc:
        raise ConnectError(
            f"{where} could not run the environment check on its workers "
            f"({type(exc).__name__}: {str(exc)[:200]})",
            fix="check that every worker has vida-loader installed: pip install "
            "'vida-loader[dask]'",
        ) from None
    _check_facts(facts, sides, own)


def _check_facts(
    facts: dict[str, dict[str, Any]], sides: list[tuple[str, Endpoint]], own: bool
) -> None:
    """Refuse the first worker that runs other versions or cannot reach a side."""
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
        for role, _ep in sides:
            if got.get(role):
                raise ConnectError(
                    f"Dask worker {address} cannot use the {role}: {got[role]}",
                    value=address,
                    setting="--worker-uris" if own else "--scheduler",
                    fix=(
                        f"give every worker VIDA_{role.upper()}_URI for the job's hosts"
                        if own
                        else "open the network from the workers to both databases"
                    ),
                )
