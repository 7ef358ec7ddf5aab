"""Imports go one way: the layers contract in pyproject.toml holds (import-linter), and
every module and package of the library stands on one of its floors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "vida_loader"


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return [name.strip() for floor in contract["layers"] for name in floor.split("|")]


def test_no_import_climbs_back_up() -> None:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert found, "import-linter is a test dependency: make install"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this tree, whatever is installed
    proc = subprocess.run(
        [found, "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_every_module_of_the_library_stands_on_a_floor() -> None:
    """A new module or package gets a floor of the contract, or the check would not see it
    climb. A package cut across floors (indexes) is listed by its modules."""
    listed = {name.removeprefix("vida_loader.") for name in _layers()}
    tops = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    tops |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    for top in sorted(tops):
        if top in listed:
            continue
        inner = {p.stem for p in (PACKAGE / top).glob("*.py")} - {"__init__"}
        assert inner, f"vida_loader.{top} stands on no floor of pyproject's layers contract"
        missing = sorted(m for m in inner if f"{top}.{m}" not in listed)
        assert not missing, f"vida_loader.{top}: {missing} stand on no floor"
