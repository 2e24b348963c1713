"""The undo link a coordinator is mailed when a one-click ended their forwardable
subscription.

Every edition carries RFC 8058 one-click ``List-Unsubscribe`` in its headers (the bulk
senders' rules require it), and the forwardable edition is forwarded: a member's mail
app holding a forwarded copy can press it and end the coordinator's subscription. So
when a one-click ends an active forwardable subscription, its owner is mailed at once
(transactional mail, queued just after they left, which the lifecycle's ``may_mail``
allows) a link that restores it exactly as it was: areas, frequency, edition,
confirmation and watermark (the row keeps them all while unsubscribed), so nothing
published meanwhile is missed.

The link is signed, carries the row's link key (it acts on that person only, and on
nobody after an erasure or a purge) and the moment they left: it works once, and only
while nothing changed since (:meth:`alerts.store.subscribers.Subscribers.undo_unsubscribe`).
If they asked to subscribe again meanwhile, the undo does nothing: their newer choice
stands (:func:`undo_state`).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from email.utils import make_msgid
from typing import Any

from jinja2 import TemplateError

from alerts.config import MailSettings
from alerts.errors import ConfigError
from alerts.store import Store
from alerts.subscribers.mail import (
    CONFIRMATION,
    build_transactional_message,
    email_templates,
    queue_transactional,
    render_html_email,
)
from alerts.tokens import UNDO_MAX_AGE, UndoClaim, link_signer
from alerts.types import Subscriber, SubscriberStatus

#: The digest kind of the undo email.
UNDO_MAIL = "undo"
UNDO_TEMPLATES = ("undo.txt", "undo.html")


class UndoState(enum.StrEnum):
    """What an undo link can do now."""

    CAN_UNDO = "can-undo"  # still unsubscribed since that one-click, nothing asked since
    DONE = "done"  # active again (undone, or they came back another way)
    CHANGED = "changed"  # left again, or asked to subscribe again, since: the newer stands
    SUPPRESSED = "suppressed"  # bounced or complained since: never mailed again


def check_undo_templates(mail: MailSettings) -> None:
    """Raise :class:`ConfigError` naming the file when an undo template is missing."""
    env = email_templates(mail)
    for name in UNDO_TEMPLATES:
        try:
            env.get_template(name)
        except TemplateError as exc:
            raise ConfigError(
                f"missing or broken email template {name}: {exc}",
                where=str(mail.template_folders("email")[0]),
                hint="copy it from Area Alerts' templates/email folder",
            ) from None


def send_undo(
    mail: MailSettings,
    store: Store,
    subscriber: Subscriber,
    area_names: list[str],
    *,
    left_at: datetime,
) -> int | None:
    """Queue the undo email to ``subscriber`` (as they were before the one-click that
    ended their subscription at ``left_at``). None for a row without a link key (made
    before rows had one: a link could not be bound to it)."""
    if subscriber.link_key is None:
        return None
    # Queued after they left, so the lifecycle's rule lets it go to an unsubscribed
    # address (a frozen or coarse clock would give both the same stamp).
    queued_at = left_at + timedelta(microseconds=1)
    signer = link_signer(mail.site.base_url, mail.security)
    undo_url = signer.undo_url(subscriber.id, subscriber.link_key, left_at, queued_at)
    subject = f"Your {mail.site.name} alerts were stopped"
    context: dict[str, Any] = {
        "site": mail.site,
        "subscriber": subscriber,
        "areas": area_names,
        "undo_url": undo_url,
        "undo_days": UNDO_MAX_AGE // 86400,
        "left_at": left_at.astimezone(mail.tz),
        "privacy_url": f"{mail.site.base_url}/privacy",
    }
    env = email_templates(mail)
    text = env.get_template("undo.txt").render(context)
    html = render_html_email(mail, "undo.html", subject, context)
    message_id = make_msgid(idstring=UNDO_MAIL, domain=mail.email.domain)
    message = build_transactional_message(
        mail, subscriber, subject, text, html, now=queued_at, message_id=message_id
    )
    return queue_transactional(
        store,
        subscriber.id,
        message["Subject"],
        text,
        html,
        queued_at,
        message_id=message_id,
        raw=message.as_string(),
        kind=UNDO_MAIL,
        not_before=left_at,  # due at once
    )


def undo_state(store: Store, subscriber: Subscriber, claim: UndoClaim) -> UndoState:
    """What the undo link ``claim`` (already bound to ``subscriber``) can do now."""
    if subscriber.status is SubscriberStatus.SUPPRESSED:
        return UndoState.SUPPRESSED
    if subscriber.status is SubscriberStatus.ACTIVE:
        return UndoState.DONE
    if (
        subscriber.status is not SubscriberStatus.UNSUBSCRIBED
        or subscriber.status_changed_at != claim.left_at
        or store.digests.queued_since(subscriber.id, CONFIRMATION, claim.left_at) > 0
    ):
        return UndoState.CHANGED
    return UndoState.CAN_UNDO
