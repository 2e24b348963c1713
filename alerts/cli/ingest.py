"""``alerts ingest``: read advisories into the store."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click
from tqdm import tqdm

from alerts.app import App
from alerts.cli import EXIT_FAILURES, cli, json_option, print_json, with_app
from alerts.ingest import IngestReport, Progress, ingest_files

PROGRESS_FROM = 50  # files; smaller batches finish before a bar is worth drawing


def progress_bar(label: str) -> Callable[[int], Progress]:
    """A progress factory for the library: a tqdm bar on a terminal, nothing otherwise."""

    def start(total: int) -> Progress:
        if total < PROGRESS_FROM or not sys.stderr.isatty():
            return lambda n: None
        bar = tqdm(total=total, desc=label, unit="file", file=sys.stderr, leave=False)
        return bar.update

    return start


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
    from alerts.ingest import ingest_sources

    if paths:
        return ingest_files(
            paths, app.store, app.gazetteer, now=app.now(), zone=app.config.tz, progress=progress_bar("ingest")
        )
    return ingest_sources(app.config, app.store, app.gazetteer, now=app.now(), progress=progress_bar("ingest"))


def summary_line(report: IngestReport) -> str:
    c = report.counts()
    line = f"{c['new']} new, {c['updated']} updated, {c['unchanged']} unchanged, {c['rejected']} rejected"
    return line + (f", {c['failed_sources']} source(s) failed" if c["failed_sources"] else "")
