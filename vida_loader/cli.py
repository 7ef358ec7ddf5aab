"""The command line: a thin click layer over the library.

Parses flags, calls the library, prints, and turns every ``VidaError`` into one line
on stderr with its exit code. Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from vida_loader import __version__
from vida_loader.config import JobConfig, PlanConfig, RunConfig, VerifyConfig, default_job_name
from vida_loader.coordinator import (
    RunResult,
    continue_command,
    job_command,
    resolve_job,
    run_job,
)
from vida_loader.errors import EXIT_FAILED, EXIT_USAGE, VidaError
from vida_loader.execution.scheduler import sigterm_as_interrupt
from vida_loader.generate import sources
from vida_loader.generate.runner import GenerateConfig, GenerateResult
from vida_loader.generate.runner import generate as run_generate
from vida_loader.planner import PlanResult, plan_job
from vida_loader.preflight import check_copy, check_generate
from vida_loader.progress import ProgressPrinter, format_duration, format_generate
from vida_loader.runstate import TaskState
from vida_loader.settings.profile import find_profile, list_profiles
from vida_loader.settings.registry import COMMANDS, SPEC, SPECS, legacy_names
from vida_loader.settings.resolve import Settings, resolve
from vida_loader.status import JobStatus, job_status
from vida_loader.verify import VerifyResult, verify_job

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vida-loader")
@click.option("--debug", is_flag=True, envvar="VIDA_DEBUG", help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """Copy huge MongoDB-API collections in parallel, resumably, and prove nothing was lost."""
    # --debug is acted on in main(), which is where errors are turned into lines.


ENDPOINT_KEYS = (
    "source_uri",
    "source_db",
    "source_collection",
    "target_uri",
    "target_db",
    "target_collection",
)
JOB_HELPS = {
    "job": "Job to use [default: the only job in --manifest-dir]",
    "source_uri": "Source URI with credentials [default: the planned one, which holds none]",
    "target_uri": "Target URI with credentials [default: the planned one, which holds none]",
}


def _setting_option(key: str, command: str, help: str | None = None) -> click.Option:
    """The flag of setting ``key`` (see config.SPECS): no default and no envvar of its
    own, since config.resolve takes those from the environment, env files and profile."""
    spec = SPEC[key]
    names = [spec.option, key]
    if key == "jobs":
        names.insert(0, "-j")
    if key == "verbose":
        names.insert(0, "-v")
    kw: dict[str, Any] = {}
    if spec.kind == "bool":
        kw["is_flag"] = True
        kw["default"] = None
    elif spec.kind == "int":
        kw["type"] = click.INT
    elif spec.kind == "float":
        kw["type"] = click.FLOAT
    elif spec.kind == "choice":
        kw["type"] = click.Choice(spec.choices)
    elif spec.kind == "path":
        kw["type"] = click.Path(path_type=Path)
    else:
        kw["metavar"] = {"uri": "URI", "jobs": "N|auto"}.get(spec.kind, "TEXT")
    default = spec.default_for(command)
    text = help or spec.help
    if default == "auto":
        text += " [default: auto, the cores this process may use]"
    elif default is not None and spec.kind != "bool" and "[default:" not in text:
        text += f" [default: {spec.show(default)}]"
    aliases = [spec.envvar, *legacy_names(key, command)]
    return click.Option(names, help=f"{text} [{', '.join(aliases)}]", **kw)


def settings_options(command: str, *keys: str, **helps: str) -> Callable[[F], F]:
    """Add the flags of ``keys`` (default: every setting of ``command``, in the registry's
    order; help texts overridden by ``helps``), then --profile and --env-file, before the
    command's own options."""
    keys = keys or tuple(s.key for s in SPECS if command in s.commands)

    def add(f: F) -> F:
        params = [_setting_option(k, command, helps.get(k)) for k in keys]
        params += [
            click.Option(
                ["--profile"],
                metavar="NAME",
                help="Profile of settings: data-ingest, data-migration, dev or your own "
                "profiles/NAME.toml (see `vida-loader profiles list`) "
                "[VIDA_PROFILE, FRAMEWORK_PROFILE]",
            ),
            click.Option(
                ["--env-file"],
                type=click.Path(path_type=Path),
                help="Read settings from this KEY=VALUE file instead of ./.env_local and "
                "./.env [VIDA_ENV_FILE]",
            ),
        ]
        f.__click_params__ = [*getattr(f, "__click_params__", []), *reversed(params)]  # type: ignore[attr-defined]
        return f

    return add


def load_settings(command: str, params: dict[str, Any], verbose: bool = True) -> Settings:
    """The command's settings: flags given on this command line, then config.resolve."""
    ctx = click.get_current_context()
    given = {
        k: v
        for k, v in params.items()
        if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE
    }
    s = resolve(command, given)
    for warning in s.warnings:
        click.echo(f"vida-loader: warning: {warning}", err=True)
    for notice in s.notices:
        _notice(notice)
    if verbose and s.get("verbose"):
        click.echo(format_settings(s), err=True)
    return s


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


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


@cli.command()
@settings_options(
    "plan",
    job="Job name [default: <source-db>.<source-collection>]",
    partition_size_mb="Target partition size in MB [default: 64]",
    range_mode="typed: $gte/$lt per BSON type; minmax: find().min().max() across types; "
    "auto: probe and pick",
)
@click.option(
    "--replan",
    is_flag=True,
    envvar="VIDA_REPLAN",
    help="Replace the manifest of an already planned job [VIDA_REPLAN]",
)
def plan(replan: bool, **params: Any) -> int:
    """Split the source collection into _id ranges and write the job's manifest."""
    s = load_settings("plan", params)
    source = s.endpoint("source")
    cfg = PlanConfig(
        source=source,
        target=s.endpoint("target"),
        job=s["job"] or default_job_name(source.db, source.collection),
        manifest_dir=s["manifest_dir"],
        partitions=s["partitions"],
        partition_size_mb=s["partition_size_mb"],
        range_mode=s["range_mode"],
        replan=replan,
        timeouts=s.timeouts(),
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


@cli.command()
@settings_options(
    "run",
    **JOB_HELPS,
    jobs="Worker processes (1: one worker inside this process)",
    write_concern="Write concern of the copy: 1 confirms each partition by the write results, "
    "0 (unacknowledged) by counting its range on the target",
    attempts="Tries per partition when it fails for a passing reason",
)
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
def run(restart: bool, drop_target: bool, append: bool, **params: Any) -> int:
    """Copy every partition of a planned job and confirm each one on the target.

    A job that ran before continues: confirmed partitions are skipped, the others go on
    from what the target already holds. A fresh start refuses a target collection that
    holds documents unless --drop-target or --append says what to do with them.
    """
    s = load_settings("run", params)
    cfg = RunConfig.from_settings(
        s,
        resolve_job(s["manifest_dir"], s["job"]),
        restart=restart,
        drop_target=drop_target,
        append=append,
    )
    printer = ProgressPrinter(sys.stderr, interval=s["progress_interval"])
    try:
        with sigterm_as_interrupt():
            result = run_job(cfg, on_progress=printer, notify=_notice)
    finally:
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


@cli.command()
@settings_options(
    "verify",
    **JOB_HELPS,
    jobs="Partitions counted at the same time",
)
def verify(**params: Any) -> int:
    """Count every partition's range on source and target; exit 0 only when all match."""
    s = load_settings("verify", params)
    cfg = VerifyConfig.from_settings(s, resolve_job(s["manifest_dir"], s["job"]))
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


@cli.command()
@settings_options("status", **JOB_HELPS)
def status(**params: Any) -> int:
    """Show a job's progress from its files: partitions per state, documents, repairs,
    failures, whether a run holds it now, and the command that continues it."""
    s = load_settings("status", params)
    cfg = JobConfig(job=resolve_job(s["manifest_dir"], s["job"]), manifest_dir=s["manifest_dir"])
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
        f"  bytes       {_fmt_bytes(state.confirmed_bytes())} confirmed",
        f"  repaired    {sum(r.repaired for r in recs):,} documents; "
        f"{sum(r.resumes for r in recs)} partitions continued after an interruption",
        f"  runs        {state.runs}; started {state.started_at}, last saved "
        f"{state.updated_at}" + (f", finished {state.finished_at}" if state.finished_at else ""),
        f"  state       {st.state_path}",
    ]
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
    for pid, rec in state.partitions.items():
        if rec.state is TaskState.FAILED:
            lines.append(f"  FAILED {pid} after {rec.attempts} attempts: {rec.error}")
    if st.complete:
        lines.append(f"  check       {shlex.join(job_command('verify', st.config))}")
    elif st.holder is None:
        lines.append(f"  continue    {st.command}")
    return "\n".join(lines)


@cli.command()
@settings_options(
    "generate",
    jobs="Generating processes (1: inside this process)",
    generate_source="A built-in generator (--list-generators), a JSON template FILE.json "
    "(shipped: --list-templates) or a Python plugin FILE.py[:Class]; see docs/templates.md",
    seed="Same seed, same documents, whatever -j [default: random, printed at the end]",
    out="Write a mongodump-style .bson file (documents back to back; - for stdout) "
    "instead of a collection",
    write_concern="1: each slice confirmed by the write results; 0: unacknowledged, then the "
    "target is asked for every _id and what vanished is sent again",
)
@click.option(
    "--drop-target",
    is_flag=True,
    envvar="VIDA_DROP_TARGET",
    help="Drop the target collection first [VIDA_DROP_TARGET]",
)
@click.option("--list-generators", is_flag=True, help="List the built-in generators and exit.")
@click.option(
    "--list-templates", is_flag=True, help="List the templates shipped with vida-loader and exit."
)
def generate(drop_target: bool, list_generators: bool, list_templates: bool, **params: Any) -> int:
    """Generate realistic documents (service orders) at full speed into a collection or a
    .bson file. Document i depends only on --seed and i, so -j never changes the data."""
    if list_generators or list_templates:
        found = sources.list_generators() if list_generators else sources.list_templates()
        for name, description in found:
            click.echo(f"{name:<20} {description}")
        return 0
    s = load_settings("generate", params)
    cfg = GenerateConfig.from_settings(s, drop_target=drop_target)
    out = cfg.out
    printer = ProgressPrinter(
        sys.stderr, interval=s["progress_interval"], prefix="generate: ", formatter=format_generate
    )
    try:
        with sigterm_as_interrupt():
            result = run_generate(cfg, on_progress=printer)
    finally:
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
            f"  batches     up to {cfg.batch_docs:,} documents or {cfg.batch_mb:g} MB per insert"
        )
        lines.append(
            f"  retries     {result.retries:,} operations retried ({result.throttled:,} "
            f"throttled, {result.wait_s:,.1f} s waiting)"
        )
    return "\n".join(lines)


FOR_COMMAND_OPTION = click.option(
    "--for",
    "for_command",
    type=click.Choice(COMMANDS),
    default="run",
    show_default=True,
    help="Show the settings of this command (legacy names mean different sides in "
    "generate: GEN_DB_* is its target)",
)


@cli.group(invoke_without_command=True)
@settings_options("run", *SPEC)
@FOR_COMMAND_OPTION
@click.pass_context
def config(ctx: click.Context, /, for_command: str, **params: Any) -> int:
    """Print every effective setting, its value (passwords redacted) and where it came from:
    flag, VIDA_* environment, legacy environment, .env_local, .env, profile or default."""
    if ctx.invoked_subcommand is not None:
        return 0
    s = load_settings(for_command, params, verbose=False)
    click.echo(format_settings(s))
    return 0


@config.command("check")
@settings_options(
    "plan",
    *ENDPOINT_KEYS,
    "select_timeout",
    "socket_timeout",
    select_timeout="Seconds to wait for each server before calling it unreachable",
)
@click.option(
    "--for",
    "for_command",
    type=click.Choice(["run", "generate"]),
    default="run",
    show_default=True,
    help="run: source and target of a copy; generate: its target only",
)
def config_check(for_command: str, **params: Any) -> int:
    """Connect to source and target with bounded timeouts and say whether a copy can start:
    server kind and version, wire version and whether this pymongo can talk to it, the
    source collection and its size, the right to read it and to write the target
    (a scratch collection, dropped again), TLS. Exit 0 only when a copy can start."""
    command = "generate" if for_command == "generate" else "plan"
    s = load_settings(command, params, verbose=False)
    if command == "generate":
        result = check_generate(s.endpoint("target"), s.timeouts())
    else:
        result = check_copy(s.endpoint("source"), s.endpoint("target"), s.timeouts())
    for side in result.sides:
        click.echo(f"{side.role}  {side.uri}")
        for f in side.findings:
            click.echo(f"  {'ok' if f.ok else 'FAIL':<4}  {f.what:<10}  {f.text}")
    what = "generate" if command == "generate" else "a copy"
    if result.ok:
        click.echo(f"{what} can start")
        return 0
    problems = result.problems
    click.echo(
        f"vida-loader: {what} cannot start: {problems[0]}"
        + (f" (and {len(problems) - 1} more above)" if len(problems) > 1 else ""),
        err=True,
    )
    return EXIT_FAILED


@cli.group()
def profiles() -> None:
    """List, show and check the profiles: named sets of settings (data-ingest,
    data-migration, dev, and your own profiles/NAME.toml)."""


@profiles.command("list")
def profiles_list() -> int:
    """List every profile a name can pick, where its file is and what it is for."""
    found = list_profiles(Path.cwd())
    width = max(len(p.name) for p in found)
    for p in found:
        click.echo(f"{p.name:<{width}}  {p.scope:<8}  {p.description}  ({p.path})")
    return 0


@profiles.command("show")
@click.argument("name")
@FOR_COMMAND_OPTION
def profiles_show(name: str, for_command: str) -> int:
    """Every setting of a command with profile NAME, its value and source: the profile's
    own values, and what flags, environment and env files would still override."""
    s = resolve(for_command, {"profile": name})
    click.echo(format_settings(s))
    return 0


@profiles.command("check")
@click.argument("name")
def profiles_check(name: str) -> int:
    """Check that profile NAME loads: known settings only, every value in range."""
    p = find_profile(name, Path.cwd())  # loading checks every key and value
    click.echo(f"profile '{p.name}' ({p.path}) is valid: {len(p.values)} settings")
    return 0


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
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"vida-loader: error: {exc.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"vida-loader: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except VidaError as exc:
        if debug:
            raise
        click.echo(f"vida-loader: error: {exc.line()}", err=True)
        return exc.exit_code
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
