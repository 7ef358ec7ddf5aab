"""The manual's map of the code (docs/layout.md) names every module and package of the
library, and nothing that is not there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "vida_loader"


def _layout_block() -> str:
    page = (ROOT / "docs" / "layout.md").read_text()
    start = page.index("```\nvida_loader/")
    return page[start : page.index("\n```", start + 3)]


def _entries(block: str) -> set[str]:
    """The first column of the map: the names at the start of each entry line."""
    names: set[str] = set()
    for line in block.splitlines():
        if re.match(r"^  [a-z_]", line):
            names.update(re.split(r"\s{2,}", line.strip())[0].split())
    return names


def test_the_layout_map_matches_the_tree() -> None:
    listed = _entries(_layout_block())
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    packages = {p.parent.name + "/" for p in PACKAGE.glob("*/__init__.py")}
    assert sorted((modules | packages) - listed) == [], "docs/layout.md's map lacks these"
    extra = sorted(listed - modules - packages)
    assert extra == [], "docs/layout.md's map names what the tree lacks"
