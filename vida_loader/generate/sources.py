"""What ``--source`` names: a built-in generator (later a JSON template or a Python plugin).

A document source has ``iter_range(start, stop)`` (and ``encode_range``, its list): the
BSON of documents ``start`` to ``stop - 1``, each a function of (seed, index) only, each
beginning with its ``_id``. Sources are built once per process (pools cost a fraction
of a second) and kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from vida_loader.errors import UsageError
from vida_loader.generate import service_orders


class DocumentSource(Protocol):
    def iter_range(self, start: int, stop: int) -> Iterator[bytes]: ...

    def encode_range(self, start: int, stop: int) -> list[bytes]: ...


@dataclass(frozen=True)
class BuiltIn:
    name: str
    description: str
    factory: Callable[[int], DocumentSource]


BUILT_INS = {
    g.name: g
    for g in (
        BuiltIn(service_orders.NAME, service_orders.DESCRIPTION, service_orders.ServiceOrders),
    )
}
DEFAULT_SOURCE = service_orders.NAME

_LOADED: dict[tuple[str, int], DocumentSource] = {}


def check_source(spec: str) -> None:
    """Refuse a ``--source`` that names nothing usable, before anything is written."""
    if spec not in BUILT_INS:
        names = ", ".join(sorted(BUILT_INS))
        raise UsageError(
            f"--source '{spec}' is not a built-in generator (built-ins: {names}); "
            "see `vida-loader generate --list-generators`"
        )


def load_source(spec: str, seed: int) -> DocumentSource:
    """The source ``spec`` seeded with ``seed``, built once per process."""
    key = (spec, seed)
    source = _LOADED.get(key)
    if source is None:
        check_source(spec)
        _LOADED.clear()  # one source per process at a time: pools are large
        source = _LOADED[key] = BUILT_INS[spec].factory(seed)
    return source


def list_generators() -> list[tuple[str, str]]:
    return [(g.name, g.description) for g in BUILT_INS.values()]
