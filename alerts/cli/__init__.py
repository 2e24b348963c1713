"""The ``alerts`` command line: a thin client of the library.

Stages raise typed errors; here they become one line with the fix and an exit status:
0 success, 1 a run that finished with failures it reported, 2 bad usage or bad config.
Each command group lives in its own module and registers itself on :data:`cli`.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import click
from click.exceptions import NoArgsIsHelpError
from tqdm import tqdm

from alerts import __version__
from alerts.app import App
from alerts.errors import (
    AlertsError,
    ConfigError,
    Conflict,
    GazetteerError,
    NotFound,
    UnknownArea,
)
from alerts.ingest.dates import BadDate, parse_date
from alerts.logs import configure_logging
from alerts.text import one_line

EXIT_FAILURES = 1
EXIT_USAGE = 2
USAGE_ERRORS = (ConfigError, GazetteerError, UnknownArea, NotFound, Conflict)

F = TypeVar("F", bound=Callable[..., Any])


class AlertsGroup(click.Group):
    """Turns :class:`AlertsError` into one line on stderr and the right exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AlertsError as exc:
            click.echo(
                f"Error: {one_line(str(exc))}", err=True
            )  # one line, whatever the cause says
            ctx.exit(EXIT_USAGE if isinstance(exc, USAGE_ERRORS) else EXIT_FAILURES)
        except click.UsageError as exc:
            usage_error(exc)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:  # an option of 'alerts' itself
            usage_error(exc)


def usage_error(exc: click.UsageError) -> NoReturn:
    """One line like every other error, instead of click's usage block; exit status 2."""
    if exc.ctx is None or isinstance(exc, NoArgsIsHelpError):
        raise exc  # click prints the help
    message = one_line(exc.format_message()).rstrip(".")
    click.echo(f"Error: {message} (see '{exc.ctx.command_path} --help')", err=True)
    raise click.exceptions.Exit(EXIT_USAGE)


def with_app(func: F) -> F:
    """Give a command ``--config PATH`` and pass it an :class:`App` as first argument."""
    return _with_app(func, read_only=False)


def with_existing_app(func: F) -> F:
    """:func:`with_app` for a command that reads, changes, exports, erases or purges
    what exists: a database that does not exist is an error naming it (a mistyped path
    must not pass for an empty list, or an erasure done); the command never makes one
    (nor its folder). Only commands that bring data in or set a site up may make one."""
    return _with_app(func, read_only=True)


def _with_app(func: F, *, read_only: bool) -> F:

    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Config file [default: $ALERTS_CONFIG or ./config.yaml].",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, config_path: str | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        app = App(config_path or (ctx.find_root().params.get("config_path")), read_only=read_only)
        ctx.call_on_close(app.close)
        return func(app, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def progress_bar(
    label: str, unit: str, *, minimum: int = 1
) -> Callable[[int], Callable[[int], None]]:
    """A progress factory for the library (called with the total, returns the callback
    for each one done): a tqdm bar on a terminal from ``minimum`` items, nothing otherwise."""

    def start(total: int) -> Callable[[int], None]:
        if total < minimum or not sys.stderr.isatty():
            return lambda n: None
        bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr, leave=False)

        def advance(n: int) -> None:
            bar.update(n)

        return advance

    return start


def parse_when(value: str | None, app: App, option: str) -> datetime | None:
    """A command-line date (UK or ISO form) in the configured zone, or a usage error."""
    if value is None:
        return None
    try:
        return parse_date(value, app.config.tz)
    except BadDate as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


EXAMPLES = """\b
Examples:
  alerts run --once                       ingest, feeds, alerts and digests due, send
  alerts serve                            the same on a timetable, as a service
  alerts subscribers import list.csv      add a coordinator's list
  alerts preview --area ME4 --out p.html  see what a subscriber would get
  alerts status                           the outbox and how the last run went
"""


@click.group(
    cls=AlertsGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXAMPLES
)
@click.version_option(__version__, prog_name="alerts")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log line format on stderr (json for log shippers).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors in the log.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file for any command [default: $ALERTS_CONFIG or ./config.yaml].",
)
def cli(log_format: str, verbose: int, quiet: bool, config_path: str | None) -> None:
    """Area Alerts: publish police advisories as per-area feeds and email digests.

    Every command reads config.yaml (or --config PATH, or $ALERTS_CONFIG).
    """
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    configure_logging(log_format, level)


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="alerts")
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


# Each module registers its commands on ``cli``; importing them last avoids a cycle.
from alerts.cli import (  # noqa: E402, F401
    advisories,
    areas,
    digest,
    feeds,
    ingest,
    init,
    migrate,
    privacy,
    run,
    send,
    sources,
    subscribers,
    users,
    web,
)
