"""Request units (RU): what a Cosmos DB source charges for the commands a copy sends.

Cosmos DB bills every command in RU and tells the charge of a connection's last command
when asked ``getLastRequestStatistics`` on that same connection. A worker's source client
has one connection, so the charge read right after a command is that command's.

:class:`ChargeMeter` is a command listener on the source client: it notes each command
that ends. The worker calls :meth:`ChargeMeter.settle` where no command is running on the
connection (between two documents of a cursor, after each call that used the source),
which reads the charge of the last command with one more round trip. Every
``sample_every``-th command is read; the others, and the commands that ran before a
charge could be read (a call that sends several), are estimated at the mean charge of
the commands of the same name and outcome read so far (a command that failed, as a
throttled one does, at 0 RU until one was read; one that succeeded at the mean of all
while none of its name was read).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import monitoring
from pymongo.errors import OperationFailure, PyMongoError

from vida_loader.errors import UsageError
from vida_loader.faults import Fault, classify_code, passing
from vida_loader.retry import patient

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

    from vida_loader.ru.budget import RuBudget

STATS_COMMAND = "getLastRequestStatistics"
# Commands that bill nothing worth counting or that talk about the connection itself.
UNMETERED = frozenset(
    {
        STATS_COMMAND,
        "hello",
        "isMaster",
        "ismaster",
        "ping",
        "endSessions",
        "saslStart",
        "saslContinue",
        "buildInfo",
    }  # fmt: skip
)
MODES = ("auto", "on", "off")
FAILED = " failed"  # the estimates keep failed commands (throttled: 0 RU) apart


@dataclass
class Charges:
    """RU of some commands: read from the server, plus estimated for those not read."""

    ru: float = 0.0  # read + estimated
    measured: float = 0.0  # read from the server
    commands: int = 0  # commands sent
    read: int = 0  # commands whose charge was read
    paced_s: float = 0.0  # seconds commands waited for the run's RU budget
    reading_s: float = 0.0  # seconds spent asking for charges (one round trip each)

    def add(self, other: Charges) -> None:
        self.ru += other.ru
        self.measured += other.measured
        self.commands += other.commands
        self.read += other.read
        self.paced_s += other.paced_s
        self.reading_s += other.reading_s


class ChargeMeter(monitoring.CommandListener):
    """Reads and sums the charges of one client's commands (see the module's text).

    With a ``budget`` (the run's shared RU budget) each command first waits for its
    expected charge there, before it is sent; the charge read later settles the
    difference, and a throttled command tells the budget to slow down.
    """

    def __init__(self, sample_every: int = 1, budget: RuBudget | None = None) -> None:
        self.sample_every = max(1, sample_every)
        self.budget = budget
        self.guess = 0.0  # expected charge of a command while none was read
        self.db: Database[Any] | None = None  # set once the client exists
        self.on_charge: Callable[[float], None] | None = None
        self.pending: str | None = None  # a command whose charge is to be read
        self._expected = 0.0  # taken from the budget by the command now running
        self.last: tuple[str, float] = ("", 0.0)  # the last charge read: (command, RU)
        self._pending_expected = 0.0
        self._ended = 0
        self._open = Charges()
        self._unread: defaultdict[str, int] = defaultdict(int)  # per name, since take()
        self._sum: defaultdict[str, float] = defaultdict(float)  # of charges read, per name
        self._n: defaultdict[str, int] = defaultdict(int)

    # -- the listener: called by pymongo in the thread that runs the command ----------
    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in UNMETERED:
            return
        if self.pending is not None:  # overtaken: its charge can no longer be read
            self._unread[self.pending] += 1
            self.pending = None
        if self.budget is not None:
            self._expected = self.expect(event.command_name)
            self._open.paced_s += self.budget.acquire(self._expected)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.command_name not in UNMETERED:
            self._ended_one(event.command_name)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if event.command_name in UNMETERED:
            return
        self._ended_one(event.command_name + FAILED)
        failure = event.failure if isinstance(event.failure, dict) else {}
        code = failure.get("code")
        if (
            self.budget is not None
            and (
                classify_code(
                    code if isinstance(code, int) else None, str(failure.get("errmsg", ""))
                )
            ).fault
            is Fault.THROTTLED
        ):
            self.budget.throttled()

    def _ended_one(self, name: str) -> None:
        self._open.commands += 1
        self._ended += 1
        if self._ended % self.sample_every == 0:
            self.pending = name
            self._pending_expected = self._expected
        else:
            self._unread[name] += 1

    # -- the worker's side ---------------------------------------------------------------
    def settle(self) -> None:
        """Read the charge of the last command if it is to be read. Call only where no
        command of this client is running (never from inside a listener)."""
        name = self.pending
        if name is None or self.db is None:
            return
        self.pending = None
        started = time.perf_counter()
        try:
            reply = self.db.command(STATS_COMMAND)
        except PyMongoError:
            self._unread[name] += 1  # the connection broke: estimate it
            return
        finally:
            self._open.reading_s += time.perf_counter() - started
        charge = float(reply.get("RequestCharge", 0.0))
        self.last = (name, charge)
        if self.budget is not None:
            self.budget.settle(charge - self._pending_expected)
        self._sum[name] += charge
        self._n[name] += 1
        self._open.measured += charge
        self._open.read += 1
        if self.on_charge is not None:
            self.on_charge(charge)

    def mean(self, name: str) -> float:
        """The mean charge read of commands like ``name`` (see the module's text)."""
        if self._n[name]:
            return self._sum[name] / self._n[name]
        if name.endswith(FAILED):
            return 0.0
        ok = [k for k in self._n if not k.endswith(FAILED)]
        n = sum(self._n[k] for k in ok)
        return sum(self._sum[k] for k in ok) / n if n else 0.0

    def expect(self, name: str) -> float:
        """What a command called ``name`` is expected to cost, before it is sent."""
        if self._n[name] or any(self._n.values()):
            return self.mean(name)
        return self.guess

    def take(self) -> Charges:
        """The charges since the previous ``take`` (the estimates at today's means)."""
        self.settle()
        estimated = sum(count * self.mean(name) for name, count in self._unread.items())
        taken, self._open = self._open, Charges()
        self._unread.clear()
        taken.ru = taken.measured + estimated
        if estimated and self.on_charge is not None:
            self.on_charge(estimated)
        return taken


def reports_charges(db: Database[Any]) -> bool:
    """Whether the server answers ``getLastRequestStatistics`` (Cosmos DB does)."""
    try:
        reply = patient(lambda: db.command(STATS_COMMAND), role="source")
    except OperationFailure as exc:
        if passing(exc):  # throttled for a minute: not a server without charges
            raise
        return False
    return "RequestCharge" in reply


def accounting_on(mode: str, db: Database[Any]) -> bool:
    """Whether to meter the source: ``mode`` auto (when it answers the statistics
    command, as every Cosmos DB account does: asked once), on (refused when it does
    not), off."""
    if mode == "off":
        return False
    answers = reports_charges(db)
    if mode == "on" and not answers:
        raise UsageError(
            f"--ru-accounting 'on': the source does not answer {STATS_COMMAND}, so its "
            "request charges cannot be read",
            value="on",
            setting="--ru-accounting",
            fix="use --ru-accounting auto (meter only a source that reports charges) or off",
        )
    return answers


def provisioned_throughput(db: Database[Any], collection: str) -> float | None:
    """The RU/s provisioned for ``collection`` (its own, else its database's; autoscale:
    the maximum), as Cosmos DB's ``customAction`` commands tell; None when not told."""
    for request in (
        {"customAction": "GetCollection", "collection": collection},
        {"customAction": "GetDatabase"},
    ):
        try:
            reply = patient(partial(db.command, request), role="source")
        except OperationFailure as exc:
            if passing(exc):
                raise
            continue
        autoscale = reply.get("autoScaleSettings") or {}
        value = reply.get("provisionedThroughput") or autoscale.get("maxThroughput")
        if value:
            return float(value)
    return None


ESTIMATE_PAGES = 3  # pages read by ``plan`` to measure what reading costs
ESTIMATE_PAGE_KB = 100  # about the size of a paced copy's page


@dataclass(frozen=True)
class ReadCost:
    """What reading the source costs, measured by ``plan`` on pages shaped like the
    copy's (a range query sorted by ``_id``)."""

    per_kb: float  # RU per KB read
    pages: int  # pages measured
    kb: float  # KB they held
    provisioned: float | None  # RU/s, as the source tells (None: not told)

    def estimate(self, size_bytes: int) -> float:
        """RU to read ``size_bytes`` of documents."""
        return size_bytes / 1024 * self.per_kb

    def to_json(self, size_bytes: int) -> dict[str, Any]:
        return {
            "ru_per_kb": round(self.per_kb, 4),
            "pages_measured": self.pages,
            "kb_measured": round(self.kb, 1),
            "provisioned_ru_s": self.provisioned,
            "estimate_ru": round(self.estimate(size_bytes)),
        }


def measure_read_cost(
    coll: Collection[Any], starts: list[Any], avg_doc_bytes: float
) -> ReadCost | None:
    """Read a page from each of ``starts`` (``_id``s) and what each cost; None when no
    page held a document. ``coll``'s client must have one connection (charges are
    reported per connection)."""
    page_docs = max(1, min(1000, int(ESTIMATE_PAGE_KB * 1024 / max(avg_doc_bytes, 1))))
    raw = coll.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    ru = kb = 0.0
    pages = 0
    for start in starts[:ESTIMATE_PAGES]:
        docs = list(
            raw.find({"_id": {"$gte": start}}, sort=[("_id", 1)], limit=page_docs).batch_size(
                page_docs
            )
        )
        charge = float(coll.database.command(STATS_COMMAND).get("RequestCharge", 0.0))
        if docs:
            ru += charge
            kb += sum(len(d.raw) for d in docs) / 1024
            pages += 1
    if not pages or kb <= 0:
        return None
    return ReadCost(ru / kb, pages, kb, provisioned_throughput(coll.database, coll.name))
