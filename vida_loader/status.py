"""What a job's files say about it, read without a connection and without the lock,
so ``status`` works while a run is going."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vida_loader.config import JobConfig
from vida_loader.job import continue_command
from vida_loader.lock import LockHolder, read_holder
from vida_loader.manifest import Manifest, load_manifest
from vida_loader.runstate import RunState, TaskState, load_state


@dataclass(frozen=True)
class JobStatus:
    config: JobConfig
    manifest: Manifest
    state: RunState | None  # None: planned, never run
    state_path: Path
    holder: LockHolder | None  # the run holding the lock, if it still runs
    holder_alive: bool | None  # None: the holder is on another host
    command: str  # what continues the job

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
    )
