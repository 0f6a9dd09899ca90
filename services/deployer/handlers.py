"""Use cases of the deployer: start a release, carry out its strategy's plan, hold it for a person, complete it or
roll it back.

A strategy is a planner (services.deployer.strategies); the handlers execute its actions on the deploy
target one by one and record the plan's progress after each, so a restarted deployer resumes where it
stopped. Side effects on the target are idempotent and happen before the transaction that records
them, so a repeated action after a crash is harmless; what runs where is saved the moment it starts,
so a restart adopts it instead of duplicating it. A release is handled once per release_id, not only
once per event: an approval for a release that already has a deployment changes nothing.
"""

import asyncio
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import (
    AlertRaised, DeploymentFailed, DeploymentStarted, DeploymentSucceeded, ReleaseApproved, RollbackCompleted,
    RollbackRequested, Severity, SmokeTestCompleted, StepStarted, StepVerdict,
)
from contracts.subjects import alert_subject
from contracts.envelope import Event
from libs.artifacts import ArtifactError
from libs.environments import DeclarationSource
from libs.policy_yaml import PolicyError
from libs.runtime import Runtime
from libs.store import Transaction
from services.deployer import steering_store, store
from services.deployer.artifacts import ArtifactStore
from services.deployer.domain import (
    Deployment, Hold, Next, Pause, Status, after_verdict, conflict,
)
from services.deployer.planned_pauses import pause_for_person, waits_for_person
from services.deployer.rollout import Layout, LayoutRefused, Rollout, rollout_for, waves_of
from services.deployer.steering import PersonPause
from services.deployer.strategies.promotion import promoted
from services.deployer.strategies.warm import warm_reach
from services.deployer.strategies.plan import (
    SAVED, Action, AwaitVerdict, Bake, ClearPilot, EnterRegion, HealthCheck, KeepWarm, Progress, RetirePool,
    RoutePilot, Shift, SmokeTest, StartInstances, StartPool, StopInstances, Succeed, reach, steps_of,
)
from services.deployer.strategies.scopes import WHOLE, region_at, regions_of
from services.deployer.target import DeployTarget, Endpoints, Handle, PilotRule, Pool, TargetError

log = logging.getLogger("slipway.deployer")
SOURCE = "deployer"
ON_APPROVED, ON_VERDICT, ON_ROLLBACK = "deployer-approved", "deployer-verdicts", "deployer-rollbacks"
DRIVER_ERRORS = (ArtifactError, TargetError, TimeoutError, OSError)
# Slots are numbered over the whole environment: region number n of a release's layout holds slots from n * this.
REGION_SLOTS = 1000


class Unhealthy(TargetError):
    """The new pool answered its smoke test or health check badly: it gets no (more) traffic."""


@dataclass
class Run:
    """One deployment while its plan is carried out: what the actions need, read once."""

    deployment: Deployment
    approved: ReleaseApproved
    routers: dict[str, Handle]  # by region (WHOLE for the environment's one router)
    plan: list[Action]  # the rollout's plan, or once rolled back the actions that undo it
    progress: Progress
    rollout: Rollout
    undoing: bool = False
    region: str = WHOLE  # the region the actions act on now (EnterRegion changes it)

    def __post_init__(self) -> None:
        self.region = region_at(self.plan, self.progress.cursor)

    @property
    def router(self) -> Handle:
        if self.region not in self.routers:
            raise TargetError(f"release {self.deployment.release_id}: no router is recorded for region {self.region}")
        return self.routers[self.region]

    def slots(self, slots: tuple[int, ...]) -> tuple[int, ...]:
        """The plan's slots of a pool in the current region, as numbered over the whole environment."""
        regions = [wave.region for wave in self.rollout.waves]
        base = REGION_SLOTS * regions.index(self.region) if self.region != WHOLE else 0
        return tuple(base + slot for slot in slots)


class Handlers:
    def __init__(self, runtime: Runtime, target: DeployTarget, artifacts: ArtifactStore,
                 declarations: DeclarationSource | None = None) -> None:
        self.runtime = runtime
        self.target = target
        self.artifacts = artifacts
        # Regions and pool sizes of environments (infra/environments); read again when a file changed.
        self.declarations = declarations or DeclarationSource(runtime.settings.environments_dir)
        # One change at a time per service and environment within this process.
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

    def lock_for(self, service: str, environment: str) -> asyncio.Lock:
        return self._locks[(service, environment)]

    def _lock(self, event: Event) -> asyncio.Lock:
        return self.lock_for(event.service, event.environment)

    async def on_release_approved(self, approved: ReleaseApproved) -> None:
        async with self._lock(approved):
            await self._deploy(approved)

    async def on_step_verdict(self, verdict: StepVerdict) -> None:
        async with self._lock(verdict):
            await self._follow_verdict(verdict)

    async def on_rollback_requested(self, request: RollbackRequested) -> None:
        async with self._lock(request):
            await self._roll_back(request)

    async def _deploy(self, approved: ReleaseApproved) -> None:
        spec, service, env = approved.release, approved.service, approved.environment
        async with self.runtime.db.transaction() as tx:
            if await tx.already_processed(ON_APPROVED, approved.event_id):
                return
            earlier = await store.get_deployment(tx.session, approved.release_id)
            problem = conflict(await store.active_deployment(tx.session, service, env), approved.release_id)
            stable = await store.live_version(tx.session, service, env)
            known_routers = await store.routers_of(tx.session, service, env)
            known_pool = await store.pool(tx.session, service, env, spec.version)
            stable_pool = await store.pool(tx.session, service, env, stable) if stable else []
        if earlier is not None:
            log.info("release %s approved again (event %s): its deployment is already %s, nothing to do",
                     approved.release_id, approved.event_id, earlier.status.value)
            await self.runtime.process_once(ON_APPROVED, approved, _nothing)
            return
        if stable == spec.version:
            problem = f"{service} {spec.version} is already live in {env}"
        if spec.strategy is None:  # the gatekeeper fills in a recommended one: an approval without is not its
            problem = "the approval names no strategy: the gatekeeper approves a release with the one it names or recommends"
        if not problem:
            try:
                declared = self.declarations.current().get(env)
                layout, rollout = rollout_for(spec, env, declared, stable, Counter(r.region for r in stable_pool))
            except (LayoutRefused, PolicyError) as exc:
                problem = f"cannot lay {spec.version} out over {env}: {exc}"
        if problem:
            await self._fail(approved, stable, problem)
            return
        plan = rollout.plan()
        steps = steps_of(plan)
        try:
            # Instances run from the deployer's own verified copy, never from the path the release named.
            artifact_path = await self.artifacts.admit(spec.artifact.uri, spec.artifact.digest)
            for left in known_pool:
                if left.artifact_path != str(artifact_path):
                    # Left from an earlier release of the same version string with other bytes.
                    await self._stop(left)
            routers = {region: await self.target.ensure_router(service, env, known_routers.get(region), region)
                       for region, _, _ in layout.waves}
        except DRIVER_ERRORS as exc:
            await self._fail(approved, stable, f"could not start {spec.version}: {exc}")
            return
        deployment = Deployment(approved.release_id, service, env, spec.version, stable, steps, 0, Status.DEPLOYING)
        started = DeploymentStarted.caused_by(
            approved, SOURCE, version=spec.version, stable_version=stable, strategy=spec.strategy.kind, steps=steps,
            router_url=self.target.endpoints(routers[layout.waves[0][0]]).url, commit_sha=spec.commit.sha,
            committed_at=spec.commit.committed_at, team=spec.team, scope=spec.scope.kind, regions=layout.regions,
            instances={region or env: count for region, count in layout.instances.items()},
            instances_from=layout.source,
        )

        async def record(tx: Transaction) -> None:
            # A router started but never recorded (a crash before this commit) is stopped when the deployer restarts.
            for router in routers.values():
                await store.save_router(tx.session, service, env, router)
            await store.save_deployment(tx.session, deployment, approval=approved.model_dump_json())
            await store.start_plan(tx.session, deployment.release_id, len(stable_pool), layout.to_json())
            await tx.emit(started)

        await self.runtime.process_once(ON_APPROVED, approved, record)
        log.info("deploying %s %s to %s (stable %s) %s, %s scope, steps %s, instances %s (from the %s)", service,
                 spec.version, env, stable, spec.strategy.kind, spec.scope.kind, steps, layout.instances, layout.source)
        await self._carry_on(Run(deployment, approved, routers, plan, Progress(), rollout), approved)

    async def load_run(self, release_id: str) -> Run | None:
        async with self.runtime.db.transaction() as tx:
            deployment = await store.get_deployment(tx.session, release_id)
            record = await store.get_plan(tx.session, release_id)
            if deployment is None or record is None:
                return None
            approved = ReleaseApproved.model_validate_json(await store.approval_of(tx.session, release_id))
            routers = await store.routers_of(tx.session, deployment.service, deployment.environment)
            promotion = await steering_store.get_promotion(tx.session, release_id)
        if not routers:
            raise TargetError(f"release {release_id}: no router is recorded for {deployment.service}")
        spec = approved.release
        # Plans saved before layouts were: one wave, sized by the release.
        layout = (Layout.from_json(record.layout) if record.layout else
                  Layout(((WHOLE, spec.instances or 1, record.stable_instances),), "release"))
        rollout = Rollout(spec.strategy, spec.scope, waves_of(layout, deployment.version, deployment.stable_version))
        if record.undo_reach is not None:
            undo = rollout.rollback(record.undo_reach)
            return Run(deployment, approved, routers, undo, record.progress, rollout, undoing=True)
        plan = rollout.plan()
        if promotion is not None:  # a person skipped the rest of its analysis
            plan = promoted(plan, promotion.after)
        return Run(deployment, approved, routers, plan, record.progress, rollout)

    async def resume_plan(self, release_id: str) -> None:
        """Carry on a plan nobody waits on: interrupted by a restart, or due after a timed wait."""
        probe = await self.load_run(release_id)
        if probe is None:
            return
        async with self.lock_for(probe.deployment.service, probe.deployment.environment):
            # Again, under the lock: the handler that held it may have moved the plan on, into a timed wait (an old
            # pool kept warm) among others. Carrying on from there would end that wait at once.
            async with self.runtime.db.transaction() as tx:
                if not await store.plan_goes_on(tx.session, release_id, datetime.now(UTC)):
                    return
            run = await self.load_run(release_id)
            if run is not None and not run.progress.waiting:
                await self._carry_on(run, run.approved)

    async def accept_step(self, cause: Event, release_id: str, step_index: int) -> tuple[Deployment, Event | None]:
        """The current step is accepted (by a verdict, a person or a lifted pause): the plan goes on.

        Returns the deployment as it then stands and the last event that announced it."""
        run = await self.load_run(release_id)
        if run is None:
            raise TargetError(f"release {release_id}: deployment or plan record missing")
        run.progress = run.progress.accept(step_index, run.plan)
        emitted = await self._carry_on(run, cause)
        return run.deployment, emitted

    async def _carry_on(self, run: Run, cause: Event) -> Event | None:
        """Execute the plan's actions until it waits for a verdict or a timer, or ends; record each as it is done."""
        emitted: Event | None = None
        while not run.progress.waiting and run.progress.cursor < len(run.plan):
            action = run.plan[run.progress.cursor]
            try:
                await self._execute(run, action)
            except DRIVER_ERRORS as exc:
                if run.undoing:  # traffic is back already; what is left is tried again by the supervision loop
                    log.error("release %s: %s after its rollback failed: %s", run.deployment.release_id, action, exc)
                    return None
                await self._abandon(run, cause, f"{type(action).__name__} failed: {exc}")
                return None
            emitted, stop = await self._record(run, action, cause)
            if stop:
                break
        return emitted

    async def _execute(self, run: Run, action: Action) -> None:
        match action:
            case EnterRegion(region):
                run.region = region
            case StartPool(version, count):
                await self._start(run, version, run.slots(tuple(range(count))))
            case StartInstances(version, slots):
                await self._start(run, version, run.slots(slots))
            case StopInstances(version, slots, weights):
                await self._stop_slots(run, version, run.slots(slots), weights)
            case Shift(weights):
                await self._shift(run, weights)
            case RoutePilot(version, header, cookie):
                await self.target.set_pilot(run.router, PilotRule(version, header, cookie))
            case ClearPilot():
                await self.target.set_pilot(run.router, None)
            case SmokeTest(version):
                await self._smoke_test(run, version)
            case HealthCheck(version):
                await self._check_health(run, version)
            case RetirePool(version):
                await self._retire(run, version)

    async def _record(self, run: Run, action: Action, cause: Event) -> tuple[Event | None, bool]:
        """Save the plan's progress past `action` with what it announces; whether the run stops here.

        Progress past an action that announces nothing is only kept in memory until the next one that does:
        every action is idempotent, so after a crash repeating those since the last saved point is harmless
        (what runs is recorded as it starts, whatever the progress says). One commit per action saved."""
        progress = run.progress.after(action)
        finished = progress.cursor >= len(run.plan)
        if not finished and not isinstance(action, SAVED):
            run.progress = progress
            return None, False
        wake_at, event, stop = None, None, False
        if isinstance(action, AwaitVerdict):
            run.deployment = replace(run.deployment, step_index=action.step_index)
            event = step_started(cause, run, action, self.target.endpoints(run.router))
            stop = True
        elif isinstance(action, Succeed):
            run.deployment = replace(run.deployment, status=Status.SUCCEEDED)
            warm = run.plan[progress.cursor] if progress.cursor < len(run.plan) else None
            event = DeploymentSucceeded.caused_by(
                cause, SOURCE, version=run.deployment.version, previous_version=run.deployment.stable_version,
                warm_until=datetime.now(UTC) + timedelta(seconds=warm.seconds) if isinstance(warm, KeepWarm) else None)
        elif isinstance(action, KeepWarm | Bake):
            wake_at, stop = datetime.now(UTC) + timedelta(seconds=action.seconds), True
        async with self.runtime.db.transaction() as tx:
            await store.save_progress(tx.session, run.deployment.release_id, progress, finished=finished,
                                      wake_at=wake_at)
            if event is not None:
                await store.save_deployment(tx.session, run.deployment)
                await store.clear_hold(tx.session, run.deployment.release_id)
                if run.deployment.status is Status.SUCCEEDED:
                    await store.set_live_version(
                        tx.session, run.deployment.service, run.deployment.environment, run.deployment.version)
                await tx.emit(event)
        if tx.emitted:
            # Published before anything old is retired: success never waits for a process to stop.
            self.runtime.relay.wake()
        run.progress = progress
        return event, stop

    async def _abandon(self, run: Run, cause: Event, reason: str) -> None:
        """An action failed: put traffic back as the strategy says, and record the deployment as failed."""
        d = run.deployment
        log.warning("release %s failed: %s", d.release_id, reason)
        for undo in run.rollout.rollback(run.progress.cursor):
            try:
                await self._execute(run, undo)
            except DRIVER_ERRORS as exc:
                log.error("release %s: %s while putting traffic back failed: %s", d.release_id, undo, exc)
        failed = DeploymentFailed.caused_by(cause, SOURCE, version=d.version, reason=reason)
        run.deployment = replace(d, status=Status.FAILED)
        async with self.runtime.db.transaction() as tx:
            await store.save_deployment(tx.session, run.deployment)
            await store.save_progress(tx.session, d.release_id, run.progress, finished=True)
            await store.clear_hold(tx.session, d.release_id)
            await tx.emit(failed)
        self.runtime.relay.wake()

    async def _start(self, run: Run, version: str, slots: tuple[int, ...]) -> None:
        service, env = run.deployment.service, run.deployment.environment
        region = run.region
        async with self.runtime.db.transaction() as tx:
            known = {r.slot: r for r in await store.pool(tx.session, service, env, version)}
            approval = (run.approved.model_dump_json() if version == run.deployment.version
                        else await store.latest_approval_of_version(tx.session, service, env, version))
        if approval is None:
            raise TargetError(f"no release of {service} {version} is known: its artifact cannot be found")
        path = self.artifacts.path_for(ReleaseApproved.model_validate_json(approval).release.artifact.digest)

        async def start(slot: int) -> None:
            was = known.get(slot)
            handle = await self.target.start_instance(service, env, version, slot, path, was.handle if was else None,
                                                      region)
            if was is None or was.handle != handle:
                async with self.runtime.db.transaction() as tx:
                    await store.save_instance(tx.session, store.Running(service, env, version, slot, str(path), handle,
                                                                        region))

        results = await asyncio.gather(*(start(slot) for slot in slots), return_exceptions=True)
        if failures := [r for r in results if isinstance(r, BaseException)]:
            raise failures[0]

    async def _stop_slots(self, run: Run, version: str, slots: tuple[int, ...],
                          weights: tuple[tuple[str, int], ...]) -> None:
        """Out of the router first, so no request is sent to an instance that is stopping."""
        d = run.deployment
        leaving = {(version, slot) for slot in slots}
        await self._shift(run, weights, leaving)
        async with self.runtime.db.transaction() as tx:
            stopping = [r for r in await store.pool(tx.session, d.service, d.environment, version, run.region)
                        if r.slot in slots]
        await self.target.drain(run.router, [r.handle for r in stopping])
        for running in stopping:
            await self._stop(running)

    async def _smoke_test(self, run: Run, version: str) -> None:
        """Announced either way, so the smoke test is a stage of the release with its timing."""
        started_at, clock = datetime.now(UTC), time.perf_counter()
        problem = await self.target.smoke_test(run.router, version)
        await self.runtime.emit(SmokeTestCompleted.caused_by(
            run.approved, SOURCE, version=version, outcome="failed" if problem else "passed", started_at=started_at,
            duration_ms=round((time.perf_counter() - clock) * 1000, 3), problem=problem or ""))
        if problem is not None:
            raise Unhealthy(f"smoke test of {version}: {problem}")

    async def _check_health(self, run: Run, version: str) -> None:
        deployment = run.deployment
        async with self.runtime.db.transaction() as tx:
            pool = await store.pool(tx.session, deployment.service, deployment.environment, version, run.region)
        problems = [f"instance {r.slot}: {problem}" for r in pool
                    if (problem := await self.target.check_health(r.handle)) is not None]
        if problems or not pool:
            raise Unhealthy(f"health check of {version}: {'; '.join(problems) or 'no instance runs'}")

    async def _shift(self, run: Run, weights: tuple[tuple[str, int], ...],
                     leaving: set[tuple[str, int]] = frozenset()) -> None:
        service, env, region = run.deployment.service, run.deployment.environment, run.region
        async with self.runtime.db.transaction() as tx:
            pools = [Pool(version, tuple(r.handle for r in await store.pool(tx.session, service, env, version, region)
                                         if (version, r.slot) not in leaving), weight)
                     for version, weight in weights]
        if missing := [p.version for p in pools if not p.instances]:
            where = f" in {region}" if region else ""
            raise TargetError(f"no instance of {', '.join(missing)} is recorded{where} to route traffic to")
        await self.target.set_weights(run.router, pools)

    async def _retire(self, run: Run, version: str) -> None:
        deployment = run.deployment
        service, env = deployment.service, deployment.environment
        async with self.runtime.db.transaction() as tx:
            in_use = version == await store.live_version(tx.session, service, env)
            active = await store.active_deployment(tx.session, service, env)
            pool = await store.pool(tx.session, service, env, version, run.region)
        # A pool kept warm may meanwhile serve again (a later release of the same version adopted it).
        if in_use or (active is not None and active.release_id != deployment.release_id and active.version == version):
            log.info("%s %s in %s is not retired: it is live or being deployed again", service, version, env)
            return
        await self.target.drain(run.router, [r.handle for r in pool])
        for running in pool:
            await self._stop(running)

    async def _stop(self, running: store.Running) -> None:
        await self.target.stop_instance(running.handle)
        async with self.runtime.db.transaction() as tx:
            await store.forget_instance(tx.session, running)

    async def _follow_verdict(self, verdict: StepVerdict) -> None:
        async with self.runtime.db.transaction() as tx:
            if await tx.already_processed(ON_VERDICT, verdict.event_id):
                return
            footing = await footing_of(tx.session, verdict.release_id)
        paused = footing.pause is not None or footing.person_pause is not None
        action, why = after_verdict(footing.deployment, verdict.step_index, verdict.verdict, paused)
        log.info("release %s step %d %s: %s", verdict.release_id, verdict.step_index, verdict.verdict.value, why)
        if action is Next.PAUSE:
            await self.runtime.process_once(ON_VERDICT, verdict, lambda tx: hold_while_paused(tx, footing, verdict))
            return
        if action is Next.HOLD:
            hold = Hold(verdict.release_id, verdict.step_index, list(verdict.reasons), verdict.occurred_at,
                        verdict.event_id)

            async def remember_hold(tx: Transaction) -> None:
                await store.save_hold(tx.session, hold)

            await self.runtime.process_once(ON_VERDICT, verdict, remember_hold)
            return
        if action in (Next.ADVANCE, Next.COMPLETE):
            run = await self.load_run(verdict.release_id)
            if run is not None and not run.undoing and waits_for_person(run.plan, verdict.step_index):
                await self.runtime.process_once(ON_VERDICT, verdict, lambda tx: pause_for_person(tx, verdict))
                self.runtime.relay.wake()
                return
            await self.accept_step(verdict, verdict.release_id, verdict.step_index)
        await self.runtime.process_once(ON_VERDICT, verdict, _nothing)

    async def _roll_back(self, request: RollbackRequested) -> None:
        async with self.runtime.db.transaction() as tx:
            if await tx.already_processed(ON_ROLLBACK, request.event_id):
                return
        run = await self.load_run(request.release_id)
        deployment = run.deployment if run else None
        # A release that succeeded while its old pool is kept warm is switched back to it (blue-green).
        warm = await self._warm_reach(run) if run and run.deployment.status is Status.SUCCEEDED else None
        if run is None or deployment is None or (deployment.status is not Status.DEPLOYING and warm is None):
            log.warning("rollback of %s ignored: %s", request.release_id, "unknown" if deployment is None else
                        f"{deployment.status.value}, no old pool kept warm to switch back to")
            await self.runtime.process_once(ON_ROLLBACK, request, _nothing)
            return
        # Saved progress may lag what was done before a crash: undo as far as it may have gone (undoing is idempotent).
        undo_reach = warm if warm is not None else reach(run.plan, run.progress)
        undo = run.rollout.rollback(undo_reach)
        # Announced once traffic is back on the stable version; the bad pool is drained and stopped after.
        restored = max((i + 1 for i, action in enumerate(undo) if isinstance(action, Shift)), default=0)
        for action in undo[:restored]:
            await self._execute(run, action)
        completed = RollbackCompleted.caused_by(
            request, SOURCE, deployment_id=deployment.release_id, bad_version=deployment.version,
            restored_version=deployment.stable_version, root_cause=request.reason, failed_at=request.failed_at,
            regions=regions_of(undo[:restored]),
        )
        rolled_back = replace(deployment, status=Status.ROLLED_BACK)

        async def record(tx: Transaction) -> None:
            await store.save_deployment(tx.session, rolled_back)
            await store.start_undo(tx.session, deployment.release_id, undo_reach, Progress(restored),
                                   finished=restored >= len(undo))
            await store.clear_hold(tx.session, deployment.release_id)
            await store.clear_pause(tx.session, deployment.release_id)  # a pause never outlives its rollout
            await steering_store.clear_person_pause(tx.session, deployment.release_id)
            if warm is not None and deployment.stable_version:  # the old version is live again
                await store.set_live_version(tx.session, deployment.service, deployment.environment,
                                             deployment.stable_version)
            await tx.emit(completed)

        await self.runtime.process_once(ON_ROLLBACK, request, record)
        log.info("rolled back %s %s; %s restored", request.service, deployment.version, deployment.stable_version)
        await self._carry_on(Run(rolled_back, run.approved, run.routers, undo, Progress(restored), run.rollout,
                                 undoing=True), request)

    async def _warm_reach(self, run: Run) -> int | None:
        async with self.runtime.db.transaction() as tx:
            record = await store.get_plan(tx.session, run.deployment.release_id)
        return warm_reach(run.plan, run.progress, record.wake_at if record else None, datetime.now(UTC))

    async def _fail(self, approved: ReleaseApproved, stable: str | None, reason: str) -> None:
        log.warning("release %s failed: %s", approved.release_id, reason)
        spec = approved.release
        failed = DeploymentFailed.caused_by(approved, SOURCE, version=spec.version, reason=reason)
        # Recorded like any deployment, so a retried approval of this release finds it and stops there.
        deployment = Deployment(
            approved.release_id, approved.service, approved.environment, spec.version, stable,
            spec.traffic_steps(), 0, Status.FAILED,
        )

        async def record(tx: Transaction) -> None:
            await store.save_deployment(tx.session, deployment, approval=approved.model_dump_json())
            await tx.emit(failed)

        await self.runtime.process_once(ON_APPROVED, approved, record)


@dataclass(frozen=True)
class Footing:
    """Where a release stands: what deciding on its current step needs."""

    deployment: Deployment | None
    approval_json: str | None
    hold: Hold | None
    pause: Pause | None = None  # an incident's
    person_pause: PersonPause | None = None


async def footing_of(session: AsyncSession, release_id: str) -> Footing:
    deployment = await store.get_deployment(session, release_id)
    if deployment is None:
        return Footing(None, None, None, await store.get_pause(session, release_id))
    return Footing(
        deployment=deployment,
        approval_json=await store.approval_of(session, release_id),
        hold=await store.get_hold(session, release_id),
        pause=await store.get_pause(session, release_id),
        person_pause=await steering_store.get_person_pause(session, release_id),
    )


async def hold_while_paused(tx: Transaction, footing: Footing, verdict: StepVerdict) -> None:
    """An accepted step held by the pauses on it (an incident's, a person's): each remembers it, to move it on when
    it is the last one lifted."""
    reasons = [pause.reason for pause in (footing.pause, footing.person_pause) if pause is not None]
    hold = Hold(verdict.release_id, verdict.step_index, reasons, verdict.occurred_at, verdict.event_id)
    await store.save_hold(tx.session, hold)
    if footing.pause is not None:
        await store.hold_for_pause(tx.session, footing.pause, hold)
        await tx.emit(paused_alert(verdict, footing.pause), subject=alert_subject(
            Severity.WARNING.value, verdict.team, verdict.service))
    if footing.person_pause is not None:
        await steering_store.hold_for_person(tx.session, verdict.release_id, hold)


def step_started(cause: Event, run: Run, step: AwaitVerdict, endpoints: Endpoints) -> StepStarted:
    deployment, spec = run.deployment, run.approved.release
    triggers = spec.rollback_triggers
    return StepStarted.caused_by(
        cause, SOURCE, deployment_id=deployment.release_id, step_index=deployment.step_index,
        step_count=len(deployment.steps), weight=step.weight,
        version=deployment.version, stable_version=deployment.stable_version, team=spec.team,
        analysis_interval_s=run.rollout.analysis_interval_s(step.pilot), max_error_rate=triggers.max_error_rate,
        max_p99_latency_ms=triggers.max_p99_latency_ms, min_requests=triggers.min_requests,
        router_url=endpoints.url, metrics_url=endpoints.metrics_url, region=run.region or None, pilot=step.pilot,
    )


def paused_alert(verdict: StepVerdict, pause: Pause) -> AlertRaised:
    return AlertRaised.caused_by(
        verdict, SOURCE, severity=Severity.WARNING, team=verdict.team,
        summary=f"{verdict.service} {verdict.version} in {verdict.environment} holds at step {verdict.step_index + 1} "
                f"after a {verdict.verdict.value} verdict: paused for incident {pause.incident_id}",
        details={"incident_id": pause.incident_id, "step": verdict.step_index + 1, "reason": pause.reason[:2000]},
    )


async def _nothing(tx: Transaction) -> None:
    return None
