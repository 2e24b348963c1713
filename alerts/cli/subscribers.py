"""``alerts subscribers add|remove|list|import|export``: the operator's view of who gets what."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from alerts.app import App
from alerts.cli import (
    EXIT_FAILURES,
    EXIT_USAGE,
    cli,
    json_option,
    print_json,
    with_app,
    with_existing_app,
)
from alerts.errors import AlertsError
from alerts.store.limits import MAILBOX, mailbox_key
from alerts.store.subscribers import PENDING
from alerts.subscribers import InvalidSubscriber, OptedOut, Subscription, make_subscription
from alerts.subscribers.lists import SubscriberListError, export_list, import_list
from alerts.subscribers.mail import send_confirmation
from alerts.subscribers.notices import ADDED, send_notice
from alerts.text import one_line
from alerts.types import Frequency, Subscriber, SubscriberStatus

log = logging.getLogger(__name__)
FREQUENCIES = click.Choice([f.value for f in Frequency])
STATUSES = click.Choice([s.value for s in SubscriberStatus])


def fail(exc: AlertsError, code: int = EXIT_USAGE) -> NoReturn:
    """One line, as :class:`alerts.cli.AlertsGroup` prints any error, with a chosen exit status."""
    click.echo(f"Error: {one_line(str(exc))}", err=True)
    click.get_current_context().exit(code)
    raise AssertionError("unreachable")  # Context.exit raises; this tells the type checker


@cli.group()
def subscribers() -> None:
    """Add, remove, list, import and export subscribers."""


@subscribers.command("add", short_help="Add a subscriber, or update one.")
@click.argument("email")
@click.option(
    "--area",
    "areas",
    multiple=True,
    required=True,
    help="Area slug, name or postcode (ME4); repeat for more.",
)
@click.option(
    "--frequency",
    type=FREQUENCIES,
    default="daily",
    show_default=True,
    help="How often they get mail.",
)
@click.option("--name", help="Display name for the To: header.")
@click.option(
    "--forwardable", is_flag=True, help="A coordinator's digest: no personal links in the body."
)
@click.option("--no-urgent", is_flag=True, help="Opt out of urgent alerts sent at once.")
@click.option("--pending", is_flag=True, help="Make them confirm by email before anything is sent.")
@json_option
@with_app
def add(
    app: App,
    email: str,
    areas: tuple[str, ...],
    frequency: str,
    name: str | None,
    forwardable: bool,
    no_urgent: bool,
    pending: bool,
    as_json: bool,
) -> None:
    """Add a subscriber, active at once (or --pending); an existing one is updated.

    An address that unsubscribed or was erased is not added back: it is mailed a
    confirmation of these choices, and is active once its owner confirms. A suppressed
    address is refused.

    \b
    Examples:
      alerts subscribers add ann@example.org --area ME4 --area Dover
      alerts subscribers add watch@example.org --area medway --frequency weekly --forwardable
    """
    try:
        subscription = make_subscription(
            app.gazetteer,
            email,
            areas,
            frequency=frequency,
            name=name,
            forwardable=forwardable,
            urgent=not no_urgent,
        )
    except InvalidSubscriber as exc:
        fail(exc)
    now = app.now()
    existing = app.store.subscribers.find_mailbox(subscription.email)
    hashed = (
        app.store.retention.hashed_opt_out(app.config.security, subscription.email)
        if existing is None
        else None
    )
    if hashed == SubscriberStatus.SUPPRESSED.value:
        fail(OptedOut(f"{subscription.email} was suppressed (bounces or a complaint); it is never mailed again",
                      hint="nothing can be sent to it"), EXIT_FAILURES)  # fmt: skip
    if hashed or (existing is not None and existing.status is SubscriberStatus.UNSUBSCRIBED):
        ask_to_come_back(app, subscription, "was erased" if hashed else "unsubscribed", as_json)
        return
    try:
        subscriber, outcome = app.store.subscribers.save(
            subscription,
            now=now,
            status=PENDING if pending else SubscriberStatus.ACTIVE,
            origin="cli",
        )
    except OptedOut as exc:
        fail(exc, EXIT_FAILURES)
    if outcome == "added" and subscriber.status is PENDING:
        send_confirmation(
            app.config.mail,
            app.store,
            subscriber,
            app.gazetteer.names_of(subscriber.areas),
            now=now,
        )
    if as_json:
        print_json({**subscriber_json(app, subscriber), "outcome": outcome})
        return
    detail = " (a confirmation email is queued)" if outcome == "added" and pending else ""
    click.echo(f"{outcome.capitalize()}: {describe(app, subscriber)}{detail}")


def ask_to_come_back(app: App, subscription: Subscription, how: str, as_json: bool) -> None:
    """An address that left is never made active by anyone but its owner (the lifecycle
    table): the operator's add mails them a confirmation of these choices instead, and
    they are active once they confirm."""
    now = app.now()
    subscriber, _ = app.store.subscribers.resubscribe_pending(subscription, now=now, origin="cli")
    queued = send_confirmation(
        app.config.mail, app.store, subscriber, app.gazetteer.names_of(subscription.areas), now=now
    )
    outcome = "asked" if queued is not None else "asked-recently"
    if as_json:
        print_json({**subscriber_json(app, subscriber), "outcome": outcome})
        return
    sent = (
        "a confirmation email is queued"
        if queued is not None
        else "a confirmation was queued less than 10 minutes ago"
    )
    click.echo(
        f"Asked {subscriber.email} to confirm: it {how}, so only its owner can subscribe again; {sent} "
        f"for {', '.join(app.gazetteer.names_of(subscription.areas))}."
    )


@subscribers.command("remove")
@click.argument("email")
@with_existing_app
def remove(app: App, email: str) -> None:
    """Unsubscribe an address. The record is kept (as unsubscribed) so that no import
    or command can add the address again."""
    subscriber = app.store.subscribers.find(email)
    if subscriber is None:
        similar = app.store.subscribers.similar_addresses(email)
        hint = (
            f"did you mean {' or '.join(similar)}?"
            if similar
            else "run 'alerts subscribers list' to see them"
        )
        fail(AlertsError(f"no subscriber {email!r}", hint=hint))
    if app.store.subscribers.unsubscribe(subscriber.id, now=app.now()):
        click.echo(f"Unsubscribed {subscriber.email}.")
    else:
        click.echo(f"{subscriber.email} was already {subscriber.status.value}; nothing to do.")


@subscribers.command("list")
@click.option("--area", help="Only those who get alerts for this area (slug, name or postcode).")
@click.option("--status", type=STATUSES, help="Only this status [default: all].")
@click.option("--frequency", type=FREQUENCIES, help="Only this frequency.")
@json_option
@with_existing_app
def list_subscribers(
    app: App, area: str | None, status: str | None, frequency: str | None, as_json: bool
) -> None:
    """List subscribers with their areas, frequency and status."""
    # "Gets alerts for this area" is the matching rule, so a Kent subscriber is listed for Medway.
    areas = app.gazetteer.matching_areas([app.gazetteer.resolve(area)]) if area else None
    found = app.store.subscribers.iterate(
        status=SubscriberStatus(status) if status else None,
        frequency=Frequency(frequency) if frequency else None,
        areas=areas,
    )
    if as_json:
        print_json([subscriber_json(app, s) for s in found])
        return
    count = 0
    for subscriber in found:
        count += 1
        flags = "".join(
            f" [{flag}]"
            for flag, on in (
                ("forwardable", subscriber.forwardable),
                ("no urgent", not subscriber.urgent),
            )
            if on
        )
        click.echo(
            f"{subscriber.id:>5}  {subscriber.status.value:<12}  {subscriber.frequency.value:<9}  "
            f"{subscriber.email:<36}  {','.join(subscriber.areas)}{flags}"
        )
    if not count:
        click.echo(
            "No subscribers." if not (area or status or frequency) else "No subscribers match."
        )


@subscribers.command("import", short_help="Import a YAML or CSV list of subscribers.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--consented",
    "basis",
    metavar="BASIS",
    help="The people on the list already agreed to these alerts; say how, in a few words "
    "(e.g. 'signed the Medway watch sign-up sheet, March 2026'). They are active at once, "
    "each mailed a notice that says so, with links to change or leave. The basis is "
    "recorded on each subscriber and in the audit log.",
)
@click.option(
    "--pending",
    is_flag=True,
    hidden=True,
    help="The default: new addresses confirm by email first (kept for scripts).",
)
@click.option(
    "--update", is_flag=True, help="Existing subscribers take the file's areas and frequency."
)
@json_option
@with_app
def import_subscribers(
    app: App, file: Path, basis: str | None, pending: bool, update: bool, as_json: bool
) -> None:
    """Import a YAML or CSV list (see subscribers/example.yaml and example.csv).

    New addresses are pending: each is mailed a confirmation (within the form's limits
    per mailbox: at most one each 10 minutes, 3 a day; what a limit holds back goes
    once it allows) and gets nothing else until its owner confirms. With --consented BASIS, stating how the people on the list agreed,
    they are active at once and each is mailed a notice of it with links to change or
    leave. Addresses that unsubscribed, were suppressed or erased are skipped, never
    re-activated, either way. Idempotent. Bad rows are reported with file:line and
    skipped; the exit status is then 1.

    \b
    Examples:
      alerts subscribers import subscribers/example.yaml
      alerts subscribers import watch.csv --consented "signed the watch's sign-up sheet"
    """
    now = app.now()
    if basis is not None:
        basis = one_line(basis, 200).strip()
        if not basis:
            fail(AlertsError("--consented needs the lawful basis in words",
                             hint="say how the people on the list agreed, e.g. --consented "
                             "\"signed the watch's sign-up sheet, March 2026\""))  # fmt: skip
    mailed = held = 0

    def tell(subscriber: Subscriber) -> None:
        """A confirmation to a pending one, the notice to an active one: within the
        mailbox limit the form's mail keeps. What the limit holds back is queued to go
        as soon as it allows (a sub-address of a mailbox just mailed: 10 minutes later)."""
        nonlocal mailed, held
        key = mailbox_key(app.config.security, subscriber.email)
        at = app.store.limits.reserve(key, MAILBOX, now)
        later = at if at > now else None
        names = app.gazetteer.names_of(subscriber.areas)
        if subscriber.status is PENDING:
            queued = send_confirmation(
                app.config.mail, app.store, subscriber, names, now=now, not_before=later
            )
        else:
            queued = send_notice(
                app.config.mail, app.config.digests, app.store, subscriber, ADDED, names,
                now=now, basis=basis or "", not_before=later,
            )  # fmt: skip
        if queued is not None and later is None:
            mailed += 1
        elif queued is not None:
            held += 1

    try:
        report = import_list(
            app.store,
            app.gazetteer,
            file,
            now=now,
            pending=basis is None,
            update=update,
            on_added=tell,
            hashed=app.store.retention.opt_out_checker(app.config.security),
            origin=f"import:{file.name}" + (f"; consented: {basis}" if basis else ""),
        )
    except SubscriberListError as exc:
        fail(exc)
    if basis is not None:
        app.store.audit.record(
            "cli",
            "import-consented",
            now,
            target=file.name,
            after={"basis": basis, "added": report.added},
        )
        log.info("Imported %s as consented (%s): %d added", file.name, basis, report.added)
    if as_json:
        print_json({**report.as_dict(), "mailed": mailed, "held_by_limit": held})
    else:
        for problem in report.bad:
            click.echo(f"Bad row: {problem}", err=True)
        for problem in report.skipped:
            click.echo(f"Skipped: {problem}", err=True)
        # "kept" only when there are some: it is the one count that asks for something.
        kept = (
            f"{report.kept} kept as they are (--update applies the file to them), "
            if report.kept
            else ""
        )
        click.echo(
            f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, {kept}"
            f"{report.opted_out} opted out, {len(report.skipped)} skipped, {len(report.bad)} bad rows."
        )
        if report.added:
            what = "a notice with links to change or leave" if basis else "a confirmation"
            limit = (
                f"; {held} to go later, as the mailbox limit allows (one each 10 minutes,"
                " 3 a day), by 'alerts serve' or 'alerts send'"
                if held
                else ""
            )
            state = "active (consent stated)" if basis else "pending until they confirm"
            click.echo(f"New addresses are {state}: {mailed} mailed {what}{limit}.")
    if report.bad:
        click.get_current_context().exit(EXIT_FAILURES)


@subscribers.command("export", short_help="Write subscribers as CSV or YAML.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "yaml"]), default="csv", show_default=True
)
@click.option(
    "--status",
    type=STATUSES,
    help="Only this status [default: all, so do-not-mail rows travel too].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of stdout.",
)
@with_existing_app
def export(app: App, fmt: str, status: str | None, out: Path | None) -> None:
    """Write subscribers as CSV or YAML, in the form 'alerts subscribers import' reads."""
    selected = SubscriberStatus(status) if status else None
    if out is None:
        export_list(app.store, sys.stdout, fmt=fmt, status=selected)
        return
    try:
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = export_list(app.store, handle, fmt=fmt, status=selected)
    except OSError as exc:
        raise click.FileError(str(out), hint=exc.strerror or str(exc)) from None
    click.echo(f"Wrote {count} subscribers to {out}.", err=True)


def describe(app: App, subscriber: Subscriber) -> str:
    return (
        f"{subscriber.email} ({subscriber.status.value}, {subscriber.frequency.value}, "
        f"{', '.join(app.gazetteer.names_of(subscriber.areas))})"
    )


def subscriber_json(app: App, subscriber: Subscriber) -> dict[str, Any]:
    def when(moment: Any) -> str | None:
        return app.local(moment).isoformat() if moment else None

    return {
        "id": subscriber.id,
        "email": subscriber.email,
        "name": subscriber.name,
        "areas": list(subscriber.areas),
        "frequency": subscriber.frequency.value,
        "status": subscriber.status.value,
        "forwardable": subscriber.forwardable,
        "urgent": subscriber.urgent,
        "bounces": subscriber.bounces,
        "created_at": when(subscriber.created_at),
        "confirmed_at": when(subscriber.confirmed_at),
        "watermark": when(subscriber.watermark),
    }
