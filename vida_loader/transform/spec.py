"""What a job records of its transform (``TransformSpec``: the file, the class, the
content's hash), and the check that a job goes on with the transform it began with.
Loading and applying the class is ``plugin``'s."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vida_loader.errors import StateError


@dataclass(frozen=True)
class TransformSpec:
    """What a job records of its transform: the file, the class, the file's content."""

    path: str  # absolute
    class_name: str
    sha256: str

    def describe(self) -> str:
        return f"{Path(self.path).name}:{self.class_name} (sha256 {self.sha256[:12]})"

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "class": self.class_name, "sha256": self.sha256}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> TransformSpec:
        return cls(str(doc["path"]), str(doc["class"]), str(doc["sha256"]))


def transform_change(old: TransformSpec | None, new: TransformSpec | None) -> str | None:
    """What differs between the job's transform and this run's, in words; None: the same.

    The file's place does not count: the same class in the same content is the same."""
    if old is None and new is None:
        return None
    if old is None or new is None:
        return f"transform {_said(old)} -> {_said(new)}"
    if (old.class_name, old.sha256) == (new.class_name, new.sha256):
        return None
    if old.class_name != new.class_name:
        return f"transform class {old.class_name} -> {new.class_name}"
    name = Path(new.path).name
    return f"transform file {name} changed (sha256 {old.sha256[:12]} -> {new.sha256[:12]})"


def _said(spec: TransformSpec | None) -> str:
    return "none" if spec is None else spec.describe()


def check_transform(state: Any, spec: dict[str, Any] | None, path: Path) -> None:
    """Refuse to continue a job (its run ``state``) with another transform than it began
    with (``spec``: this run's, as recorded)."""
    old = TransformSpec.from_json(state.transform) if state.transform else None
    new = TransformSpec.from_json(spec) if spec else None
    change = transform_change(old, new)
    if change is None:
        return
    again = f"give --transform {old.path}:{old.class_name} again, or " if old and not new else ""
    raise StateError(
        f"job '{state.job}' was started with another transform ({change}; run state '{path}')",
        fix=f"{again}pass --restart to start the job over with this one",
    )
