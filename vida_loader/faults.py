"""The one error classifier: is an error worth a retry, harmless on re-send, or fatal?

Every retry decision in vida-loader goes through :func:`classify`. It is table-driven
(error code -> verdict, then message patterns for Cosmos DB's throttling texts, then
exception classes) so that a new error shape is one table row, not a new ``if``.

Cosmos DB for MongoDB throttles with code 16500 (HTTP 429, substatus 3200). Its message
comes in two formats: the current ``Error=16500, RetryAfterMs=<n>, Details='...'`` and the
older JSON text ``Message: {"Errors":["Request rate is large..."]}``. With Server Side
Retry enabled it gives up after 60 s with code 50 (``ExceededTimeLimit``). The only hint
of how long to wait is the ``RetryAfterMs=<n>`` number inside the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bson.errors import InvalidDocument
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    CursorNotFound,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from vida_loader.errors import ConnectError


class Fault(StrEnum):
    THROTTLED = "throttled"  # the server asks us to slow down: wait and retry
    TRANSIENT = "transient"  # network, failover, lost cursor, restart: wait and retry
    DUPLICATE = "duplicate"  # duplicate key on a re-send: the document is already there
    FATAL = "fatal"  # retrying cannot help: tell the user


@dataclass(frozen=True)
class Verdict:
    fault: Fault
    reason: str  # a few words for counters and messages: "throttled", "unreachable", ...
    code: int | None = None
    retry_after_ms: int | None = None  # the server's own hint (Cosmos DB RetryAfterMs)

    @property
    def retryable(self) -> bool:
        return self.fault in (Fault.THROTTLED, Fault.TRANSIENT)


# code -> (fault, reason). Codes not listed are fatal: a retry storm on an error that
# cannot go away costs RUs and hides the cause.
CODES: dict[int, tuple[Fault, str]] = {
    16500: (Fault.THROTTLED, "throttled"),  # Cosmos DB TooManyRequests
    429: (Fault.THROTTLED, "throttled"),  # the HTTP status, as some gateways report it
    3200: (Fault.THROTTLED, "throttled"),  # Cosmos DB substatus: RU budget exceeded
    50: (Fault.THROTTLED, "time limit"),  # ExceededTimeLimit: Cosmos DB gave up retrying
    262: (Fault.THROTTLED, "time limit"),  # ExceededTimeLimit (MongoDB)
    43: (Fault.TRANSIENT, "cursor lost"),  # CursorNotFound
    6: (Fault.TRANSIENT, "network"),  # HostUnreachable
    7: (Fault.TRANSIENT, "network"),  # HostNotFound
    89: (Fault.TRANSIENT, "network"),  # NetworkTimeout
    9001: (Fault.TRANSIENT, "network"),  # SocketException
    91: (Fault.TRANSIENT, "server restarting"),  # ShutdownInProgress
    11600: (Fault.TRANSIENT, "server restarting"),  # InterruptedAtShutdown
    189: (Fault.TRANSIENT, "failover"),  # PrimarySteppedDown
    10107: (Fault.TRANSIENT, "failover"),  # NotWritablePrimary
    11602: (Fault.TRANSIENT, "failover"),  # InterruptedDueToReplStateChange
    13435: (Fault.TRANSIENT, "failover"),  # NotPrimaryNoSecondaryOk
    13436: (Fault.TRANSIENT, "failover"),  # NotPrimaryOrSecondary
    112: (Fault.TRANSIENT, "write conflict"),  # WriteConflict
    11000: (Fault.DUPLICATE, "duplicate key"),
    11001: (Fault.DUPLICATE, "duplicate key"),
    18: (Fault.FATAL, "authentication failed"),
    8000: (Fault.FATAL, "authentication failed"),  # Atlas' AtlasError
    13: (Fault.FATAL, "unauthorized"),
    26: (Fault.FATAL, "namespace missing"),  # NamespaceNotFound
    121: (Fault.FATAL, "validation failed"),  # DocumentValidationFailure
    10334: (Fault.FATAL, "document too large"),  # BSONObjectTooLarge
    17419: (Fault.FATAL, "document too large"),  # result too large
    2: (Fault.FATAL, "bad value"),
}

# Labels the server puts on errors that a retry may clear.
RETRYABLE_LABELS = ("RetryableWriteError", "TransientTransactionError", "RetryableError")

# Throttling recognised by its text, whatever code (if any) came with it.
THROTTLE_PATTERNS = (
    re.compile(r"\bError=16500\b"),
    re.compile(r"request rate is large", re.IGNORECASE),
    re.compile(r"\bTooManyRequests\b"),
    re.compile(r"\bStatusCode:\s*429\b"),
    re.compile(r"\bSub-?status(?:Code)?:\s*3200\b", re.IGNORECASE),
)
RETRY_AFTER = re.compile(r"RetryAfterMs[\"']?\s*[=:]\s*[\"']?(\d+)", re.IGNORECASE)


def retry_after_ms(text: str) -> int | None:
    """The ``RetryAfterMs`` number inside a Cosmos DB message, if any."""
    match = RETRY_AFTER.search(text)
    return int(match.group(1)) if match else None


def is_throttle_message(text: str) -> bool:
    return any(p.search(text) for p in THROTTLE_PATTERNS)


def classify_code(code: int | None, message: str = "", labels: tuple[str, ...] = ()) -> Verdict:
    """The verdict on a server error given by its code, message and error labels."""
    hint = retry_after_ms(message)
    if is_throttle_message(message):
        return Verdict(Fault.THROTTLED, "throttled", code, hint)
    if code is not None and code in CODES:
        fault, reason = CODES[code]
        return Verdict(fault, reason, code, hint if fault is Fault.THROTTLED else None)
    if any(label in RETRYABLE_LABELS for label in labels):
        return Verdict(Fault.TRANSIENT, "retryable", code)
    return Verdict(Fault.FATAL, "error", code)


def classify_write_error(error: Mapping[str, Any]) -> Verdict:
    """The verdict on one entry of a bulk write's ``writeErrors`` or ``writeConcernErrors``."""
    code = error.get("code")
    message = str(error.get("errmsg", ""))
    if code in (11000, 11001) and _secondary_unique(error, message):
        # Not "already there": the document breaks a unique index of the target (built
        # before the data, or the target's own); sending it again never helps.
        return Verdict(Fault.FATAL, "unique index violated", code)
    return classify_code(code if isinstance(code, int) else None, message)


def _secondary_unique(error: Mapping[str, Any], message: str) -> bool:
    """Whether a duplicate key error is about another index than ``_id``'s."""
    pattern = error.get("keyPattern")
    if isinstance(pattern, Mapping):
        return list(pattern) != ["_id"]
    name = message.split(" index: ", 1)[1].split(" ", 1)[0] if " index: " in message else None
    return name is not None and name != "_id_"


def passing(exc: BaseException) -> bool:
    """Whether ``exc`` may go away by itself (throttled, cut off): a probe that reads a
    refusal as "the server cannot do that" must not read this one so."""
    return classify(exc).retryable


def classify(exc: BaseException) -> Verdict:
    """The verdict on any exception a worker meets."""
    if isinstance(exc, BulkWriteError):
        return _classify_bulk(exc.details or {})
    if isinstance(exc, CursorNotFound):
        return Verdict(Fault.TRANSIENT, "cursor lost", 43)
    if isinstance(exc, OperationFailure):
        details = exc.details if isinstance(exc.details, Mapping) else {}
        message = str(details.get("errmsg") or exc)
        labels = tuple(label for label in RETRYABLE_LABELS if exc.has_error_label(label))
        return classify_code(exc.code, message, labels)
    if isinstance(exc, NotPrimaryError):  # an AutoReconnect with a server reply
        details = exc.details if isinstance(exc.details, Mapping) else {}
        return Verdict(Fault.TRANSIENT, "failover", details.get("code"))
    if isinstance(exc, ServerSelectionTimeoutError):
        return Verdict(Fault.TRANSIENT, "unreachable")
    if isinstance(exc, ConnectionFailure):  # AutoReconnect, NetworkTimeout, cancelled ops
        return Verdict(Fault.TRANSIENT, "network")
    if isinstance(exc, ConnectError):
        # connect() says "cannot reach" for a server that is down (maybe restarting);
        # refused credentials stay fatal.
        if exc.message.startswith("cannot reach"):
            return Verdict(Fault.TRANSIENT, "unreachable")
        return Verdict(Fault.FATAL, "connect failed")
    if isinstance(exc, InvalidDocument):  # includes pymongo's client-side DocumentTooLarge
        return Verdict(Fault.FATAL, "document too large" if "large" in str(exc) else "invalid")
    return Verdict(Fault.FATAL, "error")


def _classify_bulk(details: Mapping[str, Any]) -> Verdict:
    """A bulk write's worst error: fatal over retryable over duplicate key."""
    verdicts = [classify_write_error(e) for e in details.get("writeErrors", ())]
    verdicts += [classify_write_error(e) for e in details.get("writeConcernErrors", ())]
    for fault in (Fault.FATAL, Fault.THROTTLED, Fault.TRANSIENT, Fault.DUPLICATE):
        found = [v for v in verdicts if v.fault is fault]
        if found:
            hints = [v.retry_after_ms for v in found if v.retry_after_ms is not None]
            first = found[0]
            return Verdict(first.fault, first.reason, first.code, max(hints) if hints else None)
    return Verdict(Fault.FATAL, "error")
