"""The charge meter: which charges it reads, and how it estimates the others."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from vida_loader.ru.meter import ChargeMeter, accounting_on, reports_charges


class _Event:
    def __init__(self, name: str) -> None:
        self.command_name = name
        self.failure: dict[str, Any] = {"code": 16500, "errmsg": "Error=16500, RetryAfterMs=5"}


class _Db:
    """Answers getLastRequestStatistics with the charges given, in turn."""

    def __init__(self, *charges: float | Exception) -> None:
        self.charges = list(charges)
        self.asked = 0

    def command(self, name: str) -> dict[str, Any]:
        assert name == "getLastRequestStatistics"
        self.asked += 1
        charge = self.charges.pop(0)
        if isinstance(charge, Exception):
            raise charge
        return {"CommandName": "x", "RequestCharge": charge, "ok": 1}


def _meter(db: _Db, every: int = 1) -> ChargeMeter:
    m = ChargeMeter(every)
    m.db = db  # type: ignore[assignment]
    return m


def _ran(m: ChargeMeter, name: str, ok: bool = True) -> None:
    m.started(_Event(name))  # type: ignore[arg-type]
    if ok:
        m.succeeded(_Event(name))  # type: ignore[arg-type]
    else:
        m.failed(_Event(name))  # type: ignore[arg-type]


def test_each_settled_command_is_read_and_reported() -> None:
    db, seen = _Db(10.0, 20.0), []
    m = _meter(db)
    m.on_charge = seen.append
    _ran(m, "find")
    m.settle()
    _ran(m, "getMore")
    _ran(m, "getLastRequestStatistics")  # its own command is never metered
    m.settle()
    m.settle()  # nothing pending: no round trip
    c = m.take()
    assert (c.ru, c.measured, c.read, c.commands) == (30.0, 30.0, 2, 2)
    assert seen == [10.0, 20.0] and db.asked == 2


def test_an_overtaken_command_is_estimated_at_the_mean_of_its_name() -> None:
    m = _meter(_Db(10.0, 30.0, 100.0, 50.0))
    _ran(m, "getMore")
    m.settle()
    _ran(m, "getMore")
    m.settle()  # getMore reads average 20
    _ran(m, "find")
    m.settle()
    _ran(m, "getMore")  # overtaken by the next command: 20 estimated
    _ran(m, "count")  # none read: at the mean of every read (190 / 4, once find's 50 is in)
    _ran(m, "killCursors", ok=False)  # a failure never read: 0 (a throttled one is free)
    _ran(m, "find")  # read by take(): 50
    c = m.take()
    assert c.measured == 190.0 and c.read == 4 and c.commands == 7
    assert c.ru == pytest.approx(190 + 20 + 190 / 4)


def test_sampling_reads_every_kth_and_estimates_the_rest() -> None:
    db = _Db(*[5.0] * 10)
    m = _meter(db, every=4)
    for _ in range(12):
        _ran(m, "getMore")
        m.settle()
    c = m.take()
    assert db.asked == 3 and c.read == 3 and c.commands == 12
    assert c.ru == pytest.approx(60.0)


def test_a_broken_connection_leaves_the_charge_estimated() -> None:
    m = _meter(_Db(8.0, AutoReconnect("gone")))
    _ran(m, "find")
    m.settle()
    _ran(m, "find")
    m.settle()
    c = m.take()
    assert (c.measured, c.read, c.ru) == (8.0, 1, 16.0)
    assert m.take().ru == 0  # take() starts over


class _Refuses:
    def command(self, name: str) -> dict[str, Any]:
        raise OperationFailure("no such command: 'getLastRequestStatistics'", code=59)


def test_the_probe_and_the_modes() -> None:
    assert not reports_charges(_Refuses())  # type: ignore[arg-type]
    assert reports_charges(_Db(0.0))  # type: ignore[arg-type]
    assert accounting_on("auto", _Db(0.0)) is True  # type: ignore[arg-type]
    assert accounting_on("auto", _Refuses()) is False  # type: ignore[arg-type]
    assert accounting_on("off", _Db(0.0)) is False  # type: ignore[arg-type]
    with pytest.raises(Exception, match="--ru-accounting 'on'"):
        accounting_on("on", _Refuses())  # type: ignore[arg-type]
