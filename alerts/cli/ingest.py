"""``alerts ingest``: read advisories into the store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from alerts.app import App
from alerts.cli import EXIT_FAILURES, cli, json_option, print_json, progress_bar, with_app
from alerts.ingest import (
    FeedFetches,
    IngestReport,
    fetch_sources,
    ingest_files,
    ingest_sources,
    settle_sources,
)
from alerts.ingest.settle import Settling
from alerts.locking import queue_turn

PROGRESS_FROM = 50  # files; smaller batches finish before a bar is worth drawing
PROGRESS = progress_bar("ingest", "file", minimum=PROGRESS_FROM)


@cli.command(short_help="Read advisories from the sources, or from files or folders.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@json_option
@with_app
def ingest(app: App, paths: tuple[Path, ...], as_json: bool) -> None:
    """Read advisories from the configured sources, or from PATHS (files or folders).

    Bad files are reported with the line and the fix, and skipped; a feed that cannot be
    fetched is reported with its URL; the exit status is then 1. Ingesting an advisory
    again stores it once; a changed one is an update.

    \b
    Examples:
      alerts ingest
      alerts ingest advisories/2020-12-18-telephone-fraudster-poses-as-kent-police-officer.md
    """
    report = run_ingest(app, paths)
    if as_json:
        print_json(
            {
                **report.counts(),
                "errors": [str(e) for e in report.rejected],
                "source_errors": [str(e) for e in report.source_errors],
                "warnings": report.warnings,
            }
        )
    else:
        for warning in report.warnings:
            click.echo(f"warning: {warning}", err=True)
        for error in report.rejected:
            click.echo(f"rejected: {error}", err=True)
        for failure in report.source_errors:
            click.echo(f"source failed: {failure}", err=True)
        click.echo(summary_line(report))
    if not report.ok:
        sys.exit(EXIT_FAILURES)


def run_ingest(app: App, paths: tuple[Path, ...] = ()) -> IngestReport:
    """Ingest in the queue turn (alerts.locking), its instant taken once it is held: the
    changes it stamps must not be passed over by a queueing running meanwhile. Files
    still being written are waited for and upstream feeds fetched first, before the turn
    is taken."""
    config = app.config
    if paths:
        with queue_turn(config.database).hold("ingest"):
            return ingest_files(
                paths, app.store, app.gazetteer, now=app.now(), zone=config.tz, progress=PROGRESS
            )
    settling = settle_sources(
        config.sources, app.store, app.gazetteer, clock=app.clock, zone=config.tz
    )
    fetches = fetch_sources(config.sources, app.store, clock=app.clock, site=config.site)
    with queue_turn(config.database).hold("ingest"):
        return _ingest(app, settling, fetches)


def _ingest(app: App, settling: Settling, fetches: FeedFetches) -> IngestReport:
    config = app.config
    return ingest_sources(
        config.sources,
        app.store,
        app.gazetteer,
        now=app.now(),
        clock=app.clock,
        zone=config.tz,
        site=config.site,
        digests=config.digests,
        review=config.review,
        progress=PROGRESS,
        settling=settling,
        fetches=fetches,
    )


def summary_line(report: IngestReport) -> str:
    c = report.counts()
    line = f"{c['new']} new, {c['updated']} updated, {c['unchanged']} unchanged, {c['rejected']} rejected"
    if c["duplicates"]:
        line += f", {c['duplicates']} duplicate(s) of another source's advisories"
    line += f", {c['failed_sources']} source(s) failed" if c["failed_sources"] else ""
    if c["outside_coverage"] or c["no_place"]:
        line += f"; {c['outside_coverage']} outside coverage (not mailed), {c['no_place']} force-wide for want of a place"
    return line
