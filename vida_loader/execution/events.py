"""What a running task tells the coordinator, typed: one dataclass per kind of news.

Events cross the process boundary through a queue, so each is a small frozen
dataclass of plain values (picklable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Started:
    """The task began its work (a partition: connected, about to read)."""

    task: str


@dataclass(frozen=True, slots=True)
class Moved:
    """Documents and bytes written since the task's previous ``Moved``."""

    task: str
    docs: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Waiting:
    """The task is about to wait ``delay_ms`` before trying an operation on ``side`` again."""

    task: str
    side: str  # "source" or "target"
    reason: str  # the fault's short description ("throttled", "network error", ...)
    delay_ms: int
    throttled: bool


@dataclass(frozen=True, slots=True)
class Charged:
    """The source charged ``ru`` request units for the task's commands (read or estimated)."""

    task: str
    ru: float


@dataclass(frozen=True, slots=True)
class Phase:
    """The task went on to another step of its work ("confirming", "repairing")."""

    task: str
    phase: str


Event = Started | Moved | Waiting | Charged | Phase
Reporter = Callable[[Event], None]


def no_report(_event: Event) -> None:
    return None
