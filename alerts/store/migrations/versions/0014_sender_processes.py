"""sender processes: the long-lived senders that run, for alerts status and /metrics

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:00:00
"""

import sqlalchemy as sa
from alembic import op

import alerts.store.schema

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sender_processes",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", alerts.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", alerts.store.schema.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sender_processes")),
    )


def downgrade() -> None:
    op.drop_table("sender_processes")
