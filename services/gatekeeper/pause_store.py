"""The rollouts the gatekeeper paused for an incident, in its own database (own MetaData, beside store.py's).

One row per pause of a release: (release_id, seq) is the key, so two gatekeepers deciding the same pause
at once cannot both record it (the second transaction fails and its RolloutPaused is never sent).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime

metadata = MetaData()

rollout_pauses = Table(
    "rollout_pauses",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("seq", Integer, primary_key=True),  # 1 for a release's first pause, 2 for the next one...
    Column("service", String(64), nullable=False),
    Column("environment", String(64), nullable=False, index=True),
    Column("incidents", Text, nullable=False),  # comma-separated ids of the halting incidents, oldest first
    Column("reason", Text, nullable=False),
    Column("paused_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True, index=True),
    Column("ended_because", Text, nullable=True),  # resumed, or forgotten once the release was no longer in flight
)


@dataclass(frozen=True)
class PausedRollout:
    release_id: str
    service: str
    environment: str
    incidents: tuple[str, ...]
    reason: str
    paused_at: datetime


async def current(session: AsyncSession) -> dict[str, PausedRollout]:
    """The pauses not ended yet, by release id."""
    rows = (await session.execute(select(rollout_pauses).where(rollout_pauses.c.ended_at.is_(None)))).mappings().all()
    return {r["release_id"]: PausedRollout(r["release_id"], r["service"], r["environment"],
                                           tuple(i for i in r["incidents"].split(",") if i), r["reason"], r["paused_at"])
            for r in rows}


async def add(session: AsyncSession, paused: PausedRollout) -> None:
    earlier = await session.scalar(select(func.count()).where(rollout_pauses.c.release_id == paused.release_id))
    await session.execute(rollout_pauses.insert().values(
        release_id=paused.release_id, seq=(earlier or 0) + 1, service=paused.service, environment=paused.environment,
        incidents=",".join(paused.incidents), reason=paused.reason, paused_at=paused.paused_at,
    ))


async def widen(session: AsyncSession, release_id: str, incidents: tuple[str, ...]) -> None:
    """Another halting incident holds a paused release as well: it is named too."""
    await session.execute(update(rollout_pauses).where(
        rollout_pauses.c.release_id == release_id, rollout_pauses.c.ended_at.is_(None)).values(incidents=",".join(incidents)))


async def end(session: AsyncSession, release_id: str, at: datetime, because: str) -> bool:
    """End `release_id`'s current pause; False when it had none (ended meanwhile)."""
    result = await session.execute(
        update(rollout_pauses).where(rollout_pauses.c.release_id == release_id, rollout_pauses.c.ended_at.is_(None))
        .values(ended_at=at, ended_because=because[:4000]))
    return result.rowcount == 1
