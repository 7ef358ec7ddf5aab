"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from support import PAD, plan_by_env

from vida_loader.devserver import LocalServer

DB = Database[dict[str, Any]]


@pytest.fixture
def planned(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """3,000 documents planned in 3 partitions; the job folder's path."""
    db.src.insert_many([{"_id": i, "pad": PAD} for i in range(3000)])
    job = plan_by_env(monkeypatch, server, target_server, db, tmp_path, "j", 3)
    capsys.readouterr()
    return job
