"""Use cases of the rollback-controller: failing verdict -> RollbackRequested; completion -> time to restore."""

import logging

from contracts.events import RollbackCompleted, RollbackRequested, StepVerdict
from libs.runtime import Runtime
from libs.store import Transaction
from services.rollback_controller import store
from services.rollback_controller.domain import rollback_reason, time_to_restore

log = logging.getLogger("slipway.rollback_controller")
SOURCE = "rollback-controller"
ON_VERDICT, ON_COMPLETED = "rollback-controller-verdicts", "rollback-controller-completions"


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

    async def on_rollback_completed(self, completed: RollbackCompleted) -> None:
        seconds = time_to_restore(completed.failed_at, completed.occurred_at)

        async def record(tx: Transaction) -> None:
            await store.complete(tx.session, completed.release_id, completed.occurred_at, seconds)

        if await self.runtime.process_once(ON_COMPLETED, completed, record):
            log.info("release %s restored to %s in %.2f s after the failing verdict",
                     completed.release_id, completed.restored_version, seconds)
