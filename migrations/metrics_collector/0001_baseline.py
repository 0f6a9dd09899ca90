"""baseline: the tables as create_all made them before there were migrations

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 17:16:52.346565
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
    op.create_table('event_log',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('occurred_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('event_id'),
    sa.UniqueConstraint('prev_hash'),
    if_not_exists=True,
    )
    with op.batch_alter_table('event_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_log_release_id'), ['release_id'], unique=False, if_not_exists=True)
        batch_op.create_index(batch_op.f('ix_event_log_type'), ['type'], unique=False, if_not_exists=True)

    op.create_table('event_flags',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['seq'], ['event_log.seq'], ),
    sa.PrimaryKeyConstraint('seq'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('event_flags')
    with op.batch_alter_table('event_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_log_type'))
        batch_op.drop_index(batch_op.f('ix_event_log_release_id'))

    op.drop_table('event_log')
    drop_messaging_tables_v1()
