"""No function of the library is over 50 lines (its `def` line to its last line), so a
function reads as one step. ruff's PLR0915 counts statements, which lets a function of
few long statements grow past a screen: this counts lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "vida_loader"
LIMIT = 50


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + child.name, (child.end_lineno or child.lineno) - child.lineno + 1
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")


def test_no_function_of_the_library_is_over_50_lines() -> None:
    over = {
        f"{path.relative_to(PACKAGE).as_posix()}:{name}": length
        for path in sorted(PACKAGE.rglob("*.py"))
        for name, length in _functions(ast.parse(path.read_text()))
        if length > LIMIT
    }
    assert over == {}, f"split these into named steps of at most {LIMIT} lines"


def test_the_count_sees_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    ((name, length),) = _functions(ast.parse(f"class C:\n  def f(self):\n{body}\n"))
    assert (name, length) == ("C.f", LIMIT + 1)
