"""What the flood guard (:mod:`alerts.digest.guard`) reads: the alerts queued for each
subscriber lately, counted by kind from the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select

from alerts.schema import digests, outbox
from alerts.store.advisories import Store
from alerts.store.ids import chunks
from alerts.types import DigestKind

#: The kinds of message the guard counts (a daily or weekly digest is never limited).
ALERT_KINDS = tuple(kind.value for kind in DigestKind if kind.alert)


def recent_alerts(
    store: Store, subscriber_ids: Sequence[int], since: datetime
) -> dict[int, dict[str, int]]:
    """subscriber id -> {digest kind: messages queued for them after ``since``}, for the
    alert kinds (immediate, urgent, gathered); subscribers with none are left out."""
    found: dict[int, dict[str, int]] = {}
    if not subscriber_ids:
        return found
    with store.engine.connect() as conn:
        for chunk in chunks(list(subscriber_ids), 900):
            rows = conn.execute(
                select(outbox.c.subscriber_id, digests.c.kind, func.count())
                .select_from(outbox.join(digests, outbox.c.digest_id == digests.c.id))
                .where(
                    outbox.c.subscriber_id.in_(chunk),
                    outbox.c.created_at > since,
                    digests.c.kind.in_(ALERT_KINDS),
                )
                .group_by(outbox.c.subscriber_id, digests.c.kind)
            )
            for subscriber_id, kind, count in rows:
                found.setdefault(subscriber_id, {})[kind] = int(count)
    return found
