"""``generate`` into a real server: exactly N documents, byte for byte, whatever breaks."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from support import fail_inserts, listen, raw_hashes, wait_for

from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint
from vida_loader.generate.runner import GenerateConfig, generate
from vida_loader.generate.service_orders import ServiceOrders
from vida_loader.retry import RetryPolicy

pytestmark = pytest.mark.integration

SEED = 11
_EXPECTED: dict[int, Counter[str]] = {}


def expected_hashes(total: int, seed: int = SEED) -> Counter[str]:
    """SHA-256 multiset of documents 0..total-1 of the seed, built in this process."""
    if total not in _EXPECTED:
        docs = ServiceOrders(seed).encode_range(0, total)
        _EXPECTED[total] = Counter(hashlib.sha256(d).hexdigest() for d in docs)
    return _EXPECTED[total]


def config(target: LocalServer, tdb: Any, **kw: Any) -> GenerateConfig:
    kw.setdefault("seed", SEED)
    kw.setdefault("retry", RetryPolicy(base_ms=10, cap_ms=200))
    return GenerateConfig(target=Endpoint(target.uri, tdb.name, "orders"), **kw)


def test_w0_inserts_the_server_drops_are_sent_again(target_server: LocalServer, tdb: Any) -> None:
    # Unacknowledged inserts that fail vanish without a word: five batches are lost.
    fail_inserts(tdb, {"skip": 2, "times": 5}, errorCode=11600)
    result = generate(config(target_server, tdb, total=3000, write_concern="0", batch_size=100))
    assert result.docs == 3000 and not result.failed
    assert result.repaired >= 100, "the fail point did not drop anything: the test tests nothing"
    assert raw_hashes(tdb.orders) == expected_hashes(3000)


def test_a_clean_w0_run_is_confirmed_by_one_count_of_the_collection(
    target_server: LocalServer, tdb: Any
) -> None:
    listener = next(iter_listener := listen(target_server.port))
    try:
        result = generate(config(target_server, tdb, total=20_000, write_concern="0"))
    finally:
        next(iter_listener, None)
    assert result.docs == 20_000 and result.repaired == 0
    # not one count or _id scan per slice (3 slices): one count of the whole collection;
    # the one find is the look at the start that sees an empty collection
    assert listener.names.count("aggregate") == 1 and listener.names.count("find") == 1
    assert raw_hashes(tdb.orders) == expected_hashes(20_000)


def test_throttled_acknowledged_inserts_are_retried(target_server: LocalServer, tdb: Any) -> None:
    fail_inserts(tdb, {"times": 4}, errorCode=16500, errmsg="Request rate is large")
    result = generate(config(target_server, tdb, total=2500, batch_size=200))
    assert result.docs == 2500 and not result.failed
    assert result.throttled == 4 and result.repaired == 0
    assert raw_hashes(tdb.orders) == expected_hashes(2500)


def test_processes_write_the_same_documents_as_one_worker(
    target_server: LocalServer, tdb: Any
) -> None:
    result = generate(config(target_server, tdb, total=9000, jobs=2, batch_size=500))
    assert result.docs == 9000
    assert raw_hashes(tdb.orders) == expected_hashes(9000)


def test_a_slice_the_target_keeps_refusing_is_reported_not_counted(
    target_server: LocalServer, tdb: Any
) -> None:
    fail_inserts(tdb, "alwaysOn", errorCode=13)  # Unauthorized: no retry clears it
    result = generate(config(target_server, tdb, total=100))
    assert result.docs == 0
    assert len(result.failed) == 1 and "code 13" in result.failed[0][1]


def test_kill_9_midway_then_the_same_command_completes_it(
    target_server: LocalServer, tdb: Any
) -> None:
    total = 6000
    cmd = [
        sys.executable,
        "-m",
        "vida_loader",
        "generate",
        "--total",
        str(total),
        "--seed",
        str(SEED),
        "-j",
        "2",
        "--batch-size",
        "200",
        "--target-uri",
        target_server.uri,
        "--target-db",
        tdb.name,
        "--target-collection",
        "orders",
    ]
    fail_inserts(tdb, "alwaysOn", blockConnection=True, blockTimeMS=150)
    proc = subprocess.Popen(
        cmd,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: tdb.orders.estimated_document_count() >= 800, 60, "inserts to land")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    kept = tdb.orders.count_documents({})
    assert 0 < kept < total, "the kill did not land midway"
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    m = re.search(r"([\d,]+) were already there", again.stdout)
    assert m and int(m.group(1).replace(",", "")) >= kept - 400, again.stdout
    assert raw_hashes(tdb.orders) == expected_hashes(total)


def test_ctrl_c_reports_what_is_confirmed_and_the_same_command_finishes(
    target_server: LocalServer, tdb: Any
) -> None:
    total = 5000
    cmd = [sys.executable, "-m", "vida_loader", "generate", "--total", str(total), "-j", "1"]
    cmd += ["--seed", str(SEED), "--batch-size", "100", "--target-uri", target_server.uri]
    cmd += ["--target-db", tdb.name, "--target-collection", "orders"]
    fail_inserts(tdb, "alwaysOn", blockConnection=True, blockTimeMS=100)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: tdb.orders.estimated_document_count() >= 300, 60, "inserts to land")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    m = re.search(r"interrupted: ([\d,]+) of 5,000 documents confirmed on the target", err)
    assert m and f"the same command with --seed {SEED} completes it" in err, err[-2000:]
    assert int(m.group(1).replace(",", "")) <= tdb.orders.count_documents({}) < total
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert raw_hashes(tdb.orders) == expected_hashes(total)
