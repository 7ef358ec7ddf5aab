"""The library passes ruff as configured in pyproject.toml (complexity rules included), so
CI, which runs only the tests, keeps it that way."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert found, "ruff is a test dependency: make install"
    return found


def test_ruff_finds_nothing_in_the_library_tests_benchmarks_and_examples() -> None:
    proc = subprocess.run(
        [_ruff(), "check", "--no-cache", "vida_loader", "tests", "benchmarks", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def test_the_complexity_rules_are_on_without_exceptions() -> None:
    config = (ROOT / "pyproject.toml").read_text()
    assert '"C901"' in config and '"PLR0915"' in config
    assert "per-file-ignores" not in config
    assert "noqa: C901" not in "".join(p.read_text() for p in (ROOT / "vida_loader").rglob("*.py"))
