"""The live view: what it draws from a snapshot, red while throttling, at most 4 frames a
second, and nothing but the summary's stream when it is off."""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console

from vida_loader.copy.progress import RunProgress, WorkerProgress
from vida_loader.indexes.phase import IndexProgress
from vida_loader.report import live
from vida_loader.report.live import LiveView

RED = "\x1b[1;31m"


def snapshot(**kw: Any) -> RunProgress:
    base: dict[str, Any] = dict(
        docs=12_000,
        bytes=12 * 2**20,
        base_docs=0,
        base_bytes=0,
        est_docs=50_000,
        est_bytes=50 * 2**20,
        elapsed=3.0,
        parts_done=2,
        parts_failed=0,
        parts_running=2,
        parts_total=8,
        repaired=5,
        retries=7,
        throttled=3,
        workers=(
            WorkerProgress("p00003", 4_000, 4 * 2**20, 2.0, "copying"),
            WorkerProgress("p00004", 1_000, 2**20, 1.0, "backing off: the target throttles"),
        ),
        building=(IndexProgress("k_1", 70.0, 450, 1000),),
        indexes_total=4,
    )
    return RunProgress(**(base | kw))


def drawn(p: RunProgress) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=200)
    view = LiveView(out, console=console)
    view(p)
    view.finish()
    return out.getvalue()


def test_the_view_shows_the_bar_the_counters_and_each_worker() -> None:
    text = drawn(snapshot(throttling=True, metered=True, ru=1500.0, ru_now=800.0, ru_budget=1000.0))
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)
    for words in (
        "12,000/50,000 docs (24%)",
        "12.0 MiB/50.0 MiB",
        "partitions 2/8 done, 2 running",
        "repaired 5",
        "retries 7",
        "throttled 3 (throttling now)",
        "RU 1,500  800 of 1,000 RU/s",
        "CPU ",
        "RSS ",
        "p00003",
        "4,000",
        "copying",
        "backing off: the target throttles",
        "index k_1",
        "45%",
        "━",  # the bar
    ):
        assert words in plain, words
    assert f"{RED}throttled 3 (throttling now)" in text


def test_throttles_are_red_only_while_throttling() -> None:
    text = drawn(snapshot(throttling=False, workers=()))
    assert "throttled 3" in text and "throttling now" not in text
    assert f"{RED}throttled" not in text


def test_at_most_four_frames_a_second(monkeypatch: Any) -> None:
    clock = [100.0]
    monkeypatch.setattr(live.time, "monotonic", lambda: clock[0])
    out = io.StringIO()
    view = LiveView(out, console=Console(file=out, force_terminal=True, width=200))
    frames = []
    monkeypatch.setattr(
        view, "_draw", lambda p, now: (frames.append(p.docs), setattr(view, "_drawn", now))
    )
    for i in range(40):  # 40 snapshots in 1 second
        view(snapshot(docs=i))
        clock[0] += 0.025
    assert len(frames) == 4 and frames[0] == 0
