"""What the gatekeeper knows of artifacts and services beyond its releases: which version of each service is
live in each environment (from the deployer's events) and what evidence CI systems recorded for each digest.

Its own MetaData, beside workflow_store's; the release workflow's snapshot reads both (rules.state.Live,
rules.state.Evidence). The inventory starts empty: it knows what was deployed since the gatekeeper began
reading deployment events, nothing older.
"""

from datetime import datetime

from sqlalchemy import Boolean, Column, MetaData, String, Table, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import EvidenceSubmitted
from libs.store import UtcDateTime

metadata = MetaData()

inventory = Table(
    "inventory",
    metadata,
    Column("environment", String(64), primary_key=True),
    Column("service", String(64), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("release_id", String(128), nullable=False),
    Column("at", UtcDateTime(), nullable=False),  # when the deployer reported it: an older report never wins
)

evidence = Table(
    "evidence",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("digest", String(80), nullable=False, index=True),
    Column("kind", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("team", String(64), nullable=False),
    Column("service", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)


async def set_live(session: AsyncSession, environment: str, service: str, version: str | None, release_id: str,
                   at: datetime) -> bool:
    """Record `version` as live (None: nothing is, after a rollback to no version); False if a newer report stands."""
    key = (inventory.c.environment == environment) & (inventory.c.service == service)
    known = await session.scalar(select(inventory.c.at).where(key))
    if known is not None and known > at:
        return False
    await session.execute(delete(inventory).where(key))
    if version is not None:
        await session.execute(inventory.insert().values(environment=environment, service=service, version=version,
                                                        release_id=release_id, at=at))
    return True


async def live_in(session: AsyncSession, environment: str | None) -> list[dict]:
    """What is live in `environment` (None: everywhere), by environment and service."""
    query = select(inventory).order_by(inventory.c.environment, inventory.c.service)
    if environment is not None:
        query = query.where(inventory.c.environment == environment)
    return [dict(row) for row in (await session.execute(query)).mappings().all()]


async def evidence_of(session: AsyncSession, digest: str, limit: int) -> list[dict]:
    """The newest `limit` records for one digest, newest first."""
    query = select(evidence).where(evidence.c.digest == digest).order_by(evidence.c.at.desc()).limit(limit)
    return [dict(row) for row in (await session.execute(query)).mappings().all()]


async def add_evidence(session: AsyncSession, submitted: EvidenceSubmitted) -> bool:
    """False when this submission was already recorded (a redelivery)."""
    if await session.scalar(select(evidence.c.event_id).where(evidence.c.event_id == submitted.event_id)):
        return False
    await session.execute(evidence.insert().values(
        event_id=submitted.event_id, digest=submitted.digest, kind=submitted.kind, outcome=submitted.outcome,
        passed=submitted.passed, team=submitted.team, service=submitted.service or "", url=submitted.url,
        actor=submitted.actor, at=submitted.finished_at or submitted.occurred_at,
    ))
    return True


async def evidence_since(session: AsyncSession, since: datetime) -> list[dict]:
    query = select(evidence).where(evidence.c.at >= since).order_by(evidence.c.at)
    return [dict(row) for row in (await session.execute(query)).mappings().all()]
