"""No function of the library is over 50 lines (its `def` line to its last line), so a
function reads as one step. ruff's PLR0915 counts statements, which lets a function of
few long statements grow past a screen: this counts lines.

The functions still over the limit are listed with the length none may pass; a split
takes one off the list (a test fails while a function off the list still stands in it),
and no other function may pass 50 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "vida_loader"
LIMIT = 50
STILL_LONGER = {
    "dev/demo.py:run_demo": 110,
    "generate/runner.py:_generate": 61,
    "generate/service_orders.py:ServiceOrders.__init__": 63,
    "generate/service_orders.py:ServiceOrders._build_catalog": 53,
    "generate/service_orders.py:ServiceOrders._one": 73,
}


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + child.name, (child.end_lineno or child.lineno) - child.lineno + 1
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")


def _lengths() -> dict[str, int]:
    return {
        f"{path.relative_to(PACKAGE).as_posix()}:{name}": length
        for path in sorted(PACKAGE.rglob("*.py"))
        for name, length in _functions(ast.parse(path.read_text()))
    }


def test_no_function_is_over_50_lines_or_longer_than_listed() -> None:
    over = {
        name: length
        for name, length in _lengths().items()
        if length > STILL_LONGER.get(name, LIMIT)
    }
    assert over == {}, f"split these into named steps of at most {LIMIT} lines"


def test_the_list_of_longer_functions_only_shrinks() -> None:
    lengths = _lengths()
    done = sorted(name for name in STILL_LONGER if lengths.get(name, 0) <= LIMIT)
    assert done == [], "these are within the limit now: take them off STILL_LONGER"
