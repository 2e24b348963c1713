"""console: two-step sign-in (TOTP) and each user's last sign-in

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 21:40:00.000000
"""

from alembic import op
import sqlalchemy as sa
import alerts.store.schema


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column('totp_pending', sa.String(length=400), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column('last_sign_in_at', alerts.store.schema.UtcDateTime(timezone=True), nullable=True)
        )

    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('awaiting_code', sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('awaiting_code')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('last_sign_in_at')
        batch_op.drop_column('totp_last_step')
        batch_op.drop_column('totp_pending')
        batch_op.drop_column('totp_secret')
