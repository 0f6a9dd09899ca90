"""preview teardown saved

A preview's teardown saves what it stops when it begins (`teardown`) and when it finished (`torn_down_at`),
so a deployer that dies in the middle finishes it after its restart. Previews that expired before are
recorded as torn down when they expired: the deployer of the time stopped their instances then.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:23:30.524837
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.store

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('previews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('teardown', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('torn_down_at', libs.store.UtcDateTime(timezone=True), nullable=True))
    op.execute("UPDATE previews SET torn_down_at = expired_at WHERE expired_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('previews', schema=None) as batch_op:
        batch_op.drop_column('torn_down_at')
        batch_op.drop_column('teardown')
