"""One run of a job at a time: an advisory lock file beside the job's manifest.

The job's lock file (``JobFiles.lock``) is held with ``flock`` for the whole run and records the
holder (pid, host, start time). The kernel drops the lock when its process dies, even by
kill -9, so a stale lock never blocks anybody: the next run takes it over and says whose
it was. ``status`` reads the holder without taking the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from vida_loader.errors import StateError

if TYPE_CHECKING:
    from vida_loader.jobfiles import JobFiles


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    since: str  # ISO time the holder took the lock

    def describe(self) -> str:
        return f"pid {self.pid} on host '{self.host}' since {self.since}"

    def is_alive(self) -> bool | None:
        """Whether the holder still runs; ``None`` when it is on another host."""
        if self.host != socket.gethostname():
            return None
        import psutil  # here: `status` of a job no run holds never asks

        try:
            proc = psutil.Process(self.pid)
            started = proc.create_time()
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            return False
        try:
            since = datetime.fromisoformat(self.since).timestamp()
        except ValueError:
            return True
        # a pid reused by a process that started after the holder took the lock
        return bool(started <= since + 1)


def read_holder(files: JobFiles) -> LockHolder | None:
    """The recorded holder, ``None`` when no run holds the job (nor was killed holding it)."""
    try:
        raw = files.lock.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read lock '{files.lock}': {exc.strerror}") from None
    return _parse(raw)


def _parse(raw: bytes) -> LockHolder | None:
    if not raw.strip():
        return None
    try:
        doc: Any = orjson.loads(raw)
        return LockHolder(int(doc["pid"]), str(doc["host"]), str(doc["since"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # a torn write of a dead holder: nothing to report


@contextlib.contextmanager
def hold_lock(files: JobFiles, since: str) -> Iterator[LockHolder | None]:
    """Hold the job's lock for the block; yields the stale holder taken over, if any.

    A live holder is a ``StateError`` naming its pid. The file exists only while a run
    holds it (or after one was killed); it is removed when the block ends.
    """
    job = files.job
    fd = _lock_fd(files.lock, job)
    try:
        stale = _parse(_read_fd(fd))
        if stale is not None and stale.host != socket.gethostname():
            # flock may not reach across hosts on a shared folder: do not guess.
            raise StateError(
                f"job '{job}' was last run by {stale.describe()}, another machine "
                f"(lock '{files.lock}'): if that run has ended, delete the lock file "
                "and run again"
            )
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
        _write_fd(fd, orjson.dumps(me) + b"\n")
        try:
            yield stale
        finally:
            with contextlib.suppress(FileNotFoundError):
                files.lock.unlink()  # before the unlock: nobody can lock it then
    finally:
        os.close(fd)  # closing drops the flock


def _lock_fd(path: Path, job: str) -> int:
    """An open descriptor of ``path`` holding its flock.

    After locking, the path must still name the locked file: a holder that ended may
    have removed it in between, and locking a removed file would lock nothing.
    """
    for _ in range(10):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateError(f"cannot open lock '{path}': {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _parse(_read_fd(fd))
            os.close(fd)
            who = holder.describe() if holder else "another process"
            raise StateError(
                f"job '{job}' is being run by {who} (lock '{path}'): wait for it to end or "
                f"stop it, then run again; `vida-loader status --job {job}` shows its progress"
            ) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise StateError(f"cannot take lock '{path}': it keeps being replaced")


def _read_fd(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_fd(fd: int, data: bytes) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, data)
    os.fsync(fd)
