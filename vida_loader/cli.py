"""The command line: a thin click layer over the library.

Parses flags, calls the library, prints, and turns every ``VidaError`` into one line
on stderr with its exit code. Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from vida_loader import __version__
from vida_loader.config import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BATCH_DOCS,
    DEFAULT_BATCH_MB,
    DEFAULT_JOBS,
    DEFAULT_MANIFEST_DIR,
    DEFAULT_WRITE_CONCERN,
    MAX_BATCH_MB,
    Endpoint,
    JobConfig,
    PlanConfig,
    RunConfig,
    VerifyConfig,
    default_job_name,
)
from vida_loader.coordinator import (
    RunResult,
    continue_command,
    job_command,
    resolve_job,
    run_job,
)
from vida_loader.errors import EXIT_FAILED, EXIT_USAGE, UsageError, VidaError
from vida_loader.generate import sources
from vida_loader.generate.runner import GenerateConfig, GenerateResult, default_jobs
from vida_loader.generate.runner import generate as run_generate
from vida_loader.generate.sources import DEFAULT_SOURCE
from vida_loader.mongo import WRITE_CONCERNS
from vida_loader.planner import PlanResult, plan_job
from vida_loader.progress import (
    DEFAULT_INTERVAL,
    ProgressPrinter,
    format_duration,
    format_generate,
)
from vida_loader.retry import DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_WINDOW_S, RetryPolicy
from vida_loader.status import JobStatus, job_status
from vida_loader.verify import VerifyResult, verify_job
from vida_loader.worker import PartitionState

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vida-loader")
@click.option("--debug", is_flag=True, envvar="VIDA_DEBUG", help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """Copy huge MongoDB-API collections in parallel, resumably, and prove nothing was lost."""
    # --debug is acted on in main(), which is where errors are turned into lines.


def _endpoint_options(side: str) -> list[click.Option]:
    up = side.upper()
    return [
        click.Option(
            [f"--{side}-uri"],
            envvar=f"VIDA_{up}_URI",
            metavar="URI",
            help=f"MongoDB URI of the {side} (credentials are never stored) [VIDA_{up}_URI]",
        ),
        click.Option(
            [f"--{side}-db"],
            envvar=f"VIDA_{up}_DB",
            metavar="DB",
            help=f"{side.capitalize()} database [VIDA_{up}_DB]",
        ),
        click.Option(
            [f"--{side}-collection"],
            envvar=f"VIDA_{up}_COLLECTION",
            metavar="NAME",
            help=f"{side.capitalize()} collection [VIDA_{up}_COLLECTION]",
        ),
    ]


MANIFEST_DIR_OPTION: dict[str, Any] = {
    "envvar": "VIDA_MANIFEST_DIR",
    "type": click.Path(path_type=Path),
    "default": DEFAULT_MANIFEST_DIR,
    "show_default": True,
    "help": "Folder holding one sub-folder per job [VIDA_MANIFEST_DIR]",
}


def jobs_option(what: str, default: int | Callable[[], int] = DEFAULT_JOBS) -> Callable[[F], F]:
    """``-j/--jobs``; ``what`` says what runs in parallel."""
    return click.option(
        "-j",
        "--jobs",
        envvar="VIDA_JOBS",
        type=click.IntRange(min=1),
        default=default,
        show_default="the cores this process may use" if callable(default) else True,
        help=f"{what} [VIDA_JOBS]",
    )


def with_endpoints(f: click.Command) -> click.Command:
    f.params[:0] = _endpoint_options("source") + _endpoint_options("target")
    return f


def with_target(f: click.Command) -> click.Command:
    f.params[:0] = _endpoint_options("target")
    return f


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


@with_endpoints
@cli.command()
@click.option(
    "--job",
    envvar="VIDA_JOB",
    metavar="NAME",
    help="Job name [default: <source-db>.<source-collection>] [VIDA_JOB]",
)
@click.option("--manifest-dir", **MANIFEST_DIR_OPTION)
@click.option(
    "--partitions",
    envvar="VIDA_PARTITIONS",
    type=click.IntRange(min=1),
    help="Number of partitions (excludes --partition-size-mb) [VIDA_PARTITIONS]",
)
@click.option(
    "--partition-size-mb",
    envvar="VIDA_PARTITION_SIZE_MB",
    type=click.FloatRange(min=0, min_open=True),
    help="Target partition size in MB [default: 64] [VIDA_PARTITION_SIZE_MB]",
)
@click.option(
    "--range-mode",
    envvar="VIDA_RANGE_MODE",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "minmax", "typed"]),
    help="typed: $gte/$lt per BSON type; minmax: find().min().max() across types; "
    "auto: probe and pick [VIDA_RANGE_MODE]",
)
@click.option(
    "--replan",
    is_flag=True,
    envvar="VIDA_REPLAN",
    help="Replace the manifest of an already planned job [VIDA_REPLAN]",
)
def plan(
    source_uri: str | None,
    source_db: str | None,
    source_collection: str | None,
    target_uri: str | None,
    target_db: str | None,
    target_collection: str | None,
    job: str | None,
    manifest_dir: Path,
    partitions: int | None,
    partition_size_mb: float | None,
    range_mode: str,
    replan: bool,
) -> int:
    """Split the source collection into _id ranges and write the job's manifest."""
    source_db = source_db or ""
    source_collection = source_collection or ""
    cfg = PlanConfig(
        source=Endpoint(source_uri or "", source_db, source_collection),
        target=Endpoint(target_uri or "", target_db or "", target_collection or ""),
        job=job or default_job_name(source_db, source_collection),
        manifest_dir=manifest_dir,
        partitions=partitions,
        partition_size_mb=partition_size_mb,
        range_mode=range_mode,
        replan=replan,
    )
    result = plan_job(cfg, progress=lambda msg: click.echo(f"plan: {msg}", err=True))
    click.echo(format_plan(result))
    return 0


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
        f"  bytes       {_fmt_bytes(m.stats['size_bytes'])}"
        f"  (avg {m.stats['avg_doc_bytes']:,.0f} B/doc)",
        f"  _id types   {', '.join(m.stats['id_brackets']) or 'none'}",
        f"  partitions  {len(parts)} {per}; range mode {m.split['range_mode']}"
        f" ({result.mode_reason})",
    ]
    if smallest.est_docs == largest.est_docs:
        lines.append(
            f"  each        ~{largest.est_docs:,} docs ({_fmt_bytes(largest.est_bytes)}) estimated"
        )
    else:
        for label, p in (("smallest", smallest), ("largest", largest)):
            lines.append(f"  {label:<11} {p.id} ~{p.est_docs:,} docs ({_fmt_bytes(p.est_bytes)})")
    if count == 0:
        lines.append("  the source collection is empty: one partition covers it")
    return "\n".join(lines)


def _job_options(f: click.Command) -> click.Command:
    f.params[:0] = [
        click.Option(
            ["--job"],
            envvar="VIDA_JOB",
            metavar="NAME",
            help="Job to use [default: the only job in --manifest-dir] [VIDA_JOB]",
        ),
        click.Option(["--manifest-dir"], **MANIFEST_DIR_OPTION),
    ]
    return f


def _uri_options(f: click.Command) -> click.Command:
    f.params[:0] = [
        click.Option(
            [f"--{side}-uri"],
            envvar=f"VIDA_{side.upper()}_URI",
            metavar="URI",
            help=f"{side.capitalize()} URI with credentials [default: the planned one, "
            f"which holds none] [VIDA_{side.upper()}_URI]",
        )
        for side in ("source", "target")
    ]
    return f


# Options shared by run and generate.
BATCH_SIZE_OPTION = click.option(
    "--batch-size",
    envvar="VIDA_BATCH_SIZE",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_DOCS,
    show_default=True,
    help="Most documents per read and per write batch [VIDA_BATCH_SIZE]",
)
BATCH_MB_OPTION = click.option(
    "--batch-mb",
    envvar="VIDA_BATCH_MB",
    type=click.FloatRange(min=0, max=MAX_BATCH_MB, min_open=True),
    default=DEFAULT_BATCH_MB,
    show_default=True,
    help="Most megabytes per write batch (Cosmos DB allows 2) [VIDA_BATCH_MB]",
)
RETRY_ATTEMPTS_OPTION = click.option(
    "--retry-attempts",
    envvar="VIDA_RETRY_ATTEMPTS",
    type=click.IntRange(min=0),
    default=DEFAULT_RETRY_ATTEMPTS,
    show_default=True,
    help="Failures in a row (throttled, network, restart) one read or write may meet "
    "before its partition (generate: slice) fails; progress resets the count "
    "[VIDA_RETRY_ATTEMPTS]",
)
RETRY_WINDOW_OPTION = click.option(
    "--retry-window",
    envvar="VIDA_RETRY_WINDOW",
    type=click.FloatRange(min=0),
    default=DEFAULT_RETRY_WINDOW_S,
    show_default=True,
    metavar="SECONDS",
    help="How long a server may keep failing (restart, failover, throttling) before a "
    "partition (generate: slice) fails and the run ends with the resume command "
    "[VIDA_RETRY_WINDOW]",
)
PROGRESS_INTERVAL_OPTION = click.option(
    "--progress-interval",
    envvar="VIDA_PROGRESS_INTERVAL",
    type=click.FloatRange(min=0),
    default=DEFAULT_INTERVAL,
    show_default=True,
    help="Seconds between progress lines when stderr is not a terminal [VIDA_PROGRESS_INTERVAL]",
)


@_uri_options
@_job_options
@cli.command()
@jobs_option("Worker processes (1: one worker inside this process)")
@click.option(
    "--write-concern",
    envvar="VIDA_WRITE_CONCERN",
    type=click.Choice(WRITE_CONCERNS),
    default=DEFAULT_WRITE_CONCERN,
    show_default=True,
    help="Write concern of the copy: 1 confirms each partition by the write results, "
    "0 (unacknowledged) by counting its range on the target [VIDA_WRITE_CONCERN]",
)
@BATCH_SIZE_OPTION
@BATCH_MB_OPTION
@click.option(
    "--attempts",
    envvar="VIDA_ATTEMPTS",
    type=click.IntRange(min=1),
    default=DEFAULT_ATTEMPTS,
    show_default=True,
    help="Tries per partition when it fails for a passing reason [VIDA_ATTEMPTS]",
)
@RETRY_ATTEMPTS_OPTION
@RETRY_WINDOW_OPTION
@click.option(
    "--restart",
    is_flag=True,
    envvar="VIDA_RESTART",
    help="Start the job over, forgetting which partitions are confirmed [VIDA_RESTART]",
)
@click.option(
    "--drop-target",
    is_flag=True,
    envvar="VIDA_DROP_TARGET",
    help="Drop the target collection (and its indexes) before a fresh start [VIDA_DROP_TARGET]",
)
@click.option(
    "--append",
    is_flag=True,
    envvar="VIDA_APPEND",
    help="Start fresh although the target collection holds documents [VIDA_APPEND]",
)
@PROGRESS_INTERVAL_OPTION
def run(
    source_uri: str | None,
    target_uri: str | None,
    job: str | None,
    manifest_dir: Path,
    jobs: int,
    write_concern: str,
    batch_size: int,
    batch_mb: float,
    attempts: int,
    retry_attempts: int,
    retry_window: float,
    restart: bool,
    drop_target: bool,
    append: bool,
    progress_interval: float,
) -> int:
    """Copy every partition of a planned job and confirm each one on the target.

    A job that ran before continues: confirmed partitions are skipped, the others go on
    from what the target already holds. A fresh start refuses a target collection that
    holds documents unless --drop-target or --append says what to do with them.
    """
    cfg = RunConfig(
        job=resolve_job(manifest_dir, job),
        manifest_dir=manifest_dir,
        source_uri=source_uri,
        target_uri=target_uri,
        jobs=jobs,
        write_concern=write_concern,
        batch_docs=batch_size,
        batch_mb=batch_mb,
        attempts=attempts,
        retry_attempts=retry_attempts,
        retry_window_s=retry_window,
        restart=restart,
        drop_target=drop_target,
        append=append,
    )
    printer = ProgressPrinter(sys.stderr, interval=progress_interval)
    previous = signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    try:
        result = run_job(cfg, on_progress=printer, notify=_notice)
    finally:
        signal.signal(signal.SIGTERM, previous)
        printer.finish()
    click.echo(format_run(result, cfg))
    failed = result.failed
    if failed and result.outage:
        done = len(result.state.partitions) - len(failed)
        click.echo(
            f"vida-loader: the {result.outage} stayed unreachable for longer than "
            f"--retry-window ({cfg.retry_window_s:g} s): run stopped with {done} of "
            f"{len(result.state.partitions)} partitions confirmed; once it is back, "
            f"continue with: {continue_command(cfg, manifest=result.manifest)}",
            err=True,
        )
        return EXIT_FAILED
    if failed:
        first_pid, first_error = failed[0]
        click.echo(
            f"vida-loader: {len(failed)} of {len(result.state.partitions)} partitions failed "
            f"({first_pid}: {first_error}); fix the cause, then continue with: "
            f"{continue_command(cfg, manifest=result.manifest)}",
            err=True,
        )
        return EXIT_FAILED
    if result.duplicates:
        click.echo(
            f"vida-loader: the source holds {result.duplicates:,} documents whose _id another "
            "document also has (a sharded Cosmos DB collection keeps _id unique per shard key "
            "only); the target holds one document per _id; every copy is listed in "
            f"'{result.duplicates_path}'",
            err=True,
        )
        return EXIT_FAILED
    return 0


def _notice(message: str) -> None:
    click.echo(f"vida-loader: notice: {message}", err=True)


def _stop_like_ctrl_c(_signum: int, _frame: object) -> None:
    """SIGTERM (systemd, Kubernetes, `kill`) stops a run the way Ctrl-C does."""
    raise KeyboardInterrupt


def format_run(result: RunResult, cfg: RunConfig) -> str:
    """The end-of-run summary: counts, rates, repairs, failures, where the state is."""
    st = result.state
    total = len(st.partitions)
    secs = max(result.seconds, 1e-9)
    done = total - len(result.failed)
    if result.skipped == total:
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
        f"  bytes       {_fmt_bytes(result.read_bytes)}"
        f"  ({result.read_bytes / 1e6 / secs:,.1f} MB/s)",
        f"  workers     {cfg.jobs} ({'in-process' if cfg.jobs == 1 else 'processes'}),"
        f" write concern {cfg.write_concern}",
        f"  repaired    {result.repaired:,} documents re-sent with acknowledged writes",
        f"  duplicates  {result.duplicates:,} source documents share their _id with another"
        + (f" (listed in {result.duplicates_path})" if result.duplicates else ""),
        f"  retries     {result.retries:,} operations retried ({result.throttled:,} throttled,"
        f" {result.wait_s:,.1f} s waiting), {result.reruns} partition re-runs",
        f"  state       {result.state_path}",
    ]
    if st.runs > 1:
        lines.insert(
            3,
            f"  resumed     run {st.runs} of this job: {result.skipped} partitions confirmed "
            f"earlier were skipped, {result.resumed} continued from the target's last _id",
        )
    for pid, error in result.failed:
        lines.append(f"  FAILED {pid}: {error}")
    return "\n".join(lines)


@_uri_options
@_job_options
@cli.command()
@jobs_option("Partitions counted at the same time")
def verify(
    source_uri: str | None,
    target_uri: str | None,
    job: str | None,
    manifest_dir: Path,
    jobs: int,
) -> int:
    """Count every partition's range on source and target; exit 0 only when all match."""
    cfg = VerifyConfig(
        job=resolve_job(manifest_dir, job),
        manifest_dir=manifest_dir,
        source_uri=source_uri,
        target_uri=target_uri,
        jobs=jobs,
    )
    printer = ProgressPrinter(
        sys.stderr, prefix="verify: ", formatter=lambda d: f"{d[0]}/{d[1]} partitions counted"
    )
    try:
        result = verify_job(cfg, on_progress=lambda done, total: printer((done, total)))
    finally:
        printer.finish()
    click.echo(format_verify(result))
    bad = result.mismatches
    if bad:
        click.echo(
            f"vida-loader: {len(bad)} of {len(result.counts)} partitions do not match: "
            f"{', '.join(c.partition_id for c in bad[:10])}{' ...' if len(bad) > 10 else ''}",
            err=True,
        )
        return EXIT_FAILED
    return 0


def format_verify(result: VerifyResult) -> str:
    m = result.manifest
    lines = [
        f"verify of job '{m.job}' in {format_duration(result.seconds)}: "
        f"{len(result.counts)} partitions, {result.source_total:,} documents in the source, "
        f"{result.target_total:,} in the target",
    ]
    for c in result.mismatches:
        if c.error:
            lines.append(f"  ERROR    {c.partition_id}: {c.error}")
            continue
        assert c.source is not None and c.target is not None
        diff = c.source - c.target
        what = f"{diff:,} missing" if diff > 0 else f"{-diff:,} extra"
        lines.append(
            f"  MISMATCH {c.partition_id}: source {c.source:,}, target {c.target:,} ({what})"
        )
    if not result.mismatches:
        lines.append(f"  all {len(result.counts)} partitions match")
    return "\n".join(lines)


@_job_options
@cli.command()
def status(job: str | None, manifest_dir: Path) -> int:
    """Show a job's progress from its files: partitions per state, documents, repairs,
    failures, whether a run holds it now, and the command that continues it."""
    cfg = JobConfig(job=resolve_job(manifest_dir, job), manifest_dir=manifest_dir)
    click.echo(format_status(job_status(cfg)))
    return 0


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
    done = st.count(PartitionState.DONE)
    if st.holder is not None:
        where = "" if st.holder_alive else " (another host: cannot check that it runs)"
        now = f"running now: {st.holder.describe()}{where}"
    elif st.complete:
        now = "complete"
    else:
        now = "stopped"
    share = f" ({st.confirmed_docs / planned:.0%})" if planned else ""
    counts = ", ".join(f"{s.value} {st.count(s)}" for s in PartitionState)
    recs = state.partitions.values()
    lines = [
        f"job '{m.job}': {done}/{total} partitions confirmed, {now}",
        f"  partitions  {counts}",
        f"  documents   {st.confirmed_docs:,} confirmed on the target of ~{planned:,} "
        f"planned{share}",
        f"  bytes       {_fmt_bytes(state.confirmed_bytes())} confirmed",
        f"  repaired    {sum(r.repaired for r in recs):,} documents; "
        f"{sum(r.resumes for r in recs)} partitions continued after an interruption",
        f"  runs        {state.runs}; started {state.started_at}, last saved "
        f"{state.updated_at}" + (f", finished {state.finished_at}" if state.finished_at else ""),
        f"  state       {st.state_path}",
    ]
    running = st.count(PartitionState.RUNNING)
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
    for pid, rec in state.partitions.items():
        if rec.state is PartitionState.FAILED:
            lines.append(f"  FAILED {pid} after {rec.attempts} attempts: {rec.error}")
    if st.complete:
        lines.append(f"  check       {shlex.join(job_command('verify', st.config))}")
    elif st.holder is None:
        lines.append(f"  continue    {st.command}")
    return "\n".join(lines)


@with_target
@cli.command()
@click.option(
    "--total",
    envvar="VIDA_TOTAL",
    type=click.IntRange(min=1),
    metavar="N",
    help="Documents to generate [VIDA_TOTAL]",
)
@jobs_option("Generating processes (1: inside this process)", default=default_jobs)
@click.option(
    "--source",
    "source_spec",
    envvar="VIDA_GENERATE_SOURCE",
    default=DEFAULT_SOURCE,
    show_default=True,
    metavar="NAME",
    help="A built-in generator (--list-generators), a JSON template FILE.json (shipped: "
    "--list-templates) or a Python plugin FILE.py[:Class]; see docs/templates.md "
    "[VIDA_GENERATE_SOURCE]",
)
@click.option(
    "--seed",
    envvar="VIDA_SEED",
    type=click.IntRange(min=0, max=2**63 - 1),
    help="Same seed, same documents, whatever -j [default: random, printed at the end] [VIDA_SEED]",
)
@click.option(
    "--out",
    envvar="VIDA_OUT",
    metavar="FILE.bson|-",
    help="Write a mongodump-style .bson file (documents back to back; - for stdout) "
    "instead of a collection [VIDA_OUT]",
)
@click.option(
    "--write-concern",
    envvar="VIDA_WRITE_CONCERN",
    type=click.Choice(WRITE_CONCERNS),
    default=DEFAULT_WRITE_CONCERN,
    show_default=True,
    help="1: each slice confirmed by the write results; 0: unacknowledged, then the "
    "target is asked for every _id and what vanished is sent again [VIDA_WRITE_CONCERN]",
)
@click.option(
    "--drop-target",
    is_flag=True,
    envvar="VIDA_DROP_TARGET",
    help="Drop the target collection first [VIDA_DROP_TARGET]",
)
@BATCH_SIZE_OPTION
@BATCH_MB_OPTION
@RETRY_ATTEMPTS_OPTION
@RETRY_WINDOW_OPTION
@PROGRESS_INTERVAL_OPTION
@click.option("--list-generators", is_flag=True, help="List the built-in generators and exit.")
@click.option(
    "--list-templates", is_flag=True, help="List the templates shipped with vida-loader and exit."
)
def generate(
    total: int | None,
    jobs: int,
    source_spec: str,
    seed: int | None,
    out: str | None,
    target_uri: str | None,
    target_db: str | None,
    target_collection: str | None,
    write_concern: str,
    drop_target: bool,
    batch_size: int,
    batch_mb: float,
    retry_attempts: int,
    retry_window: float,
    progress_interval: float,
    list_generators: bool,
    list_templates: bool,
) -> int:
    """Generate realistic documents (service orders) at full speed into a collection or a
    .bson file. Document i depends only on --seed and i, so -j never changes the data."""
    if list_generators or list_templates:
        found = sources.list_generators() if list_generators else sources.list_templates()
        for name, description in found:
            click.echo(f"{name:<20} {description}")
        return 0
    if total is None:
        raise UsageError("--total is required: how many documents to generate")
    target = None
    if target_uri or target_db or target_collection:
        target = Endpoint(target_uri or "", target_db or "", target_collection or "")
    cfg = GenerateConfig(
        total=total,
        jobs=jobs,
        source=source_spec,
        seed=seed,
        target=target,
        out=out,
        write_concern=write_concern,
        drop_target=drop_target,
        batch_docs=batch_size,
        batch_mb=batch_mb,
        retry=RetryPolicy(attempts=retry_attempts, window_s=retry_window),
    )
    printer = ProgressPrinter(
        sys.stderr, interval=progress_interval, prefix="generate: ", formatter=format_generate
    )
    previous = signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    try:
        result = run_generate(cfg, on_progress=printer)
    finally:
        signal.signal(signal.SIGTERM, previous)
        printer.finish()
    # With --out - the documents own stdout: the summary goes to stderr.
    click.echo(format_generated(result, cfg), err=out == "-")
    if result.failed:
        first, error = result.failed[0]
        click.echo(
            f"vida-loader: {len(result.failed)} slices failed (slice {first}: {error}); "
            f"{result.docs:,} of {cfg.total:,} documents confirmed; run the same command "
            f"again with --seed {result.seed}: documents already there count as such",
            err=True,
        )
        return EXIT_FAILED
    return 0


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
        f" {_fmt_bytes(result.bytes)} in all, {result.jobs} "
        f"{'process' if result.jobs == 1 else 'processes'}",
        f"  seed        {result.seed} (pass --seed {result.seed} to generate the same documents)",
    ]
    if cfg.target is not None:
        lines.append(
            f"  confirmed   every document is on the target; {result.repaired:,} re-sent after "
            f"unacknowledged writes vanished, {result.already_there:,} were already there"
        )
        lines.append(
            f"  retries     {result.retries:,} operations retried ({result.throttled:,} "
            f"throttled, {result.wait_s:,.1f} s waiting)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vida-loader`` console script; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("VIDA_DEBUG", "").lower() in ("1", "true", "yes")
    try:
        rv = cli.main(args=args, prog_name="vida-loader", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("vida-loader: interrupted", err=True)
        return 130
    except click.UsageError as exc:
        hint = f" (see 'vida-loader {exc.ctx.info_name} --help')" if exc.ctx else ""
        click.echo(f"vida-loader: error: {exc.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"vida-loader: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except VidaError as exc:
        if debug:
            raise
        click.echo(f"vida-loader: error: {exc.message}", err=True)
        return exc.exit_code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
