"""Use cases of the deployer: start a release, move it step by step, hold it for a person, complete it or roll it back.

Side effects on the target (processes, router weights) are idempotent and happen before the
transaction that records the outcome, so a redelivered event after a crash repeats them safely;
what runs where is saved the moment it starts, so a restart adopts it instead of duplicating it.
A release is handled once per release_id, not only once per event: an approval for a release
that already has a deployment (a retried request that got through) changes nothing.
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.commands import CommandResult, ResumeRelease
from contracts.events import (
    AlertRaised, DeploymentFailed, DeploymentStarted, DeploymentSucceeded, ReleaseApproved, ReleaseResumed, RollbackCompleted,
    RollbackRequested, Severity, StepStarted, StepVerdict,
)
from contracts.subjects import alert_subject
from contracts.envelope import Event
from libs.artifacts import ArtifactError
from libs.commands import Refused, Signed
from libs.runtime import Runtime
from libs.store import Transaction
from services.deployer import store
from services.deployer.artifacts import ArtifactStore
from services.deployer.domain import (
    Deployment, Hold, Next, Pause, Status, after_verdict, advanced, conflict, onward, resume_refusal, traffic_split,
)
from services.deployer.local.driver import InstanceHandle, LocalDriverError, RouterHandle
from services.deployer.target import DeployTarget

log = logging.getLogger("slipway.deployer")
SOURCE = "deployer"
ON_APPROVED, ON_VERDICT, ON_ROLLBACK = "deployer-approved", "deployer-verdicts", "deployer-rollbacks"
DRIVER_ERRORS = (ArtifactError, LocalDriverError, TimeoutError, OSError)


class Handlers:
    def __init__(self, runtime: Runtime, driver: DeployTarget, artifacts: ArtifactStore) -> None:
        self.runtime = runtime
        self.driver = driver
        self.artifacts = artifacts
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
            known_router = await store.get_router(tx.session, service, env)
            known_instance = await store.get_instance(tx.session, service, env, spec.version)
            stable_instance = await store.get_instance(tx.session, service, env, stable) if stable else None
        if earlier is not None:
            log.info("release %s approved again (event %s): its deployment is already %s, nothing to do",
                     approved.release_id, approved.event_id, earlier.status.value)
            await self.runtime.process_once(ON_APPROVED, approved, _nothing)
            return
        if stable == spec.version:
            problem = f"{service} {spec.version} is already live in {env}"
        if problem:
            await self._fail(approved, stable, problem)
            return
        instance: InstanceHandle | None = None
        try:
            # Instances run from the deployer's own verified copy, never from the path the release named.
            artifact_path = await self.artifacts.admit(spec.artifact.uri, spec.artifact.digest)
            if known_instance is not None and known_instance.artifact_path != str(artifact_path):
                # Left from an earlier release of the same version string with other bytes.
                await self._retire(known_instance)
                known_instance = None
            router = await self.driver.ensure_router(service, env, known_router)
            await self._remember(store.save_router, router)
            instance = await self.driver.start_instance(service, env, spec.version, artifact_path, known_instance)
            await self._remember(store.save_instance, instance)
            steps = spec.traffic_steps()
            await self._shift(router, instance, stable_instance, steps[0])
        except DRIVER_ERRORS as exc:
            if instance is not None:
                await self._retire(instance)
            await self._fail(approved, stable, f"could not start {spec.version}: {exc}")
            return
        deployment = Deployment(approved.release_id, service, env, spec.version, stable, steps, 0, Status.DEPLOYING)
        started = DeploymentStarted.caused_by(
            approved, SOURCE, version=spec.version, stable_version=stable, strategy=spec.strategy.kind, steps=steps,
            router_url=router.url, commit_sha=spec.commit.sha, committed_at=spec.commit.committed_at,
            team=spec.team,
        )

        async def record(tx: Transaction) -> None:
            await store.save_deployment(tx.session, deployment, approval=approved.model_dump_json())
            await tx.emit(started)
            await tx.emit(step_started(started, deployment, approved, router, stable_instance is not None))

        await self.runtime.process_once(ON_APPROVED, approved, record)
        log.info("deploying %s %s to %s (stable %s), steps %s", service, spec.version, env, stable, steps)

    async def _follow_verdict(self, verdict: StepVerdict) -> None:
        async with self.runtime.db.transaction() as tx:
            if await tx.already_processed(ON_VERDICT, verdict.event_id):
                return
            footing = await footing_of(tx.session, verdict.release_id)
        action, why = after_verdict(footing.deployment, verdict.step_index, verdict.verdict, footing.pause is not None)
        log.info("release %s step %d %s: %s", verdict.release_id, verdict.step_index, verdict.verdict.value, why)
        if action is Next.PAUSE and footing.pause is not None:
            pause = footing.pause

            async def hold_for_incident(tx: Transaction) -> None:
                await store.hold_for_pause(tx.session, pause, Hold(
                    verdict.release_id, verdict.step_index, [pause.reason], verdict.occurred_at, verdict.event_id))
                await tx.emit(paused_alert(verdict, pause), subject=alert_subject(
                    Severity.WARNING.value, verdict.team, verdict.service))

            await self.runtime.process_once(ON_VERDICT, verdict, hold_for_incident)
            return
        if action is Next.HOLD:
            hold = Hold(verdict.release_id, verdict.step_index, list(verdict.reasons), verdict.occurred_at,
                        verdict.event_id)

            async def remember_hold(tx: Transaction) -> None:
                await store.save_hold(tx.session, hold)

            await self.runtime.process_once(ON_VERDICT, verdict, remember_hold)
            return
        if action not in (Next.ADVANCE, Next.COMPLETE):
            await self.runtime.process_once(ON_VERDICT, verdict, _nothing)
            return
        moved, event = await self.step_onward(verdict, footing, action)

        async def record(tx: Transaction) -> None:
            await record_onward(tx, moved, event)

        await self.runtime.process_once(ON_VERDICT, verdict, record)

    async def resume_release(self, command: ResumeRelease, by: Signed) -> CommandResult:
        """A person accepts the step a release is held at; it goes on exactly as after a passing verdict."""
        async with self.runtime.db.transaction() as tx:
            known = await store.get_deployment(tx.session, command.release_id)
        if known is None:
            return CommandResult(ok=False, message=resume_refusal(None, None, command.release_id) or "")
        async with self.lock_for(known.service, known.environment):
            return await self._resume(command, by)

    async def _resume(self, command: ResumeRelease, by: Signed) -> CommandResult:
        async with self.runtime.db.transaction() as tx:
            footing = await footing_of(tx.session, command.release_id)
        deployment, hold = footing.deployment, footing.hold
        approved = ReleaseApproved.model_validate_json(footing.approval_json) if footing.approval_json else None
        if deployment is not None and (not_theirs := by.team_refusal(
                deployment.release_id, approved.release.team if approved else None)):
            raise Refused(not_theirs, deployment.release_id, deployment.environment)
        problem = resume_refusal(deployment, hold, command.release_id, footing.pause)
        if problem is not None or deployment is None or hold is None or approved is None:
            log.info("resume of %s by %s refused: %s", command.release_id, by.actor, problem)
            return CommandResult(ok=False, message=problem or f"release {command.release_id} has no approval record")
        resumed = ReleaseResumed(
            release_id=deployment.release_id, service=deployment.service, environment=deployment.environment,
            correlation_id=approved.correlation_id, causation_id=hold.verdict_event_id, actor=by.actor,
            source=SOURCE, step_index=deployment.step_index, comment=command.comment, signed_command=by.proof,
        )
        moved, event = await self.step_onward(resumed, footing, onward(deployment))
        async with self.runtime.db.transaction() as tx:
            await tx.emit(resumed)
            await record_onward(tx, moved, event)
        self.runtime.relay.wake()
        log.warning("release %s resumed at step %d by %s: %s", deployment.release_id, deployment.step_index + 1,
                    by.actor, command.comment)
        if moved.status is Status.SUCCEEDED:
            then = f"{moved.version} now takes all traffic"
        else:
            then = f"step {moved.step_index + 1} of {len(moved.steps)} started"
        return CommandResult(
            ok=True, message=f"release {deployment.release_id} resumed at step {deployment.step_index + 1}: {then}",
            data={"release_id": deployment.release_id, "next": event.type},
        )

    async def step_onward(self, cause: Event, footing: "Footing", action: Next) -> tuple[Deployment, Event]:
        """Accept the current step: the next step's weights, or all traffic and the stable version retired.

        Returns the moved deployment and the event announcing it, for the caller's transaction.
        """
        deployment, router, instance, stable_instance = (
            footing.deployment, footing.router, footing.instance, footing.stable_instance,
        )
        if deployment is None or footing.approval_json is None or router is None or instance is None:
            raise LocalDriverError(f"release {cause.release_id}: deployment, router or instance record missing")
        if action is Next.ADVANCE:
            moved = advanced(deployment)
            await self._shift(router, instance, stable_instance, moved.steps[moved.step_index])
            approved = ReleaseApproved.model_validate_json(footing.approval_json)
            return moved, step_started(cause, moved, approved, router, stable_instance is not None)
        await self.driver.set_weights(router, [(instance, 100)])
        if stable_instance is not None:
            await self._retire(stable_instance)
        succeeded = DeploymentSucceeded.caused_by(
            cause, SOURCE, version=deployment.version, previous_version=deployment.stable_version
        )
        return replace(deployment, status=Status.SUCCEEDED), succeeded

    async def _roll_back(self, request: RollbackRequested) -> None:
        async with self.runtime.db.transaction() as tx:
            if await tx.already_processed(ON_ROLLBACK, request.event_id):
                return
            deployment = await store.get_deployment(tx.session, request.release_id)
            router = await store.get_router(tx.session, request.service, request.environment)
            bad = await store.get_instance(tx.session, request.service, request.environment, request.bad_version)
            stable = None
            if deployment and deployment.stable_version:
                stable = await store.get_instance(tx.session, request.service, request.environment, deployment.stable_version)
        if deployment is None or deployment.status is not Status.DEPLOYING:
            log.warning("rollback of %s ignored: %s", request.release_id, "unknown" if deployment is None else deployment.status)
            await self.runtime.process_once(ON_ROLLBACK, request, _nothing)
            return
        if router is not None:
            await self.driver.set_weights(router, [(stable, 100)] if stable else [])
        if bad is not None:
            await self._retire(bad)
        completed = RollbackCompleted.caused_by(
            request, SOURCE, deployment_id=deployment.release_id, bad_version=deployment.version,
            restored_version=deployment.stable_version, root_cause=request.reason, failed_at=request.failed_at,
        )

        async def record(tx: Transaction) -> None:
            await store.save_deployment(tx.session, replace(deployment, status=Status.ROLLED_BACK))
            await store.clear_hold(tx.session, deployment.release_id)
            await store.clear_pause(tx.session, deployment.release_id)  # a pause never outlives its rollout
            await tx.emit(completed)

        await self.runtime.process_once(ON_ROLLBACK, request, record)
        log.info("rolled back %s %s; %s restored", request.service, deployment.version, deployment.stable_version)

    async def _shift(self, router: RouterHandle, new: InstanceHandle, stable: InstanceHandle | None, weight: int) -> None:
        split = traffic_split(weight, stable is not None)
        weights = [(new, split.new)] + ([(stable, split.stable)] if stable is not None else [])
        await self.driver.set_weights(router, weights)

    async def _retire(self, instance: InstanceHandle) -> None:
        await self.driver.stop_instance(instance)
        async with self.runtime.db.transaction() as tx:
            await store.forget_instance(tx.session, instance)

    async def _remember(self, save: Callable[[AsyncSession, Any], Awaitable[None]], handle: object) -> None:
        async with self.runtime.db.transaction() as tx:
            await save(tx.session, handle)

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
    """Where a release stands and what runs for it: what moving its current step on needs."""

    deployment: Deployment | None
    approval_json: str | None
    hold: Hold | None
    router: RouterHandle | None
    instance: InstanceHandle | None
    stable_instance: InstanceHandle | None
    pause: Pause | None = None


async def footing_of(session: AsyncSession, release_id: str) -> Footing:
    deployment = await store.get_deployment(session, release_id)
    if deployment is None:
        return Footing(None, None, None, None, None, None, await store.get_pause(session, release_id))
    service, env = deployment.service, deployment.environment
    stable = deployment.stable_version
    return Footing(
        deployment=deployment,
        approval_json=await store.approval_of(session, release_id),
        hold=await store.get_hold(session, release_id),
        router=await store.get_router(session, service, env),
        instance=await store.get_instance(session, service, env, deployment.version),
        stable_instance=await store.get_instance(session, service, env, stable) if stable else None,
        pause=await store.get_pause(session, release_id),
    )


async def record_onward(tx: Transaction, moved: Deployment, event: Event) -> None:
    await store.save_deployment(tx.session, moved)
    await store.clear_hold(tx.session, moved.release_id)
    if moved.status is Status.SUCCEEDED:
        await store.set_live_version(tx.session, moved.service, moved.environment, moved.version)
    await tx.emit(event)


def step_started(
    cause: Event, deployment: Deployment, approved: ReleaseApproved, router: RouterHandle, has_stable: bool
) -> StepStarted:
    spec, triggers = approved.release, approved.release.rollback_triggers
    return StepStarted.caused_by(
        cause, SOURCE, deployment_id=deployment.release_id, step_index=deployment.step_index,
        step_count=len(deployment.steps), weight=traffic_split(deployment.steps[deployment.step_index], has_stable).new,
        version=deployment.version, stable_version=deployment.stable_version, team=spec.team,
        analysis_interval_s=spec.strategy.analysis_interval_s, max_error_rate=triggers.max_error_rate,
        max_p99_latency_ms=triggers.max_p99_latency_ms, min_requests=triggers.min_requests,
        router_url=router.url, metrics_url=router.metrics_url,
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
