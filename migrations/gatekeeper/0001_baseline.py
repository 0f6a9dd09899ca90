"""baseline: the tables as create_all made them before there were migrations

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 17:16:49.665014
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
    op.create_table('decided_releases',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('decided_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )
    op.create_table('freezes',
    sa.Column('freeze_id', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('starts_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('lifted', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('freeze_id'),
    if_not_exists=True,
    )
    with op.batch_alter_table('freezes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_freezes_environment'), ['environment'], unique=False, if_not_exists=True)

    op.create_table('approvals',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('approver', sa.String(length=200), nullable=False),
    sa.Column('roles', sa.String(length=500), nullable=False),
    sa.Column('teams', sa.String(length=2000), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=False),
    sa.Column('at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('release_id', 'approver'),
    if_not_exists=True,
    )
    op.create_table('deployments',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('digest', sa.String(length=80), nullable=False),
    sa.Column('release_class', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('since', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deployments_environment'), ['environment'], unique=False, if_not_exists=True)
        batch_op.create_index(batch_op.f('ix_deployments_outcome'), ['outcome'], unique=False, if_not_exists=True)

    op.create_table('workflows',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('outstanding', sa.Text(), nullable=False),
    sa.Column('deadline', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.Column('requested_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('verified', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workflows_environment'), ['environment'], unique=False, if_not_exists=True)
        batch_op.create_index(batch_op.f('ix_workflows_state'), ['state'], unique=False, if_not_exists=True)

    op.create_table('rollout_pauses',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('incidents', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('paused_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.Column('ended_because', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('release_id', 'seq'),
    if_not_exists=True,
    )
    with op.batch_alter_table('rollout_pauses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rollout_pauses_ended_at'), ['ended_at'], unique=False, if_not_exists=True)
        batch_op.create_index(batch_op.f('ix_rollout_pauses_environment'), ['environment'], unique=False, if_not_exists=True)

    op.create_table('evidence',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('digest', sa.String(length=80), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('team', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id'),
    if_not_exists=True,
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_digest'), ['digest'], unique=False, if_not_exists=True)

    op.create_table('inventory',
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('environment', 'service'),
    if_not_exists=True,
    )
    op.create_table('change_records',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=40), nullable=True),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('starts_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('risk', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('approved_by', sa.String(length=200), nullable=True),
    sa.Column('approved_at', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.Column('approval_comment', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('number'),
    if_not_exists=True,
    )
    op.create_table('pir_reviews',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('actions', sa.Text(), nullable=False),
    sa.Column('risk_factors', sa.Text(), nullable=False),
    sa.Column('owed_because', sa.String(length=500), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('recorded_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('release_id'),
    if_not_exists=True,
    )
    with op.batch_alter_table('pir_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pir_reviews_service'), ['service'], unique=False, if_not_exists=True)

    op.create_table('incidents',
    sa.Column('incident_id', sa.String(length=40), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('severity', sa.String(length=20), nullable=False),
    sa.Column('summary', sa.String(length=1024), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('opened_by', sa.String(length=200), nullable=False),
    sa.Column('opened_at', libs.store.UtcDateTime(timezone=True), nullable=False),
    sa.Column('dedup_key', sa.String(length=255), nullable=True),
    sa.Column('component', sa.String(length=255), nullable=True),
    sa.Column('reported_by', sa.String(length=255), nullable=True),
    sa.Column('resolved_at', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('incident_id'),
    if_not_exists=True,
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_dedup_key'), ['dedup_key'], unique=False, if_not_exists=True)
        batch_op.create_index(batch_op.f('ix_incidents_environment'), ['environment'], unique=False, if_not_exists=True)
        batch_op.create_index(batch_op.f('ix_incidents_resolved_at'), ['resolved_at'], unique=False, if_not_exists=True)



def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_resolved_at'))
        batch_op.drop_index(batch_op.f('ix_incidents_environment'))
        batch_op.drop_index(batch_op.f('ix_incidents_dedup_key'))

    op.drop_table('incidents')
    with op.batch_alter_table('pir_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pir_reviews_service'))

    op.drop_table('pir_reviews')
    op.drop_table('change_records')
    op.drop_table('inventory')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_digest'))

    op.drop_table('evidence')
    with op.batch_alter_table('rollout_pauses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rollout_pauses_environment'))
        batch_op.drop_index(batch_op.f('ix_rollout_pauses_ended_at'))

    op.drop_table('rollout_pauses')
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workflows_state'))
        batch_op.drop_index(batch_op.f('ix_workflows_environment'))

    op.drop_table('workflows')
    with op.batch_alter_table('deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deployments_outcome'))
        batch_op.drop_index(batch_op.f('ix_deployments_environment'))

    op.drop_table('deployments')
    op.drop_table('approvals')
    with op.batch_alter_table('freezes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_freezes_environment'))

    op.drop_table('freezes')
    op.drop_table('decided_releases')
    drop_messaging_tables_v1()
