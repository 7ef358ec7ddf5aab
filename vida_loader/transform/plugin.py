"""Transform plugins: a user's class that filters, reshapes, drops and rejects documents
on their way to the target (``run --transform FILE.py[:Class]``; docs/transforms.md).

The interface, every part optional::

    class Transform:
        filter = {"service_type": {"$in": ["repair", "install"]}}  # added to every range query
        projection = {"internal_notes": 0}                        # fields read from the source

        def transform(self, doc: dict) -> dict | None:  # None drops the document
            ...
        def validate(self, doc: dict) -> str | None:    # a reason rejects the document
            ...

``filter`` and ``projection`` may also be methods without arguments returning the
document. ``validate`` sees the document ``transform`` returned (what the target would
get). Documents are decoded only when ``transform`` or ``validate`` exists: a filter or a
projection alone keeps the copy on raw BSON.

The job records the file's SHA-256 and the class name (``TransformSpec``): a run with a
changed transform is refused unless ``--restart``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo.errors import OperationFailure

from vida_loader.errors import PluginError, StateError, UsageError, VidaError
from vida_loader.faults import passing
from vida_loader.jobfiles import to_ejson
from vida_loader.mongo import CODEC_OPTIONS
from vida_loader.pipeline.confirm import id_key
from vida_loader.pyfile import file_sha256, load_module, split_spec
from vida_loader.retry import patient
from vida_loader.transform.spec import TransformSpec

if TYPE_CHECKING:
    from pymongo.collection import Collection

FLAG = "--transform"
PARTS = ("filter", "projection", "transform", "validate", "verify_ignore")
METHODS = ("transform", "validate")  # called per document: they need the decoded form


def check_transform_file(spec: TransformSpec) -> Transform:
    """The job's transform loaded again (to compare with what a run wrote): its file must
    still hold what the run used."""
    loaded = load_transform(f"{spec.path}:{spec.class_name}")
    if loaded.spec.sha256 != spec.sha256:
        raise StateError(
            f"transform file '{spec.path}' changed since the job ran (sha256 "
            f"{spec.sha256[:12]} -> {loaded.spec.sha256[:12]}): the target holds what the "
            "old one wrote",
            fix="put the file back as it was, or run the job again with --restart",
        )
    return loaded


def check_transform_query(coll: Collection[Any], t: Transform) -> None:
    """Ask the source once for a document through the transform's filter and projection:
    a query it refuses stops the run before anything is written."""
    if t.filter is None and t.projection is None:
        return
    try:
        patient(lambda: next(iter(coll.find(t.filter or {}, t.projection, limit=1)), None))
    except OperationFailure as exc:
        if passing(exc):  # throttled past the window: not the query's fault
            raise
        raise UsageError(
            f"the source refuses the filter/projection of transform {t.spec.describe()}: "
            f"{exc.details.get('errmsg') if exc.details else exc}",
            fix="fix the transform's filter or projection",
        ) from None


# --- loading ------------------------------------------------------------------------------


class Transform:
    """A loaded transform: its parts, and ``apply`` for one document."""

    def __init__(self, spec: TransformSpec, impl: Any, where: str) -> None:
        self.spec = spec
        self.impl = impl
        self.filter = _document_part(impl, "filter", where)
        self.projection = _document_part(impl, "projection", where)
        if self.projection is not None and _excludes_id(self.projection):
            raise PluginError(
                f"{where}: projection {self.projection!r} leaves out _id, which resume and "
                "verification match documents by: keep _id"
            )
        self.transform: Callable[[dict[str, Any]], Any] | None = _method(impl, "transform", where)
        self.validate: Callable[[dict[str, Any]], Any] | None = _method(impl, "validate", where)
        self.verify_ignore = _field_names(impl, "verify_ignore", where)

    def recorded(self) -> dict[str, Any]:
        """What the run state keeps: the spec, and the filter ``verify`` counts through."""
        return {**self.spec.to_json(), "filter": to_ejson(self.filter) if self.filter else None}

    @property
    def decodes(self) -> bool:
        """Whether documents must be decoded (else they stay raw BSON)."""
        return self.transform is not None or self.validate is not None

    def apply(self, raw: RawBSONDocument) -> RawBSONDocument | str | None:
        """The document for the target; ``None`` when ``transform`` dropped it; a reason
        (str) when it is rejected. Raises ``IdChangedError`` when ``transform`` changed
        the ``_id``."""
        if not self.decodes:
            return raw
        out = self._transformed(bson.decode(raw.raw, CODEC_OPTIONS))
        if not isinstance(out, Mapping):
            return out
        if self.validate is not None:
            try:
                reason = self.validate(out)  # type: ignore[arg-type]
            except Exception as exc:
                return f"validate raised {type(exc).__name__}: {exc}"
            if reason is not None:
                if isinstance(reason, str):
                    return reason or "validate rejected it"
                return f"validate returned {type(reason).__name__}, not a reason (str) or None"
        try:
            return RawBSONDocument(bson.encode(out, codec_options=CODEC_OPTIONS))
        except Exception as exc:
            return f"the transformed document cannot be stored as BSON: {type(exc).__name__}: {exc}"

    def _transformed(self, doc: dict[str, Any]) -> Mapping[str, Any] | str | None:
        """``transform(doc)`` with its ``_id`` checked: a document, None, or a reason."""
        if self.transform is None:
            return doc
        source_id = doc["_id"]
        try:
            out = self.transform(doc)
        except Exception as exc:
            return f"transform raised {type(exc).__name__}: {exc}"
        if out is None:
            return None
        if not isinstance(out, Mapping):
            return f"transform returned {type(out).__name__}, not a dict or None"
        if "_id" not in out:
            return {"_id": source_id, **out}
        if out["_id"] is not source_id and not _same_id(out["_id"], source_id):
            raise IdChangedError(self.spec, source_id, out["_id"])
        return out


class IdChangedError(VidaError):
    """A transform changed a document's ``_id``: resume and verification would break."""

    def __init__(self, spec: TransformSpec, before: Any, after: Any) -> None:
        super().__init__(
            f"transform {spec.describe()} changed _id {before!r} to {after!r}",
            value=before,
            fix="a transform must keep each document's _id (resume and verification "
            "match documents by it)",
        )


def _same_id(a: Any, b: Any) -> bool:
    """Equal as BSON (1 and 1.0 are different _ids; Python calls them equal)."""
    return bson.encode({"_id": a}) == bson.encode({"_id": b})


def _excludes_id(projection: Mapping[str, Any]) -> bool:
    value = projection.get("_id", 1)
    return value in (0, False)


def load_transform(text: str) -> Transform:
    """``FILE.py`` or ``FILE.py:Class``, loaded and checked; every problem a ``PluginError``
    naming the file and line."""
    path, name = split_spec(text)
    module = load_module(path, FLAG)
    if name:
        cls = getattr(module, name, None)
        if not isinstance(cls, type):
            raise PluginError(
                f"{path} defines no class '{name}' (a class with any of "
                f"{', '.join(PARTS)}; see docs/transforms.md)"
            )
    else:
        cls = _the_one_class(module, path)
    where = f"{path}:{_line_of(cls)}: {cls.__name__}"
    try:
        impl = cls()
    except Exception as exc:
        raise PluginError(f"{where}() failed: {type(exc).__name__}: {exc}") from None
    spec = TransformSpec(str(path.resolve()), cls.__name__, file_sha256(path))
    return Transform(spec, impl, where)


_LOADED: dict[TransformSpec, Transform] = {}


def transform_for(spec: TransformSpec) -> Transform:
    """The job's transform in this process (a worker loads it once): the file must still
    hold what the run started with."""
    loaded = _LOADED.get(spec)
    if loaded is None:
        loaded = load_transform(f"{spec.path}:{spec.class_name}")
        if loaded.spec.sha256 != spec.sha256:
            raise PluginError(
                f"transform file '{spec.path}' changed while the run was going "
                f"(sha256 {spec.sha256[:12]} -> {loaded.spec.sha256[:12]})",
                fix="put the file back, or start the run again (with --restart)",
            )
        _LOADED[spec] = loaded
    return loaded


def _the_one_class(module: Any, path: Path) -> type:
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and obj.__module__ == module.__name__
        and any(hasattr(obj, part) for part in PARTS)
    ]
    if not found:
        raise PluginError(
            f"{path} defines no transform class (a class with any of {', '.join(PARTS)}; "
            "see docs/transforms.md)"
        )
    if len(found) > 1:
        names = " and ".join(f"{c.__name__} (line {_line_of(c)})" for c in found)
        raise PluginError(f"{path} defines {names}: name one with {FLAG} {path}:ClassName")
    return found[0]


def _line_of(obj: Any) -> int | str:
    try:
        return inspect.getsourcelines(obj)[1]
    except (OSError, TypeError):
        return "?"


def _document_part(impl: Any, name: str, where: str) -> dict[str, Any] | None:
    value = getattr(impl, name, None)
    if value is None:
        return None
    if callable(value):
        try:
            value = value()
        except Exception as exc:
            line = _line_of(getattr(type(impl), name))
            raise PluginError(
                f"{where}.{name}() at line {line} failed: {type(exc).__name__}: {exc}"
            ) from None
    if not isinstance(value, Mapping):
        raise PluginError(f"{where}.{name} is {type(value).__name__}, not a document (dict)")
    try:
        bson.encode(value)
    except Exception as exc:
        raise PluginError(f"{where}.{name} cannot be sent as BSON: {exc}") from None
    return dict(value)


def _field_names(impl: Any, name: str, where: str) -> tuple[str, ...]:
    """A tuple of top-level field names (``verify_ignore``); () when not given."""
    value = getattr(impl, name, None)
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise PluginError(
            f"{where}.{name} is {type(value).__name__}: give field names as a tuple, "
            f'such as ("migrated_at",)'
        )
    for field_name in value:
        if not isinstance(field_name, str) or not field_name or "." in field_name:
            raise PluginError(
                f"{where}.{name} holds {field_name!r}: top-level field names only (strings "
                "without dots)"
            )
    return tuple(sorted(value))


def ignoring(raw: bytes, fields: tuple[str, ...]) -> bytes:
    """``raw`` without its top-level ``fields`` (what a deep verify compares when the
    transform sets them anew on every run, such as a migration time); the same bytes
    when it has none of them."""
    if not fields or not any(f.encode() + b"\x00" in raw for f in fields):
        return raw
    doc = bson.decode(raw, CODEC_OPTIONS)
    for f in fields:
        doc.pop(f, None)
    return bson.encode(doc, codec_options=CODEC_OPTIONS)


def _method(impl: Any, name: str, where: str) -> Callable[[dict[str, Any]], Any] | None:
    method = getattr(impl, name, None)
    if method is None:
        return None
    line = _line_of(getattr(type(impl), name, method))
    if not callable(method):
        raise PluginError(f"{where}.{name} at line {line} is not a method: def {name}(self, doc)")
    try:
        inspect.signature(method).bind({})
    except TypeError:
        raise PluginError(
            f"{where}.{name}{inspect.signature(method)} at line {line} must take one "
            f"document: def {name}(self, doc)"
        ) from None
    except ValueError:
        pass  # no signature to read (a builtin): called as it is
    return method  # type: ignore[no-any-return]


# --- one partition's documents through the transform --------------------------------------


@dataclass(frozen=True)
class Reject:
    """A source document refused (by ``validate``, or a ``transform`` that raised)."""

    raw: bytes  # the source document, as read
    reason: str


@dataclass
class Outcomes:
    """What a transform did to one attempt's documents.

    ``refused`` holds the raw ``{_id: ...}`` of every document dropped or rejected, so a
    repair after a resume does not count them twice.
    """

    keep_rejects: int  # rejects kept for the rejects file (the run stops past its limit)
    read: int = 0
    dropped: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)
    refused: set[bytes] = field(default_factory=set)

    def stream(self, docs: Iterable[RawBSONDocument], t: Transform) -> Iterator[RawBSONDocument]:
        """``docs`` as the target gets them; the others counted (and kept when rejected)."""
        for raw in docs:
            self.read += 1
            out = t.apply(raw)
            if isinstance(out, RawBSONDocument):
                yield out
            else:
                self.refuse(raw, out)

    def refuse(self, raw: RawBSONDocument, reason: str | None) -> None:
        self.refused.add(id_key(raw))
        if reason is None:
            self.dropped += 1
            return
        self.rejected += 1
        if len(self.rejects) < self.keep_rejects:
            self.rejects.append(Reject(bytes(raw.raw), reason))
