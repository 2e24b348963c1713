"""site keys: the opt-out pepper kept in the database

The pepper itself is made on first use (alerts.store.pepper), from the signing keys as
they derived it until now, so every hash already kept still matches: a migration has no
configuration to read the keys from.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:58:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_keys",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_site_keys")),
    )


def downgrade() -> None:
    op.drop_table("site_keys")
