"""`make demo`'s steps, smaller: two servers, load, plan, run, verify, servers stopped."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _demo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vida_loader.dev.demo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, **env),
    )


def _ports(out: str) -> list[int]:
    return [
        int(p) for p in re.findall(r"^(?:source|target) mongodb://127\.0\.0\.1:(\d+)/", out, re.M)
    ]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_demo_steps_run_end_to_end_and_stop_the_servers(tmp_path: Path) -> None:
    report = tmp_path / "report"
    proc = _demo("--docs", "2000", "--jobs", "2", "--partitions", "3", "--report-dir", str(report))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "generated 2,000 of 2,000 service-orders documents into demo.orders" in proc.stdout
    assert "a copy can start" in proc.stdout
    assert "3/3 partitions confirmed on the target" in proc.stdout
    assert "job 'demo': 3/3 partitions confirmed, complete" in proc.stdout
    assert "all 3 partitions match" in proc.stdout
    assert "created index order_id_1 {'unique': True}" in proc.stdout
    assert "indexes     4 to build besides _id" in proc.stdout
    assert "indexes     4/4 built (4 builds by this run" in proc.stdout
    assert "target demo.orders holds the 4 indexes of job 'demo' as defined" in proc.stdout
    assert re.search(r"dump of demo.orders \(job 'demo'\) in [0-9:]+: 2,000 documents", proc.stdout)
    assert "into demo.orders_restored (job 'restore-demo')" in proc.stdout
    assert "2,000 inserted, 0 already there" in proc.stdout
    assert "indexes     4 of 4 built" in proc.stdout
    assert "report of job 'demo'" in proc.stdout and (report / "report.html").is_file()
    # The second job, through examples/transforms/rename_fields.py.
    assert "3 documents dropped, 2 rejected (at most 1,000)" in proc.stdout
    assert "2,015 documents in the source, 2,010 in the target" in proc.stdout
    assert "transformed by rename_fields.py:RenameFields" in proc.stdout
    assert proc.stdout.count("all 3 partitions match") == 2
    # The source changed after the copy: deep verify finds the 5 orders, repair fixes them.
    assert "0 missing, 0 extra, 5 altered" in proc.stdout
    assert "0 inserted, 5 replaced, 0 deleted" in proc.stdout
    assert "the application wrote 20 new orders, completed 10 and deleted 5" in proc.stdout
    assert "follow of job 'demo' caught up" in proc.stdout
    assert re.search(r"writes applied \(\d+ upserts, 5 deletes\)", proc.stdout)
    assert "all 2,015 documents are the same on both sides" in proc.stdout
    assert "both servers stopped" in proc.stdout
    ports = _ports(proc.stdout)
    assert len(ports) == 2 and not any(_listening(p) for p in ports)


def test_demo_stops_both_servers_when_a_step_fails(tmp_path: Path) -> None:
    proc = _demo(
        "--docs",
        "200",
        "--partitions",
        "2",
        "--report-dir",
        str(tmp_path / "r"),
        VIDA_RANGE_MODE="bogus",
    )
    assert proc.returncode == 2
    assert "step 'config' failed with exit code 2" in proc.stderr  # config check validates all
    ports = _ports(proc.stdout)
    assert len(ports) == 2 and not any(_listening(p) for p in ports)


def test_the_cosmos_demo_shows_request_units_and_stops_everything(tmp_path: Path) -> None:
    report = tmp_path / "report"
    proc = _demo(
        "--docs",
        "2000",
        "--jobs",
        "2",
        "--partitions",
        "2",
        "--cosmos",
        "2000",
        "--report-dir",
        str(report),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "RU/KB measured on 3 pages" in proc.stdout
    assert "capped at 1,400 RU/s (70% of the 2,000 provisioned" in proc.stdout
    counted = re.search(r"RU +([\d,]+) request units charged by the source", proc.stdout)
    charged = re.search(r"stand-in charged ([\d,]+) RU for the run", proc.stdout)
    assert counted and charged, proc.stdout[-2000:]
    got, want = (int(m.group(1).replace(",", "")) for m in (counted, charged))
    assert abs(got - want) <= 0.05 * want
    assert "RU/s)" in proc.stderr  # the progress line
    port = re.search(r"source as Cosmos DB: mongodb://127\.0\.0\.1:(\d+)/", proc.stdout)
    assert port and not _listening(int(port.group(1)))
    ports = _ports(proc.stdout)
    assert len(ports) == 2 and not any(_listening(p) for p in ports)
