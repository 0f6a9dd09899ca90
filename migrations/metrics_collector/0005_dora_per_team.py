"""DORA per team: team and rework reason on the facts and daily sums, duration histograms per day

The DORA projections are recreated empty rather than altered (the daily sums gain a column in their
primary key, which now starts with the day, and are clustered by it on SQLite), and the release-status rows are emptied with them: projections are a function of the
log, and a collector that starts on an event log without projections rebuilds them all
(Handlers.prepare), so nothing the log holds is lost.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:22:12.365241
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.store

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REWORK_REASONS = ('declared', 'emergency', 'incident')


def _drop_dora(*tables: str) -> None:
    for table in tables:  # its indexes go with it
        op.drop_table(table)
    op.execute(sa.text('DELETE FROM release_status'))  # the collector rebuilds every projection when it starts


def upgrade() -> None:
    _drop_dora('dora_facts', 'dora_daily')
    op.create_table('dora_facts',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('bucket', sa.Integer(), nullable=True),
    sa.Column('failed', sa.Boolean(), nullable=False),
    sa.Column('rework', sa.String(length=20), nullable=True),
    sa.PrimaryKeyConstraint('release_id', 'n')
    )
    op.create_index('ix_dora_facts_day', 'dora_facts', ['day', 'kind'], unique=False)
    op.create_index('ix_dora_facts_scope', 'dora_facts', ['service', 'environment', 'day'], unique=False)
    op.create_index('ix_dora_facts_newest', 'dora_facts', ['kind', 'at'], unique=False)

    op.create_table('dora_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('deployments', sa.Integer(), nullable=False),
    sa.Column('changes', sa.Integer(), nullable=False),
    sa.Column('failed_changes', sa.Integer(), nullable=False),
    sa.Column('lead_times', sa.Integer(), nullable=False),
    sa.Column('lead_time_sum_s', sa.Float(), nullable=False),
    sa.Column('restores', sa.Integer(), nullable=False),
    sa.Column('restore_sum_s', sa.Float(), nullable=False),
    *(sa.Column(f'rework_{reason}', sa.Integer(), nullable=False) for reason in REWORK_REASONS),
    sa.PrimaryKeyConstraint('day', 'environment', 'team', 'service'),
    sqlite_with_rowid=False,
    )
    op.create_index('ix_dora_daily_team', 'dora_daily', ['team'], unique=False)
    op.create_index('ix_dora_daily_service', 'dora_daily', ['service'], unique=False)

    op.create_table('dora_histogram',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'kind', 'environment', 'team', 'service', 'bucket'),
    sqlite_with_rowid=False,
    )

def downgrade() -> None:
    _drop_dora('dora_histogram', 'dora_facts', 'dora_daily')
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
    op.create_index('ix_dora_daily_day', 'dora_daily', ['day'], unique=False)
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
    op.create_index('ix_dora_facts_day', 'dora_facts', ['day', 'kind'], unique=False)
    op.create_index('ix_dora_facts_scope', 'dora_facts', ['service', 'environment', 'day'], unique=False)
