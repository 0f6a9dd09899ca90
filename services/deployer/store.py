"""The deployer's own data: deployments, holds waiting for a person, incident pauses, and what runs where (routers and instances)."""

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime

from services.deployer.domain import Deployment, Hold, Pause, Status
from services.deployer.local.driver import InstanceHandle, RouterHandle

metadata = MetaData()

deployments = Table(
    "deployments",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("service", String(64), nullable=False),
    Column("environment", String(64), nullable=False),
    Column("version", String(64), nullable=False),
    Column("stable_version", String(64), nullable=True),
    Column("steps", JSON, nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("status", String(32), nullable=False, index=True),
    Column("approval", Text, nullable=False),  # the ReleaseApproved event: later steps need its spec
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Its own table, not columns of `deployments`: databases made before holds existed gain it from
# create_all, which never alters a table that is already there.
holds = Table(
    "holds",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("step_index", Integer, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("held_at", UtcDateTime(), nullable=False),
    Column("verdict_event_id", String(64), nullable=False),
)

# Incident pauses the gatekeeper sent (RolloutPaused), until it lifts them (RolloutResumed) or the release ends.
pauses = Table(
    "pauses",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("incident_id", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("paused_at", UtcDateTime(), nullable=False),
    Column("held_verdict_event_id", String(64), nullable=True),
)

routers = Table(
    "routers",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("port", Integer, nullable=False),
    Column("admin_port", Integer, nullable=False),
)

# How many refused admin calls of which router process were last reported, so a restarted deployer
# reports only new ones. Its own table: create_all adds it to databases made before it existed.
router_refusals = Table(
    "router_refusals",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("router_pid", Integer, nullable=False),
    Column("reported", Integer, nullable=False),
)

instances = Table(
    "instances",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("port", Integer, nullable=False),
    Column("artifact_path", Text, nullable=False),
)

live = Table(
    "live",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("version", String(64), nullable=False),
)


def _deployment(row) -> Deployment:  # type: ignore[no-untyped-def]
    return Deployment(
        release_id=row.release_id, service=row.service, environment=row.environment, version=row.version,
        stable_version=row.stable_version, steps=list(row.steps), step_index=row.step_index, status=Status(row.status),
    )


async def get_deployment(session: AsyncSession, release_id: str) -> Deployment | None:
    row = (await session.execute(select(deployments).where(deployments.c.release_id == release_id))).first()
    return _deployment(row) if row else None


async def approval_of(session: AsyncSession, release_id: str) -> str:
    return await session.scalar(select(deployments.c.approval).where(deployments.c.release_id == release_id))


async def latest_approval_of_version(session: AsyncSession, service: str, environment: str, version: str) -> str | None:
    """The approval (ReleaseApproved JSON) of the newest deployment that ran `version`: whose instance it is."""
    return await session.scalar(
        select(deployments.c.approval)
        .where(deployments.c.service == service, deployments.c.environment == environment,
               deployments.c.version == version, deployments.c.status != Status.FAILED.value)
        .order_by(deployments.c.updated_at.desc())
        .limit(1)
    )


async def latest_approval(session: AsyncSession, service: str, environment: str) -> str | None:
    """The approval (ReleaseApproved JSON) of the newest deployment of `service` in `environment`, any outcome."""
    return await session.scalar(
        select(deployments.c.approval)
        .where(deployments.c.service == service, deployments.c.environment == environment)
        .order_by(deployments.c.updated_at.desc())
        .limit(1)
    )


async def active_deployment(session: AsyncSession, service: str, environment: str) -> Deployment | None:
    row = (
        await session.execute(
            select(deployments).where(
                deployments.c.service == service,
                deployments.c.environment == environment,
                deployments.c.status == Status.DEPLOYING.value,
            )
        )
    ).first()
    return _deployment(row) if row else None


async def save_deployment(session: AsyncSession, deployment: Deployment, approval: str | None = None) -> None:
    values = {
        "service": deployment.service, "environment": deployment.environment, "version": deployment.version,
        "stable_version": deployment.stable_version, "steps": deployment.steps, "step_index": deployment.step_index,
        "status": deployment.status.value, "updated_at": datetime.now(UTC),
    }
    if await get_deployment(session, deployment.release_id) is None:
        await session.execute(
            deployments.insert().values(release_id=deployment.release_id, approval=approval or "", **values)
        )
    else:
        await session.execute(deployments.update().where(deployments.c.release_id == deployment.release_id).values(**values))


async def get_hold(session: AsyncSession, release_id: str) -> Hold | None:
    row = (await session.execute(select(holds).where(holds.c.release_id == release_id))).first()
    return Hold(**{**row._mapping, "reasons": list(row.reasons)}) if row else None


async def save_hold(session: AsyncSession, hold: Hold) -> None:
    """The first hold of a release at a step stands; another verdict holding the same step adds nothing."""
    known = await get_hold(session, hold.release_id)
    if known is not None and known.step_index == hold.step_index:
        return
    await clear_hold(session, hold.release_id)
    await session.execute(holds.insert().values(**hold.__dict__))


async def clear_hold(session: AsyncSession, release_id: str) -> None:
    await session.execute(holds.delete().where(holds.c.release_id == release_id))


async def get_pause(session: AsyncSession, release_id: str) -> Pause | None:
    row = (await session.execute(select(pauses).where(pauses.c.release_id == release_id))).first()
    return Pause(**row._mapping) if row else None


async def save_pause(session: AsyncSession, pause: Pause) -> None:
    """The first pause of a release stands until it is lifted (what it held is kept)."""
    if await get_pause(session, pause.release_id) is None:
        await session.execute(pauses.insert().values(**pause.__dict__))


async def hold_for_pause(session: AsyncSession, pause: Pause, hold: Hold) -> None:
    """An accepted step the pause keeps from moving on: held, and remembered as the pause's to move on."""
    await save_hold(session, hold)
    await session.execute(pauses.update().where(pauses.c.release_id == pause.release_id)
                          .values(held_verdict_event_id=hold.verdict_event_id))


async def clear_pause(session: AsyncSession, release_id: str) -> None:
    await session.execute(pauses.delete().where(pauses.c.release_id == release_id))


async def live_version(session: AsyncSession, service: str, environment: str) -> str | None:
    return await session.scalar(select(live.c.version).where(live.c.service == service, live.c.environment == environment))


async def set_live_version(session: AsyncSession, service: str, environment: str, version: str) -> None:
    await session.execute(live.delete().where(live.c.service == service, live.c.environment == environment))
    await session.execute(live.insert().values(service=service, environment=environment, version=version))


async def get_router(session: AsyncSession, service: str, environment: str) -> RouterHandle | None:
    row = (await session.execute(select(routers).where(routers.c.service == service, routers.c.environment == environment))).first()
    return RouterHandle(**row._mapping) if row else None


async def save_router(session: AsyncSession, handle: RouterHandle) -> None:
    await session.execute(routers.delete().where(routers.c.service == handle.service, routers.c.environment == handle.environment))
    await session.execute(routers.insert().values(**handle.__dict__))


async def refusals_reported(session: AsyncSession, service: str, environment: str) -> tuple[int, int] | None:
    """(router pid, refusals reported) last recorded for the router of `service` in `environment`."""
    row = (await session.execute(select(router_refusals).where(
        router_refusals.c.service == service, router_refusals.c.environment == environment))).first()
    return (row.router_pid, row.reported) if row else None


async def save_refusals_reported(session: AsyncSession, router: RouterHandle, reported: int) -> None:
    where = (router_refusals.c.service == router.service, router_refusals.c.environment == router.environment)
    await session.execute(router_refusals.delete().where(*where))
    await session.execute(router_refusals.insert().values(
        service=router.service, environment=router.environment, router_pid=router.pid, reported=reported))


async def get_instance(session: AsyncSession, service: str, environment: str, version: str) -> InstanceHandle | None:
    row = (
        await session.execute(
            select(instances).where(
                instances.c.service == service, instances.c.environment == environment, instances.c.version == version
            )
        )
    ).first()
    return InstanceHandle(**row._mapping) if row else None


async def all_instances(session: AsyncSession) -> list[InstanceHandle]:
    return [InstanceHandle(**row._mapping) for row in (await session.execute(select(instances))).all()]


async def all_routers(session: AsyncSession) -> list[RouterHandle]:
    return [RouterHandle(**row._mapping) for row in (await session.execute(select(routers))).all()]


async def save_instance(session: AsyncSession, handle: InstanceHandle) -> None:
    await forget_instance(session, handle)
    await session.execute(instances.insert().values(**handle.__dict__))


async def forget_instance(session: AsyncSession, handle: InstanceHandle) -> None:
    await session.execute(
        instances.delete().where(
            instances.c.service == handle.service,
            instances.c.environment == handle.environment,
            instances.c.version == handle.version,
        )
    )
