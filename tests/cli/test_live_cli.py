"""The live view as a user sees it: under a pseudo-terminal the run draws the bar and a
throttle counter that goes up while the target throttles; into a file, plain lines only."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from support import fail_inserts

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")


def run_in_pty(args: list[str], timeout: float) -> tuple[int, str]:
    """The CLI with stderr (and stdout) on a 160x40 pseudo-terminal: (exit code, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vida_loader", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _w, _x = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        os.close(master)
    return code, b"".join(chunks).decode(errors="replace")


@pytest.mark.timeout(180)
def test_a_throttled_run_under_a_terminal_shows_bars_and_a_rising_throttle_count(
    planned: Path, tdb: DB
) -> None:
    # Every insert held 150 ms and throttled (16500), 6 times: the run backs off a while.
    fail_inserts(tdb, {"times": 6}, errorCode=16500, blockConnection=True, blockTimeMS=150)
    code, out = run_in_pty(["run", "-j", "1", "--batch-size", "250"], timeout=150)
    assert code == 0, out[-3000:]
    assert "\x1b[" in out  # drawn, not plain lines
    plain = ANSI.sub("", out)
    assert "━" in plain and "partitions 3/3 done" in plain
    counts = [int(n) for n in re.findall(r"throttled (\d+)", plain)]
    assert counts and max(counts) >= 6 and len(set(counts)) >= 3, counts  # it went up
    assert "backing off: the target throttles" in plain
    assert "run of job 'j' finished" in plain
    assert tdb.dst.count_documents({}) == 3000


def test_into_a_file_the_progress_is_plain_lines(planned: Path, tmp_path: Path) -> None:
    err = tmp_path / "err.txt"
    with err.open("w") as f:
        proc = subprocess.run(
            [sys.executable, "-m", "vida_loader", "run", "-j", "1"],
            stdout=subprocess.DEVNULL,
            stderr=f,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0
    text = err.read_text()
    assert "run: 3,000/3,000 docs" in text and "\x1b" not in text


def test_quiet_prints_only_the_summary(planned: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vida_loader", "run", "-j", "1", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("run of job 'j' finished")


def test_generate_and_verify_draw_a_bar_under_a_terminal(planned: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "g.bson"
    code, out = run_in_pty(["generate", "--total", "3000", "--out", str(out_file), "-j", "1"], 60)
    assert code == 0, out[-2000:]
    plain = ANSI.sub("", out)
    assert "\x1b[" in out and "━" in plain and "3,000/3,000 docs (100%)" in plain
    assert run_in_pty(["run", "-j", "1", "-q"], 60)[0] == 0
    code, out = run_in_pty(["verify"], 60)
    plain = ANSI.sub("", out)
    assert code == 0 and "━" in plain and "3/3 partitions counted" in plain
    assert "all 3 partitions match" in plain
