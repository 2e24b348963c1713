"""relay pauses and unanswered bodies

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 19:20:00.000000
"""

from alembic import op
import sqlalchemy as sa
import alerts.store.schema


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('relay_pauses',
    sa.Column('relay', sa.String(length=300), nullable=False),
    sa.Column('paused_until', alerts.store.schema.UtcDateTime(timezone=True), nullable=False),
    sa.Column('since', alerts.store.schema.UtcDateTime(timezone=True), nullable=False),
    sa.Column('pauses', sa.Integer(), nullable=False),
    sa.Column('reply', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('relay', name=op.f('pk_relay_pauses'))
    )
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('unanswered', sa.SmallInteger(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('outbox') as batch:
        batch.drop_column('unanswered')
    op.drop_table('relay_pauses')
