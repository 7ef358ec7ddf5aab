"""The job's rejected documents: ``rejects.bson`` and ``rejects.jsonl``, written only by
the coordinator.

``rejects.bson`` holds each refused source document as it was read, end to end (the
mongodump layout: ``bson.decode_file_iter`` reads it; ``mongorestore`` loads it once
fixed). ``rejects.jsonl`` has one line per document: the partition, the ``_id`` (canonical
Extended JSON), the reason, and the document's offset and length in the ``.bson``.
The document is written first, its line second, each fsynced: on opening, a document
without its line (a kill in between) is cut off and a torn last line dropped, so both
files always agree. A document refused again (a resumed or repeated attempt) is
recorded once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bson
import orjson

from vida_loader.job.runstate import now_iso
from vida_loader.jobfiles import JobFiles, cut_torn_line, read_jsonl, to_ejson
from vida_loader.mongo import CODEC_OPTIONS

if TYPE_CHECKING:
    from vida_loader.transform.plugin import Reject


class RejectsLog:
    """Appends rejects to the job's two files, each document once per partition."""

    def __init__(self, files: JobFiles, fresh: bool) -> None:
        self.bson_path = files.rejects_bson
        self.jsonl_path = files.rejects
        if fresh:
            self.bson_path.unlink(missing_ok=True)
            self.jsonl_path.unlink(missing_ok=True)
        self.seen: set[tuple[str, str]] = set()
        self.size = 0
        self._load()

    def _load(self) -> None:
        """Read what earlier runs recorded; make the two files agree (see above)."""
        cut_torn_line(self.jsonl_path)
        lines = read_jsonl(self.jsonl_path)
        for rec in lines:
            self.seen.add((str(rec["partition"]), _key(rec["_id"])))
            self.size = max(self.size, int(rec["offset"]) + int(rec["length"]))
        if self.bson_path.exists() and self.bson_path.stat().st_size > self.size:
            with self.bson_path.open("r+b") as f:
                f.truncate(self.size)
                os.fsync(f.fileno())

    def add(self, partition: str, rejects: Iterable[Reject], run: int) -> int:
        """Record the documents not recorded yet; returns how many were new."""
        new: list[tuple[Reject, Any]] = []
        for r in rejects:
            _id = to_ejson(bson.decode(r.raw, CODEC_OPTIONS)["_id"])
            key = (partition, _key(_id))
            if key not in self.seen:
                self.seen.add(key)
                new.append((r, _id))
        if not new:
            return 0
        lines = []
        with self.bson_path.open("ab") as f:
            for r, _id in new:
                f.write(r.raw)
                lines.append(
                    {
                        "partition": partition,
                        "_id": _id,
                        "reason": r.reason,
                        "offset": self.size,
                        "length": len(r.raw),
                        "run": run,
                        "time": now_iso(),
                    }
                )
                self.size += len(r.raw)
            f.flush()
            os.fsync(f.fileno())
        with self.jsonl_path.open("ab") as f:
            f.write(b"".join(orjson.dumps(line) + b"\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        return len(new)


def _key(ejson_id: Any) -> str:
    return orjson.dumps(ejson_id, option=orjson.OPT_SORT_KEYS).decode()


def read_rejects(folder: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(line, document) of every recorded reject of the job in ``folder``."""
    files = JobFiles.of_folder(folder)
    lines = read_jsonl(files.rejects)
    if not lines:
        return []
    data = files.rejects_bson.read_bytes()
    return [
        (line, bson.decode(data[line["offset"] : line["offset"] + line["length"]]))
        for line in lines
    ]
