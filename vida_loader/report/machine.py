"""``--json``: the one JSON object each command prints on stdout at its end.

Field names are stable and documented in docs/json.md (a test compares every object
with its table). Sizes are bytes, times seconds, rates per second; a value that does not
apply is null, never left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vida_loader.errors import RunInterruptedError, VidaError
from vida_loader.job.runstate import RunState, TaskKind, TaskState
from vida_loader.transform.spec import TransformSpec

if TYPE_CHECKING:
    from vida_loader.copy.coordinator import RunResult
    from vida_loader.copy.planner import PlanResult
    from vida_loader.dump.job import DumpOutcome
    from vida_loader.dump.restore import RestoreOutcome
    from vida_loader.follow.loop import FollowResult
    from vida_loader.generate.runner import GenerateResult
    from vida_loader.job.status import JobStatus
    from vida_loader.verify.counts import VerifyResult
    from vida_loader.verify.deep_job import DeepVerifyResult
    from vida_loader.verify.repair import RepairOutcome


def plan_json(result: PlanResult) -> dict[str, Any]:
    """``plan --json``."""
    m = result.manifest
    ru: dict[str, Any] | None = None
    if "ru" in m.stats:
        ru = dict(m.stats["ru"])
        rate = result.rate
        seconds = rate.seconds_for(ru["estimate_ru"]) if rate is not None else None
        ru["rate_ru_s"] = rate.rate if rate is not None and rate.known else None
        ru["rate"] = rate.why if rate is not None else None
        ru["estimate_seconds"] = round(seconds, 1) if seconds is not None else None
    return {
        "command": "plan",
        "job": m.job,
        "manifest": str(result.path),
        "seconds": round(result.seconds, 3),
        "documents": m.stats["count"],
        "bytes": m.stats["size_bytes"],
        "avg_doc_bytes": m.stats["avg_doc_bytes"],
        "partitions": len(m.partitions),
        "range_mode": m.split["range_mode"],
        "ru": ru,
        "indexes": None if m.indexes is None else [ix.to_json() for ix in m.indexes],
    }


def follow_json(f: FollowResult | None) -> dict[str, Any] | None:
    """The ``follow`` object of ``run --follow --json`` (None without --follow)."""
    if f is None:
        return None
    p = f.progress
    return {
        "events": p.events,
        "applied": p.applied,
        "upserts": p.upserts,
        "deletes": p.deletes,
        "skipped": p.skipped,
        "swept": p.swept,
        "seconds": round(p.seconds, 3),
        "events_s": round(p.rate, 1),
        "lag_s": None if p.lag_s is None else round(p.lag_s, 3),
        "caught_up": f.caught_up,
    }


def run_json(result: RunResult, exit_code: int, reason: str, message: str | None) -> dict[str, Any]:
    """``run --json``: ``reason`` and ``message`` as the CLI decided them."""
    st = result.state
    secs = max(result.seconds, 1e-9)
    return {
        "command": "run",
        "job": st.job,
        "exit_code": exit_code,
        "exit_reason": reason,
        "message": message,
        "state_file": str(result.state_path),
        "run": st.runs,
        "seconds": round(result.seconds, 3),
        "documents": {
            "read": result.read_docs,
            "confirmed": result.confirmed_docs,
            "repaired": result.repaired,
            "duplicates": result.duplicates,
        },
        "bytes": {"read": result.read_bytes, "confirmed": st.confirmed_bytes()},
        "rates": {
            "docs_s": round(result.read_docs / secs, 1),
            "bytes_s": round(result.read_bytes / secs, 1),
        },
        "partitions": {
            **_tasks(st, TaskKind.COPY),
            "skipped": result.skipped,
            "resumed": result.resumed,
            "reruns": result.reruns,
        },
        "retries": {
            "operations": result.retries,
            "throttled": result.throttled,
            "wait_s": round(result.wait_s, 3),
        },
        "ru": _ru(result, secs),
        "indexes": {
            **_tasks(st, TaskKind.INDEX),
            "builds": result.index_builds,
            "seconds": round(result.index_s, 3),
        },
        "transform": _transform(st),
        "failures": _failures(st),
    }


def _ru(result: RunResult, secs: float) -> dict[str, Any] | None:
    """A run's request units, when the source was metered."""
    c = result.charges
    if c is None:
        return None
    return {
        "charged": round(c.ru, 2),
        "ru_s": round(c.ru / secs, 1),
        "commands": c.commands,
        "commands_read": c.read,
        "paced_s": round(c.paced_s, 3),
        "budget": result.budget,
    }


def verify_json(result: VerifyResult, exit_code: int) -> dict[str, Any]:
    """``verify --json``."""
    return {
        "command": "verify",
        "job": result.manifest.job,
        "exit_code": exit_code,
        "exit_reason": "match" if exit_code == 0 else "mismatch",
        "seconds": round(result.seconds, 3),
        "partitions": len(result.counts),
        "source_docs": result.source_total,
        "target_docs": result.target_total,
        "transform": result.transform,
        "mismatches": [
            {
                "partition": c.partition_id,
                "source": c.source,
                "target": c.target,
                "expected_target": c.recorded.expected if c.recorded else c.source,
                "error": c.error,
            }
            for c in result.mismatches
        ],
    }


def deep_verify_json(result: DeepVerifyResult, exit_code: int) -> dict[str, Any]:
    """``verify --deep --json``: ``verify.json``'s record with the command's outcome."""
    return {
        "command": "verify",
        "job": result.manifest.job,
        "exit_code": exit_code,
        "exit_reason": "match" if exit_code == 0 else "mismatch",
        **{k: v for k, v in result.record().items() if k != "time"},
        "mismatches_file": str(result.mismatches_path),
    }


def repair_json(r: RepairOutcome, exit_code: int) -> dict[str, Any]:
    """``repair --json``."""
    return {
        "command": "repair",
        "job": r.job,
        "exit_code": exit_code,
        "exit_reason": "repaired" if exit_code == 0 else "differences left",
        "seconds": round(r.seconds, 3),
        **{k: v for k, v in r.record().items() if k != "time"},
        "transform": r.transform,
        "mismatches_file": str(r.mismatches_path),
    }


def status_json(st: JobStatus) -> dict[str, Any]:
    """``status --json``: what the job's files say, also while a run goes."""
    m = st.manifest
    state = st.state
    if state is None:
        now = "planned"
    elif st.holder is not None:
        now = "running"
    else:
        now = "complete" if st.complete else "stopped"
    holder = st.holder
    return {
        "command": "status",
        "job": m.job,
        "exit_code": 0,
        "state": now,
        "state_file": str(st.state_path),
        "holder": None
        if holder is None
        else {"pid": holder.pid, "host": holder.host, "since": holder.since},
        "runs": state.runs if state else 0,
        "started_at": state.started_at if state else None,
        "updated_at": state.updated_at if state else None,
        "finished_at": state.finished_at if state else None,
        "documents": {
            "planned": int(m.stats.get("count", 0)),
            "confirmed": st.confirmed_docs,
            "in_flight": st.running_docs,
            "repaired": sum(r.repaired for r in state.partitions.values()) if state else 0,
        },
        "bytes": {"confirmed": state.confirmed_bytes() if state else 0},
        "partitions": _tasks(state, TaskKind.COPY, len(m.partitions)),
        "indexes": _tasks(state, TaskKind.INDEX),
        "ru": round(sum(r.ru for r in state.partitions.values()), 2) if state else 0.0,
        "transform": _transform(state),
        "failures": _failures(state),
        "continue_command": None if st.complete else st.command,
        "last_verify": st.last_verify,
        "deep_verify": st.deep_round,
        "changes": _changes(state),
    }


def _changes(state: RunState | None) -> dict[str, Any] | None:
    """The change-stream position and what following it applied (no resume token)."""
    if state is None or not state.changes:
        return None
    c = state.changes
    return {
        "position": c.get("token") is not None,
        "taken_at": c.get("taken_at"),
        "cosmos": bool(c.get("cosmos")),
        "error": c.get("error"),
        "followed_at": c.get("followed_at"),
        "events": int(c.get("events", 0)),
        "applied": int(c.get("applied", 0)),
        "lag_s": c.get("lag_s"),
    }


def generate_json(result: GenerateResult, exit_code: int) -> dict[str, Any]:
    """``generate --json``."""
    secs = max(result.seconds, 1e-9)
    return {
        "command": "generate",
        "exit_code": exit_code,
        "exit_reason": "done" if exit_code == 0 else "failed",
        "total": result.total,
        "seed": result.seed,
        "documents": result.docs,
        "bytes": result.bytes,
        "seconds": round(result.seconds, 3),
        "rates": {"docs_s": round(result.docs / secs, 1), "bytes_s": round(result.bytes / secs, 1)},
        "jobs": result.jobs,
        "repaired": result.repaired,
        "already_there": result.already_there,
        "retries": {
            "operations": result.retries,
            "throttled": result.throttled,
            "wait_s": round(result.wait_s, 3),
        },
        "failures": [{"task": str(i), "error": e} for i, e in result.failed],
    }


def error_json(command: str | None, exc: VidaError) -> dict[str, Any]:
    """What ``--json`` prints when a command ends in an error (no result to report)."""
    return {
        "command": command,
        "exit_code": exc.exit_code,
        "exit_reason": "interrupted" if isinstance(exc, RunInterruptedError) else "error",
        "error": exc.fields(),
    }


def _tasks(state: RunState | None, kind: TaskKind, total: int | None = None) -> dict[str, int]:
    """``{"total", "pending", "running", "done", "failed"}`` of one kind of task."""
    counts = {s.value: state.count(s, kind) if state else 0 for s in TaskState}
    if total is None:
        total = sum(counts.values())
    if state is None:
        counts["pending"] = total
    return {"total": total, **counts}


def _transform(state: RunState | None) -> dict[str, Any] | None:
    if state is None or not state.transform:
        return None
    dropped, rejected = state.refused()
    return {
        "name": TransformSpec.from_json(state.transform).describe(),
        "path": state.transform["path"],
        "sha256": state.transform["sha256"],
        "dropped": dropped,
        "rejected": rejected,
    }


def _failures(state: RunState | None) -> list[dict[str, Any]]:
    """Every failed task: its id, kind, attempts and error."""
    if state is None:
        return []
    return [
        {"task": tid, "kind": str(rec.kind), "attempts": rec.attempts, "error": rec.error}
        for tid, rec in state.tasks.items()
        if rec.state is TaskState.FAILED
    ]


def dump_json(d: DumpOutcome, exit_code: int) -> dict[str, Any]:
    """``dump --json``."""
    return {
        "command": "dump",
        "job": d.manifest.job,
        "exit_code": exit_code,
        "exit_reason": "done" if d.complete else "partitions failed",
        "seconds": round(d.seconds, 3),
        "namespace": f"{d.files.db}.{d.files.collection}",
        "gzip": d.files.gzip,
        "bson_file": str(d.files.bson) if d.complete else None,
        "metadata_file": str(d.files.metadata) if d.complete else None,
        "file_bytes": d.file_bytes,
        "docs": int(d.total("docs")),
        "bytes": int(d.total("bytes")),
        "partitions": len(d.records),
        "continued": d.continued,
        "failed": [{"partition": pid, "error": d.records[pid].error} for pid in d.failed],
        "ru": round(d.total("ru"), 2) if d.metered else None,
    }


def restore_json(r: RestoreOutcome, exit_code: int) -> dict[str, Any]:
    """``restore --json``."""
    scan = r.state.scan or {}
    if r.failed:
        reason = "tasks failed"
    elif r.bad_at is not None:
        reason = "file cut short"
    else:
        reason = "done"
    return {
        "command": "restore",
        "job": r.state.job,
        "exit_code": exit_code,
        "exit_reason": reason,
        "seconds": round(r.seconds, 3),
        "input": str(r.source.bson),
        "namespace": r.target.namespace,
        "docs": r.total("docs"),
        "bytes": r.total("bytes"),
        "inserted": r.total("inserted"),
        "already_there": r.total("already_there"),
        "ranges": len(r.state.restores),
        "continued": r.continued,
        "dropped": r.state.dropped,
        "indexes": [
            {"name": x.name, "state": str(x.state), "error": x.error}
            for x in r.state.indexes.values()
        ],
        "index_notes": list(r.state.index_notes),
        "bad_at": r.bad_at,
        "bad_reason": scan.get("bad_reason") if r.bad_at is not None else None,
        "failed": [{"task": t, "error": r.state.tasks[t].error} for t in r.failed],
    }
