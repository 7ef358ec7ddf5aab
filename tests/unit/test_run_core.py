"""The run's pure parts: raw batch slicing, write batch bounds, state files, progress."""

from __future__ import annotations

import io
from pathlib import Path

import bson
import orjson
import pytest
from bson.raw_bson import RawBSONDocument

from vida_loader.config import RunConfig
from vida_loader.copy.progress import RunProgress
from vida_loader.copy.task import CopySettings, PartitionResult, read_batch_size
from vida_loader.endpoint import Endpoint
from vida_loader.errors import StateError, UsageError
from vida_loader.job.manifest import Partition, RangeMode
from vida_loader.job.planned import planned_endpoint, resolve_job
from vida_loader.job.runstate import PartitionRecord, RunState, TaskState, load_state, save_state
from vida_loader.jobfiles import write_atomic
from vida_loader.pipeline.writer import chunked
from vida_loader.report.progress import ProgressPrinter, format_duration, format_progress


def _docs(sizes: list[int]) -> list[bytes]:
    """Encoded documents of exactly the given sizes (each at least 22 bytes)."""
    out = []
    for i, size in enumerate(sizes):
        doc = bson.encode({"_id": i, "p": ""})
        out.append(bson.encode({"_id": i, "p": "x" * (size - len(doc))}))
        assert len(out[-1]) == size
    return out


def _raw(docs: list[bytes]) -> list[RawBSONDocument]:
    return [RawBSONDocument(d) for d in docs]


def _settings(batch_size: int, batch_bytes: int) -> CopySettings:
    ep = Endpoint("mongodb://h", "d", "c")
    return CopySettings(ep, ep, batch_size=batch_size, batch_bytes=batch_bytes)


def test_write_batches_bounded_by_count_and_bytes() -> None:
    docs = _docs([100] * 10 + [1000] + [100] * 3)
    chunks = list(chunked(_raw(docs), 4, 350))
    sizes = [[len(d.raw) for d in c] for c, _ in chunks]
    # 3 x 100 fit in 350 bytes; the 1,000-byte document travels alone.
    assert sizes == [[100] * 3, [100] * 3, [100] * 3, [100], [1000], [100] * 3]
    assert [n for _, n in chunks] == [sum(s) for s in sizes]
    assert [d.raw for c, _ in chunks for d in c] == docs  # order and bytes kept
    by_count = list(chunked(_raw(docs[:10]), 4, 10**6))
    assert [len(c) for c, _ in by_count] == [4, 4, 2]


def test_run_config_refuses_bad_values() -> None:
    with pytest.raises(UsageError, match="--batch-mb '0' must be above 0"):
        RunConfig(job="j", batch_mb=0)
    with pytest.raises(UsageError, match="--batch-mb '17' must be above 0 and at most 16"):
        RunConfig(job="j", batch_mb=17)
    with pytest.raises(UsageError, match="--write-concern '2'"):
        RunConfig(job="j", write_concern="2")
    with pytest.raises(UsageError, match="--jobs '0'"):
        RunConfig(job="j", jobs=0)
    with pytest.raises(UsageError, match="--job '../x'"):
        RunConfig(job="../x")
    assert RunConfig(job="j", batch_mb=1.5).batch_bytes == 1572864


def test_state_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    state = RunState(job="j", fingerprint="sha256:x", started_at="t0")
    state.tasks = {"p00000": PartitionRecord(), "p00001": PartitionRecord()}
    rec = state.partitions["p00001"]
    rec.attempts = 2
    PartitionResult("p00001", TaskState.DONE, docs=5, bytes=50, repaired=2).apply_to(rec)
    save_state(state, path)
    back = load_state(path)
    assert back is not None
    assert back.to_json() == state.to_json()
    assert back.partitions["p00001"].state is TaskState.DONE
    assert back.partitions["p00001"].repaired == 2
    assert back.count(TaskState.PENDING) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left
    assert load_state(tmp_path / "none.json") is None


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b'{"schema_version": 1}', b'{"schema_version": 9, "partitions": {}}'],
)
def test_corrupt_state_is_one_state_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    write_atomic(path, content)
    with pytest.raises(StateError, match=f"run state '{path}' is corrupt"):
        load_state(path)


def test_state_with_an_unknown_task_kind_is_refused_naming_it(tmp_path: Path) -> None:
    doc = RunState(job="j", fingerprint="f", started_at="t").to_json()
    doc["tasks"] = {"x": {"kind": "teleport", "state": "done"}}
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(StateError, match="task kind 'teleport' is unknown"):
        load_state(path)


def test_a_schema_1_state_loads_as_copy_tasks_and_is_saved_as_schema_2(tmp_path: Path) -> None:
    """A state.json written before task kinds: one record per partition, no kind."""
    old = {
        "schema_version": 1,
        "job": "j",
        "fingerprint": "sha256:x",
        "started_at": "t0",
        "updated_at": "t1",
        "finished_at": None,
        "plan": {},
        "coordinator": {},
        "settings": {"jobs": 2, "batch_docs": 100, "retry_window_s": 30.0},
        "runs": 2,
        "appended": False,
        "partitions": {
            "p00000": {
                **{k: 0 for k in ("attempts", "docs", "bytes", "source_docs", "target_docs")},
                **{k: 0 for k in ("resumes", "repaired", "already_there", "retries")},
                **{"throttled": 0, "wait_s": 0.0, "duplicates": 0, "seconds": 1.5},
                **{"started_at": "t0", "finished_at": "t1", "error": None},
                "state": "done",
                "target_docs": 7,
            },
            "p00001": {"state": "failed", "attempts": 3, "error": "gave up"},
        },
    }
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps(old))
    state = load_state(path)
    assert state is not None and state.runs == 2
    assert state.settings == {"jobs": 2, "batch_size": 100, "retry_window": 30.0}
    assert set(state.partitions) == {"p00000", "p00001"}
    assert state.partitions["p00000"].done and state.confirmed_docs() == 7
    assert state.partitions["p00001"].error == "gave up"
    assert state.partitions["p00001"].attempts == 3
    save_state(state, path)
    doc = orjson.loads(path.read_bytes())
    assert doc["schema_version"] == 2 and "partitions" not in doc
    assert {t["kind"] for t in doc["tasks"].values()} == {"copy"}
    assert load_state(path).to_json() == state.to_json()  # type: ignore[union-attr]


def test_state_with_unknown_partition_state_is_refused(tmp_path: Path) -> None:
    doc = RunState(job="j", fingerprint="f", started_at="t").to_json()
    doc["tasks"] = {"p00000": {"kind": "copy", "state": "half-done"}}
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps(doc))
    with pytest.raises(StateError, match="corrupt"):
        load_state(path)


SIDE = {
    "uri": "mongodb://a.example:27017,b.example:27017/?replicaSet=rs",
    "hosts": ["a.example:27017", "b.example:27017"],
    "db": "d",
    "collection": "c",
}


def test_planned_endpoint_defaults_to_the_plan_and_checks_hosts() -> None:
    assert planned_endpoint(SIDE, None, "source", "j") == Endpoint(SIDE["uri"], "d", "c")
    with_password = "mongodb://u:pw@B.example:27017,a.example/?replicaSet=rs"
    assert planned_endpoint(SIDE, with_password, "source", "j").uri == with_password
    with pytest.raises(StateError) as err:
        planned_endpoint(SIDE, "mongodb://u:pw@other.example/", "target", "j")
    assert "planned against a.example:27017, b.example:27017" in err.value.message
    assert "pw" not in err.value.message
    with pytest.raises(UsageError, match="--source-uri"):
        planned_endpoint(SIDE, "http://nope", "source", "j")


def test_resolve_job(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no job planned in"):
        resolve_job(tmp_path, None)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "manifest.json").write_text("{}")
    assert resolve_job(tmp_path, None) == "a"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text("{}")
    with pytest.raises(UsageError, match="--job is required: .* holds jobs a, b"):
        resolve_job(tmp_path, None)
    assert resolve_job(tmp_path, "b") == "b"


def _progress(**kw: float) -> RunProgress:
    base = dict(
        docs=12_000,
        bytes=12_000_000,
        base_docs=0,
        base_bytes=0,
        est_docs=48_000,
        est_bytes=48_000_000,
        elapsed=2.0,
        parts_done=2,
        parts_failed=0,
        parts_running=3,
        parts_total=8,
        repaired=0,
        retries=0,
    )
    return RunProgress(**(base | kw))  # type: ignore[arg-type]


def test_progress_line_has_rates_and_eta() -> None:
    line = format_progress(_progress())
    assert line.startswith("12,000/48,000 docs (25%)  6,000 docs/s  6.0 MB/s")
    assert "partitions 2/8 done, 3 running" in line
    assert line.endswith("ETA 0:00:06")
    done = format_progress(_progress(parts_done=7, parts_failed=1, parts_running=0, repaired=5))
    assert "1 failed" in done and "repaired 5" in done and done.endswith("in 0:00:02")
    assert format_duration(3725.4) == "1:02:05"


def test_resumed_progress_counts_earlier_runs_but_not_in_the_rate() -> None:
    # 10,000 of the 12,000 were confirmed by an earlier run: this run did 2,000 in 2 s.
    line = format_progress(_progress(base_docs=10_000, base_bytes=10_000_000))
    assert line.startswith("12,000/48,000 docs (25%)  1,000 docs/s  1.0 MB/s")
    assert line.endswith("ETA 0:00:36")


def test_plain_progress_lines_are_spaced_by_the_interval() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out, tty=False, interval=3600)
    for docs in (1, 2, 3):
        printer(_progress(docs=docs))
    printer.finish()
    lines = out.getvalue().splitlines()
    assert [ln.split("/")[0] for ln in lines] == ["run: 1", "run: 3"]  # first and last


def test_terminal_progress_rewrites_one_line() -> None:
    out = io.StringIO()
    printer = ProgressPrinter(out, tty=True)
    printer(_progress(docs=1))
    printer(_progress(docs=2))
    printer.finish()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1


@pytest.mark.parametrize(
    ("est_docs", "est_bytes", "expected"),
    [
        (30_000, 30_000 * 1024, 2048),  # ~1 KB documents: 2 MB per read
        (10**6, 10**8, 10_000),  # 100-byte documents: capped at 10,000
        (10, 10 * 15 * 2**20, 1),  # 15 MB documents: one at a time
        (0, 0, 1000),  # nothing estimated (an empty plan): the write batch size
    ],
)
def test_reads_ask_for_about_two_megabytes(est_docs: int, est_bytes: int, expected: int) -> None:
    part = Partition("p", RangeMode.TYPED, "objectId", est_docs=est_docs, est_bytes=est_bytes)
    assert read_batch_size(part, _settings(batch_size=1000, batch_bytes=2 * 2**20)) == expected


def test_progress_line_shows_retries_throttling_and_waits() -> None:
    quiet = format_progress(_progress())
    assert "retries" not in quiet and "waiting" not in quiet
    line = format_progress(
        _progress(retries=3, throttled=2, reruns=1, waiting_for=("source", "target"))
    )
    assert "retries 3 (2 throttled)  re-runs 1  waiting for source  waiting for target" in line
