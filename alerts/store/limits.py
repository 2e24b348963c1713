"""How often the forms may set off mail, kept in the database so that the limits hold
across web processes and restarts.

Each key (a mailbox's keyed hash, a client address's keyed hash) has one row: when mail
was last set off for it, and how many times in the current window. :meth:`Limits.take` checks
and counts in one conditional UPDATE, so two processes asking at once cannot both get
through: on PostgreSQL the second waits for the first's row lock and then finds the
row changed; on SQLite writes are serialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, Update, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from alerts.config import Config
from alerts.store.schema import mail_limits
from alerts.tokens import keyed_hash, load_secret_key, mailbox_hashes


@dataclass(frozen=True)
class Limit:
    """At most ``per_window`` times in ``window``, and never twice within ``gap``."""

    gap: timedelta
    per_window: int
    window: timedelta


#: Mail to one mailbox set off by the forms (confirmations, manage links, "already
#: subscribed"), however its address is spelled: one per 10 minutes, three a day.
MAILBOX = Limit(gap=timedelta(minutes=10), per_window=3, window=timedelta(days=1))
#: Form posts that may set off mail, from one client address.
CLIENT = Limit(gap=timedelta(0), per_window=30, window=timedelta(hours=1))


def mailbox_key(config: Config, email: str) -> str:
    return "mailbox:" + mailbox_hashes(config, email)[0]


def client_key(config: Config, address: str) -> str:
    return "client:" + keyed_hash(load_secret_key(config), address)


def _counted(key: str, limit: Limit, now: datetime) -> Update:
    """The UPDATE that counts one use, matching the row only when the limit allows it."""
    fresh = mail_limits.c.window_start <= now - limit.window
    allowed = [mail_limits.c.key == key, or_(fresh, mail_limits.c.count < limit.per_window)]
    if limit.gap:
        allowed.append(mail_limits.c.last_at <= now - limit.gap)
    return (
        update(mail_limits)
        .where(*allowed)
        .values(
            last_at=now,
            window_start=case((fresh, now), else_=mail_limits.c.window_start),
            count=case((fresh, 1), else_=mail_limits.c.count + 1),
        )
    )


class Limits:
    """How often the forms may set off mail, per key (``store.limits``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def take(self, key: str, limit: Limit, now: datetime) -> bool:
        """Count one use of ``key`` if ``limit`` allows it now; False (and nothing counted)
        if not."""
        for _attempt in range(3):
            with self.engine.begin() as conn:
                # Write first: on SQLite that takes the write lock (a read that later turns
                # into a write can fail at once when another writer waits).
                if conn.execute(_counted(key, limit, now)).rowcount == 1:
                    return True
                if (
                    conn.execute(select(mail_limits.c.key).where(mail_limits.c.key == key)).first()
                    is not None
                ):
                    # The row exists (perhaps committed just after the UPDATE above looked):
                    # the conditional UPDATE decides, after any other process's UPDATE of it
                    # (PostgreSQL re-checks the WHERE once the row lock is free).
                    return bool(conn.execute(_counted(key, limit, now)).rowcount == 1)
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(mail_limits).values(key=key, last_at=now, window_start=now, count=1)
                    )
                return True
            except IntegrityError:
                continue  # another process made the row meanwhile: count against it
        return False

    def prune(self, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
        """Drop rows no limit looks at any more (nothing for a day); returns how many."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(delete(mail_limits).where(mail_limits.c.last_at < now - keep)).rowcount
            )
