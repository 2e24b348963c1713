"""``alerts run --once``, ``alerts serve`` and ``alerts schedule``: the pipeline as a
one-off job, as a service, and the service's timetable."""

from __future__ import annotations

import logging
import sys
import threading

import click

from alerts import scheduler
from alerts.app import App
from alerts.cli import EXIT_FAILURES, cli, json_option, print_json, with_app, with_existing_app
from alerts.cli.checks import check_startup
from alerts.cli.send import send_progress, stop_on_signals
from alerts.config import config_path
from alerts.delivery.processes import child_command
from alerts.locking import instance_lock
from alerts.pipeline import run_once


@cli.command(short_help="Run the whole pipeline once (from cron, or by hand).")
@click.option("--once", is_flag=True, help="Run the pipeline once and exit (the default).")
@json_option
@with_app
def run(app: App, once: bool, as_json: bool) -> None:
    """Run the whole pipeline once: ingest the sources, build the feeds, queue immediate
    alerts and the daily/weekly digests that are due, send.

    A digest is due when its scheduled local time has passed since the last one, so
    running this from cron every few minutes behaves like 'alerts serve'. It will not
    run while 'alerts serve' (or another run) is running against the same database.
    SIGTERM or Ctrl-C finishes the message in flight and leaves the rest queued.

    Exit status 1 when the run reported failures: advisory files rejected, a source
    that could not be fetched, a stage that failed, or messages deferred or given up
    (they stay queued and are retried). Bounces are recorded, not failures.
    """
    check_startup(app, email=True, mail=True)
    stop = threading.Event()
    with instance_lock(app.config.database, "run", clock=app.clock), stop_on_signals(stop):
        report = run_once(app, stop=stop, progress=None if as_json else send_progress())
    if as_json:
        print_json(report.as_dict())
    else:
        click.echo(report.summary())  # the problems were logged, one line each, on stderr
    if not report.ok:
        sys.exit(EXIT_FAILURES)


@cli.command(short_help="Run the scheduler: the pipeline as a service.")
@click.option(
    "--standby",
    is_flag=True,
    help="If another scheduler is running, wait and take over when it stops (instead of exiting).",
)
@with_app
def serve(app: App, standby: bool) -> None:
    """Run the scheduler: watch the advisory folders (a new file is read within a second
    once its writes settle), fetch feeds every poll_minutes, queue immediate and urgent
    alerts at once, daily and weekly digests at their local times (catching up once
    after downtime), and send whenever mail is queued, by this process or another
    (confirmations from 'alerts web'). Logs one line per job and per send at INFO.

    The settings (templates, gazetteer, relay password, DKIM key, the bounce mailbox's
    password, database) are checked
    first: a bad one exits 2 with one line naming it, before anything runs. Only one may
    run against a database: a second one says who holds it and exits 1. SIGTERM or
    Ctrl-C finishes the message in flight, leaves the rest queued, exits 0.
    """
    # Not in the first job, with the service running on.
    check_startup(app, email=True, mail=True, bounces=True)
    root = click.get_current_context().find_root().params
    verbose = root.get("verbose") or 0
    if not root.get("quiet") and not verbose:
        logging.getLogger().setLevel(logging.INFO)  # a service says what it does
        # One line per job, from the pipeline; the stages' own lines come with -v.
        for name in ("alerts.feeds", "alerts.digest", "alerts.delivery", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if verbose < 2:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)  # "Running job ..." twice a job
        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # "1 change detected" per change
    flags = ["-q"] if root.get("quiet") else ["-v"] * min(verbose, 2)
    file, log_format = config_path(app.config_path), root["log_format"]
    scheduler.serve(
        app,
        standby=standby,
        sender_command=lambda workers: child_command(file, log_format, flags, workers),
    )


@cli.command(short_help="Show when 'alerts serve' runs each job next.")
@json_option
@with_existing_app
def schedule(app: App, as_json: bool) -> None:
    """Show the jobs 'alerts serve' runs and when each runs next (local time and UTC),
    and whether a digest is due now (it is then sent at the next start or poll)."""
    now = app.now()
    rows = scheduler.schedule_table(app, now)
    if as_json:
        print_json(rows)
        return
    width = max(len(row["when"]) for row in rows)
    nexts = [
        f"next {app.local(row['next_run']):%a %d %b %Y %H:%M %Z} ({row['next_run'].astimezone(now.tzinfo):%H:%M} UTC)"
        if row["next_run"] is not None
        else ""
        for row in rows
    ]
    next_width = max(len(text) for text in nexts)
    for row, next_run in zip(rows, nexts, strict=True):
        click.echo(
            f"{row['job']:<8} {row['when']:<{width}} {next_run:<{next_width}}  {row['does']}"
        )
        if "last_digest" in row:
            last = row["last_digest"]
            done = (
                f"last queued {app.local(last):%a %d %b %Y %H:%M %Z}"
                if last
                else "never queued yet"
            )
            due = "; due now: it goes at the next start or poll" if row["due_now"] else ""
            click.echo(f"{'':<{width + 9}} {done}{due}")
