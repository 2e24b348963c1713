"""Subscribers: who gets what. Records and their status changes (``records``), input
validation (``validation``), coordinators' lists (``lists``) and transactional mail such
as the sign-up confirmation (``mail``).

The digest stage streams subscribers with :func:`iter_subscribers`; delivery reports
hard bounces with :func:`record_bounce`.
"""

from alerts.subscribers.records import (
    ACTIVE,
    OPTED_OUT,
    PENDING,
    SUPPRESSED,
    UNSUBSCRIBED,
    add_subscriber,
    confirm_subscriber,
    count_subscribers,
    find_subscriber,
    get_subscriber,
    iter_subscribers,
    record_bounce,
    resubscribe_pending,
    save_subscriber,
    suppress,
    unsubscribe,
    update_subscriber,
)
from alerts.subscribers.validation import (
    InvalidSubscriber,
    OptedOut,
    Preferences,
    Subscription,
    make_subscription,
    normalise_email,
    parse_frequency,
    resolve_areas,
)

__all__ = [
    "ACTIVE",
    "OPTED_OUT",
    "PENDING",
    "SUPPRESSED",
    "UNSUBSCRIBED",
    "InvalidSubscriber",
    "OptedOut",
    "Preferences",
    "Subscription",
    "add_subscriber",
    "confirm_subscriber",
    "count_subscribers",
    "find_subscriber",
    "get_subscriber",
    "iter_subscribers",
    "make_subscription",
    "normalise_email",
    "parse_frequency",
    "record_bounce",
    "resolve_areas",
    "resubscribe_pending",
    "save_subscriber",
    "suppress",
    "unsubscribe",
    "update_subscriber",
]
