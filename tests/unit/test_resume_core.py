"""Resume's pieces without a server: the continue command, the job lock, URIs with secrets."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
from pathlib import Path

import pytest

from vida_loader.config import JobConfig, RunConfig
from vida_loader.endpoint import has_secret
from vida_loader.errors import StateError
from vida_loader.job.lock import LockHolder, hold_lock, read_holder
from vida_loader.job.planned import continue_command
from vida_loader.job.runstate import now_iso
from vida_loader.jobfiles import JobFiles

SECRET = "s3cr3t-Pass"


def test_continue_command_names_the_settings_that_differ_from_the_defaults() -> None:
    assert continue_command(RunConfig(job="j")) == "vida-loader run --job j"
    cfg = RunConfig(
        job="orders",
        manifest_dir=Path("/data/my parts"),
        jobs=12,
        write_concern="majority",
        batch_size=500,
        batch_mb=1.5,
        attempts=5,
        restart=True,
        drop_target=True,
    )
    assert continue_command(cfg) == (
        "vida-loader run --job orders --manifest-dir '/data/my parts' -j 12 "
        "--write-concern majority --batch-size 500 --attempts 5 --batch-mb 1.5"
    )  # never --restart or --drop-target: continuing must not start over


def test_continue_command_never_holds_a_password() -> None:
    cfg = RunConfig(
        job="j",
        source_uri=f"mongodb://u:{SECRET}@src.example:10255/?ssl=true",
        target_uri="mongodb://dst.example:27017/",
    )
    command = continue_command(cfg)
    assert SECRET not in command
    assert command == (
        "vida-loader run --job j --target-uri mongodb://dst.example:27017/ "
        "(with --source-uri and credentials again)"
    )
    # status has only the state's settings
    settings = {"jobs": 2, "batch_size": 100, "write_concern": "1"}
    assert continue_command(JobConfig(job="j"), settings) == (
        "vida-loader run --job j -j 2 --batch-size 100"
    )


@pytest.mark.parametrize(
    ("uri", "secret"),
    [
        (f"mongodb://u:{SECRET}@h/", True),
        ("mongodb://u@h/?authMechanism=MONGODB-X509", False),
        (f"mongodb://h/?authMechanismProperties=AWS_SESSION_TOKEN:{SECRET}", True),
        ("mongodb+srv://cluster0.example.net/", False),
    ],
)
def test_has_secret(uri: str, secret: bool) -> None:
    assert has_secret(uri) is secret


def _files(tmp_path: Path) -> JobFiles:
    files = JobFiles(tmp_path, "j")
    files.folder.mkdir(exist_ok=True)
    return files


def test_a_held_lock_refuses_a_second_holder_with_its_pid(tmp_path: Path) -> None:
    since = now_iso()
    with hold_lock(_files(tmp_path), since) as stale:
        assert stale is None
        holder = read_holder(_files(tmp_path))
        assert holder == LockHolder(os.getpid(), socket.gethostname(), since)
        assert holder.is_alive() is True
        # flock is per open file: a second open in this process conflicts like another run
        with (
            pytest.raises(StateError, match=f"job 'j' is being run by pid {os.getpid()} on host"),
            hold_lock(_files(tmp_path), "later"),
        ):
            pass
    assert read_holder(_files(tmp_path)) is None  # released: nobody holds it


def _exit_now() -> None:
    return None


def test_the_lock_of_a_dead_run_is_taken_over(tmp_path: Path) -> None:
    proc = multiprocessing.get_context("spawn").Process(target=_exit_now)
    proc.start()
    proc.join(30)
    assert proc.pid is not None
    dead = {"pid": proc.pid, "host": socket.gethostname(), "since": "2026-11-25T09:00:00+00:00"}
    _files(tmp_path).lock.write_text(json.dumps(dead))
    holder = read_holder(_files(tmp_path))
    assert holder is not None and holder.is_alive() is False
    with hold_lock(_files(tmp_path), "2026-11-25T10:00:00+00:00") as stale:
        assert stale is not None and stale.pid == proc.pid
        assert read_holder(_files(tmp_path)).pid == os.getpid()  # type: ignore[union-attr]


def test_a_lock_recorded_by_another_host_is_not_guessed_at(tmp_path: Path) -> None:
    other = {"pid": 1, "host": "elsewhere.example", "since": "2026-11-25T09:00:00+00:00"}
    _files(tmp_path).lock.write_text(json.dumps(other))
    assert read_holder(_files(tmp_path)).is_alive() is None  # type: ignore[union-attr]
    with (
        pytest.raises(StateError, match="another machine .* delete the lock file and run again"),
        hold_lock(_files(tmp_path), "now"),
    ):
        pass
    assert json.loads(_files(tmp_path).lock.read_text()) == other  # left as it was


def test_a_following_run_is_continued_with_follow() -> None:
    assert continue_command(RunConfig(job="j", follow=True)) == "vida-loader run --job j --follow"
