"""``alerts send``: drain the outbox; ``alerts status``: the outbox by status and the last run."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click

from alerts.app import App
from alerts.cli import (
    EXIT_FAILURES,
    cli,
    json_option,
    print_json,
    progress_bar,
    with_existing_app,
)
from alerts.cli.checks import check_startup
from alerts.delivery import outbox_drainer, send_pending
from alerts.errors import AlertsError
from alerts.store.runs import STATUSES
from alerts.store.senders import ROLES
from alerts.text import one_line
from alerts.types import Hold

log = logging.getLogger(__name__)


@cli.command(short_help="Deliver the queued messages that are due.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Connections in parallel [default: delivery.smtp.connections; 1 for the Maildir].",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep sending until SIGTERM or Ctrl-C: woken whenever any process queues mail"
    " (a sender process beside 'alerts serve', to share a large send).",
)
@click.option(
    "--until-stdin-closes",
    "until_stdin_closes",
    is_flag=True,
    hidden=True,
    help="With --follow: stop also when standard input ends ('alerts serve' runs its"
    " sender processes so: they stop when it ends, however it ends).",
)
@json_option
@with_existing_app
def send(
    app: App, workers: int | None, follow: bool, until_stdin_closes: bool, as_json: bool
) -> None:
    """Deliver what the outbox holds that is due, through the configured relay or Maildir.

    A message is marked sent only once the relay accepted it; temporary failures are
    retried later with backoff. SIGTERM or Ctrl-C finishes the messages in flight and
    leaves the rest queued. Several 'alerts send' may run at once on PostgreSQL.
    Exit status 1 when messages failed for good or the relay could not be reached.

    With --follow it runs until stopped, as 'alerts serve' runs its own sender: each
    process adds its own connections and its own CPU (several processes use several
    cores, which one process's threads cannot), and the outbox's claims keep every
    message to one of them.
    """
    check_startup(app, mail=True)
    stop = threading.Event()
    if until_stdin_closes and not follow:
        raise click.UsageError("--until-stdin-closes goes with --follow")
    if follow:
        if until_stdin_closes:
            _stop_when_stdin_ends(stop)
        _follow(app, stop, workers)
        return
    started = app.now()
    try:
        with stop_on_signals(stop):
            report = send_pending(
                app.config.delivery,
                app.config.mail,
                app.store,
                app.clock,
                workers=workers,
                stop=stop,
                progress=None if as_json else send_progress(),
            )
    except AlertsError as exc:
        # 'alerts send' from cron every minute: store.runs.add keeps a month of rows, not every one ever.
        app.store.runs.add("send", started, app.now(), ok=False, summary={"error": str(exc)})
        raise
    summary = report.as_dict()
    ok = not (report.failed or report.errors)
    app.store.runs.add("send", started, app.now(), ok=ok, summary=summary)
    if as_json:
        print_json(summary)
    else:
        click.echo(
            summary_line(summary)
            + (" Stopped early; the rest stays queued." if report.stopped else "")
        )
        if not (report.sent or report.deferred or report.bounced or report.failed):
            waiting = app.store.runs.outbox_status()
            if waiting["next_attempt_at"] is not None:
                count = waiting["outbox"]["pending"] + waiting["outbox"]["sending"]
                click.echo(
                    f"Nothing due: {count} waiting to be retried, the next at {_local(app, waiting['next_attempt_at'])}."
                )
        for error in report.errors:
            click.echo(f"Error: {error}", err=True)
    if not ok:
        sys.exit(EXIT_FAILURES)


@cli.command(short_help="Read bounces and complaints that came back by mail.")
@json_option
@with_existing_app
def bounces(app: App, as_json: bool) -> None:
    """Read the new mail in the bounce mailbox (where mail to the return path is
    delivered: delivery.bounces.maildir, or delivery.bounces.imap over TLS): delivery
    status notifications that failed for good (5.x.x) count as hard bounces, only when
    sent to a return path whose signature verifies; feedback-loop complaints suppress the
    address at once. Each message is read once (a Maildir's moved to cur/; an IMAP one
    flagged $AlertsCounted, or moved to processed_folder). 'alerts serve' does this every
    delivery.bounces.every_minutes."""
    from alerts.delivery import return_paths
    from alerts.delivery.bounces import read_bounces

    report = read_bounces(
        app.config.delivery,
        app.store,
        app.clock,
        return_paths(app.config.delivery, app.config.mail),
    )
    if as_json:
        print_json(report.as_dict())
        return
    click.echo(
        f"Read {report.read}: {report.bounces} bounces, {report.complaints} complaints,"
        f" {report.suppressed} addresses suppressed, {report.unverified} not verified, {report.ignored} ignored."
    )
    for note in report.notes:
        click.echo(f"Note: {note}")


@cli.command(short_help="Show the outbox by status and the last run.")
@json_option
@with_existing_app
def status(app: App, as_json: bool) -> None:
    """Show whether 'alerts serve' runs, the senders that run (serve's own, its sender
    processes, any 'alerts send --follow', the web app's), the outbox by status, the
    oldest message waiting, delivery totals, arrival-to-relay latency percentiles (p50, p90, p99, exact,
    over the sent messages still kept: see retention.sent_days), each source's health,
    and the last run."""
    info = (
        app.store.runs.outbox_status()
        | app.store.metrics.operations(app.now())
        | {"holds": holds_status(app)}
    )
    info["relay_pauses"] = [
        {"relay": p.relay, "until": p.until, "since": p.since, "pauses": p.pauses, "reply": p.reply}
        for p in app.store.relays.active(app.now())
    ]
    info["senders"] = [
        {
            "name": s.name,
            "role": s.role,
            "host": s.host,
            "pid": s.pid,
            "started_at": s.started_at,
            "seen_at": s.seen_at,
        }
        for s in app.store.senders.live(app.now())
    ]
    if as_json:
        print_json(info)
        return
    counts = info["outbox"]
    beat = info["heartbeat"]
    if beat is None:
        click.echo("Scheduler: 'alerts serve' has never run against this database")
    elif beat["fresh"]:
        click.echo(
            f"Scheduler: 'alerts serve' running (pid {beat['pid']} on {beat['host']}, heartbeat {beat['age_seconds']:.0f} s ago)"
        )
    else:
        click.echo(
            f"Scheduler: NOT RUNNING: last heartbeat {_local(app, beat['at'])}; start 'alerts serve'"
        )
    for line in sender_lines(app, info["senders"]):
        click.echo(line)
    click.echo("Outbox: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES))
    for pause in info["relay_pauses"]:
        click.echo(
            f'Relay {pause["relay"]}: PAUSED until {_local(app, pause["until"])}, it said "{pause["reply"]}"'
            f" ({pause['pauses']} pause(s) in a row; no message spends an attempt on it)"
        )
    if info["oldest_pending"]:
        click.echo(f"Oldest waiting: queued {_local(app, info['oldest_pending'])}")
    if info["next_attempt_at"]:
        due = info["next_attempt_at"]
        click.echo(f"Next attempt: {'due now' if due <= app.now() else _local(app, due)}")
    totals = info["totals"]
    click.echo(
        "Delivered so far: "
        + ", ".join(f"{totals[k]} {k}" for k in ("sent", "deferred", "bounced", "failed"))
    )
    for group, latency in info["latency"].items():
        if latency["count"]:
            shown = ", ".join(f"p{p} {_seconds(v)}" for p, v in latency["percentiles"].items())
            click.echo(f"Arrival to relay, {group} ({latency['count']} sent): {shown}")
    for source in info["sources"]:
        click.echo(_source_line(app, source))
    for line in holds_lines(app, info["holds"]):
        click.echo(line)
    run = info["last_run"]
    if run is None:
        click.echo("Last run: none yet")
        return
    for line in describe_run(run, _local(app, run["started_at"])):
        click.echo(line)
    failure = info["last_failure"]
    if failure is not None and failure != run:
        for line in describe_run(
            failure, _local(app, failure["started_at"]), label="Last run with failures"
        ):
            click.echo(line)


#: How ``runs.kind`` reads in ``alerts status``.
RUN_KINDS = {
    "run": "alerts run",
    "send": "alerts send",
    "startup": "alerts serve start-up job",
    "poll": "alerts serve poll",
    "files": "alerts serve, a watched folder changed",
    "sender": "alerts serve sender",
    "web-sender": "alerts web sender (confirmations)",
    "daily": "alerts serve daily digest job",
    "weekly": "alerts serve weekly digest job",
}
#: How many of a run's problems ``alerts status`` shows (--json has them all).
SHOW_PROBLEMS = 5


def describe_run(run: dict[str, Any], started: str, *, label: str = "Last run") -> list[str]:
    """The last run as a person reads it: what it was, when, how it went, what it did."""
    summary = run["summary"] or {}
    outcome = {True: "ok", False: "with failures", None: "unfinished"}[run["ok"]]
    took = (
        f" ({summary['seconds']:.1f} s)" if isinstance(summary.get("seconds"), int | float) else ""
    )
    lines = [f"{label}: {RUN_KINDS.get(run['kind'], run['kind'])} at {started}{took}: {outcome}"]
    if "new" in summary:  # a pipeline cycle (alerts.pipeline.RunReport)
        failed = (
            f", {summary['failed_sources']} source(s) could not be read"
            if summary.get("failed_sources")
            else ""
        )
        lines.append(
            f"  Advisories: {summary['new']} new, {summary['updated']} updated, {summary['rejected']} rejected{failed}"
        )
        if summary.get("outside_coverage") or summary.get("no_place"):
            lines.append(
                f"  Areas to check: {summary.get('outside_coverage', 0)} outside coverage (stored, not mailed),"
                f" {summary.get('no_place', 0)} force-wide for want of a place ('alerts advisories show ID')"
            )
        lines.append(
            f"  Feeds: {summary['feeds_written']} rewritten, {summary['feeds_unchanged']} unchanged"
        )
        digests = (
            f" (ran the {' and '.join(summary['digests'])} digests)"
            if summary.get("digests")
            else ""
        )
        lines.append(f"  Mail: {summary['queued']} queued{digests}; {_mail(summary)}")
        if summary.get("failed_stages"):
            lines.append(f"  Failed: {', '.join(summary['failed_stages'])}")
    elif "sent" in summary:  # alerts send (alerts.delivery.SendReport)
        lines.append(f"  Mail: {_mail(summary)}")
    problems = list(summary.get("problems") or summary.get("errors") or [])
    if summary.get("error"):
        problems.append(summary["error"])
    for problem in problems[:SHOW_PROBLEMS]:
        lines.append(f"  ! {problem}")
    if len(problems) > SHOW_PROBLEMS:
        lines.append(
            f"  ... and {len(problems) - SHOW_PROBLEMS} more ('alerts status --json' lists them all)"
        )
    if summary.get("stopped"):
        lines.append("  Stopped early (SIGTERM or Ctrl-C); the rest stayed queued.")
    return lines


def _mail(summary: dict[str, Any]) -> str:
    text = ", ".join(f"{summary.get(k, 0)} {k}" for k in ("sent", "deferred", "bounced", "failed"))
    if summary.get("suppressed"):
        text += f", {summary['suppressed']} not sent to suppressed addresses"
    if summary.get("suppressed_addresses"):
        text += f"; {summary['suppressed_addresses']} address(es) suppressed after repeated bounces"
    return text


def _seconds(value: float) -> str:
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.0f} min"
    return f"{value / 3600:.1f} h"


def sender_lines(app: App, senders: list[dict[str, Any]]) -> list[str]:
    """The long-lived senders that run (serve's own, its sender processes, alerts web's)."""
    if not senders:
        return ["Senders: none running"]
    lines = [f"Senders: {len(senders)} running"]
    for sender in senders:
        seen = max((app.now() - sender["seen_at"]).total_seconds(), 0.0)
        lines.append(
            f"  {ROLES.get(sender['role'], sender['role'])}: pid {sender['pid']} on {sender['host']},"
            f" since {_local(app, sender['started_at'])}, last seen {seen:.0f} s ago"
        )
    return lines


def _source_line(app: App, source: dict[str, Any]) -> str:
    name = f"Source {source['source']} ({source['kind']})"
    if not source["failures"]:
        return f"{name}: ok, last read {_local(app, source['last_poll_at'])}"
    since = f"last ok {_local(app, source['last_ok_at'])}" if source["last_ok_at"] else "never read"
    return (
        f"{name}: FAILING, {source['failures']} poll(s) in a row ({since}): {source['last_error']}"
    )


def holds_status(app: App) -> dict[str, Any]:
    """Every hold: the sources surging and the batches held (surges, dropped ones are
    not), and the updates waiting for their interval."""
    labels = [source.label for source in app.config.sources]
    lives = app.store.holds.lifecycles(labels)
    return {
        "sources": {
            label: (lives[label].state.value if label in lives else "healthy") for label in labels
        },
        "batches": [
            {"source": b.source, "hold": b.hold.value, "advisories": b.count, "since": b.since}
            for b in app.store.holds.batches()
            if b.hold is not Hold.DROPPED
        ],
        "updates": [
            {"id": u.id, "title": u.title, "since": u.since} for u in app.store.holds.held_updates()
        ],
    }


def holds_lines(app: App, holds: dict[str, Any]) -> list[str]:
    lines = [
        f"HELD: {b['source']} took an existing advisory's url (since {_local(app, b['since'])});"
        " 'alerts advisories list --held', then give it its own url or 'alerts advisories release ID'"
        if b["hold"] == Hold.REPLACEMENT
        else f"HELD: {b['advisories']} advisories from {b['source']} wait for review (since {_local(app, b['since'])});"
        " release or keep them in the console (/admin), or 'alerts advisories release ID'"
        if b["hold"] == Hold.REVIEW
        else f"HELD: {b['advisories']} advisories from {b['source']} ({b['hold']}) since {_local(app, b['since'])};"
        f" 'alerts advisories list --held', then 'alerts sources release {b['source']}' or 'drop'"
        for b in holds["batches"]
    ]
    for update in holds["updates"]:
        lines.append(
            f"Held update: advisory {update['id']} '{one_line(update['title'], limit=60)}' changed"
            f" {_local(app, update['since'])}, mailed once its update interval has passed"
        )
    return lines or ["Holds: none"]


def summary_line(summary: dict[str, Any]) -> str:
    return (
        f"Sent {summary['sent']}, deferred {summary['deferred']}, bounced {summary['bounced']}, "
        f"failed {summary['failed']}, suppressed {summary['suppressed']}."
    )


def send_progress() -> Callable[[int], Callable[[int], None]] | None:
    """A bar on a terminal; off one no factory at all, so delivery does not count what is due."""
    return progress_bar("send", "msg") if sys.stderr.isatty() else None


def _follow(app: App, stop: threading.Event, workers: int | None) -> None:
    """``alerts send --follow``: the sender 'alerts serve' runs, alone, until stopped."""
    root = click.get_current_context().find_root().params
    if not root.get("quiet") and not root.get("verbose"):
        # As 'alerts serve': one line per send that did something.
        logging.getLogger().setLevel(logging.INFO)
        logging.getLogger("alerts.delivery").setLevel(logging.WARNING)
    with stop_on_signals(stop):
        drainer = outbox_drainer(
            app.config.delivery,
            app.config.mail,
            app.store,
            stop,
            clock=app.clock,
            name="sender",
            workers=workers,
            role="send",
        ).start()
        log.info("sending until stopped (SIGTERM or Ctrl-C)")
        while not stop.wait(0.5):
            pass
        drainer.join()


def _stop_when_stdin_ends(stop: threading.Event) -> None:
    """Set ``stop`` once standard input reaches its end: the parent that holds the pipe's
    other end is gone (kill -9 included: the kernel closes its end)."""

    def wait() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        if not stop.is_set():
            log.info("standard input closed (the process that started this one ended): stopping")
            stop.set()

    threading.Thread(target=wait, name="stdin-watch", daemon=True).start()


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
    return app.local(value).strftime("%d/%m/%Y %H:%M %Z")
