"""The deployer's own data: deployments and their plans' progress, holds waiting for a person, incident pauses,
and what runs where (routers and instances, as the deploy target's handles)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, Column, ColumnElement, Integer, MetaData, String, Table, Text, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.store import UtcDateTime

from services.deployer.domain import Deployment, Hold, Pause, Status
from services.deployer.strategies.plan import Progress
from services.deployer.target import Handle

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

# What runs where, as the target's opaque handles (services.deployer.target). Tables of their own: the
# `routers` and `instances` tables of earlier versions held the local driver's pids and ports.
target_routers = Table(
    "target_routers",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    # One router per region for regional releases; "" is the environment's one router of every other release.
    Column("region", String(64), primary_key=True, server_default=""),
    Column("handle", Text, nullable=False),
)

target_instances = Table(
    "target_instances",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("artifact_path", Text, nullable=False),  # the deployer's verified copy it runs from
    Column("handle", Text, nullable=False),
    # Behind which router ("" the environment's one router). Slots are numbered over the whole environment,
    # so an instance is still known by (service, environment, version, slot) whatever its region.
    Column("region", String(64), nullable=False, server_default=""),
)

# How many refused admin calls of which router (its handle's identity) were last reported, so a restarted
# deployer reports only new ones.
router_refusals_seen = Table(
    "router_refusals_seen",
    metadata,
    Column("service", String(64), primary_key=True),
    Column("environment", String(64), primary_key=True),
    Column("region", String(64), primary_key=True, server_default=""),  # each regional router reports its own
    Column("router", Text, nullable=False),
    Column("reported", Integer, nullable=False),
)

# Where each deployment stands in its strategy's plan (services.deployer.strategies.plan.Progress).
plans = Table(
    "plans",
    metadata,
    Column("release_id", String(128), primary_key=True),
    Column("cursor", Integer, nullable=False),
    Column("waiting", Boolean, nullable=False),
    Column("stable_instances", Integer, nullable=False),  # the live pool's size when the plan began
    # Set once the deployment is rolled back: the cursor then walks the rollback actions for this reach of the plan.
    Column("undo_reach", Integer, nullable=True),
    Column("wake_at", UtcDateTime(), nullable=True),  # a timed action (keeping a pool warm) goes on then
    # The release's waves and pool sizes (services.deployer.rollout.Layout) as they were when it began.
    Column("layout", Text, nullable=True),
    Column("finished", Boolean, nullable=False, index=True),
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


@dataclass(frozen=True)
class Running:
    """One instance the deployer runs: which version and slot, from which verified copy, and the target's handle."""

    service: str
    environment: str
    version: str
    slot: int
    artifact_path: str
    handle: Handle
    region: str = ""


def region_of(handle: Handle) -> str:
    """The region a target put in its handle (where it runs is the target's to say); "" for none."""
    return str(handle.data.get("region") or "")


async def get_router(session: AsyncSession, service: str, environment: str, region: str = "") -> Handle | None:
    raw = await session.scalar(select(target_routers.c.handle).where(
        target_routers.c.service == service, target_routers.c.environment == environment,
        target_routers.c.region == region))
    return Handle.from_json(raw) if raw else None


async def routers_of(session: AsyncSession, service: str, environment: str) -> dict[str, Handle]:
    """The routers of a service in an environment, by region."""
    rows = (await session.execute(select(target_routers).where(
        target_routers.c.service == service, target_routers.c.environment == environment))).all()
    return {row.region: Handle.from_json(row.handle) for row in rows}


async def all_routers(session: AsyncSession) -> list[tuple[str, str, Handle]]:
    rows = (await session.execute(select(target_routers))).all()
    return [(row.service, row.environment, Handle.from_json(row.handle)) for row in rows]


async def save_router(session: AsyncSession, service: str, environment: str, handle: Handle) -> None:
    """Recorded under the region its handle names."""
    region = region_of(handle)
    where = (target_routers.c.service == service, target_routers.c.environment == environment,
             target_routers.c.region == region)
    await session.execute(target_routers.delete().where(*where))
    await session.execute(target_routers.insert().values(service=service, environment=environment, region=region,
                                                         handle=handle.to_json()))


async def forget_router(session: AsyncSession, service: str, environment: str) -> None:
    """The router is gone for good (its environment was torn down), and so is what was reported of it."""
    for table in (target_routers, router_refusals_seen):
        await session.execute(table.delete().where(table.c.service == service, table.c.environment == environment))


async def refusals_reported(session: AsyncSession, service: str, environment: str,
                            region: str = "") -> tuple[str, int] | None:
    """(router identity, refusals reported) last recorded for the router of `service` in `environment`."""
    row = (await session.execute(select(router_refusals_seen).where(
        router_refusals_seen.c.service == service, router_refusals_seen.c.environment == environment,
        router_refusals_seen.c.region == region))).first()
    return (row.router, row.reported) if row else None


async def save_refusals_reported(session: AsyncSession, service: str, environment: str, router: Handle,
                                 reported: int) -> None:
    region = region_of(router)
    where = (router_refusals_seen.c.service == service, router_refusals_seen.c.environment == environment,
             router_refusals_seen.c.region == region)
    await session.execute(router_refusals_seen.delete().where(*where))
    await session.execute(router_refusals_seen.insert().values(region=region, 
        service=service, environment=environment, router=router.identity, reported=reported))


def _running(row) -> Running:  # type: ignore[no-untyped-def]
    return Running(row.service, row.environment, row.version, row.slot, row.artifact_path,
                   Handle.from_json(row.handle), row.region)


async def pool(session: AsyncSession, service: str, environment: str, version: str,
               region: str | None = None) -> list[Running]:
    """The instances of `version` (in `region`, or in every region), by slot."""
    rows = (await session.execute(select(target_instances).where(
        target_instances.c.service == service, target_instances.c.environment == environment,
        target_instances.c.version == version,
        *([target_instances.c.region == region] if region is not None else [])).order_by(target_instances.c.slot))).all()
    return [_running(row) for row in rows]


async def get_instance(session: AsyncSession, service: str, environment: str, version: str,
                       slot: int) -> Running | None:
    row = (await session.execute(select(target_instances).where(
        target_instances.c.service == service, target_instances.c.environment == environment,
        target_instances.c.version == version, target_instances.c.slot == slot))).first()
    return _running(row) if row else None


async def all_instances(session: AsyncSession) -> list[Running]:
    return [_running(row) for row in (await session.execute(select(target_instances))).all()]


async def save_instance(session: AsyncSession, running: Running) -> None:
    await forget_instance(session, running)
    await session.execute(target_instances.insert().values(
        service=running.service, environment=running.environment, version=running.version, slot=running.slot,
        artifact_path=running.artifact_path, handle=running.handle.to_json(),
        # Where it runs is the target's to say: a caller that names no region gets the one its handle names.
        region=running.region or region_of(running.handle)))


async def forget_instance(session: AsyncSession, running: Running) -> None:
    await session.execute(target_instances.delete().where(
        target_instances.c.service == running.service, target_instances.c.environment == running.environment,
        target_instances.c.version == running.version, target_instances.c.slot == running.slot))


async def start_plan(session: AsyncSession, release_id: str, stable_instances: int, layout: str | None = None) -> None:
    await session.execute(plans.insert().values(release_id=release_id, cursor=0, waiting=False, finished=False,
                                                stable_instances=stable_instances, layout=layout))


@dataclass(frozen=True)
class PlanRecord:
    progress: Progress
    stable_instances: int  # the live pool's size when the plan began: the plan depends on it
    undo_reach: int | None  # rolled back: the cursor is in the rollback actions for the plan up to this action
    wake_at: datetime | None = None  # a timed wait (an old pool kept warm) ends then
    layout: str | None = None  # services.deployer.rollout.Layout as JSON; None for plans saved before it existed


async def get_plan(session: AsyncSession, release_id: str) -> PlanRecord | None:
    row = (await session.execute(select(plans).where(plans.c.release_id == release_id))).first()
    return PlanRecord(Progress(row.cursor, row.waiting), row.stable_instances, row.undo_reach,
                      row.wake_at, row.layout) if row else None


async def start_undo(session: AsyncSession, release_id: str, undo_reach: int, progress: Progress,
                     finished: bool) -> None:
    """From now on the deployment's cursor walks its rollback actions."""
    await session.execute(plans.update().where(plans.c.release_id == release_id).values(
        undo_reach=undo_reach, cursor=progress.cursor, waiting=False, wake_at=None, finished=finished))


async def save_progress(session: AsyncSession, release_id: str, progress: Progress, *, finished: bool = False,
                        wake_at: datetime | None = None) -> None:
    await session.execute(plans.update().where(plans.c.release_id == release_id).values(
        cursor=progress.cursor, waiting=progress.waiting, wake_at=wake_at, finished=finished))


def _goes_on(now: datetime) -> ColumnElement[bool]:
    """A plan that goes on without waiting for anyone: unfinished, waiting for no verdict, no timed wait to come."""
    return and_(plans.c.finished.is_(False), plans.c.waiting.is_(False),
                (plans.c.wake_at.is_(None)) | (plans.c.wake_at <= now))


async def unfinished_plans(session: AsyncSession, now: datetime) -> list[str]:
    """Releases whose plan goes on without waiting for anyone: interrupted by a restart, or due after a timed wait."""
    return list(await session.scalars(select(plans.c.release_id).where(_goes_on(now))))


async def plan_goes_on(session: AsyncSession, release_id: str, now: datetime) -> bool:
    """Whether this release's plan still goes on by itself: what unfinished_plans found may have moved on since
    (into a timed wait, a wait for a verdict, or to its end)."""
    found = await session.scalar(select(plans.c.release_id).where(plans.c.release_id == release_id, _goes_on(now)))
    return found is not None


async def rollout_in_flight(session: AsyncSession, service: str, environment: str) -> bool:
    """A deployment of the service being carried out, or whose plan still has work after it ended (a pool kept warm)."""
    unfinished = await session.scalar(
        select(plans.c.release_id).join(deployments, deployments.c.release_id == plans.c.release_id)
        .where(deployments.c.service == service, deployments.c.environment == environment,
               plans.c.finished.is_(False)).limit(1))
    return unfinished is not None or await active_deployment(session, service, environment) is not None
