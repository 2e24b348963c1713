"""The database tables, named once. Changes go through a migration in
``alerts/store/migrations/versions`` (a test checks the two agree)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


advisories = Table(
    "advisories",
    metadata,
    Column("id", Integer, primary_key=True),
    # Identity belongs to a source: ``key`` (a feed's GUID or link, a file's canonical
    # URL) is unique within its ``origin`` ("files", or the feed's URL), not across them.
    Column("origin", String(2000), nullable=False, server_default="files"),
    # Indexed alone too: whether another source stored a key looks across origins.
    Column("key", String(2000), nullable=False, index=True),
    Column("url", Text, nullable=False, index=True),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False, default=""),
    Column("body_html", Text, nullable=False, default=""),
    Column("body_text", Text, nullable=False, default=""),
    Column("content_hash", String(64), nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
    Column("date_assumed", Boolean, nullable=False, default=False),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False, index=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    # The material hash of the version last announced (revision); NULL: not recorded yet.
    Column("revision_hash", String(64)),
    # When a material change arrived too soon after the last one to be mailed; it is
    # released (a new revision) once the update interval has passed. NULL: none held.
    Column("held_since", UtcDateTime, index=True),
    # Times the source went back to the announced version while a change was held.
    Column("flaps", Integer, nullable=False, server_default="0"),
    Column("source", Text, nullable=False),
    Column("force_area", String(100)),
    Column("image_url", Text),
    Column("status", String(20), nullable=False, default="active"),
    Column("priority", String(20), nullable=False, default="normal"),
    Column("expires_at", UtcDateTime),
    Column("tags", JSON, nullable=False, default=list),
    Column("extra", JSON, nullable=False, default=dict),
    # Who it reaches and why, as the area rule decided at ingest (AreaDecision.as_json).
    Column("area_decision", JSON),
    # Outside coverage (an unknown or other force's area): stored, never mailed or published.
    Column("outside_coverage", Boolean, nullable=False, default=False, server_default=false()),
    # An operator's retag: the areas it reaches instead of the rule's ([] for none), kept
    # through re-ingest and source changes until cleared.
    Column("area_override", JSON),
    Column("area_override_at", UtcDateTime),
    # Held back whatever its area (alerts.types.Hold: a source's surge, its first poll's
    # baseline, a dropped surge); NULL: not held. Which source's batch, since when, and
    # what the operator is told.
    Column("hold", String(20), index=True),
    Column("hold_source", String(2000)),
    Column("hold_at", UtcDateTime),
    Column("hold_detail", JSON),
    UniqueConstraint("origin", "key", name="uq_advisories_origin_key"),
)

# The same advisory (a key or URL already stored) arriving from another source: noted on
# the first, never an update of it.
advisory_duplicates = Table(
    "advisory_duplicates",
    metadata,
    Column("advisory_id", ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True),
    Column("origin", String(2000), primary_key=True),
    Column("key", String(2000), primary_key=True),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("first_seen_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
)

# The most specific areas each advisory concerns: what the matching rule reads.
advisory_areas = Table(
    "advisory_areas",
    metadata,
    Column("advisory_id", ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True),
    Column("area", String(100), primary_key=True, index=True),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", Text),
    Column("frequency", String(20), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("forwardable", Boolean, nullable=False, default=False),
    Column("urgent", Boolean, nullable=False, default=True),
    Column("bounces", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("confirmed_at", UtcDateTime),
    Column("status_changed_at", UtcDateTime),
    # Advisories that changed after this instant are new to the subscriber.
    Column("watermark", UtcDateTime),
    Column("origin", Text),
    # A random key every link made for this row carries (alerts.tokens.link_fits): the
    # links of a row that is gone act on nobody. Null only for rows made before keys.
    Column("link_key", String(32)),
    # Ids are never reused (SQLite AUTOINCREMENT; PostgreSQL's sequence never goes back),
    # so a link made for one person never names another.
    sqlite_autoincrement=True,
)
# One row per mailbox: most mail systems ignore the case of the whole address.
Index("uq_subscribers_mailbox", func.lower(subscribers.c.email), unique=True)

# Addresses that unsubscribed, were suppressed or erased, kept only as a keyed hash
# (HMAC of the address in lower case) once the retention period is over: enough to
# never add them again, not enough to read them back.
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("mailbox_hash", String(64), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("hashed_at", UtcDateTime, nullable=False),
)

# Keys this database keeps for itself (the opt-out pepper, alerts.store.pepper), so that
# what they protect does not depend on a file kept elsewhere.
site_keys = Table(
    "site_keys",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", Text, nullable=False),
)

# How often mail was set off for a key (a mailbox's hash, a client address's hash):
# kept in the database so the limits hold across web processes.
mail_limits = Table(
    "mail_limits",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("last_at", UtcDateTime, nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("count", Integer, nullable=False),
)

subscriber_areas = Table(
    "subscriber_areas",
    metadata,
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("area", String(100), primary_key=True, index=True),
)

# Which revision of which advisory each subscriber has been sent (so it goes once,
# and again only when it changed materially).
subscriber_advisories = Table(
    "subscriber_advisories",
    metadata,
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("advisory_id", ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("digest_id", ForeignKey("digests.id", ondelete="SET NULL")),
    Column("queued_at", UtcDateTime, nullable=False),
)

# One rendered variant: the same advisories for the same areas with the same footer.
# Personal links are placeholders in html/text, filled in per message.
digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("areas", JSON, nullable=False, default=list),
    Column("advisory_ids", JSON, nullable=False, default=list),
    Column("created_at", UtcDateTime, nullable=False),
    Column("meta", JSON, nullable=False, default=dict),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("digest_id", ForeignKey("digests.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(20), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("claimed_by", String(100)),
    Column("claimed_until", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    # When the relay accepted it (each message's own moment, not its batch's).
    Column("sent_at", UtcDateTime),
    # alerts.types.MailPriority: lowest first (confirmations, then alerts, then digests).
    Column("priority", SmallInteger, nullable=False, default=20, server_default="20"),
    # When what it carries arrived: the advisory's ingest (the earliest, for a digest),
    # or the request (a confirmation). With sent_at, the latency operators see.
    Column("arrived_at", UtcDateTime),
    Column("latency_ms", BigInteger),
    # Bodies sent that got no final reply (the relay may have taken them): after
    # delivery.max_unanswered more the message is "unknown", never sent again by itself.
    Column("unanswered", SmallInteger, nullable=False, default=0, server_default="0"),
    UniqueConstraint("subscriber_id", "digest_id", name="uq_outbox_subscriber_digest"),
    # Queue order: SQLite ends an index with the rowid anyway; PostgreSQL needs the id.
    Index("ix_outbox_due", "status", "priority", "next_attempt_at", "id"),
)

# What a directory source last saw of each file, so unchanged files are not re-read.
source_files = Table(
    "source_files",
    metadata,
    Column("path", String(2000), primary_key=True),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    # What read it (version, gazetteer, zone): a new one re-reads every file once.
    Column("parser", String(64)),
    Column("seen_at", UtcDateTime, nullable=False),
    # When the file was found deleted: its advisory is withdrawn once the source's
    # withdraw_deleted_hours have passed (unless it comes back). NULL: it is there.
    Column("gone_at", UtcDateTime),
)

# Conditional-GET state and health of each upstream feed.
source_feeds = Table(
    "source_feeds",
    metadata,
    Column("url", String(2000), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("fetched_at", UtcDateTime),
    Column("status", Integer),
    Column("error", Text),
    # A hash of the warnings about the feed as a whole last logged (a repeated GUID, ...):
    # the same ones again are not logged at every poll.
    Column("warned", String(64)),
)

# The health of each source (a folder or a feed, by its label), for operators and metrics.
source_health = Table(
    "source_health",
    metadata,
    Column("source", String(2000), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("last_poll_at", UtcDateTime),
    Column("last_ok_at", UtcDateTime),
    # Failed polls in a row (0 once one succeeds), and ever.
    Column("failures", Integer, nullable=False, default=0),
    Column("failures_total", BigInteger, nullable=False, default=0),
    Column("polls_total", BigInteger, nullable=False, default=0),
    Column("last_error", Text),
    # Where it stands in its lifecycle (alerts.ingest.lifecycle.SourceState).
    Column("state", String(20), nullable=False, server_default="healthy"),
)

# Totals that only grow (messages sent, deferred, bounced, failed), shared by every process.
counters = Table(
    "counters",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", BigInteger, nullable=False, default=0),
)

# The arrival-to-relay latency histogram, counted as messages are sent (so purging sent
# rows never lowers it): per kind of message, how many latencies fell in each bucket
# (above the previous bound, up to ``le_ms``; the last bucket's bound is
# alerts.store.outbox.OVERFLOW_MS) and their sum. Not cumulative: the reader adds up.
latency_buckets = Table(
    "latency_buckets",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("le_ms", BigInteger, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False, default=0),
    Column("sum_ms", BigInteger, nullable=False, default=0),
)

# A relay that asked every sender to wait (a quota or throttle: a 4xx at MAIL FROM, the
# same 4xx for consecutive messages): no process sends through it before paused_until.
relay_pauses = Table(
    "relay_pauses",
    metadata,
    Column("relay", String(300), primary_key=True),
    Column("paused_until", UtcDateTime, nullable=False),
    Column("since", UtcDateTime, nullable=False),
    # Pauses in a row without a message accepted between: the backoff doubles with them.
    Column("pauses", Integer, nullable=False, default=1),
    # The relay's own words, quoted by alerts status, /metrics and the log.
    Column("reply", Text, nullable=False),
)

sender_processes = Table(
    "sender_processes",
    metadata,
    # One run of a long-lived sender (alerts.store.senders.sender_name: host:pid:nonce).
    Column("name", String(120), primary_key=True),
    # What runs it: serve (its own sender), send (alerts send --follow), web.
    Column("role", String(20), nullable=False),
    Column("host", String(64), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("seen_at", UtcDateTime, nullable=False),
)

# How far a sweep that moves no watermark has looked. The urgent sweep (urgent alerts at
# once to daily and weekly subscribers, whose watermarks belong to their digests) covers
# what changed in (swept_until, now]; without it, every cycle until the next digest
# planned every urgent alert of the day again for every one of them (alerts.digest.queue).
# Null: never swept (the next sweep looks from the oldest watermark).
queue_sweeps = Table(
    "queue_sweeps",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("swept_until", UtcDateTime),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("ok", Boolean),
    Column("summary", JSON, nullable=False, default=dict),
)

# -- the operator console (alerts.web.admin) ---------------------------------------

# People who may sign in to /admin. ``role`` is "editor" or "admin"; the password is an
# Argon2id hash (its parameters are in the hash, so raising them re-hashes at sign-in).
# ``totp_secret`` (two-step sign-in on) and ``totp_pending`` (set up, not yet confirmed
# with a code) are encrypted under a key derived from the site's signing key, so a copy
# of the database alone makes no codes; ``totp_last_step`` is the last 30-second step a
# code was accepted for, so no code is accepted twice.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(10), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("password_changed_at", UtcDateTime, nullable=False),
    Column("totp_secret", String(400)),
    Column("totp_pending", String(400)),
    Column("totp_last_step", BigInteger),
    Column("last_sign_in_at", UtcDateTime),
)

# A signed-in browser. ``id`` is the SHA-256 of the cookie's random token, so a copy of
# the table signs nobody in; ``csrf`` is the token every console form posts back.
# ``awaiting_code``: the password was right and the two-step code is still due; such a
# row opens no page, it only lets its browser enter the code.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("awaiting_code", Boolean, nullable=False, default=False, server_default=false()),
)

# Failed sign-ins, per key: an account name from one client (the lockout), or one
# client across every account (the slowdown). Keys hold keyed hashes, never an address.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("locked_until", UtcDateTime),
)

# Every console action: who, what, when, on what, and the record before and after.
# Residents appear only by subscriber id or a masked address, so erasure stays complete.
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("actor", String(64), nullable=False),
    Column("action", String(40), nullable=False),
    Column("target", String(200), nullable=False, default=""),
    Column("before", JSON),
    Column("after", JSON),
)
