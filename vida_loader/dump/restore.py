"""``restore``: a collection's ``.bson`` file (vida-loader's dump or mongodump's) into a
target collection, byte ranges in parallel, resumable, then its indexes.

The file is split at document boundaries into ranges (``bson_file.scan``), each a
restore task (``restore_task.restore_range``) recorded in the restore's state
(``JobFiles.restore``, written only here). A gzipped file is unpacked once into the job
folder first (ranges need a file to seek in). A killed restore is continued by the same
command: ranges done are kept, the others inserted again (duplicate keys are documents
already there). The indexes of ``metadata.json`` are then built as index tasks, through
the same translation as a copy's (a Cosmos DB TTL on ``_ts`` is skipped, with the reason).
"""

from __future__ import annotations

import gzip
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymongo.errors import OperationFailure, PyMongoError

from vida_loader.config import RestoreConfig, check_namespace
from vida_loader.dump.bson_file import FileRange, Scan, scan
from vida_loader.dump.layout import load_metadata
from vida_loader.dump.restore_task import RestoreResult, RestoreSettings, restore_range
from vida_loader.endpoint import Endpoint, ServerKind, server_kind, strip_credentials
from vida_loader.errors import ConnectError, StateError, UsageError
from vida_loader.indexes.definition import IndexContext, IndexSpec, translate
from vida_loader.indexes.phase import IndexBuilds
from vida_loader.job.lock import hold_lock
from vida_loader.job.recorded import RecordedTasks
from vida_loader.job.runstate import (
    IndexRecord,
    RestoreRecord,
    TaskRecord,
    TaskState,
    index_task,
    now_iso,
)
from vida_loader.jobfiles import (
    GZ,
    JobFiles,
    atomic_file,
    from_ejson,
    load_json_file,
    to_ejson,
    write_json_atomic,
)
from vida_loader.mongo import CODEC_OPTIONS, check_uri, connect, describe_error
from vida_loader.pipeline.clients import close_clients
from vida_loader.retry import patient

RESTORE_SCHEMA = 1
MIN_RANGE = 64 * 1024
MAX_RANGE = 64 * 1024 * 1024
RANGES_PER_WORKER = 4
UNPACK_CHUNK = 8 << 20


@dataclass(frozen=True)
class DumpInput:
    """One collection's files in mongodump's layout."""

    bson: Path
    metadata: Path | None  # None: no metadata.json beside it (no indexes restored)
    db: str
    collection: str

    @property
    def gzip(self) -> bool:
        return self.bson.name.endswith(GZ)


def find_inputs(path: Path) -> list[DumpInput]:
    """The collections ``path`` holds: a ``.bson[.gz]`` file, or a folder (mongodump's
    ``--out`` folder, or one database's folder of it) with every collection in it."""
    if path.is_file():
        if not (path.name.endswith(".bson") or path.name.endswith(".bson" + GZ)):
            raise UsageError(
                f"'{path}' is not a .bson or .bson.gz file",
                value=str(path),
                fix="give a dump folder or one collection's .bson file",
            )
        return [_input_of(path)]
    if not path.is_dir():
        raise UsageError(
            f"'{path}' does not exist", value=str(path), fix="give a dump folder or .bson file"
        )
    found = _bson_files(path)
    if not found:
        raise UsageError(
            f"'{path}' holds no .bson or .bson.gz file",
            value=str(path),
            fix="give the folder mongodump or `vida-loader dump` wrote",
        )
    return [_input_of(p) for p in found]


def find_input(path: Path) -> DumpInput:
    """The one collection ``path`` names (a folder of several is refused, naming them)."""
    found = find_inputs(path)
    if len(found) == 1:
        return found[0]
    names = ", ".join(f"{i.db}.{i.collection}" for i in found[:5])
    raise UsageError(
        f"'{path}' holds {len(found)} collections ({names}{' ...' if len(found) > 5 else ''})",
        value=str(path),
        fix="give the .bson file of the one to restore",
    )


def _bson_files(folder: Path) -> list[Path]:
    out = []
    for p in sorted([*folder.glob("*.bson*"), *folder.glob("*/*.bson*")]):
        wanted = p.name.endswith(".bson") or p.name.endswith(".bson" + GZ)
        if (
            wanted
            and p.is_file()
            and not p.name.startswith(".")
            and not p.name.startswith("system.")
        ):
            out.append(p)
    return out


def _stem(p: Path) -> str:
    name = p.name[: -len(GZ)] if p.name.endswith(GZ) else p.name
    return name[: -len(".bson")]


def _input_of(bson_path: Path) -> DumpInput:
    coll = _stem(bson_path)
    gz = GZ if bson_path.name.endswith(GZ) else ""
    meta = bson_path.with_name(f"{coll}.metadata.json{gz}")
    return DumpInput(bson_path, meta if meta.is_file() else None, bson_path.parent.name, coll)


@dataclass
class RestoreState:
    """What a restore covers and how far it got; written only by its coordinator."""

    job: str
    input: str  # the .bson[.gz] file
    input_size: int
    input_mtime_ns: int
    target: dict[str, Any]  # uri (no credentials), db, collection
    started_at: str
    runs: int = 1
    finished_at: str | None = None
    dropped: bool = False  # --drop was done (a continued restore never drops)
    unpacked: bool = False  # a gzipped input is unpacked in the job folder
    scan: dict[str, Any] | None = None  # size, docs, bad_at, bad_reason
    ranges: list[dict[str, Any]] = field(default_factory=list)
    index_specs: list[dict[str, Any]] = field(default_factory=list)  # to build, translated
    index_notes: list[str] = field(default_factory=list)  # what was adapted or skipped
    tasks: dict[str, TaskRecord] = field(default_factory=dict)

    @property
    def indexes(self) -> dict[str, IndexRecord]:
        return {k: r for k, r in self.tasks.items() if isinstance(r, IndexRecord)}

    @property
    def restores(self) -> dict[str, RestoreRecord]:
        return {k: r for k, r in self.tasks.items() if isinstance(r, RestoreRecord)}

    def to_json(self) -> dict[str, Any]:
        doc = {k: v for k, v in self.__dict__.items() if k != "tasks"}
        return {
            "schema_version": RESTORE_SCHEMA,
            **doc,
            "tasks": {k: r.to_json() for k, r in self.tasks.items()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RestoreState:
        if doc.get("schema_version") != RESTORE_SCHEMA:
            raise ValueError(f"schema_version {doc.get('schema_version')!r}")
        fields = {k: v for k, v in doc.items() if k not in ("schema_version", "tasks")}
        tasks = {str(k): TaskRecord.from_json(v) for k, v in dict(doc["tasks"]).items()}
        return cls(**fields, tasks=tasks)


@dataclass(frozen=True)
class RestoreProgress:
    done: int  # ranges restored
    total: int
    docs: int
    bytes: int
    indexes_done: int = 0
    indexes: int = 0


@dataclass(frozen=True)
class RestoreOutcome:
    source: DumpInput
    target: Endpoint
    state: RestoreState
    seconds: float
    continued: int  # ranges an earlier, interrupted restore had done

    @property
    def failed(self) -> list[str]:
        return [k for k, r in self.state.tasks.items() if not r.done]

    @property
    def bad_at(self) -> int | None:
        return (self.state.scan or {}).get("bad_at")

    @property
    def complete(self) -> bool:
        return not self.failed and self.bad_at is None

    def total(self, what: str) -> int:
        return sum(int(getattr(r, what)) for r in self.state.restores.values())


ProgressSink = Callable[[RestoreProgress], None]


def restore_job(
    cfg: RestoreConfig,
    src: DumpInput | None = None,
    on_progress: ProgressSink | None = None,
    notify: Callable[[str], None] | None = None,
    tick: float = 0.5,
) -> RestoreOutcome:
    """Restore ``src`` (default: the one collection ``cfg.input`` names) into the target;
    returns when every range (and index) is done or failed for good."""
    started = time.monotonic()
    src = src or find_input(cfg.input)
    target = _restore_target(cfg, src)
    meta = load_metadata(src.metadata) if src.metadata is not None else None
    files = cfg.files
    if files.manifest.exists():
        raise UsageError(
            f"job '{cfg.job}' is a copy planned by `vida-loader plan`, not a restore",
            value=cfg.job,
            setting="--job",
            fix="give the restore a name of its own with --job NAME",
        )
    files.folder.mkdir(parents=True, exist_ok=True)
    with hold_lock(files, now_iso()):
        state, continued = _state(files, src, target, cfg, notify)
        if state.finished_at is not None:  # nothing left to do: say so, write nothing
            return RestoreOutcome(src, target, state, time.monotonic() - started, continued)
        _save(files, state)
        with connect(target.uri, role="target", timeouts=cfg.timeouts) as client:
            _prepare_target(client, target, state, cfg, meta, files)
        if not state.index_specs and not state.index_notes and meta is not None:
            _plan_indexes(state, meta, target)
            for note in state.index_notes:
                if notify:
                    notify(note)
        data = _scanned(src, state, files, cfg, notify)
        run = _RestoreRun(state, data, files, _settings(cfg, target), cfg, on_progress)
        run.execute(tick)
        if all(r.done for r in state.restores.values()) and cfg.indexes == "after":
            run.build_indexes(tick)
        outcome = RestoreOutcome(src, target, state, time.monotonic() - started, continued)
        if not outcome.failed:
            state.finished_at = now_iso()
            _save(files, state)
            files.unpacked.unlink(missing_ok=True)  # rebuilt from the input if needed again
        return outcome


def _settings(cfg: RestoreConfig, target: Endpoint) -> RestoreSettings:
    """What every restore task of this run is given."""
    return RestoreSettings(
        target=target,
        timeouts=cfg.timeouts,
        retry=cfg.retry,
        write_concern=cfg.write_concern,
        batch_size=cfg.batch_size,
        batch_bytes=cfg.batch_bytes,
    )


def _restore_target(cfg: RestoreConfig, src: DumpInput) -> Endpoint:
    """Where ``src`` goes: the collection of the same name unless the flags name one."""
    assert cfg.target_uri is not None  # RestoreConfig refuses a restore without one
    check_uri(cfg.target_uri, "--target-uri")
    target = Endpoint(
        cfg.target_uri, cfg.target_db or src.db, cfg.target_collection or src.collection
    )
    check_namespace("target", target.db, target.collection)
    return target


def _scanned(
    src: DumpInput,
    state: RestoreState,
    files: JobFiles,
    cfg: RestoreConfig,
    notify: Callable[[str], None] | None,
) -> Path:
    """The .bson file to read (unpacked if need be), split at document boundaries once."""
    data = _data_file(src, state, files, notify)
    if state.scan is None:
        if notify:
            notify(f"splitting '{data}' at document boundaries")
        _scan(state, data, cfg)
        _save(files, state)
    if state.scan and state.scan.get("bad_at") is not None and notify:
        notify(_bad_file_line(src, state))
    return data


def _bad_file_line(src: DumpInput, state: RestoreState) -> str:
    scan_ = state.scan or {}
    return (
        f"'{src.bson}' is cut short or corrupt at byte offset {scan_['bad_at']:,} "
        f"({scan_['bad_reason']}): the {scan_['docs']:,} whole documents before it are "
        "restored, nothing after it"
    )


def _state(
    files: JobFiles,
    src: DumpInput,
    target: Endpoint,
    cfg: RestoreConfig,
    notify: Callable[[str], None] | None,
) -> tuple[RestoreState, int]:
    st = src.bson.stat()
    old = None
    if not cfg.restart:
        try:
            old = load_json_file(files.restore, "restore state", RestoreState.from_json, _RESTART)
        except FileNotFoundError:
            old = None
    if old is not None:
        return _continued(old, src, st, target, cfg, notify)
    files.unpacked.unlink(missing_ok=True)
    return (
        RestoreState(
            job=cfg.job,
            input=str(src.bson),
            input_size=st.st_size,
            input_mtime_ns=st.st_mtime_ns,
            target={
                "uri": strip_credentials(target.uri),
                "db": target.db,
                "collection": target.collection,
            },
            started_at=now_iso(),
        ),
        0,
    )


def _continued(
    old: RestoreState,
    src: DumpInput,
    st: os.stat_result,
    target: Endpoint,
    cfg: RestoreConfig,
    notify: Callable[[str], None] | None,
) -> tuple[RestoreState, int]:
    """An earlier restore of the same file into the same collection, to continue; and how
    many of its ranges are done."""
    same_input = (old.input, old.input_size, old.input_mtime_ns) == (
        str(src.bson),
        st.st_size,
        st.st_mtime_ns,
    )
    if not same_input:
        raise StateError(
            f"restore job '{cfg.job}' was started from '{old.input}' "
            f"({old.input_size:,} bytes), not this '{src.bson}' ({st.st_size:,} bytes, or "
            f"changed since){_RESTART}, or --job NAME for another restore"
        )
    was = (old.target["db"], old.target["collection"])
    if was != (target.db, target.collection):
        raise StateError(
            f"restore job '{cfg.job}' restores into {'.'.join(was)}, not "
            f"{target.namespace}{_RESTART}"
        )
    done = sum(1 for r in old.restores.values() if r.done)
    if old.finished_at is not None and all(r.done for r in old.tasks.values()):
        if notify:
            notify(
                f"restore job '{cfg.job}' finished {old.finished_at}: nothing to do "
                "(--restart restores the file again)"
            )
        return old, done
    old.runs += 1
    old.finished_at = None
    for rec in old.tasks.values():
        if not rec.done:
            rec.state = TaskState.PENDING
    if notify and old.scan is not None:
        notify(
            f"continuing the restore started {old.started_at}: {done} of "
            f"{len(old.ranges)} ranges already restored (--restart starts over)"
        )
    return old, done


_RESTART = ": give --restart to start the restore over"


def _save(files: JobFiles, state: RestoreState) -> None:
    write_json_atomic(files.restore, state.to_json())


def _prepare_target(
    client: Any,
    target: Endpoint,
    state: RestoreState,
    cfg: RestoreConfig,
    meta: dict[str, Any] | None,
    files: JobFiles,
) -> None:
    """--drop (once, when the restore starts), then the collection with the dump's
    options when it does not exist yet (capped, collation, validator...)."""
    db = client.get_database(target.db, codec_options=CODEC_OPTIONS)
    options = dict((meta or {}).get("options") or {})

    def create() -> None:
        if target.collection in db.list_collection_names(filter={"name": target.collection}):
            return
        try:
            db.command({"create": target.collection, **options})
        except OperationFailure as exc:
            if exc.code != 48:  # NamespaceExists: created meanwhile (or by a retried try)
                raise

    try:
        # Each step may be tried again (throttled, cut off): both are idempotent.
        if cfg.drop and not state.dropped and not state.ranges:
            patient(lambda: db.drop_collection(target.collection), cfg.retry, "target")
            state.dropped = True
            _save(files, state)
        if options:
            patient(create, cfg.retry, "target")
    except PyMongoError as exc:
        raise ConnectError(
            f"cannot prepare the target collection {target.namespace}: "
            f"{describe_error(exc, target.uri)}"
        ) from None


def _plan_indexes(state: RestoreState, meta: dict[str, Any], target: Endpoint) -> None:
    """The metadata's indexes as the target gets them (the copy's translation), as index
    tasks of the state."""
    specs = [IndexSpec.from_server(ix) for ix in meta["indexes"]]
    plans = translate(specs, IndexContext(ServerKind.OTHER, server_kind(target.uri)))
    for plan in plans:
        for note in plan.notes:
            state.index_notes.append(f"index '{plan.source.name}': {note}")
        if plan.build is not None:
            state.index_specs.append(to_ejson(plan.build.document()))
            state.tasks[index_task(plan.build.name)] = IndexRecord(name=plan.build.name)
        elif not plan.notes and plan.source.name != "_id_":
            state.index_notes.append(f"index '{plan.source.name}': not restored")
    if not state.index_notes and not state.index_specs:
        state.index_notes.append("no index besides _id")


def _data_file(
    src: DumpInput, state: RestoreState, files: JobFiles, notify: Callable[[str], None] | None
) -> Path:
    """The file to read ranges from: the input, or (gzip) its unpacked copy."""
    if not src.gzip:
        return src.bson
    if not (state.unpacked and files.unpacked.exists()):
        if notify:
            notify(
                f"unpacking '{src.bson}' into '{files.unpacked}' (ranges need a file to seek in)"
            )
        try:
            with gzip.open(src.bson, "rb") as fin, atomic_file(files.unpacked) as out:
                shutil.copyfileobj(fin, out, UNPACK_CHUNK)
        except (OSError, EOFError) as exc:
            raise UsageError(
                f"'{src.bson}' cannot be unpacked ({exc})",
                value=str(src.bson),
                fix="check the file is a whole gzip stream (gzip -t)",
            ) from None
        state.unpacked = True
        state.scan, state.ranges = None, []
    return files.unpacked


def _scan(state: RestoreState, data: Path, cfg: RestoreConfig) -> None:
    size = data.stat().st_size
    range_bytes = max(MIN_RANGE, min(MAX_RANGE, size // max(1, cfg.jobs * RANGES_PER_WORKER)))
    found: Scan = scan(data, range_bytes)
    state.scan = {
        "size": found.size,
        "docs": found.docs,
        "bad_at": found.bad_at,
        "bad_reason": found.bad_reason,
    }
    state.ranges = [r.to_json() for r in found.ranges]
    for tid in list(state.restores):
        del state.tasks[tid]
    for r in found.ranges:
        state.tasks[r.id] = RestoreRecord()


class _RestoreRun(RecordedTasks[RestoreResult]):
    """The scheduler's handler for the restore's ranges, and the host of its index
    builds; the only writer of the restore state."""

    def __init__(
        self,
        state: RestoreState,
        data: Path,
        files: JobFiles,
        settings: RestoreSettings,
        cfg: RestoreConfig,
        on_progress: ProgressSink | None,
    ) -> None:
        super().__init__(cfg.attempts, close_clients)
        self.state, self.files, self.settings, self.cfg = state, files, settings, cfg
        self.on_progress = on_progress
        self.ranges = {r["id"]: FileRange.from_json(r, str(data)) for r in state.ranges}
        self.index_specs = [IndexSpec.from_server(from_ejson(d)) for d in state.index_specs]

    def execute(self, tick: float) -> None:
        todo = [rid for rid in self.ranges if not self.state.tasks[rid].done]
        self.run_all(todo, self.cfg.jobs, tick)

    def build_indexes(self, tick: float) -> None:
        builds = IndexBuilds(self)
        self.schedule(
            lambda scheduler: builds.run(scheduler, before_data=False), self.cfg.jobs, tick
        )

    def record(self, key: str) -> TaskRecord | None:
        return self.state.tasks.get(key)

    def records(self) -> Iterable[TaskRecord]:
        return self.state.tasks.values()

    def save(self) -> None:
        _save(self.files, self.state)

    def interrupted(self) -> str:
        done = sum(1 for r in self.state.restores.values() if r.done)
        return (
            f"interrupted: {done} of {len(self.ranges)} ranges restored, state saved in "
            f"'{self.files.restore}'; continue with: {self.cfg.command()}"
        )

    def task(self, rid: str) -> tuple[Callable[..., RestoreResult], tuple[Any, ...]]:
        return restore_range, (self.ranges[rid], self.settings)

    def lost(self, rid: str, why: str, died: bool) -> RestoreResult:
        return RestoreResult(rid, TaskState.FAILED, error=why, transient=died)

    def tick(self) -> None:
        if self.on_progress is None:
            return
        done = [r for r in self.state.restores.values() if r.done]
        idx = self.state.indexes.values()
        docs, nbytes = self.moving()
        self.on_progress(
            RestoreProgress(
                done=len(done),
                total=len(self.ranges),
                docs=sum(r.docs for r in done) + docs,
                bytes=sum(r.bytes for r in done) + nbytes,
                indexes_done=sum(1 for r in idx if r.done),
                indexes=len(idx),
            )
        )
