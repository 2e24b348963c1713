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

from alerts.config import SecurityConfig
from alerts.store.schema import counters, mail_limits
from alerts.subscribers.limit_keys import limit_client, limit_mailbox
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
#: All mail the forms set off, whoever asked: past this many an hour (a flood from many
#: clients and mailboxes at once) it waits for the next hour instead of going at once.
#: Residents are never refused for it: their mail is queued, only later.
FORM_MAIL = Limit(gap=timedelta(0), per_window=300, window=timedelta(hours=1))
FORM_MAIL_KEY = "global:form-mail"


def mailbox_key(security: SecurityConfig, email: str) -> str:
    """The mailbox an address delivers to, hashed: ``jo+1@`` and ``jo+2@`` count as
    ``jo@``, and Gmail's dots and its two names as one (only here: the address's own row
    and its opt-out hash are the whole address)."""
    return "mailbox:" + mailbox_hashes(security, limit_mailbox(email))[0]


def client_key(security: SecurityConfig, address: str) -> str:
    """A client, hashed: an IPv4-mapped IPv6 address as its IPv4 address, an IPv6
    address by its /64 (one subscriber line's worth of addresses)."""
    return "client:" + keyed_hash(load_secret_key(security), limit_client(address))


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

    def reserve(self, key: str, limit: Limit, now: datetime) -> datetime:
        """Count one use of ``key`` at the first instant from ``now`` that ``limit``
        allows, and return that instant: mail that must go, only not sooner than the
        limit allows (an import's confirmations), is queued to go then, and later uses
        of ``key`` count from it."""
        at = now
        # Each refusal means the row moved since it was read (another use counted): the
        # instant is found again from the row as it is now, and is later than before.
        while True:
            if self.take(key, limit, at):
                return at
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(
                        mail_limits.c.last_at, mail_limits.c.window_start, mail_limits.c.count
                    ).where(mail_limits.c.key == key)
                ).first()
            if row is None:
                continue  # pruned meanwhile: take() makes it again
            last_at, window_start, count = row
            at = max(at, last_at + limit.gap)
            if count >= limit.per_window and window_start > at - limit.window:
                at = max(at, window_start + limit.window)

    def ceiling(self, key: str, limit: Limit, now: datetime) -> datetime | None:
        """Count one use of ``key`` if ``limit`` allows it now (None); otherwise, with
        nothing counted, when its window ends: the moment to send what waits."""
        if self.take(key, limit, now):
            return None
        with self.engine.begin() as conn:
            start = conn.execute(
                select(mail_limits.c.window_start).where(mail_limits.c.key == key)
            ).scalar()
            # How often the ceiling held mail back, for /metrics.
            name = f"ceiling_{key}"
            if not conn.execute(
                update(counters).where(counters.c.name == name).values(value=counters.c.value + 1)
            ).rowcount:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(counters).values(name=name, value=1))
                except IntegrityError:
                    conn.execute(
                        update(counters)
                        .where(counters.c.name == name)
                        .values(value=counters.c.value + 1)
                    )
        return (start or now) + limit.window

    def held_back(self, key: str) -> int:
        """How many times :meth:`ceiling` held mail back for ``key`` since the database was made."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(counters.c.value).where(counters.c.name == f"ceiling_{key}")
            ).scalar()
        return int(value or 0)

    def prune(self, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
        """Drop rows no limit looks at any more (nothing for a day); returns how many."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(delete(mail_limits).where(mail_limits.c.last_at < now - keep)).rowcount
            )
