"""The Cosmos DB stand-in (dev/cosmos.py) in front of a real local server: it charges by
its documented model, throttles like Cosmos DB, and answers Cosmos DB's own commands."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from vida_loader.dev.cosmos import PAGE_RU, READ_RU_PER_KB, CosmosStandIn
from vida_loader.dev.server import LocalServer
from vida_loader.faults import Fault, classify

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def standin(server: LocalServer) -> Iterator[CosmosStandIn]:
    with CosmosStandIn(server.port, ru=1_000_000) as s:
        yield s


def _client(s: CosmosStandIn) -> MongoClient[dict[str, Any]]:
    return MongoClient(s.uri, maxPoolSize=1, serverSelectionTimeoutMS=5000, socketTimeoutMS=20000)


def _last(c: MongoClient[dict[str, Any]]) -> dict[str, Any]:
    return c.admin.command("getLastRequestStatistics")


def test_reads_are_charged_per_page_and_kilobyte_and_reported_per_connection(
    standin: CosmosStandIn, request: pytest.FixtureRequest
) -> None:
    name = request.node.name[:40]
    a, b = _client(standin), _client(standin)
    try:
        a[name].c.insert_many([{"_id": i, "pad": "x" * 2000} for i in range(10)])
        inserted = _last(a)
        assert inserted["CommandName"] == "insert" and inserted["RequestCharge"] >= 5 * 19
        b[name].c.find_one({"_id": 3})
        found = _last(b)
        assert found["CommandName"] == "find"
        # One ~2 KB document in the reply: the page base plus about 2 RU.
        assert PAGE_RU + 1.9 * READ_RU_PER_KB < found["RequestCharge"] < PAGE_RU + 2.4
        assert _last(a)["CommandName"] == "insert"  # per connection, as on Cosmos DB
        assert a[name].c.count_documents({}) == 10
        stats = standin.stats()
        assert stats["byCommand"]["find"] == pytest.approx(found["RequestCharge"])
        assert stats["byCommand"]["insert"] == pytest.approx(inserted["RequestCharge"])
        assert stats["commands"]["aggregate"] == 1
    finally:
        a.close()
        b.close()


def test_a_spent_second_throttles_with_cosmos_dbs_message(
    standin: CosmosStandIn, request: pytest.FixtureRequest
) -> None:
    name = request.node.name[:40]
    c = _client(standin)
    try:
        c[name].c.insert_many([{"_id": i, "pad": "x" * 1000} for i in range(200)])
        standin.configure(ru=50)
        standin.reset()
        with pytest.raises(OperationFailure) as caught:
            for _ in range(20):
                list(c[name].c.find(batch_size=1000))  # ~200 RU a scan: the second is spent at once
        verdict = classify(caught.value)
        assert caught.value.code == 16500 and verdict.fault is Fault.THROTTLED
        assert verdict.retry_after_ms is not None and 0 < verdict.retry_after_ms <= 1000
        assert _last(c)["RequestCharge"] == 0  # a refused request is not charged
        c.admin.command("ping")  # the handshake commands are never throttled
        stats = standin.stats()
        assert sum(stats["throttled"].values()) >= 1
        # An unacknowledged write over budget vanishes without a word.
        standin.reset()
        list(c[name].c.find(batch_size=1000))
        c[name].get_collection("c", write_concern=_w0()).insert_many(
            [{"_id": 1000 + i} for i in range(5)], ordered=False
        )
        assert standin.stats()["droppedWrites"] >= 1
        standin.configure(ru=1_000_000)
        assert c[name].c.count_documents({"_id": {"$gte": 1000}}) == 0
    finally:
        c.close()


def test_server_side_retry_waits_then_answers_exceeded_time_limit(
    server: LocalServer, request: pytest.FixtureRequest
) -> None:
    name = request.node.name[:40]
    with CosmosStandIn(server.port, ru=20, server_side_retry=0.3) as s:
        c = _client(s)
        try:
            c[name].c.insert_many([{"_id": i, "pad": "x" * 1000} for i in range(40)])
            with pytest.raises(OperationFailure) as caught:
                for _ in range(5):
                    list(c[name].c.find(batch_size=1000))
            assert caught.value.code == 50
            assert classify(caught.value).fault is Fault.THROTTLED
        finally:
            c.close()


def test_provisioned_throughput_is_answered_at_its_level(server: LocalServer) -> None:
    with CosmosStandIn(server.port, ru=4000) as s:
        c = _client(s)
        try:
            coll = c.db.command({"customAction": "GetCollection", "collection": "c"})
            assert coll["provisionedThroughput"] == 4000
            assert "provisionedThroughput" not in c.db.command({"customAction": "GetDatabase"})
        finally:
            c.close()
    with CosmosStandIn(server.port, ru=4000, database_throughput=True) as s:
        c = _client(s)
        try:
            coll = c.db.command({"customAction": "GetCollection", "collection": "c"})
            assert "provisionedThroughput" not in coll
            assert c.db.command({"customAction": "GetDatabase"})["provisionedThroughput"] == 4000
        finally:
            c.close()


def _w0() -> Any:
    from pymongo import WriteConcern

    return WriteConcern(w=0)
