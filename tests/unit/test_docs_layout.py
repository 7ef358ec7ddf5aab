"""The README's map of the code names every module and package of the library, and
nothing that is not there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "vida_loader"


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## How the code is laid out")
    end = readme.index("\n## ", start + 1)
    block = readme[start:end]
    return block[block.index("```") : block.rindex("```")]


def _entries(block: str) -> set[str]:
    """The first column of the map: the names at the start of each entry line."""
    names: set[str] = set()
    for line in block.splitlines():
        if re.match(r"^  [a-z_]", line):
            names.update(re.split(r"\s{2,}", line.strip())[0].split())
    return names


def test_the_readme_map_matches_the_tree() -> None:
    listed = _entries(_layout_block())
    modules = {p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    packages = {p.parent.name + "/" for p in PACKAGE.glob("*/__init__.py")}
    assert sorted((modules | packages) - listed) == [], "README's map lacks these"
    assert sorted(listed - modules - packages) == [], "README's map names what the tree lacks"
