"""People steering a release in flight, whatever its strategy: pause, resume, promote (abort is the
rollback-controller's: it turns into a RollbackRequested like a failing verdict's).

Each is a signed command checked against the sender's rights and team, answered with a clear
refusal when there is nothing to do, and announced as an event with its actor (ReleasePaused,
ReleaseResumed, ReleasePromoted). Pauses and promotions are recorded (steering_store), so a
restarted deployer keeps holding a paused release and keeps skipping a promoted one's analysis.
"""

import logging
from collections.abc import Awaitable, Callable

from contracts.commands import CommandResult, PauseRelease, PromoteRelease, ResumeRelease
from contracts.envelope import Event, utcnow
from contracts.events import ReleaseApproved, ReleasePaused, ReleasePromoted, ReleaseResumed
from libs.commands import Refused, Signed
from libs.store import Transaction
from services.deployer import steering_store, store
from services.deployer.domain import Deployment, Status
from services.deployer.handlers import SOURCE, Footing, Handlers, footing_of
from services.deployer.steering import (
    PersonPause, Resumption, in_flight_refusal, pause_refusal, promote_refusal, resumption,
)
from services.deployer.strategies.promotion import skipped_steps

log = logging.getLogger("slipway.deployer.steering")
Steer = Callable[[Footing, ReleaseApproved], Awaitable[CommandResult]]


class Steering:
    def __init__(self, handlers: Handlers) -> None:
        self.handlers, self.runtime = handlers, handlers.runtime

    async def pause_release(self, command: PauseRelease, by: Signed) -> CommandResult:
        async def pause(footing: Footing, approved: ReleaseApproved) -> CommandResult:
            deployment = footing.deployment
            if problem := pause_refusal(deployment, command.release_id, footing.person_pause):
                return self._refused("pause", command.release_id, by, problem)
            assert deployment is not None
            paused = ReleasePaused(
                **_about(deployment, approved, by), step_index=deployment.step_index, reason=command.reason,
                signed_command=by.proof)
            await self._record(paused, lambda tx: steering_store.save_person_pause(tx.session, PersonPause(
                deployment.release_id, by.actor, command.reason, paused.occurred_at)))
            log.warning("release %s paused at step %d by %s: %s", deployment.release_id, deployment.step_index + 1,
                        by.actor, command.reason)
            return CommandResult(ok=True, message=(
                f"release {deployment.release_id} paused at step {_step(deployment)}: it is still judged, a failing "
                "verdict still rolls it back, a passing one holds its weights until it is resumed or promoted"),
                data={"release_id": deployment.release_id, "step_index": deployment.step_index})

        return await self._steer(command.release_id, by, pause)

    async def resume_release(self, command: ResumeRelease, by: Signed) -> CommandResult:
        async def resume(footing: Footing, approved: ReleaseApproved) -> CommandResult:
            deployment = footing.deployment
            decided = resumption(deployment, footing.hold, command.release_id, footing.pause, footing.person_pause)
            if isinstance(decided, str):
                return self._refused("resume", command.release_id, by, decided)
            assert deployment is not None
            resumed = ReleaseResumed(
                **_about(deployment, approved, by), step_index=deployment.step_index, comment=command.comment,
                signed_command=by.proof, causation_id=footing.hold.verdict_event_id if footing.hold else None)
            await self._record(resumed, lambda tx: _lift(tx, decided, deployment.release_id))
            log.warning("release %s resumed at step %d by %s: %s", deployment.release_id, deployment.step_index + 1,
                        by.actor, command.comment)
            if not decided.accept_step:
                why = ("an incident's pause still holds it" if footing.pause is not None
                       else "its verdict moves it on")
                return CommandResult(ok=True, message=(
                    f"release {deployment.release_id}: pause lifted at step {_step(deployment)}; {why}"),
                    data={"release_id": deployment.release_id, "next": "StepVerdict"})
            moved, event = await self.handlers.accept_step(resumed, deployment.release_id, deployment.step_index)
            return CommandResult(
                ok=True, message=f"release {deployment.release_id} resumed at step {_step(deployment)}: {_then(moved)}",
                data={"release_id": deployment.release_id, "next": _next(event)})

        return await self._steer(command.release_id, by, resume)

    async def promote_release(self, command: PromoteRelease, by: Signed) -> CommandResult:
        async def promote(footing: Footing, approved: ReleaseApproved) -> CommandResult:
            deployment = footing.deployment
            if problem := promote_refusal(deployment, command.release_id, footing.pause):
                return self._refused("promote", command.release_id, by, problem)
            run = await self.handlers.load_run(command.release_id)
            assert deployment is not None and run is not None
            # Waiting at a step: that step is accepted and every later one skipped; between steps (a restart
            # interrupted the plan), every step not yet reached is skipped and the supervision loop carries it on.
            after = run.progress.cursor if run.progress.waiting else run.progress.cursor - 1
            skipped = skipped_steps(run.plan, after)
            promotion = ReleasePromoted(
                **_about(deployment, approved, by), step_index=deployment.step_index, skipped_steps=skipped,
                comment=command.comment, signed_command=by.proof)

            async def record(tx: Transaction) -> None:
                await steering_store.save_promotion(tx.session, steering_store.Promotion(
                    deployment.release_id, after, by.actor, utcnow()))
                await steering_store.clear_person_pause(tx.session, deployment.release_id)

            await self._record(promotion, record)
            log.warning("release %s promoted at step %d by %s (%d step(s) not judged): %s", deployment.release_id,
                        deployment.step_index + 1, by.actor, skipped, command.comment)
            if not run.progress.waiting:
                return CommandResult(ok=True, message=(
                    f"release {deployment.release_id} promoted: it goes to all traffic without judging "
                    f"{skipped} more step(s)"), data={"release_id": deployment.release_id, "next": "DeploymentSucceeded"})
            moved, event = await self.handlers.accept_step(promotion, deployment.release_id, deployment.step_index)
            return CommandResult(
                ok=True, message=(f"release {deployment.release_id} promoted at step {_step(deployment)} "
                                  f"({skipped} step(s) not judged): {_then(moved)}"),
                data={"release_id": deployment.release_id, "next": _next(event)})

        return await self._steer(command.release_id, by, promote)

    async def _steer(self, release_id: str, by: Signed, act: Steer) -> CommandResult:
        """Under the release's lock (no verdict moves it meanwhile), once its team is known to be the sender's."""
        async with self.runtime.db.transaction() as tx:
            known = await store.get_deployment(tx.session, release_id)
        if known is None:
            return self._refused("steer", release_id, by, in_flight_refusal(None, release_id, "steer") or "")
        async with self.handlers.lock_for(known.service, known.environment):
            async with self.runtime.db.transaction() as tx:
                footing = await footing_of(tx.session, release_id)
            approved = ReleaseApproved.model_validate_json(footing.approval_json or "")
            if not_theirs := by.team_refusal(release_id, approved.release.team):
                raise Refused(not_theirs, release_id, known.environment)
            return await act(footing, approved)

    async def _record(self, event: Event, change: Callable[[Transaction], Awaitable[None]]) -> None:
        async with self.runtime.db.transaction() as tx:
            await change(tx)
            await tx.emit(event)
        self.runtime.relay.wake()

    @staticmethod
    def _refused(verb: str, release_id: str, by: Signed, problem: str) -> CommandResult:
        log.info("%s of %s by %s refused: %s", verb, release_id, by.actor, problem)
        return CommandResult(ok=False, message=problem)


async def _lift(tx: Transaction, decided: Resumption, release_id: str) -> None:
    if decided.lift_pause:
        await steering_store.clear_person_pause(tx.session, release_id)


def _about(deployment: Deployment, approved: ReleaseApproved, by: Signed) -> dict[str, str]:
    """The envelope of an event a person's command caused about this release."""
    return {"release_id": deployment.release_id, "service": deployment.service, "environment": deployment.environment,
            "correlation_id": approved.correlation_id, "actor": by.actor, "source": SOURCE}


def _step(deployment: Deployment) -> str:
    return f"{deployment.step_index + 1} of {len(deployment.steps)}"


def _then(moved: Deployment) -> str:
    if moved.status is Status.SUCCEEDED:
        return f"{moved.version} now takes all traffic"
    if moved.status is Status.FAILED:
        return f"{moved.version} failed to go on and was taken out of traffic"
    return f"step {moved.step_index + 1} of {len(moved.steps)} started"


def _next(event: Event | None) -> str:
    return event.type if event else "DeploymentFailed"
