"""Back-off and the retry budget of one partition.

A worker runs each server operation of a partition (open a cursor, read a batch, insert
a batch, count a range) through one :class:`Retrier`. A retryable failure (see
:mod:`vida_loader.faults`) waits and tries again:

- the server's ``RetryAfterMs`` when it sent one, else jittered exponential back-off
  (``base_ms`` doubling up to ``cap_ms``, a random wait between half and all of it, so
  that workers throttled together do not come back together);
- within a budget: at most ``attempts`` failures in a row, and no new try once
  ``window_s`` seconds have passed since the first of them. Any success (progress)
  resets both, so a long run under steady 5 % throttling never runs out, while a server
  that stays away longer than ``window_s`` ends the partition as failed with its last
  error.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from vida_loader.endpoint import DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_WINDOW_S
from vida_loader.faults import Fault, Verdict, classify

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = DEFAULT_RETRY_ATTEMPTS  # failures in a row before giving up
    window_s: float = DEFAULT_RETRY_WINDOW_S  # seconds of failing before giving up
    base_ms: float = 100.0
    cap_ms: float = 10_000.0

    def delay_s(self, failures: int, verdict: Verdict, rng: random.Random) -> float:
        """Seconds to wait before try ``failures + 1`` (``failures`` >= 1)."""
        if verdict.retry_after_ms is not None:
            # The server knows its RU budget: honour it, with a little jitter upwards.
            hint = min(float(verdict.retry_after_ms), self.cap_ms)
            return hint * rng.uniform(1.0, 1.1) / 1000
        ceiling = min(self.cap_ms, self.base_ms * 2 ** min(failures - 1, 30))
        return rng.uniform(ceiling / 2, ceiling) / 1000


@dataclass
class RetryCounts:
    """What one partition's retries cost; summed into run state and the summary."""

    retries: int = 0  # operations tried again
    throttled: int = 0  # of those, because the server throttled (16500, 50, 429)
    wait_s: float = 0.0  # seconds spent waiting to retry
    reasons: dict[str, int] = field(default_factory=dict)  # "throttled": 3, "network": 1

    @property
    def outages(self) -> int:
        """Retries for a reason other than throttling: the server or the network went away."""
        return self.retries - self.throttled

    def merge(self, retries: int, throttled: int, wait_s: float) -> None:
        """Add another count's figures (another side, another partition)."""
        self.retries += retries
        self.throttled += throttled
        self.wait_s += wait_s

    def add(self, verdict: Verdict, waited: float) -> None:
        self.retries += 1
        self.throttled += int(verdict.fault is Fault.THROTTLED)
        self.wait_s += waited
        self.reasons[verdict.reason] = self.reasons.get(verdict.reason, 0) + 1


class RetryBudgetExceeded(Exception):
    """An operation kept failing past the policy's budget; carries its last error."""

    def __init__(self, role: str, failures: int, seconds: float, last: BaseException) -> None:
        super().__init__(
            f"gave up on the {role} after {failures} failures in {seconds:.0f} s, "
            f"last: {type(last).__name__}: {last}"
        )
        self.role = role
        self.failures = failures
        self.seconds = seconds
        self.last = last


# (role, verdict, seconds about to wait): a worker turns it into a progress event
WaitHook = Callable[[str, Verdict, float], None]


class Retrier:
    """Runs one partition's operations on one side (``role``: "source", "target") under
    a policy, counting what retries cost."""

    def __init__(
        self,
        policy: RetryPolicy,
        on_wait: WaitHook | None = None,
        *,
        role: str = "server",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.role = role
        self.counts = RetryCounts()
        self.on_wait = on_wait
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._failures = 0  # in a row, since the last success
        self._since: float | None = None

    def succeeded(self) -> None:
        """Progress was made: the budget starts afresh."""
        self._failures = 0
        self._since = None

    def failed(self, exc: BaseException) -> Verdict:
        """Wait before trying again after ``exc``; raise ``exc`` when it is not retryable
        and ``RetryBudgetExceeded`` past the budget. Returns the verdict."""
        verdict = classify(exc)
        if not verdict.retryable:
            raise exc
        now = self._clock()
        if self._since is None:
            self._since = now
        self._failures += 1
        spent = now - self._since
        if self._failures > self.policy.attempts or spent >= self.policy.window_s:
            raise RetryBudgetExceeded(self.role, self._failures, spent, exc) from exc
        delay = self.policy.delay_s(self._failures, verdict, self._rng)
        if self.on_wait is not None:
            self.on_wait(self.role, verdict, delay)
        self._sleep(delay)
        self.counts.add(verdict, delay)
        return verdict

    def call(self, op: Callable[[], T]) -> T:
        """``op()``, tried again on retryable errors within the budget."""
        while True:
            try:
                result = op()
            except Exception as exc:
                self.failed(exc)
                continue
            self.succeeded()
            return result


def patient(op: Callable[[], T], policy: RetryPolicy | None = None, role: str = "server") -> T:
    """``op()`` for a one-off call outside any partition (list the collections, probe the
    target, read the plan's statistics): tried again on throttling or an outage within
    ``policy``, like a partition's operations. Past the budget it raises the last error
    itself, so that the caller's own message for a failed call still applies."""
    try:
        return Retrier(policy or RetryPolicy(), role=role).call(op)
    except RetryBudgetExceeded as exc:
        raise exc.last from None
