"""A quick command line: `--version`, `--help` and `status` load no driver, no terminal
UI, no plotting and no Dask; each command imports what it needs when it runs. A spawned
worker re-imports the CLI module as its main, so it pays for whatever the CLI loads too.
(What that costs in CPU: `make bench-startup`.)"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from vida_loader.job.manifest import Manifest, Partition, save_manifest
from vida_loader.jobfiles import JobFiles
from vida_loader.ordering import RangeMode

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


def _planned_job(folder: Path) -> Path:
    """A job's folder with a manifest, as `plan` leaves it."""
    side = {"uri": "mongodb://h:27017", "hosts": ["h:27017"], "kind": "other", "db": "d"}
    m = Manifest(
        job="d.c",
        source={**side, "collection": "c"},
        target={**side, "collection": "c"},
        stats={"count": 3, "size_bytes": 300, "avg_doc_bytes": 100.0, "id_brackets": []},
        split={"range_mode": "typed", "partitions": 1},
        partitions=(Partition("p00000", RangeMode.TYPED, None, None, None, 3, 300),),
    )
    path = JobFiles(folder, "d.c").manifest
    path.parent.mkdir(parents=True)
    save_manifest(dataclasses.replace(m, fingerprint=m.compute_fingerprint()), path)
    return folder


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["run", "--help"], ["status"]])
def test_the_cli_loads_nothing_heavy_to_answer(args: list[str], tmp_path: Path) -> None:
    if args == ["status"]:
        args = ["status", "--manifest-dir", str(_planned_job(tmp_path))]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(proc.stdout.split())
    assert sorted(loaded & set(HEAVY)) == [], f"vida-loader {args[0]} loaded these"
