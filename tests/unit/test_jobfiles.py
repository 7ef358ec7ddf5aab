"""The files of partitions/<job>/: declared once, each inside the job's folder, and named
nowhere else in the library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import vida_loader
from vida_loader.jobfiles import JobFiles, append_jsonl, planned_jobs


def test_every_file_is_declared_once_inside_the_jobs_folder(tmp_path: Path) -> None:
    files = JobFiles(tmp_path, "orders")
    paths = files.all()
    assert set(paths) >= {"manifest", "state", "lock", "duplicates", "metrics", "rejects"}
    assert len({p.name for p in paths.values()}) == len(paths)
    assert all(p.parent == tmp_path / "orders" for p in paths.values())
    assert JobFiles.of_folder(files.folder) == files


def _strings(tree: ast.AST) -> list[str]:
    """String constants of the code, docstrings left out."""
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_no_other_module_names_a_job_file() -> None:
    package = Path(vida_loader.__file__).parent
    names = {p.name for p in JobFiles(Path("x"), "j").all().values()}
    for path in package.rglob("*.py"):
        if path.name == "jobfiles.py":
            continue
        strings = _strings(ast.parse(path.read_text()))
        named = sorted({n for n in names for s in strings if n in s})
        assert not named, f"{path.relative_to(package)} names {named}: use JobFiles"


def test_planned_jobs_are_the_folders_with_a_manifest(tmp_path: Path) -> None:
    for job in ("b", "a"):
        JobFiles(tmp_path, job).folder.mkdir()
        JobFiles(tmp_path, job).manifest.write_text("{}")
    (tmp_path / "c").mkdir()  # no manifest: not a job
    assert planned_jobs(tmp_path) == ["a", "b"]


def test_appended_lines_are_whole_json_records(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    append_jsonl(path, [{"a": 1}, {"b": [2]}])
    append_jsonl(path, [{"c": "3"}])
    assert path.read_text().splitlines() == ['{"a":1}', '{"b":[2]}', '{"c":"3"}']


def test_a_torn_last_jsonl_line_is_skipped_a_torn_middle_one_refused(tmp_path: Path) -> None:
    from vida_loader.errors import StateError
    from vida_loader.jobfiles import append_jsonl, read_jsonl

    path = tmp_path / "metrics.jsonl"
    assert read_jsonl(path) == []
    append_jsonl(path, [{"a": 1}, {"a": 2}])
    with path.open("ab") as f:
        f.write(b'{"a": 3, "b"')  # killed mid-append
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_bytes(b'{"a": 1}\n{"a"\n{"a": 3}\n')
    with pytest.raises(StateError, match="line 2"):
        read_jsonl(path)
