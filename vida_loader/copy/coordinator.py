"""Run a planned job: hand partitions to a pool of workers, record what they report.

The coordinator is the only writer of run state. It is the handler of the shared
``execution.scheduler``: it says which task copies a partition (``copy_partition``),
takes in each result and each typed event, and saves the state; the scheduler decides
when a task starts, re-runs it and replaces a pool whose worker process died.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vida_loader.cluster import Executor, open_executor
from vida_loader.copy.journal import RunJournal
from vida_loader.copy.progress import Attempts, ProgressSink, RunProgress, RuRate
from vida_loader.copy.task import (
    RU_BUDGET,
    CopySettings,
    PartitionResult,
    copy_partition,
)
from vida_loader.errors import RunInterruptedError, UsageError
from vida_loader.execution.events import Charged, Event, Moved, Phase, Started, Waiting
from vida_loader.execution.scheduler import Scheduler
from vida_loader.follow.position import Position, take_position
from vida_loader.indexes.build import (
    disable_target_indexes,
)
from vida_loader.indexes.definition import IndexSpec, load_saved, wanted_indexes
from vida_loader.indexes.phase import IndexBuilds
from vida_loader.job.lock import hold_lock
from vida_loader.job.planned import continue_command, open_job
from vida_loader.job.runstate import (
    PartitionRecord,
    RunState,
    TaskKind,
    TaskState,
    load_state,
    now_iso,
    save_state,
)
from vida_loader.jobfiles import JobFiles, cut_torn_line
from vida_loader.mongo import connect
from vida_loader.pipeline.clients import close_clients
from vida_loader.pipeline.target import (
    check_target_empty,
    check_target_kept,
    drop_target,
    require_source,
)
from vida_loader.retry import RetryCounts
from vida_loader.ru.budget import BudgetPlan, plan_budget
from vida_loader.ru.meter import Charges, accounting_on, provisioned_throughput
from vida_loader.settings.registry import DEFAULT_MAX_REJECTS
from vida_loader.transform.plugin import Transform, check_transform_query, load_transform
from vida_loader.transform.spec import TransformSpec, check_transform

if TYPE_CHECKING:
    from vida_loader.config import RunConfig
    from vida_loader.endpoint import Endpoint
    from vida_loader.job.manifest import Manifest

# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    manifest: Manifest
    state: RunState
    state_path: Path
    seconds: float
    reruns: int  # partitions started again after a failed attempt
    read_docs: int = 0  # read from the source by this run
    read_bytes: int = 0
    skipped: int = 0  # partitions confirmed by earlier runs
    resumed: int = 0  # partitions continued from what the target held
    retries: int = 0  # operations tried again by this run
    throttled: int = 0  # of those, throttled by the server
    wait_s: float = 0.0  # seconds workers spent waiting to retry
    outage: str | None = None  # the side that stayed away too long: the run stopped early
    charges: Charges | None = None  # this run's request units, when the source was metered
    budget: str | None = None  # how the run paced itself by RU, in words
    index_builds: int = 0  # index build attempts by this run
    index_s: float = 0.0  # seconds this run spent building indexes
    transform: str | None = None  # the job's transform, described
    max_rejects: int = DEFAULT_MAX_REJECTS

    @property
    def dropped(self) -> int:
        """Documents the transform dropped, all partitions (their last attempts)."""
        return self.state.refused()[0]

    @property
    def rejected(self) -> int:
        """Documents the transform rejected (in rejects.bson), all partitions."""
        return self.state.refused()[1]

    @property
    def too_many_rejects(self) -> bool:
        return self.rejected > self.max_rejects

    @property
    def rejects_path(self) -> Path:
        return JobFiles.of_folder(self.state_path.parent).rejects

    @property
    def rejects_bson_path(self) -> Path:
        return JobFiles.of_folder(self.state_path.parent).rejects_bson

    @property
    def failed(self) -> list[tuple[str, str]]:
        return [
            (pid, rec.error or "unknown error")
            for pid, rec in self.state.partitions.items()
            if rec.state is not TaskState.DONE
        ]

    @property
    def index_failures(self) -> list[tuple[str, str]]:
        """(index name, error) of every index build that failed."""
        return [
            (rec.name, rec.error or "unknown error")
            for rec in self.state.indexes.values()
            if rec.state is TaskState.FAILED
        ]

    @property
    def confirmed_docs(self) -> int:
        """Documents counted on the target in the confirmed partitions, all runs."""
        return self.state.confirmed_docs()

    @property
    def repaired(self) -> int:
        return sum(r.repaired for r in self.state.partitions.values())

    @property
    def duplicates(self) -> int:
        return self.state.duplicates()

    @property
    def duplicates_path(self) -> Path:
        return JobFiles.of_folder(self.state_path.parent).duplicates


# --- the run ------------------------------------------------------------------------------


def _preflight(
    source: Endpoint,
    target: Endpoint,
    cfg: RunConfig,
    state: RunState | None,
    notify: Callable[[str], None] | None = None,
    transform: Transform | None = None,
) -> tuple[BudgetPlan | None, Position | None]:
    """Fail before any work when either side is unreachable or the source is gone.
    Then the request-unit side: the run's budget when the source's charges are to be
    read (``--ru-accounting``), else None.

    A fresh job (``state`` None): the target must be empty unless the user said to
    empty it (``--drop-target``) or to add to it (``--append``), and the source's
    change-stream position is taken (on the same connection), before any partition is
    read: every change from there on is what --follow replays. A continued job: the
    target must still hold at least what earlier runs confirmed.
    """
    with (
        connect(source.uri, role="source", timeouts=cfg.timeouts) as src,
        connect(target.uri, role="target", timeouts=cfg.timeouts) as dst,
    ):
        require_source(src, source, cfg.retry)
        if transform is not None:
            check_transform_query(src[source.db][source.collection], transform)
        if state is None and not cfg.drop_target:
            check_target_empty(dst, target, append=cfg.append, retry=cfg.retry)
        elif state is not None and not (state.changes or {}).get("resume_token"):
            # (After a follow the target holds what the source holds now, not what the
            # copy confirmed: deletes were applied.)
            check_target_kept(dst, target, state.confirmed_docs(), state.job, cfg.retry)
        src_db = src.get_database(source.db)
        metered = accounting_on(cfg.ru_accounting, src_db)
        budget = plan_budget(
            metered=metered,
            provisioned=provisioned_throughput(src_db, source.collection) if metered else None,
            max_rus=cfg.max_rus,
            max_rus_percent=cfg.max_rus_percent,
            percent_given=cfg.max_rus_percent_given,
            notify=notify,
        )
        return budget, take_position(src, source) if state is None else None


def run_job(
    cfg: RunConfig,
    on_progress: ProgressSink | None = None,
    tick: float = 0.5,
    notify: Callable[[str], None] | None = None,
) -> RunResult:
    """Copy every partition of ``cfg.job`` not yet confirmed; returns when each is done
    or failed for good. Continues the job's saved run state unless ``cfg.restart``."""
    manifest, source, target = open_job(cfg)
    # Before anything is written: a transform that does not load stops the run here.
    transform = load_transform(cfg.transform) if cfg.transform and not cfg.only_indexes else None
    spec = transform.recorded() if transform is not None else None
    with hold_lock(cfg.files, now_iso()) as stale, contextlib.ExitStack() as stack:
        if stale is not None and notify:
            notify(
                f"took over the lock of job '{cfg.job}' from {stale.describe()}, which is "
                "no longer running"
            )
        state = _saved_state(cfg, manifest, spec)
        budget, position = (
            (None, None)
            if cfg.only_indexes
            else _preflight(source, target, cfg, state, notify, transform)
        )
        # A cluster's workers are checked before anything is written.
        sides = [("source", source), ("target", target)]
        executor = stack.enter_context(open_executor(cfg, sides))
        continuing = state is not None
        if state is None:
            # (A copy needs no position: a source without change streams is recorded.)
            changes = position.to_json() if position is not None else None
            state = RunState.fresh(
                manifest, cfg.settings(), appended=cfg.append, transform=spec, changes=changes
            )
        else:
            state.continue_run(cfg.settings())
        settings = _copy_settings(cfg, source, target, state, budget, executor, transform)
        builds = _prepare_target(cfg, manifest, state, target, continuing)
        run = _Run(
            manifest, state, settings, cfg, on_progress, continuing, budget, builds, executor
        )
        return run.execute(tick)


def _saved_state(
    cfg: RunConfig, manifest: Manifest, spec: dict[str, Any] | None
) -> RunState | None:
    """The job's run state to continue (None: a fresh start), once it is checked against
    the plan, the transform and the flags."""
    path = cfg.files.state
    state = None if cfg.restart else load_state(path)
    if state is not None:
        state.check_plan(manifest, path)
        if not cfg.only_indexes:
            check_transform(state, spec, path)
        if cfg.drop_target:
            raise UsageError(
                f"--drop-target would empty the target of job '{cfg.job}', which has "
                f"already run: give --restart with it to start the job over"
            )
    if cfg.only_indexes and state is None:
        raise UsageError(
            f"job '{cfg.job}' has not run yet: `vida-loader run` builds its indexes after "
            "the data (or before it, with --indexes before)"
        )
    return state


def _copy_settings(
    cfg: RunConfig,
    source: Endpoint,
    target: Endpoint,
    state: RunState,
    budget: BudgetPlan | None,
    executor: Executor,
    transform: Transform | None,
) -> CopySettings:
    """What every copy task of this run is given."""
    return CopySettings(
        source=source,
        target=target,
        write_concern=cfg.write_concern,
        batch_size=cfg.batch_size,
        batch_bytes=cfg.batch_bytes,
        repair_rounds=cfg.repair_rounds,
        timeouts=cfg.timeouts,
        count_always=state.appended,
        retry=cfg.retry,
        meter_every=1 if budget is not None else 0,
        workers=1 if executor.remote else cfg.jobs,  # remote: each task its budget share
        transform=transform.spec if transform is not None else None,
        keep_rejects=cfg.max_rejects + 1,  # more stops the run: no need to keep them
    )


def _prepare_target(
    cfg: RunConfig, manifest: Manifest, state: RunState, target: Endpoint, continuing: bool
) -> list[IndexSpec]:
    """Save the state, then empty (or strip the indexes of) the target as the flags say;
    returns the index builds the run owes the target, recorded as tasks in the state."""
    files = cfg.files
    # The fresh state goes to disk before the target is emptied: a kill in between
    # must not leave an old state that calls the emptied partitions done.
    save_state(state, files.state)
    for appended in (files.metrics, files.duplicates):
        cut_torn_line(appended)  # a line a killed run left half-written
    if not continuing:
        files.duplicates.unlink(missing_ok=True)  # an earlier start's
    if not continuing and cfg.drop_target:
        files.indexes.unlink(missing_ok=True)  # the target's own: dropped with it
        drop_target(target, cfg.timeouts)
    saved = load_saved(files.indexes)
    if cfg.disable_indexes and not continuing:
        saved = disable_target_indexes(target, cfg.timeouts, files.indexes)
    builds = wanted_indexes(manifest.index_builds(), saved)
    if cfg.indexes != "skip":
        state.add_index_tasks([spec.name for spec in builds])
        save_state(state, files.state)
    return builds


class _Run:
    """The coordinator's loop and the scheduler's handler of copy tasks; the only code that
    changes ``state``, which it writes through its journal."""

    def __init__(
        self,
        manifest: Manifest,
        state: RunState,
        settings: CopySettings,
        cfg: RunConfig,
        on_progress: ProgressSink | None,
        continuing: bool,
        budget: BudgetPlan | None = None,
        index_specs: list[IndexSpec] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.manifest = manifest
        self.index_specs = index_specs or []
        self.executor = executor or Executor()
        self.budget = budget
        self.state = state
        self.settings = settings
        self.cfg = cfg
        self.on_progress = on_progress
        self.journal = RunJournal(state, cfg.files, fresh=not continuing)
        self.parts = {p.id: p for p in manifest.partitions}
        self.records = state.partitions  # the same record objects, looked up per event
        self.attempts = Attempts()  # what the running attempts' events tell
        self.reruns = 0
        self.retried = RetryCounts()  # operation retries of this run's finished attempts
        self.outage: str | None = None  # a side stayed away past the retry window
        self.started = time.monotonic()
        self.tries: dict[str, int] = {}  # attempts in this run
        self.read = [0, 0]  # docs and bytes read by this run
        self.skipped = state.count(TaskState.DONE)
        self.charges = Charges()  # this run's finished attempts
        self.ru_rate = RuRate()
        self.base = [state.confirmed_docs(), state.confirmed_bytes()]
        # An earlier run may have written part of any unconfirmed range: continue it
        # from what the target holds instead of sending it all again.
        self.resume = {pid for pid, r in state.partitions.items() if continuing and not r.done}
        self.resumed = 0
        self.builds = IndexBuilds(self, relax=cfg.follow, recheck_done=cfg.only_indexes)

    def execute(self, tick: float) -> RunResult:
        try:
            held_back = self._schedule(tick)
        except BaseException as exc:
            self.journal.interrupted()
            if not isinstance(exc, KeyboardInterrupt):
                raise
            done = self.state.count(TaskState.DONE)
            raise RunInterruptedError(
                f"interrupted: {done} of {len(self.parts)} partitions confirmed, state saved "
                f"in '{self.journal.path}'; continue with: "
                f"{continue_command(self.cfg, manifest=self.manifest)}"
            ) from None
        self._not_started(held_back)
        self.state.finished_at = now_iso()
        self.journal.save()
        progress = self.snapshot()
        if self.on_progress:
            self.on_progress(progress)
        self.journal.metrics(progress)
        return self._result()

    def _schedule(self, tick: float) -> list[str]:
        """The copy tasks and the index builds on one scheduler; returns the partitions
        held back (a side away too long, too many rejects)."""
        # Largest first, so the last partitions to finish are short ones.
        todo = [
            p
            for p in self.manifest.partitions
            if not self.records[p.id].done and not self.cfg.only_indexes
        ]
        order = [p.id for p in sorted(todo, key=lambda p: (-p.est_docs, p.id))]
        shared, remote = {}, {}
        if self.budget is not None and self.executor.remote:
            remote[RU_BUDGET] = self.budget.share(self.cfg.jobs)
        elif self.budget is not None:
            shared[RU_BUDGET] = self.budget.make(multiprocessing.get_context("spawn"))
        with Scheduler[str, Any](
            self.cfg.jobs,
            tick=tick,
            cleanup=close_clients,
            pool_factory=self.executor.pool_factory(shared, remote),
        ) as scheduler:
            if self.cfg.indexes == "before":
                self.builds.run(scheduler, before_data=True)
            held_back = scheduler.run(order, self)
            if self.cfg.indexes != "skip" and self._data_done():
                self.builds.run(scheduler, before_data=False)
            elif self.cfg.only_indexes and self.outage is None:
                self.builds.run(scheduler, before_data=True)
        return held_back

    def _result(self) -> RunResult:
        return RunResult(
            self.manifest,
            self.state,
            self.journal.path,
            time.monotonic() - self.started,
            self.reruns,
            read_docs=self.read[0],
            read_bytes=self.read[1],
            skipped=self.skipped,
            resumed=self.resumed,
            retries=self.retried.retries,
            throttled=self.retried.throttled,
            wait_s=self.retried.wait_s,
            outage=self.outage,
            charges=self.charges if self.settings.meter_every else None,
            budget=self.budget.why if self.budget is not None else None,
            index_builds=sum(self.builds.tries.values()),
            index_s=self.builds.seconds,
            transform=(
                TransformSpec.from_json(self.state.transform).describe()
                if self.state.transform
                else None
            ),
            max_rejects=self.cfg.max_rejects,
        )

    def _not_started(self, pids: list[str]) -> None:
        """A server stayed away past the retry window (each partition would wait the
        window out in turn), or the transform rejected more than allowed: nothing more was
        started; the running ones ended by themselves."""
        why = (
            f"the {self.outage} stayed away past the retry window"
            if self.outage is not None
            else f"more than --max-rejects {self.cfg.max_rejects:,} documents were rejected"
        )
        for pid in pids:
            rec = self.records[pid]
            rec.state = TaskState.PENDING
            rec.error = f"not started: {why}"

    # --- the scheduler's handler --------------------------------------------------------

    def task(self, pid: str) -> tuple[Callable[..., PartitionResult], tuple[Any, ...]]:
        return copy_partition, (self.parts[pid], self.settings, pid in self.resume)

    def admit(self, pid: str) -> bool:
        return self.outage is None and self.state.refused()[1] <= self.cfg.max_rejects

    def lost(self, pid: str, why: str, died: bool) -> PartitionResult:
        return PartitionResult(pid, TaskState.FAILED, error=why, transient=died)

    def events(self, events: list[Event]) -> None:
        """Apply progress events, then save the state as the journal says is due."""
        news = ""
        for ev in events:
            rec = self.records.get(ev.task)
            if rec is None or rec.state in (TaskState.DONE, TaskState.FAILED):
                continue  # late news of a finished attempt
            said = self._event(ev, rec)
            news = "started" if said == "started" else news or said
        self.journal.save_for(news)

    def _event(self, ev: Event, rec: PartitionRecord) -> str:
        """Apply one event: "started", "moved" when it moved documents, else ""."""
        if isinstance(ev, Started):
            self._started(ev.task, rec)
            return "started"
        if isinstance(ev, Moved) and rec.state is TaskState.RUNNING:
            rec.docs += ev.docs
            rec.bytes += ev.bytes
            self.attempts.moved(ev.task)
            return "moved"
        if isinstance(ev, Phase):
            self.attempts.phase(ev.task, ev.phase)
        elif isinstance(ev, Charged):
            self.attempts.charged(ev.task, ev.ru)
        elif isinstance(ev, Waiting):
            self.attempts.waited(ev)
        return ""

    def _started(self, pid: str, rec: PartitionRecord) -> None:
        rec.state = TaskState.RUNNING
        rec.started_at = now_iso()
        self.attempts.started(pid)
        if pid in self.resume and not self.tries.get(pid):
            # Continuing a killed run: the worker skips about what the last
            # save said it had read; count that as done, not as this run's pace.
            self.base[0] += rec.docs
            self.base[1] += rec.bytes
        else:
            rec.docs = rec.bytes = 0

    def finished(self, pid: str, result: PartitionResult) -> bool:
        """Take in a result and save the state; True when the partition runs again."""
        again = self._record(result)
        self.save()
        return again

    def tick(self) -> None:
        progress = self.snapshot()
        if self.on_progress:
            self.on_progress(progress)
        if self.journal.metrics_due():
            self.journal.metrics(progress)

    # -------------------------------------------------------------------------------------

    def _record(self, result: PartitionResult) -> bool:
        """Take in a result; True when the partition should be tried again."""
        pid = result.partition_id
        rec = self.records[pid]
        rec.attempts += 1
        self.tries[pid] = self.tries.get(pid, 0) + 1
        self.journal.attempt(result)
        result.apply_to(rec)
        self.read[0] += result.docs
        self.read[1] += result.bytes
        self.attempts.ended(pid)
        if result.charges is not None:
            self.charges.add(result.charges)
        self.retried.merge(result.retries, result.throttled, result.wait_s)
        if result.outage is not None:
            self.outage = self.outage or result.outage
        self.resumed += int(result.resumed)
        self.resume.add(pid)  # whatever this attempt wrote stays: a retry continues it
        if (
            result.state is TaskState.FAILED
            and result.transient
            and self.tries[pid] < self.cfg.attempts
        ):
            rec.state = TaskState.PENDING
            self.reruns += 1
            return True
        return False

    def _data_done(self) -> bool:
        return self.outage is None and all(r.done for r in self.records.values())

    def save(self) -> None:
        """Save the state (the copy and index handlers' one way to)."""
        self.journal.save()

    def snapshot(self) -> RunProgress:
        running = {pid: r for pid, r in self.records.items() if r.state is TaskState.RUNNING}
        retried = self.attempts.retries(self.retried)
        ru = self.charges.ru + sum(self.attempts.ru.values())
        return RunProgress(
            docs=self.state.confirmed_docs() + sum(r.docs for r in running.values()),
            bytes=self.state.confirmed_bytes() + sum(r.bytes for r in running.values()),
            base_docs=self.base[0],
            base_bytes=self.base[1],
            est_docs=int(self.manifest.stats.get("count", 0)),
            est_bytes=int(self.manifest.stats.get("size_bytes", 0)),
            elapsed=time.monotonic() - self.started,
            parts_done=self.state.count(TaskState.DONE),
            parts_failed=self.state.count(TaskState.FAILED),
            parts_running=self.state.count(TaskState.RUNNING),
            parts_total=len(self.records),
            repaired=sum(r.repaired for r in self.records.values()),
            retries=retried.retries,
            throttled=retried.throttled,
            reruns=self.reruns,
            waiting_for=tuple(sorted(set(self.attempts.waiting.values()))),
            metered=bool(self.settings.meter_every),
            ru=ru,
            ru_now=self.ru_rate.now(ru),
            indexes_done=self.state.count(TaskState.DONE, TaskKind.INDEX),
            indexes_total=len(self.state.indexes) if self.cfg.indexes != "skip" else 0,
            indexes_failed=self.state.count(TaskState.FAILED, TaskKind.INDEX),
            building=self.builds.building(),
            workers=self.attempts.workers(running),
            throttling=bool(self.attempts.throttled),
            wait_s=retried.wait_s,
            ru_budget=self.budget.rate if self.budget is not None and self.budget.known else None,
        )
