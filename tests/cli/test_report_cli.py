"""``vida-loader report`` on a real run: a self-contained page whose plots are PNGs with
their titles, and whose summary agrees with ``status --json`` and the last verify."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.database import Database
from support import fail_inserts, start_slow_run, wait_for

from vida_loader.cli import main
from vida_loader.jobfiles import read_jsonl

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
PNG = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """The headings, images and summary rows of the report."""

    def __init__(self) -> None:
        super().__init__()
        self.h2: list[str] = []
        self.images: list[dict[str, str]] = []
        self.rows: dict[str, str] = {}
        self.scripts = 0
        self._in: str | None = None
        self._th = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append({k: v or "" for k, v in attrs})
        if tag == "script" or (tag == "link" and dict(attrs).get("href", "").startswith("http")):
            self.scripts += 1
        self._in = tag

    def handle_data(self, data: str) -> None:
        if self._in == "h2":
            self.h2.append(data)
        elif self._in == "th":
            self._th = data
        elif self._in == "td":
            self.rows[self._th] = data


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def in_chromium(page: Path, tmp_path: Path) -> tuple[str, Path]:
    """The DOM as headless Chromium built it from ``page``, and a screenshot of it."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make test` installs it"
    shot = tmp_path / "shot.png"
    common = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    ).stdout
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1100,3200", page.as_uri()],
        capture_output=True,
        timeout=90,
        check=True,
    )
    return dom, shot


def assert_plots_drawn(shot: Path, plots: int) -> None:
    """The screenshot shows ``plots`` figures: rows of the page where matplotlib's blue
    (the lines, bars and points of every plot) is drawn, in that many separate bands."""
    import matplotlib.image

    img = matplotlib.image.imread(shot)[:, :, :3]
    blue = (
        (abs(img[:, :, 0] - 0.12) < 0.08)
        & (abs(img[:, :, 1] - 0.47) < 0.08)
        & (abs(img[:, :, 2] - 0.71) < 0.08)
    )
    rows = blue.sum(axis=1) > 0
    bands = int(rows[0]) + int(((~rows[:-1]) & rows[1:]).sum())
    assert blue.sum() > 500, "no plot drawn"
    assert bands >= plots, (bands, plots)


@pytest.mark.timeout(180)
def test_the_report_of_a_run_shows_its_plots_and_agrees_with_status(
    planned: Path, tdb: DB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Inserts held 300 ms: a run of several seconds, so metrics.jsonl has several records.
    fail_inserts(tdb, "alwaysOn", blockConnection=True, blockTimeMS=300)
    proc = subprocess.run(
        [sys.executable, "-m", "vida_loader", "run", "-j", "1", "--batch-size", "100", "-q"],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    assert proc.returncode == 0, proc.stderr
    assert main(["verify"]) == 0
    capsys.readouterr()
    out = tmp_path / "rep"
    assert main(["report", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"{out / 'report.html'}" in said and "throughput.png" in said

    page = Page()
    page.feed((out / "report.html").read_text())
    assert page.scripts == 0
    assert "Throughput over time" in page.h2
    assert "Partition durations (stragglers and skew)" in page.h2
    assert "Request units per second against the budget" not in page.h2  # nothing metered
    assert len(page.images) == len(page.h2) >= 4
    for img in page.images:
        data = base64.b64decode(img["src"].removeprefix("data:image/png;base64,"))
        assert data.startswith(PNG) and len(data) > 5000, img["alt"]
        assert img["alt"] in page.h2
        assert (out / Path(img["alt"]).name).parent == out
    assert (out / "throughput.png").read_bytes().startswith(PNG)

    seen_dom, shot = in_chromium(out / "report.html", tmp_path)
    for title in page.h2:
        assert f"<h2>{title}</h2>" in seen_dom  # as the browser built the page
    assert_plots_drawn(shot, len(page.images))

    assert main(["status", "--json"]) == 0
    status = orjson.loads(capsys.readouterr().out)
    assert page.rows["state"] == status["state"] == "complete"
    assert page.rows["documents"].startswith(f"{status['documents']['confirmed']:,} confirmed")
    assert page.rows["partitions"].startswith("3/3 confirmed")
    assert re.search(
        r": all partitions match \(source 3,000, target 3,000", page.rows["last verify"]
    )


def test_a_job_that_never_ran_has_nothing_to_report(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report"]) == 2
    assert "job 'j' has not run yet: nothing to report" in capsys.readouterr().err
    assert not (planned / "report").exists()


@pytest.mark.timeout(180)
def test_metrics_survive_kill_9_and_the_report_works_during_and_after_a_run(
    planned: Path, tdb: DB, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    metrics = planned / "metrics.jsonl"

    def run_records() -> list[dict[str, Any]]:
        return [r for r in read_jsonl(metrics) if r["kind"] == "run"]

    proc = start_slow_run(tdb, 300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(run_records()) >= 1, 60, "a metrics record")
        assert main(["report", "--out", str(tmp_path / "during")]) == 0  # while it runs
        during = Page()
        during.feed((tmp_path / "during" / "report.html").read_text())
        assert during.rows["state"] == "running"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    with metrics.open("ab") as f:
        f.write(b'{"kind": "run", "time": "2026-')  # as if killed mid-append
    records = run_records()
    assert records and {
        "docs",
        "bytes",
        "docs_s",
        "partitions_running",
        "retries",
        "throttled",
        "wait_s",
        "rss_bytes",
    } <= set(records[-1])
    capsys.readouterr()
    assert main(["report", "--out", str(tmp_path / "after")]) == 0
    after = Page()
    after.feed((tmp_path / "after" / "report.html").read_text())
    assert after.rows["state"] == "stopped"
    # The next run cuts the torn line before appending: every line reads.
    assert main(["run", "-j", "2"]) == 0
    assert all(line.endswith(b"}") for line in metrics.read_bytes().splitlines())
    assert len(run_records()) > len(records)
