"""``alerts purge`` and ``alerts subscribers erase|export-data``: personal data kept only
as long as ``retention:`` says, erased on request, and shown in full on request."""

from __future__ import annotations

import click

from alerts.app import App
from alerts.cli import cli, json_option, print_json, with_existing_app
from alerts.cli.subscribers import subscribers
from alerts.delivery.maildir import erase_addressed_to
from alerts.subscribers import InvalidSubscriber, normalise_email


@cli.command("purge")
@json_option
@with_existing_app
def purge_command(app: App, as_json: bool) -> None:
    """Delete personal data past its time (retention: in config.yaml).

    Sent messages after retention.sent_days, sign-ups never confirmed after
    pending_days; addresses that unsubscribed or were suppressed are reduced to a keyed
    hash after unsubscribed_days, so they are still never added again; the console's
    audit log goes after audit_days. 'alerts serve' runs this daily.
    """
    report = app.store.retention.purge(app.config.retention, app.config.security, app.now())
    if as_json:
        print_json(report.as_dict())
        return
    click.echo(
        f"Purged {report.sent_messages} sent messages, {report.pending_sign_ups} unconfirmed sign-ups; "
        f"{report.hashed_addresses} opted-out addresses reduced to a keyed hash."
    )


@subscribers.command("erase", short_help="Remove every row that names an address, at once.")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_existing_app
def erase_command(app: App, email: str, yes: bool) -> None:
    """Erase an address on its owner's request: its subscription, the messages queued
    or sent to it and every other row that names it, in any case, at once, and the
    messages the Maildir backend delivered to it. Only a keyed hash stays, so that no
    import or command adds it back.

    \b
    Example:
      alerts subscribers erase jo@example.org --yes
    """
    check_address(email)
    if not yes:
        click.confirm(f"Erase everything held about {email}? This cannot be undone", abort=True)
    removed = app.store.retention.erase(app.config.security, email, app.now())
    # The embedded backend's deliveries are copies we hold too (whichever backend is set
    # now: a site may have started on the Maildir).
    files = erase_addressed_to(app.config.delivery.maildir, email)
    what = f"{removed} subscription{'s' if removed != 1 else ''}" if removed else "no subscription"
    mail = (
        f", {files} delivered message{'s' if files != 1 else ''} in {app.config.delivery.maildir}"
        if files
        else ""
    )
    click.echo(f"Erased {email}: {what}{mail} and all that named it; only a keyed hash is kept.")


@subscribers.command("export-data", short_help="Print all that is held about an address (JSON).")
@click.argument("email")
@with_existing_app
def export_data_command(app: App, email: str) -> None:
    """Print, as JSON, all that is held about an address (a subject access request):
    its subscriptions, the messages queued or sent to it, the advisories it was sent,
    and whether it is kept only as a keyed hash."""
    check_address(email)
    print_json(app.store.retention.export_data(app.config.security, email))


def check_address(email: str) -> None:
    try:
        normalise_email(email)
    except InvalidSubscriber as exc:
        raise click.BadParameter(exc.message, param_hint="EMAIL") from None
