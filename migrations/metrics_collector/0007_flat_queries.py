"""Queries flat up to 10^6 events: DORA histograms rolled up, release and bottleneck counts, three indexes

`dora_histogram_rollup` holds what `dora_histogram` held (its per-day rows of each release's own scope)
and the same counts per ISO week and for every scope with service, environment or team left open, so a
query reads a bounded number of rows at any log size (services/metrics_collector/dora_rollup.py).
`bottleneck_team_days` counts the releases that began and the people's commands on them per team and day
(bottleneck_counts.py); `release_count` how many releases `release_status` holds. Indexes give the newest
facts of one service and environment and the newest releases of a window without sorting the window. The
new tables are created empty and the release-status rows are emptied with them: projections are a
function of the log, and a collector that starts on an event log without projections rebuilds them all
(Handlers.prepare).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _histogram_columns() -> list[sa.Column]:
    return [sa.Column('kind', sa.String(length=20), nullable=False),
            sa.Column('environment', sa.String(length=63), nullable=False),
            sa.Column('team', sa.String(length=63), nullable=False),
            sa.Column('service', sa.String(length=63), nullable=False),
            sa.Column('bucket', sa.Integer(), nullable=False),
            sa.Column('count', sa.Integer(), nullable=False)]


def upgrade() -> None:
    op.drop_table('dora_histogram')
    op.create_table('dora_histogram_rollup',
    *_histogram_columns(),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('environment', 'team', 'service', 'days', 'first_day', 'kind', 'bucket'),
    sqlite_with_rowid=False,
    )
    op.create_table('bottleneck_team_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.Column('releases', sa.Integer(), nullable=False),
    sa.Column('interventions', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'team'),
    )
    op.create_table('release_count',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('releases', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_dora_facts_scope_newest', 'dora_facts', ['kind', 'service', 'environment', 'at'], unique=False)
    op.create_index('ix_bottleneck_releases_began', 'bottleneck_releases', ['began_at'], unique=False)
    op.create_index('ix_bottleneck_releases_team_began', 'bottleneck_releases', ['team', 'began_at'], unique=False)
    op.execute(sa.text('DELETE FROM release_status'))  # the collector rebuilds every projection when it starts


def downgrade() -> None:
    op.drop_index('ix_bottleneck_releases_team_began', table_name='bottleneck_releases')
    op.drop_index('ix_bottleneck_releases_began', table_name='bottleneck_releases')
    op.drop_index('ix_dora_facts_scope_newest', table_name='dora_facts')
    op.drop_table('release_count')
    op.drop_table('bottleneck_team_days')
    op.drop_table('dora_histogram_rollup')
    op.create_table('dora_histogram',
    sa.Column('day', sa.Date(), nullable=False),
    *_histogram_columns(),
    sa.PrimaryKeyConstraint('day', 'kind', 'environment', 'team', 'service', 'bucket'),
    sqlite_with_rowid=False,
    )
    op.execute(sa.text('DELETE FROM release_status'))
