"""``vida-loader report``: a self-contained ``report.html`` and its PNG plots.

The page needs no network and runs no script: the plots are embedded (base64) and also
written beside it. Its summary comes from the same reading as ``status --json`` (so the
two agree) and from the last ``verify`` (``verify.json``). It works for a job that is
running, finished or failed: it reads the job's files only.
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vida_loader.errors import UsageError
from vida_loader.job.status import job_status
from vida_loader.jobfiles import read_jsonl, write_atomic
from vida_loader.report.machine import status_json
from vida_loader.report.plots import Plot, draw_plots

if TYPE_CHECKING:
    from vida_loader.config import JobConfig


@dataclass(frozen=True)
class ReportResult:
    page: Path
    plots: tuple[Plot, ...]
    seconds: float


def write_report(cfg: JobConfig, out: Path | None = None) -> ReportResult:
    """Write ``report.html`` and the plots into ``out`` (default: the job folder's
    ``report``)."""
    started = time.monotonic()
    files = cfg.files
    st = job_status(cfg)
    if st.state is None:
        raise UsageError(
            f"job '{cfg.job}' has not run yet: nothing to report",
            fix=f"run it first: vida-loader run --job {cfg.job}",
        )
    out = out or files.folder / "report"
    metrics = read_jsonl(files.metrics)
    plots = tuple(draw_plots(metrics, out))
    page = out / "report.html"
    write_atomic(page, render_page(status_json(st), st.last_verify, plots).encode())
    return ReportResult(page, plots, time.monotonic() - started)


def _row(name: str, value: Any) -> str:
    return f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>"


def summary_rows(status: dict[str, Any], last_verify: dict[str, Any] | None) -> list[str]:
    """The summary table: the figures ``status`` shows, and the last verification."""
    parts, docs, idx = status["partitions"], status["documents"], status["indexes"]
    rows = [
        _row("job", status["job"]),
        _row("state", status["state"]),
        _row(
            "partitions",
            f"{parts['done']}/{parts['total']} confirmed, "
            f"{parts['running']} running, {parts['failed']} failed, "
            f"{parts['pending']} pending",
        ),
        _row(
            "documents",
            f"{docs['confirmed']:,} confirmed on the target of ~{docs['planned']:,} planned",
        ),
        _row("bytes", f"{status['bytes']['confirmed']:,} confirmed"),
        _row("repaired", f"{docs['repaired']:,} documents"),
        _row(
            "runs",
            f"{status['runs']}; started {status['started_at']}, last saved "
            f"{status['updated_at']}, finished {status['finished_at'] or '-'}",
        ),
    ]
    if idx["total"]:
        rows.append(_row("indexes", f"{idx['done']}/{idx['total']} built, {idx['failed']} failed"))
    if status["ru"]:
        rows.append(_row("RU", f"{status['ru']:,.0f} request units charged, all runs"))
    if status["transform"]:
        t = status["transform"]
        rows.append(
            _row("transform", f"{t['name']}: {t['dropped']:,} dropped, {t['rejected']:,} rejected")
        )
    rows.append(_verify_row(last_verify))
    for f in status["failures"]:
        rows.append(_row(f"failed {f['task']}", f"after {f['attempts']} attempts: {f['error']}"))
    return rows


def _verify_row(last_verify: dict[str, Any] | None) -> str:
    """The summary's row of the last verification, counts or byte for byte."""
    if last_verify is None:
        return _row("last verify", "never verified")
    v = last_verify
    verdict = "all partitions match"
    if not v["matches"]:
        verdict = f"{len(v['mismatches'])} partitions do not match"
    if v.get("deep"):
        verdict = f"byte for byte, {v['partitions']} of {v['of']} partitions: " + (
            "every document the same"
            if v["matches"]
            else f"{v['missing']:,} missing, {v['extra']:,} extra, {v['altered']:,} altered"
        )
    return _row(
        "last verify",
        f"{v['time']}: {verdict} (source {v['source_docs']:,}, target "
        f"{v['target_docs']:,} documents)",
    )


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1000px; }
table { border-collapse: collapse; margin-bottom: 2em; }
th { text-align: left; padding: 4px 16px 4px 0; vertical-align: top; }
td { padding: 4px 0; }
img { max-width: 100%; border: 1px solid #ddd; }
figure { margin: 0 0 2em 0; }
"""


def render_page(
    status: dict[str, Any], last_verify: dict[str, Any] | None, plots: tuple[Plot, ...]
) -> str:
    figures = []
    for plot in plots:
        data = base64.b64encode(plot.path.read_bytes()).decode()
        title = html.escape(plot.title)
        figures.append(
            f'<figure><h2>{title}</h2><img src="data:image/png;base64,{data}" alt="{title}">'
            f"<figcaption>{html.escape(plot.path.name)}</figcaption></figure>"
        )
    if not figures:
        figures.append("<p>No metrics recorded yet: the plots come with the first run.</p>")
    job = html.escape(status["job"])
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>vida-loader report: {job}</title><style>{STYLE}</style></head><body>"
        f"<h1>vida-loader report: job {job}</h1>"
        f'<table id="summary">{"".join(summary_rows(status, last_verify))}</table>'
        f"{''.join(figures)}</body></html>\n"
    )
