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


def _entry_texts(block: str) -> dict[str, str]:
    """Each entry of the map: its first-column names and the text of all its lines."""
    entries: dict[str, str] = {}
    name = ""
    for line in block.splitlines():
        if re.match(r"^  [a-z_]", line):
            name = re.split(r"\s{2,}", line.strip())[0]
            entries[name] = line
        elif name and line.startswith("    "):
            entries[name] += " " + line.strip()
    return entries


def test_each_package_entry_names_every_module_of_it() -> None:
    missing = []
    for name, text in _entry_texts(_layout_block()).items():
        if not name.endswith("/"):
            continue
        words = set(re.findall(r"[a-z_]+", text.replace(".py", "")))
        modules = {p.stem for p in (PACKAGE / name).glob("*.py")} - {"__init__"}
        missing += [f"{name}{m}.py" for m in sorted(modules - words)]
    assert missing == [], "docs/layout.md's map does not name these"
