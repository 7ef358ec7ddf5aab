"""Generate ``total`` documents with a pool of workers, into a collection or a ``.bson`` file.

The index range is cut into slices of whole RNG blocks; a worker turns a slice into BSON
(``generate_slice``, a task of (slice, settings) that never raises) and either
writes it to the target as raw batches and confirms it there, or hands the bytes back
for the parent to append to the file in index order. So the same seed gives the same
documents, and the same file, whatever ``-j``.

Confirmation works as in ``run``: with acknowledged writes a slice whose every document
was acknowledged as inserted is done on those results; otherwise (``w=0``, a duplicate
key, a target that went away) the target is asked which of the slice's ``_id``s it holds,
and the missing documents are sent again with acknowledged writes.
"""

from __future__ import annotations

import os
import random
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import bson
import psutil
from bson.raw_bson import RawBSONDocument

from vida_loader.config import check_batches, check_namespace, default_job_name
from vida_loader.endpoint import Endpoint, Timeouts
from vida_loader.errors import GenerateInterruptedError, UsageError, VidaError
from vida_loader.execution.events import Event, Moved, Reporter
from vida_loader.execution.scheduler import Scheduler
from vida_loader.generate import BLOCK
from vida_loader.generate.sources import BUILT_INS, DEFAULT_SOURCE, load_source, resolve_source
from vida_loader.job.runstate import now_iso
from vida_loader.jobfiles import JobFiles, append_jsonl, cut_torn_line
from vida_loader.mongo import CODEC_OPTIONS, close_client, connect, write_concern
from vida_loader.pipeline.clients import RAW_OPTIONS, close_clients, collection
from vida_loader.pipeline.confirm import id_key
from vida_loader.pipeline.target import prepare_target
from vida_loader.pipeline.task import task_failure, wait_reporter
from vida_loader.pipeline.writer import chunked, resend, writer_for
from vida_loader.retry import Retrier, RetryCounts, RetryPolicy
from vida_loader.settings.registry import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BATCH_MB,
    DEFAULT_BATCH_SIZE,
    DEFAULT_WRITE_CONCERN,
    MIB,
    Layer,
)

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from vida_loader.settings.resolve import Settings

# Documents per task. Into a file: 2 blocks (~2.8 MB held per slice in the parent until
# its turn). Into a server: guided, a share of what remains, between 2 and 16 blocks:
# long tasks at first (each task start and end is a moment one worker writes nothing),
# short ones at the end (no worker idles through another's long last task).
FILE_SLICE = 2 * BLOCK
MIN_SLICE, MAX_SLICE = 2 * BLOCK, 16 * BLOCK
TICK = 0.5  # seconds between progress snapshots


@dataclass(frozen=True)
class GenerateConfig:
    """Everything ``generate`` needs. Exactly one of ``target`` and ``out`` is given."""

    total: int
    jobs: int = 1
    source: str = DEFAULT_SOURCE
    seed: int | None = None  # None: a random seed, reported so the run can be repeated
    target: Endpoint | None = None
    out: str | None = None  # a file path, or "-" for stdout
    write_concern: str = DEFAULT_WRITE_CONCERN
    drop_target: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_mb: float = DEFAULT_BATCH_MB
    attempts: int = DEFAULT_ATTEMPTS
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    metrics: Path | None = None  # metrics.jsonl to append to (None: none kept)

    def __post_init__(self) -> None:
        if self.total < 1:
            raise UsageError(f"--total '{self.total}' must be at least 1")
        if self.jobs < 1:
            raise UsageError(f"--jobs '{self.jobs}' must be at least 1")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise UsageError(f"--seed '{self.seed}' must be between 0 and 2^63 - 1")
        if (self.target is None) == (self.out is None):
            raise UsageError(
                "give either --out FILE.bson (or --out - for stdout) or --target-uri with "
                "--target-db and --target-collection"
            )
        if self.target is not None:
            for which in ("uri", "db", "collection"):
                if not getattr(self.target, which):
                    raise UsageError(
                        f"--target-{which} is required to generate into a server "
                        f"(or VIDA_TARGET_{which.upper()})"
                    )
            check_namespace("target", self.target.db, self.target.collection)
        elif self.drop_target:
            raise UsageError("--drop-target needs a target collection, not --out")
        write_concern(self.write_concern)
        check_batches(self.batch_size, self.batch_mb)
        resolve_source(self.source)

    @classmethod
    def from_settings(cls, s: Settings, drop_target: bool = False) -> GenerateConfig:
        """The generation that the settings of ``generate`` describe."""
        if s["total"] is None:
            raise UsageError(
                "--total is required: how many documents to generate (or VIDA_TOTAL, "
                "GEN_TOTAL_DOCUMENTS)"
            )
        target = None
        keys = ("target_uri", "target_db", "target_collection")
        # --out on the command line beats a target from the environment, an env file or
        # a profile (the old framework's .env_local names one for every command).
        out_wins = s["out"] is not None and all(s.origin(k).layer is not Layer.FLAG for k in keys)
        if not out_wins and any(s[k] for k in keys):
            target = s.endpoint("target")
        out = s["out"] if target is None else None
        folder = "generate-" + (
            default_job_name(target.db, target.collection)
            if target is not None
            else ("stdout" if out == "-" else Path(str(out)).stem)
        )
        return cls(
            metrics=JobFiles(s["manifest_dir"], folder).metrics,
            total=s["total"],
            jobs=s["jobs"],
            source=s["generate_source"],
            seed=s["seed"],
            target=target,
            out=s["out"],
            write_concern=s["write_concern"],
            drop_target=drop_target,
            batch_size=s["batch_size"],
            batch_mb=s["batch_mb"],
            retry=RetryPolicy(attempts=s["retry_attempts"], window_s=s["retry_window"]),
            timeouts=s.timeouts(),
        )


@dataclass(frozen=True)
class GenerateSettings:
    """What a worker needs besides its slice. Holds the full URI: never written to disk."""

    source: str
    seed: int
    target: Endpoint | None
    write_concern: str
    batch_size: int
    batch_bytes: int
    timeouts: Timeouts
    retry: RetryPolicy
    target_was_empty: bool = True  # at the start: a count of a slice's range then proves it
    confirm_rounds: int = 2
    confirm_only: bool = False  # second pass of a w=0 run: check (and repair), write nothing


@dataclass(frozen=True)
class SliceResult:
    """What happened to one slice of the index range on one attempt."""

    index: int
    docs: int = 0  # written (to the target: confirmed there)
    nbytes: int = 0
    ok: bool = False
    data: bytes | None = None  # the slice's BSON, when the parent writes the file
    repaired: int = 0  # sent again after an unacknowledged write vanished
    already_there: int = 0  # duplicate keys: the target held that _id already
    retries: int = 0
    throttled: int = 0
    wait_s: float = 0.0
    error: str | None = None
    transient: bool = False
    # Written with w=0 into a collection that was empty: one count of the whole
    # collection at the end confirms every such slice at once, else each is checked.
    unconfirmed: bool = False


def plan_slices(total: int, jobs: int, to_file: bool) -> list[tuple[int, int]]:
    """(start, stop) of every task, in index order, each a whole number of blocks."""
    out = []
    start = 0
    while start < total:
        if to_file:
            size = FILE_SLICE
        else:
            share = (total - start) // (2 * jobs)
            size = min(MAX_SLICE, max(MIN_SLICE, -(-share // BLOCK) * BLOCK))
        out.append((start, min(total, start + size)))
        start += size
    return out


def generate_slice(
    index: int, start: int, stop: int, s: GenerateSettings, report: Reporter
) -> SliceResult:
    """Generate slice ``index`` and write it (or return its bytes). Never raises."""
    retrier = Retrier(s.retry, wait_reporter(report, f"s{index}"), role="target")
    try:
        result = _generate(index, start, stop, s, report, retrier)
    except Exception as exc:  # the process boundary: return a result, do not raise
        failure = task_failure(exc, *((s.target.uri,) if s.target else ()))
        result = SliceResult(index, error=failure.error, transient=failure.transient)
    c = retrier.counts
    return replace(result, retries=c.retries, throttled=c.throttled, wait_s=c.wait_s)


def _generate(
    index: int, start: int, stop: int, s: GenerateSettings, report: Reporter, retrier: Retrier
) -> SliceResult:
    source = load_source(s.source, s.seed)
    sid = f"s{index}"
    if s.target is None:
        data = b"".join(source.iter_range(start, stop))
        report(Moved(sid, stop - start, len(data)))
        return SliceResult(index, stop - start, len(data), ok=True, data=data)
    target = s.target
    coll = retrier.call(lambda: collection(target, "target", s.timeouts))
    if s.confirm_only:
        return _confirm_slice(index, source.iter_range(start, stop), coll, s, retrier)
    made: list[RawBSONDocument] = []  # every document of the slice, for the confirmation
    ids: _SliceIds | None = None
    todo: Iterable[RawBSONDocument]
    if s.target_was_empty:
        # Generated batch by batch: the next batch is made while the writer thread
        # waits for the server with the current one.
        todo = _kept(
            (RawBSONDocument(d, RAW_OPTIONS) for d in source.iter_range(start, stop)), made
        )
    else:
        # A re-run (same seed) or a target that held documents: send only what is missing.
        made = [RawBSONDocument(d, RAW_OPTIONS) for d in source.iter_range(start, stop)]
        ids, todo = _missing(made, coll, retrier, report, sid)
    with writer_for(coll, s.write_concern, retrier) as w:
        sent, _sent_bytes = w.write_all(chunked(todo, s.batch_size, s.batch_bytes), report, sid)
    acknowledged = w.acknowledged
    w.report_written(report, sid)
    nbytes = sum(len(d.raw) for d in made)
    already = w.already + len(made) - sent
    if retrier.counts.outages == 0:
        if acknowledged and w.inserted == sent:
            return SliceResult(index, len(made), nbytes, ok=True, already_there=already)
        if not acknowledged and s.target_was_empty:
            return SliceResult(index, len(made), nbytes, ok=True, unconfirmed=True)
    # w=0, duplicate keys, or the target went away: ask it which _ids it holds.
    repaired, error = _confirm(coll, ids or _SliceIds(made), s, retrier)
    return SliceResult(
        index,
        len(made) if error is None else 0,
        nbytes,
        ok=error is None,
        repaired=repaired,
        already_there=already,
        error=error,
    )


def _missing(
    made: list[RawBSONDocument],
    coll: Collection[Any],
    retrier: Retrier,
    report: Reporter,
    sid: str,
) -> tuple[_SliceIds, list[RawBSONDocument]]:
    """The slice's ``_id``s, and the documents of it the target lacks; what it holds
    already is reported as moved."""
    known = _SliceIds(made)
    present = retrier.call(lambda: known.present(coll))
    todo = [d for key, d in known.by_id.items() if key not in present]
    there = [d for key, d in known.by_id.items() if key in present]
    report(Moved(sid, len(there), sum(len(d.raw) for d in there)))
    return known, todo


def _confirm_slice(
    index: int, docs: Iterable[bytes], coll: Collection[Any], s: GenerateSettings, retrier: Retrier
) -> SliceResult:
    """A slice a run wrote unacknowledged (w=0): confirm that the target holds it all."""
    written = [RawBSONDocument(d, RAW_OPTIONS) for d in docs]
    repaired, error = _confirm(coll, _SliceIds(written), s, retrier)
    return SliceResult(
        index,
        len(written) if error is None else 0,
        sum(len(d.raw) for d in written),
        ok=error is None,
        repaired=repaired,
        error=error,
    )


def _kept(
    docs: Iterable[RawBSONDocument], into: list[RawBSONDocument]
) -> Iterator[RawBSONDocument]:
    for d in docs:
        into.append(d)
        yield d


class _SliceIds:
    """The ``_id``s of a slice's documents, and how to ask the target about them.

    Sources put ``_id`` first; an ObjectId is cut from the bytes, not decoded. When every
    ``_id`` is an ObjectId the target is asked for the slice's ``_id`` range (one index
    range scan; ``$in`` with thousands of values is far slower on some servers), else
    with ``$in``.
    """

    def __init__(self, raws: list[RawBSONDocument]) -> None:
        self.by_id: dict[bytes, RawBSONDocument] = {}
        self.all_oids = True
        for d in raws:
            raw = d.raw
            if raw[4:9] == b"\x07_id\x00":
                key = b"\x16\x00\x00\x00" + raw[4:21] + b"\x00"
            else:
                self.all_oids = False
                key = id_key(d)
            self.by_id[key] = d
        values = [bson.decode(k, CODEC_OPTIONS)["_id"] for k in self.by_id]
        self.in_range = self.all_oids and bool(values)
        if self.in_range:
            self.filter: dict[str, Any] = {"_id": {"$gte": min(values), "$lte": max(values)}}
        else:
            self.filter = {"_id": {"$in": values}}

    def count(self, coll: Collection[Any]) -> int:
        return coll.count_documents(self.filter)

    def present(self, coll: Collection[Any]) -> set[bytes]:
        """Raw ``{_id: ...}`` of the slice's documents that ``coll`` holds."""
        raw = coll.with_options(codec_options=RAW_OPTIONS)
        found = raw.find(self.filter, {"_id": 1}, batch_size=10_000)
        return {key for d in found if (key := bytes(d.raw)) in self.by_id}


def _confirm(
    coll: Collection[Any], ids: _SliceIds, s: GenerateSettings, retrier: Retrier
) -> tuple[int, str | None]:
    """Send again what the target lacks of the slice until it holds every ``_id``.

    Into a collection that was empty at the start, a count of the slice's range equal to
    its size proves it (nothing else can be in that range); otherwise the ``_id``s are
    compared one by one.
    """
    repaired = 0
    missing: list[RawBSONDocument] = []
    for round_ in range(s.confirm_rounds + 1):
        if s.target_was_empty and ids.in_range:
            if retrier.call(lambda: ids.count(coll)) == len(ids.by_id):
                return repaired, None
        present = retrier.call(lambda: ids.present(coll))
        missing = [doc for key, doc in ids.by_id.items() if key not in present]
        if not missing or round_ == s.confirm_rounds:
            break
        inserted, _already = resend(
            coll, missing, s.write_concern, s.batch_size, s.batch_bytes, retrier
        )
        repaired += inserted
    if missing:
        return repaired, (
            f"the target lacks {len(missing):,} of {len(ids.by_id):,} documents of this slice "
            f"after {s.confirm_rounds} rounds of sending them again"
        )
    return repaired, None


# --- the parent -----------------------------------------------------------------------


@dataclass
class GenerateProgress:
    docs: int
    bytes: int
    total: int
    elapsed: float
    retries: int
    throttled: int
    confirmed: int
    failed_slices: int
    phase: str = "writing"  # then "confirming" (w=0: checking what the target holds)


@dataclass
class GenerateResult:
    total: int
    seed: int
    docs: int  # written: to the file, or confirmed on the target
    bytes: int
    seconds: float
    jobs: int
    repaired: int = 0
    already_there: int = 0
    retries: int = 0
    throttled: int = 0
    wait_s: float = 0.0
    failed: list[tuple[int, str]] = field(default_factory=list)


def generate(
    cfg: GenerateConfig,
    on_progress: Callable[[GenerateProgress], None] | None = None,
    stdout: BinaryIO | None = None,
) -> GenerateResult:
    """Generate ``cfg.total`` documents; returns what was written and confirmed."""
    seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(2**31)
    spec = resolve_source(cfg.source)
    if spec not in BUILT_INS:
        # A broken template or plugin fails here, before anything is written.
        load_source(spec, seed).encode_range(0, 1)
    settings = GenerateSettings(
        spec,
        seed,
        cfg.target,
        cfg.write_concern,
        cfg.batch_size,
        int(cfg.batch_mb * MIB),
        cfg.timeouts,
        cfg.retry,
    )
    sink: BinaryIO | None = None
    if cfg.target is not None:
        empty = prepare_target(cfg.target, cfg.timeouts, drop=cfg.drop_target)
        settings = replace(settings, target_was_empty=empty)
    else:
        sink = _open_out(cfg.out or "-", stdout)
    run = _Generation(cfg, settings, sink, on_progress)
    try:
        return run.execute()
    finally:
        if sink is not None and sink is not stdout and cfg.out != "-":
            sink.close()


def _open_out(out: str, stdout: BinaryIO | None) -> BinaryIO:
    if out == "-":
        return stdout or sys.stdout.buffer
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"--out '{out}' is a folder: give a file name such as orders.bson")
    if not path.parent.is_dir():
        raise UsageError(f"--out '{out}': folder '{path.parent}' does not exist")
    try:
        return open(path, "wb")  # noqa: SIM115 - closed by generate()
    except OSError as exc:
        raise UsageError(f"--out '{out}' cannot be written: {exc.strerror}") from None


METRICS_EVERY = 5.0  # seconds between records of a generation in its metrics.jsonl


def generate_record(p: GenerateProgress) -> dict[str, Any]:
    """The periodic line of a generation's metrics.jsonl."""
    elapsed = max(p.elapsed, 1e-9)
    return {
        "kind": "generate",
        "time": now_iso(),
        "elapsed_s": round(p.elapsed, 3),
        "docs": p.docs,
        "bytes": p.bytes,
        "docs_s": round(p.docs / elapsed, 1),
        "bytes_s": round(p.bytes / elapsed, 1),
        "confirmed": p.confirmed,
        "retries": p.retries,
        "throttled": p.throttled,
        "failed_slices": p.failed_slices,
        "phase": p.phase,
        "rss_bytes": psutil.Process().memory_info().rss,
    }


def slice_record(res: SliceResult) -> dict[str, Any]:
    """One finished slice attempt's line of a generation's metrics.jsonl."""
    return {
        "kind": "slice",
        "time": now_iso(),
        "slice": res.index,
        "ok": res.ok,
        "docs": res.docs,
        "bytes": res.nbytes,
        "retries": res.retries,
        "throttled": res.throttled,
        "repaired": res.repaired,
        "error": res.error,
    }


class _Generation:
    def __init__(
        self,
        cfg: GenerateConfig,
        settings: GenerateSettings,
        sink: BinaryIO | None,
        on_progress: Callable[[GenerateProgress], None] | None,
    ) -> None:
        self.cfg = cfg
        self.settings = settings
        self.sink = sink
        self.on_progress = on_progress
        self.started = time.monotonic()
        self.bounds = plan_slices(cfg.total, cfg.jobs, sink is not None)
        self.moving = [0, 0]  # documents, bytes reported by workers so far
        self.counts = RetryCounts()
        self.result = GenerateResult(cfg.total, settings.seed, 0, 0, 0.0, cfg.jobs)
        self.tries: dict[int, int] = {}
        self.ready: dict[int, bytes] = {}  # slices done out of order, waiting for the file
        self.next_out = 0
        self.unconfirmed: dict[int, SliceResult] = {}  # written with w=0, not yet checked
        self.phase = "writing"
        self.slots = 2 * cfg.jobs  # one slice generating per worker, one on its way back
        self.slice_settings = settings
        self.last_metrics = time.monotonic()
        self.metrics_open = False

    def execute(self) -> GenerateResult:
        cfg = self.cfg
        scheduler = Scheduler[int, SliceResult](
            cfg.jobs, slots=self.slots, tick=TICK, cleanup=close_clients
        )
        try:
            with scheduler:
                scheduler.run(range(len(self.bounds)), self)
                if self.unconfirmed:
                    self.phase = "confirming"
                    self._confirm_unacknowledged(scheduler)
        except BaseException as exc:
            self._finish()
            if not isinstance(exc, KeyboardInterrupt):
                raise
            seed = self.settings.seed
            if self.sink is not None:
                where = f"written to the file (seed {seed})"
            else:
                where = (
                    f"confirmed on the target; the same command with --seed {seed} "
                    "completes it, sending only what the target lacks"
                )
            raise GenerateInterruptedError(
                f"interrupted: {self.result.docs:,} of {cfg.total:,} documents {where}"
            ) from None
        self._finish()
        progress = self.snapshot()
        if self.on_progress:
            self.on_progress(progress)
        self._metrics([generate_record(progress)])
        return self.result

    # --- the scheduler's handler --------------------------------------------------------

    def task(self, index: int) -> tuple[Callable[..., SliceResult], tuple[Any, ...]]:
        return generate_slice, (index, *self.bounds[index], self.slice_settings)

    def admit(self, index: int) -> bool:
        # Slices done out of order wait in memory for the file: at most ``slots`` of them,
        # but the slice the file waits for always goes.
        return len(self.ready) < self.slots or index == self.next_out

    def lost(self, index: int, why: str, died: bool) -> SliceResult:
        return SliceResult(index, error=why, transient=died)

    def events(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, Moved):
                self.moving[0] += ev.docs
                self.moving[1] += ev.bytes

    def finished(self, index: int, res: SliceResult) -> bool:
        return self._record(index, res)

    def tick(self) -> None:
        progress = self.snapshot()
        if self.on_progress:
            self.on_progress(progress)
        if time.monotonic() - self.last_metrics >= METRICS_EVERY:
            self._metrics([generate_record(progress)])

    def _metrics(self, records: list[dict[str, Any]]) -> None:
        """Append to the generation's metrics.jsonl (its folder made on the first)."""
        self.last_metrics = time.monotonic()
        path = self.cfg.metrics
        if path is None:
            return
        if not self.metrics_open:
            path.parent.mkdir(parents=True, exist_ok=True)
            cut_torn_line(path)
            self.metrics_open = True
        append_jsonl(path, records)

    # -------------------------------------------------------------------------------------

    def _confirm_unacknowledged(self, scheduler: Scheduler[int, SliceResult]) -> None:
        """Slices written with w=0 into an empty collection: if the collection now holds
        exactly ``total`` documents, every one is there (``_id``s are unique); otherwise
        each slice is checked ``_id`` by ``_id`` and what vanished is sent again."""
        target = self.settings.target
        assert target is not None
        client = connect(target.uri, role="target", timeouts=self.cfg.timeouts)
        try:
            coll = client[target.db][target.collection]
            retrier = Retrier(self.cfg.retry, role="target")
            held = retrier.call(lambda: coll.count_documents({}))
        finally:
            close_client(client)
        self.counts.merge(retrier.counts.retries, retrier.counts.throttled, retrier.counts.wait_s)
        slices = sorted(self.unconfirmed)
        if held == self.cfg.total:
            for i in slices:
                self._confirmed(self.unconfirmed.pop(i))
            return
        self.unconfirmed.clear()
        self.slice_settings = replace(self.settings, confirm_only=True)
        scheduler.run(slices, self)

    def _finish(self) -> None:
        if self.sink is not None:
            self.sink.flush()
            if self.cfg.out not in (None, "-") and stat.S_ISREG(
                os.fstat(self.sink.fileno()).st_mode
            ):
                # Ctrl-C can cut a write short, or land after a write before it was
                # counted: the file keeps exactly the documents reported.
                self.sink.truncate(self.result.bytes)
        r = self.result
        r.seconds = time.monotonic() - self.started
        r.retries, r.throttled, r.wait_s = (
            self.counts.retries,
            self.counts.throttled,
            self.counts.wait_s,
        )

    def _record(self, index: int, res: SliceResult) -> bool:
        """Apply a finished slice; True to try it again."""
        self.counts.merge(res.retries, res.throttled, res.wait_s)
        self._metrics([slice_record(res)])
        r = self.result
        if not res.ok:
            tries = self.tries[index] = self.tries.get(index, 0) + 1
            if res.transient and tries < self.cfg.attempts:
                return True
            if self.sink is not None:  # a file cannot skip a slice: stop here
                raise VidaError(f"generating documents failed: {res.error}")
            r.failed.append((index, res.error or "failed"))
            return False
        if res.unconfirmed:
            self.unconfirmed[index] = res
            return False
        if self.sink is None:
            self._confirmed(res)
            return False
        self.ready[index] = res.data or b""
        while self.next_out in self.ready:
            data = self.ready.pop(self.next_out)
            start, stop = self.bounds[self.next_out]
            self._write(data)
            r.docs += stop - start
            r.bytes += len(data)
            self.next_out += 1
        return False

    def _confirmed(self, res: SliceResult) -> None:
        r = self.result
        r.docs += res.docs
        r.bytes += res.nbytes
        r.repaired += res.repaired
        r.already_there += res.already_there

    def _write(self, data: bytes) -> None:
        assert self.sink is not None
        try:
            self.sink.write(data)
        except BrokenPipeError:
            # `generate --out - | head`: the reader left. Point stdout at /dev/null so
            # that Python's own flush at exit does not complain a second time.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.sink.fileno())
            os.close(devnull)
            raise VidaError(
                f"the reader of --out '{self.cfg.out}' went away after "
                f"{self.result.docs:,} documents"
            ) from None
        except OSError as exc:
            raise VidaError(
                f"writing --out '{self.cfg.out}' failed after {self.result.docs:,} documents: "
                f"{exc.strerror or exc}"
            ) from None

    def snapshot(self) -> GenerateProgress:
        return GenerateProgress(
            docs=max(self.moving[0], self.result.docs),
            bytes=max(self.moving[1], self.result.bytes),
            total=self.cfg.total,
            elapsed=time.monotonic() - self.started,
            retries=self.counts.retries,
            throttled=self.counts.throttled,
            confirmed=self.result.docs,
            failed_slices=len(self.result.failed),
            phase=self.phase,
        )
