"""Use cases of the rollback-controller: failing verdict or a person's abort -> RollbackRequested;
completion -> time to restore; starts and outcomes of releases -> which are in flight."""

import logging

from sqlalchemy.exc import IntegrityError

from contracts.commands import AbortRelease, CommandResult
from contracts.envelope import utcnow
from contracts.events import DeploymentStarted, DeploymentSucceeded, RollbackCompleted, RollbackRequested, StepVerdict
from libs.commands import Refused, Signed
from libs.runtime import Runtime
from libs.store import Transaction
from services.rollback_controller import store
from services.rollback_controller.domain import InFlight, abort_reason, abort_refusal, rollback_reason, time_to_restore

log = logging.getLogger("slipway.rollback_controller")
SOURCE = "rollback-controller"
ON_VERDICT, ON_COMPLETED = "rollback-controller-verdicts", "rollback-controller-completions"
ON_STARTED, ON_SUCCEEDED = "rollback-controller-starts", "rollback-controller-successes"


class Handlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def on_step_verdict(self, verdict: StepVerdict) -> None:
        reason = rollback_reason(verdict.verdict, verdict.reasons, verdict.step_index, verdict.version)

        async def decide(tx: Transaction) -> None:
            if reason is None:
                return
            if await store.exists(tx.session, verdict.release_id):
                # One rollback per release: a second failing verdict adds nothing to the first request.
                log.info("release %s is already being rolled back", verdict.release_id)
                return
            request = RollbackRequested.caused_by(
                verdict, SOURCE, deployment_id=verdict.deployment_id, bad_version=verdict.version,
                restore_version=verdict.stable_version, reason=reason, failed_at=verdict.occurred_at,
            )
            await store.add(
                tx.session, release_id=verdict.release_id, service=verdict.service, environment=verdict.environment,
                bad_version=verdict.version, reason=reason, failed_at=verdict.occurred_at, requested_at=request.occurred_at,
            )
            await tx.emit(request)
            log.warning("rolling back %s: %s", verdict.release_id, reason)

        await self.runtime.process_once(ON_VERDICT, verdict, decide)

    async def on_deployment_started(self, started: DeploymentStarted) -> None:
        release = InFlight(started.release_id, started.service, started.environment, started.version,
                           started.stable_version)

        async def record(tx: Transaction) -> None:
            await store.release_started(tx.session, release)
            if started.team is not None:
                await store.remember_team(tx.session, started.release_id, started.team)

        await self.runtime.process_once(ON_STARTED, started, record)

    async def on_deployment_succeeded(self, succeeded: DeploymentSucceeded) -> None:
        release = InFlight(succeeded.release_id, succeeded.service, succeeded.environment, succeeded.version,
                           succeeded.previous_version, outcome="succeeded", warm_until=succeeded.warm_until)

        async def record(tx: Transaction) -> None:
            await store.release_ended(tx.session, release)

        await self.runtime.process_once(ON_SUCCEEDED, succeeded, record)

    async def on_rollback_completed(self, completed: RollbackCompleted) -> None:
        seconds = time_to_restore(completed.failed_at, completed.occurred_at)
        release = InFlight(completed.release_id, completed.service, completed.environment, completed.bad_version,
                           completed.restored_version, outcome="was rolled back")

        async def record(tx: Transaction) -> None:
            await store.complete(tx.session, completed.release_id, completed.occurred_at, seconds)
            await store.release_ended(tx.session, release)

        if await self.runtime.process_once(ON_COMPLETED, completed, record):
            log.info("release %s restored to %s in %.2f s after the failing verdict",
                     completed.release_id, completed.restored_version, seconds)

    async def abort_release(self, command: AbortRelease, by: Signed) -> CommandResult:
        """A person ends a release in flight, held or not: one rollback request, as a failing verdict would."""
        try:
            problem = await self._request_abort(command, by)
        except IntegrityError:
            # A failing verdict's request for the same release committed between our check and our insert.
            problem = f"release {command.release_id} is already being rolled back"
        if problem is not None:
            log.info("abort of %s by %s refused: %s", command.release_id, by.actor, problem)
            return CommandResult(ok=False, message=problem)
        self.runtime.relay.wake()
        reason = abort_reason(by.actor, command.reason)
        log.warning("rolling back %s: %s", command.release_id, reason)
        return CommandResult(ok=True, message=f"rollback of release {command.release_id} requested: {reason}")

    async def _request_abort(self, command: AbortRelease, by: Signed) -> str | None:
        async with self.runtime.db.transaction() as tx:
            release = await store.release(tx.session, command.release_id)
            if release is not None and (not_theirs := by.team_refusal(
                    release.release_id, await store.team_of(tx.session, release.release_id))):
                raise Refused(not_theirs, release.release_id, release.environment)
            earlier = await store.rollback_reason_of(tx.session, command.release_id)
            problem = abort_refusal(release, earlier, command.release_id, utcnow())
            if problem is not None or release is None:
                return problem
            reason, now = abort_reason(by.actor, command.reason), utcnow()
            request = RollbackRequested(
                release_id=release.release_id, service=release.service, environment=release.environment,
                actor=by.actor, source=SOURCE, deployment_id=release.release_id, bad_version=release.version,
                restore_version=release.stable_version, reason=reason, failed_at=now, signed_command=by.proof,
            )
            await store.add(
                tx.session, release_id=release.release_id, service=release.service, environment=release.environment,
                bad_version=release.version, reason=reason, failed_at=now, requested_at=request.occurred_at,
            )
            await tx.emit(request)
        return None
