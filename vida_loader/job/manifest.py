"""The manifest: what ``plan`` decided, immutable afterwards.

``partitions/<job>/manifest.json`` holds the schema version, source and target (URIs
without credentials), collection statistics, the split settings, a fingerprint over all
of that, and every partition with its bounds in canonical Extended JSON *and* the exact
query a worker will run. On load the query is derived again from the bounds and must
match what is stored, so the planner and a worker can never disagree about a range and a
hand-edited file is refused instead of guessed at.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from vida_loader.errors import StateError
from vida_loader.indexes.definition import IndexPlan, IndexSpec
from vida_loader.jobfiles import from_ejson, load_json_file, to_ejson, write_json_atomic
from vida_loader.ordering import BRACKET_BY_NAME, RangeMode, bracket_of, sort_key

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.cursor import Cursor

SCHEMA_VERSION = 1
T = TypeVar("T")
ID_HINT: list[tuple[str, int]] = [("_id", 1)]


@dataclass(frozen=True)
class Partition:
    """One ``_id`` range: ``lower`` inclusive, ``upper`` exclusive, ``None`` = unbounded.

    In typed mode the range lies inside ``bracket`` (``None``: the whole collection, the
    single partition of an empty one). In minmax mode it spans brackets.
    Bounds are never null, NaN, MinKey or MaxKey, so ``None`` is unambiguous.
    """

    id: str
    mode: RangeMode
    bracket: str | None
    lower: Any = None
    upper: Any = None
    est_docs: int = 0
    est_bytes: int = 0

    def query(self, where: dict[str, Any] | None = None) -> dict[str, Any]:
        """The find filter a worker runs: the range (typed mode; none in minmax mode), and
        ``where`` when given."""
        own = self._range_query()
        if not where:
            return own
        return {"$and": [own, where]} if own else dict(where)

    def _range_query(self) -> dict[str, Any]:
        if self.mode is RangeMode.MINMAX or self.bracket is None:
            return {}
        type_spec = BRACKET_BY_NAME[self.bracket].type_spec
        cond: dict[str, Any] = {}
        if self.lower is None and self.upper is None:
            cond["$type"] = type_spec
        elif self.lower is None and self.bracket == "number":
            # NaN sorts below every number, but whether `$lt` matches it is a server
            # detail: name NaN explicitly. `$or` of two index bounds, not `$not`, which
            # an index cannot serve (a scan billed in RUs on Cosmos DB).
            return {"$or": [{"_id": {"$lt": self.upper}}, {"_id": math.nan}]}
        else:
            if self.lower is not None:
                cond["$gte"] = self.lower
            if self.upper is not None:
                cond["$lt"] = self.upper
        return {"_id": cond}

    def min_spec(self) -> list[tuple[str, Any]] | None:
        """``find().min()`` argument in minmax mode (inclusive), ``None`` when unbounded."""
        if self.mode is RangeMode.MINMAX and self.lower is not None:
            return [("_id", self.lower)]
        return None

    def max_spec(self) -> list[tuple[str, Any]] | None:
        """``find().max()`` argument in minmax mode (exclusive), ``None`` when unbounded."""
        if self.mode is RangeMode.MINMAX and self.upper is not None:
            return [("_id", self.upper)]
        return None

    def find(
        self,
        coll: Collection[Any],
        projection: Any = None,
        *,
        direction: int = 1,
        where: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Cursor[Any]:
        """The cursor over exactly this range, in ``_id`` order, as a worker runs it.

        ``direction`` -1: highest ``_id`` first. ``where``: a filter the documents must
        match too (a transform's). Documents come in ``coll``'s codec (a worker reads
        them as ``RawBSONDocument``, undecoded).
        """
        # The hint keeps the planner on the _id index (min/max require it named): an
        # index walk in _id order, never a collection scan billed in RUs.
        sort = [("_id", direction)]
        query = self.query(where)
        cursor = coll.find(query, projection, sort=sort, **kwargs).hint(ID_HINT)
        if self.mode is RangeMode.MINMAX:
            mn, mx = self.min_spec(), self.max_spec()
            if mn is not None:
                cursor = cursor.min(mn)
            if mx is not None:
                cursor = cursor.max(mx)
        return cursor

    def count_in(self, coll: Collection[Any], where: dict[str, Any] | None = None) -> int:
        """Documents of ``coll`` inside this range (matching ``where`` too, if given),
        counted by the server where it can."""
        if self.mode is RangeMode.TYPED:
            return coll.count_documents(self.query(where))
        # `count` ignores min/max on some servers: count the _ids the cursor returns.
        return sum(1 for _ in self.find(coll, {"_id": 1}, where=where, batch_size=10_000))

    def last_id(self, coll: Collection[Any]) -> tuple[bool, Any]:
        """``(True, highest _id)`` of ``coll`` inside this range, ``(False, None)`` if none.

        One backwards step on the ``_id`` index: where an interrupted copy got to.
        """
        for doc in self.find(coll, {"_id": 1}, direction=-1, limit=1):
            return True, doc["_id"]
        return False, None

    def page_docs(self, most_docs: int, most_bytes: int, unknown: int) -> int:
        """Documents per read page: ``most_bytes`` by the plan's estimate of the range's
        average document, between 1 and ``most_docs``; ``unknown`` without an estimate."""
        if self.est_docs > 0 and self.est_bytes > 0:
            return max(1, min(most_docs, int(most_bytes * self.est_docs / self.est_bytes)))
        return min(most_docs, unknown)

    def starting_at(self, value: Any) -> Partition:
        """This range from ``value`` (inclusive, inside the range) to the same end.

        ``value`` must be usable as a bound (``ordering.usable_boundary``).
        """
        return replace(self, lower=value)

    def contains(self, value: Any) -> bool:
        """Whether an ``_id`` falls in this range, by the server's rules (for tests)."""
        if self.mode is RangeMode.TYPED and self.bracket is not None:
            if bracket_of(value).name != self.bracket:
                return False
        key = sort_key(value)
        if self.lower is not None and key < sort_key(self.lower):
            return False
        return not (self.upper is not None and key >= sort_key(self.upper))

    def to_json(self) -> dict[str, Any]:
        """The manifest entry: bounds plus the exact query derived from them."""
        entry: dict[str, Any] = {
            "id": self.id,
            "mode": self.mode.value,
            "bracket": self.bracket,
            "lower": None if self.lower is None else to_ejson({"_id": self.lower}),
            "upper": None if self.upper is None else to_ejson({"_id": self.upper}),
            "est_docs": self.est_docs,
            "est_bytes": self.est_bytes,
        }
        entry.update(_derived_spec(self))
        return entry

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Partition:
        """Rebuild a partition; refuse one whose stored query does not match its bounds."""
        lower, upper = entry["lower"], entry["upper"]
        bracket = entry["bracket"]
        if bracket is not None and bracket not in BRACKET_BY_NAME:
            raise ValueError(f"unknown bracket {bracket!r}")
        part = cls(
            id=str(entry["id"]),
            mode=RangeMode(entry["mode"]),
            bracket=bracket,
            lower=None if lower is None else from_ejson(lower)["_id"],
            upper=None if upper is None else from_ejson(upper)["_id"],
            est_docs=int(entry["est_docs"]),
            est_bytes=int(entry["est_bytes"]),
        )
        for key, value in _derived_spec(part).items():
            if entry.get(key) != value:
                raise ValueError(f"partition {part.id}: stored {key!r} does not match its bounds")
        return part


def _derived_spec(part: Partition) -> dict[str, Any]:
    if part.mode is RangeMode.TYPED:
        return {"query": to_ejson(part.query()), "hint": {"_id": 1}}
    mn, mx = part.min_spec(), part.max_spec()
    return {
        "min": None if mn is None else to_ejson(dict(mn)),
        "max": None if mx is None else to_ejson(dict(mx)),
        "hint": {"_id": 1},
    }


@dataclass(frozen=True)
class Manifest:
    """Everything ``plan`` decided for one job."""

    job: str
    source: dict[str, Any]  # uri (no credentials), hosts, kind, db, collection
    target: dict[str, Any]
    stats: dict[str, Any]  # count, size_bytes, avg_doc_bytes, id_brackets
    split: dict[str, Any]  # range_mode, requested mode, partitions, size, sample
    partitions: tuple[Partition, ...]
    # What the target gets of each source index (None: planned before indexes were read).
    indexes: tuple[IndexPlan, ...] | None = None
    created_at: str = ""
    tool_version: str = ""
    fingerprint: str = field(default="")

    def compute_fingerprint(self) -> str:
        """SHA-256 over namespaces, statistics, split settings, every range and every
        index decision."""
        basis: dict[str, Any] = {
            "source": {k: self.source.get(k) for k in ("hosts", "db", "collection")},
            "target": {k: self.target.get(k) for k in ("hosts", "db", "collection")},
            "stats": self.stats,
            "split": self.split,
            "partitions": [_derived_spec(p) | {"id": p.id} for p in self.partitions],
        }
        if self.indexes is not None:
            basis["indexes"] = [ix.to_json() for ix in self.indexes]
        digest = hashlib.sha256(orjson.dumps(basis, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return f"sha256:{digest}"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "job": self.job,
            "created_at": self.created_at,
            "tool_version": self.tool_version,
            "fingerprint": self.fingerprint or self.compute_fingerprint(),
            "source": self.source,
            "target": self.target,
            "stats": self.stats,
            "split": self.split,
            "partitions": [p.to_json() for p in self.partitions],
            **(
                {"indexes": [ix.to_json() for ix in self.indexes]}
                if self.indexes is not None
                else {}
            ),
        }

    def index_builds(self) -> list[IndexSpec]:
        """The definitions the target gets, in the source's order."""
        return [ix.build for ix in self.indexes or () if ix.build is not None]

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Manifest:
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r}, this vida-loader reads {SCHEMA_VERSION}")
        manifest = cls(
            job=str(doc["job"]),
            source=dict(doc["source"]),
            target=dict(doc["target"]),
            stats=dict(doc["stats"]),
            split=dict(doc["split"]),
            partitions=tuple(Partition.from_json(p) for p in doc["partitions"]),
            indexes=(
                tuple(IndexPlan.from_json(ix) for ix in doc["indexes"])
                if doc.get("indexes") is not None
                else None
            ),
            created_at=str(doc.get("created_at", "")),
            tool_version=str(doc.get("tool_version", "")),
            fingerprint=str(doc["fingerprint"]),
        )
        if not manifest.partitions:
            raise ValueError("no partitions")
        if manifest.fingerprint != manifest.compute_fingerprint():
            raise ValueError("fingerprint does not match its content (edited by hand?)")
        return manifest


def save_manifest(manifest: Manifest, path: Path) -> None:
    write_json_atomic(path, manifest.to_json())


def load_manifest(path: Path) -> Manifest:
    """Load and check a manifest; any defect is one ``StateError`` naming the file."""
    try:
        return load_json_file(
            path, "manifest", Manifest.from_json, ": re-plan with `vida-loader plan --replan`"
        )
    except FileNotFoundError:
        raise StateError(f"no manifest at '{path}': run `vida-loader plan` first") from None
