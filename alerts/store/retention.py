"""Keeping personal data only as long as it serves (``retention:`` in config.yaml), and
what a resident may ask for: erasure and a copy of all that is held.

- :meth:`Retention.purge`: sent messages go after ``sent_days``; sign-ups never confirmed after
  ``pending_days``; addresses that unsubscribed or were suppressed are reduced to a
  keyed hash after ``unsubscribed_days`` (so an import or a sign-up can still tell they
  opted out, and nobody can read the address back).
- :meth:`Retention.erase`: every row that names an address, at once, keeping only its hash.
- :meth:`Retention.export_data`: everything held about an address, as plain data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, String, cast, delete, func, insert, or_, select, update

from alerts.config import RetentionConfig, SecurityConfig
from alerts.store.limits import Limits
from alerts.store.pepper import Pepper
from alerts.store.schema import (
    advisories,
    audit,
    digests,
    login_failures,
    opt_outs,
    outbox,
    runs,
    subscriber_advisories,
    subscribers,
)
from alerts.store.subscribers import OPTED_OUT, PENDING, SUPPRESSED, Subscribers

#: Digest kinds that are one person's message (their address is in its stored copy).
PERSONAL_KINDS = ("confirm", "manage", "already", "welcome")
FINISHED = ("sent", "bounced", "failed", "suppressed")
ERASED = "erased"


@dataclass
class PurgeReport:
    sent_messages: int = 0
    pending_sign_ups: int = 0
    hashed_addresses: int = 0
    stale_limits: int = 0
    audit_entries: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# -- helpers ----------------------------------------------------------------------


def _remove(conn: Connection, subscriber_ids: list[int]) -> int:
    """Delete subscriber rows and all that hangs off them, their own messages' stored
    copies included (those name the address)."""
    if not subscriber_ids:
        return 0
    personal = list(
        conn.execute(
            select(digests.c.id)
            .select_from(outbox.join(digests, outbox.c.digest_id == digests.c.id))
            .where(outbox.c.subscriber_id.in_(subscriber_ids), digests.c.kind.in_(PERSONAL_KINDS))
        ).scalars()
    )
    for table in (outbox, subscriber_advisories):
        conn.execute(delete(table).where(table.c.subscriber_id.in_(subscriber_ids)))
    if personal:
        conn.execute(delete(digests).where(digests.c.id.in_(personal)))
    return int(
        conn.execute(delete(subscribers).where(subscribers.c.id.in_(subscriber_ids))).rowcount
    )


def _keep_hash(conn: Connection, current: str, status: str, now: datetime) -> None:
    known = conn.execute(
        select(opt_outs.c.status).where(opt_outs.c.mailbox_hash == current)
    ).scalar()
    if known is None:
        conn.execute(insert(opt_outs).values(mailbox_hash=current, status=status, hashed_at=now))
    elif known != SUPPRESSED.value:  # suppressed stays suppressed
        conn.execute(
            update(opt_outs)
            .where(opt_outs.c.mailbox_hash == current)
            .values(status=status, hashed_at=now)
        )


def _drop_orphan_digests(conn: Connection, before: datetime) -> None:
    """Digests no message refers to any more: a person's own at once, shared variants
    once they are older than the sent-message period."""
    unused = ~select(outbox.c.id).where(outbox.c.digest_id == digests.c.id).exists()
    conn.execute(
        delete(digests).where(
            unused, or_(digests.c.kind.in_(PERSONAL_KINDS), digests.c.created_at <= before)
        )
    )


def _scrub(value: Any, mailbox: str) -> Any:
    if isinstance(value, str):
        return "[erased]" if mailbox in value.lower() else value
    if isinstance(value, list):
        return [_scrub(item, mailbox) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, mailbox) for key, item in value.items()}
    return value


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class Retention:
    """Purge, erasure and export of personal data (``store.retention``)."""

    def __init__(self, engine: Engine, subscribers: Subscribers, limits: Limits) -> None:
        self.engine = engine
        self.subscribers = subscribers
        self.limits = limits
        self.pepper = Pepper(engine)

    def hashed_opt_out(self, security: SecurityConfig, email: str) -> str | None:
        """How an address that is kept only as a hash left (``unsubscribed``,
        ``suppressed``, ``erased``), or None when no hash of it is kept."""
        with self.engine.connect() as conn:
            if conn.execute(select(opt_outs.c.mailbox_hash).limit(1)).first() is None:
                return (
                    None  # none kept: no need for the key (a fresh install makes it on first use)
                )
            statuses = set(
                conn.execute(
                    select(opt_outs.c.status).where(
                        opt_outs.c.mailbox_hash.in_(self.pepper.mailbox_hashes(security, email))
                    )
                ).scalars()
            )
        if not statuses:
            return None
        return SUPPRESSED.value if SUPPRESSED.value in statuses else sorted(statuses)[0]

    def opt_out_checker(self, security: SecurityConfig) -> Callable[[str], bool]:
        """For an import: whether an address is kept only as the hash of an opt-out or an
        erasure (the hashes read once; each address costs an HMAC per signing key)."""
        with self.engine.connect() as conn:
            known = set(conn.execute(select(opt_outs.c.mailbox_hash)).scalars())

        def hashed(email: str) -> bool:
            return bool(known) and any(
                digest in known for digest in self.pepper.mailbox_hashes(security, email)
            )

        return hashed

    def purge(
        self, retention: RetentionConfig, security: SecurityConfig, now: datetime
    ) -> PurgeReport:
        """Apply ``retention:``; returns how many of each were removed."""
        report = PurgeReport()
        sent_before = now - timedelta(days=retention.sent_days)
        self.pepper.peppers(security)  # read (or made) before the write transaction takes the lock
        with self.engine.begin() as conn:
            report.sent_messages = int(
                conn.execute(
                    delete(outbox).where(
                        outbox.c.status.in_(FINISHED),
                        func.coalesce(outbox.c.sent_at, outbox.c.created_at) <= sent_before,
                    )
                ).rowcount
            )
            # Pending sign-ups never confirmed.
            stale = list(
                conn.execute(
                    select(subscribers.c.id).where(
                        subscribers.c.status == PENDING.value,
                        subscribers.c.created_at <= now - timedelta(days=retention.pending_days),
                    )
                ).scalars()
            )
            report.pending_sign_ups = _remove(conn, stale)
            # Opt-outs past their time: only the keyed hash stays.
            gone = conn.execute(
                select(subscribers.c.id, subscribers.c.email, subscribers.c.status).where(
                    subscribers.c.status.in_([status.value for status in OPTED_OUT]),
                    subscribers.c.status_changed_at
                    <= now - timedelta(days=retention.unsubscribed_days),
                )
            ).all()
            for row in gone:
                _keep_hash(
                    conn, self.pepper.mailbox_hashes(security, row.email)[0], row.status, now
                )
            report.hashed_addresses = _remove(conn, [row.id for row in gone])
            _drop_orphan_digests(conn, sent_before)
        report.stale_limits = self.limits.prune(now)
        with self.engine.begin() as conn:
            report.audit_entries = int(
                conn.execute(
                    delete(audit).where(audit.c.at < now - timedelta(days=retention.audit_days))
                ).rowcount
            )
            # Failed sign-ins past every window that reads them.
            conn.execute(
                delete(login_failures).where(
                    login_failures.c.window_start < now - timedelta(days=1)
                )
            )
        return report

    def erase(self, security: SecurityConfig, email: str, now: datetime) -> int:
        """Remove every row that names ``email`` (in any case), at once, keeping only its
        keyed hash so that no import or form adds it back without its owner. Returns how
        many subscriber rows went (0 when none named it; the hash is kept all the same)."""
        mailbox = email.strip().lower()
        current = self.pepper.mailbox_hashes(security, mailbox)[0]  # before the write lock
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(subscribers.c.id, subscribers.c.status).where(
                    func.lower(subscribers.c.email) == func.lower(mailbox)
                )
            ).all()
            status = (
                SUPPRESSED.value if any(row.status == SUPPRESSED.value for row in rows) else ERASED
            )
            _keep_hash(conn, current, status, now)
            removed = _remove(conn, [row.id for row in rows])
            # A run's summary may name an address (one suppressed during a send).
            for run_id, summary in conn.execute(
                select(runs.c.id, runs.c.summary).where(
                    func.lower(cast(runs.c.summary, String)).contains(mailbox)
                )
            ):
                conn.execute(
                    update(runs).where(runs.c.id == run_id).values(summary=_scrub(summary, mailbox))
                )
        if self.engine.dialect.name == "sqlite":
            # The rows went (overwritten: secure_delete), but the WAL still holds the pages
            # as they were until a checkpoint copies them back; TRUNCATE empties it too.
            # (PostgreSQL keeps dead rows until VACUUM and its WAL until recycled: the
            # privacy notice and README say so.)
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def export_data(self, security: SecurityConfig, email: str) -> dict[str, Any]:
        """All that is held about ``email`` (in any case): its subscriptions, the messages
        queued or sent to it, the advisories it was sent, and whether only a hash is kept."""
        mailbox = email.strip().lower()
        with self.engine.connect() as conn:
            ids = list(
                conn.execute(
                    select(subscribers.c.id).where(
                        func.lower(subscribers.c.email) == func.lower(mailbox)
                    )
                ).scalars()
            )
            messages = conn.execute(
                select(
                    outbox.c.subscriber_id, digests.c.kind, digests.c.subject, outbox.c.status, outbox.c.attempts,
                    outbox.c.created_at, outbox.c.sent_at, outbox.c.last_error,
                )
                .select_from(outbox.join(digests, outbox.c.digest_id == digests.c.id))
                .where(outbox.c.subscriber_id.in_(ids))
                .order_by(outbox.c.id)
            ).mappings().all()  # fmt: skip
            sent = conn.execute(
                select(subscriber_advisories.c.subscriber_id, advisories.c.title, advisories.c.url,
                       subscriber_advisories.c.revision, subscriber_advisories.c.queued_at)
                .select_from(subscriber_advisories.join(advisories, subscriber_advisories.c.advisory_id == advisories.c.id))
                .where(subscriber_advisories.c.subscriber_id.in_(ids))
                .order_by(subscriber_advisories.c.queued_at)
            ).mappings().all()  # fmt: skip
        held = [self.subscribers.get(subscriber_id) for subscriber_id in ids]
        return {
            "email": email,
            "subscriptions": [
                {
                    "email": s.email, "name": s.name, "status": s.status.value, "areas": list(s.areas),
                    "frequency": s.frequency.value, "urgent": s.urgent, "forwardable": s.forwardable,
                    "created_at": _iso(s.created_at), "confirmed_at": _iso(s.confirmed_at),
                    "status_changed_at": _iso(s.status_changed_at), "bounces": s.bounces, "watermark": _iso(s.watermark),
                }
                for s in held
            ],
            "messages": [{key: _iso(value) for key, value in row.items() if key != "subscriber_id"} for row in messages],
            "advisories_sent": [{key: _iso(value) for key, value in row.items() if key != "subscriber_id"} for row in sent],
            "kept_as_hash": self.hashed_opt_out(security, email),
        }  # fmt: skip
