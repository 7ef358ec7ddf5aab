"""Index definitions: read from the source, translated for the target, built as tasks.

``plan`` reads every index of the source (``listIndexes``) into the manifest exactly as
the server gave it (key pattern in order, every option), then decides per index what the
target gets: the same definition, an adapted one, or nothing, always with the reason in
words (:func:`translate`). ``run`` builds each one as a task (:func:`build_index`), after
the data unless told otherwise, and records it in the run state like a partition.

The translation table is where Cosmos DB and MongoDB differ:

- Cosmos DB's TTL index is on ``_ts``, a system field the copied documents do not carry:
  on the target it would expire nothing. It moves to a real date field
  (``--ttl-field``) or is skipped, never silently.
- A Cosmos DB TTL on another field reads numbers as Unix milliseconds; MongoDB's TTL
  ignores anything but dates: such documents never expire (counted in the plan's sample).
- A Cosmos DB unique index ignores values inside arrays on nested paths and, on a sharded
  collection, is unique per shard key: the data may break it on the target. Its build is
  a task of its own that fails alone, with the conflicting key.
- Cosmos DB has no text, 2d, hashed or sparse indexes, and partial ones only when unique:
  a MongoDB source's are adapted or skipped when the target is Cosmos DB.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bson.datetime_ms import DatetimeMS
from bson.decimal128 import Decimal128
from bson.int64 import Int64

from vida_loader.endpoint import ServerKind
from vida_loader.jobfiles import from_ejson, load_json_file, to_ejson, write_json_atomic

if TYPE_CHECKING:
    from pymongo.errors import PyMongoError

ID_INDEX = "_id_"
COSMOS_TS = "_ts"  # Cosmos DB's last-modified time: a system field clients never see
COSMOS_DOC_TTL = "ttl"  # Cosmos DB's per-document TTL override, in seconds
# Fields listIndexes reports that are about the server, not the definition.
NOT_DEFINITION = ("v", "ns")
SPECIAL_KEYS = ("text", "2d", "2dsphere", "hashed", "geoHaystack")
TTL_SAMPLE = 1000  # documents sampled to judge a TTL field


@dataclass(frozen=True)
class IndexSpec:
    """One index definition: name, key pattern in order, and every other option as read."""

    name: str
    key: tuple[tuple[str, Any], ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_server(cls, doc: Mapping[str, Any]) -> IndexSpec:
        """A ``listIndexes`` entry; ``v`` and ``ns`` describe the server, not the index."""
        options = {k: v for k, v in doc.items() if k not in (*NOT_DEFINITION, "key", "name")}
        return cls(str(doc["name"]), tuple(dict(doc["key"]).items()), options)

    def document(self) -> dict[str, Any]:
        """The definition as ``createIndexes`` takes it."""
        return {"key": dict(self.key), "name": self.name, **self.options}

    def to_json(self) -> dict[str, Any]:
        """Canonical Extended JSON: a date in a partial filter or an Int64 key stays exact."""
        return to_ejson(self.document())  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> IndexSpec:
        return cls.from_server(from_ejson(obj))

    @property
    def fields(self) -> list[str]:
        return [k for k, _ in self.key]

    @property
    def kinds(self) -> list[str]:
        """The special key types (text, 2dsphere, hashed...) of the pattern."""
        return [v for _, v in self.key if isinstance(v, str) and v in SPECIAL_KEYS]

    @property
    def ttl(self) -> Any:
        return self.options.get("expireAfterSeconds")

    @property
    def unique(self) -> bool:
        return bool(self.options.get("unique"))

    def with_options(self, **changes: Any) -> IndexSpec:
        """A copy with options set (a value of None removes the option)."""
        opts = {**self.options, **changes}
        return replace(self, options={k: v for k, v in opts.items() if v is not None})

    def describe(self) -> str:
        """``name {a: 1, b: -1} unique ttl 3600 s``: the definition in one short line."""
        key = ", ".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in self.key)
        words = [f"{self.name} {{{key}}}"]
        for opt in ("unique", "sparse", "hidden"):
            if self.options.get(opt):
                words.append(opt)
        if self.ttl is not None:
            words.append(f"ttl {self.ttl} s")
        if "partialFilterExpression" in self.options:
            words.append("partial")
        if "collation" in self.options:
            words.append(f"collation {dict(self.options['collation']).get('locale', '?')}")
        return " ".join(words)


class Action(StrEnum):
    BUILD = "build"  # the target gets ``build`` (the definition read, or adapted)
    SKIP = "skip"  # the target gets nothing: ``notes`` says why
    EXISTS = "exists"  # the _id index: every collection has it


@dataclass(frozen=True)
class IndexPlan:
    """What ``plan`` decided for one source index."""

    source: IndexSpec
    action: Action
    build: IndexSpec | None = None  # what the target gets (BUILD)
    notes: tuple[str, ...] = ()  # each decision or warning, in words

    @property
    def adapted(self) -> bool:
        return self.action is Action.BUILD and self.build != self.source

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.source.name,
            "action": str(self.action),
            "source": self.source.to_json(),
            "build": None if self.build is None else self.build.to_json(),
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> IndexPlan:
        build = obj.get("build")
        plan = cls(
            source=IndexSpec.from_json(obj["source"]),
            action=Action(obj["action"]),
            build=None if build is None else IndexSpec.from_json(build),
            notes=tuple(str(n) for n in obj.get("notes", ())),
        )
        if plan.source.name != obj["name"]:
            raise ValueError(f"index entry {obj['name']!r} holds the definition of another")
        if (plan.action is Action.BUILD) != (plan.build is not None):
            raise ValueError(f"index {plan.source.name!r}: action and definition disagree")
        return plan


@dataclass(frozen=True)
class IndexContext:
    """What a translation depends on besides the definitions."""

    source_kind: ServerKind = ServerKind.OTHER
    target_kind: ServerKind = ServerKind.OTHER
    ttl_field: str | None = None  # where a Cosmos DB _ts TTL moves to (--ttl-field)
    sample: Sequence[Mapping[str, Any]] = ()  # documents, projected on the TTL fields

    def share(self, hits: int) -> str:
        """``"12 of 1,000 sampled documents"``: ``hits`` (a ``count``) over the sample."""
        return f"{hits:,} of {len(self.sample):,} sampled documents"

    def count(self, test: Callable[[Mapping[str, Any]], bool]) -> int:
        return sum(1 for d in self.sample if test(d))


def translate(specs: Iterable[IndexSpec], ctx: IndexContext) -> list[IndexPlan]:
    """The target's share of every source index, with the reasons (module docstring)."""
    return [_translate(spec, ctx) for spec in specs]


def _translate(spec: IndexSpec, ctx: IndexContext) -> IndexPlan:
    if spec.name == ID_INDEX or spec.key == (("_id", 1),):
        return IndexPlan(spec, Action.EXISTS)
    notes: list[str] = []
    build: IndexSpec | None = spec
    from_cosmos = ctx.source_kind is ServerKind.COSMOS
    if spec.ttl is not None:
        ts_ttl = spec.fields == [COSMOS_TS] and (
            from_cosmos or not ctx.count(lambda d: COSMOS_TS in d)
        )
        if ts_ttl:
            build = _moved_ttl(spec, ctx, notes)
        elif from_cosmos:
            numbers = ctx.count(lambda d: _is_number(field_value(d, spec.fields[0])))
            if numbers:
                notes.append(
                    f"{ctx.share(numbers)} hold a number "
                    f"in '{spec.fields[0]}', which Cosmos DB reads as Unix milliseconds and "
                    "MongoDB's TTL ignores: they will never expire on the target"
                )
        per_doc = ctx.count(lambda d: COSMOS_DOC_TTL in d)
        if from_cosmos and per_doc:
            notes.append(
                f"{ctx.share(per_doc)} carry a per-document "
                f"'{COSMOS_DOC_TTL}', which Cosmos DB honours and MongoDB ignores"
            )
    if build is not None and from_cosmos and spec.unique:
        notes.append(
            "unique on Cosmos DB ignores values inside arrays on nested paths and, on a "
            "sharded collection, holds per shard key only: the data may break it on the "
            "target; it is built after the data and fails alone, naming the duplicate key"
        )
    if build is not None and ctx.target_kind is ServerKind.COSMOS:
        build = _for_cosmos(build, notes)
    if build is None:
        return IndexPlan(spec, Action.SKIP, None, tuple(notes))
    return IndexPlan(spec, Action.BUILD, build, tuple(notes))


def _moved_ttl(spec: IndexSpec, ctx: IndexContext, notes: list[str]) -> IndexSpec | None:
    """A TTL on Cosmos DB's hidden ``_ts``: moved to ``ctx.ttl_field``, or dropped."""
    if ctx.ttl_field is None:
        notes.append(
            f"skipped: TTL on '{COSMOS_TS}', Cosmos DB's hidden modification time, which the "
            "copied documents do not have: it would expire nothing; give --ttl-field FIELD "
            "to expire by a date field instead"
        )
        return None
    f = ctx.ttl_field
    notes.append(
        f"TTL moved from '{COSMOS_TS}' (Cosmos DB's hidden modification time) to '{f}': "
        f"documents expire {spec.ttl} s after their '{f}', not after their last change"
    )
    undated = ctx.count(lambda d: not _is_date(field_value(d, f)))
    if undated:
        notes.append(
            f"{ctx.share(undated)} have no date in '{f}': MongoDB's TTL never expires them"
        )
    return IndexSpec(f"{f}_1", ((f, 1),), {"expireAfterSeconds": spec.ttl})


def _for_cosmos(spec: IndexSpec, notes: list[str]) -> IndexSpec | None:
    """What a Cosmos DB target can take of a definition."""
    kinds = spec.kinds
    unsupported = [k for k in kinds if k in ("text", "2d", "hashed", "geoHaystack")]
    if unsupported:
        notes.append(f"skipped: Cosmos DB has no {unsupported[0]} indexes")
        return None
    if spec.options.get("sparse"):
        if spec.unique and "partialFilterExpression" not in spec.options:
            notes.append(
                "sparse unique built as unique with a partial filter on the fields existing "
                "(Cosmos DB has no sparse indexes): the same documents are held to it"
            )
            exists = {f: {"$exists": True} for f in spec.fields}
            spec = spec.with_options(sparse=None, partialFilterExpression=exists)
        else:
            notes.append(
                "sparse dropped (Cosmos DB has none): the index also holds documents "
                "without the field; queries answer the same"
            )
            spec = spec.with_options(sparse=None)
    if "partialFilterExpression" in spec.options and not spec.unique:
        notes.append(
            "partial filter dropped (Cosmos DB takes one on unique indexes only): the index "
            "holds every document; queries answer the same"
        )
        spec = spec.with_options(partialFilterExpression=None)
    return spec


def field_value(doc: Mapping[str, Any], path: str) -> Any:
    """The value at dotted ``path`` of ``doc`` (None when a step is missing)."""
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | float | Int64 | Decimal128)


def _is_date(value: Any) -> bool:
    if isinstance(value, list):
        return any(_is_date(v) for v in value)
    return isinstance(value, datetime.datetime | DatetimeMS)


# --- reading ------------------------------------------------------------------------------


# Options a server fills in when it builds an index: absent from a definition, they do
# not make the built index another one.
SERVER_FILLED = frozenset(
    {
        "2dsphereIndexVersion",
        "textIndexVersion",
        "language_override",
        "default_language",
        "weights",
        "background",
        "bits",
        "min",
        "max",
    }
)


def satisfies(present: IndexSpec, wanted: IndexSpec) -> bool:
    """Whether the index ``present`` on a server is the definition ``wanted``: same name,
    key and options, where the server may have filled in defaults (a collation's other
    fields, a 2dsphere version)."""
    if present.name != wanted.name or present.key != wanted.key:
        return False
    for opt, value in wanted.options.items():
        have = present.options.get(opt)
        if opt == "collation" and isinstance(value, Mapping) and isinstance(have, Mapping):
            if any(have.get(k) != v for k, v in value.items()):
                return False
        elif have != value:
            return False
    return all(opt in wanted.options or opt in SERVER_FILLED for opt in present.options)


@dataclass(frozen=True)
class IndexDiff:
    """The target's indexes against what it should hold (``_id`` aside)."""

    same: list[IndexSpec]
    missing: list[IndexSpec]  # wanted, not on the target
    differ: list[tuple[IndexSpec, IndexSpec]]  # (wanted, on the target) under one name
    extra: list[IndexSpec]  # on the target, not wanted

    @property
    def clean(self) -> bool:
        return not (self.missing or self.differ or self.extra)


def compare(wanted: Sequence[IndexSpec], present: Sequence[IndexSpec]) -> IndexDiff:
    """``present`` (a server's ``listIndexes``) against ``wanted``, by index name."""
    there = {s.name: s for s in present if s.name != ID_INDEX}
    same, missing, differ = [], [], []
    for spec in wanted:
        have = there.pop(spec.name, None)
        if have is None:
            missing.append(spec)
        elif satisfies(have, spec):
            same.append(spec)
        else:
            differ.append((spec, have))
    return IndexDiff(same, missing, differ, list(there.values()))


def wanted_indexes(planned: Sequence[IndexSpec], saved: Sequence[IndexSpec]) -> list[IndexSpec]:
    """What the target gets: the source's indexes as planned, then the target's own that
    --disable-indexes dropped (a name the source also has is built as the source's)."""
    names = {s.name for s in planned}
    return [*planned, *(s for s in saved if s.name not in names)]


def load_saved(path: Path) -> list[IndexSpec]:
    """The target's own indexes a run saved before dropping them (none: no file)."""
    try:
        return load_json_file(
            path,
            "saved target indexes",
            lambda doc: [IndexSpec.from_json(ix) for ix in doc["indexes"]],
            ": it holds what --disable-indexes dropped; restore it from a backup",
        )
    except FileNotFoundError:
        return []


def save(path: Path, specs: Sequence[IndexSpec], namespace: str) -> None:
    """Write the target's own index definitions, atomically, before any is dropped."""
    write_json_atomic(
        path,
        {
            "what": "the target's secondary indexes, dropped by --disable-indexes and "
            "rebuilt after the data",
            "target": namespace,
            "indexes": [s.to_json() for s in specs],
        },
    )


def ttl_fields(specs: Iterable[IndexSpec]) -> list[str]:
    """The fields a TTL judgement reads in the sample."""
    fields = {s.fields[0] for s in specs if s.ttl is not None and s.fields}
    return sorted(fields)


# --- building -----------------------------------------------------------------------------


def relaxed(spec: IndexSpec) -> tuple[IndexSpec, dict[str, Any] | None]:
    """The definition to build while changes are still replayed, and the ``collMod``
    ``index`` change that makes it the real one at switch-over (None: nothing to change).

    A unique index must not refuse a replayed change that is only briefly in conflict, and
    a TTL must not delete documents before the switch-over: both are built relaxed (not
    unique, TTL far off) and converted by ``collMod`` at commit, as mongosync does.
    """
    change: dict[str, Any] = {}
    loose = spec
    if spec.unique:
        loose = loose.with_options(unique=None)
        change["unique"] = True
    if spec.ttl is not None:
        loose = loose.with_options(expireAfterSeconds=2**31 - 1)
        change["expireAfterSeconds"] = spec.ttl
    return (loose, {"name": spec.name, **change} if change else None)


def same_definition(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two ``listIndexes`` entries define the same index (``v``/``ns`` aside)."""
    return IndexSpec.from_server(a) == IndexSpec.from_server(b)


def duplicate_key(exc: PyMongoError) -> str | None:
    """The conflicting key of a failed unique build, as the server named it."""
    details = getattr(exc, "details", None) or {}
    if getattr(exc, "code", None) != 11000 and details.get("code") != 11000:
        return None
    value = details.get("keyValue")
    if value is not None:
        return str(dict(value))
    msg = str(details.get("errmsg", exc))
    return msg.split("dup key:", 1)[1].strip() if "dup key:" in msg else msg
