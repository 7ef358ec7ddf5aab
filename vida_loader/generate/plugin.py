"""Python plugins: a file defining a generator class, loaded in every worker process.

The interface (see ``docs/templates.md``)::

    class Generator:
        description = "one line for --list-generators"   # optional

        def __init__(self, seed: int) -> None:            # optional; build pools here
            ...

        def generate(self, rng: random.Random, i: int) -> dict | bytes:
            ...  # document i; draw every random value from rng

``--source file.py`` uses the class named ``Generator``; ``--source file.py:Name`` another.
Document ``i`` is then a function of (seed, ``i``) as long as ``generate`` draws only from
``rng`` (and from what ``__init__`` built from ``seed``). A document without ``_id`` gets
one that grows with ``i``; ``_id`` is always put first.
"""

from __future__ import annotations

import inspect
import random
from pathlib import Path
from typing import Any

import bson

from vida_loader.errors import PluginError
from vida_loader.generate import BlockSource, growing_id
from vida_loader.pyfile import load_module, split_spec

DEFAULT_CLASS = "Generator"


class Plugin(BlockSource):
    """A document source backed by a user's generator class."""

    def __init__(self, spec: str, seed: int) -> None:
        super().__init__(seed)
        self.path, self.class_name = split_spec(spec, DEFAULT_CLASS)
        cls = _load_class(self.path, self.class_name)
        where = f"{self.path}: {self.class_name}"
        if not callable(getattr(cls, "generate", None)):
            raise PluginError(f"{where} has no method generate(self, rng, i)")
        try:
            params = inspect.signature(cls).parameters
            self.impl = cls(seed) if params else cls()
        except Exception as exc:
            raise PluginError(f"{where}(seed) failed: {type(exc).__name__}: {exc}") from None
        self.description = str(getattr(cls, "description", "") or "")

    def _one(self, rng: random.Random, i: int) -> bytes:
        try:
            doc = self.impl.generate(rng, i)
        except Exception as exc:
            raise PluginError(
                f"{self.path}: {self.class_name}.generate(rng, {i}) failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if isinstance(doc, bytes | bytearray | memoryview):
            raw = bytes(doc)
            if raw[5:9] == b"_id\x00":
                return raw  # _id first already: written as it is
            doc = self._decoded(raw, i)
        if not isinstance(doc, dict):
            raise PluginError(
                f"{self.path}: {self.class_name}.generate returned {type(doc).__name__}, "
                "not a dict or BSON bytes"
            )
        ordered = {"_id": doc["_id"] if "_id" in doc else growing_id(self.tag, i), **doc}
        try:
            return bson.encode(ordered)
        except Exception as exc:
            raise PluginError(
                f"{self.path}: document {i} cannot be stored as BSON: {type(exc).__name__}: {exc}"
            ) from None

    def _decoded(self, raw: bytes, i: int) -> Any:
        try:
            return bson.decode(raw)
        except Exception as exc:
            raise PluginError(
                f"{self.path}: {self.class_name}.generate returned bytes that are not one BSON "
                f"document (document {i}): {exc}"
            ) from None


def _load_class(path: Path, name: str) -> type:
    module = load_module(path, "--source")
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise PluginError(
            f"{path} defines no class '{name}' (a class with generate(self, rng, i) -> dict; "
            "name another with --source FILE.py:ClassName)"
        )
    return cls
