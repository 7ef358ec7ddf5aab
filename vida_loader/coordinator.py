"""Run a planned job: hand partitions to a pool of workers, record what they report.

The coordinator is the only writer of run state. Workers are pure functions of
(partition, settings) behind one pool factory: a single in-process worker thread for
``-j 1`` and tests, spawned processes otherwise (never fork: pymongo is not fork-safe).
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from concurrent.futures.thread import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo.errors import PyMongoError

from vida_loader.config import Endpoint, JobConfig, RunConfig
from vida_loader.errors import RunInterruptedError, StateError, UsageError
from vida_loader.manifest import Manifest, Partition, load_manifest, manifest_path
from vida_loader.mongo import (
    check_uri,
    connect,
    describe_error,
    normal_hosts,
    redact_uri,
    uri_hosts,
)
from vida_loader.runstate import RunState, now_iso, save_state, state_path
from vida_loader.worker import (
    CopySettings,
    PartitionResult,
    PartitionState,
    close_clients,
    copy_partition,
    init_process,
    run_in_process,
)

# --- the pool factory -----------------------------------------------------------------


class Pool:
    """An executor running ``copy_partition`` plus the queue its progress events arrive on."""

    def __init__(self, executor: Executor, events: Any, inline: bool) -> None:
        self.executor = executor
        self.events = events
        self.inline = inline

    def submit(self, part: Partition, settings: CopySettings) -> Future[PartitionResult]:
        if self.inline:
            return self.executor.submit(copy_partition, part, settings, self._report)
        return self.executor.submit(run_in_process, part, settings)

    def _report(self, event: str, pid: str, docs: int, nbytes: int) -> None:
        self.events.put((event, pid, docs, nbytes))

    def drain(self) -> list[tuple[str, str, int, int]]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except (queue.Empty, OSError, ValueError):
                return out

    def close(self, cancel: bool = False) -> None:
        """Wait for the workers; ``cancel``: drop queued work and stop running workers now."""
        if cancel and isinstance(self.executor, ProcessPoolExecutor):
            # A worker mid-partition would otherwise run to its end before we can exit;
            # what it wrote is redone (idempotently) by the next run.
            for proc in list(getattr(self.executor, "_processes", {}).values()):
                proc.terminate()
        self.executor.shutdown(wait=not cancel, cancel_futures=cancel)
        if self.inline:
            close_clients()


def make_pool(jobs: int) -> Pool:
    """``jobs`` <= 1: one worker thread in this process; else ``jobs`` spawned processes."""
    if jobs <= 1:
        return Pool(ThreadPoolExecutor(1, thread_name_prefix="vida-worker"), queue.Queue(), True)
    ctx = multiprocessing.get_context("spawn")
    events = ctx.Queue()
    executor = ProcessPoolExecutor(
        jobs, mp_context=ctx, initializer=init_process, initargs=(events,)
    )
    return Pool(executor, events, False)


# --- progress and results ---------------------------------------------------------------


@dataclass(frozen=True)
class RunProgress:
    """A snapshot for progress output."""

    docs: int
    bytes: int
    est_docs: int
    est_bytes: int
    elapsed: float
    parts_done: int
    parts_failed: int
    parts_running: int
    parts_total: int
    repaired: int
    retries: int


@dataclass(frozen=True)
class RunResult:
    manifest: Manifest
    state: RunState
    state_path: Path
    seconds: float
    retries: int

    @property
    def failed(self) -> list[tuple[str, str]]:
        return [
            (pid, rec.error or "unknown error")
            for pid, rec in self.state.partitions.items()
            if rec.state is not PartitionState.DONE
        ]

    @property
    def docs(self) -> int:
        return sum(r.docs for r in self.state.partitions.values())

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.state.partitions.values())

    @property
    def repaired(self) -> int:
        return sum(r.repaired for r in self.state.partitions.values())


ProgressSink = Callable[[RunProgress], None]


# --- the run ------------------------------------------------------------------------------


def planned_endpoint(side: dict[str, Any], uri: str | None, role: str, job: str) -> Endpoint:
    """The endpoint to use: ``uri`` (with credentials) when given, else the planned one.

    A given URI must name the hosts the job was planned against.
    """
    chosen = uri or str(side["uri"])
    check_uri(chosen, f"--{role}-uri")
    srv = str(side["uri"]).startswith("mongodb+srv://")
    if uri_hosts(chosen) != normal_hosts(list(side["hosts"]), srv):
        raise StateError(
            f"--{role}-uri '{redact_uri(chosen)}' names {', '.join(uri_hosts(chosen))} but "
            f"job '{job}' was planned against {', '.join(side['hosts'])}: pass the planned "
            f"{role} or re-plan with `vida-loader plan --replan`"
        )
    return Endpoint(chosen, str(side["db"]), str(side["collection"]))


def open_job(cfg: JobConfig) -> tuple[Manifest, Endpoint, Endpoint]:
    """The job's manifest and the source and target to use for it."""
    manifest = load_manifest(manifest_path(cfg.manifest_dir, cfg.job))
    source = planned_endpoint(manifest.source, cfg.source_uri, "source", cfg.job)
    target = planned_endpoint(manifest.target, cfg.target_uri, "target", cfg.job)
    return manifest, source, target


def resolve_job(manifest_dir: Path, job: str | None) -> str:
    """``job``, or the only job planned in ``manifest_dir``."""
    if job:
        return job
    jobs = sorted(p.parent.name for p in manifest_dir.glob("*/manifest.json"))
    if len(jobs) == 1:
        return jobs[0]
    if not jobs:
        raise UsageError(f"no job planned in '{manifest_dir}': run `vida-loader plan` first")
    raise UsageError(f"--job is required: '{manifest_dir}' holds jobs {', '.join(jobs)}")


def _preflight(source: Endpoint, target: Endpoint, cfg: RunConfig) -> None:
    """Fail before any work when either side is unreachable or the source is gone."""
    src = connect(source.uri, role="source", timeouts=cfg.timeouts)
    try:
        dst = connect(target.uri, role="target", timeouts=cfg.timeouts)
        dst.close()
        names = src[source.db].list_collection_names(filter={"name": source.collection})
    except PyMongoError as exc:
        raise StateError(
            f"cannot list collections of '{source.db}' on the source: "
            f"{describe_error(exc, source.uri)}"
        ) from None
    finally:
        src.close()
    if not names:
        raise StateError(
            f"source collection '{source.namespace}' no longer exists on "
            f"'{redact_uri(source.uri)}': check the source or re-plan"
        )


def run_job(
    cfg: RunConfig, on_progress: ProgressSink | None = None, tick: float = 0.5
) -> RunResult:
    """Copy every partition of ``cfg.job``; returns when each is done or failed for good."""
    manifest, source, target = open_job(cfg)
    _preflight(source, target, cfg)
    settings = CopySettings(
        source=source,
        target=target,
        write_concern=cfg.write_concern,
        batch_docs=cfg.batch_docs,
        batch_bytes=cfg.batch_bytes,
        repair_rounds=cfg.repair_rounds,
        timeouts=cfg.timeouts,
    )
    state = RunState.fresh(
        manifest,
        {
            "jobs": cfg.jobs,
            "write_concern": cfg.write_concern,
            "batch_docs": cfg.batch_docs,
            "batch_bytes": cfg.batch_bytes,
            "repair_rounds": cfg.repair_rounds,
            "attempts": cfg.attempts,
        },
    )
    path = state_path(cfg.manifest_dir, cfg.job)
    save_state(state, path)
    run = _Run(manifest, state, path, settings, cfg, on_progress)
    return run.execute(tick)


class _Run:
    """The coordinator's loop; the only code that changes ``state``."""

    def __init__(
        self,
        manifest: Manifest,
        state: RunState,
        path: Path,
        settings: CopySettings,
        cfg: RunConfig,
        on_progress: ProgressSink | None,
    ) -> None:
        self.manifest = manifest
        self.state = state
        self.path = path
        self.settings = settings
        self.cfg = cfg
        self.on_progress = on_progress
        self.parts = {p.id: p for p in manifest.partitions}
        self.live: dict[str, list[int]] = {}  # running partitions: [docs, bytes] so far
        self.retries = 0
        self.started = time.monotonic()

    def execute(self, tick: float) -> RunResult:
        pool = make_pool(self.cfg.jobs)
        futures: dict[Future[PartitionResult], str] = {}
        # Largest first, so the last partitions to finish are short ones.
        order = sorted(self.manifest.partitions, key=lambda p: (-p.est_docs, p.id))
        try:
            for part in order:
                futures[pool.submit(part, self.settings)] = part.id
            last_tick = 0.0
            while futures:
                finished, _ = wait(list(futures), timeout=tick, return_when=FIRST_COMPLETED)
                self._take_events(pool)
                again: list[str] = []
                broken = False
                for fut in finished:
                    pid = futures.pop(fut)
                    result, died = _result_of(fut, pid)
                    broken |= died
                    if self._record(result):
                        again.append(pid)
                if finished:
                    save_state(self.state, self.path)
                if broken:
                    pool.close(cancel=True)
                    pool = make_pool(self.cfg.jobs)
                    # every other future of the dead pool fails too; resubmit them now
                    for fut, pid in list(futures.items()):
                        fut.cancel()
                        again.append(pid)
                    futures.clear()
                for pid in again:
                    futures[pool.submit(self.parts[pid], self.settings)] = pid
                now = time.monotonic()
                if self.on_progress and now - last_tick >= tick:
                    last_tick = now
                    self.on_progress(self.snapshot())
        except BaseException as exc:
            self._interrupted()
            pool.close(cancel=True)
            if not isinstance(exc, KeyboardInterrupt):
                raise
            done = self.state.count(PartitionState.DONE)
            raise RunInterruptedError(
                f"interrupted: {done} of {len(self.parts)} partitions confirmed, state saved "
                f"in '{self.path}'; run the same command again to continue"
            ) from None
        pool.close()
        self.state.finished_at = now_iso()
        save_state(self.state, self.path)
        if self.on_progress:
            self.on_progress(self.snapshot())
        return RunResult(
            self.manifest, self.state, self.path, time.monotonic() - self.started, self.retries
        )

    def _take_events(self, pool: Pool) -> None:
        for event, pid, docs, nbytes in pool.drain():
            rec = self.state.partitions.get(pid)
            if rec is None or rec.state in (PartitionState.DONE, PartitionState.FAILED):
                continue  # late news of a finished attempt
            if event == "start":
                rec.state = PartitionState.RUNNING
                rec.started_at = now_iso()
                self.live[pid] = [0, 0]
            elif event == "copied" and pid in self.live:
                self.live[pid][0] += docs
                self.live[pid][1] += nbytes

    def _record(self, result: PartitionResult) -> bool:
        """Take in a result; True when the partition should be tried again."""
        rec = self.state.partitions[result.partition_id]
        self.live.pop(result.partition_id, None)
        rec.attempts += 1
        rec.apply(result)
        if (
            result.state is PartitionState.FAILED
            and result.transient
            and rec.attempts < self.cfg.attempts
        ):
            rec.state = PartitionState.PENDING
            self.retries += 1
            return True
        return False

    def _interrupted(self) -> None:
        for pid, rec in self.state.partitions.items():
            if rec.state is PartitionState.RUNNING:
                rec.state = PartitionState.PENDING
                rec.error = "interrupted"
            self.live.pop(pid, None)
        save_state(self.state, self.path)

    def snapshot(self) -> RunProgress:
        recs = self.state.partitions.values()
        finished = [r for r in recs if r.state in (PartitionState.DONE, PartitionState.FAILED)]
        return RunProgress(
            docs=sum(r.docs for r in finished) + sum(v[0] for v in self.live.values()),
            bytes=sum(r.bytes for r in finished) + sum(v[1] for v in self.live.values()),
            est_docs=int(self.manifest.stats.get("count", 0)),
            est_bytes=int(self.manifest.stats.get("size_bytes", 0)),
            elapsed=time.monotonic() - self.started,
            parts_done=self.state.count(PartitionState.DONE),
            parts_failed=self.state.count(PartitionState.FAILED),
            parts_running=self.state.count(PartitionState.RUNNING),
            parts_total=len(self.state.partitions),
            repaired=sum(r.repaired for r in recs),
            retries=self.retries,
        )


def _result_of(fut: Future[PartitionResult], pid: str) -> tuple[PartitionResult, bool]:
    """The future's result; a dead worker process becomes a transient failure."""
    try:
        return fut.result(), False
    except BrokenProcessPool:
        msg = "worker process died (killed or out of memory)"
        return PartitionResult(pid, PartitionState.FAILED, error=msg, transient=True), True
    except Exception as exc:  # a bug in the worker wrapper; never lose the partition's record
        msg = f"{type(exc).__name__}: {exc}"
        return PartitionResult(pid, PartitionState.FAILED, error=msg), False
