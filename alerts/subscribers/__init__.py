"""Subscribers: who gets what. Input validation (``validation``), coordinators' lists
(``lists``) and transactional mail such as the sign-up confirmation (``mail``).

The records and their status changes live in :mod:`alerts.store.subscribers` (the
digest stage streams subscribers with ``store.subscribers.iterate``; delivery reports hard
bounces with ``record_bounce``).
"""

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
    "InvalidSubscriber",
    "OptedOut",
    "Preferences",
    "Subscription",
    "make_subscription",
    "normalise_email",
    "parse_frequency",
    "resolve_areas",
]
