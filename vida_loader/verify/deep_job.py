"""``verify --deep``: compare every partition (or a random share) byte for byte, on the
scheduler, recording each as a verify task in the job's run state.

A deep verify is a *round*: the partitions it compares, its sample and seed, its recheck
wait (``DeepRound``, the state's ``verify``). A killed round is continued by the next
``verify --deep`` (only partitions not yet recorded as done are compared again);
``--restart``, or a round that ended, starts a new one. The coordinator holds the job's
lock (no run or repair meanwhile) and is the only writer of the state and of
``mismatches.jsonl``.
"""

from __future__ import annotations

import contextlib
import math
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vida_loader.cluster import open_executor
from vida_loader.errors import StateError
from vida_loader.job.lock import hold_lock
from vida_loader.job.planned import job_command, open_job
from vida_loader.job.recorded import RecordedTasks
from vida_loader.job.runstate import (
    RunState,
    TaskRecord,
    TaskState,
    VerifyRecord,
    load_state,
    now_iso,
    save_state,
    verify_task,
)
from vida_loader.jobfiles import write_json_atomic
from vida_loader.mongo import connect
from vida_loader.pipeline.clients import close_clients
from vida_loader.pipeline.target import require_source
from vida_loader.ru.meter import accounting_on
from vida_loader.transform.plugin import check_transform_file
from vida_loader.transform.spec import TransformSpec
from vida_loader.verify import mismatches
from vida_loader.verify.deep import DeepResult, DeepSettings, verify_partition

if TYPE_CHECKING:
    from vida_loader.config import VerifyConfig
    from vida_loader.job.manifest import Manifest


@dataclass(frozen=True)
class DeepRound:
    """One deep verification: what it compares and how (the state's ``verify``)."""

    number: int  # 1 for the job's first deep verify
    started_at: str
    partitions: tuple[str, ...]  # the ones compared, in manifest order
    of: int  # partitions in the plan
    sample: float | None = None  # percent, None: all
    seed: int | None = None
    recheck_s: float = 0.0
    finished_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "partitions": list(self.partitions),
            "of": self.of,
            "sample": self.sample,
            "seed": self.seed,
            "recheck_s": self.recheck_s,
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> DeepRound:
        return DeepRound(
            number=int(doc["round"]),
            started_at=str(doc["started_at"]),
            finished_at=doc.get("finished_at"),
            partitions=tuple(doc["partitions"]),
            of=int(doc["of"]),
            sample=doc.get("sample"),
            seed=doc.get("seed"),
            recheck_s=float(doc.get("recheck_s", 0.0)),
        )


@dataclass(frozen=True)
class DeepProgress:
    done: int  # partitions compared
    total: int  # partitions of the round
    docs: int  # documents compared on the target side so far
    differences: int  # found so far (in the compared partitions)


@dataclass(frozen=True)
class DeepVerifyResult:
    manifest: Manifest
    round: DeepRound
    records: dict[str, VerifyRecord]  # by partition id, the round's
    seconds: float
    continued: int  # partitions already compared by an earlier, interrupted attempt
    mismatches_path: Path
    transform: str | None = None
    metered: bool = False  # the source's request charges were read (Cosmos DB)

    @property
    def failed(self) -> list[str]:
        return [pid for pid, r in self.records.items() if not r.done]

    @property
    def differing(self) -> list[str]:
        return [pid for pid, r in self.records.items() if r.done and r.differences]

    @property
    def matches(self) -> bool:
        return not self.failed and not self.differing

    def total(self, what: str) -> int:
        return sum(int(getattr(r, what)) for r in self.records.values())

    @property
    def total_ru(self) -> float:
        """Request units the source charged the round's compared partitions, all attempts."""
        return sum(r.ru for r in self.records.values())

    def record(self) -> dict[str, Any]:
        """What ``verify.json`` keeps of this verification (``status`` and the report
        show it); the keys of a counts-only verify, and the deep round's."""
        return {
            "time": now_iso(),
            "deep": True,
            "seconds": round(self.seconds, 3),
            "round": self.round.number,
            "partitions": len(self.records),
            "of": self.round.of,
            "sample": self.round.sample,
            "seed": self.round.seed,
            "source_docs": self.total("source_docs"),
            "target_docs": self.total("target_docs"),
            "matched": self.total("matched"),
            "missing": self.total("missing"),
            "extra": self.total("extra"),
            "altered": self.total("altered"),
            "cleared": self.total("cleared"),
            "matches": self.matches,
            "ru": round(self.total_ru, 2) if self.metered else None,
            "transform": self.transform,
            "mismatches": [
                {
                    "partition": pid,
                    "missing": r.missing,
                    "extra": r.extra,
                    "altered": r.altered,
                    "error": r.error if not r.done else None,
                }
                for pid, r in self.records.items()
                if not r.done or r.differences
            ],
        }


ProgressSink = Callable[[DeepProgress], None]


def pick(pids: list[str], percent: float | None, seed: int) -> tuple[str, ...]:
    """``percent`` of ``pids`` at random (at least one), in their order; all without."""
    if percent is None or percent >= 100:
        return tuple(pids)
    k = max(1, math.ceil(len(pids) * percent / 100))
    chosen = set(random.Random(seed).sample(pids, k))
    return tuple(p for p in pids if p in chosen)


def deep_verify_job(
    cfg: VerifyConfig,
    on_progress: ProgressSink | None = None,
    notify: Callable[[str], None] | None = None,
    tick: float = 0.5,
) -> DeepVerifyResult:
    """Compare the round's partitions not yet compared; returns when each is done or
    failed for good."""
    started = time.monotonic()
    manifest, source, target = open_job(cfg)
    files = cfg.files
    with hold_lock(files, now_iso()), contextlib.ExitStack() as stack:
        state = _run_state(cfg, manifest)
        spec = TransformSpec.from_json(state.transform) if state.transform else None
        if spec is not None:
            check_transform_file(spec)
        with connect(source.uri, role="source", timeouts=cfg.timeouts) as src:
            # else a dropped source "matches" an empty target
            require_source(src, source, cfg.retry)
            metered = accounting_on(cfg.ru_accounting, src.get_database(source.db))
        sides = [("source", source), ("target", target)]
        executor = stack.enter_context(open_executor(cfg, sides))
        rnd, continued = _round(state, manifest, cfg, notify)
        _warn_unconfirmed(state, rnd, notify)
        save_state(state, files.state)
        settings = DeepSettings(
            source=source,
            target=target,
            timeouts=cfg.timeouts,
            retry=cfg.retry,
            transform=spec,
            recheck_s=rnd.recheck_s,
            meter_every=1 if metered else 0,
        )
        deep = _DeepRun(state, manifest, rnd, settings, cfg, on_progress)
        deep.executor = executor
        deep.execute(tick)
        result = DeepVerifyResult(
            manifest,
            DeepRound.from_json(state.verify or {}),
            {pid: _rec(state, pid) for pid in rnd.partitions},
            time.monotonic() - started,
            continued,
            files.mismatches,
            spec.describe() if spec is not None else None,
            metered,
        )
        write_json_atomic(files.verify, result.record())
        return result


def _run_state(cfg: VerifyConfig, manifest: Manifest) -> RunState:
    """The state of the job's run, which a deep verify records its progress in."""
    state = load_state(cfg.files.state)
    if state is None:
        run = " ".join(job_command("run", cfg))
        raise StateError(
            f"job '{cfg.job}' has not run: a deep verify compares what a run copied and "
            f"records its progress in the run's state; run `{run}` first, or count with "
            "`vida-loader verify` (without --deep)"
        )
    state.check_plan(manifest, cfg.files.state)
    return state


def _warn_unconfirmed(
    state: RunState, rnd: DeepRound, notify: Callable[[str], None] | None
) -> None:
    """Partitions no run confirmed yet: what the copy has not written shows as missing."""
    unconfirmed = [p for p in rnd.partitions if not state.partitions[p].done]
    if unconfirmed and notify:
        notify(
            f"{len(unconfirmed)} of the partitions to compare are not confirmed by a run "
            f"yet ({', '.join(unconfirmed[:5])}{' ...' if len(unconfirmed) > 5 else ''}): "
            "what the copy has not written shows as missing"
        )


def _round(
    state: RunState, manifest: Manifest, cfg: VerifyConfig, notify: Callable[[str], None] | None
) -> tuple[DeepRound, int]:
    """The round to work on: the unfinished one (unless --restart), else a new one; and
    how many of its partitions an earlier attempt compared."""
    files = cfg.files
    last = DeepRound.from_json(state.verify) if state.verify else None
    if last is not None and last.finished_at is None and not cfg.restart:
        done = {pid for pid in last.partitions if _rec(state, pid).done}
        mismatches.keep_only(files.mismatches, done)
        if notify:
            notify(
                f"continuing deep verify round {last.number} started {last.started_at}: "
                f"{len(done)} of {len(last.partitions)} partitions already compared "
                "(--restart starts over)"
            )
        return last, len(done)
    pids = [p.id for p in manifest.partitions]
    seed = cfg.seed if cfg.seed is not None else secrets.randbelow(2**31)
    chosen = pick(pids, cfg.sample, seed)
    rnd = DeepRound(
        number=(last.number + 1) if last is not None else 1,
        started_at=now_iso(),
        partitions=chosen,
        of=len(pids),
        sample=cfg.sample,
        seed=seed if cfg.sample is not None else None,
        recheck_s=cfg.recheck,
    )
    for tid in list(state.verifies):
        del state.tasks[tid]  # the last round's findings go with it
    for pid in chosen:
        state.tasks[verify_task(pid)] = VerifyRecord()
    state.verify = rnd.to_json()
    mismatches.start(files.mismatches)
    if notify and cfg.sample is not None:
        notify(
            f"sample: {len(chosen)} of {len(pids)} partitions ({cfg.sample:g}%), seed {seed} "
            f"(--seed {seed} picks the same ones)"
        )
    return rnd, 0


def _rec(state: RunState, pid: str) -> VerifyRecord:
    rec = state.verify_record(pid)
    assert rec is not None, pid  # the round made one for each of its partitions
    return rec


class _DeepRun(RecordedTasks[DeepResult]):
    """The scheduler's handler for a round's verify tasks; the only writer of state."""

    def __init__(
        self,
        state: RunState,
        manifest: Manifest,
        rnd: DeepRound,
        settings: DeepSettings,
        cfg: VerifyConfig,
        on_progress: ProgressSink | None,
    ) -> None:
        super().__init__(cfg.attempts, close_clients)
        self.state, self.rnd, self.settings, self.cfg = state, rnd, settings, cfg
        self.on_progress = on_progress
        self.parts = {p.id: p for p in manifest.partitions}
        self.files = cfg.files
        self.docs = sum(_rec(state, pid).target_docs for pid in rnd.partitions)

    def execute(self, tick: float) -> None:
        todo = [pid for pid in self.rnd.partitions if not _rec(self.state, pid).done]
        for pid in todo:
            _rec(self.state, pid).state = TaskState.PENDING
        self.run_all(todo, self.cfg.jobs, tick)
        if all(_rec(self.state, pid).done for pid in self.rnd.partitions):
            self.state.verify = {**(self.state.verify or {}), "finished_at": now_iso()}
        save_state(self.state, self.files.state)

    def record(self, key: str) -> VerifyRecord | None:
        return self.state.verify_record(key)

    def records(self) -> Iterable[VerifyRecord]:
        return (_rec(self.state, pid) for pid in self.rnd.partitions)

    def save(self) -> None:
        save_state(self.state, self.files.state)

    def interrupted(self) -> str:
        done = sum(1 for pid in self.rnd.partitions if _rec(self.state, pid).done)
        return (
            f"interrupted: {done} of {len(self.rnd.partitions)} partitions compared, "
            f"state saved in '{self.files.state}'; continue with: "
            f"{' '.join(job_command('verify', self.cfg))} --deep"
        )

    def task(self, pid: str) -> tuple[Callable[..., DeepResult], tuple[Any, ...]]:
        return verify_partition, (self.parts[pid], self.settings)

    def lost(self, pid: str, why: str, died: bool) -> DeepResult:
        return DeepResult(pid, TaskState.FAILED, error=why, transient=died)

    def take(self, pid: str, result: DeepResult, rec: TaskRecord) -> None:
        if result.differences:
            # On disk before the record says done: a kill in between compares it again.
            mismatches.add(self.files.mismatches, pid, result.differences)
        assert isinstance(rec, VerifyRecord)
        result.apply_to(rec)
        self.docs += rec.target_docs if rec.done else 0

    def tick(self) -> None:
        if self.on_progress is None:
            return
        recs = [_rec(self.state, pid) for pid in self.rnd.partitions]
        self.on_progress(
            DeepProgress(
                done=sum(1 for r in recs if r.done),
                total=len(recs),
                docs=self.docs + self.moving()[0],
                differences=sum(r.differences for r in recs if r.done),
            )
        )
