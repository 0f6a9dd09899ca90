"""baseline: the tables as create_all made them before there were migrations

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 17:16:50.156613
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.store
from libs.migration_steps import create_messaging_tables_v1, drop_messaging_tables_v1

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Each only if missing: a database made by create_all before migrations keeps its tables and rows.
    create_messaging_tables_v1()
    op.create_table('deployments',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('stable_version', sa.String(length=64), nullable=True),
    sa.Column('steps', sa.JSON(), nullable=False),
    sa.Column('step_index', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('approval', sa.Text(), nullable=False),
    sa.Column('updated_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deployments_status'), ['status'], unique=False, if_not_exists=True)

    op.create_table('holds',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('step_index', sa.Integer(), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('held_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('verdict_event_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )
    op.create_table('instances',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('artifact_path', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment', 'version'),
    if_not_exists=True,
    )
    op.create_table('live',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment'),
    if_not_exists=True,
    )
    op.create_table('pauses',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('incident_id', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('paused_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('held_verdict_event_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )
    op.create_table('router_refusals',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('router_pid', sa.Integer(), nullable=False),
    sa.Column('reported', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment'),
    if_not_exists=True,
    )
    op.create_table('routers',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('admin_port', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment'),
    if_not_exists=True,
    )
    op.create_table('previews',
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('started_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('expired_at', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('environment'),
    if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table('previews')
    op.drop_table('routers')
    op.drop_table('router_refusals')
    op.drop_table('pauses')
    op.drop_table('live')
    op.drop_table('instances')
    op.drop_table('holds')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_status'))

    op.drop_table('deployments')
    drop_messaging_tables_v1()
