"""Settings objects: frozen, built once by the CLI (flags > environment > defaults)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vida_loader.errors import UsageError
from vida_loader.manifest import RangeMode
from vida_loader.mongo import Timeouts

DEFAULT_PARTITION_SIZE_MB = 64.0
DEFAULT_MANIFEST_DIR = Path("partitions")
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
        if not JOB_NAME.match(self.job):
            raise UsageError(
                f"--job '{self.job}' is not a usable job name: use letters, digits, '.', '_' "
                "and '-'"
            )
        for side, ep in (("source", self.source), ("target", self.target)):
            if not ep.db or not ep.collection:
                which = "db" if not ep.db else "collection"
                raise UsageError(
                    f"--{side}-{which} is required (or VIDA_{side.upper()}_{which.upper()})"
                )

    @property
    def size_mb(self) -> float:
        return self.partition_size_mb or DEFAULT_PARTITION_SIZE_MB


def default_job_name(source_db: str, source_collection: str) -> str:
    """``<db>.<collection>``, with characters unfit for a folder name replaced by ``_``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{source_db}.{source_collection}")
    return name.lstrip(".") or "job"
