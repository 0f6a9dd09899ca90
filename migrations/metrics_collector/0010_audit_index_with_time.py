"""The audit index's ranges carry each record's time: the event time last in (field, type, seq) and in
(type, seq), so `audit show` with a time range checks it in the range it walks instead of looking every row
up in the table (a count of a team's verdicts over the last week read 42,000 rows at 10^6 records; now it
reads their index entries).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 02:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANGES = (("release_type", ["release_id", "type", "seq"]), ("service_type", ["service", "type", "seq"]),
          ("environment_type", ["environment", "type", "seq"]), ("team_type", ["team", "type", "seq"]),
          ("actor_type", ["actor", "type", "seq"]), ("type", ["type", "seq"]))


def upgrade() -> None:
    for name, columns in RANGES:
        op.drop_index(f'ix_audit_{name}', table_name='audit_index')
        op.create_index(f'ix_audit_{name}', 'audit_index', [*columns, 'occurred_at'], unique=False)


def downgrade() -> None:
    for name, columns in RANGES:
        op.drop_index(f'ix_audit_{name}', table_name='audit_index')
        op.create_index(f'ix_audit_{name}', 'audit_index', columns, unique=False)
