"""The gatekeeper's own data: freeze windows."""

from datetime import datetime

from sqlalchemy import Boolean, Column, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime

from services.gatekeeper.domain import Freeze

metadata = MetaData()

freezes = Table(
    "freezes",
    metadata,
    Column("freeze_id", String(64), primary_key=True),
    Column("environment", String(64), nullable=False, index=True),
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("ends_at", UtcDateTime(), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("lifted", Boolean, nullable=False, default=False),
)


async def add_freeze(session: AsyncSession, freeze: Freeze) -> None:
    await session.execute(freezes.insert().values(**freeze.__dict__))


async def lift_freeze(session: AsyncSession, freeze_id: str) -> bool:
    result = await session.execute(
        update(freezes).where(freezes.c.freeze_id == freeze_id, freezes.c.lifted.is_(False)).values(lifted=True)
    )
    return result.rowcount == 1


async def get_freeze(session: AsyncSession, freeze_id: str) -> Freeze | None:
    row = (await session.execute(select(freezes).where(freezes.c.freeze_id == freeze_id))).mappings().first()
    return Freeze(**row) if row else None


async def load_freezes(session: AsyncSession, environment: str | None = None, since: datetime | None = None) -> list[Freeze]:
    query = select(freezes).order_by(freezes.c.starts_at)
    if environment:
        query = query.where(freezes.c.environment == environment)
    if since:
        query = query.where(freezes.c.ends_at > since)
    rows = (await session.execute(query)).mappings().all()
    return [Freeze(**row) for row in rows]

