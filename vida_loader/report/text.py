"""The text a user reads at the end of each command: plan, run, verify, status and
generate summaries, and the settings table. Pure formatting of library results."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from vida_loader.errors import format_duration
from vida_loader.indexes.definition import Action
from vida_loader.job.planned import job_command
from vida_loader.job.runstate import RunState, TaskKind, TaskState
from vida_loader.jobfiles import JobFiles
from vida_loader.transform.spec import TransformSpec

if TYPE_CHECKING:
    from collections.abc import Iterable

    from vida_loader.config import RunConfig
    from vida_loader.copy.coordinator import RunResult
    from vida_loader.copy.planner import PlanResult
    from vida_loader.dump.job import DumpOutcome
    from vida_loader.dump.restore import RestoreOutcome
    from vida_loader.follow.finalize import Finalized
    from vida_loader.follow.loop import FollowResult
    from vida_loader.generate.runner import GenerateConfig, GenerateResult
    from vida_loader.indexes.build import TargetIndexes
    from vida_loader.job.manifest import Manifest
    from vida_loader.job.status import JobStatus
    from vida_loader.ru.budget import BudgetPlan
    from vida_loader.settings.resolve import Settings
    from vida_loader.verify.counts import VerifyResult
    from vida_loader.verify.deep_job import DeepVerifyResult
    from vida_loader.verify.repair import RepairOutcome


def format_settings(s: Settings) -> str:
    """Every setting of a command, its value (passwords redacted) and where it came from."""
    rows = s.rows()
    width = max(len(r[0]) for r in rows)
    vwidth = min(60, max(len(r[1]) for r in rows))
    lines = [f"settings of `vida-loader {s.command}`:"]
    lines += [f"  {k:<{width}}  {v:<{vwidth}}  {o}" for k, v, o in rows]
    if s.files:
        lines.append(f"env files read: {', '.join(str(p) for p in s.files)}")
    if s.profile_path is not None:
        lines.append(f"profile '{s.profile}' read from {s.profile_path}")
    return "\n".join(lines)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def format_plan(result: PlanResult) -> str:
    """The one-screen summary of a plan."""
    m = result.manifest
    parts = m.partitions
    smallest = min(parts, key=lambda p: p.est_docs)
    largest = max(parts, key=lambda p: p.est_docs)
    count = m.stats["count"]
    sample = (
        "every _id read" if m.split["sample_exact"] else f"{m.split['sample_size']:,} sampled _ids"
    )
    size = m.split["partition_size_mb"]
    per = f"of ~{size:g} MB" if size else "requested"
    lines = [
        f"planned job '{m.job}' in {result.seconds:.1f} s -> {result.path}",
        f"  source      {m.source['uri']}  {m.source['db']}.{m.source['collection']}"
        f"  ({m.source['kind']})",
        f"  target      {m.target['uri']}  {m.target['db']}.{m.target['collection']}"
        f"  ({m.target['kind']})",
        f"  documents   {count:,}  ({sample})",
        f"  bytes       {format_bytes(m.stats['size_bytes'])}"
        f"  (avg {m.stats['avg_doc_bytes']:,.0f} B/doc)",
        f"  _id types   {', '.join(m.stats['id_brackets']) or 'none'}",
        f"  partitions  {len(parts)} {per}; range mode {m.split['range_mode']}"
        f" ({result.mode_reason})",
    ]
    if smallest.est_docs == largest.est_docs:
        each = f"~{largest.est_docs:,} docs ({format_bytes(largest.est_bytes)}) estimated"
        lines.append(f"  each        {each}")
    else:
        for label, p in (("smallest", smallest), ("largest", largest)):
            lines.append(f"  {label:<11} {p.id} ~{p.est_docs:,} docs ({format_bytes(p.est_bytes)})")
    if "ru" in m.stats:
        lines.append(_ru_estimate(m.stats["ru"], result.rate))
    lines += _index_decisions(m)
    if count == 0:
        lines.append("  the source collection is empty: one partition covers it")
    return "\n".join(lines)


def _index_decisions(m: Manifest) -> list[str]:
    """``indexes  4 to build after the data (1 adapted), 1 skipped`` and a line per
    index that was adapted, skipped or warned about, with the reason."""
    if m.indexes is None:
        return []
    build = [ix for ix in m.indexes if ix.action is Action.BUILD]
    skipped = [ix for ix in m.indexes if ix.action is Action.SKIP]
    adapted = sum(1 for ix in build if ix.adapted)
    head = f"  indexes     {len(build)} to build"
    head += f" ({adapted} adapted)" if adapted else ""
    head += f", {len(skipped)} skipped" if skipped else ""
    lines = [head + (" besides _id" if build or skipped else ": only _id")]
    for ix in m.indexes:
        if ix.action is Action.SKIP:
            lines.append(f"    skipped {ix.source.describe()}")
        elif ix.build is not None and ix.adapted:
            lines.append(f"    adapted {ix.source.describe()} -> {ix.build.describe()}")
        elif ix.notes:
            lines.append(f"    build   {ix.source.describe()}")
        lines += [f"      {note}" for note in ix.notes]
    return lines


def format_target_indexes(t: TargetIndexes, differences_only: bool = False) -> str:
    """``indexes list`` (every index and where it stands) or ``indexes diff`` (only what
    differs): the job's planned indexes against the target collection's."""
    m, diff = t.manifest, t.diff
    ns = f"{m.target['db']}.{m.target['collection']}"
    if differences_only and diff.clean:
        return f"target {ns} holds the {len(t.wanted)} indexes of job '{m.job}' as defined"
    head = f"indexes of job '{m.job}' on target {ns}: {len(t.wanted)} wanted"
    head += f" ({t.saved} the target's own, saved by --disable-indexes)" if t.saved else ""
    lines = [
        head + f"; {len(diff.same)} as defined, {len(diff.missing)} missing, "
        f"{len(diff.differ)} defined otherwise, {len(diff.extra)} not wanted"
    ]
    if not differences_only:
        lines += [f"  ok       {s.describe()}" for s in diff.same]
    lines += [f"  missing  {s.describe()}" for s in diff.missing]
    for wanted, there in diff.differ:
        lines.append(f"  differs  {wanted.describe()}; the target has {there.describe()}")
    lines += [f"  extra    {s.describe()} (on the target only)" for s in diff.extra]
    if not differences_only:
        for ix in m.indexes or ():
            if ix.action is Action.SKIP:
                lines.append(f"  skipped  {ix.source.describe()}: {'; '.join(ix.notes)}")
    return "\n".join(lines)


def _ru_estimate(ru: dict[str, Any], rate: BudgetPlan | None) -> str:
    """``RU  ~43,000 to read (1.05 RU/KB on 3 pages); ~0:00:15 at 2,850 RU/s (...)``."""
    text = (
        f"  RU          ~{ru['estimate_ru']:,} to read ({ru['ru_per_kb']:.2f} RU/KB measured "
        f"on {ru['pages_measured']} pages)"
    )
    seconds = rate.seconds_for(ru["estimate_ru"]) if rate is not None else None
    if rate is None or seconds is None:
        return text + "; the source does not tell its throughput: give --max-rus for a time"
    return text + f"; ~{format_duration(seconds)} at {rate.rate:,.0f} RU/s ({rate.why})"


def _transform_summary(result: RunResult) -> str:
    """The summary's line on the transform: what it kept out of the target, and where."""
    line = (
        f"  transform   {result.transform}: {result.dropped:,} documents dropped, "
        f"{result.rejected:,} rejected (at most {result.max_rejects:,})"
    )
    if result.rejected:
        line += f"; listed in {result.rejects_path}"
    return line


def _workers(cfg: RunConfig) -> str:
    """Where a run's tasks ran, for its summary."""
    if cfg.executor == "dask":
        return f"{cfg.jobs} tasks in flight on the Dask cluster at {cfg.scheduler}"
    return f"{cfg.jobs} ({'in-process' if cfg.jobs == 1 else 'processes'})"


def format_run(result: RunResult, cfg: RunConfig) -> str:
    """The end-of-run summary: counts, rates, repairs, failures, where the state is."""
    st = result.state
    total = len(st.partitions)
    secs = max(result.seconds, 1e-9)
    done = total - len(result.failed)
    if result.skipped == total and not result.index_builds:
        return (
            f"job '{st.job}' is complete: all {total} partitions were confirmed by earlier "
            f"runs, {result.confirmed_docs:,} documents; nothing to copy (give --restart "
            f"to copy it again, or check it with `{shlex.join(job_command('verify', cfg))}`)"
        )
    lines = [
        f"run of job '{st.job}' finished in {format_duration(result.seconds)}: "
        f"{done}/{total} partitions confirmed on the target",
        f"  documents   {result.read_docs:,} read by this run"
        f"  ({result.read_docs / secs:,.0f} docs/s), {result.confirmed_docs:,} confirmed"
        " on the target",
        f"  bytes       {format_bytes(result.read_bytes)}"
        f"  ({result.read_bytes / 1e6 / secs:,.1f} MB/s)",
        f"  workers     {_workers(cfg)}, write concern {cfg.write_concern}",
        f"  repaired    {result.repaired:,} documents re-sent with acknowledged writes",
        f"  duplicates  {result.duplicates:,} source documents share their _id with another"
        + (f" (listed in {result.duplicates_path})" if result.duplicates else ""),
        f"  retries     {result.retries:,} operations retried ({result.throttled:,} throttled,"
        f" {result.wait_s:,.1f} s waiting), {result.reruns} partition re-runs",
        f"  state       {result.state_path}",
    ]
    lines[-1:-1] = _ru_summary(result, secs)
    if st.runs > 1:
        lines.insert(
            3,
            f"  resumed     run {st.runs} of this job: {result.skipped} partitions confirmed "
            f"earlier were skipped, {result.resumed} continued from the target's last _id",
        )
    index_line = _index_summary(result, cfg)
    if index_line:
        lines.insert(-1, index_line)
    if result.transform is not None:
        lines.insert(-1, _transform_summary(result))
    for pid, error in result.failed:
        lines.append(f"  FAILED {pid}: {error}")
    for name, error in result.index_failures:
        lines.append(f"  FAILED index {name}: {error}")
    return "\n".join(lines)


def _ru_summary(result: RunResult, secs: float) -> list[str]:
    """The run summary's RU and budget lines, when the source was metered."""
    c = result.charges
    if c is None:
        return []
    read = (
        "every command's charge read"
        if c.read == c.commands
        else f"{c.read:,} of {c.commands:,} commands' charges read, the others estimated"
    )
    lines = [
        f"  RU          {c.ru:,.0f} request units charged by the source ({c.ru / secs:,.0f}"
        f" RU/s on average); {read}" + _against_plan(c.ru, result)
    ]
    if result.budget is not None:
        lines.append(
            f"  budget      {result.budget}; commands waited {c.paced_s:,.1f} s for it"
        )
    return lines


def format_index_build(result: RunResult, cfg: RunConfig) -> str:
    """The end of ``indexes build``: what is built, what failed, what waits for the data."""
    st = result.state
    lines = [
        f"index builds of job '{st.job}' finished in {format_duration(result.seconds)}",
        _index_summary(result, cfg),
    ]
    waiting = [r.name for r in st.indexes.values() if r.state is TaskState.PENDING]
    if waiting:
        lines.append(
            f"  waiting     {', '.join(waiting)}: TTL, built once the data is complete "
            f"(`{shlex.join(job_command('run', cfg))}`)"
        )
    lines += [f"  FAILED index {name}: {error}" for name, error in result.index_failures]
    lines.append(f"  state       {result.state_path}")
    return "\n".join(lines)


def _index_summary(result: RunResult, cfg: RunConfig) -> str:
    """``indexes     4/5 built (5 builds by this run in 0:00:03, 1 already there), 1 failed``."""
    recs = list(result.state.indexes.values())
    planned = result.manifest.index_builds()
    if cfg.indexes == "skip" and planned:
        return f"  indexes     not built (--indexes skip): {len(planned)} planned"
    if cfg.indexes == "skip":
        return ""
    if not recs:
        return "  indexes     none besides _id" if result.manifest.indexes is not None else ""
    done = [r for r in recs if r.done]
    there = sum(1 for r in done if r.existed)
    failed = result.state.count(TaskState.FAILED, TaskKind.INDEX)
    text = f"  indexes     {len(done)}/{len(recs)} built"
    if result.index_builds:
        text += f" ({result.index_builds} builds by this run in {format_duration(result.index_s)}"
        text += f", {there} already there)" if there else ")"
    text += f", {failed} failed" if failed else ""
    if len(done) + failed < len(recs):
        text += ", the rest after the data"
    return text


def _against_plan(ru: float, result: RunResult) -> str:
    """How the plan's estimate compares, when this run read the whole collection."""
    planned = result.manifest.stats.get("ru", {}).get("estimate_ru")
    whole = result.skipped == 0 and result.resumed == 0
    if not planned or not whole:
        return ""
    return f"; plan estimated {planned:,} ({ru / planned:.0%} of it spent)"


def format_verify(result: VerifyResult) -> str:
    m = result.manifest
    lines = [
        f"verify of job '{m.job}' in {format_duration(result.seconds)}: "
        f"{len(result.counts)} partitions, {result.source_total:,} documents in the source, "
        f"{result.target_total:,} in the target",
    ]
    if result.transform is not None:
        lines.append(
            f"  transformed by {result.transform}: each range is compared with what the run "
            "recorded (source read; target = read - dropped - rejected)"
        )
    for c in result.mismatches:
        if c.error:
            lines.append(f"  ERROR    {c.partition_id}: {c.error}")
            continue
        assert c.source is not None and c.target is not None
        if c.recorded is not None:
            r = c.recorded
            lines.append(
                f"  MISMATCH {c.partition_id}: source {c.source:,} (the run read {r.read:,}), "
                f"target {c.target:,} (expected {r.expected:,} = {r.read:,} read - "
                f"{r.dropped:,} dropped - {r.rejected:,} rejected)"
            )
            continue
        diff = c.source - c.target
        what = f"{diff:,} missing" if diff > 0 else f"{-diff:,} extra"
        lines.append(
            f"  MISMATCH {c.partition_id}: source {c.source:,}, target {c.target:,} ({what})"
        )
    if not result.mismatches:
        lines.append(f"  all {len(result.counts)} partitions match")
    return "\n".join(lines)


def format_finalized(done: Iterable[Finalized]) -> list[str]:
    """A line per index made final (or not) at the switch-over."""
    lines = []
    for f in done:
        what = ", ".join(
            "unique" if k == "unique" else f"TTL {v:,} s"
            for k, v in f.change.items()
            if k != "name"
        )
        if f.error is None:
            lines.append(f"  index       {f.name}: made final ({what})")
        else:
            lines.append(f"  index       {f.name}: NOT final: {f.error}")
    return lines


def format_follow(f: FollowResult) -> str:
    p = f.progress
    lag = "unknown" if p.lag_s is None else f"{p.lag_s:,.1f} s"
    how = "caught up" if f.caught_up else "stopped" if f.stopped else "ended"
    lines = [
        f"follow of job '{f.job}' {how} after {format_duration(p.seconds)}: {p.events:,} "
        f"changes read ({p.rate:,.1f}/s), {p.applied:,} writes applied ({p.upserts:,} "
        f"upserts, {p.deletes:,} deletes), {p.skipped:,} skipped"
        + (f", {p.swept:,} deleted by the sweep" if p.swept else ""),
        f"  behind      {lag} (the age of the last change applied)",
    ]
    lines += format_finalized(f.finalized)
    if f.caught_up:
        lines += [
            "  switch over now:",
            "    1. stop the application's writes to the source",
            "    2. run the same command again until it says 0.0 s behind",
            "    3. vida-loader verify (or verify --deep) to prove the target",
            "    4. point the application at the target",
        ]
    return "\n".join(lines)


def format_deep_verify(result: DeepVerifyResult) -> str:
    rnd = result.round
    t = result.total
    scope = f"{len(result.records)} partitions"
    if rnd.sample is not None:
        scope = (
            f"{len(result.records)} of {rnd.of} partitions "
            f"({rnd.sample:g}% sample, seed {rnd.seed})"
        )
    lines = [
        f"deep verify of job '{result.manifest.job}' in {format_duration(result.seconds)}: "
        f"{scope}, {t('source_docs'):,} source documents compared with "
        f"{t('target_docs'):,} target documents byte for byte",
    ]
    if result.continued:
        lines.append(
            f"  continued round {rnd.number}: {result.continued} partitions compared before"
        )
    if result.transform is not None:
        lines.append(f"  the source went through transform {result.transform} first")
    if result.metered:
        lines.append(f"  RU          {result.total_ru:,.0f} request units charged by the source")
    for pid, r in result.records.items():
        if not r.done:
            lines.append(f"  ERROR    {pid}: {r.error}")
        elif r.differences:
            lines.append(
                f"  DIFFERS  {pid}: {r.missing:,} missing, {r.extra:,} extra, "
                f"{r.altered:,} altered"
                + (f" (first {r.listed:,} listed)" if r.listed < r.differences else "")
            )
    if rnd.recheck_s and t("cleared"):
        lines.append(
            f"  {t('cleared'):,} differences were gone when read again after "
            f"{rnd.recheck_s:g} s (not counted)"
        )
    if result.matches:
        lines.append(f"  all {t('matched'):,} documents are the same on both sides")
    else:
        lines.append(
            f"  {t('missing'):,} missing, {t('extra'):,} extra, {t('altered'):,} altered: "
            f"listed in '{result.mismatches_path}'; `vida-loader repair` fixes them from the source"
        )
    return "\n".join(lines)


def format_repair(r: RepairOutcome) -> str:
    lines = [
        f"repair of job '{r.job}' in {format_duration(r.seconds)}: {r.listed:,} documents "
        f"listed by the last deep verify",
        f"  {r.inserted:,} inserted, {r.replaced:,} replaced, {r.deleted:,} deleted, "
        f"{r.already_right:,} already the same on both sides",
    ]
    if r.transform is not None:
        lines.append(f"  from the source through transform {r.transform}")
    if r.extra_left:
        lines.append(
            f"  {r.extra_left:,} target documents the source lacks were left: "
            "--delete-extra deletes them"
        )
    if r.left:
        lines.append(f"  {len(r.left):,} still differ: listed in '{r.mismatches_path}'")
    else:
        lines.append("  every listed document is now the same on both sides")
    return "\n".join(lines)


def format_status(st: JobStatus) -> str:
    m = st.manifest
    total = len(m.partitions)
    planned = int(m.stats.get("count", 0))
    if st.state is None:
        return "\n".join(
            [
                f"job '{m.job}': planned ({total} partitions, ~{planned:,} documents), not run yet",
                f"  start       {st.command}",
            ]
        )
    state = st.state
    done = st.count(TaskState.DONE)
    if st.holder is not None:
        where = "" if st.holder_alive else " (another host: cannot check that it runs)"
        now = f"running now: {st.holder.describe()}{where}"
    elif st.complete:
        now = "complete"
    else:
        now = "stopped"
    share = f" ({st.confirmed_docs / planned:.0%})" if planned else ""
    counts = ", ".join(f"{s.value} {st.count(s)}" for s in TaskState)
    recs = state.partitions.values()
    lines = [
        f"job '{m.job}': {done}/{total} partitions confirmed, {now}",
        f"  partitions  {counts}",
        f"  documents   {st.confirmed_docs:,} confirmed on the target of ~{planned:,} "
        f"planned{share}",
        f"  bytes       {format_bytes(state.confirmed_bytes())} confirmed",
        f"  repaired    {sum(r.repaired for r in recs):,} documents; "
        f"{sum(r.resumes for r in recs)} partitions continued after an interruption",
        f"  runs        {state.runs}; started {state.started_at}, last saved "
        f"{state.updated_at}" + (f", finished {state.finished_at}" if state.finished_at else ""),
        f"  state       {st.state_path}",
    ]
    _insert_status_details(lines, st, state)
    lines += _follow_status(state)
    lines += _verify_status(st)
    lines += _failed_tasks(state)
    if st.complete:
        lines.append(f"  check       {shlex.join(job_command('verify', st.config))}")
    elif st.holder is None:
        lines.append(f"  continue    {st.command}")
    return "\n".join(lines)


def _insert_status_details(lines: list[str], st: JobStatus, state: RunState) -> None:
    """The lines of `status` that only some jobs have, each in its place among ``lines``:
    RU, partitions in flight or interrupted, indexes, the transform."""
    ru = sum(r.ru for r in state.partitions.values())
    if ru:
        lines.insert(-1, f"  RU          {ru:,.0f} request units charged by the source, all runs")
    running = st.count(TaskState.RUNNING)
    if running and st.holder is not None:
        lines.insert(
            3, f"  in flight   {st.running_docs:,} documents read by {running} running partitions"
        )
    elif running:
        lines.insert(
            2,
            f"  interrupted {running} partitions were running when the last run "
            "stopped: the next run continues them",
        )
    if state.indexes:
        lines.insert(-1, _index_status(state))
    if state.transform:
        dropped, rejected = state.refused()
        spec = TransformSpec.from_json(state.transform)
        listed = JobFiles.of_folder(st.state_path.parent).rejects
        lines.insert(
            -1,
            f"  transform   {spec.describe()}: {dropped:,} documents dropped, {rejected:,} "
            "rejected" + (f" (listed in {listed})" if rejected else ""),
        )


def _follow_status(state: RunState) -> list[str]:
    """The change-stream position taken before the copy, and what a follow applied."""
    c = state.changes
    if not c:
        return []
    if c.get("token") is None:
        return [f"  changes     no change-stream position ({c.get('error')}): --follow impossible"]
    if c.get("followed_at") is None:
        return [f"  changes     position taken {c['taken_at']}: `run --follow` replays from there"]
    lag = c.get("lag_s")
    behind = "unknown" if lag is None else f"{lag:,.1f} s behind"
    return [
        f"  followed    {int(c.get('events', 0)):,} changes read, {int(c.get('applied', 0)):,} "
        f"writes applied; last at {c['followed_at']}, {behind}"
    ]


def _verify_status(st: JobStatus) -> list[str]:
    """The last verify, a deep one under way or interrupted, and the repair after it."""
    lines = []
    last, deep = st.last_verify, st.deep_round
    if last is not None and not last.get("deep"):
        bad = len(last.get("mismatches", []))
        verdict = "counts match" if last.get("matches") else f"counts differ in {bad}"
        lines.append(
            f"  verified    {last['time']}: {verdict} of {last['partitions']} partitions "
            f"(source {last['source_docs']:,}, target {last['target_docs']:,} documents)"
        )
    if deep is None:
        return lines
    found = deep["missing"] + deep["extra"] + deep["altered"]
    scope = f"{deep['compared']}/{deep['partitions']} partitions"
    if deep["sample"] is not None:
        scope += f" ({deep['sample']:g}% sample of {deep['of']}, seed {deep['seed']})"
    if deep["finished_at"] is None:
        how = (
            "running now" if st.holder is not None else "interrupted: `verify --deep` continues it"
        )
        lines.append(
            f"  deep verify round {deep['round']}, {how}: {scope} compared, "
            f"{found:,} differences so far"
        )
    else:
        verdict = (
            f"all {deep['matched']:,} documents the same"
            if not found
            else f"{deep['missing']:,} missing, {deep['extra']:,} extra, "
            f"{deep['altered']:,} altered"
        )
        lines.append(f"  deep verify {deep['finished_at']}: {scope}, {verdict}")
    repair = deep.get("repair")
    if repair is not None:
        fixed = repair["inserted"] + repair["replaced"] + repair["deleted"]
        lines.append(
            f"  repaired    {repair['time']}: {fixed:,} documents fixed, {repair['left']:,} "
            "still differ"
            + (f" ({repair['extra_left']:,} extra kept)" if repair["extra_left"] else "")
        )
    return lines


def _failed_tasks(state: RunState) -> list[str]:
    """``FAILED p00003 after 3 attempts: ...`` per failed task, partitions first."""
    lines = [
        f"  FAILED {pid} after {rec.attempts} attempts: {rec.error}"
        for pid, rec in state.partitions.items()
        if rec.state is TaskState.FAILED
    ]
    return lines + [
        f"  FAILED index {rec.name} after {rec.attempts} attempts: {rec.error}"
        for rec in state.indexes.values()
        if rec.state is TaskState.FAILED
    ]


def _index_status(state: RunState) -> str:
    """``indexes     3/5 built (0:00:04 of build time, all runs), 1 failed; building k_1``."""
    recs = list(state.indexes.values())
    done = state.count(TaskState.DONE, TaskKind.INDEX)
    took = format_duration(sum(r.seconds for r in recs))
    text = f"  indexes     {done}/{len(recs)} built ({took} of build time, all runs)"
    for word in (TaskState.FAILED, TaskState.PENDING):
        n = state.count(word, TaskKind.INDEX)
        text += f", {n} {word.value}" if n else ""
    building = [r.name for r in recs if r.state is TaskState.RUNNING]
    return text + (f"; building {', '.join(building)}" if building else "")


def format_generated(result: GenerateResult, cfg: GenerateConfig) -> str:
    """The end-of-generate summary."""
    secs = max(result.seconds, 1e-9)
    where = f"'{cfg.out}'" if cfg.out not in (None, "-") else "stdout"
    if cfg.target is not None:
        where = f"{cfg.target.namespace} (write concern {cfg.write_concern})"
    lines = [
        f"generated {result.docs:,} of {result.total:,} {cfg.source} documents into {where} "
        f"in {format_duration(result.seconds)}",
        f"  rate        {result.docs / secs:,.0f} docs/s, {result.bytes / 1e6 / secs:,.1f} MB/s,"
        f" {format_bytes(result.bytes)} in all, {result.jobs} "
        f"{'process' if result.jobs == 1 else 'processes'}",
        f"  seed        {result.seed} (pass --seed {result.seed} to generate the same documents)",
    ]
    if cfg.target is not None:
        lines.append(
            f"  confirmed   every document is on the target; {result.repaired:,} re-sent after "
            f"unacknowledged writes vanished, {result.already_there:,} were already there"
        )
        lines.append(
            f"  batches     up to {cfg.batch_size:,} documents or {cfg.batch_mb:g} MB per insert"
        )
        lines.append(
            f"  retries     {result.retries:,} operations retried ({result.throttled:,} "
            f"throttled, {result.wait_s:,.1f} s waiting)"
        )
    return "\n".join(lines)


def format_dump(d: DumpOutcome) -> str:
    docs, nbytes = int(d.total("docs")), int(d.total("bytes"))
    rate = nbytes / d.seconds if d.seconds > 0 else 0.0
    lines = [
        f"dump of {d.files.db}.{d.files.collection} (job '{d.manifest.job}') in "
        f"{format_duration(d.seconds)}: {docs:,} documents, {format_bytes(nbytes)} "
        f"({format_bytes(rate)}/s), {len(d.records)} partitions"
        + (f", {d.continued} written by an earlier attempt" if d.continued else ""),
    ]
    if d.complete:
        lines.append(f"  {d.files.bson}  {format_bytes(d.file_bytes)}")
        lines.append(f"  {d.files.metadata}")
    else:
        lines.append(
            f"  {len(d.failed)} partitions failed ({', '.join(d.failed[:5])}"
            f"{' ...' if len(d.failed) > 5 else ''}): the parts written so far stay in "
            f"'{d.files.work}'"
        )
        first = d.records[d.failed[0]].error
        if first:
            lines.append(f"  {d.failed[0]}: {first}")
    if d.metered:
        lines.append(f"  {d.total('ru'):,.0f} RU charged by the source")
    return "\n".join(lines)


def format_restore(r: RestoreOutcome) -> str:
    docs, nbytes = r.total("docs"), r.total("bytes")
    rate = nbytes / r.seconds if r.seconds > 0 else 0.0
    ranges = r.state.restores
    lines = [
        f"restore of '{r.source.bson}' into {r.target.namespace} (job '{r.state.job}') in "
        f"{format_duration(r.seconds)}: {docs:,} documents, {format_bytes(nbytes)} "
        f"({format_bytes(rate)}/s), {len(ranges)} ranges"
        + (f", {r.continued} restored by an earlier attempt" if r.continued else ""),
        f"  {r.total('inserted'):,} inserted, {r.total('already_there'):,} already there"
        + (" (dropped first)" if r.state.dropped else ""),
    ]
    idx = r.state.indexes
    if idx:
        built = sum(1 for x in idx.values() if x.done)
        lines.append(
            f"  indexes     {built} of {len(idx)} built ({', '.join(x.name for x in idx.values())})"
        )
    for note in r.state.index_notes:
        lines.append(f"  {note}")
    for tid in r.failed[:5]:
        lines.append(f"  {tid} failed: {r.state.tasks[tid].error}")
    if r.bad_at is not None:
        scan = r.state.scan or {}
        lines.append(
            f"  the file is cut short or corrupt at byte offset {r.bad_at:,} "
            f"({scan.get('bad_reason')}); the {scan.get('docs', 0):,} whole documents before "
            "it were restored"
        )
    return "\n".join(lines)
