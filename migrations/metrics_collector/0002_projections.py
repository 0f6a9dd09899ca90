"""projections beside the log: release status and DORA facts per release and per day; release fields may be empty

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:30:53.966904
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
    op.create_table('dora_daily',
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('deployments', sa.Integer(), nullable=False),
    sa.Column('changes', sa.Integer(), nullable=False),
    sa.Column('failed_changes', sa.Integer(), nullable=False),
    sa.Column('lead_times', sa.Integer(), nullable=False),
    sa.Column('lead_time_sum_s', sa.Float(), nullable=False),
    sa.Column('restores', sa.Integer(), nullable=False),
    sa.Column('restore_sum_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment', 'day')
    )
    with op.batch_alter_table('dora_daily', schema=None) as batch_op:
        batch_op.create_index('ix_dora_daily_day', ['day'], unique=False)

    op.create_table('dora_facts',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('failed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('release_id', 'n')
    )
    with op.batch_alter_table('dora_facts', schema=None) as batch_op:
        batch_op.create_index('ix_dora_facts_day', ['day', 'kind'], unique=False)
        batch_op.create_index('ix_dora_facts_scope', ['service', 'environment', 'day'], unique=False)

    op.create_table('release_status',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=True),
    sa.Column('version', sa.String(length=128), nullable=False),
    sa.Column('state', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('last_event', sa.String(length=100), nullable=False),
    sa.Column('updated_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('release_id')
    )
    with op.batch_alter_table('release_status', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_release_status_updated_at'), ['updated_at'], unique=False)

    with op.batch_alter_table('event_log', schema=None) as batch_op:
        batch_op.alter_column('release_id',
               existing_type=sa.VARCHAR(length=128),
               nullable=True)
        batch_op.alter_column('service',
               existing_type=sa.VARCHAR(length=63),
               nullable=True)
        batch_op.alter_column('environment',
               existing_type=sa.VARCHAR(length=63),
               nullable=True)



def downgrade() -> None:
    with op.batch_alter_table('event_log', schema=None) as batch_op:
        batch_op.alter_column('environment',
               existing_type=sa.VARCHAR(length=63),
               nullable=False)
        batch_op.alter_column('service',
               existing_type=sa.VARCHAR(length=63),
               nullable=False)
        batch_op.alter_column('release_id',
               existing_type=sa.VARCHAR(length=128),
               nullable=False)

    with op.batch_alter_table('release_status', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_release_status_updated_at'))

    op.drop_table('release_status')
    with op.batch_alter_table('dora_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_dora_facts_scope')
        batch_op.drop_index('ix_dora_facts_day')

    op.drop_table('dora_facts')
    with op.batch_alter_table('dora_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_dora_daily_day')

    op.drop_table('dora_daily')
