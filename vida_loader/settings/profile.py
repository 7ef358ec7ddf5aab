"""Profiles: named sets of settings in TOML files.

A profile is looked up by name in ``./profiles/NAME.toml``, then in the user's config
folder (``$XDG_CONFIG_HOME/vida-loader/profiles``, by default ``~/.config/...``), then
among the three shipped with vida-loader (``vida_loader/settings/profiles``). A file is flat:
``description = "..."`` and ``setting = value`` lines whose keys are the settings of
``vida-loader config``. An unknown key or a bad value is an error naming the file.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vida_loader.errors import SettingError, UsageError
from vida_loader.settings.registry import SPEC, Layer, Origin

BUILT_IN_DIR = Path(__file__).parent / "profiles"
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path
    scope: str  # project, user or built-in
    description: str
    values: MappingProxyType[str, Any]


def user_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vida-loader" / "profiles"


def search_dirs(cwd: Path) -> list[tuple[str, Path]]:
    """Where profiles are looked for, first match wins."""
    return [("project", cwd / "profiles"), ("user", user_dir()), ("built-in", BUILT_IN_DIR)]


def load_profile(path: Path, scope: str = "project") -> Profile:
    """A profile file, every key and value checked; a ``UsageError`` naming the file."""
    name = path.stem
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read profile '{path}': {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"profile '{path}' is not valid TOML: {exc}") from None
    description = data.pop("description", "")
    if not isinstance(description, str):
        raise UsageError(f"profile '{path}': description must be a text")
    values: dict[str, Any] = {}
    allowed = sorted(k for k, s in SPEC.items() if s.in_profile)
    for key, raw in data.items():
        spec = SPEC.get(key)
        if spec is None or not spec.in_profile:
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UsageError(
                f"profile '{path}' has an unknown setting '{key}': {hint}"
                f"accepted are {', '.join(allowed)}"
            )
        try:
            values[key] = spec.parse(raw, Origin(Layer.PROFILE, key, name))
        except SettingError as exc:
            raise UsageError(f"{exc.line()}; in '{path}'") from None
    return Profile(name, path, scope, description, MappingProxyType(values))


def list_profiles(cwd: Path) -> list[Profile]:
    """Every profile found, the one a name picks first; shadowed ones left out."""
    seen: dict[str, Profile] = {}
    for scope, folder in search_dirs(cwd):
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            if path.stem not in seen:
                seen[path.stem] = load_profile(path, scope)
    return sorted(seen.values(), key=lambda p: p.name)


def profile_names(cwd: Path) -> list[str]:
    names: set[str] = set()
    for _scope, folder in search_dirs(cwd):
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.toml"))
    return sorted(names)


def find_profile(name: str, cwd: Path, origin: Origin | None = None) -> Profile:
    """The profile called ``name``; a ``UsageError`` listing the known ones otherwise."""
    if PROFILE_NAME.match(name):
        for scope, folder in search_dirs(cwd):
            path = folder / f"{name}.toml"
            if path.is_file():
                return load_profile(path, scope)
    where = f" (from {origin.describe()})" if origin else ""
    raise UsageError(
        f"unknown profile '{name}'{where}: known are {', '.join(profile_names(cwd))} "
        f"(add your own as profiles/{name}.toml)"
    )
