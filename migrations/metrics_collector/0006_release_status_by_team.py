"""release_status indexed by team, then time: one team's releases newest first (`slipway status --team`, a
team-scoped dashboard reader) are read from the index, and counted from it, without scanning everyone's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 22:04:22.534176
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_release_status_team', 'release_status', ['team', 'updated_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_release_status_team', table_name='release_status')
