"""``alerts feeds build``: write the RSS, Atom and JSON feeds."""

from __future__ import annotations

from pathlib import Path

import click

from alerts.app import App
from alerts.cli import cli, json_option, print_json, with_existing_app
from alerts.feeds import build_feeds


@cli.group()
def feeds() -> None:
    """Build the per-area RSS, Atom and JSON feeds."""


@feeds.command("build", short_help="Write the RSS, Atom and JSON feeds of every area.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write into [default: feeds.out from the config].",
)
@json_option
@with_existing_app
def build(app: App, out: Path | None, as_json: bool) -> None:
    """Write <area>.rss, <area>.atom and <area>.json for every area, and all.*.

    Only files whose content changed are rewritten; a rebuild with nothing new
    changes no byte.
    """
    report = build_feeds(
        app.config.feeds, app.config.site, app.store, app.gazetteer, now=app.now(), out=out
    )
    if as_json:
        print_json(report.as_dict())
        return
    click.echo(
        f"Feeds in {report.out}: {len(report.written)} written, {report.unchanged} unchanged."
    )
