"""bottleneck projection: waits, interventions and check results per release and digest; waits per team, kind and day

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 19:39:33.216774
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.store

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('artifact_checks',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('release_id', sa.String(length=128), nullable=True),
    sa.Column('digest', sa.String(length=100), nullable=False),
    sa.Column('check', sa.String(length=100), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=True),
    sa.Column('service', sa.String(length=63), nullable=True),
    sa.Column('at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('event_id')
    )
    with op.batch_alter_table('artifact_checks', schema=None) as batch_op:
        batch_op.create_index('ix_artifact_checks_at', ['at', 'team'], unique=False)
        batch_op.create_index('ix_artifact_checks_digest', ['digest', 'check'], unique=False)
        batch_op.create_index(batch_op.f('ix_artifact_checks_release_id'), ['release_id'], unique=False)

    op.create_table('bottleneck_daily',
    sa.Column('team', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('releases', sa.Integer(), nullable=False),
    sa.Column('waits', sa.Integer(), nullable=False),
    sa.Column('ms', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('team', 'kind', 'day', 'bucket')
    )
    with op.batch_alter_table('bottleneck_daily', schema=None) as batch_op:
        batch_op.create_index('ix_bottleneck_daily_day', ['day', 'team'], unique=False)

    op.create_table('bottleneck_releases',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('environment', sa.String(length=63), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=True),
    sa.Column('began_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('release_id')
    )
    with op.batch_alter_table('bottleneck_releases', schema=None) as batch_op:
        batch_op.create_index('ix_bottleneck_releases_day', ['day', 'team'], unique=False)

    op.create_table('release_interventions',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('command', sa.String(length=100), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('release_id', 'n')
    )
    op.create_table('release_waits',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('team', sa.String(length=63), nullable=True),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('started_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('release_id', 'n')
    )
    with op.batch_alter_table('release_waits', schema=None) as batch_op:
        batch_op.create_index('ix_release_waits_day', ['day', 'team'], unique=False)
        batch_op.create_index('ix_release_waits_ongoing', ['seconds', 'day'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('release_waits', schema=None) as batch_op:
        batch_op.drop_index('ix_release_waits_ongoing')
        batch_op.drop_index('ix_release_waits_day')

    op.drop_table('release_waits')
    op.drop_table('release_interventions')
    with op.batch_alter_table('bottleneck_releases', schema=None) as batch_op:
        batch_op.drop_index('ix_bottleneck_releases_day')

    op.drop_table('bottleneck_releases')
    with op.batch_alter_table('bottleneck_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_bottleneck_daily_day')

    op.drop_table('bottleneck_daily')
    with op.batch_alter_table('artifact_checks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_artifact_checks_release_id'))
        batch_op.drop_index('ix_artifact_checks_digest')
        batch_op.drop_index('ix_artifact_checks_at')

    op.drop_table('artifact_checks')
