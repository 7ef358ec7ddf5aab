"""A planned job: find it, open its manifest with the endpoints to use, and the command
that continues it (for summaries, `status` and interrupts), without passwords."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from vida_loader.config import JobConfig, RunConfig
from vida_loader.endpoint import (
    DEFAULT_RETRY_ATTEMPTS,
    DEFAULT_RETRY_WINDOW_S,
    Endpoint,
    has_secret,
    normal_hosts,
    redact_uri,
    uri_hosts,
)
from vida_loader.errors import StateError, UsageError
from vida_loader.job.manifest import Manifest, load_manifest
from vida_loader.jobfiles import planned_jobs
from vida_loader.settings.registry import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BATCH_MB,
    DEFAULT_BATCH_SIZE,
    DEFAULT_JOBS,
    DEFAULT_MANIFEST_DIR,
    DEFAULT_MAX_REJECTS,
    DEFAULT_WRITE_CONCERN,
    MIB,
)


def planned_endpoint(side: dict[str, Any], uri: str | None, role: str, job: str) -> Endpoint:
    """The endpoint to use: ``uri`` (with credentials) when given, else the planned one.

    A given URI must name the hosts the job was planned against.
    """
    from vida_loader.mongo import check_uri  # the driver's parser: `status` never needs it

    chosen = uri or str(side["uri"])
    check_uri(chosen, f"--{role}-uri")
    srv = str(side["uri"]).startswith("mongodb+srv://")
    if uri_hosts(chosen) != normal_hosts(list(side["hosts"]), srv):
        raise StateError(
            f"--{role}-uri '{redact_uri(chosen)}' names {', '.join(uri_hosts(chosen))} but "
            f"job '{job}' was planned against {', '.join(side['hosts'])}: pass the planned "
            f"{role} or re-plan with `vida-loader plan --replan`"
        )
    return Endpoint(chosen, str(side["db"]), str(side["collection"]))


def open_job(cfg: JobConfig) -> tuple[Manifest, Endpoint, Endpoint]:
    """The job's manifest and the source and target to use for it."""
    manifest = load_manifest(cfg.files.manifest)
    source = planned_endpoint(manifest.source, cfg.source_uri, "source", cfg.job)
    target = planned_endpoint(manifest.target, cfg.target_uri, "target", cfg.job)
    return manifest, source, target


def resolve_job(manifest_dir: Path, job: str | None) -> str:
    """``job``, or the only job planned in ``manifest_dir``."""
    if job:
        return job
    jobs = planned_jobs(manifest_dir)
    if len(jobs) == 1:
        return jobs[0]
    if not jobs:
        raise UsageError(f"no job planned in '{manifest_dir}': run `vida-loader plan` first")
    raise UsageError(f"--job is required: '{manifest_dir}' holds jobs {', '.join(jobs)}")


def job_command(verb: str, cfg: JobConfig) -> list[str]:
    """``vida-loader VERB`` naming ``cfg``'s job and its manifest folder."""
    args = ["vida-loader", verb, "--job", cfg.job]
    if cfg.manifest_dir != DEFAULT_MANIFEST_DIR:
        args += ["--manifest-dir", str(cfg.manifest_dir)]
    return args


def continue_command(
    cfg: JobConfig, settings: dict[str, Any] | None = None, manifest: Manifest | None = None
) -> str:
    """The command that continues ``cfg.job`` with the same settings, without passwords.

    ``settings``: a run state's settings, when ``cfg`` is not a ``RunConfig``. URIs equal
    to the ``manifest``'s planned ones are left out (run uses those by default).
    """
    args = job_command("run", cfg)
    if isinstance(cfg, RunConfig):
        settings = cfg.settings()
    given = settings or {}
    for key, flag, default in (
        ("jobs", "-j", DEFAULT_JOBS),
        ("executor", "--executor", "local"),
        ("scheduler", "--scheduler", None),
        ("worker_uris", "--worker-uris", "send"),
        ("write_concern", "--write-concern", DEFAULT_WRITE_CONCERN),
        ("batch_size", "--batch-size", DEFAULT_BATCH_SIZE),
        ("attempts", "--attempts", DEFAULT_ATTEMPTS),
        ("retry_attempts", "--retry-attempts", DEFAULT_RETRY_ATTEMPTS),
        ("retry_window", "--retry-window", DEFAULT_RETRY_WINDOW_S),
        ("ru_accounting", "--ru-accounting", "auto"),
        ("max_rus", "--max-rus", None),
        ("max_rus_percent", "--max-rus-percent", None),
        ("indexes", "--indexes", "after"),
        ("transform", "--transform", None),
        ("max_rejects", "--max-rejects", DEFAULT_MAX_REJECTS),
    ):
        if key in given and given[key] != default:
            value = given[key]
            args += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if "batch_bytes" in given and given["batch_bytes"] != int(DEFAULT_BATCH_MB * MIB):
        args += ["--batch-mb", f"{given['batch_bytes'] / MIB:g}"]
    if given.get("follow"):
        args.append("--follow")
    secret = []
    for role, uri in (("source", cfg.source_uri), ("target", cfg.target_uri)):
        if uri and manifest and uri == getattr(manifest, role)["uri"]:
            continue
        if uri and has_secret(uri):
            secret.append(role)
        elif uri:
            args += [f"--{role}-uri", uri]
    command = shlex.join(args)
    if secret:
        names = " and ".join(f"--{r}-uri" for r in secret)
        command += f" (with {names} and credentials again)"
    return command
