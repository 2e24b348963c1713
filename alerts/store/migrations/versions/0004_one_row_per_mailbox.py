"""One row per mailbox; opt-outs kept as keyed hashes; mail limits.

Rows whose addresses differ only in case are merged first, so the unique index on
lower(email) can be made. Which row stays is the safe one: an opt-out (suppressed, then
unsubscribed) wins over a subscription, so nobody who opted out under any spelling is
mailed again; between subscriptions the active one, then the oldest, stays, and takes
the areas of the others.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 03:33:14.816532
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

import alerts.store.schema

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

RANK = {"suppressed": 0, "unsubscribed": 1, "active": 2, "pending": 3}


def upgrade() -> None:
    op.create_table(
        "mail_limits",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("last_at", alerts.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("window_start", alerts.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_mail_limits")),
    )
    op.create_table(
        "opt_outs",
        sa.Column("mailbox_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("hashed_at", alerts.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox_hash", name=op.f("pk_opt_outs")),
    )
    merge_case_variants(op.get_bind())
    op.create_index("uq_subscribers_mailbox", "subscribers", [sa.text("lower(email)")], unique=True)


def merge_case_variants(conn: sa.Connection) -> None:
    subscribers = sa.table("subscribers", sa.column("id"), sa.column("email"), sa.column("status"))
    areas = sa.table("subscriber_areas", sa.column("subscriber_id"), sa.column("area"))
    sent = sa.table("subscriber_advisories", sa.column("subscriber_id"))
    outbox = sa.table("outbox", sa.column("subscriber_id"))
    mailbox = sa.func.lower(subscribers.c.email)
    repeated = sa.select(mailbox).group_by(mailbox).having(sa.func.count() > 1)
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for row in conn.execute(
        sa.select(subscribers.c.id, subscribers.c.status, mailbox.label("mailbox")).where(mailbox.in_(repeated))
    ):
        groups[row.mailbox].append((row.id, row.status))
    for rows in groups.values():
        kept_id, kept_status = min(rows, key=lambda row: (RANK.get(row[1], 9), row[0]))
        others = [row_id for row_id, _ in rows if row_id != kept_id]
        if kept_status in ("active", "pending"):
            have = set(conn.execute(sa.select(areas.c.area).where(areas.c.subscriber_id == kept_id)).scalars())
            more = set(conn.execute(sa.select(areas.c.area).where(areas.c.subscriber_id.in_(others))).scalars())
            if more - have:
                conn.execute(sa.insert(areas), [{"subscriber_id": kept_id, "area": area} for area in sorted(more - have)])
        for table in (areas, sent, outbox):
            conn.execute(sa.delete(table).where(table.c.subscriber_id.in_(others)))
        conn.execute(sa.delete(subscribers).where(subscribers.c.id.in_(others)))


def downgrade() -> None:
    op.drop_index("uq_subscribers_mailbox", table_name="subscribers")
    op.drop_table("opt_outs")
    op.drop_table("mail_limits")
