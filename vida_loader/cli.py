"""The command line: a thin click layer over the library.

Parses flags, calls the library, prints, and turns every ``VidaError`` into one line
on stderr with its exit code. Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson
from click.core import ParameterSource

from vida_loader import __version__
from vida_loader.errors import EXIT_FAILED, EXIT_STATE, EXIT_USAGE, UsageError, VidaError
from vida_loader.settings.registry import (
    COMMANDS,
    DEFAULT_PROGRESS_INTERVAL,
    SPEC,
    SPECS,
    legacy_names,
)
from vida_loader.settings.resolve import Settings, resolve

if TYPE_CHECKING:
    from vida_loader.config import RunConfig, VerifyConfig
    from vida_loader.copy.coordinator import RunResult
    from vida_loader.dump.restore import DumpInput
    from vida_loader.follow.loop import FollowResult
    from vida_loader.report.live import LiveBar, LiveView
    from vida_loader.report.progress import ProgressPrinter

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


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
    if key == "quiet":
        names.insert(0, "-q")
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
        kw["metavar"] = spec.metavar or {"uri": "URI", "jobs": "N|auto"}.get(spec.kind, "TEXT")
    if spec.metavar:
        kw["metavar"] = spec.metavar
    default = spec.default_for(command)
    text = help or spec.help
    if default == "auto" and spec.kind == "jobs":
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


def json_option(f: F) -> F:
    """``--json``: one JSON object on stdout at the end (docs/json.md); text to stderr."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON object on stdout at the end (fields in docs/json.md); the "
        "summary and every other line go to stderr",
    )(f)


def _print_json(obj: dict[str, Any]) -> None:
    click.echo(orjson.dumps(obj).decode())


def load_settings(
    command: str, params: dict[str, Any], verbose: bool = True, **aliased: Any
) -> Settings:
    """The command's settings: flags given on this command line (``aliased``: settings
    given by another flag name, such as --strategy), then config.resolve."""
    ctx = click.get_current_context()
    given = {
        k: v
        for k, v in params.items()
        if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE
    }
    given.update({k: v for k, v in aliased.items() if v is not None})
    s = resolve(command, given)
    for warning in s.warnings:
        click.echo(f"vida-loader: warning: {warning}", err=True)
    for notice in s.notices:
        _notice(notice)
    if verbose and s.get("verbose"):
        from vida_loader.report.text import format_settings

        click.echo(format_settings(s), err=True)
    return s


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
@json_option
def plan(replan: bool, as_json: bool, **params: Any) -> int:
    """Split the source collection into _id ranges and write the job's manifest."""
    from vida_loader.config import PlanConfig, default_job_name
    from vida_loader.copy.planner import plan_job
    from vida_loader.report.machine import plan_json
    from vida_loader.report.text import format_plan

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
        ru_accounting=s["ru_accounting"],
        max_rus=s["max_rus"],
        max_rus_percent=s["max_rus_percent"],
        ttl_field=s["ttl_field"],
    )
    result = plan_job(cfg, progress=_no_progress if s["quiet"] else _plan_progress)
    click.echo(format_plan(result), err=as_json)
    if as_json:
        _print_json(plan_json(result))
    return 0


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
@click.option(
    "--create-indexes",
    is_flag=True,
    help="The old tool's name of --indexes after (the default)",
)
@click.option(
    "--strategy",
    metavar="FILE.py[:Class]",
    help="The old tool's name of --transform",
)
@json_option
def run(
    restart: bool,
    drop_target: bool,
    append: bool,
    create_indexes: bool,
    strategy: str | None,
    as_json: bool,
    **params: Any,
) -> int:
    """Copy every partition of a planned job and confirm each one on the target.

    A job that ran before continues: confirmed partitions are skipped, the others go on
    from what the target already holds. A fresh start refuses a target collection that
    holds documents unless --drop-target or --append says what to do with them.
    """
    from vida_loader.config import RunConfig
    from vida_loader.job.planned import resolve_job
    from vida_loader.report.machine import follow_json, run_json
    from vida_loader.report.text import format_run

    s = _run_settings(params, strategy, create_indexes)
    cfg = RunConfig.from_settings(
        s,
        resolve_job(s["manifest_dir"], s["job"]),
        restart=restart,
        drop_target=drop_target,
        append=append,
    )
    result = _run_with_progress(cfg, s["progress_interval"], s["quiet"])
    click.echo(format_run(result, cfg), err=as_json)
    code, reason, message = run_outcome(result, cfg)
    if message:
        click.echo(f"vida-loader: {message}", err=True)
    followed = None
    if cfg.follow and code == 0:
        followed = _follow(s, cfg, as_json)
        if followed.finalize_errors:
            code, reason = EXIT_FAILED, "indexes_failed"
            message = followed.finalize_errors[0]
            click.echo(f"vida-loader: {message}", err=True)
    if as_json:
        _print_json({**run_json(result, code, reason, message), "follow": follow_json(followed)})
    return code


def _run_settings(params: dict[str, Any], strategy: str | None, create_indexes: bool) -> Settings:
    """The settings of `run`, with the old tool's names of two flags taken in."""
    if strategy is not None and params.get("transform") not in (None, strategy):
        raise UsageError(
            f"--strategy '{strategy}' and --transform '{params['transform']}' name two "
            "transforms: give one (--strategy is the old name of --transform)"
        )
    s = load_settings("run", params, transform=strategy)
    if create_indexes and s["indexes"] != "after":
        raise UsageError(
            f"--create-indexes builds the indexes after the data: it cannot go with "
            f"--indexes '{s['indexes']}'"
        )
    return s


def _follow(s: Settings, cfg: RunConfig, as_json: bool) -> FollowResult:
    """``run --follow`` after a copy that ended well: the source's changes, with their
    progress and summary."""
    from vida_loader.follow.loop import follow_job
    from vida_loader.report.text import format_follow

    followed = _with_progress(
        s,
        "follow: ",
        lambda p: (
            f"{p.events:,} changes, {p.rate:,.1f}/s, "
            + ("behind: unknown" if p.lag_s is None else f"{p.lag_s:,.1f} s behind")
        ),
        lambda p: 1.0 if p.lag_s == 0 else 0.0,
        partial(follow_job, cfg),
    )
    click.echo(format_follow(followed), err=as_json)
    return followed


def run_outcome(result: RunResult, cfg: RunConfig) -> tuple[int, str, str | None]:
    """How a run ended: (exit code, reason, the line that says what to do, or None)."""
    from vida_loader.job.planned import continue_command

    failed = result.failed
    total = len(result.state.partitions)
    done = total - len(failed)
    again = continue_command(cfg, manifest=result.manifest)
    if result.too_many_rejects:
        return (
            EXIT_FAILED,
            "too_many_rejects",
            f"the transform rejected {result.rejected:,} documents, more than "
            f"--max-rejects {cfg.max_rejects:,}: the run stopped starting partitions "
            f"({done} of {total} confirmed); each document and its reason is in "
            f"'{result.rejects_path}' (the documents in '{result.rejects_bson_path}'); fix "
            "the transform and start over with --restart, or raise --max-rejects and "
            f"continue with: {again}",
        )
    if failed and result.outage:
        return (
            EXIT_FAILED,
            "outage",
            f"the {result.outage} stayed unreachable for longer than --retry-window "
            f"({cfg.retry_window:g} s): run stopped with {done} of {total} partitions "
            f"confirmed; once it is back, continue with: {again}",
        )
    if failed:
        first_pid, first_error = failed[0]
        return (
            EXIT_FAILED,
            "partitions_failed",
            f"{len(failed)} of {total} partitions failed ({first_pid}: {first_error}); fix the "
            f"cause, then continue with: {again}",
        )
    return _outcome_after_data(result, again)


def _outcome_after_data(result: RunResult, again: str) -> tuple[int, str, str | None]:
    """How a run whose every partition is confirmed ended: its indexes, the source's
    duplicate _ids."""
    index_failures = result.index_failures
    if index_failures:
        name, error = index_failures[0]
        return (
            EXIT_FAILED,
            "indexes_failed",
            f"{len(index_failures)} of {len(result.state.indexes)} indexes failed to build "
            f"(index '{name}': {error}); the data is copied and confirmed; fix the cause, "
            f"then build what is missing with: {again}",
        )
    if result.duplicates:
        return (
            EXIT_FAILED,
            "source_duplicates",
            f"the source holds {result.duplicates:,} documents whose _id another document "
            "also has (a sharded Cosmos DB collection keeps _id unique per shard key only); "
            "the target holds one document per _id; every copy is listed in "
            f"'{result.duplicates_path}'",
        )
    return 0, "done", None


def progress_sink(
    s: Settings, prefix: str, text: Callable[[Any], str], share: Callable[[Any], float]
) -> LiveBar | ProgressPrinter:
    """A long command's progress on stderr: a bar on a terminal, plain lines every
    --progress-interval seconds otherwise, nothing with --quiet."""
    from vida_loader.report.live import LiveBar
    from vida_loader.report.progress import ProgressPrinter

    if sys.stderr.isatty() and not s["quiet"]:
        return LiveBar(sys.stderr, share, text, prefix)
    interval = s.get("progress_interval") or DEFAULT_PROGRESS_INTERVAL
    return ProgressPrinter(
        sys.stderr, interval=interval, prefix=prefix, formatter=text, silent=s["quiet"]
    )


def _run_with_progress(cfg: RunConfig, interval: float, quiet: bool = False) -> RunResult:
    """``run_job`` with its progress on stderr: the live view on a terminal, plain lines
    otherwise, nothing with --quiet. SIGTERM stops it as Ctrl-C does."""
    from vida_loader.copy.coordinator import run_job
    from vida_loader.execution.scheduler import sigterm_as_interrupt
    from vida_loader.report.live import LiveView
    from vida_loader.report.progress import ProgressPrinter

    view: LiveView | ProgressPrinter | None = None
    if not quiet:
        view = (
            LiveView(sys.stderr)
            if sys.stderr.isatty()
            else ProgressPrinter(sys.stderr, interval=interval)
        )
    try:
        with sigterm_as_interrupt():
            return run_job(cfg, on_progress=view, notify=None if quiet else _notice)
    finally:
        if view is not None:
            view.finish()


def _no_progress(_message: str) -> None:
    return None


def _plan_progress(message: str) -> None:
    click.echo(f"plan: {message}", err=True)


def _notice(message: str) -> None:
    click.echo(f"vida-loader: notice: {message}", err=True)


@cli.command()
@settings_options(
    "verify",
    **JOB_HELPS,
    jobs="Partitions counted (--deep: compared) at the same time",
    attempts="Tries per partition of a deep verify when it fails for a passing reason",
)
@click.option(
    "--restart",
    is_flag=True,
    help="With --deep: start a new deep verify instead of continuing an interrupted one",
)
@json_option
def verify(restart: bool, as_json: bool, **params: Any) -> int:
    """Count every partition's range on source and target; exit 0 only when all match.

    --deep compares every document byte for byte instead (both sides read at once, in
    _id order): missing, extra and altered documents go to the job's mismatches.jsonl,
    which `vida-loader repair` fixes. An interrupted deep verify continues where it
    stopped.
    """
    from vida_loader.config import VerifyConfig
    from vida_loader.job.planned import resolve_job
    from vida_loader.report.machine import verify_json
    from vida_loader.report.text import format_verify
    from vida_loader.verify.counts import verify_job

    s = load_settings("verify", params)
    cfg = VerifyConfig.from_settings(s, resolve_job(s["manifest_dir"], s["job"]), restart)
    if cfg.deep:
        return _deep_verify(cfg, s, as_json)
    if restart:
        raise UsageError("--restart applies to a deep verify only", fix="add --deep")
    if cfg.executor == "dask" and not s["quiet"]:
        _notice(
            "counts are taken from here (two commands per partition): --executor dask "
            "applies to run and verify --deep"
        )
    printer = progress_sink(
        s,
        "verify: ",
        text=lambda d: f"{d[0]}/{d[1]} partitions counted",
        share=lambda d: d[0] / max(d[1], 1),
    )
    try:
        result = verify_job(cfg, on_progress=lambda done, total: printer((done, total)))
    finally:
        printer.finish()
    click.echo(format_verify(result), err=as_json)
    bad = result.mismatches
    code = EXIT_FAILED if bad else 0
    if bad:
        click.echo(
            f"vida-loader: {len(bad)} of {len(result.counts)} partitions do not match: "
            f"{', '.join(c.partition_id for c in bad[:10])}{' ...' if len(bad) > 10 else ''}",
            err=True,
        )
    if as_json:
        _print_json(verify_json(result, code))
    return code


def _deep_verify(cfg: VerifyConfig, s: Settings, as_json: bool) -> int:
    from vida_loader.report.machine import deep_verify_json
    from vida_loader.report.text import format_deep_verify
    from vida_loader.verify.deep_job import deep_verify_job

    result = _with_progress(
        s,
        "verify --deep: ",
        lambda p: (
            f"{p.done}/{p.total} partitions compared, {p.docs:,} documents, "
            f"{p.differences:,} differences"
        ),
        lambda p: p.done / max(p.total, 1),
        partial(deep_verify_job, cfg),
    )
    bad = result.differing + result.failed
    said = (
        f"{len(bad)} of {len(result.records)} partitions differ or failed: "
        f"{', '.join(bad[:10])}{' ...' if len(bad) > 10 else ''}; the documents are in "
        f"'{result.mismatches_path}'"
    )
    code = 0 if result.matches else EXIT_FAILED
    return _conclude(
        format_deep_verify(result),
        said if code else None,
        as_json,
        deep_verify_json(result, code),
        code,
    )


@cli.command()
@settings_options("repair", **JOB_HELPS)
@json_option
def repair(as_json: bool, **params: Any) -> int:
    """Fix from the source what the last `verify --deep` found: insert the missing,
    replace the altered (acknowledged, journaled), delete the extra only with
    --delete-extra; then check those documents again and keep in mismatches.jsonl only
    the ones still different. Exit 0 when none is left. Running it again is harmless."""
    from vida_loader.config import RepairConfig
    from vida_loader.job.planned import resolve_job
    from vida_loader.report.machine import repair_json
    from vida_loader.report.text import format_repair
    from vida_loader.verify.repair import repair_job

    s = load_settings("repair", params)
    cfg = RepairConfig.from_settings(s, resolve_job(s["manifest_dir"], s["job"]))
    result = _with_progress(
        s,
        "repair: ",
        lambda d: f"{d[0]:,}/{d[1]:,} documents repaired",
        lambda d: d[0] / max(d[1], 1),
        partial(repair_job, cfg),
    )
    said = (
        f"{len(result.left):,} documents still differ after the repair; they stay in "
        f"'{result.mismatches_path}'"
    )
    code = EXIT_FAILED if result.left else 0
    return _conclude(
        format_repair(result), said if code else None, as_json, repair_json(result, code), code
    )


def _with_progress(
    s: Settings,
    prefix: str,
    text: Callable[[Any], str],
    share: Callable[[Any], float],
    work: Callable[..., R],
) -> R:
    """``work(on_progress=..., notify=...)`` with its progress on stderr; SIGTERM stops
    it as Ctrl-C does."""
    from vida_loader.execution.scheduler import sigterm_as_interrupt

    printer = progress_sink(s, prefix, text=text, share=share)
    try:
        with sigterm_as_interrupt():
            return work(on_progress=printer, notify=None if s["quiet"] else _notice)
    finally:
        printer.finish()


def _conclude(
    summary: str, error: str | None, as_json: bool, obj: dict[str, Any], code: int
) -> int:
    """Print a command's summary (stderr with --json), its failure line, its JSON object."""
    click.echo(summary, err=as_json)
    if error is not None:
        click.echo(f"vida-loader: {error}", err=True)
    if as_json:
        _print_json(obj)
    return code


@cli.command()
@settings_options(
    "dump",
    out="Folder to write to, as mongodump --out: DIR/<db>/<collection>.bson and "
    ".metadata.json (required)",
    job="Planned job whose source to dump [default: the only job in --manifest-dir, unless "
    "--source-db and --source-collection name a collection]",
    source_uri="Source URI with credentials [default: the job's planned one, which holds none]",
    jobs="Partitions read and written at the same time",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Start the dump over instead of continuing an interrupted one (also replaces a "
    "finished dump of the collection in --out)",
)
@json_option
def dump(restart: bool, as_json: bool, **params: Any) -> int:
    """Write a source collection in mongodump's layout: a planned job's (--job), or one
    named by --source-db and --source-collection (split here, as plan would). Partitions
    are read in parallel, each to a part file, joined in order into
    DIR/<db>/<collection>.bson, with its options and indexes in
    <collection>.metadata.json. An interrupted dump continues with the partitions it had
    not finished."""
    from vida_loader.config import DumpConfig, default_job_name
    from vida_loader.dump.job import dump_job
    from vida_loader.job.planned import resolve_job
    from vida_loader.report.machine import dump_json
    from vida_loader.report.text import format_dump

    s = load_settings("dump", params)
    own = not s["job"] and bool(s["source_db"] or s["source_collection"])
    if own:  # a collection no job planned: the dump plans it (the plan stays in DIR)
        job = default_job_name(s["source_db"] or "", s["source_collection"] or "")
    else:
        job = resolve_job(s["manifest_dir"], s["job"])
    cfg = DumpConfig.from_settings(s, job, restart, own_plan=own)
    result = _with_progress(
        s,
        "dump: ",
        lambda p: f"{p.done}/{p.total} partitions, {p.docs:,} documents",
        lambda p: p.done / max(p.total, 1),
        partial(dump_job, cfg),
    )
    code = 0 if result.complete else EXIT_FAILED
    said = (
        f"{len(result.failed)} of {len(result.records)} partitions failed; continue with: "
        f"{cfg.command()}"
    )
    return _conclude(
        format_dump(result), said if code else None, as_json, dump_json(result, code), code
    )


@cli.command()
@click.argument("source", metavar="DIR|FILE", type=click.Path(path_type=Path))
@settings_options(
    "restore",
    job="Restore job: its state under --manifest-dir [default: restore.<db>.<collection>]",
    target_db="Target database [default: the dump's]",
    target_collection="Target collection [default: the dump's]",
    jobs="Ranges of the file inserted at the same time",
    indexes="after: build the indexes of metadata.json once the data is in; skip: none",
    write_concern="Write concern of the inserts (1 or majority: each range is confirmed by "
    "its write results)",
    attempts="Tries per range (and per index build)",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Start the restore over instead of continuing an interrupted one",
)
@json_option
def restore(source: Path, restart: bool, as_json: bool, **params: Any) -> int:
    """Restore from mongodump's layout (a dump folder: every collection in it, one after
    the other; or one .bson or .bson.gz file with its .metadata.json beside it): each
    file is split at document boundaries into ranges inserted in parallel (a document
    already there counts as restored), then its indexes are built. An interrupted
    restore continues where it stopped; --drop empties each target collection first,
    as mongorestore --drop."""
    from vida_loader.dump.restore import find_inputs

    s = load_settings("restore", params)
    found = find_inputs(source)
    several = len(found) > 1
    if several:
        _refuse_names_of_one(s, source, found)
    objs, code = [], 0
    for one in found:
        one_code, obj = _restore_one(s, one, source, restart, several, as_json)
        code = max(code, one_code)
        objs.append(obj)
    if as_json and several:
        reason = "collections failed" if code != 0 else "done"
        _print_json(
            {"command": "restore", "exit_code": code, "exit_reason": reason, "collections": objs}
        )
    elif as_json:
        _print_json(objs[0])
    return code


def _refuse_names_of_one(s: Settings, source: Path, found: list[DumpInput]) -> None:
    """--job and --target-collection name one collection: not for a folder of several."""
    for key in ("job", "target_collection"):
        if s[key]:
            names = ", ".join(f"{f.db}.{f.collection}" for f in found[:5])
            raise UsageError(
                f"--{key.replace('_', '-')} '{s[key]}' names one collection but "
                f"'{source}' holds {len(found)} ({names}{' ...' if len(found) > 5 else ''})",
                value=s[key],
                setting=f"--{key.replace('_', '-')}",
                fix="leave it out (each collection keeps its name and gets a restore job "
                "of its own), or give the .bson file of one collection",
            )


def _restore_one(
    s: Settings, one: DumpInput, source: Path, restart: bool, several: bool, as_json: bool
) -> tuple[int, dict[str, Any]]:
    """Restore one collection of the input, with its progress and summary; returns its
    exit code and its JSON object."""
    from vida_loader.config import RestoreConfig, default_job_name
    from vida_loader.dump.restore import restore_job
    from vida_loader.report.machine import restore_json
    from vida_loader.report.text import format_restore

    job = s["job"] or "restore." + default_job_name(one.db, one.collection)
    cfg = RestoreConfig.from_settings(s, job, source, restart, several)
    result = _with_progress(
        s,
        f"restore {one.db}.{one.collection}: ",
        lambda p: (
            f"{p.done}/{p.total} ranges, {p.docs:,} documents"
            + (f", {p.indexes_done}/{p.indexes} indexes" if p.indexes else "")
        ),
        lambda p: p.done / max(p.total, 1),
        partial(restore_job, cfg, one),
    )
    said = None
    if result.failed:
        said = (
            f"{len(result.failed)} tasks of {one.db}.{one.collection} failed "
            f"({', '.join(result.failed[:5])}); continue with: {cfg.command()}"
        )
    elif result.bad_at is not None:
        said = (
            f"'{result.source.bson}' is cut short or corrupt at byte offset "
            f"{result.bad_at:,}: the documents before it were restored"
        )
    click.echo(format_restore(result), err=as_json)
    if said is not None:
        click.echo(f"vida-loader: {said}", err=True)
    code = 0 if result.complete else EXIT_FAILED
    return code, restore_json(result, code)


@cli.command()
@settings_options("report", **JOB_HELPS)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Folder for report.html and its PNG plots (the same as --report-dir)",
)
def report(out: Path | None, **params: Any) -> int:
    """Write a self-contained report.html with PNG plots of a job (running, finished or
    failed): throughput, workers, throttling, RU/s against the budget, partition
    durations; its summary agrees with `status` and the last `verify`."""
    from vida_loader.config import JobConfig
    from vida_loader.job.planned import resolve_job
    from vida_loader.report.page import write_report

    if out is not None and params.get("report_dir") not in (None, out):
        raise UsageError(
            f"--out '{out}' and --report-dir '{params['report_dir']}' differ: give one"
        )
    s = load_settings("report", params, report_dir=out)
    cfg = JobConfig(job=resolve_job(s["manifest_dir"], s["job"]), manifest_dir=s["manifest_dir"])
    result = write_report(cfg, s["report_dir"])
    click.echo(
        f"report of job '{cfg.job}' in {result.seconds:.1f} s: {result.page} "
        f"({len(result.plots)} plots: {', '.join(p.path.name for p in result.plots) or 'none'})"
    )
    return 0


@cli.command()
@settings_options("status", **JOB_HELPS)
@json_option
def status(as_json: bool, **params: Any) -> int:
    """Show a job's progress from its files: partitions per state, documents, repairs,
    failures, whether a run holds it now, and the command that continues it."""
    from vida_loader.config import JobConfig
    from vida_loader.job.planned import resolve_job
    from vida_loader.job.status import job_status
    from vida_loader.report.text import format_status

    s = load_settings("status", params)
    cfg = JobConfig(job=resolve_job(s["manifest_dir"], s["job"]), manifest_dir=s["manifest_dir"])
    st = job_status(cfg)
    click.echo(format_status(st), err=as_json)
    if as_json:
        from vida_loader.report.machine import status_json

        _print_json(status_json(st))
    return 0


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
@json_option
def generate(
    drop_target: bool, list_generators: bool, list_templates: bool, as_json: bool, **params: Any
) -> int:
    """Generate realistic documents (service orders) at full speed into a collection or a
    .bson file. Document i depends only on --seed and i, so -j never changes the data."""
    from vida_loader.execution.scheduler import sigterm_as_interrupt
    from vida_loader.generate import sources
    from vida_loader.generate.runner import GenerateConfig
    from vida_loader.generate.runner import generate as run_generate
    from vida_loader.report.machine import generate_json
    from vida_loader.report.progress import format_generate
    from vida_loader.report.text import format_generated

    if list_generators or list_templates:
        found = sources.list_generators() if list_generators else sources.list_templates()
        for name, description in found:
            click.echo(f"{name:<20} {description}")
        return 0
    s = load_settings("generate", params)
    cfg = GenerateConfig.from_settings(s, drop_target=drop_target)
    out = cfg.out
    if as_json and out == "-":
        raise UsageError("--json and --out - both want stdout: write the documents to a file")
    printer = progress_sink(
        s, "generate: ", text=format_generate, share=lambda p: p.docs / max(p.total, 1)
    )
    try:
        with sigterm_as_interrupt():
            result = run_generate(cfg, on_progress=printer)
    finally:
        printer.finish()
    # With --out - the documents own stdout: the summary goes to stderr.
    click.echo(format_generated(result, cfg), err=out == "-" or as_json)
    code = EXIT_FAILED if result.failed else 0
    if result.failed:
        first, error = result.failed[0]
        click.echo(
            f"vida-loader: {len(result.failed)} slices failed (slice {first}: {error}); "
            f"{result.docs:,} of {cfg.total:,} documents confirmed; run the same command "
            f"again with --seed {result.seed}: documents already there count as such",
            err=True,
        )
    if as_json:
        _print_json(generate_json(result, code))
    return code


FOR_COMMAND_OPTION = click.option(
    "--for",
    "for_command",
    type=click.Choice(COMMANDS),
    default="run",
    show_default=True,
    help="Show the settings of this command (legacy names mean different sides in "
    "generate: GEN_DB_* is its target)",
)


@cli.group()
def indexes() -> None:
    """The job's indexes: what the target should hold (planned from the source, and its
    own saved by --disable-indexes), what it holds, and building what is missing."""


INDEX_READ_KEYS = ("job", "manifest_dir", "target_uri", "select_timeout", "socket_timeout")


@indexes.command("list")
@settings_options("verify", *INDEX_READ_KEYS, **JOB_HELPS)
def indexes_list(**params: Any) -> int:
    """Every index of the job and where it stands on the target."""
    from vida_loader.indexes.build import target_indexes
    from vida_loader.report.text import format_target_indexes

    click.echo(format_target_indexes(target_indexes(_index_config(params))))
    return 0


@indexes.command("diff")
@settings_options("verify", *INDEX_READ_KEYS, **JOB_HELPS)
def indexes_diff(**params: Any) -> int:
    """What differs between the job's indexes and the target's; exit 1 when anything does."""
    from vida_loader.indexes.build import target_indexes
    from vida_loader.report.text import format_target_indexes

    found = target_indexes(_index_config(params))
    click.echo(format_target_indexes(found, differences_only=True))
    return 0 if found.diff.clean else EXIT_FAILED


def _index_config(params: dict[str, Any]) -> VerifyConfig:
    from vida_loader.config import VerifyConfig
    from vida_loader.job.planned import resolve_job

    s = load_settings("verify", params)
    return VerifyConfig.from_settings(s, resolve_job(s["manifest_dir"], s["job"]))


@indexes.command("build")
@settings_options(
    "run",
    *INDEX_READ_KEYS,
    "jobs",
    "attempts",
    "retry_attempts",
    "retry_window",
    "progress_interval",
    "quiet",
    **JOB_HELPS,
    jobs="Index builds at the same time",
    attempts="Tries per index build when it fails for a passing reason",
)
def indexes_build(**params: Any) -> int:
    """Build the job's indexes the target lacks, recorded in the run state like `run`'s
    (resumable); copies no data. TTL indexes wait until the data is complete."""
    from vida_loader.config import RunConfig
    from vida_loader.job.planned import resolve_job
    from vida_loader.report.text import format_index_build

    s = load_settings("run", params)
    cfg = RunConfig.from_settings(s, resolve_job(s["manifest_dir"], s["job"]), only_indexes=True)
    cfg = dataclasses.replace(cfg, indexes="after", disable_indexes=False)
    result = _run_with_progress(cfg, s["progress_interval"], s["quiet"])
    click.echo(format_index_build(result, cfg))
    failures = result.index_failures
    if failures:
        name, error = failures[0]
        click.echo(
            f"vida-loader: {len(failures)} of {len(result.state.indexes)} indexes failed to "
            f"build (index '{name}': {error}); fix the cause, then run this again",
            err=True,
        )
        return EXIT_FAILED
    return 0


@indexes.command("finalize")
@settings_options("run", *INDEX_READ_KEYS, "retry_attempts", "retry_window", **JOB_HELPS)
def indexes_finalize(**params: Any) -> int:
    """Make the indexes a `run --follow` built relaxed what they are defined to be:
    unique indexes unique, TTL indexes their real expiry. `--until-caught-up` does it at
    its end; this is for a switch-over done otherwise. Exit 1 naming the documents that
    share a key when a unique index cannot be made unique."""
    from vida_loader.config import JobConfig
    from vida_loader.follow.finalize import finalize_indexes
    from vida_loader.job.planned import resolve_job
    from vida_loader.report.text import format_finalized

    s = load_settings("run", params)
    cfg = JobConfig(
        **JobConfig.given(
            s, resolve_job(s["manifest_dir"], s["job"]), "retry_attempts", "retry_window"
        )
    )
    done = finalize_indexes(cfg)
    if not done:
        click.echo(f"job '{cfg.job}': no index waits to be made final")
        return 0
    click.echo("\n".join([f"indexes of job '{cfg.job}':", *format_finalized(done)]))
    errors = [f.error for f in done if f.error]
    if errors:
        click.echo(f"vida-loader: {errors[0]}", err=True)
        return EXIT_FAILED
    return 0


@cli.group(invoke_without_command=True)
@settings_options("run", *SPEC)
@FOR_COMMAND_OPTION
@click.pass_context
def config(ctx: click.Context, /, for_command: str, **params: Any) -> int:
    """Print every effective setting, its value (passwords redacted) and where it came from:
    flag, VIDA_* environment, legacy environment, .env_local, .env, profile or default."""
    from vida_loader.report.text import format_settings

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
    from vida_loader.copy.preflight import check_copy, check_generate

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
    from vida_loader.settings.profile import list_profiles

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
    from vida_loader.report.text import format_settings

    s = resolve(for_command, {"profile": name})
    click.echo(format_settings(s))
    return 0


@profiles.command("check")
@click.argument("name")
def profiles_check(name: str) -> int:
    """Check that profile NAME loads: known settings only, every value in range."""
    from vida_loader.settings.profile import find_profile

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
        if "--json" in args:
            from vida_loader.report.machine import error_json

            command = next((a for a in args if not a.startswith("-")), None)
            _print_json(error_json(command, exc))
        return exc.exit_code
    except Exception as exc:
        # A database call that no command turned into its own message: still one line,
        # exit 3. The driver is imported by the commands that use it; unloaded, it raised
        # nothing.
        driver = sys.modules.get("pymongo.errors")
        if debug or driver is None or not isinstance(exc, driver.PyMongoError):
            raise
        from vida_loader.mongo import describe_error

        uris = [a.split("=", 1)[-1] for a in args if "://" in a]
        uris += [os.environ.get(f"VIDA_{side}_URI", "") for side in ("SOURCE", "TARGET")]
        click.echo(
            f"vida-loader: error: a database call failed: {describe_error(exc, *uris)}", err=True
        )
        return EXIT_STATE
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
