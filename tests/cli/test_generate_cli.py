"""``vida-loader generate`` from the command line: files, stdout, Ctrl-C, bad input."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import bson
import pytest
from support import wait_for

from vida_loader.cli import main
from vida_loader.generate.service_orders import ServiceOrders

GEN = [sys.executable, "-m", "vida_loader", "generate"]
SECRET = "hunter2-Very-Secret"


def test_file_is_the_same_for_any_jobs_and_reads_back(tmp_path: Path) -> None:
    one, two = tmp_path / "one.bson", tmp_path / "two.bson"
    for jobs, out in (("1", one), ("2", two)):
        args = ["--total", "20000", "--seed", "4", "-j", jobs, "--out", str(out)]
        done = subprocess.run(GEN + args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "generated 20,000 of 20,000" in done.stdout
        assert "--seed 4" in done.stdout
    assert one.read_bytes() == two.read_bytes()
    with one.open("rb") as f:
        docs = list(bson.decode_file_iter(f))
    assert len(docs) == 20_000
    assert [d["order_id"][-10:] for d in docs[:3]] == ["0000000000", "0000000001", "0000000002"]
    assert one.read_bytes()[:5000] == b"".join(ServiceOrders(4).encode_range(0, 10))[:5000]


def test_dev_null_takes_the_documents() -> None:
    args = ["--total", "3000", "-j", "1", "--out", "/dev/null"]
    done = subprocess.run(GEN + args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "generated 3,000 of 3,000" in done.stdout


def test_stdout_carries_only_documents(tmp_path: Path) -> None:
    done = subprocess.run(
        GEN + ["--total", "1500", "--seed", "1", "-j", "1", "--out", "-"],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"".join(ServiceOrders(1).encode_range(0, 1500))
    assert b"generated 1,500 of 1,500" in done.stderr


def test_a_reader_that_leaves_gets_one_line() -> None:
    gen = subprocess.Popen(
        GEN + ["--total", "200000", "-j", "1", "--out", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert gen.stdout is not None
    gen.stdout.read(100_000)  # like `| head -c 100000`
    gen.stdout.close()
    _, err = gen.communicate(timeout=120)
    assert gen.returncode == 1, err
    lines = err.decode().strip().splitlines()
    assert lines[-1].startswith("vida-loader: error: the reader of --out '-' went away after")
    assert "Traceback" not in err.decode() and "Exception ignored" not in err.decode()


def test_full_disk_is_one_line() -> None:
    args = ["--total", "20000", "-j", "1", "--out", "/dev/full"]
    done = subprocess.run(GEN + args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "vida-loader: error: writing --out '/dev/full' failed after 0 documents: "
        "No space left on device"
    )


def test_ctrl_c_stops_and_says_how_many_documents_the_file_holds(tmp_path: Path) -> None:
    out = tmp_path / "big.bson"
    proc = subprocess.Popen(
        GEN + ["--total", "50000000", "-j", "1", "--out", str(out), "--progress-interval", "0"],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # past the first slice (~11 MB): some documents are surely counted
        wait_for(lambda: out.exists() and out.stat().st_size > 24_000_000, 60, "documents")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    m = re.search(r"interrupted: ([\d,]+) of 50,000,000 documents written to the file", err)
    assert m, err[-2000:]
    with out.open("rb") as f:
        held = sum(1 for _ in bson.decode_file_iter(f))
    assert held == int(m.group(1).replace(",", "")) > 0


def test_list_generators_and_templates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--list-generators"]) == 0
    assert re.search(r"^service-orders\s+car-dealer", capsys.readouterr().out, re.M)
    assert main(["generate", "--list-templates"]) == 0
    assert re.search(r"^service_order.json\s+workshop service order", capsys.readouterr().out)


PLUGIN = """
class Generator:
    def __init__(self, seed):
        self.seed = seed

    def generate(self, rng, i):
        return {"i": i, "n": rng.randint(0, 10**9), "seed": self.seed}
"""


@pytest.mark.parametrize("kind", ["template", "plugin"])
def test_templates_and_plugins_run_in_worker_processes_alike(tmp_path: Path, kind: str) -> None:
    if kind == "template":
        source = tmp_path / "t.json"
        source.write_text('{"n": "{{int 0 1000000000}}", "who": "{{faker.name}}", "i": "{{seq}}"}')
    else:
        source = tmp_path / "p.py"
        source.write_text(PLUGIN)
    files = []
    for jobs in ("1", "2"):
        out = tmp_path / f"{kind}-{jobs}.bson"
        args = ["--total", "12000", "--seed", "9", "-j", jobs, "--source", str(source)]
        done = subprocess.run(
            GEN + args + ["--out", str(out)], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        files.append(out.read_bytes())
    assert files[0] == files[1]
    docs = list(bson.decode_iter(files[0]))
    assert len(docs) == 12_000 and [d["i"] for d in docs[:3]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("t.json", '{\n  "a": "{{int 1}}"\n}', "t.json:2: {{int 1}}: takes 2 arguments"),
        ("p.py", "def f(:\n", "p.py:1: syntax error"),
        (
            "p.py",
            "class Generator:\n    def generate(self, rng, i):\n        return 5\n",
            "returned int",
        ),
    ],
)
def test_a_broken_source_is_one_line_before_anything_is_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    words: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path(name).write_text(text)
    assert main(["generate", "--total", "10", "--source", name, "--out", "x.bson"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--out", "x.bson"], 2, "--total is required"),
        (["--total", "0", "--out", "x.bson"], 2, "--total"),
        (["--total", "5"], 2, "give either --out FILE.bson"),
        (
            ["--total", "5", "--out", "x.bson", "--target-uri", "mongodb://h"],
            2,
            "give either --out FILE.bson",
        ),
        (["--total", "5", "--out", "no/such/dir/x.bson"], 2, "folder 'no/such/dir' does not"),
        (["--total", "5", "--out", "."], 2, "--out '.' is a folder"),
        (["--total", "5", "--out", "x.bson", "--source", "nope"], 2, "--source 'nope'"),
        (["--total", "5", "--out", "x.bson", "--seed", "-1"], 2, "--seed"),
        (["--total", "5", "--out", "x.bson", "--drop-target"], 2, "--drop-target needs"),
        (
            ["--total", "5", "--target-uri", "mongodb://h:1", "--target-db", "a b"]
            + ["--target-collection", "c"],
            2,
            "--target-db 'a b' cannot be a database name: it holds ' '",
        ),
        (
            ["--total", "5", "--target-uri", "mongodb://h:1", "--target-db", "d"],
            2,
            "--target-collection is required",
        ),
        (
            ["--total", "5", "--target-uri", "mongodb:/bad", "--target-db", "d"]
            + ["--target-collection", "c"],
            2,
            "--target-uri",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    args: list[str],
    code: int,
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["generate", *args]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert list(tmp_path.iterdir()) == []


def test_unreachable_target_is_one_line_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"mongodb://user:{SECRET}@127.0.0.1:1/?serverSelectionTimeoutMS=500"
    args = ["--total", "5", "--target-uri", uri, "--target-db", "d", "--target-collection", "c"]
    assert main(["generate", *args]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach target" in err
    assert SECRET not in err and "***" in err
