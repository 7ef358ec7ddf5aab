"""``verify --deep`` against real servers: every way a target document can differ is named
with its kind, counts-only verify cannot see them, and an interrupted deep verify
continues where it stopped."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import bson
import orjson
import pytest
from pymongo.database import Database
from support import (
    MIGRATE,
    fail_commands,
    migrated_raw,
    plan_in,
    raw_by_id,
    raw_hashes,
    run_in,
    transform_source,
    wait_for,
)

from vida_loader.cli import main
from vida_loader.config import VerifyConfig
from vida_loader.dev.server import LocalServer
from vida_loader.endpoint import Endpoint
from vida_loader.execution.events import Phase
from vida_loader.job.manifest import Partition, RangeMode
from vida_loader.job.runstate import TaskState, load_state, save_state, verify_task
from vida_loader.jobfiles import JobFiles, from_ejson
from vida_loader.verify.deep import DeepSettings, verify_partition
from vida_loader.verify.deep_job import deep_verify_job, pick
from vida_loader.verify.mismatches import read

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
N = 400


def copied(server: LocalServer, target: LocalServer, db: DB, tmp_path: Path) -> None:
    """Job "j" of ``N`` documents in 4 partitions, copied."""
    db.src.insert_many({"_id": i, "n": i, "name": f"n{i}", "tags": ["a", i]} for i in range(N))
    plan_in(server, target, db, tmp_path, partitions=4)
    assert run_in(tmp_path, jobs=1).state.count(TaskState.DONE) == 4


def alter(tdb: DB) -> dict[Any, str]:
    """Change the target in every way counts cannot see; the expected kind by _id."""
    tdb.dst.update_one({"_id": 10}, {"$set": {"name": "changed"}})
    tdb.dst.delete_one({"_id": 120})
    tdb.dst.insert_one({"_id": 120.5, "n": "extra"})  # same partition: counts stay equal
    tdb.dst.delete_one({"_id": 250})
    tdb.dst.insert_one({"_id": 250, "stub": True})  # deleted and re-inserted differently
    tdb.dst.delete_one({"_id": 330})  # the same fields in another order
    tdb.dst.insert_one(
        OrderedDict([("_id", 330), ("name", "n330"), ("n", 330), ("tags", ["a", 330])])
    )
    return {10: "altered", 120: "missing", 120.5: "extra", 250: "altered", 330: "altered"}


def found(files: JobFiles) -> dict[Any, str]:
    return {from_ejson(r["_id"]): r["kind"] for r in read(files.mismatches)}


def test_deep_verify_names_every_difference_counts_cannot_see(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copied(server, target_server, db, tmp_path)
    want = alter(tdb)
    args = ["verify", "--job", "j", "--manifest-dir", str(tmp_path), "-q"]
    assert main(args) == 0  # every range holds as many documents on both sides
    assert main([*args, "--deep", "-j", "2"]) == 1
    err = capsys.readouterr().err
    files = JobFiles(tmp_path, "j")
    assert found(files) == want
    lines = read(files.mismatches)
    by_id = {from_ejson(r["_id"]): r for r in lines}
    assert by_id[120]["target_sha256"] is None and by_id[120.5]["source_sha256"] is None
    src_10 = bson.encode(db.src.find_one({"_id": 10}))

    assert by_id[10]["source_sha256"] == hashlib.sha256(src_10).hexdigest()
    assert "4 of 4 partitions differ or failed: p00000, p00001, p00002, p00003" in err
    assert "mismatches.jsonl" in err
    state = load_state(files.state)
    assert state is not None and state.verify is not None
    assert state.verify["finished_at"] is not None
    recs = state.verifies
    assert sum(r.altered for r in recs.values()) == 3
    assert sum(r.missing for r in recs.values()) == sum(r.extra for r in recs.values()) == 1
    assert sum(r.matched for r in recs.values()) == N - 4
    last = orjson.loads(files.verify.read_bytes())
    assert last["deep"] is True and last["matches"] is False and last["altered"] == 3


def test_an_identical_target_passes_deep_verify(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    copied(server, target_server, db, tmp_path)
    result = deep_verify_job(VerifyConfig(job="j", manifest_dir=tmp_path, deep=True, jobs=1))
    assert result.matches
    assert result.total("matched") == N == result.total("source_docs")
    assert read(JobFiles(tmp_path, "j").mismatches) == []
    out = tmp_path / "report"
    assert main(["report", "--job", "j", "--manifest-dir", str(tmp_path), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "byte for byte, 4 of 4 partitions: every document the same" in page


def test_sample_compares_a_seeded_share_of_partitions(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    copied(server, target_server, db, tmp_path)
    cfg = VerifyConfig(job="j", manifest_dir=tmp_path, deep=True, sample=50, seed=7, jobs=1)
    result = deep_verify_job(cfg)
    assert tuple(result.records) == pick(["p00000", "p00001", "p00002", "p00003"], 50, 7)
    assert len(result.records) == 2 and result.round.seed == 7


def test_an_interrupted_deep_verify_continues_where_it_stopped(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The state says two partitions were compared when the verify was killed: the next
    one compares only the other two (their records keep their finish times)."""
    copied(server, target_server, db, tmp_path)
    tdb.dst.update_one({"_id": 10}, {"$set": {"name": "changed"}})
    cfg = VerifyConfig(job="j", manifest_dir=tmp_path, deep=True, jobs=1)
    deep_verify_job(cfg)
    files = JobFiles(tmp_path, "j")
    state = load_state(files.state)
    assert state is not None and state.verify is not None
    # As a kill -9 after two partitions leaves it: round unfinished, two records done.
    state.verify["finished_at"] = None
    first = {}
    for pid in ("p00002", "p00003"):
        state.verifies[verify_task(pid)].state = TaskState.RUNNING
    for pid in ("p00000", "p00001"):
        first[pid] = state.verifies[verify_task(pid)].finished_at
    save_state(state, files.state)
    with files.mismatches.open("ab") as f:
        f.write(b'{"partition": "p00003", "_id": 1, "kind": "missing"}\n{"parti')  # torn
    assert main(["status", "--job", "j", "--manifest-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "deep verify round 1, interrupted: `verify --deep` continues it: 2/4 partitions" in out
    result = deep_verify_job(cfg)
    assert result.continued == 2
    after = load_state(files.state)
    assert after is not None
    for pid, when in first.items():
        assert after.verifies[verify_task(pid)].finished_at == when  # not compared again
    assert all(after.verifies[verify_task(p)].done for p in ("p00002", "p00003"))
    assert found(files) == {10: "altered"}  # the stale line of p00003 is gone
    again = deep_verify_job(VerifyConfig(job="j", manifest_dir=tmp_path, deep=True, restart=True))
    assert again.continued == 0 and again.round.number == 2


def test_deep_verify_of_a_job_that_never_ran_says_so(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db.src.insert_many({"_id": i} for i in range(10))
    plan_in(server, target_server, db, tmp_path, partitions=2)
    code = main(["verify", "--job", "j", "--manifest-dir", str(tmp_path), "--deep"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.count("\n") == 1 and "has not run" in err and "vida-loader run" in err


def test_sample_without_deep_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--job", "j", "--manifest-dir", str(tmp_path), "--sample", "10"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--deep" in err


def test_repair_makes_the_target_byte_identical_and_a_second_repair_changes_nothing(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copied(server, target_server, db, tmp_path)
    alter(tdb)
    tdb.dst.update_one({"_id": 11}, {"$set": {"name": "changed too"}})
    base = ["--job", "j", "--manifest-dir", str(tmp_path), "-q"]
    assert main(["verify", *base, "--deep"]) == 1
    # Fixed by hand in between: repair finds it already the same, and says so.
    tdb.dst.replace_one({"_id": 11}, db.src.find_one({"_id": 11}))
    capsys.readouterr()
    assert main(["repair", *base, "--json"]) == 1  # the extra stays without --delete-extra
    out = orjson.loads(capsys.readouterr().out)
    assert (out["inserted"], out["replaced"], out["deleted"]) == (1, 3, 0)
    assert (out["extra_left"], out["already_right"], out["left"]) == (1, 1, 1)
    files = JobFiles(tmp_path, "j")
    assert found(files) == {120.5: "extra"}
    assert main(["repair", *base, "--delete-extra"]) == 0
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    assert read(files.mismatches) == []
    before = raw_hashes(tdb.dst)
    capsys.readouterr()
    assert main(["repair", *base, "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["listed"] == 0 and raw_hashes(tdb.dst) == before
    capsys.readouterr()
    assert main(["status", *base[:4]]) == 0
    out = capsys.readouterr().out
    assert "repaired    " in out and "0 still differ" in out
    assert main(["verify", *base, "--deep"]) == 0
    assert main(["status", *base[:4]]) == 0
    out = capsys.readouterr().out
    assert "deep verify 20" in out and f"4/4 partitions, all {N:,} documents the same" in out


def test_repair_needs_a_finished_deep_verify(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copied(server, target_server, db, tmp_path)
    base = ["--job", "j", "--manifest-dir", str(tmp_path)]
    assert main(["repair", *base]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "verify --job j" in err and "--deep" in err


def test_recheck_clears_what_settled_and_keeps_what_still_differs(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    """While the recheck waits, one differing document is written again on the target
    (as a source still being written would catch up): only the other is reported."""
    db.src.insert_many({"_id": i, "n": i} for i in range(50))
    tdb.dst.insert_many({"_id": i, "n": i if i not in (5, 6) else -1} for i in range(50))
    s = DeepSettings(
        Endpoint(server.uri, db.name, "src"),
        Endpoint(target_server.uri, db.name, "dst"),
        recheck_s=0.1,
    )

    def report(event: Any) -> None:
        if isinstance(event, Phase) and event.phase == "rechecking":
            tdb.dst.update_one({"_id": 5}, {"$set": {"n": 5}})

    result = verify_partition(Partition("p00000", RangeMode.TYPED, "number"), s, report)
    assert result.state is TaskState.DONE, result.error
    assert result.cleared == 1 and [bson.decode(d.id_doc)["_id"] for d in result.differences] == [6]
    assert (result.tally.altered, result.tally.matched) == (1, 49)


def test_a_transformed_job_is_verified_against_the_transformed_source(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    docs = transform_source(300, pad=20)
    db.src.insert_many(docs)
    path = tmp_path / "migrate.py"
    path.write_text(MIGRATE)
    plan_in(server, target_server, db, tmp_path, partitions=3)
    assert run_in(tmp_path, jobs=1, transform=str(path)).state.count(TaskState.DONE) == 3
    base = ["--job", "j", "--manifest-dir", str(tmp_path), "-q"]
    assert main(["verify", *base, "--deep"]) == 0  # dropped and rejected are not expected
    tdb.dst.update_one({"_id": 1}, {"$set": {"customer": "someone else"}})
    tdb.dst.delete_one({"_id": 2})
    tdb.dst.insert_one({"_id": 7, "i": 7})  # dropped by the transform: extra on the target
    assert main(["verify", *base, "--deep"]) == 1
    assert found(JobFiles(tmp_path, "j")) == {1: "altered", 2: "missing", 7: "extra"}
    assert main(["repair", *base, "--delete-extra"]) == 0
    assert raw_by_id(tdb.dst) == migrated_raw(docs)
    path.write_text(MIGRATE + "\n# edited\n")
    capsys.readouterr()
    assert main(["verify", *base, "--deep"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "changed since the job ran" in err


def _verify_records(state_file: Path) -> dict[str, dict[str, Any]]:
    try:
        doc = orjson.loads(state_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return {k: t for k, t in doc["tasks"].items() if t["kind"] == "verify"}


@pytest.mark.timeout(180)
def test_kill_9_during_deep_verify_then_it_continues(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    """Each target read held 600 ms: killed after the first partitions were compared, the
    next deep verify compares only the others, and finds the one difference."""
    copied(server, target_server, db, tmp_path)
    tdb.dst.update_one({"_id": 390}, {"$set": {"name": "changed"}})
    files = JobFiles(tmp_path, "j")
    fail_commands(tdb, ["find"], "alwaysOn", blockConnection=True, blockTimeMS=600)
    cmd = [sys.executable, "-m", "vida_loader", "verify", "--deep", "--job", "j"]
    proc = subprocess.Popen(
        [*cmd, "--manifest-dir", str(tmp_path), "-j", "1", "-q"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: sum(t["state"] == "done" for t in _verify_records(files.state).values()) >= 1,
            60,
            "a partition compared",
        )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    before = {k: t for k, t in _verify_records(files.state).items() if t["state"] == "done"}
    assert 1 <= len(before) < 4
    fail_commands(tdb, ["find"], "off")
    result = deep_verify_job(VerifyConfig(job="j", manifest_dir=tmp_path, deep=True, jobs=1))
    assert result.continued == len(before)
    after = _verify_records(files.state)
    for tid, rec in before.items():
        assert after[tid]["finished_at"] == rec["finished_at"]  # not compared again
    assert all(t["state"] == "done" for t in after.values())
    assert found(files) == {390: "altered"} and not result.matches
    assert result.total("matched") == N - 1


def test_a_throttled_repair_retries_and_leaves_the_target_identical(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copied(server, target_server, db, tmp_path)
    alter(tdb)
    base = ["--job", "j", "--manifest-dir", str(tmp_path), "-q"]
    assert main(["verify", *base, "--deep"]) == 1
    fail_commands(tdb, ["update"], {"times": 2}, errorCode=16500)
    capsys.readouterr()
    assert main(["repair", *base, "--delete-extra", "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert (out["throttled"], out["retries"]) == (2, 2)
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)


def _updating(client: Any) -> bool:
    ops = client.admin.command("currentOp")["inprog"]
    return any(op.get("op") == "update" or "update" in op.get("command", {}) for op in ops)


@pytest.mark.timeout(180)
def test_kill_9_mid_repair_then_repair_again(
    server: LocalServer,
    target_server: LocalServer,
    target_client: Any,
    db: DB,
    tdb: DB,
    tmp_path: Path,
) -> None:
    """Killed while its writes are held on the target: the list is as it was, and the
    next repair makes the target byte-identical."""
    copied(server, target_server, db, tmp_path)
    for i in range(0, N, 2):
        tdb.dst.update_one({"_id": i}, {"$set": {"name": "changed"}})
    base = ["--job", "j", "--manifest-dir", str(tmp_path), "-q"]
    assert main(["verify", *base, "--deep"]) == 1
    files = JobFiles(tmp_path, "j")
    listed = read(files.mismatches)
    assert len(listed) == N // 2
    fail_commands(tdb, ["update"], "alwaysOn", blockConnection=True, blockTimeMS=3000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vida_loader", "repair", *base],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _updating(target_client), 60, "the repair's writes")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    fail_commands(tdb, ["update"], "off")
    assert read(files.mismatches) == listed  # untouched by the killed repair
    assert main(["repair", *base]) == 0
    assert raw_hashes(tdb.dst) == raw_hashes(db.src)
    assert read(files.mismatches) == []


STAMPED = """
import datetime


class Stamped:
    verify_ignore = ("migrated_at",)

    def transform(self, doc):
        doc["migrated_at"] = datetime.datetime.now(datetime.UTC)
        return doc
"""


def test_fields_a_transform_sets_anew_are_left_out_with_verify_ignore(
    server: LocalServer, target_server: LocalServer, db: DB, tdb: DB, tmp_path: Path
) -> None:
    """The transform stamps each document with the time: without verify_ignore every
    document would differ; with it, only a real change does, and repair writes the
    whole transformed document."""
    db.src.insert_many({"_id": i, "n": i} for i in range(60))
    path = tmp_path / "stamped.py"
    path.write_text(STAMPED)
    plan_in(server, target_server, db, tmp_path, partitions=2)
    assert not run_in(tmp_path, jobs=1, transform=str(path)).failed
    cfg = VerifyConfig(job="j", manifest_dir=tmp_path, deep=True, jobs=1)
    assert deep_verify_job(cfg).matches
    tdb.dst.update_one({"_id": 7}, {"$set": {"n": -7}})
    result = deep_verify_job(cfg)
    assert found(JobFiles(tmp_path, "j")) == {7: "altered"} and result.total("matched") == 59
    before = tdb.dst.find_one({"_id": 7})
    assert main(["repair", "--job", "j", "--manifest-dir", str(tmp_path), "-q"]) == 0
    after = tdb.dst.find_one({"_id": 7})
    assert after is not None and before is not None
    assert after["n"] == 7 and after["migrated_at"] > before["migrated_at"]
    assert deep_verify_job(cfg).matches


def test_deep_verify_of_an_unfinished_copy_says_what_is_not_confirmed(
    server: LocalServer,
    target_server: LocalServer,
    db: DB,
    tdb: DB,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    copied(server, target_server, db, tmp_path)
    files = JobFiles(tmp_path, "j")
    state = load_state(files.state)
    assert state is not None
    state.partitions["p00003"].state = TaskState.FAILED  # as a run that failed there
    save_state(state, files.state)
    tdb.dst.delete_many({"_id": {"$gte": 350}})
    assert main(["verify", "--deep", "--job", "j", "--manifest-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "1 of the partitions to compare are not confirmed by a run yet (p00003)" in err
    assert found(files) == {i: "missing" for i in range(350, N)}
