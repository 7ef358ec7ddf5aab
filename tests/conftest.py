"""Shared fixtures: real local SecantusDB servers, one database per test."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from vida_loader.devserver import LocalServer


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    with LocalServer.temporary(test_commands=True) as srv:
        yield srv


@pytest.fixture(scope="session")
def client(server: LocalServer) -> Iterator[MongoClient[dict[str, Any]]]:
    c: MongoClient[dict[str, Any]] = MongoClient(
        server.uri, serverSelectionTimeoutMS=5000, socketTimeoutMS=60000
    )
    yield c
    c.close()


@pytest.fixture
def db(
    client: MongoClient[dict[str, Any]], request: pytest.FixtureRequest
) -> Iterator[Database[dict[str, Any]]]:
    """A fresh database named after the test, dropped afterwards."""
    name = "t_" + re.sub(r"[^A-Za-z0-9]", "_", request.node.name)[:50]
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)
