"""deploy target handles, instance pools and plan progress

What runs is recorded as the deploy target's opaque handles, an instance per slot of its version's
pool, and each deployment's place in its strategy's plan. The local driver's routers and instances
recorded before are carried over as its handles (slot 0), so an upgraded deployer adopts what runs;
a deployment in flight across the upgrade has no plan and is not carried on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 17:42:23.310463
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import libs.store

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _handle(kind: str, data: dict) -> str:
    # services.deployer.target.Handle.to_json, frozen here: a migration must not change when the code does.
    return json.dumps({"kind": kind, "data": data}, sort_keys=True)


def upgrade() -> None:
    op.create_table('plans',
    sa.Column('release_id', sa.String(length=128), nullable=False),
    sa.Column('cursor', sa.Integer(), nullable=False),
    sa.Column('waiting', sa.Boolean(), nullable=False),
    sa.Column('stable_instances', sa.Integer(), nullable=False),
    sa.Column('undo_reach', sa.Integer(), nullable=True),
    sa.Column('wake_at', libs.store.UtcDateTime(timezone=True), nullable=True),
    sa.Column('finished', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('release_id')
    )
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plans_finished'), ['finished'], unique=False)

    refusals_seen = op.create_table('router_refusals_seen',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('router', sa.Text(), nullable=False),
    sa.Column('reported', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment')
    )
    target_instances = op.create_table('target_instances',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('artifact_path', sa.Text(), nullable=False),
    sa.Column('handle', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment', 'version', 'slot')
    )
    target_routers = op.create_table('target_routers',
    sa.Column('service', sa.String(length=64), nullable=False),
    sa.Column('environment', sa.String(length=64), nullable=False),
    sa.Column('handle', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment')
    )

    bind = op.get_bind()
    routers = {}
    for row in bind.execute(sa.text("SELECT service, environment, pid, port, admin_port FROM routers")).mappings():
        routers[(row["service"], row["environment"])] = _handle("local-router", dict(row))
    op.bulk_insert(target_routers, [{"service": s, "environment": e, "handle": h} for (s, e), h in routers.items()])
    instances = bind.execute(sa.text(
        "SELECT service, environment, version, pid, port, artifact_path FROM instances")).mappings().all()
    op.bulk_insert(target_instances, [
        {"service": i["service"], "environment": i["environment"], "version": i["version"], "slot": 0,
         "artifact_path": i["artifact_path"], "handle": _handle("local-instance", {**dict(i), "slot": 0})}
        for i in instances])
    seen = bind.execute(sa.text("SELECT service, environment, router_pid, reported FROM router_refusals")).mappings()
    op.bulk_insert(refusals_seen, [
        {"service": r["service"], "environment": r["environment"], "router": routers[key], "reported": r["reported"]}
        for r in seen if (key := (r["service"], r["environment"])) in routers])

    op.drop_table('router_refusals')
    op.drop_table('routers')
    op.drop_table('instances')


def downgrade() -> None:
    op.create_table('instances',
    sa.Column('service', sa.VARCHAR(length=64), nullable=False),
    sa.Column('environment', sa.VARCHAR(length=64), nullable=False),
    sa.Column('version', sa.VARCHAR(length=64), nullable=False),
    sa.Column('pid', sa.INTEGER(), nullable=False),
    sa.Column('port', sa.INTEGER(), nullable=False),
    sa.Column('artifact_path', sa.TEXT(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment', 'version')
    )
    op.create_table('routers',
    sa.Column('service', sa.VARCHAR(length=64), nullable=False),
    sa.Column('environment', sa.VARCHAR(length=64), nullable=False),
    sa.Column('pid', sa.INTEGER(), nullable=False),
    sa.Column('port', sa.INTEGER(), nullable=False),
    sa.Column('admin_port', sa.INTEGER(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment')
    )
    op.create_table('router_refusals',
    sa.Column('service', sa.VARCHAR(length=64), nullable=False),
    sa.Column('environment', sa.VARCHAR(length=64), nullable=False),
    sa.Column('router_pid', sa.INTEGER(), nullable=False),
    sa.Column('reported', sa.INTEGER(), nullable=False),
    sa.PrimaryKeyConstraint('service', 'environment')
    )
    op.drop_table('target_routers')
    op.drop_table('target_instances')
    op.drop_table('router_refusals_seen')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plans_finished'))

    op.drop_table('plans')
