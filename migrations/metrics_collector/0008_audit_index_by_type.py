"""The audit index's filters indexed with the event type before seq: `audit show --team T --type X` (and
release, service, environment or actor with a type) counts and pages one range of one index, never the
table, so it costs the same at 10^6 records as at 10^4 (with the filter alone it reads the same index's
prefix, as the indexes it replaces did).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 23:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILTERS = (("release", "release_id"), ("service", "service"), ("environment", "environment"), ("team", "team"),
           ("actor", "actor"))


def upgrade() -> None:
    for name, column in FILTERS:
        op.drop_index(f'ix_audit_{name}', table_name='audit_index')
        op.create_index(f'ix_audit_{name}_type', 'audit_index', [column, 'type', 'seq'], unique=False)


def downgrade() -> None:
    for name, column in FILTERS:
        op.drop_index(f'ix_audit_{name}_type', table_name='audit_index')
        op.create_index(f'ix_audit_{name}', 'audit_index', [column, 'seq'], unique=False)
