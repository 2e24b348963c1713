"""Mail about a subscription itself, beside the confirmation (:mod:`.mail`):

- ``manage``: a link to change or stop the subscription, asked for on the "Manage your
  subscription" page (a coordinator, whose forwardable copies carry no personal link,
  uses the same path);
- ``already``: "you are already subscribed; manage it here", when an active address
  signs up again (the form says the same whatever the address, so only its owner
  learns that it is subscribed);
- ``welcome``: after confirmation, the areas, the frequency, when mail comes and how
  to leave;
- ``added``: to each address an import made active (``--consented``): who added it and
  why (the basis the operator stated), the areas, and the manage and unsubscribe links.

Each is built and queued like the confirmation (templates ``<kind>.txt`` and
``<kind>.html`` in ``<templates>/email``), and is never sent to an address that
unsubscribed or was suppressed.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import make_msgid
from typing import Any

from jinja2 import TemplateError

from alerts.config import DigestsConfig, MailSettings
from alerts.errors import ConfigError
from alerts.store import Store
from alerts.subscribers.mail import (
    build_transactional_message,
    email_templates,
    queue_transactional,
    render_html_email,
)
from alerts.templating import find_template
from alerts.tokens import MANAGE_MAX_AGE, link_signer
from alerts.types import Frequency, Subscriber, SubscriberStatus

MANAGE_LINK = "manage"
ALREADY = "already"
WELCOME = "welcome"
ADDED = "added"
SUBJECTS = {
    MANAGE_LINK: "Manage your {site} subscription",
    ALREADY: "You are already subscribed to {site}",
    WELCOME: "Welcome to {site}",
    ADDED: "You were added to {site}",
}
KINDS = tuple(SUBJECTS)
MAILABLE = frozenset({SubscriberStatus.ACTIVE, SubscriberStatus.PENDING})


def check_notice_templates(mail: MailSettings) -> None:
    """Raise :class:`ConfigError` naming the file when a notice template is missing or
    broken, so the web app fails at start-up rather than on the first request."""
    folders = mail.template_folders("email")
    env = email_templates(mail)
    for kind in KINDS:
        for name in (f"{kind}.txt", f"{kind}.html"):
            try:
                env.get_template(name)
            except TemplateError as exc:
                found = find_template(folders, name)
                raise ConfigError(
                    f"missing email template {name}"
                    if found is None
                    else f"broken email template {name}: {exc}",
                    where=str(found or folders[0]),
                    hint="copy it from Area Alerts' templates/email folder",
                ) from None


def when_mail_comes(digests: DigestsConfig, subscriber: Subscriber) -> str:
    """'Each day at 07:00 when there is news', in the words of the welcome email."""
    when = {
        Frequency.IMMEDIATE: "as soon as we publish an alert for your areas",
        Frequency.DAILY: f"once a day, at {digests.daily_at:%H:%M}, when there is news for your areas",
        Frequency.WEEKLY: (
            f"once a week, on {digests.weekly_day.capitalize()} at {digests.weekly_at:%H:%M},"
            " when there is news for your areas"
        ),
    }[subscriber.frequency]
    if subscriber.frequency is not Frequency.IMMEDIATE and subscriber.urgent:
        when += "; urgent alerts come at once"
    return when


def notice_content(
    mail: MailSettings,
    digests: DigestsConfig,
    subscriber: Subscriber,
    kind: str,
    area_names: list[str],
    now: datetime,
    basis: str = "",
) -> tuple[str, str, str]:
    """Subject, plain text and HTML of one notice, its links made at ``now``; ``basis``:
    why an import added them (``added``)."""
    env = email_templates(mail)
    links = link_signer(mail.site.base_url, mail.security).links(
        subscriber.id, now, subscriber.link_key
    )
    context: dict[str, Any] = {
        "site": mail.site,
        "subscriber": subscriber,
        "areas": area_names,
        "manage_url": links.manage_url,
        "unsubscribe_url": links.unsubscribe_url,
        "privacy_url": f"{mail.site.base_url}/privacy",
        "manage_days": MANAGE_MAX_AGE // 86400,
        "when": when_mail_comes(digests, subscriber),
        "pending": subscriber.status is SubscriberStatus.PENDING,
        "basis": basis,
    }
    subject = SUBJECTS[kind].format(site=mail.site.name)
    return (
        subject,
        env.get_template(f"{kind}.txt").render(context),
        render_html_email(mail, f"{kind}.html", subject, context),
    )


def send_notice(
    mail: MailSettings,
    digests: DigestsConfig,
    store: Store,
    subscriber: Subscriber,
    kind: str,
    area_names: list[str],
    *,
    now: datetime,
    not_before: datetime | None = None,
    basis: str = "",
) -> int | None:
    """Queue one notice for ``subscriber`` (to go at ``not_before`` if given); returns the outbox id, or None for an
    address that may not be mailed (unsubscribed, suppressed). Limits on how often are
    the caller's (the web pages apply them per mailbox)."""
    if kind not in SUBJECTS:
        raise ValueError(f"unknown notice {kind!r}; one of {', '.join(KINDS)}")
    if subscriber.status not in MAILABLE:
        return None
    subject, text, html = notice_content(mail, digests, subscriber, kind, area_names, now, basis)
    message_id = make_msgid(idstring=kind, domain=mail.email.domain)
    message = build_transactional_message(
        mail, subscriber, subject, text, html, now=now, message_id=message_id
    )
    return queue_transactional(
        store,
        subscriber.id,
        message["Subject"],
        text,
        html,
        now,
        message_id=message_id,
        raw=message.as_string(),
        kind=kind,
        not_before=not_before,
    )
