"""A Cosmos DB stand-in: a MongoDB-wire proxy in front of a local server that meters
request units (RU) and throttles like an RU-provisioned Cosmos DB account.

No Cosmos DB can run here, and no local server meters RU, so tests, ``make bench-ru``
and ``make demo-cosmos`` copy through this proxy. It is dev tooling, not the library.

Charge model (documented, so tests can compute what to expect):

=========================  ================================================================
command                    charge in RU
=========================  ================================================================
find, aggregate, getMore   ``PAGE_RU`` + ``READ_RU_PER_KB`` x KB of the reply
count                      ``COUNT_RU`` + ``COUNT_RU_PER_DOC`` x documents counted
insert, update, delete     ``WRITE_RU_PER_KB`` x KB of the request (at least that of 1 KB)
handshake, auth, ping,     0
getLastRequestStatistics,
customAction, endSessions
anything else              ``OTHER_RU``
=========================  ================================================================

Budget: ``ru`` RU per second, one physical partition. Each charge lands in the wall
second in which its reply is sent. A request that arrives in a second whose charges have
reached ``ru`` is refused with code 16500 and Cosmos DB's message
(``Error=16500, RetryAfterMs=N, ...``, N the milliseconds left in that second) and is not
charged; an unacknowledged write (``moreToCome``) over budget is dropped without a word,
as Cosmos DB does. With ``server_side_retry`` > 0 such a request waits for the next
second instead, and after that many seconds is answered with code 50
(``ExceededTimeLimit``), as Cosmos DB's Server Side Retry does.

Like Cosmos DB it answers ``getLastRequestStatistics`` (the charge of the connection's
last command) and ``customAction: GetCollection`` / ``GetDatabase`` (the provisioned
throughput). Its own commands, for tests: ``standInStats`` (what it charged, per command
and per second, throttled and dropped counts), ``standInReset`` and
``standInConfigure: {ru, serverSideRetry, hideThroughput, latencyMs, readRuPerKb,
maxPageDocs}`` (hideThroughput: answer ``customAction`` without a throughput, as a
serverless account does; latencyMs: wait that long before forwarding each command, as a
server far away would; readRuPerKb: what a KB read costs; maxPageDocs: the most
documents a reply page holds, as Cosmos DB's 4 MB limit does).

    python -m vida_loader.dev.cosmos --port 27100 --upstream 127.0.0.1:27017 --ru 3000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import struct
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bson

from vida_loader.dev.server import ServerStartError, free_port

OP_MSG = 2013
MORE_TO_COME = 1 << 1
CHECKSUM_PRESENT = 1 << 0

PAGE_RU = 2.0
READ_RU_PER_KB = 1.0
COUNT_RU = 1.0
COUNT_RU_PER_DOC = 0.01
WRITE_RU_PER_KB = 5.0
OTHER_RU = 1.0

READS = frozenset({"find", "aggregate", "getMore"})
WRITES = frozenset({"insert", "update", "delete"})
FREE = frozenset(
    {
        "hello",
        "isMaster",
        "ismaster",
        "ping",
        "buildInfo",
        "buildinfo",
        "saslStart",
        "saslContinue",
        "endSessions",
        "getLastRequestStatistics",
        "customAction",
    }
)
OWN = frozenset({"standInStats", "standInReset", "standInConfigure"})


def charge_of(
    name: str, request_bytes: int, reply_bytes: int, counted: int, per_kb: float = READ_RU_PER_KB
) -> float:
    """The RU a command costs under the model above (``per_kb``: of a read)."""
    if name in READS:
        return PAGE_RU + per_kb * reply_bytes / 1024
    if name == "count":
        return COUNT_RU + COUNT_RU_PER_DOC * counted
    if name in WRITES:
        return WRITE_RU_PER_KB * max(request_bytes, 1024) / 1024
    if name in FREE or name in OWN:
        return 0.0
    return OTHER_RU


def throttle_message(retry_after_ms: int) -> str:
    """Cosmos DB's throttling text (code 16500), with its only back-off hint."""
    return (
        f"Error=16500, RetryAfterMs={retry_after_ms}, Details='Response status code does "
        "not indicate success: TooManyRequests (429); Substatus: 3200; Reason: (Message: "
        "Request rate is large. More Request Units may be needed, so no changes were made. "
        "Please retry this request later.)'"
    )


@dataclass
class Meter:
    """The account's budget and what it charged; one per proxy, shared by connections."""

    ru: float
    server_side_retry: float = 0.0
    latency_ms: float = 0.0  # added before each forwarded command: a remote server
    read_ru_per_kb: float = READ_RU_PER_KB  # what a KB read costs
    # Most documents per reply page (Cosmos DB answers at most 4 MB): a larger batchSize
    # asked by find or getMore is lowered to it. 0: as asked.
    max_page_docs: int = 0
    origin: float = field(default_factory=time.monotonic)
    per_second: defaultdict[int, float] = field(default_factory=lambda: defaultdict(float))
    by_command: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    commands: Counter[str] = field(default_factory=Counter)
    largest: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    throttled: Counter[str] = field(default_factory=Counter)
    dropped_writes: int = 0

    def second(self) -> int:
        return int(time.monotonic() - self.origin)

    def over_budget(self) -> int:
        """Milliseconds left in this second when its budget is spent, else 0."""
        elapsed = time.monotonic() - self.origin
        if self.per_second[int(elapsed)] < self.ru:
            return 0
        return max(1, math.ceil((1 - elapsed % 1) * 1000))

    def charge(self, name: str, ru: float) -> None:
        self.per_second[self.second()] += ru
        self.by_command[name] += ru
        self.commands[name] += 1
        self.largest[name] = max(self.largest[name], ru)

    def stats(self) -> dict[str, Any]:
        now = self.second()
        return {
            "ok": 1,
            "ru": self.ru,
            "charged": sum(self.by_command.values()),
            "byCommand": dict(self.by_command),
            "commands": dict(self.commands),
            "largest": dict(self.largest),  # the most one command of each name cost
            "throttled": dict(self.throttled),
            "droppedWrites": self.dropped_writes,
            # [second since start, RU charged in it]; the running second is left out.
            "seconds": [[s, self.per_second[s]] for s in sorted(self.per_second) if s < now],
        }

    def reset(self) -> None:
        self.origin = time.monotonic()
        self.per_second.clear()
        self.by_command.clear()
        self.commands.clear()
        self.largest.clear()
        self.throttled.clear()
        self.dropped_writes = 0


@dataclass
class _Last:
    """The last command on one connection, for ``getLastRequestStatistics``."""

    name: str = ""
    charge: float = 0.0
    ms: int = 0


def _read_name(doc: bytes) -> str:
    """The first key of a BSON document (the command's name), without decoding it."""
    end = doc.index(b"\x00", 5)
    return doc[5:end].decode("utf-8")


def _capped(header: bytes, body: bytes, doc_len: int, most: int) -> tuple[bytes, bytes]:
    """The find/getMore message with its batchSize lowered to ``most`` documents."""
    cmd = bson.decode(body[5 : 5 + doc_len])
    asked = cmd.get("batchSize")
    if cmd.get("find") is not None and asked is None:
        return header, body  # the server's first batch: 101 documents
    if asked is not None and asked <= most:
        return header, body
    cmd["batchSize"] = most
    new_body = body[:5] + bson.encode(cmd) + body[5 + doc_len :]
    _len, request_id, response_to, opcode = struct.unpack("<iiii", header)
    return struct.pack("<iiii", 16 + len(new_body), request_id, response_to, opcode), new_body


def _message(request_id: int, response_to: int, doc: dict[str, Any]) -> bytes:
    body = struct.pack("<I", 0) + b"\x00" + bson.encode(doc)
    return struct.pack("<iiii", 16 + len(body), request_id, response_to, OP_MSG) + body


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(16)
    (length,) = struct.unpack_from("<i", header)
    return header, await reader.readexactly(length - 16)


class Proxy:
    """The asyncio server: one upstream connection per client connection."""

    def __init__(self, upstream: tuple[str, int], meter: Meter, db_level: bool = False) -> None:
        self.upstream = upstream
        self.meter = meter
        self.db_level = db_level  # throughput provisioned on the database, not the collection
        self.hide_throughput = False  # tell no throughput (as a serverless account)
        self._ids = 1

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_r, up_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        last = _Last()
        try:
            while True:
                header, body = await _read_message(reader)
                reply = await self._handle(header, body, up_r, up_w, last)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            for w in (writer, up_w):
                w.close()

    async def _handle(
        self,
        header: bytes,
        body: bytes,
        up_r: asyncio.StreamReader,
        up_w: asyncio.StreamWriter,
        last: _Last,
    ) -> bytes | None:
        _len, request_id, _to, opcode = struct.unpack("<iiii", header)
        if opcode != OP_MSG or body[4] != 0:
            # The legacy handshake (OP_QUERY): passed through, free.
            up_w.write(header + body)
            rh, rb = await _read_message(up_r)
            return rh + rb
        flags = int.from_bytes(body[:4], "little")
        (doc_len,) = struct.unpack_from("<i", body, 5)
        name = _read_name(body[5 : 5 + doc_len])
        if name in OWN or name in ("getLastRequestStatistics", "customAction"):
            cmd = bson.decode(body[5 : 5 + doc_len])
            return _message(self._next_id(), request_id, self._local(name, cmd, last))
        meter = self.meter
        wait_ms = 0 if name in FREE else meter.over_budget()
        retried = wait_ms > 0 and meter.server_side_retry > 0
        if retried:
            wait_ms = await self._server_side_retry()
        if wait_ms:
            meter.throttled[name] += 1
            last.name, last.charge, last.ms = name, 0.0, 0
            if flags & MORE_TO_COME:
                meter.dropped_writes += 1  # no reply is expected: it vanishes
                return None
            refusal = _exceeded_time_limit() if retried else _throttled(wait_ms)
            return _message(self._next_id(), request_id, refusal)
        if meter.max_page_docs and name in ("find", "getMore"):
            header, body = _capped(header, body, doc_len, meter.max_page_docs)
        started = time.monotonic()
        if meter.latency_ms > 0:
            await asyncio.sleep(meter.latency_ms / 1000)
        up_w.write(header + body)
        if flags & MORE_TO_COME:
            await up_w.drain()
            self._account(name, len(body), 0, 0, started, last)
            return None
        rh, rb = await _read_message(up_r)
        counted = 0
        if name == "count":
            (r_len,) = struct.unpack_from("<i", rb, 5)
            counted = int(bson.decode(rb[5 : 5 + r_len]).get("n", 0))
        self._account(name, len(body), len(rb), counted, started, last)
        return rh + rb

    def _account(
        self, name: str, req: int, rep: int, counted: int, started: float, last: _Last
    ) -> None:
        ru = charge_of(name, req, rep, counted, self.meter.read_ru_per_kb)
        self.meter.charge(name, ru)
        last.name, last.charge = name, ru
        last.ms = int((time.monotonic() - started) * 1000)

    async def _server_side_retry(self) -> int:
        """Wait for a second with budget left, up to ``server_side_retry`` seconds."""
        meter = self.meter
        deadline = time.monotonic() + meter.server_side_retry
        while True:
            wait_ms = meter.over_budget()
            if not wait_ms:
                return 0
            if time.monotonic() + wait_ms / 1000 > deadline:
                return wait_ms
            await asyncio.sleep(wait_ms / 1000)

    def _local(self, name: str, cmd: dict[str, Any], last: _Last) -> dict[str, Any]:
        meter = self.meter
        if name == "getLastRequestStatistics":
            return {
                "CommandName": last.name,
                "RequestCharge": last.charge,
                "RequestDurationInMilliSeconds": last.ms,
                "ok": 1.0,
            }
        if name == "customAction":
            return self._custom_action(cmd)
        if name == "standInStats":
            return meter.stats()
        if name == "standInReset":
            meter.reset()
            return {"ok": 1}
        conf = cmd["standInConfigure"]
        meter.ru = float(conf.get("ru", meter.ru))
        meter.server_side_retry = float(conf.get("serverSideRetry", meter.server_side_retry))
        self.hide_throughput = bool(conf.get("hideThroughput", self.hide_throughput))
        meter.latency_ms = float(conf.get("latencyMs", meter.latency_ms))
        meter.read_ru_per_kb = float(conf.get("readRuPerKb", meter.read_ru_per_kb))
        meter.max_page_docs = int(conf.get("maxPageDocs", meter.max_page_docs))
        return {"ok": 1}

    def _custom_action(self, cmd: dict[str, Any]) -> dict[str, Any]:
        action = cmd.get("customAction")
        db = cmd.get("$db", "")
        throughput = int(self.meter.ru)
        if self.hide_throughput and action in ("GetCollection", "GetDatabase"):
            return {"database": db, "ok": 1}
        if action == "GetCollection":
            reply: dict[str, Any] = {"database": db, "collection": cmd.get("collection")}
            if not self.db_level:
                reply["provisionedThroughput"] = throughput
            return {**reply, "ok": 1}
        if action == "GetDatabase":
            reply = {"database": db}
            if self.db_level:
                reply["provisionedThroughput"] = throughput
            return {**reply, "ok": 1}
        return {"ok": 0, "code": 115, "codeName": "CommandNotSupported", "errmsg": str(action)}


def _throttled(retry_after_ms: int) -> dict[str, Any]:
    return {
        "ok": 0.0,
        "errmsg": throttle_message(retry_after_ms),
        "code": 16500,
        "codeName": "TooManyRequests",
    }


def _exceeded_time_limit() -> dict[str, Any]:
    return {
        "ok": 0.0,
        "errmsg": "Request timed out. Retries due to rate limiting were exhausted.",
        "code": 50,
        "codeName": "ExceededTimeLimit",
    }


async def _main(args: argparse.Namespace) -> None:
    host, _, port = args.upstream.rpartition(":")
    meter = Meter(args.ru, args.server_side_retry)
    proxy = Proxy((host, int(port)), meter, args.database_throughput)
    server = await asyncio.start_server(proxy.serve, args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


@dataclass
class CosmosStandIn:
    """The proxy as a subprocess in front of ``upstream`` (a running local server's port).

    ``start`` polls until it answers; ``stats``/``reset``/``configure`` talk to it.
    """

    upstream_port: int
    ru: float
    server_side_retry: float = 0.0
    database_throughput: bool = False
    port: int = 0
    host: str = "127.0.0.1"
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self, timeout: float = 30.0) -> CosmosStandIn:
        self.port = self.port or free_port()
        cmd = [
            sys.executable,
            "-m",
            "vida_loader.dev.cosmos",
            "--port",
            str(self.port),
            "--upstream",
            f"127.0.0.1:{self.upstream_port}",
            "--ru",
            str(self.ru),
            "--server-side-retry",
            str(self.server_side_retry),
        ]
        if self.database_throughput:
            cmd.append("--database-throughput")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(f"the Cosmos DB stand-in exited on port {self.port}")
            with contextlib.suppress(Exception):
                self.command("ping")
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(f"the Cosmos DB stand-in did not answer on port {self.port}")

    def command(self, name: str, value: Any = 1) -> dict[str, Any]:
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, socketTimeoutMS=10000
        )
        try:
            return client.admin.command(name, value)
        finally:
            client.close()

    def stats(self) -> dict[str, Any]:
        return self.command("standInStats")

    def reset(self) -> None:
        self.command("standInReset")

    def configure(self, **conf: float) -> None:
        self.command("standInConfigure", conf)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def __enter__(self) -> CosmosStandIn:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the real server")
    parser.add_argument("--ru", type=float, required=True, help="provisioned RU per second")
    parser.add_argument("--server-side-retry", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--database-throughput", action="store_true")
    args = parser.parse_args(argv)
    asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
