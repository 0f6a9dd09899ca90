"""DORA histograms rolled up per week and under every wider scope, replacing the per-day histogram

`dora_histogram_rollup` holds what `dora_histogram` held (its per-day rows of each release's own scope)
and the same counts per ISO week and for every scope with service, environment or team left open, so a
query reads a bounded number of rows at any log size (services/metrics_collector/dora_rollup.py). It is
created empty and the release-status rows are emptied with it: projections are a function of the log,
and a collector that starts on an event log without projections rebuilds them all (Handlers.prepare).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 22:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
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
    op.execute(sa.text('DELETE FROM release_status'))  # the collector rebuilds every projection when it starts


def downgrade() -> None:
    op.drop_table('dora_histogram_rollup')
    op.create_table('dora_histogram',
    sa.Column('day', sa.Date(), nullable=False),
    *_histogram_columns(),
    sa.PrimaryKeyConstraint('day', 'kind', 'environment', 'team', 'service', 'bucket'),
    sqlite_with_rowid=False,
    )
    op.execute(sa.text('DELETE FROM release_status'))
