"""A ``.bson`` file (documents back to back, as mongodump writes it): split at document
boundaries into byte ranges restored in parallel, and read one range back.

The split walks the length prefixes only (the file is mapped, nothing is decoded): about
a second per few million documents. A document whose length runs past the end of the
file (a dump cut short) or cannot be a document stops the walk: the documents before it
are whole and restorable, and the scan says where the file went wrong.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bson.raw_bson import RawBSONDocument

from vida_loader.pipeline.clients import RAW_OPTIONS

MIN_DOC = 5  # an empty document: length (4 bytes) and its terminating NUL
MAX_DOC = 48 * 1024 * 1024  # far above the 16 MiB a server stores: anything larger is noise
_LEN = struct.Struct("<i")
READ_CHUNK = 8 << 20  # bytes read at a time from a range


@dataclass(frozen=True)
class FileRange:
    """Documents ``docs`` whole documents in bytes [start, end) of ``path``."""

    id: str
    path: str
    start: int
    end: int
    docs: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "start": self.start, "end": self.end, "docs": self.docs}

    @staticmethod
    def from_json(doc: dict[str, Any], path: str) -> FileRange:
        return FileRange(str(doc["id"]), path, int(doc["start"]), int(doc["end"]), int(doc["docs"]))


@dataclass(frozen=True)
class Scan:
    """A ``.bson`` file cut into ranges; ``bad_at``: the byte offset where its documents
    stop being whole (None: the file ends on a document boundary)."""

    size: int
    docs: int
    ranges: tuple[FileRange, ...]
    bad_at: int | None = None
    bad_reason: str = ""

    @property
    def whole_bytes(self) -> int:
        """Bytes of whole documents from the start of the file."""
        return self.size if self.bad_at is None else self.bad_at


def scan(path: Path, range_bytes: int) -> Scan:
    """Cut ``path`` at document boundaries into ranges of about ``range_bytes`` each."""
    size = path.stat().st_size
    if size == 0:
        return Scan(0, 0, ())
    ranges: list[FileRange] = []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        off = start = docs = in_range = 0
        bad_at: int | None = None
        reason = ""
        unpack = _LEN.unpack_from
        while off < size:
            if size - off < 4:
                bad_at, reason = off, f"{size - off} bytes left, too few for a document"
                break
            (n,) = unpack(mm, off)
            if n < MIN_DOC or n > MAX_DOC:
                bad_at, reason = off, f"a document length of {n} bytes, which is impossible"
                break
            if off + n > size:
                bad_at = off
                reason = f"the document there needs {n:,} bytes, the file ends after {size - off:,}"
                break
            if mm[off + n - 1] != 0:
                bad_at, reason = off, "the document there does not end with its NUL byte"
                break
            off += n
            docs += 1
            in_range += 1
            if off - start >= range_bytes:
                ranges.append(FileRange(f"r{len(ranges):05d}", str(path), start, off, in_range))
                start, in_range = off, 0
        if off > start:
            ranges.append(FileRange(f"r{len(ranges):05d}", str(path), start, off, in_range))
    return Scan(size, docs, tuple(ranges), bad_at, reason)


def read_range(r: FileRange) -> Iterator[RawBSONDocument]:
    """The documents of ``r``, undecoded, read in large chunks."""
    with open(r.path, "rb") as f:
        f.seek(r.start)
        left = r.end - r.start
        carry = b""
        while left > 0:
            block = f.read(min(READ_CHUNK, left))
            if not block:
                raise OSError(f"'{r.path}' ended before byte {r.end} (changed since the scan?)")
            left -= len(block)
            data = carry + block if carry else block
            view = memoryview(data)
            off = 0
            end = len(data)
            while end - off >= 4:
                (n,) = _LEN.unpack_from(data, off)
                if off + n > end:
                    break
                yield RawBSONDocument(bytes(view[off : off + n]), RAW_OPTIONS)
                off += n
            carry = data[off:]
        if carry:
            raise OSError(f"'{r.path}' has a torn document before byte {r.end}")
