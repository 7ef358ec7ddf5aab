"""A quick command line: `--version` and `--help` load no driver, no terminal UI, no
plotting and no Dask; each command imports what it needs when it runs. A spawned worker
re-imports the CLI module as its main, so it pays for whatever the CLI loads too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
HEAVY = ("pymongo", "rich", "matplotlib", "distributed", "faker", "psutil")

PROBE = """
import contextlib, io, sys
from vida_loader.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
assert code == 0, code
print(" ".join(sorted({m.split(".")[0] for m in sys.modules})))
"""


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"]])
def test_the_cli_loads_nothing_heavy_to_answer(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(proc.stdout.split())
    assert sorted(loaded & set(HEAVY)) == [], f"vida-loader {' '.join(args)} loaded these"
