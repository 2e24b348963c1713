"""``store.returns``: what the store needs for bounces and complaints that come back
later, by mail: find the message they are about, and mark it bounced once (a report
read twice counts once). Counting the bounce against the subscriber and suppressing are
``store.subscribers.record_bounce`` and ``suppress``."""

from __future__ import annotations

from sqlalchemy import Engine, func, or_, select, update

from alerts.store.outbox import OutboxStatus
from alerts.store.schema import outbox, subscribers
from alerts.store.writes import write_transaction

#: A later bounce concerns a message the relay took, or one whose fate was unknown.
_TAKEN = (OutboxStatus.SENT, OutboxStatus.UNKNOWN)


class Returns:
    def __init__(self, engine: Engine):
        self.engine = engine

    def mark_bounced_later(
        self, outbox_id: int, subscriber_id: int, recipient: str, why: str
    ) -> bool:
        """Mark this message bounced if it was sent (or unknown) to ``recipient`` for this
        subscriber; True when it changed (False: already counted, purged, or another
        address: a forwarded copy's bounce is not this subscriber's)."""
        owner = select(subscribers.c.id).where(
            subscribers.c.id == subscriber_id,
            func.lower(subscribers.c.email) == recipient.strip().lower(),
        )
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(outbox)
                .where(
                    outbox.c.id == outbox_id,
                    outbox.c.subscriber_id.in_(owner.scalar_subquery()),
                    outbox.c.status.in_(_TAKEN),
                )
                .values(status=OutboxStatus.BOUNCED, last_error=f"bounced later: {why}"[:2000])
            ).rowcount
        return changed == 1

    def message_by_id(self, message_id: str) -> tuple[int, int] | None:
        """(outbox id, subscriber id) of the message with this Message-ID (with or
        without angle brackets), if it is still kept."""
        bare = message_id.strip().strip("<>")
        with self.engine.connect() as conn:
            row = conn.execute(
                select(outbox.c.id, outbox.c.subscriber_id).where(
                    or_(outbox.c.message_id == f"<{bare}>", outbox.c.message_id == bare)
                )
            ).first()
        return (int(row.id), int(row.subscriber_id)) if row else None
