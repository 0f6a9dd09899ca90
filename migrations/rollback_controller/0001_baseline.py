"""baseline: the tables as create_all made them before there were migrations

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 17:16:51.390129
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.store
from libs.migration_steps import create_messaging_tables_v1, drop_messaging_tables_v1

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Each only if missing: a database made by create_all before migrations keeps its tables and rows.
    create_messaging_tables_v1()
    op.create_table('release_teams',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )
    op.create_table('releases',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('stable_version', sa.String(length=64), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )
    op.create_table('rollbacks',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('bad_version', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('failed_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('requested_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.Column('restore_seconds', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('rollbacks')
    op.drop_table('releases')
    op.drop_table('release_teams')
    drop_messaging_tables_v1()
