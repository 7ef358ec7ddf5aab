"""The manual covers the command line, and its links lead somewhere: every command and
every option appears in docs/, and every relative link of README.md and docs/ resolves,
to a file and, with a #fragment, to a heading of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click

from vida_loader.cli import cli

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _manual() -> str:
    text = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    return re.sub(r"\s+", " ", text)  # a command may wrap across lines


def _commands(
    cmd: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _commands(sub, (*path, name))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.*)$", text, flags=re.M)}


def test_every_command_appears_in_the_manual() -> None:
    manual = _manual()
    missing = [
        path
        for path, _ in _commands(cli)
        if path and f"vida-loader {path}" not in manual and f"`{path}`" not in manual
    ]
    assert missing == [], "commands that docs/ never names"


def test_every_option_appears_in_the_manual() -> None:
    manual = _manual()
    missing = sorted(
        f"{path or 'vida-loader'} {opt}"
        for path, cmd in _commands(cli)
        for param in cmd.params
        if isinstance(param, click.Option)
        for opt in param.opts
        if opt.startswith("--") and not re.search(re.escape(opt) + r"(?![\w-])", manual)
    )
    assert missing == [], "options that docs/ never names"


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue  # a web address
            name, _, fragment = target.partition("#")
            dest = (page.parent / name).resolve() if name else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif fragment and dest.suffix == ".md" and fragment not in _anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_readme_is_a_front_page_that_links_every_manual_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(readme)}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert sorted(pages - linked) == [], "manual pages the README does not link"
