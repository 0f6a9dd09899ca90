"""The release workflow's own tables: where each release stands, who approved it, what is deployed where.

Beside store.py's tables (own MetaData); the gatekeeper builds the rules' snapshot (rules.state.GateState)
from them, so a restarted gatekeeper resumes every waiting release where it was.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, MetaData, String, Table, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import ArtifactVerified
from libs.store import UtcDateTime

metadata = MetaData()

# States a release passes through; the waiting ones are rules.evaluate.Verdict values.
APPROVED, REFUSED, REJECTED, EXPIRED = "approved", "refused", "rejected", "expired"
FINAL = (APPROVED, REFUSED, REJECTED, EXPIRED)

workflows = Table(
    "workflows",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("service", String(64), nullable=False),
    Column("environment", String(64), nullable=False, index=True),
    Column("state", String(32), nullable=False, index=True),
    Column("summary", Text, nullable=False, default=""),
    Column("outstanding", Text, nullable=False, default="[]"),  # JSON list of the approvals still missing
    Column("deadline", UtcDateTime(), nullable=True),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("verified", Text, nullable=False),  # the ArtifactVerified it started from, as received
)

approvals = Table(
    "approvals",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("approver", String(200), primary_key=True),  # one approval per person and release
    Column("roles", String(500), nullable=False),
    Column("teams", String(2000), nullable=False),
    Column("comment", String(500), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
)

# What the deployer reported, for concurrency (in flight), risk (recent failures) and promotion (successes).
deployments = Table(
    "deployments",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("service", String(64), nullable=False),
    Column("environment", String(64), nullable=False, index=True),
    Column("digest", String(80), nullable=False),
    Column("release_class", String(16), nullable=False),
    Column("outcome", String(16), nullable=False, index=True),  # in-flight | succeeded | failed
    Column("since", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
)
IN_FLIGHT, SUCCEEDED, FAILED = "in-flight", "succeeded", "failed"


@dataclass(frozen=True)
class Workflow:
    release_id: str
    service: str
    environment: str
    state: str
    summary: str
    outstanding: list[str]
    deadline: datetime | None
    requested_at: datetime
    updated_at: datetime
    verified: ArtifactVerified


def _workflow(row: dict) -> Workflow:
    return Workflow(**{**row, "outstanding": json.loads(row["outstanding"]),
                       "verified": ArtifactVerified.model_validate_json(row["verified"])})


async def add_workflow(session: AsyncSession, verified: ArtifactVerified, at: datetime) -> None:
    await session.execute(workflows.insert().values(
        release_id=verified.release_id, service=verified.service, environment=verified.environment, state="new",
        summary="", outstanding="[]", deadline=None, requested_at=at, updated_at=at,
        verified=verified.model_dump_json(),
    ))


async def get_workflow(session: AsyncSession, release_id: str) -> Workflow | None:
    row = (await session.execute(select(workflows).where(workflows.c.release_id == release_id))).mappings().first()
    return _workflow(dict(row)) if row else None


async def waiting(session: AsyncSession, limit: int = 500, state: str | None = None) -> list[Workflow]:
    """Releases not decided for good, oldest first."""
    query = select(workflows).where(workflows.c.state.not_in(FINAL)).order_by(workflows.c.requested_at).limit(limit)
    if state is not None:
        query = query.where(workflows.c.state == state)
    return [_workflow(dict(row)) for row in (await session.execute(query)).mappings().all()]


async def set_state(session: AsyncSession, release_id: str, state: str, at: datetime, summary: str = "",
                    outstanding: list[str] | None = None, deadline: datetime | None = None) -> None:
    await session.execute(update(workflows).where(workflows.c.release_id == release_id).values(
        state=state, summary=summary, outstanding=json.dumps(outstanding or []), deadline=deadline, updated_at=at,
    ))


async def add_approval(session: AsyncSession, release_id: str, approver: str, roles: tuple[str, ...],
                       teams: tuple[str, ...], comment: str, at: datetime) -> None:
    await session.execute(approvals.insert().values(
        release_id=release_id, approver=approver, roles=",".join(roles), teams=",".join(teams), comment=comment, at=at,
    ))


async def approvals_of(session: AsyncSession, release_ids: list[str]) -> list[dict]:
    if not release_ids:
        return []
    query = select(approvals).where(approvals.c.release_id.in_(release_ids)).order_by(approvals.c.at)
    return [dict(row) for row in (await session.execute(query)).mappings().all()]


async def deployment_started(session: AsyncSession, release_id: str, service: str, environment: str, digest: str,
                             release_class: str, at: datetime) -> None:
    """Counted in flight from approval on: the slot is taken before the deployer says it started."""
    if await session.scalar(select(deployments.c.release_id).where(deployments.c.release_id == release_id)):
        return
    await session.execute(deployments.insert().values(
        release_id=release_id, service=service, environment=environment, digest=digest, release_class=release_class,
        outcome=IN_FLIGHT, since=at, ended_at=None,
    ))


async def deployment_ended(session: AsyncSession, release_id: str, outcome: str, at: datetime) -> bool:
    """True when this ended a deployment in flight (so a waiting release may take its slot)."""
    result = await session.execute(
        update(deployments).where(deployments.c.release_id == release_id, deployments.c.outcome == IN_FLIGHT)
        .values(outcome=outcome, ended_at=at))
    if result.rowcount:
        return True
    # A failure after success (a rollback of a release that had succeeded) still counts as a failure.
    if outcome == FAILED:
        await session.execute(update(deployments).where(deployments.c.release_id == release_id)
                              .values(outcome=FAILED, ended_at=at))
    return False


async def deployment_rows(session: AsyncSession, since: datetime) -> list[dict]:
    """In flight, and everything that ended after `since`."""
    query = select(deployments).where((deployments.c.outcome == IN_FLIGHT) | (deployments.c.ended_at >= since))
    return [dict(row) for row in (await session.execute(query)).mappings().all()]


BLOCKED_STATES = (REFUSED, REJECTED, EXPIRED)


async def ended_releases(session: AsyncSession, since: datetime, limit: int) -> list[tuple[str, dict, str]]:
    """(class, checklist answers, outcome) of the newest `limit` releases requested since `since` that ended:
    blocked (refused, rejected, expired), or deployed and then succeeded or failed."""
    query = (select(workflows.c.state, workflows.c.verified, deployments.c.outcome)
             .select_from(workflows.outerjoin(deployments, deployments.c.release_id == workflows.c.release_id))
             .where(workflows.c.requested_at >= since, workflows.c.state.in_(FINAL))
             .order_by(workflows.c.requested_at.desc()).limit(limit))
    ended = []
    for state, verified, deployed in (await session.execute(query)).all():
        outcome = "blocked" if state in BLOCKED_STATES else deployed
        if outcome not in ("blocked", SUCCEEDED, FAILED):
            continue  # approved and still deploying
        release = json.loads(verified).get("release") or {}
        ended.append((str(release.get("release_class", "standard")), dict(release.get("checklist") or {}), outcome))
    return ended
