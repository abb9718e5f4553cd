"""The one ``petrostream`` command.

Core commands live in ``petrostream/cli_*.py``; deployables (training, inference, producer,
dashboard) plug theirs in through the ``petrostream.commands`` entry-point group, so the core never
imports them. Every module that registers commands imports only light things at top level: heavy
libraries are imported inside the command functions, so ``--help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import sys
from importlib.metadata import entry_points

import typer

from petrostream.errors import UserError

CORE_COMMAND_MODULES = (
    "petrostream.cli_local",
    "petrostream.cli_data",
    "petrostream.cli_query",
    "petrostream.cli_lake",
    "petrostream.cli_infra",
    "petrostream.cli_demo",
)

app = typer.Typer(
    name="petrostream",
    help="Real-time anomaly detection for offshore oil wells (Petrobras 3W).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("petrostream.cli")


@app.callback()
def _root(
    log_level: str = typer.Option("INFO", "--log-level", envvar="PETROSTREAM_LOG_LEVEL", help="DEBUG, INFO, WARNING"),
    log_format: str = typer.Option("text", "--log-format", envvar="PETROSTREAM_LOG_FORMAT", help="json or text"),
) -> None:
    from petrostream import log as logsetup

    logsetup.setup(log_level, log_format)


def _register_all() -> None:
    for name in CORE_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that module is not part of this build
                continue
            raise
        module.register(app)
    for ep in entry_points(group="petrostream.commands"):
        try:
            register = ep.load()
        except ModuleNotFoundError as exc:
            if exc.name and ep.value.startswith(exc.name):
                continue
            raise
        register(app)


def main(argv: list[str] | None = None) -> None:
    _register_all()
    try:
        rv = app(args=argv, standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click usage errors and friends
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
