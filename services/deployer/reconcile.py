"""Putting one service in one environment back as declared, through the deploy target (a use case).

What to do is decided by services.deployer.reconcile_rules from what runs, read again under the service's
lock so that no release, restart or other reconcile changes it meanwhile. New instances of the live
version start first (from the deployer's verified copy of its artifact, checked again); then the router
routes only to the instances that stay, so none is sent a request while it stops; surplus and stray
instances stop; instances running with another configuration are restarted one at a time (same slot and
port, the declared configuration), each out of the router while another live instance serves; last the
router routes to the whole live pool. Every step is recorded as it happens, so what runs is always what
the store says and a reconcile cut short is finished by the next one. What was done and what was left,
with why, is one DriftReconciled.
"""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from contracts.commands import SignedCommand
from contracts.environment_events import DriftReconciled
from contracts.events import ReleaseApproved
from libs.environments import Environment
from libs.runtime import Runtime
from services.deployer import store
from services.deployer.artifacts import ArtifactStore
from services.deployer.drift import Instance, Running, where
from services.deployer.handlers import DRIVER_ERRORS, SOURCE
from services.deployer.reconcile_rules import Reconciliation, reconciliation
from services.deployer.target import DeployTarget, Handle, Pool

log = logging.getLogger("slipway.deployer.reconcile")
ReadRunning = Callable[[str, str], Awaitable[Running]]


class Reconcile:
    def __init__(self, runtime: Runtime, target: DeployTarget, artifacts: ArtifactStore, read: ReadRunning) -> None:
        self.runtime, self.target, self.artifacts, self.read = runtime, target, artifacts, read

    async def apply(self, declared: Environment, service: str, environment: str, *, trigger: str, actor: str = SOURCE,
                    proof: SignedCommand | None = None, declaration: str = "") -> DriftReconciled | None:
        """Reconcile `service` in `environment` (the caller holds its lock); the event recorded, None if nothing to do."""
        running = await self.read(service, environment)
        plan = reconciliation(declared, running)
        if not plan.acts and (trigger == "schedule" or not plan.left):  # a person asking is told why nothing was done
            return None
        done = _Done()
        if plan.acts:
            await self._act(service, environment, plan, done)
        event = DriftReconciled(
            service=service, environment=environment, actor=actor, source=SOURCE, trigger=trigger, version=plan.version,
            started=done.started, stopped=done.stopped, restarted=done.restarted, left=[*plan.left, *done.left],
            declaration=declaration, signed_command=proof)
        await self.runtime.emit(event)
        log.info("reconciled %s in %s: started %s, stopped %s, restarted %s, left %s", service, environment,
                 event.started, event.stopped, event.restarted, event.left)
        return event

    async def _act(self, service: str, env: str, plan: Reconciliation, done: "_Done") -> None:
        async with self.runtime.db.transaction() as tx:
            approval = await store.latest_approval_of_version(tx.session, service, env, plan.version or "")
        if approval is None:
            done.left.append(f"no release of {service} {plan.version} in {env} is recorded: its artifact is unknown")
            return
        artifact = self.artifacts.path_for(ReleaseApproved.model_validate_json(approval).release.artifact.digest)
        touched = {region for region, _ in plan.start} | {i.region for i in (*plan.stop, *plan.restart)}
        for region in sorted(touched, key=lambda r: r or ""):
            router = await self._router(service, env, region)
            if router is None:
                done.left.append(f"no router of {service} {where(region)} in {env} is recorded: nothing done there")
                continue
            await self._act_in(Place(service, env, plan.version or "", region, router), plan, artifact, done)

    async def _act_in(self, at: "Place", plan: Reconciliation, artifact: Path, done: "_Done") -> None:
        """Reconcile what runs behind one router: a region's, or the whole environment's."""
        for region, slot in plan.start:
            if region == at.region:
                await self._start(at, slot, artifact, done)
        stopping = await self._recorded(at, [i for i in plan.stop if i.region == at.region])
        if stopping and await self._route_around(at, stopping, done):
            for running in stopping:
                await self._stop(running, done)
        # One at a time, each out of the router while it restarts when another instance can serve meanwhile.
        for running in await self._recorded(at, [i for i in plan.restart if i.region == at.region]):
            if await self._route_around(at, [running], done):
                await self._restart(running, done)
        try:
            if live := await self._live_pool(at):  # none when the declaration asks for none
                await self.target.set_weights(at.router, [Pool(at.version, live, 100)])
        except DRIVER_ERRORS as exc:
            done.left.append(f"could not route to the live pool of {at.version} {where(at.region)}: {exc}")

    async def _router(self, service: str, env: str, region: str | None) -> Handle | None:
        # A regional release runs a router per region; otherwise every instance, whatever its region, is behind the
        # environment's one router.
        async with self.runtime.db.transaction() as tx:
            regional = await store.get_router(tx.session, service, env, region) if region else None
            return regional or await store.get_router(tx.session, service, env)

    async def _route_around(self, at: "Place", leaving: list[store.Running], done: "_Done") -> bool:
        """Route to the live instances but `leaving` and wait for what they serve; False (said why) if that failed.

        With no other live instance nothing is rerouted: the router keeps sending to the instance restarted in place
        (same port), or to nothing once all of it is meant to stop."""
        staying = await self._live_pool(at, exclude=leaving)
        if not staying:
            return True
        try:
            await self.target.set_weights(at.router, [Pool(at.version, staying, 100)])
            await self.target.drain(at.router, [r.handle for r in leaving])
        except DRIVER_ERRORS as exc:
            names = ", ".join(f"{r.version} slot {r.slot}" for r in leaving)
            done.left.append(f"could not take {names} out of the router: {exc}; left running as it was")
            return False
        return True

    async def _start(self, at: "Place", slot: int, artifact: Path, done: "_Done") -> None:
        what = f"{at.version} slot {slot} {where(at.region)}"
        try:
            await self.artifacts.check(artifact)
            handle = await self.target.start_instance(at.service, at.environment, at.version, slot, artifact, None,
                                                      at.region or "")
        except DRIVER_ERRORS as exc:
            done.left.append(f"could not start {what}: {exc}")
            return
        async with self.runtime.db.transaction() as tx:
            await store.save_instance(tx.session, store.Running(at.service, at.environment, at.version, slot,
                                                                str(artifact), handle))
        done.started.append(f"{what} ({self.target.describe(handle)})")

    async def _stop(self, running: store.Running, done: "_Done") -> None:
        what = _where(running)
        try:
            await self.target.stop_instance(running.handle)
        except DRIVER_ERRORS as exc:
            done.left.append(f"could not stop {what}: {exc}")
            return
        async with self.runtime.db.transaction() as tx:
            await store.forget_instance(tx.session, running)
        done.stopped.append(what)

    async def _restart(self, running: store.Running, done: "_Done") -> None:
        what = _where(running)
        try:
            await self.artifacts.check(Path(running.artifact_path))
            await self.target.stop_instance(running.handle)
            handle = await self.target.start_instance(running.service, running.environment, running.version,
                                                      running.slot, Path(running.artifact_path), running.handle)
        except DRIVER_ERRORS as exc:
            done.left.append(f"could not restart {what} with the declared configuration: {exc}")
            return
        async with self.runtime.db.transaction() as tx:
            await store.save_instance(tx.session, store.Running(
                running.service, running.environment, running.version, running.slot, running.artifact_path, handle))
        done.restarted.append(f"{what} ({self.target.describe(handle)})")

    async def _recorded(self, at: "Place", instances: list[Instance]) -> list[store.Running]:
        wanted = {(i.version, i.slot) for i in instances}
        async with self.runtime.db.transaction() as tx:
            return [r for r in await store.all_instances(tx.session)
                    if (r.service, r.environment) == (at.service, at.environment) and (r.version, r.slot) in wanted]

    async def _live_pool(self, at: "Place", exclude: list[store.Running] | None = None) -> tuple[Handle, ...]:
        gone = {(i.version, i.slot) for i in exclude or []}
        async with self.runtime.db.transaction() as tx:
            return tuple(r.handle for r in await store.pool(tx.session, at.service, at.environment, at.version)
                         if (r.version, r.slot) not in gone and _region(r) == at.region)


@dataclass(frozen=True)
class Place:
    """Where one part of a reconcile happens: the live version behind one router."""

    service: str
    environment: str
    version: str
    region: str | None  # None: the whole environment
    router: Handle


@dataclass
class _Done:
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def _region(running: store.Running) -> str | None:
    return running.handle.data.get("region") or None


def _where(running: store.Running) -> str:
    return f"{running.version} slot {running.slot} {where(_region(running))}"
