"""Fixtures of the CLI tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from support import PAD, plan_by_env

from vida_loader.dev.server import LocalServer

DB = Database[dict[str, Any]]


@pytest.fixture
def plan_of(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., Path]:
    """plan_of(docs, partitions, job="j"): that many padded documents in db.src, planned
    through the CLI into db.dst by VIDA_* variables; the job folder's path."""

    def make(docs: int, partitions: int, job: str = "j") -> Path:
        db.src.insert_many([{"_id": i, "pad": PAD} for i in range(docs)])
        path = plan_by_env(monkeypatch, server, target_server, db, tmp_path, job, partitions)
        capsys.readouterr()
        return path

    return make


@pytest.fixture
def planned(plan_of: Callable[..., Path]) -> Path:
    """3,000 documents planned in 3 partitions; the job folder's path."""
    return plan_of(3000, 3)
