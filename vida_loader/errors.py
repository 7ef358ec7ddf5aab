"""Every error vida-loader reports to a user. The library raises these; only ``cli.py``
prints them, one line each: :meth:`VidaError.line`.

An error carries structured fields besides its message: the offending ``value``, the
``setting`` (flag or variable) that changes it, and the ``fix``. The CLI prints the
message followed by the fix; a ``--json`` report can hand the fields on as they are.
Every error stays picklable with its fields, so a worker process can hand one back.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_STATE = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


class VidaError(Exception):
    """Base of every error vida-loader reports to a user in one line."""

    exit_code = EXIT_FAILED

    def __init__(
        self,
        message: str,
        *,
        value: Any = None,
        setting: str | None = None,
        fix: str | None = None,
    ) -> None:
        """``message`` says what failed (quoting the value); ``fix`` how to change it."""
        super().__init__(message)
        self.message = message
        self.value = value
        self.setting = setting
        self.fix = fix

    def line(self) -> str:
        """What the CLI prints after ``vida-loader: error: ``."""
        return f"{self.message}: {self.fix}" if self.fix else self.message

    def fields(self) -> dict[str, Any]:
        """The structured form, for machine-readable output."""
        return {
            "error": type(self).__name__,
            "message": self.message,
            "value": None if self.value is None else str(self.value),
            "setting": self.setting,
            "fix": self.fix,
            "exit_code": self.exit_code,
        }

    def __str__(self) -> str:
        return self.line()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.value, self.setting, self.fix))


def _rebuild(
    cls: type[VidaError], message: str, value: Any, setting: str | None, fix: str | None
) -> VidaError:
    err = cls.__new__(cls)
    VidaError.__init__(err, message, value=value, setting=setting, fix=fix)
    return err


class UsageError(VidaError):
    """Bad flag, bad value, missing database or collection: the user must change input."""

    exit_code = EXIT_USAGE


class SettingError(UsageError):
    """A setting's value is not one of the accepted ones; names the setting and its source."""


class TemplateError(UsageError):
    """A template that cannot be compiled: names the file, the line and the placeholder."""


class PluginError(UsageError):
    """A plugin that cannot be loaded or returns something that is not a document."""


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


class GenerateInterruptedError(RunInterruptedError):
    """Ctrl-C stopped a generate run; what was written is reported."""


def format_duration(seconds: float) -> str:
    """``1:02:03``: a duration as messages and progress lines write it."""
    seconds = max(0, int(seconds + 0.5))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"
