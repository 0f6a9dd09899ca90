"""The gatekeeper's own data: freeze windows and the releases it has decided."""

from datetime import datetime

from sqlalchemy import Boolean, Column, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime, now

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

# One decision per release id, whatever the event id: the primary key stops two replicas both deciding.
decided_releases = Table(
    "decided_releases",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=False),
)


async def claim_decision(session: AsyncSession, release_id: str, event_id: str) -> bool:
    """Record that `release_id` is being decided now; False when it was decided before."""
    if await session.scalar(select(decided_releases.c.release_id).where(decided_releases.c.release_id == release_id)):
        return False
    await session.execute(decided_releases.insert().values(release_id=release_id, event_id=event_id, decided_at=now()))
    return True


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

