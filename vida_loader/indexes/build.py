"""Build one index on the target: the index task of a run.

``build_index`` is a task like ``worker.copy_partition``: a function of (task, settings)
that reports typed events, returns an ``IndexResult`` and never raises across the process
boundary, so any executor runs it. A definition the target already holds exactly is
``done`` at once (a run killed during its builds repeats only what is missing); one held
under the same name with another definition fails, naming both. A unique build that meets
a duplicate key fails with that key; the data tasks stay done.

A build can take longer than the socket timeout. When the answer does not come in time,
the build goes on in the server: the task then watches ``listIndexes`` and ``currentOp``
until the index is there or no build of it runs any more (then it sends it again, within
the retry budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymongo.errors import NetworkTimeout, OperationFailure, PyMongoError

from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.errors import ConnectError, StateError
from vida_loader.execution.events import Reporter, Started, no_report
from vida_loader.indexes.definition import (
    IndexDiff,
    IndexSpec,
    compare,
    duplicate_key,
    load_saved,
    satisfies,
    save,
    wanted_indexes,
)
from vida_loader.indexes.read import read_indexes, secondary_indexes
from vida_loader.job.planned import open_job
from vida_loader.job.runstate import IndexRecord, TaskState
from vida_loader.mongo import close_client, connect, describe_error
from vida_loader.pipeline.clients import collection
from vida_loader.pipeline.task import (
    AttemptResult,
    failed_result,
    task_failure,
    wait_reporter,
    with_counts,
)
from vida_loader.retry import Retrier, RetryPolicy

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection

    from vida_loader.config import JobConfig
    from vida_loader.job.manifest import Manifest

POLL_S = 2.0  # between looks at a build whose answer did not come in time


@dataclass(frozen=True)
class IndexSettings:
    """What an index task needs besides its definition. Holds the full URI: never saved."""

    target: Endpoint
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class IndexResult(AttemptResult):
    """What happened to one index build on one attempt."""

    task: str
    state: TaskState
    existed: bool = False  # the target already had this exact definition
    duplicate_key: str | None = None  # a unique build met this key twice

    def apply_to(self, rec: IndexRecord) -> None:
        """Record this attempt in the index's run-state record (the coordinator's)."""
        rec.attempted(self)
        rec.existed = self.existed
        rec.duplicate_key = self.duplicate_key


def build_index(
    task: str, spec: IndexSpec, settings: IndexSettings, report: Reporter | None = None
) -> IndexResult:
    """Build ``spec`` on the target collection. Never raises an ``Exception``."""
    started = time.monotonic()
    report = report or no_report
    retrier = Retrier(settings.retry, wait_reporter(report, task), role="target")
    try:
        report(Started(task))
        coll = retrier.call(lambda: collection(settings.target, "target", settings.timeouts))
        result = _build(task, spec, coll, retrier)
    except OperationFailure as exc:
        key = duplicate_key(exc)
        if key is None:
            failure = task_failure(exc, settings.target.uri)
            result = IndexResult(task, TaskState.FAILED, error=failure.error)
        else:
            result = IndexResult(
                task,
                TaskState.FAILED,
                duplicate_key=key,
                error=f"the data breaks unique index '{spec.name}': duplicate key {key}",
            )
    except Exception as exc:  # the process boundary: return a result, do not raise
        result = failed_result(IndexResult, task, exc, settings.target.uri)
    return with_counts(result, started, retrier.counts)


def _build(task: str, spec: IndexSpec, coll: Collection[Any], retrier: Retrier) -> IndexResult:
    there = retrier.call(lambda: existing(coll, spec.name))
    if there is not None:
        if satisfies(there, spec):
            return IndexResult(task, TaskState.DONE, existed=True)
        return IndexResult(
            task,
            TaskState.FAILED,
            error=(
                f"the target already has an index named '{spec.name}' defined otherwise "
                f"({there.describe()}; wanted {spec.describe()}): drop or rename it on the "
                "target, then run again"
            ),
        )
    while True:
        try:
            create_index(coll, spec)
            break
        except NetworkTimeout as exc:
            # No answer in time: the server may still be building it.
            if retrier.call(lambda: wait_for_index(coll, spec)):
                break
            retrier.failed(exc)
        except PyMongoError as exc:
            # Throttled, network, restart: the same command again is harmless. The
            # server's word on the definition (duplicate key, bad option) is raised.
            retrier.failed(exc)
    retrier.succeeded()
    return IndexResult(task, TaskState.DONE)


def disable_target_indexes(target: Endpoint, timeouts: Timeouts, path: Path) -> list[IndexSpec]:
    """Save the target collection's secondary indexes in ``path`` (beside those an earlier
    run saved), then drop them; the file is on disk before the first drop. Returns every
    saved definition: what the run rebuilds after the data."""
    saved = load_saved(path)
    client = connect(target.uri, role="target", timeouts=timeouts)
    try:
        coll = client[target.db][target.collection]
        current = secondary_indexes(coll)
        known = {s.name for s in saved}
        merged = saved + [s for s in current if s.name not in known]
        if merged != saved:
            save(path, merged, target.namespace)
        for spec in current:
            coll.drop_index(spec.name)
    except PyMongoError as exc:
        raise StateError(
            f"cannot drop the indexes of target collection '{target.namespace}' "
            f"(--disable-indexes): {describe_error(exc, target.uri)}; what was saved is "
            f"in '{path}' and the next run rebuilds it"
        ) from None
    finally:
        close_client(client)
    return merged


@dataclass(frozen=True)
class TargetIndexes:
    """What the target of a job should hold and what it holds (``indexes list|diff``)."""

    manifest: Manifest
    wanted: list[IndexSpec]  # planned from the source, then the target's own saved ones
    present: list[IndexSpec]  # listIndexes of the target collection, _id aside
    saved: int  # of ``wanted``: the target's own, saved by --disable-indexes

    @property
    def diff(self) -> IndexDiff:
        return compare(self.wanted, self.present)


def target_indexes(cfg: JobConfig) -> TargetIndexes:
    """Read the job's planned indexes and the target collection's, without writing."""
    manifest, _source, target = open_job(cfg)
    if manifest.indexes is None:
        raise StateError(
            f"job '{cfg.job}' was planned before vida-loader read indexes: plan it again "
            "with `vida-loader plan --replan` to copy them"
        )
    saved = load_saved(cfg.files.indexes)
    client = connect(target.uri, role="target", timeouts=cfg.timeouts)
    try:
        coll = client[target.db][target.collection]
        present = secondary_indexes(coll)
    except PyMongoError as exc:
        raise ConnectError(
            f"cannot list the indexes of target collection '{target.namespace}': "
            f"{describe_error(exc, target.uri)}"
        ) from None
    finally:
        close_client(client)
    wanted = wanted_indexes(manifest.index_builds(), saved)
    return TargetIndexes(manifest, wanted, present, len(wanted) - len(manifest.index_builds()))


def create_index(coll: Collection[Any], spec: IndexSpec) -> None:
    """``createIndexes`` with one definition; OperationFailure as the server said it."""
    coll.database.command("createIndexes", coll.name, indexes=[spec.document()])


def existing(coll: Collection[Any], name: str) -> IndexSpec | None:
    """The target's index named ``name``, if any."""
    return next((s for s in read_indexes(coll) if s.name == name), None)


def wait_for_index(
    coll: Collection[Any],
    spec: IndexSpec,
    poll_s: float = POLL_S,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """After a build whose answer never came: poll until the index exists (True) or the
    server no longer runs a build of it (False)."""
    while existing(coll, spec.name) is None:
        if building(coll, spec.name) is None:
            return existing(coll, spec.name) is not None
        sleep(poll_s)
    return True


def building(coll: Collection[Any], name: str) -> dict[str, Any] | None:
    """The server's running build of index ``name`` on ``coll`` (its currentOp entry)."""
    for op, names in index_builds_running(coll.database.client, coll.name):
        if name in names or not names:  # no names: the server does not say which
            return op
    return None


def build_progress(client: MongoClient[Any], collection: str) -> dict[str, tuple[int, int]]:
    """(done, total) of every index build on ``collection`` that the server reports
    progress of (MongoDB: ``currentOp`` ``progress``); servers that report none: {}."""
    out: dict[str, tuple[int, int]] = {}
    for op, names in index_builds_running(client, collection):
        prog = op.get("progress")
        if isinstance(prog, Mapping) and prog.get("total"):
            for name in names:
                out[name] = (int(prog.get("done", 0)), int(prog["total"]))
    return out


def index_builds_running(
    client: MongoClient[Any], collection: str
) -> list[tuple[dict[str, Any], list[str]]]:
    """``currentOp`` entries building indexes on ``collection``, each with the index names
    (none where the server does not say which collection or index, as SecantusDB)."""
    try:
        ops = client.admin.command("currentOp", True).get("inprog", [])
    except OperationFailure:
        return []  # not allowed or not supported: nothing to watch
    found: list[tuple[dict[str, Any], list[str]]] = []
    for op in ops:
        cmd = op.get("command") or {}
        if "createIndexes" in cmd and not isinstance(cmd["createIndexes"], str):
            found.append((dict(op), []))
        elif cmd.get("createIndexes") == collection:
            names = [
                str(ix.get("name")) for ix in cmd.get("indexes", []) if isinstance(ix, Mapping)
            ]
            found.append((dict(op), names))
    return found
