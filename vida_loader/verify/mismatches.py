"""``mismatches.jsonl``: the differences a deep verify found, one JSON line each.

Only the coordinator writes it. A partition's lines are appended (and fsynced) before its
verify record is saved as done, so a kill in between leaves lines of a partition the next
run compares again: opening the log for a continued verify keeps only the lines of
partitions recorded as done (and drops a torn last line), rewriting it atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from vida_loader.jobfiles import append_jsonl, read_jsonl, write_atomic

if TYPE_CHECKING:
    from vida_loader.verify.compare import Difference


def start(path: Path) -> None:
    """An empty log: a new deep verify forgets the last one's differences."""
    write_atomic(path, b"")


def keep_only(path: Path, done: Set[str]) -> None:
    """Keep the lines of the partitions in ``done``: a continued verify compares the
    others again."""
    rewrite(path, [r for r in read_jsonl(path) if r.get("partition") in done])


def rewrite(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace the log with ``records``, atomically."""
    write_atomic(path, b"".join(orjson.dumps(r) + b"\n" for r in records))


def add(path: Path, partition: str, differences: Iterable[Difference]) -> None:
    """Append one partition's differences, on disk before this returns."""
    append_jsonl(path, (d.record(partition) for d in differences))


def read(path: Path) -> list[dict[str, Any]]:
    """Every line of the log (none when there is no log)."""
    return read_jsonl(path)
