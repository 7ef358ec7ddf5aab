"""The scheduler with fake tasks: no server. Hand-out, re-runs, held-back keys, dead
worker processes, task bugs and interrupts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fake_tasks
import pytest

from vida_loader.execution.events import Event, Moved, Started
from vida_loader.execution.pool import Pool, make_pool
from vida_loader.execution.scheduler import DIED, Scheduler


class Recorder:
    """A handler that runs ``fn(key, *extra)`` and records everything it is told."""

    def __init__(self, fn: Callable[..., int], *extra: Any, attempts: int = 3) -> None:
        self.fn = fn
        self.extra = extra
        self.attempts = attempts
        self.results: dict[int, int] = {}
        self.order: list[int] = []  # keys in the order they were handed out
        self.got: list[Event] = []
        self.lost_why: list[str] = []
        self.lost_died: list[bool] = []
        self.tries: dict[int, int] = {}
        self.ticks = 0
        self.refuse: set[int] = set()
        self.on_tick: Callable[[], None] = lambda: None

    def task(self, key: int) -> tuple[Callable[..., int], tuple[Any, ...]]:
        self.order.append(key)
        return self.fn, (key, *self.extra)

    def admit(self, key: int) -> bool:
        return key not in self.refuse

    def lost(self, key: int, why: str, died: bool) -> int:
        self.lost_why.append(why)
        self.lost_died.append(died)
        return -1

    def finished(self, key: int, result: int) -> bool:
        self.tries[key] = self.tries.get(key, 0) + 1
        if result == -1 and self.tries[key] < self.attempts:
            return True
        self.results[key] = result
        return False

    def events(self, events: list[Event]) -> None:
        self.got += events

    def tick(self) -> None:
        self.ticks += 1
        self.on_tick()


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_task_runs_once_and_its_events_arrive_typed(jobs: int) -> None:
    h = Recorder(fake_tasks.square)
    with Scheduler[int, int](jobs, tick=0.05) as s:
        assert s.run(range(6), h) == []
    assert h.results == {n: n * n for n in range(6)}
    assert sorted(h.order) == list(range(6))
    started = sorted(e.task for e in h.got if isinstance(e, Started))
    moved = {e.task: (e.docs, e.bytes) for e in h.got if isinstance(e, Moved)}
    assert started == sorted(f"t{n}" for n in range(6))
    assert moved == {f"t{n}": (n, n * 10) for n in range(6)}


def test_a_failed_task_runs_again_before_anything_new(tmp_path: Path) -> None:
    h = Recorder(fake_tasks.flaky, str(tmp_path))
    with Scheduler[int, int](1, tick=0.05) as s:
        s.run([0, 1, 2], h)
    assert h.order == [0, 0, 1, 1, 2, 2]
    assert h.results == {0: 0, 1: 1, 2: 2}


def test_keys_never_admitted_come_back_in_order() -> None:
    h = Recorder(fake_tasks.square)
    h.refuse = {1, 3}
    with Scheduler[int, int](1, tick=0.05) as s:
        assert s.run([0, 1, 2, 3, 4], h) == [1, 3]
    assert sorted(h.results) == [0, 2, 4]


def test_a_refused_key_waits_until_admitted() -> None:
    """Admission is asked again each round: a key refused while another runs goes once
    that one has finished."""
    h = Recorder(fake_tasks.square)
    h.refuse = {1}
    original = h.finished

    def finished(key: int, result: int) -> bool:
        h.refuse.discard(1)  # the first result lets key 1 in
        return original(key, result)

    h.finished = finished  # type: ignore[method-assign]
    with Scheduler[int, int](1, tick=0.05) as s:
        assert s.run([1, 0], h) == []
    assert h.order == [0, 1]


def test_at_most_slots_tasks_are_submitted_at_once() -> None:
    submitted: list[int] = []
    running = {"now": 0, "most": 0}
    lock = threading.Lock()

    class Counting(Recorder):
        def task(self, key: int) -> tuple[Callable[..., int], tuple[Any, ...]]:
            with lock:
                running["now"] += 1
                running["most"] = max(running["most"], running["now"])
            submitted.append(key)
            return super().task(key)

        def finished(self, key: int, result: int) -> bool:
            with lock:
                running["now"] -= 1
            return super().finished(key, result)

    h = Counting(fake_tasks.square)
    with Scheduler[int, int](2, slots=3, tick=0.05) as s:
        s.run(range(10), h)
    assert running["most"] == 3 and len(submitted) == 10


def test_a_dead_worker_process_is_lost_then_rerun_on_a_new_pool(tmp_path: Path) -> None:
    # A dead process fails every task its pool was running: those are lost too, once.
    h = Recorder(fake_tasks.die_once, str(tmp_path), attempts=3)
    with Scheduler[int, int](2, tick=0.05) as s:
        assert s.run([0, 1, 2, 3], h) == []
        assert s.replaced >= 1
    assert h.results == {n: n for n in range(4)}
    assert DIED in h.lost_why and all(h.lost_died)


def test_a_task_that_raises_is_lost_with_its_message_not_as_a_dead_worker() -> None:
    h = Recorder(fake_tasks.broken, attempts=1)
    with Scheduler[int, int](1, tick=0.05) as s:
        s.run([7], h)
    assert h.results == {7: -1}
    assert h.lost_why == ["RuntimeError: bug in task 7"] and h.lost_died == [False]


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_interrupt_cancels_the_running_task_and_propagates(tmp_path: Path, jobs: int) -> None:
    h = Recorder(fake_tasks.endless, str(tmp_path))
    beat = tmp_path / "beat0"

    def interrupt_once_running() -> None:
        if beat.exists():
            raise KeyboardInterrupt

    h.on_tick = interrupt_once_running
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), Scheduler[int, int](jobs, tick=0.05) as s:
        s.run([0, 1], h)
    assert time.monotonic() - started < 30  # the endless task did not run to its end
    # Stopped means stopped: the worker writes no more after the scheduler has left.
    seen = beat.read_text()
    time.sleep(0.3)
    assert beat.read_text() == seen
    assert h.order == [0] if jobs == 1 else sorted(h.order) == [0, 1]


def test_cleanup_runs_when_an_inline_pool_closes() -> None:
    calls: list[str] = []
    pool: Pool = make_pool(1, cleanup=lambda: calls.append("closed"))
    assert pool.submit(fake_tasks.square, 3).result(timeout=10) == 9
    pool.close()
    assert calls == ["closed"]


def test_execution_knows_no_database() -> None:
    """The scheduler, pool and events run any task: nothing in them imports a driver or
    another part of vida-loader (a Dask executor will stand in the pool's place)."""
    import ast

    import vida_loader.execution as execution

    folder = Path(execution.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                module = node.module if isinstance(node, ast.ImportFrom) else None
                for name in [*names, module or ""]:
                    assert not name.startswith(("pymongo", "bson")), f"{path.name}: {name}"
                    if name.startswith("vida_loader"):
                        assert name.startswith("vida_loader.execution"), f"{path.name}: {name}"
