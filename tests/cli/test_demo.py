"""`make demo`'s steps, smaller: two servers, load, plan, run, verify, servers stopped."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import bson
import pytest

from vida_loader.demo import service_orders

pytestmark = pytest.mark.integration


def _demo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vida_loader.demo", *args],
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


def test_demo_steps_run_end_to_end_and_stop_the_servers() -> None:
    proc = _demo("--docs", "2000", "--jobs", "2", "--partitions", "3")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "loaded 2,000 documents" in proc.stdout
    assert "3/3 partitions confirmed on the target" in proc.stdout
    assert "job 'demo': 3/3 partitions confirmed, complete" in proc.stdout
    assert "all 3 partitions match" in proc.stdout
    assert "both servers stopped" in proc.stdout
    ports = _ports(proc.stdout)
    assert len(ports) == 2 and not any(_listening(p) for p in ports)


def test_demo_stops_both_servers_when_a_step_fails() -> None:
    proc = _demo("--docs", "200", "--partitions", "2", VIDA_RANGE_MODE="bogus")
    assert proc.returncode == 2
    assert "step 'plan' failed with exit code 2" in proc.stderr
    ports = _ports(proc.stdout)
    assert len(ports) == 2 and not any(_listening(p) for p in ports)


def test_service_orders_are_the_same_for_the_same_seed() -> None:
    a, b, c = service_orders(50, seed=1), service_orders(50, seed=1), service_orders(50, seed=2)
    assert [bson.encode(d) for d in a] == [bson.encode(d) for d in b]
    assert [d["_id"] for d in a] != [d["_id"] for d in c]
    assert len({d["_id"] for d in a}) == 50
    later = service_orders(50, seed=1, first=50)
    assert later[0]["orderNumber"] == "SO-00000050" and later[0]["_id"] > a[-1]["_id"]
    sizes = [len(bson.encode(d)) for d in a]
    assert 600 < sum(sizes) / len(sizes) < 1600  # about 1 KB each
