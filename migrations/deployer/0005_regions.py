"""regions of routers and instances, plan layouts

A regional release runs one router and pool per region: routers, and what was reported of each one's refused
admin calls, are keyed by region too (a new primary key, so each table is copied into one that has it),
instances say their region, and a plan keeps the waves and pool
sizes it was made for. What was recorded before is the environment's one router and pool (region "").

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 19:22:02.411306
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('layout', sa.Text(), nullable=True))

    with op.batch_alter_table('target_instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('region', sa.String(length=64), server_default='', nullable=False))

    op.create_table('target_routers_by_region',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=64), server_default='', nullable=False),
    sa.Column('handle', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment', 'region')
    )
    op.execute("INSERT INTO target_routers_by_region (service, environment, region, handle) "
               "SELECT service, environment, '', handle FROM target_routers")
    op.drop_table('target_routers')
    op.rename_table('target_routers_by_region', 'target_routers')

    op.create_table('router_refusals_seen_by_region',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=64), server_default='', nullable=False),
    sa.Column('router', sa.Text(), nullable=False),
    sa.Column('reported', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment', 'region')
    )
    op.execute("INSERT INTO router_refusals_seen_by_region (service, environment, region, router, reported) "
               "SELECT service, environment, '', router, reported FROM router_refusals_seen")
    op.drop_table('router_refusals_seen')
    op.rename_table('router_refusals_seen_by_region', 'router_refusals_seen')


def downgrade() -> None:
    op.create_table('router_refusals_seen_one',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('router', sa.Text(), nullable=False),
    sa.Column('reported', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment')
    )
    op.execute("INSERT INTO router_refusals_seen_one (service, environment, router, reported) "
               "SELECT service, environment, router, reported FROM router_refusals_seen WHERE region = ''")
    op.drop_table('router_refusals_seen')
    op.rename_table('router_refusals_seen_one', 'router_refusals_seen')

    op.create_table('target_routers_one',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('handle', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment')
    )
    op.execute("INSERT INTO target_routers_one (service, environment, handle) "
               "SELECT service, environment, handle FROM target_routers WHERE region = ''")
    op.drop_table('target_routers')
    op.rename_table('target_routers_one', 'target_routers')

    with op.batch_alter_table('target_instances', schema=None) as batch_op:
        batch_op.drop_column('region')

    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('layout')

