"""subscriber ids never reused; a link key per subscriber

SQLite hands out the highest id again once the row holding it is deleted, so the links of
an erased subscriber named the next one to sign up. ``subscribers`` is rebuilt with
AUTOINCREMENT (ids only grow, also past deleted ones); PostgreSQL's serial sequence
never goes back already. Every row gets a random ``link_key``, which links made from
now on carry and which a link must match to act.

The rebuild copies the table, drops the old one and renames the copy: with foreign keys
on, the drop would delete every child row (areas, messages, sent records) by ON DELETE
CASCADE. alerts.store.database.migrate switches them off before the transaction (the
pragma does nothing inside one) and runs ``PRAGMA foreign_key_check`` before it commits.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 19:35:00
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: One row per mailbox (0004), made again after the rebuild.
MAILBOX_INDEX = (
    "CREATE UNIQUE INDEX IF NOT EXISTS uq_subscribers_mailbox ON subscribers (lower(email))"
)


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        # The reflection warns that it skips the expression index (made again below);
        # a warning on stderr would break the JSON logs of the command that upgrades.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
            with op.batch_alter_table(
                "subscribers", recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ) as batch:
                batch.add_column(sa.Column("link_key", sa.String(length=32), nullable=True))
        # The copy is made from the reflected table, which leaves out expression indexes.
        op.execute(MAILBOX_INDEX)
        # 16 random bytes as hex (SQLite's randomblob is seeded from the system's entropy).
        op.execute(
            "UPDATE subscribers SET link_key = lower(hex(randomblob(16))) WHERE link_key IS NULL"
        )
    else:
        op.add_column("subscribers", sa.Column("link_key", sa.String(length=32), nullable=True))
        # gen_random_uuid() (PostgreSQL 13+) is drawn from a cryptographic source.
        op.execute(
            "UPDATE subscribers SET link_key = replace(gen_random_uuid()::text, '-', '') WHERE link_key IS NULL"
        )


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
            with op.batch_alter_table("subscribers", recreate="always") as batch:
                batch.drop_column("link_key")
        op.execute(MAILBOX_INDEX)
    else:
        op.drop_column("subscribers", "link_key")
