"""Where a side is, without the driver: an endpoint (URI, database, collection), its URI
redacted and read for hosts, options and secrets, the server kind it names, the bounded
timeouts to reach it and how long it may be away (the retry defaults). No pymongo here:
``--help`` reads the settings registry, which needs this, without loading the driver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode

from vida_loader.errors import UsageError


@dataclass(frozen=True)
class Endpoint:
    """One side of a copy: a full URI (may hold credentials: never stored) and a namespace."""

    uri: str
    db: str
    collection: str

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.collection}"


SCHEMES = ("mongodb://", "mongodb+srv://")
# Query options whose values can carry secrets.
SECRET_OPTIONS = {"authmechanismproperties", "tlscertificatekeyfilepassword", "password"}
WRITE_CONCERNS = ("0", "1", "majority")


def check_write_concern(level: str) -> None:
    """Refuse a ``--write-concern`` other than 0, 1 or majority."""
    if level not in WRITE_CONCERNS:
        raise UsageError(f"--write-concern '{level}' must be 0, 1 or majority")


class ServerKind(StrEnum):
    COSMOS = "cosmos"
    ATLAS = "atlas"
    OTHER = "other"


def split_uri(uri: str) -> tuple[str, str, str, str]:
    """(scheme, userinfo, hosts-and-path, query) without validating anything.

    Credentials end at the last ``@`` before the query: a ``/`` may stand unescaped in a
    password, and Cosmos DB puts ``@`` in its query (``appName=@account@``).
    """
    scheme = next((s for s in SCHEMES if uri.lower().startswith(s)), "")
    rest = uri[len(scheme) :]
    head, sep, query = rest.partition("?")
    at = head.rfind("@")
    userinfo, hosts = (head[:at], head[at + 1 :]) if at >= 0 else ("", head)
    return scheme, userinfo, hosts, query if sep else ""


def _clean_query(query: str, replacement: str | None) -> str:
    pairs = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() in SECRET_OPTIONS:
            if replacement is None:
                continue
            value = replacement
        pairs.append((key, value))
    return urlencode(pairs, safe="@:,/*")


def redact_uri(uri: str) -> str:
    """The URI with any password replaced by ``***`` (for messages)."""
    scheme, userinfo, hosts, query = split_uri(uri)
    if not scheme:
        # Not a MongoDB URI: show only what cannot be a secret.
        shown = re.split(r"[:/@]", uri, maxsplit=1)[0]
        return f"{shown}:…" if shown != uri else uri
    if userinfo:
        user = userinfo.split(":", 1)[0]
        userinfo = f"{user}:***@" if ":" in userinfo else f"{user}@"
    q = _clean_query(query, "***")
    return f"{scheme}{userinfo}{hosts}" + (f"?{q}" if q else "")


def uri_options(uri: str) -> dict[str, str]:
    """The query options of a URI, names lower-cased (MongoDB treats them so)."""
    return {k.lower(): v for k, v in parse_qsl(split_uri(uri)[3], keep_blank_values=True)}


def uri_has_host(uri: str) -> bool:
    """A MongoDB URI (either scheme) that names at least one host; nothing else checked."""
    scheme, _userinfo, hosts, _query = split_uri(uri)
    netloc = hosts.split("/", 1)[0]
    return bool(scheme) and any(
        h.strip() and not h.strip().startswith(":") for h in netloc.split(",")
    )


def has_secret(uri: str) -> bool:
    """Whether the URI carries a password or a secret option (never echo it then)."""
    _scheme, userinfo, _hosts, query = split_uri(uri)
    return ":" in userinfo or any(
        key.lower() in SECRET_OPTIONS for key, _v in parse_qsl(query, keep_blank_values=True)
    )


def strip_credentials(uri: str) -> str:
    """The URI without user, password or secret options (for files)."""
    scheme, _userinfo, hosts, query = split_uri(uri)
    q = _clean_query(query, None)
    return f"{scheme}{hosts}" + (f"?{q}" if q else "")


def uri_hosts(uri: str) -> list[str]:
    """The host list of a URI, lower-cased, with the default port, sorted (``run`` compares)."""
    scheme, _userinfo, hosts, _query = split_uri(uri)
    netloc = hosts.split("/", 1)[0]
    return normal_hosts(netloc.split(","), srv=scheme == "mongodb+srv://")


def normal_hosts(hosts: list[str], srv: bool = False) -> list[str]:
    """``host:port`` lower-cased and sorted; port 27017 added where missing (not for SRV)."""
    out = []
    for h in hosts:
        h = h.strip().lower()
        has_port = "]:" in h if h.startswith("[") else ":" in h
        if h and not srv and not has_port:
            h += ":27017"
        if h:
            out.append(h)
    return sorted(out)


def server_kind(uri: str) -> ServerKind:
    for host in uri_hosts(uri):
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
        if name.endswith((".mongo.cosmos.azure.com", ".documents.azure.com")):
            return ServerKind.COSMOS
        if name.endswith(".mongodb.net"):
            return ServerKind.ATLAS
    return ServerKind.OTHER


# Throttling storms bring long runs of 16500 with short RetryAfterMs: the window, not
# the count, is what normally ends a hopeless retry.
DEFAULT_RETRY_ATTEMPTS = 100
DEFAULT_RETRY_WINDOW_S = 60.0  # a server may be away this long (restart, failover)


@dataclass(frozen=True)
class Timeouts:
    """Bounds on every network wait, in milliseconds.

    ``select_ms`` is how long a wrong or unreachable host takes to fail. ``connect_ms``
    bounds a TCP connect and, in pymongo, also the monitor's ``hello``: if that times out,
    pymongo clears the pool and cancels every operation in flight. A server busy with
    many concurrent range scans may take longer than ``select_ms`` to answer, so it gets
    the longer bound (docs/design-notes.md).
    """

    select_ms: int = 8000
    connect_ms: int = 60_000
    socket_ms: int = 120_000
