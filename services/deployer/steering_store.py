"""The deployer's record of people steering releases: their pauses and promotions. Tables of their own, beside
store.py's, so a restarted deployer still holds a paused release and still skips a promoted one's analysis."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime
from services.deployer.domain import Hold
from services.deployer.steering import PersonPause

metadata = MetaData()

person_pauses = Table(
    "person_pauses",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("paused_at", UtcDateTime(), nullable=False),
    Column("held_verdict_event_id", String(64), nullable=True),
)

# A promoted release's plan skips its analysis after action `after` (services.deployer.strategies.promotion).
promotions = Table(
    "promotions",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("after", Integer, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("promoted_at", UtcDateTime(), nullable=False),
)


async def get_person_pause(session: AsyncSession, release_id: str) -> PersonPause | None:
    row = (await session.execute(select(person_pauses).where(person_pauses.c.release_id == release_id))).first()
    return PersonPause(**row._mapping) if row else None


async def save_person_pause(session: AsyncSession, pause: PersonPause) -> None:
    await session.execute(person_pauses.insert().values(**pause.__dict__))


async def hold_for_person(session: AsyncSession, release_id: str, hold: Hold) -> None:
    """Remember the accepted verdict a person's pause keeps from moving the release on."""
    await session.execute(person_pauses.update().where(person_pauses.c.release_id == release_id)
                          .values(held_verdict_event_id=hold.verdict_event_id))


async def clear_person_pause(session: AsyncSession, release_id: str) -> None:
    await session.execute(person_pauses.delete().where(person_pauses.c.release_id == release_id))


@dataclass(frozen=True)
class Promotion:
    release_id: str
    after: int
    actor: str
    promoted_at: datetime


async def get_promotion(session: AsyncSession, release_id: str) -> Promotion | None:
    row = (await session.execute(select(promotions).where(promotions.c.release_id == release_id))).first()
    return Promotion(**row._mapping) if row else None


async def save_promotion(session: AsyncSession, promotion: Promotion) -> None:
    await session.execute(promotions.insert().values(**promotion.__dict__))
