"""feature flags: one row per flag and environment

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:33:27.125018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.store

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('feature_flags',
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('flag', sa.String(length=64), nullable=False),
    sa.Column('percent', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('declared_by', sa.String(length=128), nullable=False),
    sa.Column('changed_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('environment', 'flag')
    )


def downgrade() -> None:
    op.drop_table('feature_flags')
