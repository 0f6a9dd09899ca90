"""Post-implementation reviews in the gatekeeper's database (own MetaData, beside workflow_store's tables).

What is owed is not stored: it follows from the deployments table (what failed where, which class went
out) and the reviews recorded here, so it can never drift from what the deployer reported.
"""

import json
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.release import ReleaseClass
from libs.store import UtcDateTime
from services.gatekeeper import workflow_store as ws
from services.gatekeeper.pirs import Deployment, Owed, Review, latest_risk_factors, owed_reviews
from services.gatekeeper.policy import ClassesPolicy

metadata = MetaData()

reviews = Table(
    "pir_reviews",
    metadata,
    Column("release_id", String(128), primary_key=True),  # one review per release
    Column("service", String(64), nullable=False, index=True),
    Column("environment", String(64), nullable=False),
    Column("summary", Text, nullable=False),
    Column("actions", Text, nullable=False),
    Column("risk_factors", Text, nullable=False, default="[]"),  # JSON list
    Column("owed_because", String(500), nullable=False),
    Column("recorded_by", String(200), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
)


def _review(row: Any) -> Review:
    return Review(**{**dict(row), "risk_factors": tuple(json.loads(row["risk_factors"]))})


async def add(session: AsyncSession, review: Review) -> None:
    await session.execute(reviews.insert().values(**{**review.__dict__, "risk_factors": json.dumps(review.risk_factors)}))


async def get(session: AsyncSession, release_id: str) -> Review | None:
    row = (await session.execute(select(reviews).where(reviews.c.release_id == release_id))).mappings().first()
    return _review(row) if row else None


async def recorded(session: AsyncSession, service: str | None = None, limit: int = 200) -> list[Review]:
    query = select(reviews).order_by(reviews.c.recorded_at.desc()).limit(limit)
    if service is not None:
        query = query.where(reviews.c.service == service)
    return [_review(row) for row in (await session.execute(query)).mappings().all()]


async def owed(session: AsyncSession, classes: ClassesPolicy, service: str | None = None) -> list[Owed]:
    """Reviews still owed, oldest first. The query narrows to deployments that may owe one and have none;
    pirs.owed_reviews decides."""
    d = ws.deployments.c
    owing_classes = [c.value for c in ReleaseClass if classes.of(c).pir_owed]
    query = (
        select(ws.deployments).outerjoin(reviews, reviews.c.release_id == d.release_id)
        .where(reviews.c.release_id.is_(None))
        .where(or_((d.outcome == ws.FAILED) & d.environment.in_(classes.pir_after_failure_in),
                   d.release_class.in_(owing_classes)))
    )
    if service is not None:
        query = query.where(d.service == service)
    rows = (await session.execute(query)).mappings().all()
    found = [Deployment(r["release_id"], r["service"], r["environment"], r["release_class"], r["outcome"],
                         r["ended_at"] if r["outcome"] == ws.FAILED and r["ended_at"] else r["since"])
             for r in rows]
    return owed_reviews(found, set(), classes)


async def gate_inputs(session: AsyncSession, classes: ClassesPolicy) -> dict[str, Any]:
    """The rules' view of reviews (GateState fields): services that owe one, and each one's latest risk factors."""
    return {
        "owed_pirs": frozenset(o.service for o in await owed(session, classes)),
        "pir_risk_factors": latest_risk_factors(await recorded(session, limit=1000)),
    }
