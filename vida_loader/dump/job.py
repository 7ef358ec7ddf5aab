"""``dump``: a planned job's source collection to mongodump's layout, partitions in
parallel, resumable.

Each partition is a dump task (``dump.task.dump_partition``) writing its own part file;
the coordinator records each in the dump's state (``DumpFiles.state``, its only writer)
and, once all are there, joins them in the plan's order into the one ``.bson`` file
(temporary name, fsync, rename), writes ``metadata.json`` the same way and removes the
parts. A killed dump is continued by the same command: parts recorded as done and
present on disk are kept, the rest dumped again. A dump of another plan, or with
another ``--gzip``, is refused unless ``--restart``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from vida_loader import __version__
from vida_loader.config import DumpConfig, PlanConfig
from vida_loader.copy.planner import plan_source
from vida_loader.dump.layout import GZIP_LEVEL, metadata_bytes, read_metadata
from vida_loader.dump.task import DumpResult, DumpSettings, dump_partition
from vida_loader.endpoint import Endpoint
from vida_loader.errors import StateError, UsageError
from vida_loader.job.lock import hold_lock
from vida_loader.job.manifest import Manifest, load_manifest
from vida_loader.job.planned import planned_endpoint
from vida_loader.job.recorded import RecordedTasks
from vida_loader.job.runstate import DumpRecord, TaskState, now_iso
from vida_loader.jobfiles import (
    DumpFiles,
    JobFiles,
    atomic_file,
    from_ejson,
    load_json_file,
    to_ejson,
    write_atomic,
    write_json_atomic,
)
from vida_loader.mongo import CODEC_OPTIONS, check_uri, connect
from vida_loader.pipeline.clients import close_clients
from vida_loader.pipeline.target import require_source
from vida_loader.ru.meter import accounting_on

if TYPE_CHECKING:
    from pymongo.collection import Collection

DUMP_SCHEMA = 1
JOIN_CHUNK = 8 << 20  # bytes per read while joining the parts


@dataclass
class DumpState:
    """What a dump covers and how far it got; written only by the coordinator."""

    job: str
    fingerprint: str  # the plan's: its partitions are the parts
    namespace: str
    gzip: bool
    metadata: dict[str, Any]  # as metadata.json gets it (canonical Extended JSON)
    plan: dict[str, Any]  # the manifest whose partitions are the parts (the job's, or own)
    started_at: str
    tool_version: str = __version__
    runs: int = 1
    finished_at: str | None = None
    tasks: dict[str, DumpRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": DUMP_SCHEMA,
            "job": self.job,
            "fingerprint": self.fingerprint,
            "namespace": self.namespace,
            "gzip": self.gzip,
            "metadata": self.metadata,
            "plan": self.plan,
            "started_at": self.started_at,
            "tool_version": self.tool_version,
            "runs": self.runs,
            "finished_at": self.finished_at,
            "tasks": {pid: r.to_json() for pid, r in self.tasks.items()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> DumpState:
        if doc.get("schema_version") != DUMP_SCHEMA:
            raise ValueError(f"schema_version {doc.get('schema_version')!r}")
        tasks = {}
        for pid, rec in dict(doc["tasks"]).items():
            record = DumpRecord.from_json(rec)
            if not isinstance(record, DumpRecord):
                raise ValueError(f"task {pid!r} is not a dump task")
            tasks[str(pid)] = record
        return cls(
            job=str(doc["job"]),
            fingerprint=str(doc["fingerprint"]),
            namespace=str(doc["namespace"]),
            gzip=bool(doc["gzip"]),
            metadata=dict(doc["metadata"]),
            plan=dict(doc["plan"]),
            started_at=str(doc["started_at"]),
            tool_version=str(doc.get("tool_version", "")),
            runs=int(doc.get("runs", 1)),
            finished_at=doc.get("finished_at"),
            tasks=tasks,
        )


@dataclass(frozen=True)
class DumpProgress:
    done: int  # partitions dumped
    total: int
    docs: int  # documents written so far
    bytes: int


@dataclass(frozen=True)
class DumpOutcome:
    """A finished (or failed) dump of one collection."""

    files: DumpFiles
    manifest: Manifest
    records: dict[str, DumpRecord]  # by partition, in the plan's order
    seconds: float
    continued: int  # partitions an earlier, interrupted dump had already written
    metered: bool
    file_bytes: int = 0  # of the joined .bson (0: not joined, some partition failed)

    @property
    def failed(self) -> list[str]:
        return [pid for pid, r in self.records.items() if not r.done]

    @property
    def complete(self) -> bool:
        return not self.failed

    def total(self, what: str) -> float:
        return float(sum(getattr(r, what) for r in self.records.values()))


ProgressSink = Callable[[DumpProgress], None]


def dump_job(
    cfg: DumpConfig,
    on_progress: ProgressSink | None = None,
    notify: Callable[[str], None] | None = None,
    tick: float = 0.5,
) -> DumpOutcome:
    """Dump the job's source collection under ``cfg.out``; returns when every partition
    is written and joined, or failed for good."""
    started = time.monotonic()
    source, job_plan = _dump_source(cfg)
    files = DumpFiles(cfg.out, source.db, source.collection, cfg.gzip)
    _prepare_out(files, cfg)
    with hold_lock(JobFiles.of_folder(files.work), now_iso()):
        with connect(source.uri, role="source", timeouts=cfg.timeouts) as client:
            require_source(client, source, cfg.retry)
            metered = accounting_on(cfg.ru_accounting, client.get_database(source.db))
            coll = client.get_database(source.db, codec_options=CODEC_OPTIONS)[source.collection]
            own_plan = partial(_own_plan, coll, source, cfg, metered, notify)
            state, continued = _state(
                files, job_plan or own_plan, cfg, notify, lambda: read_metadata(coll)
            )
        manifest = Manifest.from_json(state.plan)
        _write_state(files, state)
        settings = DumpSettings(
            source=source,
            timeouts=cfg.timeouts,
            retry=cfg.retry,
            gzip=cfg.gzip,
            meter_every=1 if metered else 0,
        )
        _DumpRun(state, manifest, files, settings, cfg, on_progress).execute(tick)
        records = {p.id: state.tasks[p.id] for p in manifest.partitions}
        outcome = DumpOutcome(
            files, manifest, records, time.monotonic() - started, continued, metered
        )
        if not outcome.complete:
            return outcome
        size = _finish(files, manifest, state)
    # The state first: a kill while the parts go leaves a finished dump, not a dump
    # whose written parts are missing.
    files.state.unlink(missing_ok=True)
    shutil.rmtree(files.work, ignore_errors=True)
    return DumpOutcome(
        files, manifest, records, time.monotonic() - started, continued, metered, size
    )


def _dump_source(cfg: DumpConfig) -> tuple[Endpoint, Manifest | None]:
    """The collection to dump, and the job's plan of it (None: the dump plans its own)."""
    if cfg.self_planned:
        check_uri(cfg.source_uri or "", "--source-uri")
        source = Endpoint(cfg.source_uri or "", cfg.source_db or "", cfg.source_collection or "")
        return source, None
    job_plan = load_manifest(cfg.files.manifest)
    return planned_endpoint(job_plan.source, cfg.source_uri, "source", cfg.job), job_plan


def _own_plan(
    coll: Collection[Any],
    source: Endpoint,
    cfg: DumpConfig,
    metered: bool,
    notify: Callable[[str], None] | None,
) -> Manifest:
    """The partitions of a collection no job planned, as the planner splits it."""
    if notify:
        notify(f"planning the partitions of {source.namespace}")
    split = PlanConfig(
        source=source,
        target=source,  # a dump has no target
        job=cfg.job,
        partitions=cfg.partitions,
        partition_size_mb=cfg.partition_size_mb,
        timeouts=cfg.timeouts,
    )
    return plan_source(coll, split, metered, lambda _m: None)


def _finish(files: DumpFiles, manifest: Manifest, state: DumpState) -> int:
    """Every part written: join them into the .bson file, write the metadata and mark the
    dump finished; returns the .bson file's size."""
    size = _join(files, manifest)
    write_atomic(files.metadata, _compressed(metadata_bytes(from_ejson(state.metadata)), files))
    state.finished_at = now_iso()
    _write_state(files, state)
    return size


def _prepare_out(files: DumpFiles, cfg: DumpConfig) -> None:
    """Refuse an unwritable ``--out``, or one holding a finished dump of this collection
    (unless --restart); make the folders."""
    if files.bson.exists() and not files.state.exists() and not cfg.restart:
        raise UsageError(
            f"--out '{cfg.out}' already holds a dump of {files.db}.{files.collection} "
            f"('{files.bson}')",
            value=str(cfg.out),
            setting="--out",
            fix="give --restart to replace it, or another --out",
        )
    try:
        files.work.mkdir(parents=True, exist_ok=True)
        probe = files.work / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"--out '{cfg.out}' is not writable ({exc.strerror or exc})",
            value=str(cfg.out),
            setting="--out",
            fix="give a folder you can write to",
        ) from None


def _state(
    files: DumpFiles,
    plan: Manifest | Callable[[], Manifest],
    cfg: DumpConfig,
    notify: Callable[[str], None] | None,
    metadata: Callable[[], dict[str, Any]],
) -> tuple[DumpState, int]:
    """The dump to continue (its parts on disk kept), else a new one; and how many
    partitions it had written."""
    old = None
    if not cfg.restart:
        try:
            old = load_json_file(files.state, "dump state", DumpState.from_json, _RESTART)
        except FileNotFoundError:
            old = None
    if old is not None:
        return _continued(old, files, plan, cfg, notify)
    return _fresh(files, plan, cfg, metadata), 0


def _continued(
    old: DumpState,
    files: DumpFiles,
    plan: Manifest | Callable[[], Manifest],
    cfg: DumpConfig,
    notify: Callable[[str], None] | None,
) -> tuple[DumpState, int]:
    """An unfinished dump, checked against the plan and --gzip; a part whose file is gone
    is written again."""
    if isinstance(plan, Manifest) and old.fingerprint != plan.fingerprint:
        raise StateError(
            f"the unfinished dump in '{files.work}' is of another plan of job "
            f"'{old.job}'{_RESTART}"
        )
    if old.gzip != cfg.gzip:
        was = "with" if old.gzip else "without"
        raise StateError(
            f"the unfinished dump in '{files.work}' was started {was} --gzip{_RESTART}"
        )
    kept = 0
    for pid, rec in old.tasks.items():
        if rec.done and files.part(pid).exists():
            kept += 1
        else:
            old.tasks[pid] = DumpRecord()
    old.runs += 1
    if notify:
        notify(
            f"continuing the dump started {old.started_at}: {kept} of "
            f"{len(old.tasks)} partitions already written (--restart starts over)"
        )
    return old, kept


def _fresh(
    files: DumpFiles,
    plan: Manifest | Callable[[], Manifest],
    cfg: DumpConfig,
    metadata: Callable[[], dict[str, Any]],
) -> DumpState:
    """A new dump: the leftovers of another one removed, the plan made if need be."""
    held = JobFiles.of_folder(files.work).lock
    for leftover in files.work.iterdir():
        if leftover != held:
            leftover.unlink()
    for stale in (files.bson, files.metadata):
        stale.unlink(missing_ok=True)
    manifest = plan if isinstance(plan, Manifest) else plan()
    state = DumpState(
        job=manifest.job,
        fingerprint=manifest.fingerprint,
        namespace=f"{files.db}.{files.collection}",
        gzip=cfg.gzip,
        metadata=to_ejson(metadata()),
        plan=manifest.to_json(),
        started_at=now_iso(),
        tasks={p.id: DumpRecord() for p in manifest.partitions},
    )
    return state


_RESTART = ": give --restart to start the dump over"


def _write_state(files: DumpFiles, state: DumpState) -> None:
    write_json_atomic(files.state, state.to_json())


def _compressed(data: bytes, files: DumpFiles) -> bytes:
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if files.gzip else data


def _join(files: DumpFiles, manifest: Manifest) -> int:
    """The parts, in the plan's order, as the one ``.bson`` file (gzip members join
    into one stream); complete or absent, like every file of the dump."""
    with atomic_file(files.bson) as out:
        for part in manifest.partitions:
            with open(files.part(part.id), "rb") as src:
                shutil.copyfileobj(src, out, JOIN_CHUNK)
        size = out.tell()
    return size


class _DumpRun(RecordedTasks[DumpResult]):
    """The scheduler's handler for the dump tasks; the only writer of the dump state."""

    def __init__(
        self,
        state: DumpState,
        manifest: Manifest,
        files: DumpFiles,
        settings: DumpSettings,
        cfg: DumpConfig,
        on_progress: ProgressSink | None,
    ) -> None:
        super().__init__(cfg.attempts, close_clients)
        self.state, self.files, self.settings, self.cfg = state, files, settings, cfg
        self.on_progress = on_progress
        self.parts = {p.id: p for p in manifest.partitions}

    def execute(self, tick: float) -> None:
        todo = [pid for pid in self.parts if not self.state.tasks[pid].done]
        self.run_all(todo, self.cfg.jobs, tick)

    def record(self, key: str) -> DumpRecord | None:
        return self.state.tasks.get(key)

    def records(self) -> Iterable[DumpRecord]:
        return self.state.tasks.values()

    def save(self) -> None:
        _write_state(self.files, self.state)

    def interrupted(self) -> str:
        done = sum(1 for r in self.state.tasks.values() if r.done)
        return (
            f"interrupted: {done} of {len(self.parts)} partitions dumped, state saved in "
            f"'{self.files.state}'; continue with: {self.cfg.command()}"
        )

    def task(self, pid: str) -> tuple[Callable[..., DumpResult], tuple[Any, ...]]:
        return dump_partition, (self.parts[pid], self.files.part(pid), self.settings)

    def lost(self, pid: str, why: str, died: bool) -> DumpResult:
        return DumpResult(pid, TaskState.FAILED, error=why, transient=died)

    def tick(self) -> None:
        if self.on_progress is None:
            return
        done = [r for r in self.state.tasks.values() if r.done]
        docs, nbytes = self.moving()
        self.on_progress(
            DumpProgress(
                done=len(done),
                total=len(self.state.tasks),
                docs=sum(r.docs for r in done) + docs,
                bytes=sum(r.bytes for r in done) + nbytes,
            )
        )
