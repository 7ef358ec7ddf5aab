"""Splitting a .bson file at document boundaries: the ranges cover every whole document
once, in order; a file cut short or corrupt is found at the right byte offset."""

from __future__ import annotations

from pathlib import Path

import bson
import pytest

from vida_loader.dump.bson_file import read_range, scan


def written(tmp_path: Path, n: int) -> tuple[Path, list[bytes]]:
    docs = [bson.encode({"_id": i, "s": "x" * (i % 97)}) for i in range(n)]
    path = tmp_path / "c.bson"
    path.write_bytes(b"".join(docs))
    return path, docs


@pytest.mark.parametrize("range_bytes", [1, 500, 4096, 10**9])
def test_ranges_hold_every_document_once_in_order(tmp_path: Path, range_bytes: int) -> None:
    path, docs = written(tmp_path, 300)
    found = scan(path, range_bytes)
    assert found.bad_at is None and found.docs == 300 and found.size == path.stat().st_size
    assert found.ranges[0].start == 0 and found.ranges[-1].end == found.size
    for a, b in zip(found.ranges, found.ranges[1:], strict=False):
        assert a.end == b.start
    got = [bytes(d.raw) for r in found.ranges for d in read_range(r)]
    assert got == docs
    assert sum(r.docs for r in found.ranges) == 300
    if range_bytes == 1:
        assert len(found.ranges) == 300  # one document per range at the smallest


def test_a_file_cut_inside_its_last_document_is_found_where_it_breaks(tmp_path: Path) -> None:
    path, docs = written(tmp_path, 20)
    whole = sum(len(d) for d in docs[:-1])
    path.write_bytes(path.read_bytes()[: whole + 9])
    found = scan(path, 10**9)
    assert found.bad_at == whole and found.docs == 19
    assert "needs" in found.bad_reason
    assert [bytes(d.raw) for r in found.ranges for d in read_range(r)] == docs[:-1]


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"\x01\x00", "too few"),
        (b"\x02\x00\x00\x00\x00", "impossible"),
        (b"\x06\x00\x00\x00\x00\x01", "NUL"),
    ],
)
def test_garbage_after_the_documents_is_named(tmp_path: Path, tail: bytes, reason: str) -> None:
    path, docs = written(tmp_path, 5)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes() + tail)
    found = scan(path, 10**9)
    assert found.bad_at == size and found.docs == 5 and reason in found.bad_reason


def test_an_empty_file_has_no_ranges(tmp_path: Path) -> None:
    path = tmp_path / "e.bson"
    path.write_bytes(b"")
    assert scan(path, 100).ranges == ()
