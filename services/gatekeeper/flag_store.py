"""The gatekeeper's feature flags, one row per flag and environment, in its own database.

The rows are the truth, changed in the same transaction as the event that records the change; each
environment's flagd file (services.gatekeeper.flag_files) is rendered from them.
"""

from datetime import datetime

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime
from services.gatekeeper.flags import Flag

metadata = MetaData()

feature_flags = Table(
    "feature_flags",
    metadata,
    Column("environment", String(64), primary_key=True),
    Column("flag", String(64), primary_key=True),
    Column("percent", Integer, nullable=False),
    Column("description", Text, nullable=False),
    Column("declared_by", String(128), nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
)


def _flag(row: dict) -> Flag:
    return Flag(row["flag"], row["environment"], row["percent"], row["description"], row["declared_by"])


async def listed(session: AsyncSession, environment: str | None = None) -> list[Flag]:
    query = select(feature_flags).order_by(feature_flags.c.environment, feature_flags.c.flag)
    if environment is not None:
        query = query.where(feature_flags.c.environment == environment)
    return [_flag(row) for row in (await session.execute(query)).mappings().all()]


async def environments(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(feature_flags.c.environment).distinct())).all())


async def add(session: AsyncSession, flag: Flag, at: datetime) -> None:
    await session.execute(feature_flags.insert().values(
        environment=flag.environment, flag=flag.key, percent=flag.percent, description=flag.description,
        declared_by=flag.declared_by, changed_at=at))


async def expose(session: AsyncSession, environment: str, flag: str, percent: int, at: datetime) -> None:
    await session.execute(update(feature_flags).where(
        feature_flags.c.environment == environment, feature_flags.c.flag == flag).values(percent=percent, changed_at=at))
