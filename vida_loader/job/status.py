"""What a job's files say about it, read without a connection and without the lock,
so ``status`` works while a run is going."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vida_loader.errors import UsageError
from vida_loader.job.lock import LockHolder, read_holder
from vida_loader.job.manifest import Manifest, load_manifest
from vida_loader.job.planned import continue_command
from vida_loader.job.runstate import RunState, TaskState, load_state
from vida_loader.jobfiles import load_json_file

if TYPE_CHECKING:
    from vida_loader.config import JobConfig


@dataclass(frozen=True)
class JobStatus:
    config: JobConfig
    manifest: Manifest
    state: RunState | None  # None: planned, never run
    state_path: Path
    holder: LockHolder | None  # the run holding the lock, if it still runs
    holder_alive: bool | None  # None: the holder is on another host
    command: str  # what continues the job
    last_verify: dict[str, Any] | None = None  # verify.json: the last verify's record

    @property
    def deep_round(self) -> dict[str, Any] | None:
        """The last deep verify as the state records it (also one under way or killed),
        with its figures so far and the repair after it; None: never."""
        state = self.state
        if state is None or not state.verify:
            return None
        v = state.verify
        recs = [r for p in v["partitions"] if (r := state.verify_record(p))]
        done = [r for r in recs if r.done]
        return {
            "round": v["round"],
            "started_at": v["started_at"],
            "finished_at": v.get("finished_at"),
            "partitions": len(v["partitions"]),
            "of": v["of"],
            "compared": len(done),
            "sample": v.get("sample"),
            "seed": v.get("seed"),
            "matched": sum(r.matched for r in done),
            "missing": sum(r.missing for r in done),
            "extra": sum(r.extra for r in done),
            "altered": sum(r.altered for r in done),
            "repair": v.get("repair"),
        }

    def count(self, state: TaskState) -> int:
        return self.state.count(state) if self.state else 0

    @property
    def complete(self) -> bool:
        """Data and indexes: every partition confirmed, every listed index built."""
        return (
            self.state is not None
            and self.count(TaskState.DONE) == len(self.manifest.partitions)
            and all(r.done for r in self.state.indexes.values())
        )

    @property
    def confirmed_docs(self) -> int:
        return self.state.confirmed_docs() if self.state else 0

    @property
    def running_docs(self) -> int:
        """Read so far by running partitions (as of the last save, every few seconds)."""
        if self.state is None:
            return 0
        recs = self.state.partitions.values()
        return sum(r.docs for r in recs if r.state is TaskState.RUNNING)


def job_status(cfg: JobConfig) -> JobStatus:
    files = cfg.files
    if not files.manifest.exists() and files.restore.exists():
        raise UsageError(
            f"job '{cfg.job}' is a restore ('{files.restore}'), which status does not read yet",
            value=cfg.job,
            setting="--job",
            fix="the same `vida-loader restore` command continues it, or says it is finished",
        )
    manifest = load_manifest(files.manifest)
    path = files.state
    state = load_state(path)
    holder = read_holder(files)
    alive = holder.is_alive() if holder else None
    if holder is not None and alive is False:
        holder = None  # a run killed without releasing: nobody holds the job
    return JobStatus(
        config=cfg,
        manifest=manifest,
        state=state,
        state_path=path,
        holder=holder,
        holder_alive=alive,
        command=continue_command(cfg, state.settings if state else None, manifest),
        last_verify=_last_verify(files.verify),
    )


def _last_verify(path: Path) -> dict[str, Any] | None:
    try:
        return load_json_file(path, "last verification", dict)
    except FileNotFoundError:
        return None
