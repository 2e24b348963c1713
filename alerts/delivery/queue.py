"""The outbox as a sending run sees it: ``store.outbox`` with this run's lease, retry
policy and choice of mail (transactional only, for ``alerts web``'s own sender).

The store keeps the queue; when a deferred message is due again, and when to give up on
it, is delivery's to say (:class:`RetryPolicy`), so :meth:`SendQueue.record` writes the
retry times into the outcomes before the store records them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.store.marks import SentMarks
from alerts.store.outbox import Claimed, Outbox, Outcomes, Recorded
from alerts.types import MailPriority


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base`` seconds doubling per attempt up to ``maximum``, with
    jitter so that a relay coming back is not hit by every deferred message at once."""

    base: float
    maximum: float
    max_attempts: int

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """Wait before the next attempt, after ``attempts`` failed ones (1 or more)."""
        exponent = min(max(attempts - 1, 0), 40)
        seconds = min(self.maximum, self.base * 2**exponent)
        seconds *= (rng or random).uniform(0.8, 1.2)
        return timedelta(seconds=min(seconds, self.maximum))


@dataclass(frozen=True)
class SendQueue:
    """``store.outbox`` bound to a run's ``retry`` policy, ``lease`` and choice of mail."""

    outbox: Outbox
    retry: RetryPolicy
    lease: timedelta = timedelta(minutes=5)
    #: Claim only transactional mail (confirmations), never digests or alerts.
    transactional_only: bool = False
    #: Claim only mail of this priority or a more urgent one (``ALERT``: no digests).
    up_to: MailPriority | None = None

    def claim(self, worker: str, limit: int, now: datetime) -> tuple[list[Claimed], int]:
        return self.outbox.claim(
            worker,
            limit,
            now,
            lease=self.lease,
            transactional_only=self.transactional_only,
            up_to=self.up_to,
        )

    def record(self, worker: str, outcomes: Outcomes, now: datetime) -> Recorded:
        return self.outbox.record(worker, self.schedule(outcomes, now), now)

    def record_and_claim(
        self, worker: str, outcomes: Outcomes, limit: int, now: datetime
    ) -> tuple[Recorded, list[Claimed], int]:
        return self.outbox.record_and_claim(
            worker,
            self.schedule(outcomes, now),
            limit,
            now,
            lease=self.lease,
            transactional_only=self.transactional_only,
            up_to=self.up_to,
        )

    def schedule(self, outcomes: Outcomes, now: datetime) -> Outcomes:
        """Set when each deferred row is due again; a row deferred ``max_attempts`` times
        fails instead ("gave up after N attempts")."""
        for claimed, _error in outcomes.relay_deferred:
            # The relay's backoff: until its pause ends, or the base delay, whatever the
            # message's own attempts.
            outcomes.retry_at[claimed.item.outbox_id] = (
                outcomes.relay_until or now + self.retry.delay(1)
            )
        deferred = []
        for claimed, error in outcomes.deferred:
            attempts = claimed.attempts + 1
            if attempts >= self.retry.max_attempts:
                outcomes.failed.append((claimed, f"gave up after {attempts} attempts: {error}"))
            else:
                outcomes.retry_at[claimed.item.outbox_id] = now + self.retry.delay(attempts)
                deferred.append((claimed, error))
        outcomes.deferred = deferred
        return outcomes

    def renew(self, worker: str, ids: Sequence[int], now: datetime) -> set[int]:
        return self.outbox.renew(worker, ids, now, lease=self.lease)

    def release(self, worker: str, ids: Iterable[int]) -> None:
        self.outbox.release(worker, ids)

    def suppress_queued(self, subscriber_id: int) -> int:
        return self.outbox.suppress_queued(subscriber_id)

    def sent_marks(self, monotonic: Callable[[], float]) -> SentMarks:
        return self.outbox.sent_marks(monotonic)

    def alive(self, sender: str) -> AbstractContextManager[None]:
        return self.outbox.alive(sender)

    def reclaim_orphans(self) -> int:
        return self.outbox.reclaim_orphans()

    def next_due(self) -> datetime | None:
        return self.outbox.next_due(transactional_only=self.transactional_only, up_to=self.up_to)

    def due(self, now: datetime) -> int:
        return self.outbox.due(now)
