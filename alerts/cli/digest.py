"""``alerts preview`` and ``alerts digest``: look at what subscribers would get, then
queue it into the outbox (``alerts send`` delivers it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from alerts.app import App
from alerts.cli import cli, json_option, parse_when, print_json, with_existing_app
from alerts.cli.checks import check_startup
from alerts.digest import PlannedMessage, preview_digest, queue_digests
from alerts.locking import instance_lock, queue_turn
from alerts.types import Frequency

FREQUENCIES = click.Choice([f.value for f in Frequency])


@cli.command(short_help="Show what a subscriber to an area would get; sends nothing.")
@click.option(
    "--area",
    "areas",
    multiple=True,
    required=True,
    help="Area (slug, name or postcode district); repeat for several.",
)
@click.option(
    "--frequency",
    type=FREQUENCIES,
    default=Frequency.DAILY.value,
    show_default=True,
    help="Which kind of message.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML part to this file.",
)
@click.option(
    "--eml",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the whole message (.eml) to this file.",
)
@click.option(
    "--forwardable", is_flag=True, help="As a coordinator's copy: no personal links in the body."
)
@click.option(
    "--at", "at", help="Preview as of this time (DD/MM/YYYY HH:MM or ISO 8601) [default: now]."
)
@json_option
@with_existing_app
def preview(
    app: App,
    areas: tuple[str, ...],
    frequency: str,
    out: Path | None,
    eml: Path | None,
    forwardable: bool,
    at: str | None,
    as_json: bool,
) -> None:
    """Show what a subscriber to --area would get, sending nothing and moving no watermark.

    Without --out or --eml the plain-text part is printed.

    \b
    Examples:
      alerts preview --area chatham
      alerts preview --area "Tunbridge Wells" --frequency weekly --out week.html --eml week.eml
    """
    slugs = tuple(app.gazetteer.resolve(area) for area in areas)
    now = parse_when(at, app, "--at") or app.now()
    result = preview_digest(
        app.config.mail,
        app.config.digests,
        app.store,
        app.gazetteer,
        slugs,
        Frequency(frequency),
        now=now,
        forwardable=forwardable,
    )
    if result.rendered is None:
        message = f"Nothing to preview: no advisories for {', '.join(slugs)}."
        if as_json:
            print_json({"subject": None, "advisories": 0, "note": message})
        else:
            click.echo(
                message + ("" if app.store.advisories.count() else " Run 'alerts ingest' first.")
            )
        return
    if out is not None:
        _write(out, result.html.encode("utf-8"))
    if eml is not None:
        _write(eml, result.message)
    note = (
        f"nothing new in the last {'week' if frequency == 'weekly' else 'day'}: showing the latest"
        if result.latest
        else None
    )
    info: dict[str, Any] = {
        "subject": result.rendered.subject,
        "advisories": result.count,
        "html_bytes": len(result.html.encode("utf-8")),
        "message_bytes": len(result.message),
        "out": str(out) if out else None,
        "eml": str(eml) if eml else None,
        "note": note,
    }
    if as_json:
        print_json(info)
        return
    if out is None and eml is None:
        if note:
            click.echo(f"({note})\n")
        click.echo(f"Subject: {result.rendered.subject}\n")
        click.echo(result.text.rstrip())
        return
    written = " and ".join(str(p) for p in (out, eml) if p is not None)
    click.echo(
        f"{result.rendered.subject}: {result.count} advisor{'y' if result.count == 1 else 'ies'}, HTML {info['html_bytes'] / 1000:.1f} kB; wrote {written}"
    )
    if note:
        click.echo(f"({note})")


@cli.command(short_help="Queue the next digests of one --frequency into the outbox.")
@click.option(
    "--frequency",
    type=FREQUENCIES,
    required=True,
    help="Whose messages to queue (immediate also sends urgent alerts to everyone).",
)
@click.option("--dry-run", is_flag=True, help="Print who would get what; write nothing.")
@json_option
@with_existing_app
def digest(app: App, frequency: str, dry_run: bool, as_json: bool) -> None:
    """Plan and render the next messages for subscribers of --frequency into the outbox.

    Each subscriber gets what is new for their areas since their last message; nothing
    new, no message. Rendering happens once per distinct message, not per subscriber.
    Refuses to run while 'alerts serve' (or another run) holds the database.
    """
    check_startup(app, email=True)
    planned: list[dict[str, Any]] = []

    def show(message: PlannedMessage) -> None:
        if as_json:
            planned.append(message.as_dict())
        else:
            ids = ",".join(str(i) for i in message.advisory_ids)
            click.echo(f"{message.email}\t{message.kind}\t{message.subject}\t[{ids}]")

    if dry_run:
        report = queue_digests(
            app.config.mail,
            app.config.digests,
            app.store,
            app.gazetteer,
            Frequency(frequency),
            now=app.now(),
            dry_run=True,
            on_message=show,
        )
    else:
        # Never alongside 'alerts serve' or another run: both would queue the same messages.
        # And in the queue turn: the console queues too (alerts.locking).
        with (
            instance_lock(app.config.database, "digest", clock=app.clock),
            queue_turn(app.config.database).hold("digest"),
        ):
            report = queue_digests(
                app.config.mail,
                app.config.digests,
                app.store,
                app.gazetteer,
                Frequency(frequency),
                now=app.now(),
            )
    if as_json:
        print_json({**report.as_dict(), **({"planned": planned} if dry_run else {})})
        return
    verb = "Would queue" if dry_run else "Queued"
    click.echo(
        f"{verb} {_count(report.messages, 'message')} to {_count(report.subscribers, f'{frequency} subscriber')}: "
        f"{_count(report.advisories, 'advisory', 'advisories')} in {_count(report.digests, 'distinct message')}."
    )


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise click.FileError(str(path), hint=exc.strerror or str(exc)) from None
