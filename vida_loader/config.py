"""The frozen config object of each command (plan, run, verify), built from its resolved
``Settings``, and the checks of names a user gives (job, database, collection)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vida_loader.endpoint import (
    DEFAULT_RETRY_ATTEMPTS,
    DEFAULT_RETRY_WINDOW_S,
    Endpoint,
    Timeouts,
    check_write_concern,
    has_secret,
)
from vida_loader.errors import UsageError
from vida_loader.jobfiles import JobFiles
from vida_loader.ordering import RangeMode
from vida_loader.settings.registry import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BATCH_MB,
    DEFAULT_BATCH_SIZE,
    DEFAULT_JOBS,
    DEFAULT_MANIFEST_DIR,
    DEFAULT_MAX_REJECTS,
    DEFAULT_PARTITION_SIZE_MB,
    DEFAULT_WRITE_CONCERN,
    MAX_BATCH_MB,
    MIB,
    Layer,
)

if TYPE_CHECKING:
    from vida_loader.retry import RetryPolicy
    from vida_loader.settings.resolve import Settings

_FIELD = re.compile(r"^[^.$\x00][^.\x00]*(\.[^.$\x00][^.\x00]*)*$")
JOB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class PlanConfig:
    """Everything ``plan`` needs."""

    source: Endpoint
    target: Endpoint
    job: str
    manifest_dir: Path = DEFAULT_MANIFEST_DIR
    partitions: int | None = None
    partition_size_mb: float | None = None
    range_mode: str = "auto"  # "auto" or a RangeMode value
    replan: bool = False
    samples_per_partition: int = 10
    timeouts: Timeouts = Timeouts()
    ru_accounting: str = "auto"  # measure what reading costs when the source reports it
    max_rus: float | None = None  # for the time estimate: the run's budget
    max_rus_percent: float | None = None
    ttl_field: str | None = None  # where a Cosmos DB TTL on _ts moves to

    def __post_init__(self) -> None:
        if self.ttl_field is not None and not _FIELD.match(self.ttl_field):
            raise UsageError(
                f"--ttl-field '{self.ttl_field}' is not a field path: give a name like "
                "createdAt or meta.closedAt (no $, no empty parts)"
            )
        if self.partitions is not None and self.partition_size_mb is not None:
            raise UsageError(
                f"--partitions '{self.partitions}' and --partition-size-mb "
                f"'{self.partition_size_mb:g}' exclude each other: give one"
            )
        if self.partitions is not None and self.partitions < 1:
            raise UsageError(f"--partitions '{self.partitions}' must be at least 1")
        if self.partition_size_mb is not None and not self.partition_size_mb > 0:
            raise UsageError(
                f"--partition-size-mb '{self.partition_size_mb:g}' must be greater than 0"
            )
        if self.range_mode != "auto" and self.range_mode not in set(RangeMode):
            raise UsageError(f"--range-mode '{self.range_mode}' must be auto, minmax or typed")
        check_job_name(self.job)
        for side, ep in (("source", self.source), ("target", self.target)):
            if not ep.db or not ep.collection:
                which = "db" if not ep.db else "collection"
                raise UsageError(
                    f"--{side}-{which} is required (or VIDA_{side.upper()}_{which.upper()})"
                )
            check_namespace(side, ep.db, ep.collection)

    @property
    def files(self) -> JobFiles:
        return JobFiles(self.manifest_dir, self.job)

    @property
    def size_mb(self) -> float:
        return self.partition_size_mb or DEFAULT_PARTITION_SIZE_MB


def check_batches(batch_size: int, batch_mb: float) -> None:
    """Refuse write batches that hold nothing or more than a server takes."""
    if batch_size < 1:
        raise UsageError(f"--batch-size '{batch_size}' must be at least 1")
    if not 0 < batch_mb <= MAX_BATCH_MB:
        raise UsageError(f"--batch-mb '{batch_mb:g}' must be above 0 and at most {MAX_BATCH_MB:g}")


@dataclass(frozen=True)
class JobConfig:
    """What every command working on a planned job needs. URIs default to the manifest's."""

    job: str
    manifest_dir: Path = DEFAULT_MANIFEST_DIR
    source_uri: str | None = None
    target_uri: str | None = None
    jobs: int = DEFAULT_JOBS
    timeouts: Timeouts = Timeouts()
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS  # failures in a row of one operation
    retry_window: float = DEFAULT_RETRY_WINDOW_S  # seconds one operation may keep failing
    executor: str = "local"  # local, dask: where the tasks run
    scheduler: str | None = None  # the Dask scheduler's address, with executor dask
    worker_uris: str = "send"  # send, env: where Dask workers get the URIs' credentials

    def __post_init__(self) -> None:
        check_job_name(self.job)
        if self.jobs < 1:
            raise UsageError(f"--jobs '{self.jobs}' must be at least 1")
        if self.executor == "dask" and not self.scheduler:
            raise UsageError(
                "--executor dask needs the address of a Dask scheduler",
                value="dask",
                setting="--scheduler",
                fix="add --scheduler tcp://HOST:8786 (or VIDA_SCHEDULER)",
            )
        if self.retry_attempts < 0:
            raise UsageError(f"--retry-attempts '{self.retry_attempts}' must be at least 0")
        if not self.retry_window >= 0:
            raise UsageError(f"--retry-window '{self.retry_window:g}' must be at least 0")

    @staticmethod
    def given(s: Settings, job: str, *keys: str) -> dict[str, Any]:
        """The fields of a job's config that settings ``s`` give: the job, its folder, the
        URIs and timeouts, and ``keys`` (settings named as the fields)."""
        return {
            "job": job,
            "manifest_dir": s["manifest_dir"],
            "source_uri": s.get("source_uri"),  # restore has none
            "target_uri": s.get("target_uri"),  # dump has none
            "timeouts": s.timeouts(),
            **{k: s[k] for k in keys},
        }

    @property
    def files(self) -> JobFiles:
        return JobFiles(self.manifest_dir, self.job)

    @property
    def retry(self) -> RetryPolicy:
        from vida_loader.retry import RetryPolicy  # the driver's errors: not for `status`

        return RetryPolicy(attempts=self.retry_attempts, window_s=self.retry_window)


@dataclass(frozen=True)
class RunConfig(JobConfig):
    """Everything ``run`` needs besides the manifest."""

    write_concern: str = DEFAULT_WRITE_CONCERN
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_mb: float = DEFAULT_BATCH_MB
    repair_rounds: int = 2
    attempts: int = DEFAULT_ATTEMPTS
    restart: bool = False  # forget the run state, start the job over
    drop_target: bool = False  # empty the target collection before a fresh start
    append: bool = False  # start fresh although the target collection holds documents
    ru_accounting: str = "auto"  # auto, on, off: read the source's request charges
    max_rus: float | None = None  # RU/s the run may spend (wins over max_rus_percent)
    max_rus_percent: float | None = None  # of the source's provisioned RU/s
    max_rus_percent_given: bool = False  # by the user (flag, variable), not a profile
    indexes: str = "after"  # after, before, skip: when the target gets the indexes
    disable_indexes: bool = False  # drop the target's own indexes, rebuild them after
    only_indexes: bool = False  # `indexes build`: build what is missing, copy nothing
    transform: str | None = None  # FILE.py[:Class]: loaded by run_job before anything
    max_rejects: int = DEFAULT_MAX_REJECTS  # the job's rejected documents, at most
    follow: bool = False  # after the copy, replay the source's changes until stopped
    until_caught_up: float | None = None  # with follow: stop once this few seconds behind
    follow_deletes: str = "stream"  # stream, sweep: also delete what the source lost
    sweep_interval: float = 300.0  # seconds between delete sweeps while caught up

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.drop_target and self.append:
            raise UsageError(
                "--drop-target and --append exclude each other: empty the target or add to it"
            )
        check_write_concern(self.write_concern)  # refuses anything but 0, 1, majority
        check_batches(self.batch_size, self.batch_mb)
        if self.disable_indexes and self.indexes != "after":
            raise UsageError(
                f"--disable-indexes drops the target's indexes to rebuild them after the "
                f"data: it cannot go with --indexes '{self.indexes}'"
            )
        if self.attempts < 1:
            raise UsageError(f"--attempts '{self.attempts}' must be at least 1")
        if self.until_caught_up is not None and not self.follow:
            raise UsageError(
                f"--until-caught-up {self.until_caught_up:g} ends a follow",
                value=str(self.until_caught_up),
                setting="--until-caught-up",
                fix="add --follow",
            )

    @classmethod
    def from_settings(cls, s: Settings, job: str, **actions: Any) -> RunConfig:
        """The run of ``job`` that settings ``s`` describe; ``actions``: restart,
        drop_target, append."""
        return cls(
            **cls.given(
                s,
                job,
                "jobs",
                "executor",
                "scheduler",
                "worker_uris",
                "write_concern",
                "batch_size",
                "batch_mb",
                "attempts",
                "retry_attempts",
                "retry_window",
                "ru_accounting",
                "max_rus",
                "max_rus_percent",
                "indexes",
                "disable_indexes",
                "transform",
                "max_rejects",
                "follow",
                "until_caught_up",
                "follow_deletes",
                "sweep_interval",
            ),
            max_rus_percent_given=s.origin("max_rus_percent").layer
            not in (Layer.PROFILE, Layer.DEFAULT),
            **actions,
        )

    @property
    def batch_bytes(self) -> int:
        return int(self.batch_mb * MIB)

    def settings(self) -> dict[str, Any]:
        """What the run state records of this run's settings (and a resume repeats)."""
        return {
            "jobs": self.jobs,
            "executor": self.executor,
            "scheduler": self.scheduler if self.executor == "dask" else None,
            "worker_uris": self.worker_uris,
            "write_concern": self.write_concern,
            "batch_size": self.batch_size,
            "batch_bytes": self.batch_bytes,
            "repair_rounds": self.repair_rounds,
            "attempts": self.attempts,
            "retry_attempts": self.retry_attempts,
            "retry_window": self.retry_window,
            "ru_accounting": self.ru_accounting,
            "max_rus": self.max_rus,
            "max_rus_percent": self.max_rus_percent,
            "indexes": self.indexes,
            "disable_indexes": self.disable_indexes,
            "transform": self.transform,
            "max_rejects": self.max_rejects,
            "follow": self.follow,
        }


@dataclass(frozen=True)
class VerifyConfig(JobConfig):
    """Everything ``verify`` needs besides the manifest."""

    deep: bool = False  # compare documents byte for byte, not only counts
    sample: float | None = None  # percent of the partitions a deep verify compares
    seed: int | None = None  # of the sample's pick
    recheck: float = 0.0  # seconds before reading the differing documents again
    restart: bool = False  # a deep verify starts over instead of continuing
    attempts: int = DEFAULT_ATTEMPTS
    ru_accounting: str = "auto"  # auto, on, off: read the source's request charges

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.deep:
            given = [
                flag
                for flag, value in (("--sample", self.sample), ("--recheck", self.recheck or None))
                if value is not None
            ]
            if given:
                raise UsageError(
                    f"{' and '.join(given)} apply to a deep verify only",
                    value=" ".join(given),
                    setting=given[0],
                    fix="add --deep",
                )

    @classmethod
    def from_settings(cls, s: Settings, job: str, restart: bool = False) -> VerifyConfig:
        keys = ("jobs", "deep", "sample", "seed", "recheck", "attempts", "ru_accounting")
        where = ("executor", "scheduler", "worker_uris", "retry_attempts", "retry_window")
        return cls(**cls.given(s, job, *keys, *where), restart=restart)


@dataclass(frozen=True)
class RepairConfig(JobConfig):
    """Everything ``repair`` needs besides the manifest and the last deep verify."""

    delete_extra: bool = False

    @classmethod
    def from_settings(cls, s: Settings, job: str) -> RepairConfig:
        return cls(**cls.given(s, job, "delete_extra", "retry_attempts", "retry_window"))


@dataclass(frozen=True)
class DumpConfig(JobConfig):
    """Everything ``dump`` needs besides the manifest."""

    out: Path = Path("dump")  # mongodump's --out: DIR/<db>/<collection>.bson
    # A collection no job planned (with the URI): the dump plans its own partitions and
    # keeps the plan in its state. None: the job's manifest gives source and partitions.
    source_db: str | None = None
    source_collection: str | None = None
    partitions: int | None = None
    partition_size_mb: float | None = None
    gzip: bool = False
    restart: bool = False  # start the dump over instead of continuing an interrupted one
    attempts: int = DEFAULT_ATTEMPTS
    ru_accounting: str = "auto"  # auto, on, off: read the source's request charges

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.attempts < 1:
            raise UsageError(f"--attempts '{self.attempts}' must be at least 1")
        if (self.source_db is None) != (self.source_collection is None):
            given = "--source-db" if self.source_db else "--source-collection"
            raise UsageError(
                f"{given} alone does not name a collection",
                setting=given,
                fix="give both --source-db and --source-collection (or --job of a planned job)",
            )
        if self.self_planned:
            check_namespace("source", self.source_db or "", self.source_collection or "")
            if self.partitions is not None and self.partition_size_mb is not None:
                raise UsageError(
                    f"--partitions '{self.partitions}' and --partition-size-mb "
                    f"'{self.partition_size_mb:g}' exclude each other: give one"
                )
        elif self.partitions is not None or self.partition_size_mb is not None:
            raise UsageError(
                "--partitions and --partition-size-mb split a collection the dump plans "
                "itself; the job's plan has its partitions",
                setting="--partitions",
                fix="leave them out, or name the collection with --source-db and "
                "--source-collection",
            )

    @property
    def self_planned(self) -> bool:
        return self.source_collection is not None

    @classmethod
    def from_settings(
        cls, s: Settings, job: str, restart: bool = False, own_plan: bool = False
    ) -> DumpConfig:
        """``own_plan``: the source flags name the collection (no job's manifest)."""
        if not s["out"]:
            raise UsageError(
                "dump needs a folder to write to", setting="--out", fix="give --out DIR"
            )
        keys = ("jobs", "gzip", "attempts", "ru_accounting", "retry_attempts", "retry_window")
        split = ("partitions", "partition_size_mb")
        names = ("source_db", "source_collection")
        return cls(
            **cls.given(s, job, *keys, *split),
            **({k: s[k] for k in names} if own_plan else {}),
            out=Path(s["out"]),
            restart=restart,
        )

    def command(self) -> str:
        """The command that continues this dump (without passwords)."""
        args = ["vida-loader", "dump", "--out", str(self.out)]
        if self.self_planned:
            args += ["--source-db", self.source_db or "", "--source-collection"]
            args.append(self.source_collection or "")
        else:
            args += ["--job", self.job]
        if self.manifest_dir != DEFAULT_MANIFEST_DIR and not self.self_planned:
            args += ["--manifest-dir", str(self.manifest_dir)]
        if self.gzip:
            args.append("--gzip")
        if self.jobs != DEFAULT_JOBS:
            args += ["-j", str(self.jobs)]
        if self.source_uri and not has_secret(self.source_uri):
            args += ["--source-uri", self.source_uri]
        again = " (with --source-uri and credentials again)" if self.source_uri else ""
        return shlex.join(args) + (again if "--source-uri" not in args else "")


@dataclass(frozen=True)
class RestoreConfig(JobConfig):
    """Everything ``restore`` needs: the input, the target, how to write."""

    input: Path = Path("dump")  # a mongodump folder or one .bson[.gz] file
    target_db: str | None = None  # default: the dump's database
    target_collection: str | None = None  # default: the dump's collection
    write_concern: str = DEFAULT_WRITE_CONCERN
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_mb: float = DEFAULT_BATCH_MB
    attempts: int = DEFAULT_ATTEMPTS
    indexes: str = "after"  # after, skip: build the metadata's indexes after the data
    drop: bool = False  # drop the target collection when the restore starts
    restart: bool = False  # forget the restore's state, start over
    several: bool = False  # ``input`` is a folder of several collections, restored in turn

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.target_uri:
            raise UsageError(
                "restore needs a target", setting="--target-uri", fix="give --target-uri URI"
            )
        if self.write_concern == "0":
            raise UsageError(
                "--write-concern '0' cannot confirm a restore: a range of a file is done when "
                "the target acknowledged each of its documents",
                value="0",
                setting="--write-concern",
                fix="use 1 or majority",
            )
        check_write_concern(self.write_concern)
        if self.indexes == "before":
            raise UsageError(
                "--indexes 'before' does not apply to restore",
                value="before",
                setting="--indexes",
                fix="use after (the default) or skip",
            )
        check_batches(self.batch_size, self.batch_mb)
        if self.attempts < 1:
            raise UsageError(f"--attempts '{self.attempts}' must be at least 1")

    @classmethod
    def from_settings(
        cls, s: Settings, job: str, input: Path, restart: bool = False, several: bool = False
    ) -> RestoreConfig:
        keys = (
            "jobs",
            "target_db",
            "target_collection",
            "write_concern",
            "batch_size",
            "batch_mb",
            "attempts",
            "indexes",
            "drop",
            "retry_attempts",
            "retry_window",
        )
        return cls(**cls.given(s, job, *keys), input=input, restart=restart, several=several)

    @property
    def batch_bytes(self) -> int:
        return int(self.batch_mb * MIB)

    def command(self) -> str:
        """The command that continues this restore (without passwords)."""
        args = ["vida-loader", "restore", str(self.input)]
        if not self.several:  # each collection of a folder has its own default job
            args += ["--job", self.job]
        if self.manifest_dir != DEFAULT_MANIFEST_DIR:
            args += ["--manifest-dir", str(self.manifest_dir)]
        for flag, value in (
            ("--target-db", self.target_db),
            ("--target-collection", self.target_collection),
        ):
            if value:
                args += [flag, value]
        if self.jobs != DEFAULT_JOBS:
            args += ["-j", str(self.jobs)]
        uri = self.target_uri or ""
        if not has_secret(uri):
            return shlex.join([*args, "--target-uri", uri])
        return shlex.join(args) + " (with --target-uri and credentials again)"


def check_job_name(job: str) -> None:
    if not JOB_NAME.match(job):
        raise UsageError(
            f"--job '{job}' is not a usable job name",
            value=job,
            setting="--job",
            fix="use letters, digits, '.', '_' and '-'",
        )


# MongoDB's rules (Atlas and Cosmos DB follow them): what the server would refuse on the
# first write, refused here before anything is written.
DB_NAME_FORBIDDEN = '/\\. "$\x00'
MAX_DB_NAME_BYTES = 63
MAX_NAMESPACE_BYTES = 255


def check_namespace(side: str, db: str, collection: str) -> None:
    """A ``UsageError`` naming the flag when ``db`` or ``collection`` breaks MongoDB's
    naming rules. Empty names are left to the "is required" checks."""
    flag = f"--{side}-db"
    bad = sorted({c for c in db if c in DB_NAME_FORBIDDEN})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise UsageError(
            f"{flag} '{db}' cannot be a database name: it holds {shown}",
            value=db,
            setting=flag,
            fix='MongoDB database names have none of / \\ . space " $',
        )
    if len(db.encode()) > MAX_DB_NAME_BYTES:
        raise UsageError(
            f"{flag} '{db}' is {len(db.encode())} bytes long",
            value=db,
            setting=flag,
            fix=f"database names are at most {MAX_DB_NAME_BYTES} bytes",
        )
    _check_collection(f"--{side}-collection", db, collection)


def _check_collection(flag: str, db: str, collection: str) -> None:
    problem = fix = None
    namespace = f"{db}.{collection}"
    if "$" in collection or "\x00" in collection:
        problem = "cannot be a collection name"
        fix = "MongoDB collection names have no '$' and no NUL character"
    elif collection.startswith("system."):
        problem = "names a system collection"
        fix = "choose a name that does not start with 'system.'"
    elif len(namespace.encode()) > MAX_NAMESPACE_BYTES:
        problem = f"makes the namespace '{namespace}' {len(namespace.encode())} bytes long"
        fix = f"at most {MAX_NAMESPACE_BYTES} are allowed"
    if problem:
        raise UsageError(
            f"{flag} '{collection}' {problem}", value=collection, setting=flag, fix=fix
        )


def default_job_name(source_db: str, source_collection: str) -> str:
    """``<db>.<collection>``, with characters unfit for a folder name replaced by ``_``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{source_db}.{source_collection}")
    return name.lstrip(".") or "job"
