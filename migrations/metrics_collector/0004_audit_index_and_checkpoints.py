"""audit index and signed checkpoints: the index of a log logged before it is filled by the collector when it
starts (audit_handlers.index_backlog), from the log itself

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 19:23:19.813596
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.store

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_checkpoints',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('created_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('signer', sa.String(length=200), nullable=False),
    sa.Column('signature', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_table('audit_index',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('release_id', sa.String(length=128), nullable=True),
    sa.Column('service', sa.String(length=63), nullable=True),
    sa.Column('environment', sa.String(length=63), nullable=True),
    sa.Column('team', sa.String(length=63), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=True),
    sa.Column('occurred_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_index', schema=None) as batch_op:
        batch_op.create_index('ix_audit_actor', ['actor', 'seq'], unique=False)
        batch_op.create_index('ix_audit_environment', ['environment', 'seq'], unique=False)
        batch_op.create_index('ix_audit_occurred', ['occurred_at', 'seq'], unique=False)
        batch_op.create_index('ix_audit_release', ['release_id', 'seq'], unique=False)
        batch_op.create_index('ix_audit_service', ['service', 'seq'], unique=False)
        batch_op.create_index('ix_audit_team', ['team', 'seq'], unique=False)
        batch_op.create_index('ix_audit_type', ['type', 'seq'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('audit_index', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_type')
        batch_op.drop_index('ix_audit_team')
        batch_op.drop_index('ix_audit_service')
        batch_op.drop_index('ix_audit_release')
        batch_op.drop_index('ix_audit_occurred')
        batch_op.drop_index('ix_audit_environment')
        batch_op.drop_index('ix_audit_actor')

    op.drop_table('audit_index')
    op.drop_table('audit_checkpoints')
