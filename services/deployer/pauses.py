"""Incident pauses, as the gatekeeper decides them (it owns the policy; the deployer never reads it).

RolloutPaused: the release's current step is still judged, but an accepted verdict holds its weights
(handlers._follow_verdict) instead of moving it on; a failing verdict still rolls it back.
RolloutResumed: the pause is lifted; a step it held moves on exactly as after a passing verdict, a
step still being judged simply moves on when its verdict comes.
Both arrive through one durable, in the order the gatekeeper emitted them.
"""

import logging

from contracts.events import RolloutPauseChange
from services.deployer import store
from services.deployer.domain import Next, Pause, Status, after_pause_lifted
from services.deployer.handlers import Handlers, footing_of
from services.deployer.steering import incident_lift_holds
from libs.store import Transaction

log = logging.getLogger("slipway.deployer.pauses")
ON_PAUSE = "deployer-pauses"


class Pauses:
    def __init__(self, handlers: Handlers) -> None:
        self.handlers = handlers
        self.runtime = handlers.runtime

    async def on_rollout_change(self, news: RolloutPauseChange) -> None:
        async with self.handlers.lock_for(news.service, news.environment):
            if news.type == "RolloutResumed":
                await self._lift(news)
            elif news.type == "RolloutPaused":
                await self.runtime.process_once(ON_PAUSE, news, lambda tx: self._pause(tx, news))
            else:
                log.warning("%s on the rollout subjects ignored: only RolloutPaused/RolloutResumed belong there", news.type)

    async def _pause(self, tx: Transaction, news: RolloutPauseChange) -> None:
        # Kept even when the approval has not reached the deployer yet: that release pauses after its first step.
        deployment = await store.get_deployment(tx.session, news.release_id)
        if deployment is not None and deployment.status is not Status.DEPLOYING:
            log.info("pause of %s ignored: its deployment is %s", news.release_id, deployment.status.value)
            return
        await store.save_pause(tx.session, Pause(news.release_id, news.incident_id, news.reason, news.occurred_at))
        log.warning("release %s paused: %s", news.release_id, news.reason)

    async def _lift(self, news: RolloutPauseChange) -> None:
        async with self.runtime.db.transaction() as tx:
            if await tx.already_processed(ON_PAUSE, news.event_id):
                return
            footing = await footing_of(tx.session, news.release_id)
        held = footing.pause.held_verdict_event_id if footing.pause else None
        action, why = after_pause_lifted(footing.deployment, footing.hold, held)
        if incident_lift_holds(footing.person_pause):
            action, why = Next.IGNORE, "a person's pause still holds it: it goes on when they resume it"
        log.warning("release %s resumed (%s): %s", news.release_id, news.reason, why)
        if action not in (Next.ADVANCE, Next.COMPLETE):
            await self.runtime.process_once(ON_PAUSE, news, lambda tx: store.clear_pause(tx.session, news.release_id))
            return
        if footing.deployment is not None:
            await self.handlers.accept_step(news, news.release_id, footing.deployment.step_index)
        await self.runtime.process_once(ON_PAUSE, news, lambda tx: store.clear_pause(tx.session, news.release_id))
