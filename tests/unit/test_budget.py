"""The run's request-unit budget: a token bucket that commands wait on, shared by the
workers; its adaptive rate; and which budget a run gets."""

from __future__ import annotations

import multiprocessing

import pytest

from vida_loader.errors import UsageError
from vida_loader.ru.budget import CUT, TARGET, UNBOUNDED, RuBudget, plan_budget

CTX = multiprocessing.get_context("spawn")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_commands_wait_until_the_bucket_is_out_of_debt() -> None:
    clock = Clock()
    b = RuBudget(CTX, 1000.0, clock=clock)
    assert b.acquire(500.0, clock.sleep) == 0.0  # the first goes at once, into debt
    waited = b.acquire(10.0, clock.sleep)
    assert waited == pytest.approx(0.5)  # 500 RU of debt at 1,000 RU/s
    b.settle(-300.0)  # the first cost 200, not 500: credit
    assert b.acquire(10.0, clock.sleep) == 0.0


def test_a_second_spends_about_the_rate_whatever_the_page_sizes() -> None:
    clock = Clock()
    b = RuBudget(CTX, 1000.0, clock=clock)
    spent = 0.0
    start = clock.now
    while clock.now - start < 10:
        b.acquire(70.0, clock.sleep)
        spent += 70.0
    assert spent / (clock.now - start) == pytest.approx(1000.0, rel=0.02)


def test_unbounded_never_waits() -> None:
    clock = Clock()
    b = RuBudget(CTX, UNBOUNDED, adaptive=True, clock=clock)
    for _ in range(100):
        assert b.acquire(1e6, clock.sleep) == 0.0
    assert b.page_ru(4) == UNBOUNDED


def test_adaptive_cuts_once_per_second_then_rises_back_to_its_target() -> None:
    clock = Clock()
    b = RuBudget(CTX, 950.0, adaptive=True, ceiling=1000.0, clock=clock)
    b.throttled()
    b.throttled()  # the same storm: one cut
    assert b.rate == pytest.approx(950.0 * CUT)
    clock.now += 1.5  # calm for half a second after the first cut: +1 % of the ceiling
    b.throttled()
    assert b.rate == pytest.approx((950.0 * CUT + 10.0) * CUT)
    for _ in range(200):
        clock.now += 0.5
        b.acquire(0.0, clock.sleep)
    assert b.rate == pytest.approx(1000.0 * TARGET)  # never above the target


def test_unknown_ceiling_learns_it_from_what_was_spent_when_throttled() -> None:
    clock = Clock()
    b = RuBudget(CTX, UNBOUNDED, adaptive=True, clock=clock)
    for _ in range(40):  # 2,000 RU/s for two seconds
        b.acquire(100.0, clock.sleep)
        clock.now += 0.05
    b.throttled()
    assert b.rate == pytest.approx(2000.0 * CUT, rel=0.1)


def test_a_fixed_cap_ignores_throttling() -> None:
    b = RuBudget(CTX, 500.0)
    b.throttled()
    assert b.rate == 500.0
    assert b.page_ru(5) == pytest.approx(10.0)  # a tenth of a second's budget, shared


def _plan(**kw: object) -> object:
    args: dict[str, object] = {
        "metered": True,
        "provisioned": None,
        "max_rus": None,
        "max_rus_percent": None,
        "percent_given": False,
    }
    args.update(kw)
    return plan_budget(**args)  # type: ignore[arg-type]


def test_which_budget_a_run_gets() -> None:
    assert _plan(metered=False) is None
    cap = _plan(max_rus=800.0, max_rus_percent=50.0, provisioned=4000.0)
    assert (cap.rate, cap.adaptive) == (800.0, False)  # type: ignore[attr-defined]
    share = _plan(max_rus_percent=70.0, provisioned=4000.0)
    assert share.rate == pytest.approx(2800.0) and "70%" in share.why  # type: ignore[attr-defined]
    adaptive = _plan(provisioned=4000.0)
    assert adaptive.adaptive and adaptive.ceiling == 4000.0  # type: ignore[attr-defined]
    assert _plan().rate == UNBOUNDED  # type: ignore[attr-defined]
    notes: list[str] = []
    assert _plan(max_rus_percent=70.0, notify=notes.append).adaptive  # type: ignore[attr-defined]
    assert notes and "profile" in notes[0]  # a profile's share, not applicable: a notice


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"metered": False, "max_rus": 100.0}, "--max-rus '100': the source's request charges"),
        (
            {"metered": False, "max_rus_percent": 50.0, "percent_given": True},
            "--max-rus-percent '50'",
        ),
        (
            {"max_rus_percent": 50.0, "percent_given": True},
            "does not tell its provisioned throughput",
        ),
    ],
)
def test_a_budget_that_cannot_be_kept_is_refused(kw: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _plan(**kw)
