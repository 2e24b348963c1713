"""How far a sweep that moves no watermark has looked (``queue_sweeps``).

The urgent sweep (:mod:`alerts.digest.queue`) sends urgent alerts at once to daily and
weekly subscribers; their watermarks belong to their digests and stay put, so without a
mark of its own the sweep would plan every urgent alert since the last digest again, for
every one of them, at every cycle. It covers (swept_until, now] instead, and records
``now`` once it finished with nothing held back by the flood guard (held alerts must be
looked at again when the hour is up).

A subscriber who may now be due something from before the mark (preferences changed:
areas, frequency, urgent; an unsubscribe undone, with the old watermark kept) moves the
mark back to their watermark in the same transaction (:func:`reopen`), so the next sweep
looks from there, as it always did. A sweep records its end only if the mark is still
what it read at its start (:func:`record`): a reopening meanwhile is never overwritten.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from alerts.store.schema import queue_sweeps, subscribers

#: The urgent sweep of daily and weekly subscribers.
URGENT = "urgent"


def swept_until(engine: Engine, name: str) -> datetime | None:
    """Where sweep ``name`` finished last (None: never, or reopened to the start)."""
    with engine.connect() as conn:
        value = conn.execute(
            select(queue_sweeps.c.swept_until).where(queue_sweeps.c.name == name)
        ).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


def record(engine: Engine, name: str, *, seen: datetime | None, until: datetime) -> bool:
    """Sweep ``name`` covered everything up to ``until``, having started from ``seen``
    (what :func:`swept_until` said). False (nothing changes) when the mark moved since:
    a subscriber reopened it, or another sweep recorded first."""
    with engine.begin() as conn:
        unchanged = (
            queue_sweeps.c.swept_until.is_(None)
            if seen is None
            else queue_sweeps.c.swept_until == seen
        )
        result = conn.execute(
            update(queue_sweeps)
            .where(queue_sweeps.c.name == name, unchanged)
            .values(swept_until=until)
        )
        if result.rowcount == 1:
            return True
        exists = conn.execute(
            select(queue_sweeps.c.name).where(queue_sweeps.c.name == name)
        ).first()
    if exists is not None or seen is not None:
        return False
    try:  # a database made without the migration's row
        with engine.begin() as conn:
            conn.execute(insert(queue_sweeps).values(name=name, swept_until=until))
    except IntegrityError:
        return False  # another sweep inserted it first
    return True


def reopen(conn: Connection, subscriber_id: int) -> None:
    """The subscriber may now be due what changed after their watermark: every sweep
    marked past it looks from there next time."""
    start = conn.execute(
        select(
            func.coalesce(
                subscribers.c.watermark, subscribers.c.confirmed_at, subscribers.c.created_at
            )
        ).where(subscribers.c.id == subscriber_id)
    ).scalar_one_or_none()
    if not isinstance(start, datetime):
        return
    conn.execute(
        update(queue_sweeps).where(queue_sweeps.c.swept_until > start).values(swept_until=start)
    )
