"""Run state: what happened to every task of a job, beside its manifest.

Written only by the coordinator, always atomically (temp file, fsync, ``os.replace``), so a
kill at any instant leaves a file that loads. It records enough to resume from: the
manifest's fingerprint and one record per task. Every record has a kind, a state,
attempts, retry counters, timestamps and the last error; a kind adds its own counters
(a copy of a partition: documents, bytes, repairs...; an index build: its name, the
duplicate key that failed it). Range hashes, dump files and a change-stream position
are meant to be kinds too.

Schema 2 keeps the records under ``tasks``, each with its ``kind``; a schema-1 file (one
record per partition under ``partitions``) still loads, as copy records.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from vida_loader.errors import StateError
from vida_loader.jobfiles import load_json_file, write_json_atomic

if TYPE_CHECKING:
    from vida_loader.job.manifest import Manifest

STATE_SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
# Schema 1 recorded some settings under other names than their flags.
RENAMED_SETTINGS = {"batch_docs": "batch_size", "retry_window_s": "retry_window"}


class TaskState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class TaskKind(StrEnum):
    COPY = "copy"  # copy one partition of the manifest
    INDEX = "index"  # build one index on the target
    VERIFY = "verify"  # compare one partition byte for byte (verify --deep)
    DUMP = "dump"  # write one partition's documents to a part file (dump)
    RESTORE = "restore"  # insert one byte range of a .bson file (restore)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class TaskRecord:
    """The latest word on one task: what every kind records."""

    kind: ClassVar[TaskKind]
    state: TaskState = TaskState.PENDING
    attempts: int = 0
    retries: int = 0  # operations tried again, all attempts together
    throttled: int = 0  # of those, because the server throttled
    wait_s: float = 0.0  # seconds spent waiting to retry
    ru: float = 0.0  # request units the source charged, all attempts (0: not metered)
    seconds: float = 0.0  # all attempts together
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.state is TaskState.DONE

    def attempted(self, result: Any, ru: float = 0.0) -> None:
        """What every kind keeps of an attempt's ``result``: its state and error, and
        its seconds, retries and request units ``ru`` added to the earlier attempts'."""
        self.state = result.state
        self.retries += result.retries
        self.throttled += result.throttled
        self.wait_s += result.wait_s
        self.ru += ru
        self.seconds += result.seconds
        self.finished_at = now_iso()
        self.error = result.error

    def to_json(self) -> dict[str, Any]:
        return {"kind": str(self.kind), **asdict(self)}

    @staticmethod
    def from_json(doc: dict[str, Any], kind: str | None = None) -> TaskRecord:
        fields = dict(doc)
        kind = str(fields.pop("kind", kind))
        record_class = RECORDS.get(kind)
        if record_class is None:
            raise ValueError(f"task kind {kind!r} is unknown to this vida-loader")
        fields["state"] = TaskState(fields["state"])
        return record_class(**fields)


@dataclass
class PartitionRecord(TaskRecord):
    """A copy of one partition; counts are from its last attempt."""

    kind: ClassVar[TaskKind] = TaskKind.COPY
    docs: int = 0  # read on the last attempt
    bytes: int = 0
    source_docs: int = 0  # in the range on the source when last confirmed
    target_docs: int = 0
    resumes: int = 0  # attempts that continued from what the target held
    repaired: int = 0
    already_there: int = 0
    duplicates: int = 0  # source documents whose _id another one had: not on the target
    dropped: int = 0  # a transform dropped them (returned None): in source_docs only
    rejected: int = 0  # a transform refused them (rejects.bson): in source_docs only


@dataclass
class IndexRecord(TaskRecord):
    """A build of one index on the target (``seconds``: the builds' time)."""

    kind: ClassVar[TaskKind] = TaskKind.INDEX
    name: str = ""
    existed: bool = False  # the target already had this exact definition
    duplicate_key: str | None = None  # a unique build met this key twice in the data
    # The collMod change (``indexes.relaxed``) still to apply at switch-over when the index
    # was built relaxed for change-stream follow; None: built as defined.
    finalize: dict[str, Any] | None = None


@dataclass
class VerifyRecord(TaskRecord):
    """A deep verification of one partition; counts are from its last attempt."""

    kind: ClassVar[TaskKind] = TaskKind.VERIFY
    source_docs: int = 0  # compared on the source (as the copy wrote them: transformed)
    target_docs: int = 0
    matched: int = 0  # the same bytes on both sides
    missing: int = 0  # on the source, not on the target
    extra: int = 0  # on the target, not on the source
    altered: int = 0  # on both, with different bytes
    listed: int = 0  # differences written to mismatches.jsonl (the first ones)
    cleared: int = 0  # differences gone when read again (--recheck)

    @property
    def differences(self) -> int:
        return self.missing + self.extra + self.altered


@dataclass
class DumpRecord(TaskRecord):
    """One partition dumped to its part file; counts are from its last attempt."""

    kind: ClassVar[TaskKind] = TaskKind.DUMP
    docs: int = 0
    bytes: int = 0  # of the documents
    file_bytes: int = 0  # of the part file (compressed with --gzip)


@dataclass
class RestoreRecord(TaskRecord):
    """One byte range of a ``.bson`` file restored; counts are from its last attempt."""

    kind: ClassVar[TaskKind] = TaskKind.RESTORE
    docs: int = 0  # read from the file
    bytes: int = 0
    inserted: int = 0
    already_there: int = 0  # duplicate key: on the target already (an earlier attempt)


def verify_task(partition: str) -> str:
    """The task id of the deep verification of ``partition``."""
    return f"verify:{partition}"


def index_task(name: str) -> str:
    """The task id of the build of index ``name``."""
    return f"index:{name}"


@dataclass
class RunState:
    job: str
    fingerprint: str
    started_at: str
    updated_at: str = ""
    finished_at: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)  # what the fingerprint covers
    coordinator: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    runs: int = 1  # run commands that worked on this state
    # Started with --append on a non-empty target: write results cannot tell whether the
    # target holds documents the source lacks, so every partition is confirmed by a count.
    appended: bool = False
    # The job's transform (``TransformSpec.to_json``: file, class, sha256), None without:
    # a run with another one is refused unless --restart.
    transform: dict[str, Any] | None = None
    # The deep verification under way or last done (``DeepRound.to_json``), None: never.
    verify: dict[str, Any] | None = None
    # The source's change-stream position taken before the copy (``follow.Position``) and
    # what `run --follow` has applied since; None: a job started before positions were taken.
    changes: dict[str, Any] | None = None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)

    @property
    def partitions(self) -> dict[str, PartitionRecord]:
        """The copy tasks, by partition id (the records themselves: changes stick)."""
        return {k: r for k, r in self.tasks.items() if isinstance(r, PartitionRecord)}

    @property
    def verifies(self) -> dict[str, VerifyRecord]:
        """The deep verifications, by task id (the records themselves)."""
        return {k: r for k, r in self.tasks.items() if isinstance(r, VerifyRecord)}

    def verify_record(self, partition: str) -> VerifyRecord | None:
        """The deep verification of ``partition`` (one lookup, not a scan of the tasks)."""
        rec = self.tasks.get(verify_task(partition))
        return rec if isinstance(rec, VerifyRecord) else None

    @property
    def indexes(self) -> dict[str, IndexRecord]:
        """The index builds, by task id (the records themselves)."""
        return {k: r for k, r in self.tasks.items() if isinstance(r, IndexRecord)}

    def add_index_tasks(self, names: list[str]) -> None:
        """Index builds this state does not list yet (a job started with --indexes skip,
        or planned again) become pending tasks."""
        for name in names:
            self.tasks.setdefault(index_task(name), IndexRecord(name=name))

    @classmethod
    def fresh(
        cls,
        manifest: Manifest,
        settings: dict[str, Any],
        appended: bool = False,
        transform: dict[str, Any] | None = None,
        changes: dict[str, Any] | None = None,
    ) -> RunState:
        return cls(
            job=manifest.job,
            fingerprint=manifest.fingerprint,
            started_at=now_iso(),
            plan=plan_summary(manifest),
            coordinator=coordinator_info(),
            settings=settings,
            appended=appended,
            transform=transform,
            changes=changes,
            tasks={p.id: PartitionRecord() for p in manifest.partitions},
        )

    def check_plan(self, manifest: Manifest, path: Path) -> None:
        """Refuse to continue when the manifest is not the one this state was made for."""
        if self.fingerprint == manifest.fingerprint:
            planned = {p.id for p in manifest.partitions}
            if set(self.partitions) != planned:
                odd = sorted(set(self.partitions) ^ planned)
                raise StateError(
                    f"run state '{path}' does not list the manifest's partitions "
                    f"({', '.join(odd[:5])}{' ...' if len(odd) > 5 else ''} differ; edited by "
                    "hand?): pass --restart to start the job over"
                )
            return
        now = plan_summary(manifest)
        changed = [
            f"{key} {self.plan.get(key)!r} -> {now[key]!r}"
            for key in now
            if self.plan.get(key) != now[key]
        ] or ["partition bounds"]
        raise StateError(
            f"run state '{path}' belongs to another plan of job '{self.job}' "
            f"(fingerprint {self.fingerprint[:19]}... -> {manifest.fingerprint[:19]}...; "
            f"changed: {'; '.join(changed)}): pass --restart to start the job over"
        )

    def continue_run(self, settings: dict[str, Any]) -> None:
        """Start another run on this state: unconfirmed partitions are pending again."""
        self.runs += 1
        self.finished_at = None
        self.coordinator = coordinator_info()
        self.settings = settings
        for rec in self.tasks.values():
            if not rec.done:
                rec.state = TaskState.PENDING

    def confirmed_docs(self) -> int:
        """Documents counted on the target in the confirmed partitions."""
        return sum(r.target_docs for r in self.partitions.values() if r.done)

    def duplicates(self) -> int:
        """Source documents left off the target because another had their _id."""
        return sum(r.duplicates for r in self.partitions.values() if r.done)

    def refused(self) -> tuple[int, int]:
        """(dropped, rejected) by the transform, in every partition's last attempt."""
        recs = self.partitions.values()
        return sum(r.dropped for r in recs), sum(r.rejected for r in recs)

    def confirmed_bytes(self) -> int:
        return sum(r.bytes for r in self.partitions.values() if r.done)

    def count(self, state: TaskState, kind: TaskKind = TaskKind.COPY) -> int:
        """Tasks of ``kind`` (copy tasks unless told) in ``state``."""
        return sum(1 for r in self.tasks.values() if r.kind is kind and r.state is state)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": STATE_SCHEMA_VERSION,
            "job": self.job,
            "fingerprint": self.fingerprint,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "plan": self.plan,
            "coordinator": self.coordinator,
            "settings": self.settings,
            "runs": self.runs,
            "appended": self.appended,
            "transform": self.transform,
            "verify": self.verify,
            "changes": self.changes,
            "tasks": {tid: r.to_json() for tid, r in self.tasks.items()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RunState:
        version = doc.get("schema_version")
        if version not in READABLE_SCHEMAS:
            raise ValueError(
                f"schema_version {version!r}, this vida-loader reads "
                f"{', '.join(map(str, READABLE_SCHEMAS))}"
            )
        settings = dict(doc.get("settings", {}))
        if version == 1:  # one record per partition, no kinds; older setting names
            for old, new in RENAMED_SETTINGS.items():
                if old in settings:
                    settings[new] = settings.pop(old)
            tasks = {
                str(pid): TaskRecord.from_json(rec, TaskKind.COPY)
                for pid, rec in dict(doc["partitions"]).items()
            }
        else:
            tasks = {str(tid): TaskRecord.from_json(rec) for tid, rec in dict(doc["tasks"]).items()}
        return cls(
            job=str(doc["job"]),
            fingerprint=str(doc["fingerprint"]),
            started_at=str(doc["started_at"]),
            updated_at=str(doc.get("updated_at", "")),
            finished_at=doc.get("finished_at"),
            plan=dict(doc.get("plan", {})),
            coordinator=dict(doc.get("coordinator", {})),
            settings=settings,
            runs=int(doc.get("runs", 1)),
            appended=bool(doc.get("appended", False)),
            transform=doc.get("transform"),
            verify=doc.get("verify"),
            changes=doc.get("changes"),
            tasks=tasks,
        )


RECORDS: dict[str, type[TaskRecord]] = {
    TaskKind.COPY: PartitionRecord,
    TaskKind.INDEX: IndexRecord,
    TaskKind.VERIFY: VerifyRecord,
    TaskKind.DUMP: DumpRecord,
    TaskKind.RESTORE: RestoreRecord,
}


def plan_summary(manifest: Manifest) -> dict[str, Any]:
    """The parts of a plan a user recognises, to name what changed between two plans."""
    return {
        "source": f"{manifest.source['db']}.{manifest.source['collection']}",
        "target": f"{manifest.target['db']}.{manifest.target['collection']}",
        "source_count": manifest.stats.get("count"),
        "partitions": len(manifest.partitions),
        "range_mode": manifest.split.get("range_mode"),
        "indexes": [spec.describe() for spec in manifest.index_builds()],
    }


def coordinator_info() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}


def save_state(state: RunState, path: Path) -> None:
    state.updated_at = now_iso()
    write_json_atomic(path, state.to_json())


def load_state(path: Path) -> RunState | None:
    """The saved run state, ``None`` when the job never ran; a defect is a ``StateError``."""
    try:
        return load_json_file(path, "run state", RunState.from_json)
    except FileNotFoundError:
        return None
