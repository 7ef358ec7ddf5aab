"""The command line: a thin click layer over the library.

Parses flags, calls the library, prints, and turns every ``VidaError`` into one line
on stderr with its exit code. Tracebacks only with ``--debug``.
"""

from __future__ import annotations

import sys

import click

from vida_loader import __version__
from vida_loader.errors import EXIT_USAGE, VidaError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vida-loader")
@click.option("--debug", is_flag=True, envvar="VIDA_DEBUG", help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Copy huge MongoDB-API collections in parallel, resumably, and prove nothing was lost."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vida-loader`` console script; returns the exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
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
