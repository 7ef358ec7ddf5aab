"""Every file of ``partitions/<job>/``, declared in one place, and the atomic way to write
and read them.

Written by ``plan`` (the manifest, once) and by the coordinator (everything else): a
kill -9 at any instant leaves each file old or new, never torn.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import orjson
from bson import json_util
from bson.codec_options import DatetimeConversion
from bson.json_util import CANONICAL_JSON_OPTIONS

from vida_loader.errors import StateError

T = TypeVar("T")
GZ = ".gz"  # mongodump --gzip's suffix

# Canonical Extended JSON keeps Int64, Decimal128, binary subtypes, MinKey/MaxKey and
# dates outside Python's datetime range exact through a JSON file.
EJSON_OPTIONS = CANONICAL_JSON_OPTIONS.with_options(
    datetime_conversion=DatetimeConversion.DATETIME_AUTO
)


def to_ejson(value: Any) -> Any:
    """A BSON value (or document) as a JSON-ready canonical Extended JSON structure."""
    return json.loads(json_util.dumps(value, json_options=EJSON_OPTIONS))


def from_ejson(obj: Any) -> Any:
    """Inverse of :func:`to_ejson`."""
    return json_util.loads(json.dumps(obj), json_options=EJSON_OPTIONS)


@dataclass(frozen=True)
class JobFiles:
    """The files of job ``job`` under ``root`` (``--manifest-dir``)."""

    root: Path
    job: str

    @classmethod
    def of_folder(cls, folder: Path) -> JobFiles:
        return cls(folder.parent, folder.name)

    @property
    def folder(self) -> Path:
        return self.root / self.job

    @property
    def manifest(self) -> Path:
        """The plan: immutable after ``plan``, guarded by its fingerprint."""
        return self.folder / "manifest.json"

    @property
    def state(self) -> Path:
        """The run state: one record per task, written only by the coordinator."""
        return self.folder / "state.json"

    @property
    def lock(self) -> Path:
        """Held (flock) by the running coordinator; records its pid and host."""
        return self.folder / "run.lock"

    @property
    def duplicates(self) -> Path:
        """One JSON line per ``_id`` the source holds more than once."""
        return self.folder / "duplicates.jsonl"

    # Room for what comes next; each is written by the feature that owns it.
    @property
    def metrics(self) -> Path:
        """Periodic counters of a run, one JSON line each (live view, report)."""
        return self.folder / "metrics.jsonl"

    @property
    def rejects(self) -> Path:
        """Documents a transform refused, one JSON line each: partition, _id, reason, and
        where the document is in ``rejects_bson``."""
        return self.folder / "rejects.jsonl"

    @property
    def rejects_bson(self) -> Path:
        """The refused source documents, as read (mongodump layout: BSON documents end to
        end, readable with ``bson.decode_file_iter``)."""
        return self.folder / "rejects.bson"

    @property
    def indexes(self) -> Path:
        """The target's own secondary indexes, saved before --disable-indexes drops them
        and rebuilt from here after the data (a crash in between loses none)."""
        return self.folder / "indexes.json"

    @property
    def verify(self) -> Path:
        """The last verification: per-range counts and hashes on both sides."""
        return self.folder / "verify.json"

    @property
    def mismatches(self) -> Path:
        """The documents the last deep verify found different, one JSON line each:
        partition, _id (canonical Extended JSON), kind, both sides' SHA-256."""
        return self.folder / "mismatches.jsonl"

    @property
    def restore(self) -> Path:
        """A restore's state: its input file, the byte ranges and their records, the index
        builds (a restore job has no manifest)."""
        return self.folder / "restore.json"

    @property
    def unpacked(self) -> Path:
        """A gzipped input of a restore, unpacked once: ranges need a file to seek in."""
        return self.folder / "unpacked.bson"

    def all(self) -> dict[str, Path]:
        """Every declared file, by name."""
        names = (
            "manifest",
            "state",
            "lock",
            "duplicates",
            "metrics",
            "rejects",
            "rejects_bson",
            "indexes",
            "verify",
            "mismatches",
            "restore",
            "unpacked",
        )
        return {n: getattr(self, n) for n in names}


@dataclass(frozen=True)
class DumpFiles:
    """The files of collection ``db.collection`` dumped under ``out`` in mongodump's
    layout, and the dump's own while it runs (written by ``dump``'s coordinator)."""

    out: Path
    db: str
    collection: str
    gzip: bool = False

    @property
    def folder(self) -> Path:
        return self.out / self.db

    @property
    def suffix(self) -> str:
        return GZ if self.gzip else ""

    @property
    def bson(self) -> Path:
        """The documents, back to back (a gzip stream with --gzip)."""
        return self.folder / f"{self.collection}.bson{self.suffix}"

    @property
    def metadata(self) -> Path:
        """Options, indexes, uuid, collectionName, type: canonical Extended JSON."""
        return self.folder / f"{self.collection}.metadata.json{self.suffix}"

    @property
    def work(self) -> Path:
        """The dump's parts and state until they are joined (mongorestore skips it)."""
        return self.folder / f".{self.collection}.vida-dump"

    @property
    def state(self) -> Path:
        """What the dump covers (the plan's fingerprint, gzip) and each part's record."""
        return self.work / "state.json"

    def part(self, partition: str) -> Path:
        """Partition ``partition``'s documents: present only when complete."""
        return self.work / f"{partition}.bson{self.suffix}"

    def all(self) -> dict[str, Path]:
        """Every declared file but the parts, by name."""
        names = ("bson", "metadata", "work", "state")
        return {n: getattr(self, n) for n in names}


def planned_jobs(root: Path) -> list[str]:
    """The jobs planned under ``root``, sorted."""
    return sorted(p.parent.name for p in root.glob("*/manifest.json"))


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash at any instant leaves old or new."""
    with atomic_file(path) as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file to write that replaces ``path`` only when the block ends without an
    error: temp file beside it, fsync, ``os.replace``, fsync of the folder. A crash at
    any instant leaves old or new; an error leaves old and no temp file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, doc: Any) -> None:
    """``doc`` as indented JSON, replacing ``path`` atomically (see ``write_atomic``)."""
    write_atomic(path, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Add one JSON line per record and fsync: on disk before the caller goes on."""
    with path.open("ab") as f:
        for record in records:
            f.write(orjson.dumps(record) + b"\n")
        f.flush()
        os.fsync(f.fileno())


def cut_torn_line(path: Path) -> None:
    """Cut a JSON-lines file after its last complete line: a line torn by a kill
    mid-append would otherwise join the next record appended to it."""
    try:
        with path.open("r+b") as f:
            data = f.read()
            if not data or data.endswith(b"\n"):
                return
            f.truncate(data.rfind(b"\n") + 1)
            os.fsync(f.fileno())
    except FileNotFoundError:
        return


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file; a torn last line (a kill mid-append) is skipped,
    as is a missing file (no records)."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            if i < len(lines) - 1:
                raise StateError(f"line {i + 1} of '{path}' is not JSON") from None
    return records


def load_json_file(path: Path, what: str, parse: Callable[[Any], T], fix: str = "") -> T:
    """``parse`` of the JSON in ``path``; an unreadable or corrupt file is one ``StateError``
    naming ``what`` and the file (``fix`` appended), a missing one ``FileNotFoundError``."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StateError(f"cannot read {what} '{path}': {exc.strerror}") from None
    try:
        return parse(orjson.loads(raw))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise StateError(f"{what} '{path}' is corrupt ({reason}){fix}") from None
