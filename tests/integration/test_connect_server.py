"""Client timeouts against a real server that is slow to answer."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pymongo import MongoClient

from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Timeouts
from vida_loader.mongo import connect

pytestmark = pytest.mark.integration


def test_a_heartbeat_slower_than_server_selection_does_not_cancel_a_running_read() -> None:
    # A server busy with many range scans answers pymongo's monitor `hello` late. If the
    # monitor times out, pymongo cancels every operation in flight ("operation
    # cancelled"): 8 workers on a slow server all failed that way while the heartbeat
    # shared the 8 s server-selection bound.
    with LocalServer.temporary(test_commands=True) as srv:
        admin: MongoClient[dict[str, Any]] = MongoClient(srv.uri, serverSelectionTimeoutMS=5000)
        admin.t.c.insert_many([{"_id": i} for i in range(300)])
        client = connect(
            srv.uri, role="source", timeouts=Timeouts(select_ms=1000), heartbeatFrequencyMS=500
        )
        try:
            admin.admin.command(
                "configureFailPoint",
                "failCommand",
                mode="alwaysOn",
                data={
                    "failCommands": ["hello", "isMaster", "find"],
                    "blockConnection": True,
                    "blockTimeMS": 2500,
                    "appName": "vida-loader",
                },
            )
            started = time.monotonic()
            ids = [d["_id"] for d in client.t.c.find(batch_size=50)]
            # The read really waited past the 1 s bound (so a heartbeat was due meanwhile).
            assert time.monotonic() - started >= 2.5
            assert ids == list(range(300))
        finally:
            admin.admin.command("configureFailPoint", "failCommand", mode="off")
            client.close()
            admin.close()
