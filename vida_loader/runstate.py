"""Run state: what happened to every partition of a job, beside its manifest.

Written only by the coordinator, always atomically (temp file, fsync, ``os.replace``), so a
kill at any instant leaves a file that loads. It records enough to resume from: the
manifest's fingerprint, each partition's state, attempts, counts, repairs and last error.
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vida_loader.manifest import Manifest, load_json_file, write_json_atomic
from vida_loader.worker import PartitionResult, PartitionState

STATE_SCHEMA_VERSION = 1
STATE_NAME = "state.json"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class PartitionRecord:
    """The latest word on one partition; counts are from its last attempt."""

    state: PartitionState = PartitionState.PENDING
    attempts: int = 0
    docs: int = 0
    bytes: int = 0
    target_docs: int = 0
    repaired: int = 0
    already_there: int = 0
    seconds: float = 0.0  # all attempts together
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None

    def apply(self, result: PartitionResult) -> None:
        """Take in the result of an attempt."""
        self.state = result.state
        self.docs = result.docs
        self.bytes = result.bytes
        self.target_docs = result.target_docs
        self.repaired += result.repaired
        self.already_there += result.already_there
        self.seconds += result.seconds
        self.finished_at = now_iso()
        self.error = result.error


@dataclass
class RunState:
    job: str
    fingerprint: str
    started_at: str
    updated_at: str = ""
    finished_at: str | None = None
    coordinator: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    partitions: dict[str, PartitionRecord] = field(default_factory=dict)

    @classmethod
    def fresh(cls, manifest: Manifest, settings: dict[str, Any]) -> RunState:
        return cls(
            job=manifest.job,
            fingerprint=manifest.fingerprint,
            started_at=now_iso(),
            coordinator={"pid": os.getpid(), "host": socket.gethostname()},
            settings=settings,
            partitions={p.id: PartitionRecord() for p in manifest.partitions},
        )

    def count(self, state: PartitionState) -> int:
        return sum(1 for r in self.partitions.values() if r.state is state)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": STATE_SCHEMA_VERSION,
            "job": self.job,
            "fingerprint": self.fingerprint,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
            "coordinator": self.coordinator,
            "settings": self.settings,
            "partitions": {pid: asdict(r) for pid, r in self.partitions.items()},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RunState:
        version = doc.get("schema_version")
        if version != STATE_SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {version!r}, this vida-loader reads {STATE_SCHEMA_VERSION}"
            )
        parts = {}
        for pid, rec in dict(doc["partitions"]).items():
            rec = dict(rec)
            rec["state"] = PartitionState(rec["state"])
            parts[str(pid)] = PartitionRecord(**rec)
        return cls(
            job=str(doc["job"]),
            fingerprint=str(doc["fingerprint"]),
            started_at=str(doc["started_at"]),
            updated_at=str(doc.get("updated_at", "")),
            finished_at=doc.get("finished_at"),
            coordinator=dict(doc.get("coordinator", {})),
            settings=dict(doc.get("settings", {})),
            partitions=parts,
        )


def state_path(manifest_dir: Path, job: str) -> Path:
    return manifest_dir / job / STATE_NAME


def save_state(state: RunState, path: Path) -> None:
    state.updated_at = now_iso()
    write_json_atomic(path, state.to_json())


def load_state(path: Path) -> RunState | None:
    """The saved run state, ``None`` when the job never ran; a defect is a ``StateError``."""
    try:
        return load_json_file(path, "run state", RunState.from_json)
    except FileNotFoundError:
        return None
