"""MongoDB clients: the client factory with bounded timeouts, URI checks by the driver,
write concerns, and errors described without a password (endpoints and URIs: ``endpoint``).

Every client vida-loader makes comes from :func:`connect`, so every network call has a
bounded timeout and every failure to connect becomes one ``ConnectError`` or
``UsageError`` whose text never contains a password.
"""

from __future__ import annotations

import re
from typing import Any

import pymongo
from bson.codec_options import CodecOptions, DatetimeConversion
from pymongo import MongoClient
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    InvalidURI,
    OperationFailure,
    PyMongoError,
)
from pymongo.uri_parser import parse_uri
from pymongo.write_concern import WriteConcern

from vida_loader.endpoint import (
    SCHEMES,
    ServerKind,
    Timeouts,
    check_write_concern,
    redact_uri,
    server_kind,
    split_uri,
    uri_options,
)
from vida_loader.errors import ConnectError, UsageError
from vida_loader.faults import classify

# Decode `_id`s of any date (also outside Python's datetime range) without failing.
CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(
    datetime_conversion=DatetimeConversion.DATETIME_AUTO
)


def write_concern(level: str) -> WriteConcern:
    """``--write-concern`` value ("0", "1", "majority") as a pymongo ``WriteConcern``.

    Acknowledged levels ask for the journal (``j``): a partition confirmed by its write
    results must not lose them to a crash of the target right after (see
    docs/design-notes.md).
    """
    check_write_concern(level)
    if level == "0":
        return WriteConcern(w=0)
    return WriteConcern(w="majority" if level == "majority" else 1, j=True)


def check_uri(uri: str, flag: str) -> None:
    """Refuse a URI that is not a MongoDB URI, in one line naming the flag."""
    if not uri:
        raise UsageError(f"{flag} is required (or set its VIDA_ environment variable)")
    shown = redact_uri(uri)
    if not any(uri.lower().startswith(s) for s in SCHEMES):
        raise UsageError(
            f"{flag} '{shown}' is not a MongoDB URI: it must start with mongodb:// or "
            "mongodb+srv://"
        )
    if uri.lower().startswith("mongodb+srv://"):
        return  # parsing would resolve SRV records: a network call, left to connect()
    try:
        parse_uri(uri, validate=True)
    except (InvalidURI, ConfigurationError, ValueError) as exc:
        raise UsageError(
            f"{flag} '{shown}' is not a valid MongoDB URI: {describe_error(exc, uri)}"
        ) from None


# The newest pymongo that still talks to servers of a wire version (Cosmos DB API 3.6 is
# wire 6, 4.0 is wire 7, 4.2 is wire 8): 4.11 dropped wire 6, 4.14 dropped wire 7.
PYMONGO_FOR_WIRE = ((6, "pymongo>=4.6,<4.11"), (8, "pymongo>=4.6,<4.14"))


def wire_advice(message: str) -> str | None:
    """For pymongo's "reports wire version N, but this version of PyMongo requires at
    least M": which pymongo to install instead; None for any other message."""
    found = re.search(
        r"reports wire version (\d+), but this version of PyMongo requires at least (\d+)", message
    )
    if not found:
        return None
    wire, need = int(found.group(1)), int(found.group(2))
    if wire < 6:
        return (
            f"the server speaks wire version {wire}, older than any pymongo 4 supports: "
            "upgrade the server (a Cosmos DB account: its server version, to 4.2 or later)"
        )
    fit = next(
        (spec for top, spec in PYMONGO_FOR_WIRE if wire <= top), f"pymongo<{pymongo.version}"
    )
    return (
        f"the server speaks wire version {wire}, but the installed pymongo {pymongo.version} "
        f"needs at least {need}: install an older one beside vida-loader with "
        f"`pip install '{fit}'` (Cosmos DB accounts on server version 3.6 or 4.0 need that)"
    )


def describe_error(exc: BaseException, *uris: str) -> str:
    """An exception's text for a one-line message: first line, at most 300 characters,
    without pymongo's topology dump and with any password from ``uris`` removed."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, OperationFailure) and not isinstance(exc, BulkWriteError):
        # "errmsg, full error: {...}" -> "errmsg (code 13 Unauthorized)": the code is
        # what a user looks up, the full reply is noise on one line.
        details = exc.details or {}
        name = details.get("codeName")
        text = str(details.get("errmsg") or text.split(", full error:")[0])
        text += f" (code {exc.code}{' ' + name if name else ''})"
    text = text.split(", Timeout:")[0][:300]
    for uri in uris:
        _scheme, userinfo, _hosts, _query = split_uri(uri)
        if ":" in userinfo:
            secret = userinfo.split(":", 1)[1]
            if secret:
                text = text.replace(secret, "***")
    return text


def connect(
    uri: str, *, role: str, timeouts: Timeouts = Timeouts(), **options: Any
) -> MongoClient[dict[str, Any]]:
    """A client that has answered ``ping``; ``role`` ("source", "target") names it in errors."""
    flag = f"--{role}-uri"
    check_uri(uri, flag)
    shown = redact_uri(uri)
    client: MongoClient[dict[str, Any]] | None = None
    try:
        client = MongoClient(uri, **client_options(uri, timeouts), **options)
        client.admin.command("ping")
        return client
    except (InvalidURI, ConfigurationError) as exc:
        _close(client)
        advice = wire_advice(str(exc))
        if advice:
            raise ConnectError(f"{role} at '{shown}': {advice}") from None
        raise UsageError(f"{flag} '{shown}' is not usable: {describe_error(exc, uri)}") from None
    except OperationFailure as exc:
        _close(client)
        if classify(exc).reason == "authentication failed":
            raise ConnectError(
                f"{role} at '{shown}' refused the credentials: check the user and password "
                f"in {flag}"
            ) from None
        raise ConnectError(
            f"{role} at '{shown}' failed `ping`: {describe_error(exc, uri)}"
        ) from None
    except (ConnectionFailure, PyMongoError) as exc:
        _close(client)
        raise ConnectError(
            f"cannot reach {role} at '{shown}' within {timeouts.select_ms / 1000:g} s "
            f"({describe_error(exc, uri)}): check host, port and network"
        ) from None


def client_options(uri: str, timeouts: Timeouts = Timeouts()) -> dict[str, Any]:
    """The options vida-loader gives every client of ``uri``.

    Bounded timeouts, always, so nothing hangs; acknowledged writes by default, even when
    the URI says ``w=0`` (the copy's own writes set theirs). Unless the URI sets them: idle
    connections dropped before Cosmos DB's ~4 minutes close them under us, the app name
    (fail points and server logs name us by it), and on Cosmos DB no retryable writes
    (3.6 accounts refuse them, and vida-loader retries writes itself).
    """
    options: dict[str, Any] = {
        "serverSelectionTimeoutMS": timeouts.select_ms,
        "connectTimeoutMS": timeouts.connect_ms,
        "socketTimeoutMS": timeouts.socket_ms,
        "maxIdleTimeMS": 120_000,
        "appname": "vida-loader",
    }
    given = uri_options(uri)
    for key in ("maxIdleTimeMS", "appname"):
        if key.lower() in given:
            del options[key]
    if server_kind(uri) is ServerKind.COSMOS and "retrywrites" not in given:
        options["retryWrites"] = False
    if "w" in given:
        # Copy writes set their own write concern (--write-concern); everything else
        # (drop, the scratch write of `config check`) must hear back from the server.
        options["w"] = 1
    return options


def close_client(client: MongoClient[Any]) -> None:
    """Close within a second: pymongo ends its sessions first, which waits a whole
    server selection (8 s) when the server is gone."""
    with pymongo.timeout(1.0):
        client.close()


def _close(client: MongoClient[dict[str, Any]] | None) -> None:
    if client is not None:
        close_client(client)
