"""The read models follow the log: `projection_cursor` holds the seq every projection is up to
(services/metrics_collector/projector.py). Before this, projections were written in each append's own
transaction, so a log migrated here has them up to its head: the cursor starts there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('projection_cursor',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name'),
    )
    op.execute("INSERT INTO projection_cursor (name, seq) SELECT 'projections', coalesce(max(seq), 0) FROM event_log")


def downgrade() -> None:
    op.drop_table('projection_cursor')
