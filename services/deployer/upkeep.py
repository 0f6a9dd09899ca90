"""Keeps what the deployer runs running, and only what it verified.

At start-up it stops processes the target started but nobody recorded (the deployer died in
between), adopts what still runs and restarts what died on the same ports. While it runs it
watches every recorded instance and restarts one that died, recording the restart and alerting.
Before adopting or starting an instance it checks the bytes of its artifact copy again: a copy
that changed is refused (never run) and raises a critical alert. It also reads how many calls to
change each router were refused (they lacked the deployer's token) and reports new ones as
`RouterAdminRefused` with a critical alert, and carries on deployment plans that wait for no one:
interrupted by a restart, or due after a timed wait (an old pool kept warm).
"""

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from contracts.events import AlertRaised, InstanceRestarted, ReleaseApproved, RouterAdminRefused, Severity
from contracts.subjects import alert_subject
from libs.artifacts import ArtifactError
from libs.runtime import Runtime
from libs.store import Transaction
from services.deployer import store
from services.deployer.artifacts import ArtifactStore
from services.deployer.domain import restart_delay, unreported_refusals
from services.deployer.handlers import DRIVER_ERRORS, SOURCE
from services.deployer.local.admin_auth import Refusals
from services.deployer.store import Running
from services.deployer.target import DeployTarget, Handle

log = logging.getLogger("slipway.deployer.upkeep")
CHECK_INTERVAL_S = 0.5
# Reading refusals is an HTTP call per router: with fifty routers every half second that is a
# hundred calls a second in the deployer. A refused call is alerted within seconds all the same.
REFUSALS_INTERVAL_S = 5.0
InstanceKey = tuple[str, str, str, int]
Noticed = TypeVar("Noticed", InstanceRestarted, AlertRaised, RouterAdminRefused)


class Upkeep:
    def __init__(
        self, runtime: Runtime, driver: DeployTarget, artifacts: ArtifactStore,
        lock_for: Callable[[str, str], asyncio.Lock], resume_plan: Callable[[str], Awaitable[None]],
        interval_s: float = CHECK_INTERVAL_S, refusals_interval_s: float = REFUSALS_INTERVAL_S,
    ) -> None:
        self.runtime, self.driver, self.artifacts = runtime, driver, artifacts
        self.lock_for = lock_for
        self.resume_plan = resume_plan
        self.interval_s = interval_s
        self.refusals_interval_s = refusals_interval_s
        self._refused: set[tuple[InstanceKey, str]] = set()  # (instance, handle identity): alerted once, never retried
        self._failures: dict[InstanceKey, tuple[int, float]] = {}  # failed restarts and when to try again
        # (service, environment) -> (router identity, refusal count) last seen: unchanged needs no database round.
        self._refusals_seen: dict[tuple[str, str, str], tuple[str, int]] = {}  # by region's router too
        self._silent_routers: set[str] = set()  # routers whose refusals could not be read, logged once
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def reconcile(self) -> None:
        """At start-up: stop what nobody recorded, adopt what still runs, restart what died."""
        async with self.runtime.db.transaction() as tx:
            routers, instances = await store.all_routers(tx.session), await store.all_instances(tx.session)
        for stray in await self.driver.stop_unrecorded([*(h for _, _, h in routers), *(i.handle for i in instances)]):
            log.warning("stopped %s: it was started but never recorded (the deployer died in between)", stray)
        for service, environment, router in routers:
            try:
                restored = await self.driver.ensure_router(service, environment, router)
            except DRIVER_ERRORS as exc:
                log.error("could not restore the router of %s/%s: %s", service, environment, exc)
                continue
            async with self.runtime.db.transaction() as tx:
                await store.save_router(tx.session, service, environment, restored)
        for instance in instances:
            await self._keep_running(instance, adopting=True)

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._watch(), name="deployer-upkeep")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _watch(self) -> None:
        routers_checked = 0.0
        while not self._stopping.is_set():
            try:
                async with asyncio.timeout(self.interval_s):
                    await self._stopping.wait()
                return
            except TimeoutError:
                pass
            checks = [self.check_instances, self.check_plans]
            if time.monotonic() - routers_checked >= self.refusals_interval_s:
                routers_checked = time.monotonic()
                checks.append(self.check_routers)
            for check in checks:
                try:
                    await check()
                except Exception:  # noqa: BLE001 - the watch must outlive a failed round (database busy, ...)
                    log.exception("%s failed; trying again in %ss", check.__name__, self.interval_s)

    async def check_instances(self) -> None:
        async with self.runtime.db.transaction() as tx:
            instances = await store.all_instances(tx.session)
        for instance in instances:
            if not self.driver.is_alive(instance.handle):
                await self._keep_running(instance, adopting=False)

    async def check_plans(self) -> None:
        async with self.runtime.db.transaction() as tx:
            due = await store.unfinished_plans(tx.session, datetime.now(UTC))
        for release_id in due:
            await self.resume_plan(release_id)

    async def check_routers(self) -> None:
        async with self.runtime.db.transaction() as tx:
            routers = await store.all_routers(tx.session)
        for service, environment, router in routers:
            if not self.driver.is_alive(router):
                continue
            try:
                refusals = await self.driver.admin_refusals(router)
            except DRIVER_ERRORS as exc:
                if router.identity not in self._silent_routers:
                    self._silent_routers.add(router.identity)
                    log.warning("cannot read the refused admin calls of %s/%s: %s", service, environment, exc)
                continue
            self._silent_routers.discard(router.identity)
            key = (service, environment, store.region_of(router))
            if self._refusals_seen.get(key) != (router.identity, refusals.count):
                await self._report_refusals(service, environment, router, refusals)
                self._refusals_seen[key] = (router.identity, refusals.count)

    async def _report_refusals(self, service: str, environment: str, router: Handle, refusals: Refusals) -> None:
        async def record(tx: Transaction) -> None:
            reported = await store.refusals_reported(tx.session, service, environment, store.region_of(router))
            news = unreported_refusals(reported, router.identity, refusals.count)
            last = refusals.last
            if news == 0 or last is None:
                return
            await store.save_refusals_reported(tx.session, service, environment, router, refusals.count)
            summary = (f"{news} call(s) to change the router of {service} in {environment} without the "
                       f"deployer's token were refused, the last from {last.remote}: {last.reason}; routes unchanged")
            log.error("%s (%d since the router started)", summary, refusals.count)
            approved = await self._owner(tx, service, environment)
            if approved is None:
                return
            admin_url = self.driver.endpoints(router).admin_url
            await tx.emit(_about(
                RouterAdminRefused, approved, admin_url=admin_url, refused=news, total_refused=refusals.count,
                last_reason=last.reason, last_remote_address=last.remote,
                last_refused_at=datetime.fromtimestamp(last.at, UTC),
            ))
            await _alert(tx, approved, Severity.CRITICAL, summary,
                         {"admin_url": admin_url, "refused": news, "remote_address": last.remote})

        await self._in_transaction(record)

    async def _owner(self, tx: Transaction, service: str, environment: str) -> ReleaseApproved | None:
        """The release a router's trouble is reported on: the one that deployed the live version, else the latest."""
        live = await store.live_version(tx.session, service, environment)
        raw = await store.latest_approval_of_version(tx.session, service, environment, live) if live else None
        raw = raw or await store.latest_approval(tx.session, service, environment)
        if not raw:
            log.warning("no deployment of %s in %s is known: nothing to report its router's refusals against",
                        service, environment)
            return None
        return ReleaseApproved.model_validate_json(raw)

    async def _keep_running(self, instance: Running, *, adopting: bool) -> None:
        key: InstanceKey = (instance.service, instance.environment, instance.version, instance.slot)
        async with self.lock_for(instance.service, instance.environment):
            async with self.runtime.db.transaction() as tx:
                current = await store.get_instance(tx.session, *key)
            # Retired or replaced while we waited for the lock, or back already: nothing to do.
            if current != instance or (not adopting and self.driver.is_alive(instance.handle)):
                return
            if (key, instance.handle.identity) in self._refused or time.monotonic() < self._failures.get(key, (0, 0.0))[1]:
                return
            try:
                await self.artifacts.check(Path(instance.artifact_path))
            except ArtifactError as exc:
                await self._refuse(instance, str(exc))
                return
            try:
                handle = await self.driver.start_instance(*key, Path(instance.artifact_path), instance.handle)
            except DRIVER_ERRORS as exc:
                failures = self._failures.get(key, (0, 0.0))[0] + 1
                self._failures[key] = (failures, time.monotonic() + restart_delay(failures))
                log.error("could not restart %s %s in %s (attempt %d): %s", key[0], key[2], key[1], failures, exc)
                return
            self._failures.pop(key, None)
            if handle != instance.handle:
                await self._record_restart(instance, replace(instance, handle=handle))

    async def _record_restart(self, dead: Running, running: Running) -> None:
        reason = (f"instance {dead.slot} of {dead.version} ({self.driver.describe(dead.handle)}) had died or "
                  f"stopped answering; restarted as {self.driver.describe(running.handle)}")
        log.warning("%s %s in %s: %s", dead.service, dead.version, dead.environment, reason)

        async def record(tx: Transaction) -> None:
            await store.save_instance(tx.session, running)
            approved = await self._approval(tx, dead)
            if approved is None:
                return
            await tx.emit(_about(InstanceRestarted, approved, version=dead.version, reason=reason))
            await _alert(tx, approved, Severity.WARNING, f"{dead.service} {dead.version} in {dead.environment} "
                         f"was restarted: {reason}", {"slot": dead.slot})

        await self._in_transaction(record)

    async def _refuse(self, instance: Running, reason: str) -> None:
        key = (instance.service, instance.environment, instance.version, instance.slot)
        self._refused.add((key, instance.handle.identity))
        log.error("refusing to run %s %s in %s: %s", instance.service, instance.version, instance.environment, reason)
        if self.driver.is_alive(instance.handle):
            await self.driver.stop_instance(instance.handle)

        async def record(tx: Transaction) -> None:
            approved = await self._approval(tx, instance)
            if approved is not None:
                await _alert(tx, approved, Severity.CRITICAL, f"{instance.service} {instance.version} in "
                             f"{instance.environment} is not run: {reason}", {"slot": instance.slot})

        await self._in_transaction(record)

    async def _in_transaction(self, work: Callable[[Transaction], Awaitable[None]]) -> None:
        async with self.runtime.db.transaction() as tx:
            await work(tx)
        if tx.emitted:
            self.runtime.relay.wake()

    async def _approval(self, tx: Transaction, instance: Running) -> ReleaseApproved | None:
        raw = await store.latest_approval_of_version(tx.session, instance.service, instance.environment, instance.version)
        if raw is None:
            log.warning("no deployment owns %s %s in %s: nothing to report it against",
                        instance.service, instance.version, instance.environment)
            return None
        return ReleaseApproved.model_validate_json(raw)


def _about(kind: type[Noticed], approved: ReleaseApproved, **fields: object) -> Noticed:
    """An event of `approved`'s release that no consumed message caused (the deployer noticed it)."""
    return kind(
        release_id=approved.release_id, service=approved.service, environment=approved.environment,
        correlation_id=approved.correlation_id, source=SOURCE, **fields,
    )


async def _alert(
    tx: Transaction, approved: ReleaseApproved, severity: Severity, summary: str, details: dict[str, float | int | str]
) -> None:
    team = approved.release.team
    alert = _about(AlertRaised, approved, severity=severity, team=team, summary=summary, details=details)
    await tx.emit(alert, subject=alert_subject(severity.value, team, approved.service))
