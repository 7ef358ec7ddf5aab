"""The rejects log: each document once, the two files agree after a kill at any point."""

from __future__ import annotations

from pathlib import Path

import bson

from vida_loader.jobfiles import JobFiles
from vida_loader.transform.plugin import Reject
from vida_loader.transform.rejects import RejectsLog, read_rejects


def reject(i: int, reason: str = "bad") -> Reject:
    return Reject(bson.encode({"_id": i, "x": "y" * i}), f"{reason} {i}")


def test_each_document_is_recorded_once_and_read_back(tmp_path: Path) -> None:
    files = JobFiles(tmp_path, "j")
    files.folder.mkdir()
    log = RejectsLog(files, fresh=True)
    assert log.add("p00000", [reject(1), reject(2)], run=1) == 2
    assert log.add("p00000", [reject(2), reject(3)], run=1) == 1  # 2 came again: resumed
    assert log.add("p00001", [reject(2)], run=1) == 1  # another partition's _id 2
    again = RejectsLog(files, fresh=False)  # the next run
    assert again.add("p00000", [reject(1), reject(4)], run=2) == 1
    got = read_rejects(files.folder)
    assert [(line["partition"], doc["_id"]) for line, doc in got] == [
        ("p00000", 1),
        ("p00000", 2),
        ("p00000", 3),
        ("p00001", 2),
        ("p00000", 4),
    ]
    assert [line["reason"] for line, _doc in got][:2] == ["bad 1", "bad 2"]
    assert got[0][0]["_id"] == {"$numberInt": "1"}
    with files.rejects_bson.open("rb") as f:
        assert [d["_id"] for d in bson.decode_file_iter(f)] == [1, 2, 3, 2, 4]
    assert RejectsLog(files, fresh=True).add("p00000", [reject(1)], run=1) == 1  # --restart


def test_a_kill_between_the_two_writes_leaves_files_that_agree(tmp_path: Path) -> None:
    files = JobFiles(tmp_path, "j")
    files.folder.mkdir()
    RejectsLog(files, fresh=True).add("p00000", [reject(1), reject(2)], run=1)
    with files.rejects_bson.open("ab") as f:
        f.write(reject(3).raw + reject(4).raw[:7])  # written, its line never was; torn
    with files.rejects.open("ab") as f:
        f.write(b'{"partition": "p00000", "_i')  # a torn line
    log = RejectsLog(files, fresh=False)
    assert log.add("p00000", [reject(3)], run=2) == 1
    with files.rejects_bson.open("rb") as f:
        assert [d["_id"] for d in bson.decode_file_iter(f)] == [1, 2, 3]
    assert [doc["_id"] for _line, doc in read_rejects(files.folder)] == [1, 2, 3]
