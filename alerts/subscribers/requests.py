"""What the web forms set in motion, after the answer has gone back: a sign-up, and a
request for a manage link.

The forms answer the same page whatever the address, and answer it before any of this
runs (the web app hands these to its worker, off the connection:
:mod:`alerts.web.form_work`), so neither the words nor the time of the answer, nor of
the next one on a kept-alive connection, tell anyone whether an address is subscribed.
What is sent:

============  ===========================  ================================
address       sign-up                      manage link asked for
============  ===========================  ================================
unknown       confirmation (new, pending)  nothing
pending       confirmation again           confirmation again
active        "already subscribed" notice  manage link
unsubscribed  confirmation (stays          nothing
              unsubscribed until the
              owner confirms)
suppressed    nothing, ever                nothing, ever
============  ===========================  ================================
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from alerts.areas import Gazetteer
from alerts.config import DigestsConfig, MailSettings
from alerts.store import Store
from alerts.store.limits import FORM_MAIL, FORM_MAIL_KEY, MAILBOX, mailbox_key
from alerts.store.subscribers import ACTIVE, PENDING, SUPPRESSED
from alerts.subscribers.mail import send_confirmation
from alerts.subscribers.notices import ALREADY, MANAGE_LINK, WELCOME, send_notice
from alerts.subscribers.validation import Subscription
from alerts.types import Subscriber

log = logging.getLogger(__name__)


def area_names(gazetteer: Gazetteer, subscriber: Subscriber) -> list[str]:
    return [gazetteer.node(slug).name if slug in gazetteer else slug for slug in subscriber.areas]


def form_mail_time(store: Store, now: datetime) -> datetime | None:
    """None when mail the forms set off may go now; past the hourly ceiling on all of it
    (:data:`FORM_MAIL`), when it goes instead: queued, never refused, and logged."""
    later = store.limits.ceiling(FORM_MAIL_KEY, FORM_MAIL, now)
    if later is not None:
        log.warning(
            "More than %d form emails this hour: this one is queued for %s",
            FORM_MAIL.per_window,
            later.isoformat(timespec="seconds"),
        )
    return later


def sign_up(
    mail: MailSettings,
    digests: DigestsConfig,
    store: Store,
    gazetteer: Gazetteer,
    subscription: Subscription,
    now: datetime,
) -> str:
    """Act on a sign-up from the form; returns what was done (for logs and tests):
    ``confirm``, ``already``, ``limited`` (the mailbox had its mail for now) or
    ``nothing``."""
    if store.retention.hashed_opt_out(mail.security, subscription.email) == SUPPRESSED.value:
        return "nothing"  # bounced or complained, and kept only as a hash: never mailed
    subscriber, send = store.subscribers.resubscribe_pending(subscription, now=now)
    if not send and subscriber.status is not ACTIVE:
        return "nothing"
    if not store.limits.take(mailbox_key(mail.security, subscription.email), MAILBOX, now):
        return "limited"
    names = area_names(gazetteer, subscriber)
    later = form_mail_time(store, now)
    if send:
        queued = send_confirmation(mail, store, subscriber, names, now=now, not_before=later)
        return "confirm" if queued is not None else "nothing"
    queued = send_notice(
        mail, digests, store, subscriber, ALREADY, names, now=now, not_before=later
    )
    return "already" if queued is not None else "nothing"


def request_manage_link(
    mail: MailSettings,
    digests: DigestsConfig,
    store: Store,
    gazetteer: Gazetteer,
    email: str,
    now: datetime,
) -> str:
    """Act on "Manage your subscription" for ``email`` (any case): ``manage``,
    ``confirm`` (a pending sign-up is asked to confirm again) or ``nothing``."""
    subscriber = store.subscribers.find_mailbox(email)
    if subscriber is None or subscriber.status not in (ACTIVE, PENDING):
        return "nothing"
    if not store.limits.take(mailbox_key(mail.security, email), MAILBOX, now):
        return "limited"
    names = area_names(gazetteer, subscriber)
    later = form_mail_time(store, now)
    if subscriber.status is PENDING:
        queued = send_confirmation(mail, store, subscriber, names, now=now, not_before=later)
        return "confirm" if queued is not None else "nothing"
    queued = send_notice(
        mail, digests, store, subscriber, MANAGE_LINK, names, now=now, not_before=later
    )
    return "manage" if queued is not None else "nothing"


def welcome(
    mail: MailSettings,
    digests: DigestsConfig,
    store: Store,
    gazetteer: Gazetteer,
    subscriber: Subscriber,
    now: datetime,
) -> str:
    """After confirmation: the areas, the frequency, when mail comes and how to leave."""
    sent = send_notice(
        mail, digests, store, subscriber, WELCOME, area_names(gazetteer, subscriber), now=now
    )
    return "welcome" if sent is not None else "nothing"


def quietly(action: Callable[..., str], *args: object) -> None:
    """Run ``action`` after the answer went back: its failure is logged for the
    operator (the resident has their page already; a retry is theirs to make)."""
    try:
        outcome = action(*args)
    except Exception:
        log.exception("%s failed", action.__name__)
        return
    log.debug("%s: %s", action.__name__, outcome)
