"""Make the indexes built relaxed for a follow what they are defined to be: at the
switch-over (``run --follow --until-caught-up``'s end) or by ``vida-loader indexes
finalize``.

A TTL gets its real ``expireAfterSeconds``; a unique index is converted as MongoDB
allows it (``collMod`` ``prepareUnique``, then ``unique``). Documents sharing a key
make the conversion fail: the line names the index and the ``_id``s that share keys;
the index stays as it was (``prepareUnique``: no new duplicates) and the run state keeps
the change to apply, so finalizing again after fixing the data finishes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymongo.errors import OperationFailure

from vida_loader.errors import StateError
from vida_loader.indexes.definition import field_value
from vida_loader.job.lock import hold_lock
from vida_loader.job.planned import open_job
from vida_loader.job.runstate import RunState, load_state, now_iso, save_state
from vida_loader.mongo import connect
from vida_loader.retry import Retrier, RetryPolicy

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from vida_loader.config import JobConfig
    from vida_loader.endpoint import Endpoint, Timeouts

CANNOT_BE_UNIQUE = 359  # CannotConvertIndexToUnique: documents share a key


@dataclass(frozen=True)
class Finalized:
    name: str
    change: dict[str, Any]  # the collMod index change applied (or tried)
    error: str | None = None  # why it could not be applied


def finalize_in(
    state: RunState,
    target: Endpoint,
    timeouts: Timeouts,
    retry: RetryPolicy,
    save: Callable[[], None],
) -> list[Finalized]:
    """Apply every pending change of ``state``'s index records; each one done is cleared
    and the state saved (``save``) at once."""
    pending = [r for r in state.indexes.values() if r.done and r.finalize]
    if not pending:
        return []
    out = []
    retrier = Retrier(retry, role="target")
    with connect(target.uri, role="target", timeouts=timeouts) as client:
        coll = client[target.db][target.collection]
        for rec in pending:
            change = dict(rec.finalize or {})
            error = retrier.call(lambda: _apply(coll, change))  # noqa: B023 - called at once
            rec.error = error
            if error is None:
                rec.finalize = None
            save()
            out.append(Finalized(str(change["name"]), change, error))
    return out


def _apply(coll: Collection[Any], change: dict[str, Any]) -> str | None:
    """One index's ``collMod`` changes (the same command again is harmless)."""
    name = change["name"]
    db = coll.database
    if "expireAfterSeconds" in change:
        db.command(
            "collMod",
            coll.name,
            index={"name": name, "expireAfterSeconds": change["expireAfterSeconds"]},
        )
    if change.get("unique"):
        db.command("collMod", coll.name, index={"name": name, "prepareUnique": True})
        try:
            db.command("collMod", coll.name, index={"name": name, "unique": True})
        except OperationFailure as exc:
            if exc.code != CANNOT_BE_UNIQUE:
                raise
            groups = [v.get("ids") or [] for v in (exc.details or {}).get("violations", [])]
            shown = "; ".join(_shared(coll, name, ids) for ids in groups[:3])
            return (
                f"index '{name}' cannot become unique: {len(groups)} keys are shared by "
                f"target documents ({shown}{' ...' if len(groups) > 3 else ''}); fix them "
                "on the source and target, then `vida-loader indexes finalize`"
            )
    return None


def _shared(coll: Collection[Any], name: str, ids: list[Any]) -> str:
    """``key {k: 5}: _ids 5, 99``: the key the documents ``ids`` share in index ``name``."""
    listed = ", ".join(map(repr, ids))
    fields = [f for f, _ in coll.index_information().get(name, {}).get("key", [])]
    doc = coll.find_one({"_id": ids[0]}, dict.fromkeys(fields, 1)) if ids and fields else None
    if doc is None:
        return f"_ids {listed}"
    key = {f: field_value(doc, f) for f in fields}
    return f"key {key}: _ids {listed}"


def finalize_indexes(cfg: JobConfig) -> list[Finalized]:
    """``vida-loader indexes finalize``: the job's relaxed indexes made final."""
    _, _, target = open_job(cfg)
    files = cfg.files
    with hold_lock(files, now_iso()):
        state = load_state(files.state)
        if state is None:
            raise StateError(f"job '{cfg.job}' has not run: it has no indexes to finalize")

        def save() -> None:
            save_state(state, files.state)

        return finalize_in(state, target, cfg.timeouts, cfg.retry, save)
