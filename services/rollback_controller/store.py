"""The rollback-controller's own data: releases in flight, every rollback it asked for and how long it took."""

from datetime import datetime

from sqlalchemy import Column, Float, MetaData, String, Table, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime
from services.rollback_controller.domain import InFlight

metadata = MetaData()

rollbacks = Table(
    "rollbacks",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("service", String(64), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("bad_version", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("failed_at", UtcDateTime(), nullable=False),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("restore_seconds", Float, nullable=True),
)


# What a person's abort needs to ask for a rollback, learnt from DeploymentStarted; `outcome` once it ended.
releases = Table(
    "releases",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("service", String(64), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("stable_version", String(64), nullable=True),
    Column("outcome", String(32), nullable=True),
    Column("warm_until", UtcDateTime(), nullable=True),  # succeeded, the old pool kept warm until then
)

# The owning team of a release, from DeploymentStarted (which names it since people's commands are
# team-scoped). A table of its own so a database made before it keeps working: create_all adds it.
release_teams = Table(
    "release_teams",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("team", String(63), nullable=False),
)


async def team_of(session: AsyncSession, release_id: str) -> str | None:
    return await session.scalar(select(release_teams.c.team).where(release_teams.c.release_id == release_id))


async def remember_team(session: AsyncSession, release_id: str, team: str) -> None:
    if await team_of(session, release_id) is None:
        await session.execute(release_teams.insert().values(release_id=release_id, team=team))


async def release(session: AsyncSession, release_id: str) -> InFlight | None:
    row = (await session.execute(select(releases).where(releases.c.release_id == release_id))).first()
    return InFlight(**row._mapping) if row else None


async def release_started(session: AsyncSession, started: InFlight) -> None:
    # An outcome may be recorded first (consumers run independently); the start adds nothing to it then.
    if await release(session, started.release_id) is None:
        await session.execute(releases.insert().values(**started.__dict__))


async def release_ended(session: AsyncSession, ended: InFlight) -> None:
    if await release(session, ended.release_id) is None:
        await session.execute(releases.insert().values(**ended.__dict__))
    else:
        await session.execute(
            update(releases).where(releases.c.release_id == ended.release_id).values(
                outcome=ended.outcome, warm_until=ended.warm_until)
        )


async def rollback_reason_of(session: AsyncSession, release_id: str) -> str | None:
    return await session.scalar(select(rollbacks.c.reason).where(rollbacks.c.release_id == release_id))


async def exists(session: AsyncSession, release_id: str) -> bool:
    return await session.scalar(select(rollbacks.c.release_id).where(rollbacks.c.release_id == release_id)) is not None


async def add(session: AsyncSession, **values: object) -> None:
    await session.execute(rollbacks.insert().values(**values))


async def complete(session: AsyncSession, release_id: str, completed_at: datetime, seconds: float) -> None:
    await session.execute(
        update(rollbacks).where(rollbacks.c.release_id == release_id).values(completed_at=completed_at, restore_seconds=seconds)
    )
