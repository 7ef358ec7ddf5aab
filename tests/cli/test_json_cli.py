"""``--json`` on every command: one object on stdout with exactly the fields docs/json.md
documents, text on stderr; status --json while a run goes; errors as objects too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo.database import Database
from support import start_slow_run, wait_for

from vida_loader.cli import main
from vida_loader.dev.server import LocalServer
from vida_loader.jobfiles import read_jsonl

pytestmark = pytest.mark.integration
DB = Database[dict[str, Any]]
DOC = Path(__file__).resolve().parents[2] / "docs" / "json.md"


def documented() -> dict[str, set[str]]:
    """The fields of each section of docs/json.md, by command ("error" for failures)."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"## `vida-loader (\w+(?: --deep)?) --json`", line)
        if heading:
            current = heading[1]
        elif line.startswith("## When a command fails"):
            current = "error"
        elif line.startswith("## "):
            current = None
        field = re.match(r"\| `([\w.\[\]]+)` \|", line)
        if current and field:
            sections.setdefault(current, set()).add(field[1])
    return sections


def fields(obj: Any, docs: set[str], prefix: str = "") -> set[str]:
    """The paths of ``obj``, descending where docs/json.md documents deeper fields."""
    out = set()
    for key, value in obj.items():
        path = f"{prefix}{key}"
        out.add(path)
        if isinstance(value, dict) and any(d.startswith(path + ".") for d in docs):
            out |= fields(value, docs, path + ".")
        if isinstance(value, list) and value and any(d.startswith(path + "[].") for d in docs):
            out |= fields(value[0], docs, path + "[].")
    return out


def check(obj: dict[str, Any], command: str) -> None:
    docs = documented()[command]
    got = fields(obj, docs)
    assert got <= docs, f"{command}: undocumented {sorted(got - docs)}"
    top = {d for d in docs if "." not in d and "[" not in d}
    assert top <= set(obj), f"{command}: missing {sorted(top - set(obj))}"


def json_of(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main([*args, "--json"])
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1, out  # one object, nothing else on stdout
    return code, orjson.loads(out), err


def test_every_command_prints_its_documented_object(
    planned: Path, server: LocalServer, db: DB, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    assert set(documented()) == {
        "plan",
        "run",
        "verify",
        "verify --deep",
        "repair",
        "status",
        "dump",
        "restore",
        "generate",
        "error",
    }
    code, obj, _err = json_of(capsys, "plan", "--replan", "--partitions", "3")
    assert code == 0 and obj["documents"] == 3000 and obj["partitions"] == 3
    check(obj, "plan")
    code, obj, _err = json_of(capsys, "status")
    assert code == 0 and obj["state"] == "planned" and obj["partitions"]["pending"] == 3
    check(obj, "status")

    code, obj, err = json_of(capsys, "run", "-j", "1")
    assert code == 0 and "run of job 'j' finished" in err  # the summary went to stderr
    check(obj, "run")
    assert obj["exit_reason"] == "done" and obj["message"] is None
    assert obj["documents"]["confirmed"] == obj["documents"]["read"] == 3000
    assert obj["partitions"] == {
        "total": 3,
        "pending": 0,
        "running": 0,
        "done": 3,
        "failed": 0,
        "skipped": 0,
        "resumed": 0,
        "reruns": 0,
    }

    code, obj, _err = json_of(capsys, "status")
    assert obj["state"] == "complete" and obj["continue_command"] is None
    assert obj["documents"]["confirmed"] == 3000
    check(obj, "status")

    code, obj, _err = json_of(capsys, "verify")
    assert code == 0 and obj["exit_reason"] == "match" and obj["target_docs"] == 3000
    check(obj, "verify")
    tdb.dst.delete_one({"_id": 5})
    code, obj, _err = json_of(capsys, "verify")
    assert code == 1 and obj["exit_reason"] == "mismatch"
    assert obj["mismatches"] == [
        {
            "partition": "p00000",
            "source": 1000,
            "target": 999,
            "expected_target": 1000,
            "error": None,
        }
    ]
    check(obj, "verify")
    code, obj, _err = json_of(capsys, "verify", "--deep")
    assert code == 1 and obj["exit_reason"] == "mismatch" and obj["missing"] == 1
    assert obj["mismatches"] == [
        {"partition": "p00000", "missing": 1, "extra": 0, "altered": 0, "error": None}
    ]
    check(obj, "verify --deep")
    code, obj, _err = json_of(capsys, "status")
    assert obj["last_verify"]["deep"] is True and obj["deep_verify"]["missing"] == 1
    check(obj, "status")
    code, obj, _err = json_of(capsys, "repair")
    assert code == 0 and (obj["listed"], obj["inserted"], obj["left"]) == (1, 1, 0)
    check(obj, "repair")
    code, obj, _err = json_of(capsys, "status")
    assert obj["deep_verify"]["repair"]["inserted"] == 1
    check(obj, "status")

    code, obj, _err = json_of(
        capsys,
        "generate",
        "--total",
        "300",
        "--seed",
        "1",
        "--target-uri",
        server.uri,
        "--target-db",
        db.name,
        "--target-collection",
        "gen",
        "-j",
        "1",
    )
    assert code == 0 and obj["documents"] == 300 and obj["seed"] == 1
    check(obj, "generate")
    # generate keeps metrics too, under the manifest folder, named after its target.
    records = read_jsonl(planned.parent / f"generate-{db.name}.gen" / "metrics.jsonl")
    assert records[-1]["kind"] == "generate" and records[-1]["docs"] == 300
    assert sum(r["docs"] for r in records if r["kind"] == "slice") == 300

    code, obj, err = json_of(capsys, "run", "--batch-size", "0")
    assert code == 2 and obj["exit_reason"] == "error" and "--batch-size '0'" in err
    assert obj["error"]["error"] == "SettingError" and obj["error"]["exit_code"] == 2
    check(obj, "error")


@pytest.mark.timeout(120)
def test_status_json_while_a_run_goes(
    planned: Path, tdb: DB, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = start_slow_run(tdb, 300, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(
            lambda: (planned / "run.lock").exists() and tdb.dst.estimated_document_count() > 0,
            60,
            "the run writing",
        )
        code, obj, _err = json_of(capsys, "status")
        assert code == 0 and obj["state"] == "running"
        assert obj["holder"]["pid"] == proc.pid and obj["finished_at"] is None
        assert obj["continue_command"] is not None
        check(obj, "status")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        tdb.client.admin.command("configureFailPoint", "failCommand", mode="off")


def test_dump_prints_its_documented_object(
    planned: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, obj, err = json_of(capsys, "dump", "--out", str(planned / "dump"), "--gzip")
    assert code == 0 and obj["exit_reason"] == "done" and obj["docs"] == 3000
    assert obj["bson_file"].endswith(".bson.gz") and "dump of " in err
    check(obj, "dump")
    code, obj, err = json_of(
        capsys,
        *("restore", str(planned / "dump"), "--job", "r", "--target-collection", "back"),
    )
    assert code == 0 and obj["exit_reason"] == "done" and obj["inserted"] == 3000
    assert obj["namespace"].endswith(".back") and "restore of " in err
    check(obj, "restore")
