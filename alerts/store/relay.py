"""``store.relays``: a relay's pause, remembered across runs and processes. When a relay
asks every sender to wait (its quota, its throttle), no process sends through it until
the pause ends, and the pause doubles each time the relay asks again before accepting
anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from alerts.store.schema import relay_pauses
from alerts.store.writes import write_transaction


@dataclass(frozen=True)
class RelayPause:
    relay: str
    until: datetime
    since: datetime
    #: Pauses in a row with nothing accepted between.
    pauses: int
    #: The relay's words.
    reply: str


class RelayPauses:
    def __init__(self, engine: Engine):
        self.engine = engine

    def get(self, relay: str) -> RelayPause | None:
        """The relay's pause, if one was recorded (it may have ended: compare ``until``)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(relay_pauses).where(relay_pauses.c.relay == relay)).first()
        return None if row is None else _pause(row)

    def active(self, now: datetime) -> list[RelayPause]:
        """Every relay paused at ``now``."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(relay_pauses).where(relay_pauses.c.paused_until > now)).all()
        return [_pause(r) for r in rows]

    def pause(
        self, relay: str, reply: str, now: datetime, backoff: Callable[[int], timedelta]
    ) -> RelayPause:
        """Record that ``relay`` asked to wait; ``backoff(n)`` is the wait after the n-th
        pause in a row. A pause still running is kept (several workers and processes meet
        the same reply at once: one pause, not one each)."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                select(relay_pauses).where(relay_pauses.c.relay == relay).with_for_update()
            ).first()
            if row is not None and row.paused_until > now:
                return _pause(row)
            pauses = 1 if row is None else row.pauses + 1
            until = now + backoff(pauses)
            said = reply[:2000]
            values = {"paused_until": until, "pauses": pauses, "reply": said}
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(relay_pauses.insert().values(relay=relay, since=now, **values))
                except IntegrityError:  # another process paused it this instant: theirs stands
                    return _pause(
                        conn.execute(
                            select(relay_pauses).where(relay_pauses.c.relay == relay)
                        ).one()
                    )
                return RelayPause(relay, until, now, pauses, said)
            conn.execute(update(relay_pauses).where(relay_pauses.c.relay == relay).values(values))
            return RelayPause(relay, until, row.since, pauses, said)

    def recovered(self, relay: str) -> None:
        """The relay accepted a message: its next pause starts from the base backoff."""
        with write_transaction(self.engine) as conn:
            conn.execute(delete(relay_pauses).where(relay_pauses.c.relay == relay))


def _pause(row: Any) -> RelayPause:
    return RelayPause(row.relay, row.paused_until, row.since, row.pauses, row.reply)
