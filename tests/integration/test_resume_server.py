"""run continues a job: skips what is confirmed, goes on from where the target stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from support import PAD, fail_inserts, plan_in, raw_hashes, run_in

from vida_loader.config import RunConfig
from vida_loader.copy.progress import RunProgress
from vida_loader.dev.server import LocalServer
from vida_loader.errors import RunInterruptedError, StateError, UsageError
from vida_loader.job.manifest import Manifest
from vida_loader.job.runstate import TaskState, load_state, save_state
from vida_loader.jobfiles import JobFiles

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]


@pytest.fixture
def three(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> Manifest:
    """3,000 documents with _id 0..2999 planned in 3 partitions."""
    db.src.insert_many([{"_id": i, "pad": PAD} for i in range(3000)])
    return plan_in(server, target_server, db, tmp_path, partitions=3)


def test_crashed_partition_continues_from_the_targets_last_id(
    three: Manifest, db: DB, tdb: DB, tmp_path: Path
) -> None:
    assert run_in(tmp_path, tick=0.05, jobs=1).failed == []
    # Make it look as if the run had been killed in the middle partition: its record
    # still says running, the target lacks the end of its range and one document
    # below that (an unacknowledged insert that vanished).
    middle = three.partitions[1]
    lower, upper = middle.lower, middle.upper
    path = JobFiles(tmp_path, "j").state
    state = load_state(path)
    assert state is not None
    state.partitions[middle.id].state = TaskState.RUNNING
    state.finished_at = None
    save_state(state, path)
    stop = (lower + upper) // 2
    tdb.dst.delete_many({"_id": {"$gte": stop, "$lt": upper}})
    tdb.dst.delete_one({"_id": lower + 3})

    result = run_in(tmp_path, tick=0.05, jobs=1)

    assert result.failed == []
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    assert (result.skipped, result.resumed) == (2, 1)
    # read from the highest _id left (stop - 1, sent again) to the end of the range
    assert result.read_docs == upper - (stop - 1)
    assert result.repaired == 1
    rec = result.state.partitions[middle.id]
    assert (rec.source_docs, rec.target_docs, rec.resumes) == (upper - lower,) * 2 + (1,)
    assert result.state.runs == 2


def test_interrupted_run_continues_and_sends_at_most_a_batch_again(
    three: Manifest, db: DB, tdb: DB, tmp_path: Path
) -> None:
    fail_inserts(tdb, "alwaysOn", blockConnection=True, blockTimeMS=30)

    def interrupt(p: RunProgress) -> None:
        if p.docs >= 1300:
            raise KeyboardInterrupt

    with pytest.raises(RunInterruptedError, match="continue with: vida-loader run --job j"):
        run_in(tmp_path, tick=0.05, jobs=1, batch_size=100, on_progress=interrupt)
    tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")
    before = tdb.dst.count_documents({})
    assert 1300 <= before < 3000
    state = load_state(JobFiles(tmp_path, "j").state)
    assert state is not None and state.finished_at is None
    assert state.count(TaskState.RUNNING) == 0  # set back to pending when stopped

    result = run_in(tmp_path, tick=0.05, jobs=1, batch_size=100)

    assert result.failed == []
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    sent_again = result.read_docs - (3000 - before)
    assert 0 <= sent_again <= 100, sent_again  # one batch of the one worker, at most
    assert result.resumed >= 1


def test_a_replanned_job_is_refused_until_restarted(
    server: LocalServer,
    target_server: LocalServer,
    three: Manifest,
    db: DB,
    tdb: DB,
    tmp_path: Path,
) -> None:
    assert run_in(tmp_path, tick=0.05, jobs=1).failed == []
    db.src.insert_many([{"_id": i, "pad": PAD} for i in range(3000, 3500)])
    plan_in(server, target_server, db, tmp_path, partitions=4, replan=True)
    with pytest.raises(StateError) as info:
        run_in(tmp_path, tick=0.05, jobs=1)
    message = info.value.message
    assert "belongs to another plan of job 'j'" in message
    assert "source_count 3000 -> 3500" in message and "partitions 3 -> 4" in message
    assert message.endswith("pass --restart to start the job over")
    with pytest.raises(StateError, match="already holds documents: give --drop-target"):
        run_in(tmp_path, tick=0.05, jobs=1, restart=True)
    result = run_in(tmp_path, tick=0.05, jobs=1, restart=True, drop_target=True)
    assert result.failed == [] and result.state.runs == 1
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_a_fresh_start_into_a_non_empty_target_needs_a_choice(
    three: Manifest, db: DB, tdb: DB, tmp_path: Path
) -> None:
    tdb.dst.insert_one({"_id": "not from the source"})
    with pytest.raises(StateError, match="'.*dst' on 'mongodb://127.0.0.1:.*' already holds"):
        run_in(tmp_path, tick=0.05, jobs=1)
    assert load_state(JobFiles(tmp_path, "j").state) is None  # nothing written

    appended = run_in(tmp_path, tick=0.05, jobs=1, append=True)
    assert appended.failed == []  # a string _id is outside every number range
    assert tdb.dst.count_documents({}) == 3001
    with pytest.raises(UsageError, match="--drop-target would empty the target of job 'j'"):
        run_in(tmp_path, tick=0.05, jobs=1, drop_target=True)

    dropped = run_in(tmp_path, tick=0.05, jobs=1, restart=True, drop_target=True)
    assert dropped.failed == []
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def test_drop_target_and_append_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--drop-target and --append exclude each other"):
        RunConfig(job="j", manifest_dir=tmp_path, drop_target=True, append=True)


def test_a_target_emptied_since_the_last_run_is_refused(
    three: Manifest, db: DB, tdb: DB, tmp_path: Path
) -> None:
    assert run_in(tmp_path, tick=0.05, jobs=1).failed == []
    tdb.dst.delete_many({"_id": {"$lt": 1500}})
    with pytest.raises(
        StateError,
        match="holds 1,500 documents but earlier runs of job 'j' "
        "confirmed 3,000: it was emptied or changed since; give --restart",
    ):
        run_in(tmp_path, tick=0.05, jobs=1)
    assert run_in(tmp_path, tick=0.05, jobs=1, restart=True, append=True).failed == []
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
