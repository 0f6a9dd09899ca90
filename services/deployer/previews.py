"""Preview environments: admitted within their template's quota, torn down when their ttl has passed, recorded.

A release approved into `preview-<anything>` (an environment an ephemeral declaration is the template
of) starts a preview when fewer than `max_concurrent` previews of that template are alive; otherwise
it fails at once with the reason (DeploymentFailed) and nothing starts. On the environments schedule
a preview older than its ttl is torn down: its instances and routers are stopped and forgotten and a
PreviewExpired records what was stopped; one with a rollout in flight is left until the rollout ends.
Tearing down survives a crash: what is to be stopped is saved with the expiry before anything stops,
each thing is forgotten as it stops, and a restarted deployer finishes what a dead one began (the
next round finds the preview expired but not yet torn down). A release into a preview being torn
down is refused until it is gone.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import JSON, Column, MetaData, String, Table, select

from contracts.envelope import utcnow
from contracts.environment_events import PreviewExpired
from contracts.events import DeploymentFailed, ReleaseApproved
from libs.environments import DeclarationSource, Declarations
from libs.policy_yaml import PolicyError
from libs.runtime import Runtime
from libs.store import Transaction, UtcDateTime
from services.deployer import store
from services.deployer.handlers import ON_APPROVED, SOURCE
from services.deployer.target import DeployTarget
from services.deployer.preview_rules import Expiry, Preview, admission_refusal, expired

log = logging.getLogger("slipway.deployer.previews")
metadata = MetaData()

# The deployer's own record of each preview's life; its own table so that store.py's stay as they are.
previews = Table(
    "previews",
    metadata,
    Column("environment", String(64), primary_key=True),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("expired_at", UtcDateTime(), nullable=True),  # its teardown began
    # What its teardown stops ({"instances": [service@version], "routers": [service]}), saved when it began.
    Column("teardown", JSON, nullable=True),
    Column("torn_down_at", UtcDateTime(), nullable=True),
)


class Previews:
    def __init__(
        self, runtime: Runtime, directory: Path, target: DeployTarget,
        lock_for: Callable[[str, str], asyncio.Lock], deploy: Callable[[ReleaseApproved], Awaitable[None]],
    ) -> None:
        self.runtime, self.declared = runtime, DeclarationSource(directory)
        self.target, self.lock_for = target, lock_for
        self.deploy = deploy
        self._admitting = asyncio.Lock()  # two new previews approved at once must not both take the last place

    async def on_release_approved(self, approved: ReleaseApproved) -> None:
        declarations = self._declarations()
        if declarations is None or not _is_preview(declarations, approved.environment):
            await self.deploy(approved)
            return
        async with self._admitting:
            async with self.runtime.db.transaction() as tx:
                alive = [p.environment for p in await _alive(tx)]
                refusal = admission_refusal(declarations, approved.environment, alive)
                if approved.environment in await _tearing_down(tx):
                    refusal = (f"preview environment {approved.environment} is being torn down (its ttl passed); "
                               "release into it again once PreviewExpired is recorded")
                if refusal is None and approved.environment not in alive:
                    await _start(tx, approved.environment, utcnow())
        if refusal is None:
            await self.deploy(approved)
            return
        log.warning("%s", refusal)

        async def fail(tx: Transaction) -> None:
            await tx.emit(DeploymentFailed.caused_by(approved, SOURCE, version=approved.release.version, reason=refusal))

        await self.runtime.process_once(ON_APPROVED, approved, fail)

    async def expire(self) -> None:
        """The scheduled round: count previews found running, tear down those past their ttl, finish interrupted ones."""
        declarations = self._declarations()
        if declarations is None:
            return
        now = utcnow()
        async with self.runtime.db.transaction() as tx:
            alive = await _alive(tx)
            known = {p.environment for p in alive} | set(await _tearing_down(tx))
            for instance in await store.all_instances(tx.session):
                # Deployed before previews were recorded: its ttl counts from now.
                if instance.environment not in known and _is_preview(declarations, instance.environment):
                    await _start(tx, instance.environment, now)
                    alive.append(Preview(instance.environment, now))
                    known.add(instance.environment)
            unfinished = await _tearing_down(tx)
        for environment, expiry in unfinished.items():
            await self._tear_down(environment, expiry)
        for expiry in expired(declarations, alive, now):
            if await self._begin_tear_down(expiry, now):
                await self._tear_down(expiry.environment, expiry)

    async def expired_environments(self) -> set[str]:
        async with self.runtime.db.transaction() as tx:
            rows = await tx.session.execute(select(previews.c.environment).where(previews.c.expired_at.is_not(None)))
            return {row.environment for row in rows}

    async def _begin_tear_down(self, expiry: Expiry, now: datetime) -> bool:
        """Save what the teardown stops, with the expiry; False while a rollout there is in flight (it waits)."""
        async with self.runtime.db.transaction() as tx:
            mine = [i for i in await store.all_instances(tx.session) if i.environment == expiry.environment]
            routers = [service for service, env, _ in await store.all_routers(tx.session) if env == expiry.environment]
            for service in {i.service for i in mine} | set(routers):
                if await store.active_deployment(tx.session, service, expiry.environment) is not None:
                    log.info("preview %s is past its ttl; a rollout of %s is in flight, tearing down after it",
                             expiry.environment, service)
                    return False
            plan = {"instances": sorted(f"{i.service}@{i.version}" for i in mine), "routers": sorted(routers),
                    "template": expiry.template, "started_at": expiry.started_at.isoformat(), "ttl_s": expiry.ttl_s}
            await tx.session.execute(previews.update().where(previews.c.environment == expiry.environment)
                                     .values(expired_at=now, teardown=plan))
        return True

    async def _tear_down(self, environment: str, expiry: Expiry) -> None:
        """Stop and forget what runs in the preview (whatever is left of it), then record the whole teardown."""
        async with self.runtime.db.transaction() as tx:
            mine = [i for i in await store.all_instances(tx.session) if i.environment == environment]
            routers = [(service, handle) for service, env, handle in await store.all_routers(tx.session)
                       if env == environment]
        for instance in mine:
            async with self.lock_for(instance.service, instance.environment):
                await self.target.stop_instance(instance.handle)
                async with self.runtime.db.transaction() as tx:
                    await store.forget_instance(tx.session, instance)
        for service, router in routers:
            async with self.lock_for(service, environment):
                await self.target.stop_router(router)
                async with self.runtime.db.transaction() as tx:
                    await store.forget_router(tx.session, service, environment)
        async with self.runtime.db.transaction() as tx:
            plan = await tx.session.scalar(select(previews.c.teardown).where(previews.c.environment == environment))
            await tx.session.execute(previews.update().where(previews.c.environment == environment)
                                     .values(torn_down_at=utcnow()))
            await tx.emit(PreviewExpired(
                environment=environment, source=SOURCE, template=expiry.template, started_at=expiry.started_at,
                ttl_s=expiry.ttl_s, stopped=plan["instances"], routers_stopped=plan["routers"],
            ))
        self.runtime.relay.wake()
        log.info("preview %s expired after %ss: stopped %s and the router(s) of %s", environment, expiry.ttl_s,
                 plan["instances"] or "no instance", plan["routers"] or "nothing")

    def _declarations(self) -> Declarations | None:
        try:
            return self.declared.current()
        except PolicyError as broken:
            log.error("previews not checked: the environment declarations cannot be read: %s", broken)
            return None


def _is_preview(declarations: Declarations, environment: str) -> bool:
    template = declarations.get(environment)
    return template is not None and template.ephemeral is not None


async def _alive(tx: Transaction) -> list[Preview]:
    rows = await tx.session.execute(select(previews).where(previews.c.expired_at.is_(None)))
    return [Preview(row.environment, row.started_at) for row in rows]


async def _tearing_down(tx: Transaction) -> dict[str, Expiry]:
    """Previews whose teardown began and has not finished (the deployer stopped in between), with their expiry."""
    rows = await tx.session.execute(select(previews).where(previews.c.expired_at.is_not(None),
                                                           previews.c.torn_down_at.is_(None)))
    return {row.environment: Expiry(row.environment, row.teardown["template"],
                                    datetime.fromisoformat(row.teardown["started_at"]), row.teardown["ttl_s"])
            for row in rows}


async def _start(tx: Transaction, environment: str, at: datetime) -> None:
    """A preview begins (again, after an earlier one of the same name expired)."""
    await tx.session.execute(previews.delete().where(previews.c.environment == environment))
    await tx.session.execute(previews.insert().values(environment=environment, started_at=at, expired_at=None))
