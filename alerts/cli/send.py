"""``alerts send``: drain the outbox; ``alerts status``: the outbox by status and the last run."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
from sqlalchemy import Engine, func, insert, select
from tqdm import tqdm

from alerts.app import App
from alerts.cli import EXIT_FAILURES, cli, json_option, print_json, with_app
from alerts.errors import AlertsError
from alerts.schema import outbox, runs

STATUSES = ("pending", "sending", "sent", "bounced", "failed", "suppressed")


@cli.command()
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Connections in parallel [default: delivery.smtp.connections; 1 for the Maildir].",
)
@json_option
@with_app
def send(app: App, workers: int | None, as_json: bool) -> None:
    """Deliver what the outbox holds that is due, through the configured relay or Maildir.

    A message is marked sent only once the relay accepted it; temporary failures are
    retried later with backoff. SIGTERM or Ctrl-C finishes the messages in flight and
    leaves the rest queued. Several 'alerts send' may run at once on PostgreSQL.
    Exit status 1 when messages failed for good or the relay could not be reached.
    """
    from alerts.delivery import send_pending

    stop = threading.Event()
    started = app.now()
    try:
        with stop_on_signals(stop):
            report = send_pending(app, workers=workers, stop=stop, progress=None if as_json else progress_bar())
    except AlertsError as exc:
        record_run(app.store.engine, "send", started, app.now(), ok=False, summary={"error": str(exc)})
        raise
    summary = report.as_dict()
    ok = not (report.failed or report.errors)
    record_run(app.store.engine, "send", started, app.now(), ok=ok, summary=summary)
    if as_json:
        print_json(summary)
    else:
        for error in report.errors:
            click.echo(f"warning: {error}", err=True)
        click.echo(summary_line(summary) + (" Stopped early; the rest stays queued." if report.stopped else ""))
    if not ok:
        sys.exit(EXIT_FAILURES)


@cli.command()
@json_option
@with_app
def status(app: App, as_json: bool) -> None:
    """Show the outbox by status, the oldest message waiting, and the last run."""
    info = outbox_status(app.store.engine)
    if as_json:
        print_json(info)
        return
    counts = info["outbox"]
    click.echo("Outbox: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES))
    if info["oldest_pending"]:
        click.echo(f"Oldest waiting: queued {_local(app, info['oldest_pending'])}")
    if info["next_attempt_at"]:
        click.echo(f"Next attempt due: {_local(app, info['next_attempt_at'])}")
    run = info["last_run"]
    if run is None:
        click.echo("Last run: none yet")
    else:
        outcome = {True: "ok", False: "with failures", None: "unfinished"}[run["ok"]]
        click.echo(f"Last run: {run['kind']} at {_local(app, run['started_at'])}, {outcome}")
        if run["summary"]:
            counts = {k: v for k, v in run["summary"].items() if isinstance(v, int) and not isinstance(v, bool)}
            click.echo("  " + ", ".join(f"{k}: {v}" for k, v in counts.items()))


def outbox_status(engine: Engine) -> dict[str, Any]:
    """Counts by status, the oldest waiting message, the next due attempt, the last run."""
    waiting = outbox.c.status.in_(["pending", "sending"])
    with engine.connect() as conn:
        counts = dict.fromkeys(STATUSES, 0)
        for state, count in conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)):
            counts[state] = int(count)
        oldest, due = conn.execute(
            select(func.min(outbox.c.created_at), func.min(outbox.c.next_attempt_at)).where(waiting)
        ).one()
        last = conn.execute(select(runs).order_by(runs.c.started_at.desc(), runs.c.id.desc()).limit(1)).mappings().first()
    return {
        "outbox": counts,
        "oldest_pending": oldest,
        "next_attempt_at": due,
        "last_run": None
        if last is None
        else {
            "kind": last["kind"],
            "started_at": last["started_at"],
            "finished_at": last["finished_at"],
            "ok": last["ok"],
            "summary": last["summary"],
        },
    }


def record_run(engine: Engine, kind: str, started: datetime, finished: datetime, *, ok: bool, summary: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(insert(runs).values(kind=kind, started_at=started, finished_at=finished, ok=ok, summary=summary))


def summary_line(summary: dict[str, Any]) -> str:
    return (
        f"Sent {summary['sent']}, deferred {summary['deferred']}, bounced {summary['bounced']}, "
        f"failed {summary['failed']}, suppressed {summary['suppressed']}."
    )


def progress_bar() -> Callable[[int], Callable[[int], None]] | None:
    """A tqdm bar on a terminal; nothing when output goes to a file or a pipe."""
    if not sys.stderr.isatty():
        return None

    def start(total: int) -> Callable[[int], None]:
        if not total:
            return lambda n: None
        bar = tqdm(total=total, desc="send", unit="msg", file=sys.stderr, leave=False)
        return bar.update

    return start


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM / SIGINT set ``stop``: the messages in flight finish, the rest stay queued."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _local(app: App, value: datetime) -> str:
    return app.local(value).strftime("%H:%M %d/%m/%Y")
