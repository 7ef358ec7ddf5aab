"""What a run writes of itself, and when: the run state (at once when a partition starts
or ends, every ``SAVE_EVERY`` seconds while counts move), metrics.jsonl (a line per
finished attempt and one every ``METRICS_EVERY`` seconds), and the duplicates and
rejected documents an attempt found. The coordinator writes through it alone, and the
index phase saves through the coordinator."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import psutil

from vida_loader.job.runstate import TaskState, now_iso, save_state
from vida_loader.jobfiles import append_jsonl
from vida_loader.transform.rejects import RejectsLog

if TYPE_CHECKING:
    from vida_loader.copy.progress import RunProgress
    from vida_loader.copy.task import PartitionResult
    from vida_loader.job.runstate import RunState
    from vida_loader.jobfiles import JobFiles

SAVE_EVERY = 5.0  # seconds between saves of running partitions' counts
METRICS_EVERY = 5.0  # seconds between the run's records in metrics.jsonl


class RunJournal:
    def __init__(self, state: RunState, files: JobFiles, fresh: bool) -> None:
        self.state = state
        self.files = files
        self.path = files.state
        self.last_save = 0.0
        self.last_metrics = time.monotonic()
        self.rejects = RejectsLog(files, fresh=fresh)

    def save(self) -> None:
        save_state(self.state, self.path)
        self.last_save = time.monotonic()

    def save_for(self, news: str) -> None:
        """Save when a partition started (for `status` and for resume: who runs) or, every
        few seconds, when counts moved."""
        if news == "started" or (news and time.monotonic() - self.last_save >= SAVE_EVERY):
            self.save()

    def attempt(self, result: PartitionResult) -> None:
        """A finished attempt's lines: the duplicates and rejects it found, its metrics."""
        if result.duplicate_records:
            append_jsonl(self.files.duplicates, result.duplicate_records)
        if result.rejects:
            self.rejects.add(result.partition_id, result.rejects, self.state.runs)
        append_jsonl(self.files.metrics, [task_record(result, self.state.runs)])

    def metrics_due(self) -> bool:
        return time.monotonic() - self.last_metrics >= METRICS_EVERY

    def metrics(self, p: RunProgress) -> None:
        """One periodic record in the job's metrics.jsonl."""
        self.last_metrics = time.monotonic()
        append_jsonl(self.files.metrics, [metrics_record(p, self.state.runs)])

    def interrupted(self) -> None:
        """Nothing is left marked running: the next run starts those again."""
        for rec in self.state.tasks.values():
            if rec.state is TaskState.RUNNING:
                rec.state = TaskState.PENDING
                rec.error = "interrupted"
        save_state(self.state, self.path)


def metrics_record(p: RunProgress, run: int) -> dict[str, Any]:
    """The run's periodic line of metrics.jsonl (the live view's issue adds to it)."""
    elapsed = max(p.elapsed, 1e-9)
    return {
        "kind": "run",
        "time": now_iso(),
        "run": run,
        "elapsed_s": round(p.elapsed, 3),
        "docs": p.docs,
        "bytes": p.bytes,
        "docs_s": round((p.docs - p.base_docs) / elapsed, 1),
        "bytes_s": round((p.bytes - p.base_bytes) / elapsed, 1),
        "partitions_done": p.parts_done,
        "partitions_running": p.parts_running,
        "partitions_failed": p.parts_failed,
        "retries": p.retries,
        "throttled": p.throttled,
        "waiting_for": list(p.waiting_for),
        "wait_s": round(p.wait_s, 3),
        "ru": round(p.ru, 2) if p.metered else None,
        "ru_s": round(p.ru_now, 1) if p.metered else None,
        "ru_budget": p.ru_budget,
        "rss_bytes": psutil.Process().memory_info().rss,
    }


def task_record(r: PartitionResult, run: int) -> dict[str, Any]:
    """One finished attempt's line of metrics.jsonl."""
    return {
        "kind": "task",
        "time": now_iso(),
        "run": run,
        "task": r.partition_id,
        "state": str(r.state),
        "docs": r.docs,
        "bytes": r.bytes,
        "seconds": round(r.seconds, 3),
        "retries": r.retries,
        "throttled": r.throttled,
        "repaired": r.repaired,
        "dropped": r.dropped,
        "rejected": r.rejected,
        "ru": round(r.charges.ru, 2) if r.charges is not None else None,
        "ru_paced_s": round(r.charges.paced_s, 3) if r.charges is not None else None,
    }
