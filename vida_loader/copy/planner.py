"""Split a source collection into ``_id`` ranges.

Plan by size (mongo-spark's SamplePartitioner idea): count and average document size from
``collStats``, the number of partitions from the wanted partition size, then ``$sample``
a multiple of that many ``_id``s, sort them in BSON order and take every k-th as a
boundary. No ``splitVector``, no ``$bucketAuto``, no ``skip``: Cosmos DB has the first
two and bills the third by the offset. A small collection is read whole on the ``_id``
index instead, which gives exact boundaries.

The core (:func:`build_partitions`) is pure, so property tests run it without a server.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pymongo.errors import OperationFailure, PyMongoError

from vida_loader import __version__
from vida_loader.endpoint import (
    Endpoint,
    ServerKind,
    redact_uri,
    server_kind,
    strip_credentials,
    uri_hosts,
)
from vida_loader.errors import ConnectError, JobExistsError, UsageError
from vida_loader.faults import passing
from vida_loader.indexes.read import plan_indexes
from vida_loader.job.manifest import (
    ID_HINT,
    Manifest,
    Partition,
    save_manifest,
)
from vida_loader.mongo import CODEC_OPTIONS, check_uri, close_client, connect, describe_error
from vida_loader.ordering import (
    BRACKET_BY_NAME,
    ID_BRACKETS,
    RangeMode,
    bracket_of,
    sort_key,
    usable_boundary,
)
from vida_loader.retry import patient
from vida_loader.ru.budget import BudgetPlan, plan_budget
from vida_loader.ru.meter import ESTIMATE_PAGES, ReadCost, accounting_on, measure_read_cost
from vida_loader.settings.registry import MIB

if TYPE_CHECKING:
    from pymongo import MongoClient
    from pymongo.collection import Collection

    from vida_loader.config import PlanConfig

# Up to this many documents the planner reads every `_id` (exact, and cheap).
EXACT_READ_LIMIT = 20_000
MAX_SAMPLE = 200_000


def sorted_unique(values: Iterable[Any]) -> list[Any]:
    """Values in BSON order, one per equal key (``1`` and ``1.0`` are the same ``_id``)."""
    seen: dict[tuple[Any, ...], Any] = {}
    for v in values:
        seen.setdefault(sort_key(v), v)
    return [seen[k] for k in sorted(seen)]


def pick_boundaries(candidates: Sequence[Any], parts: int) -> list[Any]:
    """``parts - 1`` (at most) increasing boundaries from sorted unique candidates.

    Boundary i is the candidate at quantile i/parts; the smallest candidate is never one
    (the first range starts unbounded anyway).
    """
    m = len(candidates)
    if parts <= 1 or m < 2:
        return []
    picked: list[Any] = []
    last = 0
    for i in range(1, parts):
        idx = min(m - 1, max(1, round(i * m / parts)))
        if idx > last:
            picked.append(candidates[idx])
            last = idx
    return picked


def _ranges(
    mode: RangeMode, bracket: str | None, bounds: list[Any]
) -> list[tuple[RangeMode, str | None, Any, Any]]:
    edges = [None, *bounds, None]
    return [(mode, bracket, edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def build_partitions(
    sample: Iterable[Any],
    *,
    mode: RangeMode,
    parts: int,
    count: int,
    avg_doc_bytes: float,
    brackets_present: Iterable[str] = (),
) -> list[Partition]:
    """Ranges that together cover every possible ``_id`` exactly once.

    ``sample`` is any multiset of ``_id``s from the collection; ``brackets_present`` the
    type brackets found on the ``_id`` index (typed mode makes ranges only for those,
    so it must name every bracket the collection holds). Estimates come from the share of
    the sample that falls in each range.
    """
    sample = list(sample)  # read twice below: for boundaries and for estimates
    values = sorted_unique(sample)
    specs: list[tuple[RangeMode, str | None, Any, Any]] = []
    if mode is RangeMode.MINMAX:
        bounds = pick_boundaries([v for v in values if usable_boundary(v)], parts)
        specs = _ranges(mode, None, bounds)
    else:
        present = sorted(
            set(brackets_present) | {bracket_of(v).name for v in values},
            key=lambda name: BRACKET_BY_NAME[name].rank,
        )
        if not present:
            specs = [(mode, None, None, None)]
        for name in present:
            inside = [v for v in values if bracket_of(v).name == name and usable_boundary(v)]
            share = round(parts * len(inside) / len(values)) if values else 1
            specs.extend(_ranges(mode, name, pick_boundaries(inside, max(1, share))))
    drafts = [Partition(f"p{i:05d}", m, b, lo, hi) for i, (m, b, lo, hi) in enumerate(specs)]
    return _with_estimates(drafts, sample_hits(drafts, sample), count, avg_doc_bytes)


def sample_hits(partitions: Sequence[Partition], sample: Iterable[Any]) -> list[int]:
    """How many sampled ``_id``s fall in each partition, by binary search.

    ``build_partitions`` lists ranges in key order, each starting where the one before
    ends (in typed mode: an unbounded start is the start of its bracket), so the range of
    a value is the last whose start is not above it: O(log n) per value instead of
    asking every partition (10k samples x 1,000 partitions took ~17 s).
    """
    starts: list[tuple[Any, ...]] = []
    for p in partitions:
        if p.lower is not None:
            starts.append(sort_key(p.lower))
        elif p.mode is RangeMode.TYPED and p.bracket is not None:
            starts.append((BRACKET_BY_NAME[p.bracket].rank,))  # below any key of it
        else:
            starts.append((-1,))  # below every key
    hits = [0] * len(partitions)
    for v in sample:
        i = bisect.bisect_right(starts, sort_key(v)) - 1
        if i >= 0 and partitions[i].contains(v):
            hits[i] += 1
    return hits


def _with_estimates(
    drafts: list[Partition], hits: list[int], count: int, avg_doc_bytes: float
) -> list[Partition]:
    """Spread ``count`` over the ranges by sample share (largest remainder: sums exactly)."""
    total = sum(hits)
    if total == 0:
        shares = [count if i == 0 else 0 for i in range(len(drafts))]
    else:
        exact = [count * h / total for h in hits]
        shares = [math.floor(x) for x in exact]
        order = sorted(range(len(drafts)), key=lambda i: exact[i] - shares[i], reverse=True)
        for i in order[: count - sum(shares)]:
            shares[i] += 1
    return [
        Partition(p.id, p.mode, p.bracket, p.lower, p.upper, n, round(n * avg_doc_bytes))
        for p, n in zip(drafts, shares, strict=True)
    ]


# --- reading the source -------------------------------------------------------------


@dataclass(frozen=True)
class SourceStats:
    count: int
    size_bytes: int
    avg_doc_bytes: float


def read_stats(coll: Collection[dict[str, Any]]) -> SourceStats:
    """Count and sizes from ``collStats`` (metadata, no scan); count alone as fallback."""
    try:
        st = coll.database.command("collStats", coll.name)
        count = int(st.get("count", 0))
        avg = float(st.get("avgObjSize") or 0.0)
        size = int(st.get("size") or round(count * avg))
        if not avg and count:
            avg = size / count
        return SourceStats(count, size, avg)
    except OperationFailure as exc:
        if passing(exc):  # a throttled collStats is no reason to plan without sizes
            raise
        count = coll.estimated_document_count()
        return SourceStats(count, 0, 0.0)


def read_id_edges(coll: Collection[dict[str, Any]]) -> tuple[Any, Any] | None:
    """The smallest and largest ``_id`` (two index edge reads), ``None`` when empty."""
    first = coll.find_one({}, {"_id": 1}, sort=[("_id", 1)])
    last = coll.find_one({}, {"_id": 1}, sort=[("_id", -1)])
    if first is None or last is None:
        return None
    return first["_id"], last["_id"]


def find_brackets(coll: Collection[dict[str, Any]], first: Any, last: Any) -> list[str]:
    """The type brackets present among ``_id``s, in sort order.

    The smallest and largest ``_id`` bound them: only brackets strictly between those two
    need a ``$type`` probe, so a collection of one ``_id`` type costs no probe at all.
    """
    lo, hi = bracket_of(first), bracket_of(last)
    present = [lo.name]
    for b in ID_BRACKETS:
        if lo.rank < b.rank < hi.rank:
            if coll.find_one({"_id": {"$type": b.type_spec}}, {"_id": 1}) is not None:
                present.append(b.name)
    if hi.rank != lo.rank:
        present.append(hi.name)
    return present


def probe_minmax(coll: Collection[dict[str, Any]], first: Any) -> bool:
    """Whether the server honours ``find().min()/.max()`` with ``hint({_id: 1})``.

    Cosmos DB may refuse it or, worse, ignore it: so ask for what lies below the first
    ``_id`` (must be nothing) and from it on (must start with it).
    """
    key = [("_id", first)]
    try:
        below = list(coll.find({}, {"_id": 1}).max(key).hint(ID_HINT).limit(1))
        from_first = list(coll.find({}, {"_id": 1}).min(key).hint(ID_HINT).limit(1))
    except OperationFailure as exc:
        if passing(exc):
            raise
        return False
    return not below and len(from_first) == 1 and sort_key(from_first[0]["_id"]) == sort_key(first)


def read_sample(coll: Collection[dict[str, Any]], size: int, count: int) -> tuple[list[Any], bool]:
    """(``_id``s, exact): every ``_id`` of a small collection, else a ``$sample``."""
    if size <= 0:
        return [], False
    if count <= max(size, EXACT_READ_LIMIT):
        ids = [d["_id"] for d in coll.find({}, {"_id": 1}, sort=ID_HINT, hint=ID_HINT)]
        return ids, True
    pipeline = [{"$sample": {"size": size}}, {"$project": {"_id": 1}}]
    return [d["_id"] for d in coll.aggregate(pipeline)], False


@dataclass(frozen=True)
class PlanResult:
    manifest: Manifest
    path: Path
    seconds: float
    mode_reason: str
    rate: BudgetPlan | None = None  # the RU/s a run would read at (None: not metered)


Progress = Callable[[str], None]


def plan_job(cfg: PlanConfig, progress: Progress = lambda _msg: None) -> PlanResult:
    """Connect, read statistics and a sample, build the ranges, write the manifest."""
    started = time.monotonic()
    check_uri(cfg.source.uri, "--source-uri")
    check_uri(cfg.target.uri, "--target-uri")
    path = cfg.files.manifest
    if path.exists() and not cfg.replan:
        raise JobExistsError(
            f"job '{cfg.job}' is already planned at '{path}': give --replan to plan it again "
            "or --job NAME for a new job"
        )
    # One connection: the request charge read after a command is that command's.
    src_client = connect(cfg.source.uri, role="source", timeouts=cfg.timeouts, maxPoolSize=1)
    try:
        dst_client = connect(cfg.target.uri, role="target", timeouts=cfg.timeouts)
        close_client(dst_client)
        coll = _source_collection(src_client, cfg)
        metered = accounting_on(cfg.ru_accounting, coll.database)
        try:
            manifest, reason = _plan(coll, cfg, progress, metered)
        except PyMongoError as exc:
            raise ConnectError(
                f"planning failed on source '{redact_uri(cfg.source.uri)}': "
                f"{describe_error(exc, cfg.source.uri)}"
            ) from None
    finally:
        close_client(src_client)
    _save_new(manifest, path)
    return PlanResult(manifest, path, time.monotonic() - started, reason, _rate(manifest, cfg))


def plan_source(
    coll: Collection[dict[str, Any]], cfg: PlanConfig, metered: bool, progress: Progress
) -> Manifest:
    """The plan of ``coll`` alone, saved nowhere: for a command that splits a source
    with no target (``dump`` of a collection no job planned). ``cfg.target`` names the
    source again."""
    try:
        return _plan(coll, cfg, progress, metered)[0]
    except PyMongoError as exc:
        raise ConnectError(
            f"planning failed on source '{redact_uri(cfg.source.uri)}': "
            f"{describe_error(exc, cfg.source.uri)}"
        ) from None


def _rate(manifest: Manifest, cfg: PlanConfig) -> BudgetPlan | None:
    """The RU/s the run would read at, by the settings given to plan (None: not metered)."""
    ru = manifest.stats.get("ru")
    if ru is None:
        return None
    return plan_budget(
        metered=True,
        provisioned=ru.get("provisioned_ru_s"),
        max_rus=cfg.max_rus,
        max_rus_percent=cfg.max_rus_percent,
        percent_given=False,
    )


def _source_collection(
    client: MongoClient[dict[str, Any]], cfg: PlanConfig
) -> Collection[dict[str, Any]]:
    db = client.get_database(cfg.source.db, codec_options=CODEC_OPTIONS)
    try:
        names = patient(
            lambda: db.list_collection_names(filter={"name": cfg.source.collection}),
            role="source",
        )
        if names:
            return db.get_collection(cfg.source.collection)
        dbs = patient(client.list_database_names, role="source")
    except PyMongoError as exc:
        raise ConnectError(
            f"cannot list collections of '{cfg.source.db}' on the source: "
            f"{describe_error(exc, cfg.source.uri)}"
        ) from None
    if cfg.source.db not in dbs:
        raise UsageError(f"source database '{cfg.source.db}' does not exist: check --source-db")
    raise UsageError(
        f"source collection '{cfg.source.namespace}' does not exist: check --source-collection"
    )


def _plan(
    coll: Collection[dict[str, Any]], cfg: PlanConfig, progress: Progress, metered: bool
) -> tuple[Manifest, str]:
    # First: a --ttl-field that names nothing is refused before any long step. A source
    # that reports request charges is Cosmos DB, whatever its host name (a private
    # endpoint, a proxy): its indexes follow Cosmos DB's rules.
    kind = ServerKind.COSMOS if metered else server_kind(cfg.source.uri)
    # Each read is tried again when throttled or cut off, as a copy's reads are: a plan
    # of a busy Cosmos DB account must not fail on its first 16500.
    indexes = plan_indexes(coll, kind, server_kind(cfg.target.uri), cfg.ttl_field)
    progress(f"read {len(indexes)} index definitions; reading statistics of {cfg.source.namespace}")
    stats = patient(lambda: read_stats(coll), role="source")
    progress(f"source holds {stats.count:,} documents, {stats.size_bytes / MIB:,.1f} MiB")
    parts = _partition_count(cfg, stats)
    progress("reading the smallest and largest _id")
    edges = patient(lambda: read_id_edges(coll), role="source")
    brackets = patient(lambda: find_brackets(coll, *edges), role="source") if edges else []
    mode, reason = patient(
        lambda: _choose_mode(coll, cfg.range_mode, brackets, edges[0] if edges else None),
        role="source",
    )
    sample_size = 0 if parts == 1 else min(MAX_SAMPLE, parts * cfg.samples_per_partition)
    progress(f"sampling {sample_size:,} _ids for {parts} partitions ({mode} ranges)")
    sample, exact = patient(lambda: read_sample(coll, sample_size, stats.count), role="source")
    cost = _read_cost(coll, stats, sample, edges, progress) if metered and stats.count else None
    partitions = build_partitions(
        sample,
        mode=mode,
        parts=parts,
        count=stats.count,
        avg_doc_bytes=stats.avg_doc_bytes,
        brackets_present=brackets if mode is RangeMode.TYPED else (),
    )
    manifest = Manifest(
        job=cfg.job,
        source=_side(cfg.source),
        target=_side(cfg.target),
        stats=_stats(stats, brackets, cost),
        split=_split(cfg, mode, len(sample), exact),
        partitions=tuple(partitions),
        indexes=indexes,
        created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        tool_version=__version__,
    )
    return dataclasses.replace(manifest, fingerprint=manifest.compute_fingerprint()), reason


def _partition_count(cfg: PlanConfig, stats: SourceStats) -> int:
    """--partitions, else the size over --partition-size-mb; at least 1, at most a
    partition per document."""
    if cfg.partitions is not None:
        parts = cfg.partitions
    else:
        parts = max(1, math.ceil(stats.size_bytes / (cfg.size_mb * MIB)))
    return max(1, min(parts, stats.count)) if stats.count else 1


def _read_cost(
    coll: Collection[dict[str, Any]],
    stats: SourceStats,
    sample: list[Any],
    edges: tuple[Any, Any] | None,
    progress: Progress,
) -> ReadCost | None:
    """What a page of the copy costs in RU, read at points spread over the collection."""
    progress("measuring the request units a page of the copy costs")
    starts = _spread(sample) if sample else [edges[0]] if edges else []
    return patient(lambda: measure_read_cost(coll, starts, stats.avg_doc_bytes), role="source")


def _stats(stats: SourceStats, brackets: list[str], cost: ReadCost | None) -> dict[str, Any]:
    """The source's statistics, as the manifest records them."""
    return {
        "count": stats.count,
        "size_bytes": stats.size_bytes,
        "avg_doc_bytes": round(stats.avg_doc_bytes, 3),
        "id_brackets": brackets,
        **({"ru": cost.to_json(stats.size_bytes)} if cost is not None else {}),
    }


def _split(cfg: PlanConfig, mode: RangeMode, sample_size: int, exact: bool) -> dict[str, Any]:
    """How the collection was split, as the manifest records it."""
    return {
        "range_mode": mode.value,
        "requested_range_mode": cfg.range_mode,
        "partitions": cfg.partitions,
        "partition_size_mb": None if cfg.partitions else cfg.size_mb,
        "sample_size": sample_size,
        "sample_exact": exact,
    }


def _spread(sample: list[Any]) -> list[Any]:
    """Start points of the cost pages: spread over the sampled ``_id``s."""
    n = len(sample)
    return [sample[n * k // (ESTIMATE_PAGES + 1)] for k in range(1, ESTIMATE_PAGES + 1)]


def _choose_mode(
    coll: Collection[dict[str, Any]], requested: str, brackets: list[str], first: Any
) -> tuple[RangeMode, str]:
    """The range mode, and why; ``first`` is the smallest ``_id`` (``None``: empty).

    min/max is probed only where the choice depends on it.
    """

    def honours_minmax() -> bool:
        return first is None or probe_minmax(coll, first)

    if requested != "auto":
        mode = RangeMode(requested)
        if mode is RangeMode.MINMAX and not honours_minmax():
            raise UsageError(
                "--range-mode 'minmax': the source does not honour find().min()/.max(); "
                "use --range-mode typed"
            )
        return mode, "requested"
    if len(brackets) <= 1:
        kind = brackets[0] if brackets else "none"
        return RangeMode.TYPED, f"auto: one _id type bracket ({kind})"
    if honours_minmax():
        return RangeMode.MINMAX, f"auto: {len(brackets)} _id type brackets, min/max honoured"
    return RangeMode.TYPED, f"auto: {len(brackets)} _id type brackets, min/max not honoured"


def _side(ep: Endpoint) -> dict[str, Any]:
    """One side as the manifest stores it: never the credentials."""
    return {
        "uri": strip_credentials(ep.uri),
        "hosts": uri_hosts(ep.uri),
        "kind": server_kind(ep.uri).value,
        "db": ep.db,
        "collection": ep.collection,
    }


def _save_new(manifest: Manifest, path: Path) -> None:
    """Write the manifest atomically; remove a job folder this call created if that fails."""
    created = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_manifest(manifest, path)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                path.parent.rmdir()
        raise
