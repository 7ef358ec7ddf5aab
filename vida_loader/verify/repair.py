"""``vida-loader repair``: fix from the source what the last deep verify found.

Each ``_id`` of ``mismatches.jsonl`` is looked up again on both sides (the source through
the job's transform) and judged as it is *now*, not as it was listed: the same bytes
on both sides need nothing; a source document the target lacks or holds differently is
written over it (a replace with upsert, acknowledged and journaled); a target document
the source lacks is deleted only with ``delete_extra``. Then the same ``_id``s are read
again, and ``mismatches.jsonl`` keeps only those that still differ (rewritten
atomically). A repair killed midway leaves the list as it was: running it again judges
each ``_id`` afresh, so a second run changes nothing that the first one fixed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bson
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteOne, ReplaceOne

from vida_loader.errors import StateError
from vida_loader.job.lock import hold_lock
from vida_loader.job.planned import job_command, open_job
from vida_loader.job.runstate import RunState, load_state, now_iso, save_state
from vida_loader.jobfiles import from_ejson
from vida_loader.mongo import CODEC_OPTIONS, connect, write_concern
from vida_loader.pipeline.clients import RAW_OPTIONS
from vida_loader.pipeline.target import require_source
from vida_loader.retry import Retrier
from vida_loader.transform.plugin import Transform, check_transform_file, ignoring
from vida_loader.transform.spec import TransformSpec
from vida_loader.verify import mismatches
from vida_loader.verify.compare import Difference, differ, id_sort_key
from vida_loader.verify.deep import LOOKUP, lookup

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from vida_loader.config import RepairConfig
    from vida_loader.job.manifest import Manifest


@dataclass(frozen=True)
class RepairOutcome:
    job: str
    listed: int  # _ids mismatches.jsonl held
    inserted: int = 0
    replaced: int = 0
    deleted: int = 0
    extra_left: int = 0  # target documents the source lacks, kept (no --delete-extra)
    already_right: int = 0  # the same on both sides when repair looked
    left: tuple[dict[str, Any], ...] = ()  # the lines still differing afterwards
    retries: int = 0  # operations tried again (throttled, connection lost...)
    throttled: int = 0  # of those, because a server throttled
    seconds: float = 0.0
    mismatches_path: Path = Path()
    transform: str | None = None

    def record(self) -> dict[str, Any]:
        """What the run state keeps of it (``status`` shows it)."""
        return {
            "time": now_iso(),
            "listed": self.listed,
            "inserted": self.inserted,
            "replaced": self.replaced,
            "deleted": self.deleted,
            "extra_left": self.extra_left,
            "already_right": self.already_right,
            "left": len(self.left),
            "retries": self.retries,
            "throttled": self.throttled,
        }


RepairProgress = Callable[[tuple[int, int]], None]  # _ids judged, _ids listed


def repair_job(
    cfg: RepairConfig,
    on_progress: RepairProgress | None = None,
    notify: Callable[[str], None] | None = None,
) -> RepairOutcome:
    started = time.monotonic()
    manifest, source, target = open_job(cfg)
    files = cfg.files
    with hold_lock(files, now_iso()):
        state = _verified_state(cfg, manifest)
        spec = TransformSpec.from_json(state.transform) if state.transform else None
        t = check_transform_file(spec) if spec is not None else None
        lines = mismatches.read(files.mismatches)
        retrier = Retrier(cfg.retry, role="target")
        with (
            connect(source.uri, role="source", timeouts=cfg.timeouts) as src_client,
            connect(target.uri, role="target", timeouts=cfg.timeouts) as dst_client,
        ):
            require_source(src_client, source, cfg.retry)
            src = src_client[source.db].get_collection(source.collection, RAW_OPTIONS)
            # Acknowledged and journaled: a repaired document survives a target crash.
            dst = dst_client[target.db].get_collection(
                target.collection, RAW_OPTIONS, write_concern=write_concern("1")
            )
            fixer = _Fixer(src, dst, t, cfg.delete_extra, retrier)
            ids = _distinct_ids(lines)
            _fix_all(fixer, ids, on_progress)
            where = _partitions(lines)
            left = [d.record(where[id_sort_key(d.id_doc)]) for d in fixer.recheck(ids)]
        mismatches.rewrite(files.mismatches, left)
        outcome = RepairOutcome(
            cfg.job,
            len(ids),
            *fixer.tally(),
            tuple(left),
            retrier.counts.retries,
            retrier.counts.throttled,
            time.monotonic() - started,
            files.mismatches,
            spec.describe() if spec is not None else None,
        )
        state.verify = {**(state.verify or {}), "repair": outcome.record()}
        save_state(state, files.state)
        if notify and outcome.extra_left:
            notify(
                f"{outcome.extra_left:,} target documents the source lacks were left: "
                "pass --delete-extra to delete them"
            )
        return outcome


def _fix_all(fixer: _Fixer, ids: list[bytes], on_progress: RepairProgress | None) -> None:
    """Fix the listed ``_id``s, ``LOOKUP`` at a time, saying how far it got."""
    for at in range(0, len(ids), LOOKUP):
        fixer.fix(ids[at : at + LOOKUP])
        if on_progress:
            on_progress((min(at + LOOKUP, len(ids)), len(ids)))


def _verified_state(cfg: RepairConfig, manifest: Manifest) -> RunState:
    """The job's state, whose last deep verify finished: what a repair works from."""
    files = cfg.files
    state = load_state(files.state)
    verify = " ".join(job_command("verify", cfg)) + " --deep"
    if state is None or not state.verify:
        raise StateError(
            f"job '{cfg.job}' has no deep verify to repair from: run `{verify}` first"
        )
    state.check_plan(manifest, files.state)
    if state.verify.get("finished_at") is None:
        raise StateError(
            f"the last deep verify of job '{cfg.job}' did not finish: its list of "
            f"differences is partial; finish it with `{verify}` first"
        )
    return state


def _distinct_ids(lines: list[dict[str, Any]]) -> list[bytes]:
    """The raw ``{_id: ...}`` of every line, each once, in the file's order."""
    seen: dict[tuple[Any, ...], bytes] = {}
    for line in lines:
        id_doc = _id_doc(line)
        seen.setdefault(id_sort_key(id_doc), id_doc)
    return list(seen.values())


def _partitions(lines: list[dict[str, Any]]) -> dict[tuple[Any, ...], str]:
    """The partition of each line's ``_id``, by its sort key."""
    return {id_sort_key(_id_doc(line)): str(line["partition"]) for line in lines}


def _id_doc(line: dict[str, Any]) -> bytes:
    return bson.encode({"_id": from_ejson(line["_id"])}, codec_options=CODEC_OPTIONS)


class _Fixer:
    """Judge and fix a batch of ``_id``s at a time; counts what it did."""

    def __init__(
        self,
        src: Collection[Any],
        dst: Collection[Any],
        t: Transform | None,
        delete_extra: bool,
        retrier: Retrier,
    ) -> None:
        self.src, self.dst, self.t = src, dst, t
        self.delete_extra = delete_extra
        self.retrier = retrier
        self.inserted = self.replaced = self.deleted = self.extra_left = self.already_right = 0

    def tally(self) -> tuple[int, int, int, int, int]:
        """(inserted, replaced, deleted, extra left, already right), as RepairOutcome
        takes them."""
        return self.inserted, self.replaced, self.deleted, self.extra_left, self.already_right

    def both(self, ids: list[bytes]) -> tuple[dict[Any, bytes], dict[Any, bytes]]:
        """The documents with these ``_id``s on the source (as the copy writes them) and
        on the target, by ``_id`` sort key."""
        src = self.retrier.call(lambda: lookup(self.src, ids, self.t))
        return src, self.retrier.call(lambda: lookup(self.dst, ids))

    def _compared(self, raw: bytes | None) -> bytes | None:
        """What a deep verify compares of ``raw``: without the transform's
        ``verify_ignore`` fields."""
        if raw is None or self.t is None or not self.t.verify_ignore:
            return raw
        return ignoring(raw, self.t.verify_ignore)

    def _same(self, s: bytes | None, d: bytes | None) -> bool:
        return self._compared(s) == self._compared(d)

    def fix(self, ids: list[bytes]) -> None:
        src, dst = self.both(ids)
        ops: list[Any] = []
        for id_doc in ids:
            key = id_sort_key(id_doc)
            s, d = src.get(key), dst.get(key)
            if self._same(s, d):
                self.already_right += 1
            elif s is not None:
                _id = bson.decode(id_doc, CODEC_OPTIONS)["_id"]
                ops.append(ReplaceOne({"_id": _id}, RawBSONDocument(s), upsert=True))
                if d is None:
                    self.inserted += 1
                else:
                    self.replaced += 1
            elif self.delete_extra:
                ops.append(DeleteOne({"_id": bson.decode(id_doc, CODEC_OPTIONS)["_id"]}))
                self.deleted += 1
            else:
                self.extra_left += 1
        if ops:
            # Idempotent (each operation sets one _id to what the source holds): retried whole.
            self.retrier.call(lambda: self.dst.bulk_write(ops, ordered=False))

    def recheck(self, ids: list[bytes]) -> list[Difference]:
        """The ``_id``s that still differ, read again on both sides."""
        left: list[Difference] = []
        for at in range(0, len(ids), LOOKUP):
            batch = ids[at : at + LOOKUP]
            src, dst = self.both(batch)
            for id_doc in batch:
                key = id_sort_key(id_doc)
                diff = differ(id_doc, *(self._compared(side.get(key)) for side in (src, dst)))
                if diff is not None:
                    left.append(diff)
        return left
