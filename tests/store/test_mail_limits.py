"""The mailbox limit's reservations (``store.limits.reserve``): mail that must go, only
not sooner than the limit allows (an import's confirmations), gets the first instant the
limit allows, counted then, on SQLite and PostgreSQL."""

from __future__ import annotations

from alerts.store import Store
from alerts.store.limits import MAILBOX
from tests.support import NOW

KEY = "mailbox:test"


def test_reservations_take_the_next_instants_the_limit_allows(store: Store) -> None:
    gap, day = MAILBOX.gap, MAILBOX.window
    assert [store.limits.reserve(KEY, MAILBOX, NOW) for _ in range(4)] == [
        NOW,
        NOW + gap,
        NOW + 2 * gap,
        NOW + day,  # three in the day's window: the fourth when it ends
    ]
    # The form counts after them: nothing more for this mailbox until the last has gone.
    assert not store.limits.take(KEY, MAILBOX, NOW + 3 * gap)
    assert not store.limits.take(KEY, MAILBOX, NOW + day + gap / 2)
    assert store.limits.take(KEY, MAILBOX, NOW + day + gap)
