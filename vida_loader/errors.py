"""The error tree. The library raises these; only ``cli.py`` prints them.

Every error carries the process exit code that the CLI uses and stays picklable
(its only constructor argument is the message), so a worker process can hand one
back to the coordinator.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STATE = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class VidaError(Exception):
    """Base of every error vida-loader reports to a user in one line."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(VidaError):
    """Bad flag, bad value, missing database or collection: the user must change input."""

    exit_code = EXIT_USAGE


class JobExistsError(UsageError):
    """A manifest for the job is already there and ``--replan`` was not given."""


class ConnectError(VidaError):
    """A server could not be reached or refused the credentials."""

    exit_code = EXIT_STATE


class StateError(VidaError):
    """A manifest or state file is torn, foreign or does not match the job."""

    exit_code = EXIT_STATE


class RunInterruptedError(VidaError):
    """Ctrl-C or SIGTERM stopped a run; its state was saved first."""

    exit_code = EXIT_INTERRUPTED
