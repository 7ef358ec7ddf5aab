"""Settings objects: frozen, built once by the CLI (flags > environment > defaults)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vida_loader.errors import UsageError
from vida_loader.manifest import RangeMode
from vida_loader.mongo import Timeouts, write_concern
from vida_loader.retry import DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_WINDOW_S, RetryPolicy

DEFAULT_PARTITION_SIZE_MB = 64.0
DEFAULT_MANIFEST_DIR = Path("partitions")
DEFAULT_BATCH_DOCS = 1000  # Cosmos DB advises about 1,000 documents per write
DEFAULT_BATCH_MB = 2.0  # and allows 2 MB per request
# Per find/getMore: about 2 MB by the plan's average document size (one read feeds two
# writes), at most 10,000 documents. Measured on 30k ~1 KB documents, peak RSS of
# `run -j 1` was 127 MB with 10,000-document reads, 83 MB with 4,000 and 65 MB with 2,000,
# at the same CPU. The server caps a reply anyway (16 MB MongoDB, 4 MB Cosmos DB).
DEFAULT_READ_BATCH_DOCS = 10_000
DEFAULT_READ_BATCH_MB = 2.0
DEFAULT_JOBS = 4
DEFAULT_WRITE_CONCERN = "1"  # confirmed by the write results, no count
DEFAULT_ATTEMPTS = 3
MAX_BATCH_MB = 16.0
JOB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class Endpoint:
    """One side of a copy: a full URI (may hold credentials: never stored) and a namespace."""

    uri: str
    db: str
    collection: str

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.collection}"


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

    def __post_init__(self) -> None:
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

    @property
    def size_mb(self) -> float:
        return self.partition_size_mb or DEFAULT_PARTITION_SIZE_MB


@dataclass(frozen=True)
class JobConfig:
    """What every command working on a planned job needs. URIs default to the manifest's."""

    job: str
    manifest_dir: Path = DEFAULT_MANIFEST_DIR
    source_uri: str | None = None
    target_uri: str | None = None
    jobs: int = DEFAULT_JOBS
    timeouts: Timeouts = Timeouts()

    def __post_init__(self) -> None:
        check_job_name(self.job)
        if self.jobs < 1:
            raise UsageError(f"--jobs '{self.jobs}' must be at least 1")


@dataclass(frozen=True)
class RunConfig(JobConfig):
    """Everything ``run`` needs besides the manifest."""

    write_concern: str = DEFAULT_WRITE_CONCERN
    batch_docs: int = DEFAULT_BATCH_DOCS
    batch_mb: float = DEFAULT_BATCH_MB
    repair_rounds: int = 2
    attempts: int = DEFAULT_ATTEMPTS
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS  # failures in a row of one operation
    retry_window_s: float = DEFAULT_RETRY_WINDOW_S  # seconds one operation may keep failing
    restart: bool = False  # forget the run state, start the job over
    drop_target: bool = False  # empty the target collection before a fresh start
    append: bool = False  # start fresh although the target collection holds documents

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.drop_target and self.append:
            raise UsageError(
                "--drop-target and --append exclude each other: empty the target or add to it"
            )
        write_concern(self.write_concern)  # refuses anything but 0, 1, majority
        if self.batch_docs < 1:
            raise UsageError(f"--batch-size '{self.batch_docs}' must be at least 1")
        if not 0 < self.batch_mb <= MAX_BATCH_MB:
            raise UsageError(
                f"--batch-mb '{self.batch_mb:g}' must be above 0 and at most {MAX_BATCH_MB:g}"
            )
        if self.attempts < 1:
            raise UsageError(f"--attempts '{self.attempts}' must be at least 1")
        if self.retry_attempts < 0:
            raise UsageError(f"--retry-attempts '{self.retry_attempts}' must be at least 0")
        if not self.retry_window_s >= 0:
            raise UsageError(f"--retry-window '{self.retry_window_s:g}' must be at least 0")

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.retry_attempts, window_s=self.retry_window_s)

    @property
    def batch_bytes(self) -> int:
        return int(self.batch_mb * 1024 * 1024)

    def settings(self) -> dict[str, Any]:
        """What the run state records of this run's settings (and a resume repeats)."""
        return {
            "jobs": self.jobs,
            "write_concern": self.write_concern,
            "batch_docs": self.batch_docs,
            "batch_bytes": self.batch_bytes,
            "repair_rounds": self.repair_rounds,
            "attempts": self.attempts,
            "retry_attempts": self.retry_attempts,
            "retry_window_s": self.retry_window_s,
        }


@dataclass(frozen=True)
class VerifyConfig(JobConfig):
    """Everything ``verify`` needs besides the manifest."""


def check_job_name(job: str) -> None:
    if not JOB_NAME.match(job):
        raise UsageError(
            f"--job '{job}' is not a usable job name: use letters, digits, '.', '_' and '-'"
        )


def default_job_name(source_db: str, source_collection: str) -> str:
    """``<db>.<collection>``, with characters unfit for a folder name replaced by ``_``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{source_db}.{source_collection}")
    return name.lstrip(".") or "job"
