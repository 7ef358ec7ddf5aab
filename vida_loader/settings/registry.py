"""One row per setting: key, type, accepted values, per-command defaults, legacy names."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from vida_loader.endpoint import (
    DEFAULT_RETRY_ATTEMPTS,
    DEFAULT_RETRY_WINDOW_S,
    Timeouts,
    redact_uri,
    uri_has_host,
)
from vida_loader.errors import SettingError

DEFAULT_PARTITION_SIZE_MB = 64.0
DEFAULT_MANIFEST_DIR = Path("partitions")
DEFAULT_BATCH_SIZE = 1000  # Cosmos DB advises about 1,000 documents per write
MIB = 1024 * 1024  # --batch-mb and the like are MiB
DEFAULT_BATCH_MB = 2.0  # and allows 2 MB per request
# Per find/getMore: about 2 MB by the plan's average document size (one read feeds two
# writes), at most 10,000 documents: memory grows with the read batch, CPU does not
# (docs/design-notes.md). The server caps a reply anyway (16 MB MongoDB, 4 MB Cosmos DB).
DEFAULT_READ_BATCH_SIZE = 10_000
DEFAULT_READ_BATCH_MB = 2.0
DEFAULT_JOBS = 4
DEFAULT_WRITE_CONCERN = "1"  # confirmed by the write results, no count
DEFAULT_ATTEMPTS = 3
DEFAULT_PROGRESS_INTERVAL = 5.0  # seconds between plain lines when stderr is not a terminal
MAX_BATCH_MB = 16.0
# Enough to absorb a few bad documents; few enough that a validate rejecting wholesale
# stops a run within minutes instead of leaving a target with a fraction of the data.
DEFAULT_MAX_REJECTS = 1000


# ---------------------------------------------------------------------------------------
# Settings: every value a command uses, from the first layer that gives it:
# flag > VIDA_* environment > legacy environment > .env_local > .env > profile > default.
# ---------------------------------------------------------------------------------------

COPY_COMMANDS = ("plan", "run", "verify", "repair", "status", "report", "dump", "restore")
COMMANDS = (*COPY_COMMANDS, "generate")
SERVER_COMMANDS = ("plan", "run", "verify", "repair", "generate", "dump", "restore")
ENV_FILES = (".env_local", ".env")  # in the current folder, the first wins
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off", "")


class Layer(StrEnum):
    """Where a value came from, highest precedence first."""

    FLAG = "flag"
    ENV = "environment"
    LEGACY = "legacy environment"
    ENV_FILE = "env file"
    PROFILE = "profile"
    URI = "uri"
    DEFAULT = "default"


@dataclass(frozen=True)
class Origin:
    """One value's source: the layer, the name it had there, and the file or profile."""

    layer: Layer
    name: str = ""  # "--jobs", "VIDA_JOBS", "MIG_BATCH_SIZE", profile key
    where: str = ""  # the env file's path, the profile's name

    def describe(self) -> str:
        if self.layer is Layer.FLAG:
            return f"flag {self.name}"
        if self.layer is Layer.ENV:
            return f"environment {self.name}"
        if self.layer is Layer.LEGACY:
            return f"environment {self.name} (legacy name)"
        if self.layer is Layer.ENV_FILE:
            return f"{self.where} {self.name}"
        if self.layer is Layer.PROFILE:
            return f"profile '{self.where}'"
        if self.layer is Layer.URI:
            return f"{self.name} in {self.where}"
        return "default"

    def place(self) -> str:
        """Where the value was written, for error messages."""
        if self.layer is Layer.FLAG:
            return "command line"
        if self.layer is Layer.ENV:
            return "environment"
        if self.layer is Layer.LEGACY:
            return "environment, legacy name"
        if self.layer is Layer.ENV_FILE:
            return f"in {self.where}"
        if self.layer is Layer.PROFILE:
            return f"profile '{self.where}'"
        return self.describe()


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Spec:
    """One setting: its key (also the profile key), type, range, default and commands."""

    key: str
    kind: str  # int, float, str, choice, uri, path, bool, jobs
    help: str
    commands: tuple[str, ...]
    default: Any = None
    defaults: tuple[tuple[str, Any], ...] = ()  # per-command defaults
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    flag: str = ""
    env: str = ""
    in_profile: bool = True
    metavar: str = ""  # the value's name in --help, when its kind's is too vague

    @property
    def option(self) -> str:
        return self.flag or "--" + self.key.replace("_", "-")

    @property
    def envvar(self) -> str:
        return self.env or "VIDA_" + self.key.upper()

    def default_for(self, command: str) -> Any:
        return dict(self.defaults).get(command, self.default)

    def accepted(self) -> str:
        """The accepted values, for messages and help."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false (1/0, yes/no)"
        if self.kind == "uri":
            return "a mongodb:// or mongodb+srv:// URI with a host"
        if self.kind in ("int", "float", "jobs"):
            what = "a whole number" if self.kind != "float" else "a number"
            if self.low is not None and self.high is not None:
                rng = (
                    f"{'above' if self.low_open else 'from'} {_num(self.low)} to {_num(self.high)}"
                )
            elif self.low is not None:
                rng = f"{'above' if self.low_open else 'at least'} {_num(self.low)}"
            else:
                rng = ""
            text = f"{what} {rng}".strip()
            return text + (
                " or auto (the cores this process may use)" if self.kind == "jobs" else ""
            )
        return "a non-empty text" if self.kind != "path" else "a path"

    def parse(self, raw: Any, origin: Origin) -> Any:
        """``raw`` (text from the environment or a file, or a typed flag/TOML value)
        as this setting's type; a ``SettingError`` naming the origin otherwise."""
        try:
            return self._parse(raw)
        except (ValueError, TypeError):
            raise setting_error(self, raw, origin) from None

    def _parse(self, raw: Any) -> Any:
        if isinstance(raw, str):
            raw = raw.strip()
        value = PARSERS[self.kind](self, raw)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.low is not None and (value <= self.low if self.low_open else value < self.low):
                raise ValueError(raw)
            if self.high is not None and value > self.high:
                raise ValueError(raw)
        return value

    def show(self, value: Any) -> str:
        """The value as printed: URIs without their password."""
        if value is None:
            return "-"
        if self.kind == "uri":
            return redact_uri(str(value))
        if self.kind == "float":
            return f"{value:g}"
        if self.kind == "bool":
            return "true" if value else "false"
        return str(value)


def _parse_bool(_spec: Spec, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    word = str(raw).lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(raw)


def _parse_int(spec: Spec, raw: Any) -> int:
    if spec.kind == "jobs" and isinstance(raw, str) and raw.lower() in ("auto", "cores"):
        return available_cores()
    if isinstance(raw, bool) or isinstance(raw, float) and not raw.is_integer():
        raise ValueError(raw)
    return int(raw)


def _parse_float(_spec: Spec, raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(raw)
    value = float(raw)
    if value != value:  # NaN
        raise ValueError(raw)
    return value


def _parse_choice(spec: Spec, raw: Any) -> str:
    text = str(raw).lower() if not isinstance(raw, bool) else ""
    if text not in spec.choices:
        raise ValueError(raw)
    return text


def _parse_uri(_spec: Spec, raw: Any) -> str:
    text = str(raw)
    if not uri_has_host(text):
        raise ValueError(raw)
    return text


def _parse_path(_spec: Spec, raw: Any) -> Path:
    if not str(raw):
        raise ValueError(raw)
    return Path(str(raw))


def _parse_str(_spec: Spec, raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        raise ValueError(raw)
    return raw


# One parser per kind of setting: raw text (or a typed flag or TOML value) -> value.
PARSERS: dict[str, Callable[[Spec, Any], Any]] = {
    "bool": _parse_bool,
    "int": _parse_int,
    "jobs": _parse_int,
    "float": _parse_float,
    "choice": _parse_choice,
    "uri": _parse_uri,
    "path": _parse_path,
    "str": _parse_str,
}


def setting_error(spec: Spec, raw: Any, origin: Origin | None = None) -> SettingError:
    """The error for ``raw``, which is not a value ``spec`` accepts: names the setting as it
    was written, where it came from, and what is accepted."""
    shown = redact_uri(str(raw)) if spec.kind == "uri" else str(raw)
    origin = origin or Origin(Layer.DEFAULT)
    name = spec.key if origin.layer in (Layer.PROFILE, Layer.DEFAULT) else origin.name
    where = "" if origin.layer is Layer.FLAG else f" ({origin.place()})"
    setting = "" if origin.layer is Layer.FLAG else f" {spec.option}"
    if spec.kind == "uri":
        return SettingError(
            f"{name} '{shown}'{where} is not a MongoDB URI with a host",
            value=shown,
            setting=spec.option,
            fix="it must look like mongodb://[user:password@]host[:port][/?options] "
            "(or mongodb+srv://)",
        )
    return SettingError(
        f"{name} '{shown}'{where} is not a valid{setting} value",
        value=shown,
        setting=spec.option,
        fix=f"accepted is {spec.accepted()}",
    )


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


_COPY = ("plan", "run", "verify")
SPECS: tuple[Spec, ...] = (
    Spec(
        "source_uri",
        "uri",
        "MongoDB URI of the source (Cosmos DB side)",
        ("plan", "run", "verify", "repair", "dump"),
    ),
    Spec("source_db", "str", "Source database", ("plan", "dump")),
    Spec("source_collection", "str", "Source collection", ("plan", "dump")),
    Spec(
        "target_uri",
        "uri",
        "MongoDB URI of the target",
        ("plan", "run", "verify", "repair", "generate", "restore"),
    ),
    Spec("target_db", "str", "Target database", ("plan", "generate", "restore")),
    Spec("target_collection", "str", "Target collection", ("plan", "generate", "restore")),
    Spec("job", "str", "Job name", COPY_COMMANDS, in_profile=False),
    Spec(
        "manifest_dir",
        "path",
        "Folder holding one sub-folder per job (generate keeps its metrics in "
        "generate-<db>.<collection> there)",
        (*COPY_COMMANDS, "generate"),
        default=DEFAULT_MANIFEST_DIR,
    ),
    Spec(
        "partitions",
        "int",
        "Number of partitions (excludes --partition-size-mb)",
        ("plan", "dump"),
        low=1,
    ),
    Spec(
        "partition_size_mb",
        "float",
        "Target partition size in MB",
        ("plan", "dump"),
        low=0,
        low_open=True,
    ),
    Spec(
        "range_mode",
        "choice",
        "How ranges select _ids",
        ("plan",),
        default="auto",
        choices=("auto", "minmax", "typed"),
    ),
    Spec(
        "ttl_field",
        "str",
        "Date field a Cosmos DB TTL on _ts (its hidden modification time) moves to on the "
        "target; unset: that TTL is skipped, with the reason",
        ("plan",),
    ),
    Spec(
        "indexes",
        "choice",
        "When the target gets the source's indexes: after the data (fastest load), before "
        "it (the target enforces unique indexes while loading), or skip",
        ("run", "restore"),
        default="after",
        choices=("after", "before", "skip"),
    ),
    Spec(
        "disable_indexes",
        "bool",
        "Drop the target collection's own secondary indexes before loading (saved first in "
        "the job folder) and recreate exactly those after the data",
        ("run",),
        default=False,
    ),
    Spec(
        "transform",
        "str",
        "Python file (FILE.py or FILE.py:Class) whose class filters, reshapes, drops or "
        "rejects documents on their way (docs/transforms.md); the job records its content",
        ("run",),
        metavar="FILE.py[:Class]",
    ),
    Spec(
        "max_rejects",
        "int",
        "Documents a transform may reject (kept in the job folder) before the run stops starting "
        "partitions and exits 1",
        ("run",),
        default=DEFAULT_MAX_REJECTS,
        low=0,
    ),
    Spec(
        "follow",
        "bool",
        "After the copy, apply the source's changes since the job started to the target and "
        "keep following them until Ctrl-C or --until-caught-up",
        ("run",),
        default=False,
    ),
    Spec(
        "until_caught_up",
        "float",
        "With --follow: stop once the target is at most this many seconds behind the source "
        "(the moment to switch the application over)",
        ("run",),
        low=0,
        high=86400,
        metavar="SECONDS",
    ),
    Spec(
        "follow_deletes",
        "choice",
        "With --follow: how deletes reach the target: from the change stream (Cosmos DB "
        "reports none), or also by a sweep that deletes target _ids the source lacks, "
        "range by range, whenever the follow has caught up (every --sweep-interval)",
        ("run",),
        default="stream",
        choices=("stream", "sweep"),
    ),
    Spec(
        "sweep_interval",
        "float",
        "Seconds between two delete sweeps (each reads every _id on both sides)",
        ("run",),
        default=300.0,
        low=0,
        high=7 * 86400,
        metavar="SECONDS",
    ),
    Spec(
        "deep",
        "bool",
        "Compare every document byte for byte (both sides read at once, by _id), not only "
        "the counts; differences go to the job folder (for repair)",
        ("verify",),
        default=False,
    ),
    Spec(
        "sample",
        "float",
        "With --deep: compare only this percent of the partitions, picked at random (the "
        "seed is printed; --seed repeats a pick)",
        ("verify",),
        low=0,
        low_open=True,
        high=100,
        metavar="PERCENT",
    ),
    Spec(
        "recheck",
        "float",
        "With --deep: read the documents that differ again after this many seconds and "
        "count only those that still differ (a source still being written)",
        ("verify",),
        default=0.0,
        low=0,
        high=86400,
        metavar="SECONDS",
    ),
    Spec(
        "delete_extra",
        "bool",
        "Delete target documents whose _id the source lacks (without it they are left and named)",
        ("repair",),
        default=False,
    ),
    Spec(
        "jobs",
        "jobs",
        "Worker processes",
        ("run", "verify", "generate", "dump", "restore"),
        default=DEFAULT_JOBS,
        defaults=(("generate", "auto"),),
        low=1,
        high=1024,
    ),
    Spec(
        "executor",
        "choice",
        "Where the tasks run: local (this machine's worker processes) or dask (the workers "
        "of a Dask cluster, on any number of machines: give --scheduler; -j is then the "
        "tasks in flight)",
        ("run", "verify"),
        default="local",
        choices=("local", "dask"),
    ),
    Spec(
        "scheduler",
        "str",
        "Address of the Dask scheduler, with --executor dask (start it with `dask scheduler`)",
        ("run", "verify"),
        metavar="tcp://HOST:8786",
    ),
    Spec(
        "worker_uris",
        "choice",
        "With --executor dask: send (each task carries the full URIs, through the Dask "
        "scheduler) or env (tasks carry them without user and password; each worker uses "
        "VIDA_SOURCE_URI and VIDA_TARGET_URI from its own environment)",
        ("run", "verify"),
        default="send",
        choices=("send", "env"),
    ),
    Spec(
        "write_concern",
        "choice",
        "Write concern of the copy",
        ("run", "generate", "restore"),
        default=DEFAULT_WRITE_CONCERN,
        choices=("0", "1", "majority"),
    ),
    Spec(
        "batch_size",
        "int",
        "Most documents per read and per write batch",
        ("run", "generate", "restore"),
        default=DEFAULT_BATCH_SIZE,
        low=1,
        high=1_000_000,
    ),
    Spec(
        "batch_mb",
        "float",
        "Most megabytes per write batch (Cosmos DB allows 2)",
        ("run", "generate", "restore"),
        default=DEFAULT_BATCH_MB,
        low=0,
        low_open=True,
        high=MAX_BATCH_MB,
    ),
    Spec(
        "attempts",
        "int",
        "Tries per partition",
        ("run", "verify", "dump", "restore"),
        default=DEFAULT_ATTEMPTS,
        low=1,
        high=1000,
    ),
    Spec(
        "retry_attempts",
        "int",
        "Failures in a row (throttled, network, restart) one read or write may meet before "
        "its partition (generate: slice) fails; progress resets the count",
        ("run", "verify", "repair", "generate", "dump", "restore"),
        default=DEFAULT_RETRY_ATTEMPTS,
        low=0,
        high=1_000_000,
    ),
    Spec(
        "retry_window",
        "float",
        "How long a server may keep failing (restart, failover, throttling) before a "
        "partition (generate: slice) fails and the run ends with the resume command",
        ("run", "verify", "repair", "generate", "dump", "restore"),
        default=DEFAULT_RETRY_WINDOW_S,
        low=0,
        high=7 * 86400,
    ),
    Spec(
        "ru_accounting",
        "choice",
        "Read the request units (RU) a Cosmos DB source charges for each command: auto "
        "when the source reports charges (asked once), on (refused when it does not), off",
        ("plan", "run", "verify", "dump"),
        default="auto",
        choices=("auto", "on", "off"),
    ),
    Spec(
        "max_rus",
        "float",
        "Request units per second the whole run may spend on the source, all workers "
        "together (wins over --max-rus-percent); unset: adapt to the source's throttling",
        ("plan", "run"),
        low=0,
        low_open=True,
        high=10**9,
    ),
    Spec(
        "max_rus_percent",
        "float",
        "Share of the source's provisioned throughput (customAction GetCollection, else "
        "GetDatabase) the run may spend, in percent",
        ("plan", "run"),
        low=0,
        low_open=True,
        high=100,
    ),
    Spec(
        "select_timeout",
        "float",
        "Seconds to find a server before it counts as unreachable",
        SERVER_COMMANDS,
        default=Timeouts.select_ms / 1000,
        low=0,
        low_open=True,
        high=3600,
    ),
    Spec(
        "socket_timeout",
        "float",
        "Seconds one network read or write may take",
        SERVER_COMMANDS,
        default=Timeouts.socket_ms / 1000,
        low=0,
        low_open=True,
        high=86400,
    ),
    Spec(
        "progress_interval",
        "float",
        "Seconds between progress lines when stderr is not a terminal",
        ("run", "generate", "dump", "restore"),
        default=DEFAULT_PROGRESS_INTERVAL,
        low=0,
        high=86400,
    ),
    Spec(
        "verbose",
        "bool",
        "Print every setting and its source before starting",
        ("plan", "run", "verify", "repair", "generate", "dump", "restore"),
        default=False,
    ),
    Spec(
        "report_dir",
        "path",
        "Folder for report.html and its PNG plots [default: partitions/<job>/report]",
        ("report",),
    ),
    Spec(
        "quiet",
        "bool",
        "Print only the summary and errors: no progress, no notices",
        ("plan", "run", "verify", "repair", "generate", "dump", "restore"),
        default=False,
    ),
    Spec("total", "int", "Documents to generate", ("generate",), low=1, high=10**12),
    Spec(
        "generate_source",
        "str",
        "Generator, template or plugin",
        ("generate",),
        default="service-orders",
        flag="--source",
    ),
    Spec(
        "seed",
        "int",
        "Seed of the generated documents (generate), of the partitions --sample picks (verify)",
        ("generate", "verify"),
        low=0,
        high=2**63 - 1,
        in_profile=False,
    ),
    Spec(
        "out",
        "str",
        "A .bson file (- for stdout) instead of a collection (generate); the folder the "
        "dump goes to, in mongodump's layout (dump)",
        ("generate", "dump"),
        in_profile=False,
    ),
    Spec(
        "gzip",
        "bool",
        "Compress the dump's files (.bson.gz, .metadata.json.gz), as mongodump --gzip",
        ("dump",),
        default=False,
    ),
    Spec(
        "drop",
        "bool",
        "Drop the target collection before restoring into it, as mongorestore --drop "
        "(only when a restore starts, never when it continues)",
        ("restore",),
        default=False,
    ),
)
SPEC = {s.key: s for s in SPECS}

# Names the old migration framework used. The "GEN_DB_*" side is the Cosmos DB one: the
# source of a copy, the target of generate.
LEGACY: dict[str, dict[str, str]] = {
    "GEN_DB_CONNECTION_STRING": {**{c: "source_uri" for c in _COPY}, "generate": "target_uri"},
    "GEN_DB_NAME": {"plan": "source_db", "generate": "target_db"},
    "GEN_DB_COLLECTION": {"plan": "source_collection", "generate": "target_collection"},
    "MIG_TARGET_DB_CONNECTION_STRING": {c: "target_uri" for c in _COPY},
    "MIG_TARGET_DB_NAME": {"plan": "target_db"},
    "MIG_TARGET_DB_COLLECTION": {"plan": "target_collection"},
    "MIG_BATCH_SIZE": {"run": "batch_size"},
    "GEN_BATCH_SIZE": {"generate": "batch_size"},
    "GEN_TOTAL_DOCUMENTS": {"generate": "total"},
}
LEGACY_PROFILE = "FRAMEWORK_PROFILE"
PROFILE_ENV = "VIDA_PROFILE"
ENV_FILE_ENV = "VIDA_ENV_FILE"
# VIDA_ names that are not settings but are read (typo warnings must know them).
OTHER_VIDA_NAMES = (
    PROFILE_ENV,
    ENV_FILE_ENV,
    "VIDA_DEBUG",
    "VIDA_RESTART",
    "VIDA_DROP_TARGET",
    "VIDA_APPEND",
    "VIDA_REPLAN",
)


def legacy_names(key: str, command: str | None = None) -> list[str]:
    """The legacy names that set ``key`` in ``command`` (None: in some command)."""
    return sorted(
        name
        for name, keys in LEGACY.items()
        if (key in keys.values() if command is None else keys.get(command) == key)
    )
