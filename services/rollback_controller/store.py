"""The rollback-controller's own data: every rollback it asked for and how long it took."""

from datetime import datetime

from sqlalchemy import Column, Float, MetaData, String, Table, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime

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


async def exists(session: AsyncSession, release_id: str) -> bool:
    return await session.scalar(select(rollbacks.c.release_id).where(rollbacks.c.release_id == release_id)) is not None


async def add(session: AsyncSession, **values: object) -> None:
    await session.execute(rollbacks.insert().values(**values))


async def complete(session: AsyncSession, release_id: str, completed_at: datetime, seconds: float) -> None:
    await session.execute(
        update(rollbacks).where(rollbacks.c.release_id == release_id).values(completed_at=completed_at, restore_seconds=seconds)
    )
