"""The artifact-verifier's own data: every release id it took in, what it asked for, how it ended."""

from sqlalchemy import JSON, Column, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime, now
from services.artifact_verifier.domain import KnownRelease

metadata = MetaData()

# The primary key is what makes "one release per release_id" hold across replicas: of two
# transactions taking in the same id, the second fails to commit and its message is redelivered.
releases = Table(
    "releases",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("fingerprint", String(71), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("request_event_id", String(64), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)


async def find_release(session: AsyncSession, release_id: str) -> KnownRelease | None:
    row = (
        await session.execute(
            select(
                releases.c.release_id, releases.c.fingerprint, releases.c.spec, releases.c.request_event_id,
                releases.c.outcome,
            ).where(releases.c.release_id == release_id)
        )
    ).mappings().first()
    return KnownRelease(**row) if row else None


async def add_release(session: AsyncSession, release: KnownRelease) -> None:
    await session.execute(releases.insert().values(**release.__dict__, recorded_at=now()))
