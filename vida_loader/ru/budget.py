"""The request-unit budget of a run, shared by all its workers (processes or a thread).

A Cosmos DB account throttles (16500) as soon as a second's RU are spent, and a page is
charged after it was read. So the copy paces itself: a token bucket in shared memory
fills at ``rate`` RU per second, holding at most ``burst_s`` seconds of it. Before a
command is sent, its worker waits until the bucket is out of debt, then takes what the
command is expected to cost; once its real charge is read, the difference is settled.
One bucket for the run, not a share per worker: a fast partition uses what a slow one
leaves. Pages are kept to a small share of a second's budget (:meth:`RuBudget.page_ru`)
so that one page never spends a whole second at once.

Adaptive (no ``--max-rus``): the rate starts at the source's provisioned throughput when
known (else unbounded until the first throttle, then at what was spent in the last
second). Each throttle cuts it by ``CUT`` (once per second at most); every second without
one raises it by ``RAISE`` of the ceiling, up to the ceiling. It settles just below what
the source allows while other clients use part of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from multiprocessing import get_context
from multiprocessing.context import SpawnContext
from typing import Any

from vida_loader.errors import UsageError

CUT = 0.9  # rate kept after a throttle
RAISE = 0.02  # of the ceiling, added per second without a throttle
# Of a known ceiling (the provisioned throughput) the adaptive rate aims at: the source
# counts wall-clock seconds, the bucket averages, so running at 100 % would overshoot
# some seconds (a burst, the pages in flight) and be throttled.
TARGET = 0.95
CALM_S = 1.0  # seconds after a cut before the rate rises again
PAGE_SHARE = 0.1  # of a second's budget that all workers' pages in flight may hold
UNBOUNDED = float("inf")

# Slots of the shared array.
_TOKENS, _STAMP, _RATE, _CUT_AT, _CEILING, _SPENT, _WINDOW_AT, _LAST_SECOND = range(8)


class RuBudget:
    """A token bucket of request units shared through spawn (pass it to the workers
    when their processes start: it cannot travel with a task)."""

    def __init__(
        self,
        ctx: SpawnContext,
        rate: float,
        *,
        adaptive: bool = False,
        ceiling: float = UNBOUNDED,
        burst_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adaptive = adaptive
        self.burst_s = burst_s
        self.clock = clock
        self._lock = ctx.Lock()
        self._v: Any = ctx.RawArray("d", 8)
        now = clock()
        self._v[_TOKENS] = 0.0
        self._v[_STAMP] = now
        self._v[_RATE] = rate
        self._v[_CUT_AT] = now - CALM_S  # the first throttle counts
        self._v[_CEILING] = ceiling
        self._v[_WINDOW_AT] = now

    @property
    def rate(self) -> float:
        return float(self._v[_RATE])

    def page_ru(self, workers: int) -> float:
        """The most RU one page should cost: pages of all workers in flight stay within
        ``PAGE_SHARE`` of a second's budget (unbounded: no limit)."""
        rate = self.rate
        return UNBOUNDED if rate == UNBOUNDED else max(1.0, rate * PAGE_SHARE / max(1, workers))

    def _refill(self, now: float) -> None:
        """Under the lock: add what accrued since the last stamp; roll the spend window."""
        v = self._v
        rate = v[_RATE]
        calm_since = max(v[_STAMP], v[_CUT_AT] + CALM_S)
        if self.adaptive and now > calm_since and v[_CEILING] != UNBOUNDED:
            top = v[_CEILING] * TARGET
            rate = v[_RATE] = min(top, rate + RAISE * v[_CEILING] * (now - calm_since))
        if rate != UNBOUNDED:
            v[_TOKENS] = min(rate * self.burst_s, v[_TOKENS] + rate * (now - v[_STAMP]))
        v[_STAMP] = now
        if now - v[_WINDOW_AT] >= 1.0:
            v[_LAST_SECOND] = v[_SPENT] / (now - v[_WINDOW_AT])
            v[_SPENT] = 0.0
            v[_WINDOW_AT] = now

    def acquire(self, expected: float, sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait until the bucket is out of debt, then take ``expected`` RU; the seconds
        waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                self._refill(now)
                v = self._v
                if v[_RATE] == UNBOUNDED or v[_TOKENS] >= 0:
                    v[_TOKENS] -= expected
                    v[_SPENT] += expected
                    return waited
                delay = -v[_TOKENS] / v[_RATE]
            delay = min(max(delay, 0.001), 0.25)  # look again soon: the rate may change
            sleep(delay)
            waited += delay

    def settle(self, difference: float) -> None:
        """A command cost ``difference`` RU more (less, if negative) than it took."""
        with self._lock:
            self._v[_TOKENS] -= difference
            self._v[_SPENT] += difference

    def throttled(self) -> None:
        """The source throttled a command: the rate is too high (adaptive only)."""
        if not self.adaptive:
            return
        with self._lock:
            v = self._v
            now = self.clock()
            self._refill(now)
            if now - v[_CUT_AT] < CALM_S and v[_RATE] != UNBOUNDED:
                return  # one cut per second: a burst of 16500s is one signal
            if v[_RATE] == UNBOUNDED:
                spent = v[_LAST_SECOND] or v[_SPENT] / max(now - v[_WINDOW_AT], 1e-3)
                v[_CEILING] = spent
                v[_RATE] = spent * CUT
            else:
                v[_RATE] = v[_RATE] * CUT
            v[_CUT_AT] = now
            v[_TOKENS] = min(v[_TOKENS], 0.0)


class BudgetPlan:
    """What the run's budget will be: a fixed ``rate`` (a cap), or adaptive below
    ``ceiling``; ``why`` says so in words for the summary."""

    def __init__(self, rate: float, adaptive: bool, ceiling: float, why: str) -> None:
        self.rate = rate
        self.adaptive = adaptive
        self.ceiling = ceiling
        self.why = why

    def make(self, ctx: SpawnContext) -> RuBudget:
        return RuBudget(ctx, self.rate, adaptive=self.adaptive, ceiling=self.ceiling)

    def share(self, tasks: int) -> Callable[[], RuBudget]:
        """A bucket maker for one of ``tasks`` tasks in flight on other machines (where
        no bucket can be shared): each gets an even share of the rate."""
        return partial(_share, self.rate / tasks, self.adaptive, self.ceiling / tasks)

    @property
    def known(self) -> bool:
        """Whether the rate is a number (not unbounded until the source throttles)."""
        return self.rate != UNBOUNDED

    def seconds_for(self, ru: float) -> float | None:
        """How long spending ``ru`` takes at this rate; None when the rate is unknown."""
        return ru / self.rate if self.known else None


def plan_budget(
    *,
    metered: bool,
    provisioned: float | None,
    max_rus: float | None,
    max_rus_percent: float | None,
    percent_given: bool,
    notify: Callable[[str], None] | None = None,
) -> BudgetPlan | None:
    """The budget of a run, or None (the source does not report charges: nothing to
    pace by). A cap the source cannot support is a ``UsageError`` when the user gave it;
    a profile's percentage is then dropped with a notice."""
    if not metered:
        _refuse_caps_unmetered(max_rus, max_rus_percent, percent_given)
        return None
    if max_rus is not None:
        return BudgetPlan(max_rus, False, max_rus, f"capped at {max_rus:,.0f} RU/s (--max-rus)")
    if max_rus_percent is not None and provisioned:
        rate = provisioned * max_rus_percent / 100
        return BudgetPlan(
            rate,
            False,
            rate,
            f"capped at {rate:,.0f} RU/s ({max_rus_percent:g}% of the {provisioned:,.0f} "
            "provisioned, --max-rus-percent)",
        )
    if max_rus_percent is not None:
        if percent_given:
            raise UsageError(
                f"--max-rus-percent '{max_rus_percent:g}': the source does not tell its "
                "provisioned throughput (customAction GetCollection/GetDatabase)",
                value=f"{max_rus_percent:g}",
                setting="--max-rus-percent",
                fix="give the budget in RU/s with --max-rus",
            )
        if notify is not None:
            notify(
                f"max_rus_percent {max_rus_percent:g} (profile) is not applied: the source "
                "does not tell its provisioned throughput; pacing adapts to its throttling"
            )
    if provisioned:
        return BudgetPlan(
            provisioned * TARGET,
            True,
            provisioned,
            f"adaptive, at most {TARGET:.0%} of the {provisioned:,.0f} RU/s provisioned",
        )
    return BudgetPlan(UNBOUNDED, True, UNBOUNDED, "adaptive to the source's throttling")


def _refuse_caps_unmetered(
    max_rus: float | None, max_rus_percent: float | None, percent_given: bool
) -> None:
    """A cap the user gave cannot be kept when the source's charges are not read."""
    if max_rus is not None:
        raise UsageError(
            f"--max-rus '{max_rus:g}': the source's request charges are not read "
            "(it does not answer getLastRequestStatistics, or --ru-accounting is off), "
            "so no budget can be kept",
            value=f"{max_rus:g}",
            setting="--max-rus",
            fix="leave --max-rus out, or use --ru-accounting auto on a Cosmos DB source",
        )
    if max_rus_percent is not None and percent_given:
        raise UsageError(
            f"--max-rus-percent '{max_rus_percent:g}': the source's request charges are "
            "not read, so no budget can be kept",
            value=f"{max_rus_percent:g}",
            setting="--max-rus-percent",
            fix="leave --max-rus-percent out, or use --ru-accounting auto on a Cosmos DB "
            "source",
        )


def _share(rate: float, adaptive: bool, ceiling: float) -> RuBudget:
    """A task's own bucket (made where it runs)."""
    return RuBudget(get_context("spawn"), rate, adaptive=adaptive, ceiling=ceiling)
