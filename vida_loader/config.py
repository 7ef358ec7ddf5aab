"""Settings: where every value comes from, and the frozen config object of each command.

:func:`resolve` builds one frozen :class:`Settings` per command from, in this order:
flag > ``VIDA_*`` environment variable > legacy environment variable (the old framework's
names) > ``.env_local`` > ``.env`` (or ``--env-file``) > profile > built-in default. Every
value keeps its origin, so ``vida-loader config`` can say where it came from and a bad
value is one line naming the setting, its source and the accepted values.
"""

from __future__ import annotations

import difflib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dotenv.parser import parse_stream

from vida_loader.errors import UsageError
from vida_loader.jobfiles import JobFiles
from vida_loader.manifest import RangeMode
from vida_loader.mongo import (
    ServerKind,
    Timeouts,
    redact_uri,
    server_kind,
    uri_has_host,
    uri_options,
    write_concern,
)
from vida_loader.retry import DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_WINDOW_S, RetryPolicy

DEFAULT_PARTITION_SIZE_MB = 64.0
DEFAULT_MANIFEST_DIR = Path("partitions")
DEFAULT_BATCH_DOCS = 1000  # Cosmos DB advises about 1,000 documents per write
DEFAULT_BATCH_MB = 2.0  # and allows 2 MB per request
# Per find/getMore: about 2 MB by the plan's average document size (one read feeds two
# writes), at most 10,000 documents. Measured on 30k ~1 KB documents, peak RSS of
# `run -j 1` was 127 MB with 10,000-document reads, 83 MB with 4,000 and 65 MB with 2,000,
# at the same CPU. The server caps a reply anyway (16 MB MongoDB, 4 MB Cosmos DB).
DEFAULT_READ_BATCH_DOCS = 10_000
DEFAULT_READ_BATCH_MB = 2.0
DEFAULT_JOBS = 4
DEFAULT_WRITE_CONCERN = "1"  # confirmed by the write results, no count
DEFAULT_ATTEMPTS = 3
DEFAULT_PROGRESS_INTERVAL = 5.0  # seconds between plain lines when stderr is not a terminal
MAX_BATCH_MB = 16.0
JOB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class Endpoint:
    """One side of a copy: a full URI (may hold credentials: never stored) and a namespace."""

    uri: str
    db: str
    collection: str

    @property
    def namespace(self) -> str:
        return f"{self.db}.{self.collection}"


@dataclass(frozen=True)
class PlanConfig:
    """Everything ``plan`` needs."""

    source: Endpoint
    target: Endpoint
    job: str
    manifest_dir: Path = DEFAULT_MANIFEST_DIR
    partitions: int | None = None
    partition_size_mb: float | None = None
    range_mode: str = "auto"  # "auto" or a RangeMode value
    replan: bool = False
    samples_per_partition: int = 10
    timeouts: Timeouts = Timeouts()

    def __post_init__(self) -> None:
        if self.partitions is not None and self.partition_size_mb is not None:
            raise UsageError(
                f"--partitions '{self.partitions}' and --partition-size-mb "
                f"'{self.partition_size_mb:g}' exclude each other: give one"
            )
        if self.partitions is not None and self.partitions < 1:
            raise UsageError(f"--partitions '{self.partitions}' must be at least 1")
        if self.partition_size_mb is not None and not self.partition_size_mb > 0:
            raise UsageError(
                f"--partition-size-mb '{self.partition_size_mb:g}' must be greater than 0"
            )
        if self.range_mode != "auto" and self.range_mode not in set(RangeMode):
            raise UsageError(f"--range-mode '{self.range_mode}' must be auto, minmax or typed")
        check_job_name(self.job)
        for side, ep in (("source", self.source), ("target", self.target)):
            if not ep.db or not ep.collection:
                which = "db" if not ep.db else "collection"
                raise UsageError(
                    f"--{side}-{which} is required (or VIDA_{side.upper()}_{which.upper()})"
                )
            check_namespace(side, ep.db, ep.collection)

    @property
    def files(self) -> JobFiles:
        return JobFiles(self.manifest_dir, self.job)

    @property
    def size_mb(self) -> float:
        return self.partition_size_mb or DEFAULT_PARTITION_SIZE_MB


@dataclass(frozen=True)
class JobConfig:
    """What every command working on a planned job needs. URIs default to the manifest's."""

    job: str
    manifest_dir: Path = DEFAULT_MANIFEST_DIR
    source_uri: str | None = None
    target_uri: str | None = None
    jobs: int = DEFAULT_JOBS
    timeouts: Timeouts = Timeouts()

    def __post_init__(self) -> None:
        check_job_name(self.job)
        if self.jobs < 1:
            raise UsageError(f"--jobs '{self.jobs}' must be at least 1")

    @property
    def files(self) -> JobFiles:
        return JobFiles(self.manifest_dir, self.job)


@dataclass(frozen=True)
class RunConfig(JobConfig):
    """Everything ``run`` needs besides the manifest."""

    write_concern: str = DEFAULT_WRITE_CONCERN
    batch_docs: int = DEFAULT_BATCH_DOCS
    batch_mb: float = DEFAULT_BATCH_MB
    repair_rounds: int = 2
    attempts: int = DEFAULT_ATTEMPTS
    retry_attempts: int = DEFAULT_RETRY_ATTEMPTS  # failures in a row of one operation
    retry_window_s: float = DEFAULT_RETRY_WINDOW_S  # seconds one operation may keep failing
    restart: bool = False  # forget the run state, start the job over
    drop_target: bool = False  # empty the target collection before a fresh start
    append: bool = False  # start fresh although the target collection holds documents

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.drop_target and self.append:
            raise UsageError(
                "--drop-target and --append exclude each other: empty the target or add to it"
            )
        write_concern(self.write_concern)  # refuses anything but 0, 1, majority
        if self.batch_docs < 1:
            raise UsageError(f"--batch-size '{self.batch_docs}' must be at least 1")
        if not 0 < self.batch_mb <= MAX_BATCH_MB:
            raise UsageError(
                f"--batch-mb '{self.batch_mb:g}' must be above 0 and at most {MAX_BATCH_MB:g}"
            )
        if self.attempts < 1:
            raise UsageError(f"--attempts '{self.attempts}' must be at least 1")
        if self.retry_attempts < 0:
            raise UsageError(f"--retry-attempts '{self.retry_attempts}' must be at least 0")
        if not self.retry_window_s >= 0:
            raise UsageError(f"--retry-window '{self.retry_window_s:g}' must be at least 0")

    @classmethod
    def from_settings(cls, s: Settings, job: str, **actions: bool) -> RunConfig:
        """The run of ``job`` that settings ``s`` describe; ``actions``: restart,
        drop_target, append."""
        return cls(
            job=job,
            manifest_dir=s["manifest_dir"],
            source_uri=s["source_uri"],
            target_uri=s["target_uri"],
            jobs=s["jobs"],
            write_concern=s["write_concern"],
            batch_docs=s["batch_size"],
            batch_mb=s["batch_mb"],
            attempts=s["attempts"],
            retry_attempts=s["retry_attempts"],
            retry_window_s=s["retry_window"],
            timeouts=s.timeouts(),
            **actions,
        )

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.retry_attempts, window_s=self.retry_window_s)

    @property
    def batch_bytes(self) -> int:
        return int(self.batch_mb * 1024 * 1024)

    def settings(self) -> dict[str, Any]:
        """What the run state records of this run's settings (and a resume repeats)."""
        return {
            "jobs": self.jobs,
            "write_concern": self.write_concern,
            "batch_docs": self.batch_docs,
            "batch_bytes": self.batch_bytes,
            "repair_rounds": self.repair_rounds,
            "attempts": self.attempts,
            "retry_attempts": self.retry_attempts,
            "retry_window_s": self.retry_window_s,
        }


@dataclass(frozen=True)
class VerifyConfig(JobConfig):
    """Everything ``verify`` needs besides the manifest."""

    @classmethod
    def from_settings(cls, s: Settings, job: str) -> VerifyConfig:
        return cls(
            job=job,
            manifest_dir=s["manifest_dir"],
            source_uri=s["source_uri"],
            target_uri=s["target_uri"],
            jobs=s["jobs"],
            timeouts=s.timeouts(),
        )


def check_job_name(job: str) -> None:
    if not JOB_NAME.match(job):
        raise UsageError(
            f"--job '{job}' is not a usable job name: use letters, digits, '.', '_' and '-'"
        )


# MongoDB's rules (Atlas and Cosmos DB follow them): what the server would refuse on the
# first write, refused here before anything is written.
DB_NAME_FORBIDDEN = '/\\. "$\x00'
MAX_DB_NAME_BYTES = 63
MAX_NAMESPACE_BYTES = 255


def check_namespace(side: str, db: str, collection: str) -> None:
    """A ``UsageError`` naming the flag when ``db`` or ``collection`` breaks MongoDB's
    naming rules. Empty names are left to the "is required" checks."""
    flag = f"--{side}-db"
    bad = sorted({c for c in db if c in DB_NAME_FORBIDDEN})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise UsageError(
            f"{flag} '{db}' cannot be a database name: it holds {shown}; MongoDB database "
            f'names have none of / \\ . space " $'
        )
    if len(db.encode()) > MAX_DB_NAME_BYTES:
        raise UsageError(
            f"{flag} '{db}' is {len(db.encode())} bytes long: database names are at most "
            f"{MAX_DB_NAME_BYTES} bytes"
        )
    flag = f"--{side}-collection"
    if "$" in collection or "\x00" in collection:
        raise UsageError(
            f"{flag} '{collection}' cannot be a collection name: MongoDB collection names "
            "have no '$' and no NUL character"
        )
    if collection.startswith("system."):
        raise UsageError(
            f"{flag} '{collection}' names a system collection: choose a name that does not "
            "start with 'system.'"
        )
    namespace = f"{db}.{collection}"
    if len(namespace.encode()) > MAX_NAMESPACE_BYTES:
        raise UsageError(
            f"{flag} '{collection}' makes the namespace '{namespace}' "
            f"{len(namespace.encode())} bytes long: at most {MAX_NAMESPACE_BYTES} are allowed"
        )


def default_job_name(source_db: str, source_collection: str) -> str:
    """``<db>.<collection>``, with characters unfit for a folder name replaced by ``_``."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{source_db}.{source_collection}")
    return name.lstrip(".") or "job"


# ---------------------------------------------------------------------------------------
# Settings: every value a command uses, from the first layer that gives it:
# flag > VIDA_* environment > legacy environment > .env_local > .env > profile > default.
# ---------------------------------------------------------------------------------------

COPY_COMMANDS = ("plan", "run", "verify", "status")
COMMANDS = (*COPY_COMMANDS, "generate")
SERVER_COMMANDS = ("plan", "run", "verify", "generate")
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
            raise SettingError(self, raw, origin) from None

    def _parse(self, raw: Any) -> Any:
        if isinstance(raw, str):
            raw = raw.strip()
        kind = self.kind
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            word = str(raw).lower()
            if word in TRUE_WORDS or word in FALSE_WORDS:
                return word in TRUE_WORDS
            raise ValueError(raw)
        if kind == "jobs" and isinstance(raw, str) and raw.lower() in ("auto", "cores"):
            return available_cores()
        if kind in ("int", "jobs"):
            if isinstance(raw, bool) or isinstance(raw, float) and not raw.is_integer():
                raise ValueError(raw)
            value: float = int(raw)
        elif kind == "float":
            if isinstance(raw, bool):
                raise ValueError(raw)
            value = float(raw)
            if value != value:  # NaN
                raise ValueError(raw)
        elif kind == "choice":
            text = str(raw).lower() if not isinstance(raw, bool) else ""
            if text not in self.choices:
                raise ValueError(raw)
            return text
        elif kind == "uri":
            text = str(raw)
            if not uri_has_host(text):
                raise ValueError(raw)
            return text
        elif kind == "path":
            if not str(raw):
                raise ValueError(raw)
            return Path(str(raw))
        else:
            if not isinstance(raw, str) or not raw:
                raise ValueError(raw)
            return raw
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


class SettingError(UsageError):
    """A setting's value is not one of the accepted ones; names the setting and its source."""

    def __init__(self, spec: Spec | str, raw: Any = None, origin: Origin | None = None) -> None:
        if isinstance(spec, str):  # unpickling: the message only
            super().__init__(spec)
            return
        shown = redact_uri(str(raw)) if spec.kind == "uri" else str(raw)
        origin = origin or Origin(Layer.DEFAULT)
        name = spec.key if origin.layer in (Layer.PROFILE, Layer.DEFAULT) else origin.name
        where = "" if origin.layer is Layer.FLAG else f" ({origin.place()})"
        setting = "" if origin.layer is Layer.FLAG else f" {spec.option}"
        if spec.kind == "uri":
            super().__init__(
                f"{name} '{shown}'{where} is not a MongoDB URI with a host: it must look "
                "like mongodb://[user:password@]host[:port][/?options] (or mongodb+srv://)"
            )
            return
        super().__init__(
            f"{name} '{shown}'{where} is not a valid{setting} value: accepted is {spec.accepted()}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (SettingError, (self.message,))


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


_COPY = ("plan", "run", "verify")
SPECS: tuple[Spec, ...] = (
    Spec(
        "source_uri", "uri", "MongoDB URI of the source (Cosmos DB side)", ("plan", "run", "verify")
    ),
    Spec("source_db", "str", "Source database", ("plan",)),
    Spec("source_collection", "str", "Source collection", ("plan",)),
    Spec("target_uri", "uri", "MongoDB URI of the target", ("plan", "run", "verify", "generate")),
    Spec("target_db", "str", "Target database", ("plan", "generate")),
    Spec("target_collection", "str", "Target collection", ("plan", "generate")),
    Spec("job", "str", "Job name", COPY_COMMANDS, in_profile=False),
    Spec(
        "manifest_dir",
        "path",
        "Folder holding one sub-folder per job",
        COPY_COMMANDS,
        default=DEFAULT_MANIFEST_DIR,
    ),
    Spec(
        "partitions", "int", "Number of partitions (excludes --partition-size-mb)", ("plan",), low=1
    ),
    Spec(
        "partition_size_mb", "float", "Target partition size in MB", ("plan",), low=0, low_open=True
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
        "jobs",
        "jobs",
        "Worker processes",
        ("run", "verify", "generate"),
        default=DEFAULT_JOBS,
        defaults=(("generate", "auto"),),
        low=1,
        high=1024,
    ),
    Spec(
        "write_concern",
        "choice",
        "Write concern of the copy",
        ("run", "generate"),
        default=DEFAULT_WRITE_CONCERN,
        choices=("0", "1", "majority"),
    ),
    Spec(
        "batch_size",
        "int",
        "Most documents per read and per write batch",
        ("run", "generate"),
        default=DEFAULT_BATCH_DOCS,
        low=1,
        high=1_000_000,
    ),
    Spec(
        "batch_mb",
        "float",
        "Most megabytes per write batch (Cosmos DB allows 2)",
        ("run", "generate"),
        default=DEFAULT_BATCH_MB,
        low=0,
        low_open=True,
        high=MAX_BATCH_MB,
    ),
    Spec(
        "attempts",
        "int",
        "Tries per partition",
        ("run",),
        default=DEFAULT_ATTEMPTS,
        low=1,
        high=1000,
    ),
    Spec(
        "retry_attempts",
        "int",
        "Failures in a row (throttled, network, restart) one read or write may meet before "
        "its partition (generate: slice) fails; progress resets the count",
        ("run", "generate"),
        default=DEFAULT_RETRY_ATTEMPTS,
        low=0,
        high=1_000_000,
    ),
    Spec(
        "retry_window",
        "float",
        "How long a server may keep failing (restart, failover, throttling) before a "
        "partition (generate: slice) fails and the run ends with the resume command",
        ("run", "generate"),
        default=DEFAULT_RETRY_WINDOW_S,
        low=0,
        high=7 * 86400,
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
        ("run", "generate"),
        default=DEFAULT_PROGRESS_INTERVAL,
        low=0,
        high=86400,
    ),
    Spec(
        "verbose",
        "bool",
        "Print every setting and its source before starting",
        ("plan", "run", "verify", "generate"),
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
        "Seed of the generated documents",
        ("generate",),
        low=0,
        high=2**63 - 1,
        in_profile=False,
    ),
    Spec(
        "out",
        "str",
        "A .bson file (- for stdout) instead of a collection",
        ("generate",),
        in_profile=False,
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


@dataclass(frozen=True)
class Value:
    value: Any
    origin: Origin


@dataclass(frozen=True)
class Settings:
    """Every setting one command uses, with its origin. Frozen, built once by :func:`resolve`."""

    command: str
    values: Mapping[str, Value]
    profile_path: Path | None = None
    files: tuple[Path, ...] = ()
    notices: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Any:
        return self.values[key].value

    def origin(self, key: str) -> Origin:
        return self.values[key].origin

    @property
    def profile(self) -> str | None:
        return self["profile"]  # type: ignore[no-any-return]

    def get(self, key: str) -> Any:
        """The value, or None where the command has no such setting."""
        v = self.values.get(key)
        return None if v is None else v.value

    def endpoint(self, side: str) -> Endpoint:
        """``source`` or ``target`` as given (empty where not set; configs check that)."""
        return Endpoint(*(self.get(f"{side}_{part}") or "" for part in ("uri", "db", "collection")))

    def timeouts(self) -> Timeouts:
        return Timeouts(
            select_ms=round(self["select_timeout"] * 1000),
            socket_ms=round(self["socket_timeout"] * 1000),
        )

    def rows(self) -> list[tuple[str, str, str]]:
        """(setting, value as shown, origin), passwords redacted: what ``config`` prints."""
        return [
            (key, SPEC[key].show(v.value) if key in SPEC else v.value or "-", v.origin.describe())
            for key, v in self.values.items()
        ]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (python-dotenv's parser, no interpolation: a
    password may hold a ``$``). A line that is not a setting is an error naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read env file '{path}': {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"env file '{path}' is not UTF-8 text") from None
    values: dict[str, str] = {}
    line = 1
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise UsageError(
                f"env file '{path}' line {line} is not KEY=VALUE: fix or remove that line"
            )
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
        line += binding.original.string.count("\n")
    return values


def _typo_warnings(names: Any, where: str) -> list[str]:
    known = [s.envvar for s in SPECS] + list(OTHER_VIDA_NAMES)
    out = []
    for name in names:
        if name.startswith("VIDA_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
            if close:
                out.append(
                    f"{name} ({where}) is not a vida-loader setting and is ignored: "
                    f"did you mean {close[0]}?"
                )
    return out


def resolve(
    command: str,
    given: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """The settings of ``command``: ``given`` holds the flags of the command line (setting
    key to value, plus ``profile`` and ``env_file``), the rest comes from the environment,
    the env files in ``cwd``, the profile and the defaults, in that order."""
    from vida_loader import profile as profiles  # profile files need SPECS: import late

    given = {k: v for k, v in (given or {}).items() if v is not None}
    for key in given:
        if key in SPEC and command not in SPEC[key].commands:
            raise UsageError(f"{SPEC[key].option} is not a setting of `vida-loader {command}`")
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    warnings: list[str] = _typo_warnings(environ, "environment")
    notices: list[str] = []

    # Env files: --env-file (or VIDA_ENV_FILE) instead of ./.env_local and ./.env.
    explicit = given.get("env_file") or environ.get(ENV_FILE_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            how = "--env-file" if given.get("env_file") else ENV_FILE_ENV
            raise UsageError(f"{how} '{path}' is not a file: give the path of a KEY=VALUE file")
        paths = [path]
    else:
        paths = [cwd / name for name in ENV_FILES if (cwd / name).is_file()]
    files = [(path, read_env_file(path)) for path in paths]
    for path, values in files:
        warnings += _typo_warnings(values, str(path))

    # Below the flags, highest first: (layer, file shown, name -> raw, legacy names?).
    layers: list[tuple[Layer, str, Mapping[str, Any], bool]] = [
        (Layer.ENV, "", environ, False),
        (Layer.LEGACY, "", environ, True),
    ]
    for path, values in files:
        shown = str(path if explicit else path.name)
        layers += [(Layer.ENV_FILE, shown, values, False), (Layer.ENV_FILE, shown, values, True)]

    def lookup(key: str, vida: str, legacy: list[str]) -> tuple[Any, Origin] | None:
        if key in given:
            return given[key], Origin(Layer.FLAG, SPEC[key].option if key in SPEC else f"--{key}")
        for layer, where, values, is_legacy in layers:
            for name in legacy if is_legacy else [vida]:
                if str(values.get(name, "")).strip():  # empty counts as not set
                    return values[name], Origin(layer, name, where)
        return None

    chosen = lookup("profile", PROFILE_ENV, [LEGACY_PROFILE])
    profile = None
    resolved: dict[str, Value] = {}
    if chosen is not None and str(chosen[0]).strip():
        profile = profiles.find_profile(str(chosen[0]).strip(), cwd, origin=chosen[1])
        resolved["profile"] = Value(profile.name, chosen[1])
    else:
        resolved["profile"] = Value(None, Origin(Layer.DEFAULT))

    for spec in SPECS:
        if command not in spec.commands:
            continue
        found = lookup(spec.key, spec.envvar, legacy_names(spec.key, command))
        if found is None and profile is not None and spec.key in profile.values:
            found = profile.values[spec.key], Origin(Layer.PROFILE, spec.key, profile.name)
        if found is None:
            default = spec.default_for(command)
            resolved[spec.key] = Value(
                None if default is None else spec.parse(default, Origin(Layer.DEFAULT)),
                Origin(Layer.DEFAULT),
            )
            continue
        raw, origin = found
        resolved[spec.key] = Value(spec.parse(raw, origin), origin)

    notices += _uri_notices(command, resolved)
    if "write_concern" in resolved and _target_wants_w0(resolved):
        if resolved["write_concern"].origin.layer is Layer.DEFAULT:
            resolved["write_concern"] = Value("0", Origin(Layer.URI, "w=0", "the target URI"))
    return Settings(
        command=command,
        values=MappingProxyType(resolved),
        profile_path=profile.path if profile else None,
        files=tuple(p for p, _v in files),
        notices=tuple(notices),
        warnings=tuple(warnings),
    )


def _target_wants_w0(values: Mapping[str, Value]) -> bool:
    uri = values.get("target_uri")
    return bool(uri and uri.value and uri_options(uri.value).get("w") == "0")


def _uri_notices(command: str, values: Mapping[str, Value]) -> list[str]:
    """What ``w`` and ``retryWrites`` inside a connection string mean to vida-loader."""
    out = []
    for side in ("source", "target"):
        v = values.get(f"{side}_uri")
        if not v or not v.value:
            continue
        opts = uri_options(v.value)
        shown = redact_uri(v.value)
        if "w" in opts and side == "source":
            out.append(
                f"the source URI '{shown}' sets w={opts['w']}: the source is only read, "
                "so it has no effect"
            )
        if "w" in opts and side == "target":
            if opts["w"] == "0":
                out.append(
                    "the target URI sets w=0 (unacknowledged writes): the copy path writes "
                    "that way with --write-concern 0 and then confirms every partition "
                    "(generate: slice) by counting it on the target; unless --write-concern "
                    "is set elsewhere, w=0 is used"
                )
            else:
                out.append(
                    f"the target URI sets w={opts['w']}: vida-loader writes with "
                    "--write-concern (0, 1 or majority) instead"
                )
        retry = opts.get("retrywrites", "").lower()
        if retry == "true" and server_kind(v.value) is ServerKind.COSMOS:
            out.append(
                f"the {side} URI sets retryWrites=true, which Cosmos DB accounts on API 3.6 "
                "refuse: vida-loader retries every failed write itself (--retry-attempts, "
                "--retry-window), so retryWrites=false loses nothing"
            )
    return out


def example_env_file() -> str:
    """The text of ``.env_local.example``: every setting, commented out, with its flag,
    accepted values, defaults and legacy names (a test keeps the shipped file equal)."""
    lines = [
        "# vida-loader settings: copy to .env_local (never committed: it is in .gitignore)",
        "# and uncomment what you need. Precedence: flag > VIDA_* environment variable >",
        "# legacy environment variable > .env_local > .env > profile > built-in default.",
        "# `vida-loader config` prints every effective value and where it came from.",
        "",
        "# Profile: data-ingest, data-migration, dev, or your own profiles/NAME.toml",
        f"# {PROFILE_ENV}=data-migration",
        f"# (legacy: {LEGACY_PROFILE})",
    ]
    for spec in SPECS:
        shown = [] if spec.default is None else [spec.show(spec.default)]
        shown += [f"{c}: {spec.show(v)}" for c, v in spec.defaults]
        legacy = [
            f"{name} ({', '.join(c for c in COMMANDS if name in legacy_names(spec.key, c))})"
            for name in legacy_names(spec.key)
        ]
        lines += [
            "",
            f"# {spec.option}: {spec.help}; {spec.accepted()}",
            f"#   used by: {', '.join(spec.commands)}"
            + (f"; default: {', '.join(shown)}" if shown else ""),
        ]
        if legacy:
            lines.append(f"#   legacy names: {', '.join(legacy)}")
        example = (
            shown[0] if shown else {"uri": "mongodb://user:password@host:27017/"}.get(spec.kind, "")
        )
        lines.append(f"# {spec.envvar}={example}")
    return "\n".join(lines) + "\n"
