"""run --executor dask: the tasks run on the workers of a real Dask cluster (a scheduler
and two worker processes started here), the coordinator stays the only writer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_cluster import LocalDask, local_dask
from pymongo.database import Database
from support import PAD, plan_in, raw_hashes, run_in

from vida_loader.dev.server import LocalServer
from vida_loader.manifest import Manifest
from vida_loader.runstate import TaskState

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
DB = Database[dict[str, Any]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDask]:
    with local_dask(tmp_path_factory.mktemp("dask")) as c:
        yield c


@pytest.fixture
def four(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> Manifest:
    """4,000 documents planned in 4 partitions."""
    db.src.insert_many([{"_id": i, "pad": PAD, "n": i % 7} for i in range(4000)])
    return plan_in(server, target_server, db, tmp_path, partitions=4)


def test_a_job_copied_on_dask_is_byte_identical(
    cluster: LocalDask, four: Manifest, db: DB, tdb: DB, tmp_path: Path
) -> None:
    result = run_in(tmp_path, tick=0.05, jobs=2, executor="dask", scheduler=cluster.address)

    assert result.failed == []
    assert all(r.state is TaskState.DONE for r in result.state.partitions.values())
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    assert result.state.settings["executor"] == "dask"
    # The tasks ran on the cluster: their events went through its scheduler.
    started = [m for m in cluster.events("vida-") if m[0] == "Started"]
    assert sorted(m[1] for m in started) == sorted(p.id for p in four.partitions)
