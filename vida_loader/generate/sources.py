"""What ``--source`` names: a built-in generator, a JSON template or a Python plugin.

A document source has ``iter_range(start, stop)`` (and ``encode_range``, its list): the
BSON of documents ``start`` to ``stop - 1``, each a function of (seed, index) only, each
beginning with its ``_id``. Sources are built once per process (pools cost a fraction
of a second) and kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from vida_loader.errors import UsageError
from vida_loader.generate import BlockSource, service_orders
from vida_loader.generate.plugin import DEFAULT_CLASS, Plugin
from vida_loader.generate.template import Template
from vida_loader.pyfile import split_spec


@dataclass(frozen=True)
class BuiltIn:
    name: str
    description: str
    factory: Callable[[int], BlockSource]


BUILT_INS = {
    g.name: g
    for g in (
        BuiltIn(service_orders.NAME, service_orders.DESCRIPTION, service_orders.ServiceOrders),
    )
}
DEFAULT_SOURCE = service_orders.NAME

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

_LOADED: dict[tuple[str, int], BlockSource] = {}


def resolve_source(spec: str) -> str:
    """What ``--source`` names, made absolute so that every worker process finds it.

    A built-in name; a ``.json`` template (a file, else one shipped with vida-loader, see
    ``--list-templates``); a ``.py`` plugin (``file.py`` or ``file.py:ClassName``).
    """
    if spec in BUILT_INS:
        return spec
    if spec.endswith(".json"):
        path = Path(spec)
        if not path.exists() and (TEMPLATES_DIR / spec).is_file():
            path = TEMPLATES_DIR / spec
        if not path.is_file():
            raise UsageError(
                f"--source '{spec}': no such template file (shipped templates: "
                f"{', '.join(n for n, _d in list_templates()) or 'none'})"
            )
        return str(path.resolve())
    if spec.endswith(".py") or ".py:" in spec:
        path, name = split_spec(spec, DEFAULT_CLASS)
        if not path.is_file():
            raise UsageError(f"--source '{spec}': no such plugin file")
        return f"{path.resolve()}:{name}"
    names = ", ".join(sorted(BUILT_INS))
    raise UsageError(
        f"--source '{spec}' is neither a built-in generator ({names}) nor a .json template "
        "nor a .py plugin; see `vida-loader generate --list-generators`"
    )


def load_source(spec: str, seed: int) -> BlockSource:
    """The source ``spec`` (resolved) seeded with ``seed``, built once per process."""
    key = (spec, seed)
    source = _LOADED.get(key)
    if source is None:
        _LOADED.clear()  # one source per process at a time: pools are large
        source = _build(spec, seed)
        _LOADED[key] = source
    return source


def _build(spec: str, seed: int) -> BlockSource:
    if spec in BUILT_INS:
        return BUILT_INS[spec].factory(seed)
    if spec.endswith(".json"):
        return Template(Path(spec), seed)
    return Plugin(spec, seed)


def list_generators() -> list[tuple[str, str]]:
    return [(g.name, g.description) for g in BUILT_INS.values()]


def list_templates() -> list[tuple[str, str]]:
    """(file name, its ``$description``) of each template shipped with vida-loader."""
    out = []
    for path in sorted(TEMPLATES_DIR.glob("*.json")):
        try:
            description = str(orjson.loads(path.read_bytes()).get("$description", ""))
        except (OSError, orjson.JSONDecodeError, AttributeError):
            description = "(unreadable)"
        out.append((path.name, description))
    return out
