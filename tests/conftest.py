"""Shared fixtures: real local SecantusDB servers, one database per test."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from vida_loader.dev.server import LocalServer
from vida_loader.settings.registry import LEGACY, LEGACY_PROFILE


@pytest.fixture(autouse=True)
def _no_user_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every test starts without the developer's settings: no VIDA_* or legacy variables,
    no user profiles, and a current folder without .env_local or .env."""
    for name in list(os.environ):
        if name.startswith("VIDA_") or name in LEGACY or name == LEGACY_PROFILE:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def _started() -> Iterator[LocalServer]:
    with LocalServer.temporary(test_commands=True) as srv:
        yield srv


def _client_of(server: LocalServer) -> Iterator[MongoClient[dict[str, Any]]]:
    c: MongoClient[dict[str, Any]] = MongoClient(
        server.uri, serverSelectionTimeoutMS=5000, socketTimeoutMS=60000
    )
    yield c
    c.close()


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    yield from _started()


@pytest.fixture(scope="session")
def client(server: LocalServer) -> Iterator[MongoClient[dict[str, Any]]]:
    yield from _client_of(server)


@pytest.fixture
def db(
    client: MongoClient[dict[str, Any]], request: pytest.FixtureRequest
) -> Iterator[Database[dict[str, Any]]]:
    """A fresh database named after the test, dropped afterwards."""
    # Unique per test (parametrized ids differ only at the end): a killed run's last
    # inserts, still held by a fail point on the server, must not land in the next test.
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    name = "t_" + re.sub(r"[^A-Za-z0-9]", "_", request.node.name)[:40] + "_" + digest
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)


@pytest.fixture(scope="session")
def target_server() -> Iterator[LocalServer]:
    """A second server, so that fail points on the target leave the source alone."""
    yield from _started()


@pytest.fixture(scope="session")
def target_client(target_server: LocalServer) -> Iterator[MongoClient[dict[str, Any]]]:
    yield from _client_of(target_server)


@pytest.fixture
def tdb(
    target_client: MongoClient[dict[str, Any]], db: Database[dict[str, Any]]
) -> Iterator[Database[dict[str, Any]]]:
    """The database of the same name on the target server, dropped afterwards."""
    target_client.drop_database(db.name)
    yield target_client[db.name]
    target_client.admin.command("configureFailPoint", "failCommand", mode="off")
    target_client.drop_database(db.name)
