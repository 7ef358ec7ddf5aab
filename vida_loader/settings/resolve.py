"""Resolve the settings of one command from its layers into one frozen ``Settings``."""

from __future__ import annotations

import difflib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vida_loader.endpoint import (
    Endpoint,
    ServerKind,
    Timeouts,
    redact_uri,
    server_kind,
    uri_options,
)
from vida_loader.errors import UsageError
from vida_loader.settings import profile as profiles
from vida_loader.settings.registry import (
    COMMANDS,
    ENV_FILE_ENV,
    ENV_FILES,
    LEGACY_PROFILE,
    OTHER_VIDA_NAMES,
    PROFILE_ENV,
    SPEC,
    SPECS,
    Layer,
    Origin,
    Spec,
    legacy_names,
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
    from dotenv.parser import parse_stream  # here: most commands read no env file

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
    given = {k: v for k, v in (given or {}).items() if v is not None}
    for key in given:
        if key in SPEC and command not in SPEC[key].commands:
            raise UsageError(f"{SPEC[key].option} is not a setting of `vida-loader {command}`")
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    files = _env_files(given, environ, cwd)
    warnings = _typo_warnings(environ, "environment")
    for path, _shown, values in files:
        warnings += _typo_warnings(values, str(path))
    layers = _Layers(given, environ, files)
    resolved: dict[str, Value] = {}
    profile = _profile(layers, cwd, resolved)
    for spec in SPECS:
        if command in spec.commands:
            resolved[spec.key] = _value(spec, command, layers, profile)
    notices = _uri_notices(command, resolved)
    if "write_concern" in resolved and _target_wants_w0(resolved):
        if resolved["write_concern"].origin.layer is Layer.DEFAULT:
            resolved["write_concern"] = Value("0", Origin(Layer.URI, "w=0", "the target URI"))
    return Settings(
        command=command,
        values=MappingProxyType(resolved),
        profile_path=profile.path if profile else None,
        files=tuple(p for p, _s, _v in files),
        notices=tuple(notices),
        warnings=tuple(warnings),
    )


EnvFile = tuple[Path, str, dict[str, str]]  # path, name as shown, its values


def _env_files(given: Mapping[str, Any], environ: Mapping[str, str], cwd: Path) -> list[EnvFile]:
    """--env-file (or VIDA_ENV_FILE) instead of ./.env_local and ./.env."""
    explicit = given.get("env_file") or environ.get(ENV_FILE_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            how = "--env-file" if given.get("env_file") else ENV_FILE_ENV
            raise UsageError(f"{how} '{path}' is not a file: give the path of a KEY=VALUE file")
        return [(path, str(path), read_env_file(path))]
    paths = [cwd / name for name in ENV_FILES if (cwd / name).is_file()]
    return [(path, path.name, read_env_file(path)) for path in paths]


class _Layers:
    """Where a setting's raw value is looked for, highest first: the flags, then each of
    (layer, file shown, name -> raw, legacy names?) below them."""

    def __init__(
        self, given: Mapping[str, Any], environ: Mapping[str, str], files: list[EnvFile]
    ) -> None:
        self.given = given
        self.below: list[tuple[Layer, str, Mapping[str, Any], bool]] = [
            (Layer.ENV, "", environ, False),
            (Layer.LEGACY, "", environ, True),
        ]
        for _path, shown, values in files:
            self.below += [
                (Layer.ENV_FILE, shown, values, False),
                (Layer.ENV_FILE, shown, values, True),
            ]

    def lookup(self, key: str, vida: str, legacy: list[str]) -> tuple[Any, Origin] | None:
        if key in self.given:
            option = SPEC[key].option if key in SPEC else f"--{key}"
            return self.given[key], Origin(Layer.FLAG, option)
        for layer, where, values, is_legacy in self.below:
            for name in legacy if is_legacy else [vida]:
                if str(values.get(name, "")).strip():  # empty counts as not set
                    return values[name], Origin(layer, name, where)
        return None


def _profile(layers: _Layers, cwd: Path, resolved: dict[str, Value]) -> profiles.Profile | None:
    """The chosen profile, loaded (recorded in ``resolved`` as ``profile``)."""
    chosen = layers.lookup("profile", PROFILE_ENV, [LEGACY_PROFILE])
    if chosen is None or not str(chosen[0]).strip():
        resolved["profile"] = Value(None, Origin(Layer.DEFAULT))
        return None
    profile = profiles.find_profile(str(chosen[0]).strip(), cwd, origin=chosen[1])
    resolved["profile"] = Value(profile.name, chosen[1])
    return profile


def _value(spec: Spec, command: str, layers: _Layers, profile: profiles.Profile | None) -> Value:
    """One setting's value and origin: flags and layers, then the profile, then the default."""
    found = layers.lookup(spec.key, spec.envvar, legacy_names(spec.key, command))
    if found is None and profile is not None and spec.key in profile.values:
        found = profile.values[spec.key], Origin(Layer.PROFILE, spec.key, profile.name)
    if found is None:
        default = spec.default_for(command)
        value = None if default is None else spec.parse(default, Origin(Layer.DEFAULT))
        return Value(value, Origin(Layer.DEFAULT))
    raw, origin = found
    return Value(spec.parse(raw, origin), origin)


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
