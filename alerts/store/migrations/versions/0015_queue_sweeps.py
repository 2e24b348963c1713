"""queue_sweeps: how far the urgent sweep has looked

The urgent sweep sends urgent alerts at once to daily and weekly subscribers without
moving their watermarks (those belong to their digests), so it looked from their oldest
watermark every time: after one urgent alert, every cycle until the next digest planned
it again for each of them (8 s for 66,000 on PostgreSQL, holding the queue turn, which
delayed the next urgent alert as long). It now looks from where it last finished.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 04:30:00
"""

import sqlalchemy as sa
from alembic import op

import alerts.store.schema

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    sweeps = op.create_table(
        "queue_sweeps",
        sa.Column("name", sa.String(length=20), nullable=False),
        sa.Column("swept_until", alerts.store.schema.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    # Never swept: the first sweep looks from the oldest watermark, as before.
    op.bulk_insert(sweeps, [{"name": "urgent", "swept_until": None}])


def downgrade() -> None:
    op.drop_table("queue_sweeps")
