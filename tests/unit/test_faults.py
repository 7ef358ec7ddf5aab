"""The error classifier, on the error shapes pymongo really raises."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    CursorNotFound,
    DocumentTooLarge,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteError,
)

from vida_loader.errors import ConnectError
from vida_loader.faults import Fault, classify, classify_write_error, retry_after_ms
from vida_loader.retry import Retrier, RetryBudgetExceeded, RetryPolicy, patient

# Cosmos DB's current throttling text (code 16500), as its gateway sends it.
COSMOS_NEW = (
    "Error=16500, RetryAfterMs=72, Details='Response status code does not indicate "
    "success: TooManyRequests (429); Substatus: 3200; ActivityId: "
    '3fbc7bb0-5a3c-4bd6-a7c5-0e3f0c1a9d4e; Reason: (Message: {"Errors":["Request rate '
    "is large. More Request Units may be needed, so no changes were made. Please retry "
    'this request later. Learn more: http://aka.ms/cosmosdb-error-429"]}'
)
# The older JSON text (code 16500), no RetryAfterMs.
COSMOS_OLD = (
    'Message: {"Errors":["Request rate is large"]}\r\nActivityId: '
    "63ea6aa0-0000-0000-0000-000000000000, Request URI: /apps/x/services/y/partitions/z, "
    "RequestStats: \r\nRequestStartTime: 2019-08-14T12:35:14.3713368Z, StatusCode: 429, "
    "SubStatusCode: 3200, RequestCharge: 0.38, SDK: Microsoft.Azure.Documents.Common/2.5.1"
)
SSR_TIMEOUT = "Request timed out. Retries due to rate limiting: True."


def op_failure(code: int | None, errmsg: str, labels: tuple[str, ...] = ()) -> OperationFailure:
    details = {"ok": 0.0, "errmsg": errmsg, "code": code, "errorLabels": list(labels)}
    return OperationFailure(errmsg, code, details)


def bulk(*codes_msgs: tuple[int, str], inserted: int = 0) -> BulkWriteError:
    errors = [
        {"index": i, "code": code, "errmsg": msg, "op": {"_id": i}}
        for i, (code, msg) in enumerate(codes_msgs)
    ]
    return BulkWriteError({"writeErrors": errors, "writeConcernErrors": [], "nInserted": inserted})


CASES = [
    # (name, exception, fault, reason, retry_after_ms)
    ("cosmos new format", op_failure(16500, COSMOS_NEW), Fault.THROTTLED, "throttled", 72),
    ("cosmos old format", op_failure(16500, COSMOS_OLD), Fault.THROTTLED, "throttled", None),
    ("old format, no code", op_failure(None, COSMOS_OLD), Fault.THROTTLED, "throttled", None),
    ("16500 plain", op_failure(16500, "Failing command"), Fault.THROTTLED, "throttled", None),
    ("429 code", op_failure(429, "too many"), Fault.THROTTLED, "throttled", None),
    (
        "ssr gave up",
        ExecutionTimeout(SSR_TIMEOUT, 50, {"errmsg": SSR_TIMEOUT, "code": 50}),
        Fault.THROTTLED,
        "time limit",
        None,
    ),
    (
        "cursor lost",
        CursorNotFound("cursor id 7 not found", 43, {"code": 43}),
        Fault.TRANSIENT,
        "cursor lost",
        None,
    ),
    (
        "stepdown",
        NotPrimaryError("not primary", {"code": 10107, "errmsg": "not primary"}),
        Fault.TRANSIENT,
        "failover",
        None,
    ),
    ("primary stepped down", op_failure(189, "stepped down"), Fault.TRANSIENT, "failover", None),
    ("shutdown", op_failure(91, "shutting down"), Fault.TRANSIENT, "server restarting", None),
    (
        "label only",
        op_failure(9999, "odd", ("RetryableWriteError",)),
        Fault.TRANSIENT,
        "retryable",
        None,
    ),
    ("connection reset", AutoReconnect("connection closed"), Fault.TRANSIENT, "network", None),
    ("socket timeout", NetworkTimeout("timed out"), Fault.TRANSIENT, "network", None),
    (
        "restart",
        ServerSelectionTimeoutError("127.0.0.1:1: [Errno 111] Connection refused"),
        Fault.TRANSIENT,
        "unreachable",
        None,
    ),
    (
        "down at connect",
        ConnectError("cannot reach target at 'mongodb://h' within 8 s (x)"),
        Fault.TRANSIENT,
        "unreachable",
        None,
    ),
    (
        "bad password",
        ConnectError("target at 'mongodb://u:***@h' refused the credentials"),
        Fault.FATAL,
        "connect failed",
        None,
    ),
    ("auth", op_failure(18, "Authentication failed."), Fault.FATAL, "authentication failed", None),
    ("unauthorized", op_failure(13, "not authorized on db"), Fault.FATAL, "unauthorized", None),
    ("ns missing", op_failure(26, "ns not found"), Fault.FATAL, "namespace missing", None),
    (
        "too large",
        DocumentTooLarge("BSON document too large (17 MB)"),
        Fault.FATAL,
        "document too large",
        None,
    ),
    (
        "validation",
        WriteError("Document failed validation", 121, {"code": 121}),
        Fault.FATAL,
        "validation failed",
        None,
    ),
    ("unknown code", op_failure(12345, "what"), Fault.FATAL, "error", None),
    ("not pymongo", ValueError("bug"), Fault.FATAL, "error", None),
    (
        "bulk: throttled docs",
        bulk((16500, COSMOS_NEW), (11000, "E11000 dup")),
        Fault.THROTTLED,
        "throttled",
        72,
    ),
    (
        "bulk: duplicates only",
        bulk((11000, "E11000 dup"), (11000, "E11000 dup")),
        Fault.DUPLICATE,
        "duplicate key",
        None,
    ),
    (
        "bulk: a fatal one wins",
        bulk((16500, COSMOS_NEW), (121, "failed validation")),
        Fault.FATAL,
        "validation failed",
        None,
    ),
]


@pytest.mark.parametrize("exc,fault,reason,hint", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(exc: BaseException, fault: Fault, reason: str, hint: int | None) -> None:
    verdict = classify(exc)
    assert (verdict.fault, verdict.reason, verdict.retry_after_ms) == (fault, reason, hint)
    assert verdict.retryable == (fault in (Fault.THROTTLED, Fault.TRANSIENT))


@pytest.mark.parametrize(
    "text,ms",
    [
        (COSMOS_NEW, 72),
        ("Error=16500, RetryAfterMs=0, Details=''", 0),
        ('{"code":16500,"RetryAfterMs":"1250"}', 1250),
        (COSMOS_OLD, None),
        ("RetryAfterMs=", None),
    ],
)
def test_retry_after_ms(text: str, ms: int | None) -> None:
    assert retry_after_ms(text) == ms


def test_write_error_entries() -> None:
    assert classify_write_error({"code": 16500, "errmsg": COSMOS_NEW}).retry_after_ms == 72
    assert classify_write_error({"code": 11000, "errmsg": "dup"}).fault is Fault.DUPLICATE
    assert classify_write_error({"errmsg": COSMOS_OLD}).fault is Fault.THROTTLED
    assert classify_write_error({"code": 2, "errmsg": "bad"}).fault is Fault.FATAL


# --- back-off and budget -------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s

    def clock(self) -> float:
        return self.now


def scripted(*outcomes: Any) -> Callable[[], Any]:
    """A call that raises or returns each of ``outcomes`` in turn."""
    left = list(outcomes)

    def op() -> Any:
        item = left.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    return op


def retrier(policy: RetryPolicy, t: FakeTime, role: str = "source") -> Retrier:
    return Retrier(policy, role=role, sleep=t.sleep, clock=t.clock, rng=random.Random(7))


def test_backoff_honours_retry_after_ms() -> None:
    t = FakeTime()
    r = retrier(RetryPolicy(), t)
    r.failed(op_failure(16500, COSMOS_NEW))
    assert 0.072 <= t.sleeps[0] <= 0.072 * 1.1
    assert r.counts.throttled == 1 and r.counts.reasons == {"throttled": 1}


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    t = FakeTime()
    policy = RetryPolicy(attempts=20, window_s=1e9, base_ms=100, cap_ms=2000)
    r = retrier(policy, t)
    for _ in range(10):
        r.failed(AutoReconnect("reset"))
    ceilings = [min(2000, 100 * 2**i) / 1000 for i in range(10)]
    for slept, ceiling in zip(t.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling
    assert len(set(t.sleeps)) == 10  # jittered: no two waits alike
    assert r.counts.retries == 10 and r.counts.throttled == 0
    assert r.counts.wait_s == pytest.approx(sum(t.sleeps))


def test_budget_attempts_then_success_resets() -> None:
    t = FakeTime()
    r = retrier(RetryPolicy(attempts=3, window_s=1e9, base_ms=1, cap_ms=1), t)
    for _ in range(3):
        r.failed(AutoReconnect("x"))
    r.succeeded()  # progress: three more are allowed
    for _ in range(3):
        r.failed(AutoReconnect("x"))
    with pytest.raises(RetryBudgetExceeded, match="gave up on the source after 4 failures"):
        r.failed(AutoReconnect("x"))


def test_budget_window() -> None:
    t = FakeTime()
    r = retrier(RetryPolicy(attempts=1000, window_s=30, base_ms=10_000, cap_ms=10_000), t)
    with pytest.raises(RetryBudgetExceeded) as info:
        for _ in range(100):
            r.failed(ServerSelectionTimeoutError("refused"))
    assert 30 <= t.now <= 40  # never a new try once 30 s have passed
    assert isinstance(info.value.last, ServerSelectionTimeoutError)


def test_fatal_is_raised_at_once() -> None:
    t = FakeTime()
    r = retrier(RetryPolicy(), t)
    err = op_failure(13, "not authorized")
    with pytest.raises(OperationFailure):
        r.failed(err)
    assert t.sleeps == [] and r.counts.retries == 0


def test_call_retries_then_returns() -> None:
    t = FakeTime()
    r = retrier(RetryPolicy(base_ms=1, cap_ms=1), t)
    op = scripted(op_failure(16500, COSMOS_OLD), AutoReconnect("x"), 5)
    assert r.call(op) == 5
    assert r.counts.retries == 2 and r.counts.reasons == {"throttled": 1, "network": 1}


def test_patient_retries_a_one_off_call_and_past_its_budget_raises_the_last_error_itself() -> None:
    op = scripted(op_failure(16500, COSMOS_NEW), "names")
    assert patient(op, RetryPolicy(base_ms=1, cap_ms=1)) == "names"
    last = op_failure(16500, COSMOS_OLD)
    # The caller's own "cannot list collections: <error>" still applies: no wrapper.
    with pytest.raises(OperationFailure) as info:
        patient(scripted(*[last] * 3), RetryPolicy(attempts=2, base_ms=1, cap_ms=1))
    assert info.value is last
    fatal = scripted(op_failure(13, "not authorized"), "never reached")
    with pytest.raises(OperationFailure, match="not authorized"):  # at once, not in a minute
        patient(fatal)
    assert fatal() == "never reached"  # it was called once only


@pytest.mark.parametrize(
    "error",
    [
        {
            "code": 11000,
            "errmsg": "E11000 ... index: k_1 dup key: { k: 1 }",
            "keyPattern": {"k": 1},
        },
        {"code": 11000, "errmsg": "E11000 duplicate key error collection: t.e index: k_1 dup key"},
    ],
)
def test_a_duplicate_on_another_unique_index_is_fatal_not_already_there(error: dict) -> None:
    verdict = classify_write_error(error)
    assert verdict.fault is Fault.FATAL and verdict.reason == "unique index violated"


@pytest.mark.parametrize(
    "error",
    [
        {"code": 11000, "errmsg": "E11000 ... index: _id_ dup key", "keyPattern": {"_id": 1}},
        {"code": 11000, "errmsg": "E11000 duplicate key error collection: t.e index: _id_ dup"},
        {"code": 11000, "errmsg": "Failed _id or unique index constraint"},  # Cosmos DB
    ],
)
def test_a_duplicate_id_is_already_there(error: dict) -> None:
    assert classify_write_error(error).fault is Fault.DUPLICATE
