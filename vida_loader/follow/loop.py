"""``run --follow``: replay the source's changes on the target from the job's position,
batch by batch, until told to stop.

Each batch is read from the change stream (up to ``batch_docs`` events, or what came
within ``batch_wait_s``), reduced to one write per ``_id`` (``apply.Batch``), written
acknowledged and journaled, and only then is the stream's resume token saved in the run
state (atomically): a kill at any instant replays at most the batch that was being
applied, which gives the same target. The loop holds the job's lock and is the only
writer of the state meanwhile.

Lag is the age of the last applied change (its ``clusterTime``); an empty read from the
stream means the target has caught up (lag 0). ``until_caught_up``: stop once the lag
is at most that many seconds.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pymongo.errors import OperationFailure

from vida_loader.errors import RunInterruptedError, StateError, UsageError, format_duration
from vida_loader.follow.apply import Batch
from vida_loader.follow.finalize import Finalized, finalize_in
from vida_loader.follow.position import Position, open_stream
from vida_loader.follow.sweep import sweep_deletes
from vida_loader.job.lock import hold_lock
from vida_loader.job.planned import open_job
from vida_loader.job.runstate import RunState, load_state, now_iso, save_state
from vida_loader.jobfiles import from_ejson, to_ejson
from vida_loader.mongo import connect, describe_error, write_concern
from vida_loader.pipeline.ahead import ReadAhead
from vida_loader.pipeline.clients import RAW_OPTIONS
from vida_loader.retry import Retrier, patient
from vida_loader.transform.plugin import Transform, check_transform_file
from vida_loader.transform.spec import TransformSpec

if TYPE_CHECKING:
    from vida_loader.config import RunConfig
    from vida_loader.endpoint import Endpoint
    from vida_loader.job.manifest import Manifest

# Applied writes survive a crash of the target's primary (its journal).
FOLLOW_WRITES = write_concern("1")  # w=1, journaled
# The server answers "this position is gone" with these codes (history lost, fatal).
LOST_POSITION = (260, 280, 286)
BATCH_EVENTS = 1000  # events per applied batch, at most
WAIT_MS = 250  # how long one read of the stream waits for events before "caught up"
# Cosmos DB answers a throttled change stream with an empty page, not an error: only
# several empty reads in a row mean that the target has caught up.
COSMOS_EMPTY_READS = 3


@dataclass
class FollowProgress:
    """What the follow loop has done since it started, and how far behind it is."""

    events: int = 0  # change events read
    applied: int = 0  # writes applied (one per _id per batch)
    upserts: int = 0
    deletes: int = 0
    skipped: int = 0
    swept: int = 0  # target documents the delete sweep removed
    batches: int = 0
    lag_s: float | None = None  # age of the last applied change; 0: caught up; None: unknown
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Change events per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class FollowResult:
    job: str
    progress: FollowProgress
    caught_up: bool  # ended by --until-caught-up
    stopped: bool  # ended by Ctrl-C / SIGTERM between batches
    finalized: tuple[Finalized, ...] = ()  # indexes made final at the switch-over

    @property
    def finalize_errors(self) -> list[str]:
        return [f.error for f in self.finalized if f.error]


FollowSink = Callable[[FollowProgress], None]


def follow_job(
    cfg: RunConfig,
    on_progress: FollowSink | None = None,
    notify: Callable[[str], None] | None = None,
    tick: float = 1.0,
    should_stop: Callable[[], bool] | None = None,
) -> FollowResult:
    """Replay the source's changes on the target from the job's saved position, until
    ``cfg.until_caught_up`` is reached, an interrupt, or ``should_stop()`` says so
    (asked between batches)."""
    manifest, source, target = open_job(cfg)
    files = cfg.files
    with hold_lock(files, now_iso()):
        state = load_state(files.state)
        if state is None:
            raise UsageError(
                f"job '{cfg.job}' has not run: `run --follow` copies first, then follows"
            )
        position = _position(state, cfg.job)
        spec = TransformSpec.from_json(state.transform) if state.transform else None
        t = check_transform_file(spec) if spec is not None else None
        if notify and position.cosmos and cfg.follow_deletes != "sweep":
            notify(
                "Cosmos DB reports no deletes in its change stream: documents deleted on the "
                "source stay on the target unless --follow-deletes sweep"
            )
        loop = _Loop(cfg, manifest, state, position, (source, target), t, on_progress, tick)
        loop.should_stop = should_stop
        result = loop.run()
        if result.caught_up:  # the switch-over: relaxed indexes become what they are

            def save() -> None:
                save_state(state, files.state)

            done = finalize_in(state, target, cfg.timeouts, cfg.retry, save)
            result = replace(result, finalized=tuple(done))
        return result


def _position(state: RunState, job: str) -> Position:
    if not state.changes:
        raise StateError(
            f"job '{job}' started before vida-loader took change-stream positions: "
            "--follow needs the position taken before the copy",
            fix="start the job over with --restart --follow",
        )
    position = Position.from_json(state.changes)
    if position.token is None:
        raise StateError(
            f"the source gave no change-stream position when job '{job}' started "
            f"({position.error}): --follow cannot know what changed during the copy",
            fix="enable change streams on the source, then start over with --restart --follow",
        )
    return position


class _Loop:
    def __init__(
        self,
        cfg: RunConfig,
        manifest: Manifest,
        state: RunState,
        position: Position,
        sides: tuple[Endpoint, Endpoint],
        t: Transform | None,
        on_progress: FollowSink | None,
        tick: float,
    ) -> None:
        self.cfg, self.manifest, self.state, self.position = cfg, manifest, state, position
        self.source, self.target = sides
        self.t, self.on_progress, self.tick = t, on_progress, tick
        self.progress = FollowProgress()
        self.applying = False  # a batch is written but its position not saved yet
        self.last_sweep = float("-inf")
        self.empty = 0  # empty reads of the stream in a row
        self.should_stop: Callable[[], bool] | None = None
        self.started = self.last_tick = 0.0
        self.retrier = Retrier(cfg.retry, role="target")
        # The reading thread's own: a throttled getMore is tried again in place (the
        # cursor lives on; a lost one resumes from the token, as pymongo does).
        self.read_retrier = Retrier(cfg.retry, role="source")
        self.token: dict[str, Any] = dict(position.token or {})
        saved = (state.changes or {}).get("resume_token")
        if saved is not None:  # where an earlier follow got to
            self.token = dict(from_ejson(saved))

    def run(self) -> FollowResult:
        cfg = self.cfg
        self.started = time.monotonic()
        caught_up = stopped = False
        with (
            connect(self.source.uri, role="source", timeouts=cfg.timeouts) as src,
            connect(self.target.uri, role="target", timeouts=cfg.timeouts) as dst,
        ):
            src_coll = src[self.source.db].get_collection(self.source.collection, RAW_OPTIONS)
            dst_coll = dst[self.target.db].get_collection(
                self.target.collection, RAW_OPTIONS, write_concern=FOLLOW_WRITES
            )
            try:
                with (
                    self._open(src_coll) as stream,
                    ReadAhead(self._batches(stream), 2, "vida-follow-reader") as reader,
                ):
                    while not (caught_up := self._step(reader, src_coll, dst_coll)):
                        if self.should_stop is not None and self.should_stop():
                            stopped = True
                            break
            except KeyboardInterrupt:
                if self.applying:
                    raise RunInterruptedError(
                        f"interrupted while applying a batch of changes to job '{cfg.job}': "
                        "the next `run --follow` applies it again (the same writes, by _id)"
                    ) from None
                stopped = True  # between batches: the last one was applied and saved
            except OperationFailure as exc:
                if exc.code in LOST_POSITION:
                    raise self._lost(exc) from None
                raise
        self.progress.seconds = time.monotonic() - self.started
        if self.on_progress:
            self.on_progress(self.progress)
        return FollowResult(cfg.job, self.progress, caught_up, stopped)

    def _open(self, coll: Any) -> Any:
        """The change stream from the saved position; a position gone is a ``StateError``."""
        try:
            return patient(
                lambda: open_stream(coll, self.position.cosmos, self.token, WAIT_MS),
                self.cfg.retry,
                "source",
            )
        except OperationFailure as exc:
            if exc.code in LOST_POSITION or "resume" in str(exc).lower():
                raise self._lost(exc) from None
            raise

    def _step(self, reader: Iterator[tuple[Batch, Any]], src: Any, dst: Any) -> bool:
        """Apply and save the next batch read; True when --until-caught-up is reached."""
        cfg = self.cfg
        batch, token = next(reader)
        if self.t is not None and self.t.filter is not None and batch.writes:
            self._filtered(batch, src)
        self._apply(batch, dst)
        self._save(token, batch)
        self.applying = False
        now = time.monotonic()
        self.progress.seconds = now - self.started
        if self.on_progress and now - self.last_tick >= self.tick:
            self.last_tick = now
            self.on_progress(self.progress)
        lag = self.progress.lag_s
        done = cfg.until_caught_up is not None and lag is not None and lag <= cfg.until_caught_up
        if lag == 0 and cfg.follow_deletes == "sweep":
            if done or now - self.last_sweep >= cfg.sweep_interval:
                self._sweep(src, dst)
        return done

    def _sweep(self, src: Any, dst: Any) -> None:
        """Delete what the source no longer holds (its stream may not say: Cosmos DB)."""
        self.last_sweep = time.monotonic()
        self.progress.swept += sweep_deletes(self.manifest, src, dst, self.retrier)

    def _batches(self, stream: Any) -> Iterator[tuple[Batch, Any]]:
        """Each next batch of the stream with its resume token right after it (read on
        the read-ahead thread while the one before is applied)."""
        while True:
            batch = self._read(stream)
            yield batch, stream.resume_token

    def _read(self, stream: Any) -> Batch:
        """Events until ``BATCH_EVENTS`` of them, or until the stream has none now (on the
        reading thread)."""
        batch = Batch()
        while batch.events < BATCH_EVENTS:
            event = self.read_retrier.call(stream.try_next)
            if event is None:
                break
            batch.add(event, self.t)
        return batch

    def _filtered(self, batch: Batch, src: Any) -> None:
        """A document the transform's filter no longer selects leaves the target: the
        source says which of the batch's documents match it now (one query)."""
        assert self.t is not None and self.t.filter is not None
        ids = batch.upserted_ids()
        query = {"$and": [self.t.filter, {"_id": {"$in": ids}}]}
        matching = self.retrier.call(
            lambda: {bytes(d.raw) for d in src.find(query, {"_id": 1}, batch_size=len(ids) + 1)}
        )
        batch.keep_only(matching)

    def _apply(self, batch: Batch, coll: Any) -> None:
        """The batch's writes, acknowledged and journaled; retried whole (idempotent)."""
        ops = list(batch.writes.values())
        if ops:
            self.applying = True
            self.retrier.call(lambda: coll.bulk_write(ops, ordered=False))
        p = self.progress
        p.events += batch.events
        p.applied += len(ops)
        p.upserts += batch.upserts
        p.deletes += batch.deletes
        p.skipped += batch.skipped
        p.batches += 1 if ops else 0
        if not batch.events:
            self.empty += 1
            if self.empty >= (COSMOS_EMPTY_READS if self.position.cosmos else 1):
                p.lag_s = 0.0  # nothing waiting: caught up
            return
        self.empty = 0
        # Cosmos DB's events carry no time: behind by an unknown amount until caught up.
        last = batch.last_at
        p.lag_s = None if last is None else max(0.0, time.time() - last)

    def _save(self, token: Any, batch: Batch) -> None:
        """The stream's position after the applied batch, in the run state."""
        if token is None or (not batch.events and dict(token) == self.token):
            return
        self.token = dict(token)
        changes = dict(self.state.changes or {})
        p = self.progress
        changes.update(
            resume_token=to_ejson(self.token),
            followed_at=now_iso(),
            applied=int(changes.get("applied", 0)) + len(batch.writes),
            events=int(changes.get("events", 0)) + batch.events,
            lag_s=p.lag_s,
        )
        self.state.changes = changes
        save_state(self.state, self.cfg.files.state)

    def _lost(self, exc: OperationFailure) -> StateError:
        taken = self.position.taken_at
        saved = (self.state.changes or {}).get("followed_at") or taken
        behind = datetime.datetime.now(datetime.UTC) - datetime.datetime.fromisoformat(saved)
        return StateError(
            f"the source no longer has the change-stream position of job '{self.cfg.job}', "
            f"{format_duration(behind.total_seconds())} behind (taken {taken}, last followed "
            f"{saved}; its change history has moved past it: "
            f"{describe_error(exc, self.source.uri)}): the changes since are lost to follow",
            fix="start the job over with --restart --follow",
        )
