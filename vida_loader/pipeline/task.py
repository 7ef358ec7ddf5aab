"""What every task kind does at its edges: report its retry waits as events, and turn the
exception that ended an attempt into a failure it can return instead of raising."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, replace
from typing import Any, TypeVar

from vida_loader.errors import VidaError
from vida_loader.execution.events import Reporter, Waiting
from vida_loader.faults import Fault, Verdict, classify
from vida_loader.job.runstate import TaskState
from vida_loader.mongo import describe_error
from vida_loader.retry import Retrier, RetryBudgetExceeded, RetryCounts, RetryPolicy


def wait_reporter(report: Reporter, task: str) -> Callable[[str, Verdict, float], None]:
    """A retrier's ``on_wait`` that reports each wait as a ``Waiting`` event."""

    def on_wait(side: str, verdict: Verdict, delay: float) -> None:
        throttled = verdict.fault is Fault.THROTTLED
        report(Waiting(task, side, verdict.reason, int(delay * 1000), throttled))

    return on_wait


@dataclass(frozen=True)
class TaskFailure:
    """Why an attempt ended, as a task returns it across the process boundary."""

    error: str  # one line, URIs redacted
    transient: bool  # a later attempt may succeed
    # The side ("source", "target") that stayed away past the retry budget: an outage,
    # not throttling. The coordinator then starts nothing more.
    outage: str | None = None


def task_failure(exc: Exception, *uris: str) -> TaskFailure:
    """``exc`` as a ``TaskFailure``; passwords of ``uris`` never appear in the text."""
    if isinstance(exc, RetryBudgetExceeded):
        last = exc.last
        verdict = classify(last)
        return TaskFailure(
            f"gave up on the {exc.role} after {exc.failures} failures in {exc.seconds:.0f} s "
            f"({verdict.reason}); last error: {type(last).__name__}: {_text(last, uris)}",
            transient=False,
            outage=exc.role if verdict.fault is Fault.TRANSIENT else None,
        )
    if isinstance(exc, VidaError):
        return TaskFailure(exc.line(), transient=False)
    return TaskFailure(f"{type(exc).__name__}: {_text(exc, uris)}", classify(exc).retryable)


def _text(exc: BaseException, uris: tuple[str, ...]) -> str:
    return exc.line() if isinstance(exc, VidaError) else describe_error(exc, *uris)


class Retriers:
    """One retrier per side: a source outage and target throttling have separate budgets;
    each wait is reported as a ``Waiting`` event of ``task``."""

    def __init__(self, policy: RetryPolicy, report: Reporter, task: str) -> None:
        on_wait = wait_reporter(report, task)
        self.source = Retrier(policy, on_wait, role="source")
        self.target = Retrier(policy, on_wait, role="target")

    def counts(self) -> RetryCounts:
        total = RetryCounts()
        for r in (self.source, self.target):
            total.merge(r.counts.retries, r.counts.throttled, r.counts.wait_s)
        return total


@dataclass(frozen=True)
class AttemptResult:
    """What every task's result tells of its attempt, besides the kind's own fields (these
    are keyword-only: the kind's come first in its constructor)."""

    _: KW_ONLY
    seconds: float = 0.0
    error: str | None = None
    transient: bool = False  # a later attempt may succeed
    # The side ("source", "target") that stayed away past the retry budget: an outage,
    # not throttling. The coordinator then starts nothing more.
    outage: str | None = None
    retries: int = 0  # operations tried again inside this attempt
    throttled: int = 0  # of those, because the server throttled
    wait_s: float = 0.0  # seconds spent waiting to retry


A = TypeVar("A", bound=AttemptResult)


def failed_result(make: Callable[..., A], task: str, exc: Exception, *uris: str) -> A:
    """The result ``make`` builds for an attempt that ``exc`` ended (passwords of ``uris``
    never in its text)."""
    failure = task_failure(exc, *uris)
    return make(
        task,
        TaskState.FAILED,
        error=failure.error,
        transient=failure.transient,
        outage=failure.outage,
    )


def with_counts(result: A, started: float, counts: RetryCounts, **more: Any) -> A:
    """``result`` with its attempt's seconds since ``started`` and retry ``counts``."""
    return replace(
        result,
        seconds=time.monotonic() - started,
        retries=counts.retries,
        throttled=counts.throttled,
        wait_s=counts.wait_s,
        **more,
    )
