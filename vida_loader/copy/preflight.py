"""``vida-loader config check``: can a copy start with these settings?

Each side is reached with the bounded timeouts of the settings and told apart: server
kind and version, wire version and whether the installed pymongo can talk to it, TLS.
The source collection must exist and be readable; on the target, a scratch collection is
written and dropped to prove the right to write. Nothing else is written anywhere.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pymongo
from pymongo import MongoClient, common
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError

from vida_loader.endpoint import Endpoint, Timeouts, redact_uri, uri_hosts, uri_options
from vida_loader.errors import UsageError
from vida_loader.faults import classify
from vida_loader.mongo import check_uri, client_options, close_client, describe_error, wire_advice
from vida_loader.retry import RetryPolicy, patient

if TYPE_CHECKING:
    from pymongo.database import Database

UNAUTHORIZED = 13
# A check waits out a throttled call (Cosmos DB charges metadata calls) a little while
CHECK_RETRY = RetryPolicy(window_s=10.0)


@dataclass(frozen=True)
class Finding:
    what: str  # server, driver, tls, collection, read, write
    ok: bool
    text: str


@dataclass
class SideReport:
    """What was found on one side (source or target)."""

    role: str
    uri: str  # redacted
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def add(self, what: str, ok: bool, text: str) -> bool:
        self.findings.append(Finding(what, ok, text))
        return ok


@dataclass(frozen=True)
class CheckResult:
    sides: tuple[SideReport, ...]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.sides)

    @property
    def problems(self) -> list[str]:
        return [f"{s.role} {f.what}: {f.text}" for s in self.sides for f in s.findings if not f.ok]


def describe_server(uri: str, build_info: dict[str, Any]) -> str:
    """Cosmos DB RU or vCore, Atlas, MongoDB or another server, with its version."""
    version = str(build_info.get("version", "?"))
    names = [h.rsplit(":", 1)[0] for h in uri_hosts(uri)]
    if any(n.endswith((".mongo.cosmos.azure.com", ".documents.azure.com")) for n in names):
        return f"Azure Cosmos DB for MongoDB (RU), API version {version}"
    if any(n.endswith(".mongocluster.cosmos.azure.com") for n in names):
        return f"Azure Cosmos DB for MongoDB (vCore), API version {version}"
    if any(n.endswith(".mongodb.net") for n in names):
        return f"MongoDB Atlas {version}"
    if "secantusVersion" in build_info:
        return f"other: SecantusDB {build_info['secantusVersion']} (MongoDB {version} API)"
    if build_info.get("gitVersion") and "modules" in build_info:
        return f"MongoDB {version}"
    return f"other (reports MongoDB {version})"


def uses_tls(uri: str) -> bool:
    """Whether the URI turns TLS on (mongodb+srv:// does by default)."""
    opts = uri_options(uri)
    default = "true" if uri.lower().startswith("mongodb+srv://") else "false"
    return opts.get("tls", opts.get("ssl", default)).lower() == "true"


def _local(uri: str) -> bool:
    return all(h.startswith(("127.", "localhost", "[::1]")) for h in uri_hosts(uri))


def check_side(
    role: str,
    ep: Endpoint,
    timeouts: Timeouts,
    *,
    read: bool = False,
    write: bool = False,
) -> SideReport:
    """Reach one side and check what a copy needs of it; never raises for the server."""
    report = SideReport(role, redact_uri(ep.uri) if ep.uri else "-")
    if not ep.uri:
        report.add("server", False, f"no URI: give --{role}-uri (or VIDA_{role.upper()}_URI)")
        return report
    try:
        check_uri(ep.uri, f"--{role}-uri")
    except UsageError as exc:
        report.add("server", False, exc.line())
        return report
    client: MongoClient[dict[str, Any]] | None = None
    try:
        client = MongoClient(ep.uri, **client_options(ep.uri, timeouts))
        if not _server(report, client, ep):
            return report
        if ep.db and ep.collection:
            _collection(report, client, ep, read=read)
        elif read:
            report.add(
                "collection",
                False,
                f"none named: give --{role}-db and --{role}-collection (or "
                f"VIDA_{role.upper()}_DB and VIDA_{role.upper()}_COLLECTION)",
            )
        if write:
            _write(report, client, ep)
    finally:
        if client is not None:
            close_client(client)
    return report


def _server(report: SideReport, client: MongoClient[dict[str, Any]], ep: Endpoint) -> bool:
    try:
        hello = client.admin.command("hello")
        build = client.admin.command("buildInfo")
    except ConfigurationError as exc:
        advice = wire_advice(str(exc))
        report.add("driver", False, advice or describe_error(exc, ep.uri))
        return False
    except OperationFailure as exc:
        if classify(exc).reason == "authentication failed":
            return report.add("server", False, "refused the credentials: check user and password")
        return report.add("server", False, f"failed `hello`: {describe_error(exc, ep.uri)}")
    except PyMongoError as exc:
        timeout = client.options.server_selection_timeout
        return report.add(
            "server",
            False,
            f"cannot reach it within {timeout:g} s ({describe_error(exc, ep.uri)}): check "
            "host, port, firewall and --select-timeout",
        )
    wire = int(hello.get("maxWireVersion", 0))
    report.add("server", True, f"{describe_server(ep.uri, build)}, wire version {wire}")
    low, high = common.MIN_SUPPORTED_WIRE_VERSION, common.MAX_SUPPORTED_WIRE_VERSION
    report.add("driver", True, f"pymongo {pymongo.version} talks wire {low}-{high}: it can")
    tls = uses_tls(ep.uri)
    if tls:
        report.add("tls", True, "on")
    else:
        where = "this host only" if _local(ep.uri) else "the network: passwords travel in clear"
        report.add("tls", True, f"off (plain TCP across {where})")
    return True


def _collection(
    report: SideReport, client: MongoClient[dict[str, Any]], ep: Endpoint, *, read: bool
) -> None:
    db = client[ep.db]
    try:
        found = patient(
            lambda: db.list_collection_names(filter={"name": ep.collection}), CHECK_RETRY
        )
    except OperationFailure as exc:
        if exc.code == UNAUTHORIZED:
            report.add("collection", False, f"may not list the collections of '{ep.db}'")
            return
        report.add("collection", False, describe_error(exc, ep.uri))
        return
    except PyMongoError as exc:
        report.add("collection", False, describe_error(exc, ep.uri))
        return
    if not found:
        if read:
            report.add(
                "collection",
                False,
                f"'{ep.namespace}' does not exist: check --{report.role}-db "
                f"and --{report.role}-collection",
            )
        else:
            report.add(
                "collection", True, f"'{ep.namespace}' does not exist yet: the copy creates it"
            )
        return
    try:
        stats = patient(lambda: db.command("collStats", ep.collection), CHECK_RETRY)
        count, size_b = int(stats.get("count", 0)), int(stats.get("size", 0))
        size = f"{count:,} documents, {size_b / 2**20:,.1f} MiB"
    except PyMongoError:
        count, size = -1, "size unknown (collStats refused)"
    if read:
        report.add("collection", True, f"'{ep.namespace}': {size}")
    else:
        note = " (run needs --append or --drop-target)" if count else ""
        report.add("collection", True, f"'{ep.namespace}' exists: {size}{note}")
    if read:
        _read(report, db, ep)


def _read(report: SideReport, db: Database[dict[str, Any]], ep: Endpoint) -> None:
    """Whether a document of the collection can be read."""
    try:
        db[ep.collection].find_one({}, projection={"_id": 1})
        report.add("read", True, f"may read '{ep.namespace}'")
    except OperationFailure as exc:
        what = "may not read" if exc.code == UNAUTHORIZED else "cannot read"
        report.add("read", False, f"{what} '{ep.namespace}': {describe_error(exc, ep.uri)}")
    except PyMongoError as exc:
        report.add("read", False, f"cannot read '{ep.namespace}': {describe_error(exc, ep.uri)}")


def _write(report: SideReport, client: MongoClient[dict[str, Any]], ep: Endpoint) -> None:
    if not ep.db:
        report.add("write", False, f"no database: give --{report.role}-db")
        return
    name = f"vida_loader_check_{os.getpid()}_{secrets.token_hex(4)}"
    scratch = client[ep.db].get_collection(name)
    try:
        scratch.insert_one({"_id": 1, "check": "vida-loader config check"})
    except OperationFailure as exc:
        what = "may not write" if exc.code == UNAUTHORIZED else "cannot write"
        report.add("write", False, f"{what} to '{ep.db}': {describe_error(exc, ep.uri)}")
        return
    except PyMongoError as exc:
        report.add("write", False, f"cannot write to '{ep.db}': {describe_error(exc, ep.uri)}")
        return
    try:
        scratch.drop()
    except PyMongoError as exc:
        report.add(
            "write",
            True,
            f"may write to '{ep.db}', but dropping the scratch collection "
            f"'{name}' failed ({describe_error(exc, ep.uri)}): drop it by hand",
        )
        return
    report.add("write", True, f"may write to '{ep.db}' (scratch collection written and dropped)")


def check_copy(source: Endpoint, target: Endpoint, timeouts: Timeouts) -> CheckResult:
    """Whether a copy from ``source`` to ``target`` can start."""
    return CheckResult(
        (
            check_side("source", source, timeouts, read=True),
            check_side("target", target, timeouts, write=True),
        )
    )


def check_generate(target: Endpoint, timeouts: Timeouts) -> CheckResult:
    """Whether ``generate`` can write into ``target``."""
    return CheckResult((check_side("target", target, timeouts, write=True),))
