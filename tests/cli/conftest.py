"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from support import PAD

from vida_loader.cli import main
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
    for name, value in {
        "VIDA_SOURCE_URI": server.uri,
        "VIDA_SOURCE_DB": db.name,
        "VIDA_SOURCE_COLLECTION": "src",
        "VIDA_TARGET_URI": target_server.uri,
        "VIDA_TARGET_DB": db.name,
        "VIDA_TARGET_COLLECTION": "dst",
        "VIDA_MANIFEST_DIR": str(tmp_path / "parts"),
        "VIDA_JOB": "j",
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["plan", "--partitions", "3"]) == 0
    capsys.readouterr()
    return tmp_path / "parts" / "j"
