"""Incidents in the gatekeeper's database (its own MetaData, beside store.py's tables), and the query releases ask."""

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Column, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.governance import IncidentSeverity
from libs.store import UtcDateTime
from services.gatekeeper.incidents import Incident, halting

metadata = MetaData()

incidents = Table(
    "incidents",
    metadata,
    Column("incident_id", String(40), primary_key=True),
    Column("environment", String(64), nullable=False, index=True),
    Column("severity", String(20), nullable=False),
    Column("summary", String(1024), nullable=False),
    Column("origin", String(20), nullable=False),
    Column("opened_by", String(200), nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("dedup_key", String(255), nullable=True, index=True),
    Column("component", String(255), nullable=True),
    Column("reported_by", String(255), nullable=True),
    Column("resolved_at", UtcDateTime(), nullable=True, index=True),
    Column("resolved_by", String(200), nullable=True),
)


def _incident(row: dict) -> Incident:
    return Incident(**{**row, "severity": IncidentSeverity(row["severity"])})


async def add(session: AsyncSession, incident: Incident) -> None:
    await session.execute(incidents.insert().values(**{**incident.__dict__, "severity": incident.severity.value}))


async def get(session: AsyncSession, incident_id: str) -> Incident | None:
    row = (await session.execute(select(incidents).where(incidents.c.incident_id == incident_id))).mappings().first()
    return _incident(dict(row)) if row else None


async def open_by_dedup_key(session: AsyncSession, dedup_key: str) -> Incident | None:
    query = select(incidents).where(incidents.c.dedup_key == dedup_key, incidents.c.resolved_at.is_(None))
    row = (await session.execute(query)).mappings().first()
    return _incident(dict(row)) if row else None


async def resolve(session: AsyncSession, incident_id: str, by: str, at: datetime) -> bool:
    """Close `incident_id`; False when it was resolved meanwhile."""
    result = await session.execute(
        update(incidents).where(incidents.c.incident_id == incident_id, incidents.c.resolved_at.is_(None))
        .values(resolved_at=at, resolved_by=by)
    )
    return result.rowcount == 1


async def listed(session: AsyncSession, environment: str | None = None, include_resolved: bool = False,
                 limit: int = 200) -> list[Incident]:
    query = select(incidents).order_by(incidents.c.opened_at.desc()).limit(limit)
    if environment:
        query = query.where(incidents.c.environment == environment)
    if not include_resolved:
        query = query.where(incidents.c.resolved_at.is_(None))
    return [_incident(dict(row)) for row in (await session.execute(query)).mappings().all()]


async def open_incidents(session: AsyncSession, environment: str, at_least: IncidentSeverity) -> list[Incident]:
    """The open incidents in `environment` of severity `at_least` or worse, oldest first: what halts releases there."""
    query = select(incidents).where(incidents.c.environment == environment, incidents.c.resolved_at.is_(None))
    rows = (await session.execute(query)).mappings().all()
    return halting((_incident(dict(row)) for row in rows), environment, at_least)


async def open_anywhere(session: AsyncSession) -> list[Incident]:
    """Every open incident, in every environment: what may pause rollouts in flight."""
    rows = (await session.execute(select(incidents).where(incidents.c.resolved_at.is_(None)))).mappings().all()
    return [_incident(dict(row)) for row in rows]


async def by_ids(session: AsyncSession, incident_ids: Iterable[str]) -> list[Incident]:
    wanted = list(incident_ids)
    if not wanted:
        return []
    rows = (await session.execute(select(incidents).where(incidents.c.incident_id.in_(wanted)))).mappings().all()
    return [_incident(dict(row)) for row in rows]
