"""A local SecantusDB server as a subprocess, for tests, ``make demo`` and benchmarks.

SecantusDB speaks the MongoDB wire protocol on WiredTiger. It is a test and demo
dependency only: this module starts its ``secantusd-py`` executable and never imports it.

    python -m vida_loader.dev.server --port 27017 --storage-path .demo/source
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

EXECUTABLE = "secantusd-py"


class ServerStartError(RuntimeError):
    """The server did not come up; the message names its log file."""


def find_executable() -> str:
    """``secantusd-py`` beside this interpreter (a venv) or on PATH."""
    beside = Path(sys.executable).with_name(EXECUTABLE)
    if beside.exists():
        return str(beside)
    found = shutil.which(EXECUTABLE)
    if found is None:
        raise ServerStartError(
            f"'{EXECUTABLE}' not found: install the test extras (`make install`)"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalServer:
    """One running server; use :meth:`start` and :meth:`stop` (or ``with``)."""

    storage_path: Path
    port: int = 0
    test_commands: bool = False
    auth: bool = False  # require SCRAM authentication (users made before, without it)
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @classmethod
    def temporary(cls, *, test_commands: bool = False) -> LocalServer:
        """A server on a free port whose data lives in a folder removed on :meth:`stop`."""
        tmp = tempfile.TemporaryDirectory(prefix="vida-secantus-")
        server = cls(Path(tmp.name) / "data", test_commands=test_commands)
        server._tmp = tmp
        return server

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    @property
    def log_path(self) -> Path:
        return self.storage_path.parent / f"secantusd-{self.port}.log"

    def start(self, timeout: float = 30.0) -> LocalServer:
        """Start and poll until it answers ``ping``; bounded by ``timeout`` seconds."""
        self.port = self.port or free_port()
        self.storage_path.mkdir(parents=True, exist_ok=True)
        cmd = [
            find_executable(),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--storage-path",
            str(self.storage_path),
            "--log-level",
            "ERROR",
        ]
        if self.test_commands:
            cmd.append("--enable-test-commands")
        if self.auth:
            cmd.append("--auth")
        with open(self.log_path, "ab") as log:
            # Own session: a Ctrl-C in the terminal does not hit the server mid-test, and
            # cwd is the data folder so no stray ./secantusd.toml is picked up.
            self.process = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.storage_path,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"secantusd exited with code {self.process.returncode} on port {self.port}; "
                    f"see {self.log_path}"
                )
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise ServerStartError(
            f"secantusd did not answer on port {self.port} within {timeout:g} s; "
            f"see {self.log_path}"
        )

    def _answers(self) -> bool:
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                pass
        except OSError:
            return False
        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
        )
        try:
            client.admin.command("hello")  # a handshake command: answered also under --auth
            return True
        except PyMongoError:
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the server, keeping its storage: :meth:`start` brings it back on the
        same port with the same data (tests of a server crashing mid-run)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def stop(self, timeout: float = 10.0, keep_data: bool = False) -> None:
        """Terminate, then kill after ``timeout`` seconds; remove a temporary folder
        unless ``keep_data`` (to start again, e.g. with ``auth``)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._tmp is not None and not keep_data:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run one server in the foreground until interrupted (``make demo`` helper)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--storage-path", type=Path, required=True)
    parser.add_argument("--enable-test-commands", action="store_true")
    args = parser.parse_args(argv)
    server = LocalServer(args.storage_path, args.port, args.enable_test_commands)
    try:
        server.start()
    except ServerStartError as exc:
        print(f"devserver: {exc}", file=sys.stderr)
        return 3
    print(server.uri, flush=True)
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
