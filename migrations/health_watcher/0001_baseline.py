"""baseline: the tables as create_all made them before there were migrations

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 17:16:50.936879
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from libs.migration_steps import create_messaging_tables_v1, drop_messaging_tables_v1

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Each only if missing: a database made by create_all before migrations keeps its tables and rows.
    create_messaging_tables_v1()
    op.create_table('analyses',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('step_index', sa.Integer(), nullable=False),
    sa.Column('step', sa.Text(), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('release_id', 'step_index'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('analyses')
    drop_messaging_tables_v1()
