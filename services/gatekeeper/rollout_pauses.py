"""Open incidents pause rollouts in flight; resolving the last one that halts their environment resumes them.

The gatekeeper owns the policy (`incidents.yaml`: halt_at, pause_in_flight), so it decides and tells the
deployer: RolloutPaused for each release in flight where a halting incident opened, RolloutResumed for
each release it paused once nothing halts there any more. `reconcile` compares what is open and in
flight now with the pauses it recorded (rules.pauses) and acts on the difference in one transaction;
the release workflow calls it whenever it wakes (an incident opened or resolved, a deployment ended,
the policy changed) and on its tick, so a restart picks up where it was and never pauses twice.
"""

import logging
from datetime import UTC, datetime

from contracts.events import RolloutPaused, RolloutResumed
from contracts.release import ReleaseClass
from libs.runtime import Runtime
from libs.store import Transaction
from services.gatekeeper import incident_store, pause_store, workflow_store as ws
from services.gatekeeper.incidents import Incident as StoredIncident
from services.gatekeeper.policy import Severity
from services.gatekeeper.policy_source import PolicySource
from services.gatekeeper.rules.pauses import Pause, Rollout, pause_changes, paused_reason
from services.gatekeeper.rules.state import Incident

log = logging.getLogger("slipway.gatekeeper.pauses")
SOURCE = "gatekeeper"


def as_rule_incident(incident: StoredIncident) -> Incident:
    return Incident(incident.incident_id, incident.environment, Severity(incident.severity.value), incident.opened_at,
                    incident.summary)


class RolloutPauses:
    def __init__(self, runtime: Runtime, policy: PolicySource) -> None:
        self.runtime = runtime
        self.policy = policy

    async def reconcile(self) -> None:
        async with self.runtime.db.transaction() as tx:
            await self.apply(tx, datetime.now(UTC))
        if tx.emitted:
            self.runtime.relay.wake()

    async def apply(self, tx: Transaction, now: datetime) -> None:
        session = tx.session
        opened = {i.incident_id: i for i in await incident_store.open_anywhere(session)}
        in_flight = tuple([await self._rollout(tx, row) for row in await ws.deployment_rows(session, since=now)
                           if row["outcome"] == ws.IN_FLIGHT])
        paused = await pause_store.current(session)
        changes = pause_changes(self.policy.current().incidents, tuple(map(as_rule_incident, opened.values())),
                                in_flight, {release_id: p.incidents for release_id, p in paused.items()})
        for pause in changes.pause:
            await self._pause(tx, pause, opened[pause.incidents[0].incident_id], now)
        for pause in changes.extend:
            named = paused[pause.rollout.release_id].incidents
            await pause_store.widen(session, pause.rollout.release_id,
                                    named + tuple(i.incident_id for i in pause.incidents if i.incident_id not in named))
        for release_id in changes.resume:
            await self._resume(tx, paused[release_id], now)
        for release_id in changes.forget:
            # It ended (succeeded, failed, rolled back) while paused: there is nothing left to resume.
            await pause_store.end(session, release_id, now, "no longer in flight")

    async def _rollout(self, tx: Transaction, row: dict) -> Rollout:
        workflow = await ws.get_workflow(tx.session, row["release_id"])
        spec = workflow.verified.release if workflow is not None else None
        fixes = spec.incident if spec is not None and spec.release_class is ReleaseClass.EMERGENCY else None
        return Rollout(row["release_id"], row["service"], row["environment"], fixes)

    async def _pause(self, tx: Transaction, pause: Pause, first: StoredIncident, now: datetime) -> None:
        rollout, reason = pause.rollout, paused_reason(pause)
        incidents = tuple(i.incident_id for i in pause.incidents)
        await pause_store.add(tx.session, pause_store.PausedRollout(
            rollout.release_id, rollout.service, rollout.environment, incidents, reason, now))
        await tx.emit(RolloutPaused(
            release_id=rollout.release_id, service=rollout.service, environment=rollout.environment,
            actor=first.opened_by, source=SOURCE, incident_id=first.incident_id, incidents=list(incidents),
            reason=reason,
        ))
        log.warning("release %s paused: %s", rollout.release_id, reason)

    async def _resume(self, tx: Transaction, paused: pause_store.PausedRollout, now: datetime) -> None:
        known = await incident_store.by_ids(tx.session, paused.incidents)
        resolved = sorted((i for i in known if i.resolved_at is not None), key=lambda i: i.resolved_at or now)
        last = resolved[-1] if resolved else None
        reason = f"no incident halts {paused.environment} any more" + (
            f": {last.incident_id} was resolved by {last.resolved_by}" if last is not None else
            " under the current policy")
        if not await pause_store.end(tx.session, paused.release_id, now, reason):
            return
        await tx.emit(RolloutResumed(
            release_id=paused.release_id, service=paused.service, environment=paused.environment,
            actor=(last.resolved_by if last is not None else None) or SOURCE, source=SOURCE,
            incident_id=last.incident_id if last is not None else paused.incidents[0],
            incidents=list(paused.incidents), reason=reason,
        ))
        log.warning("release %s resumed: %s", paused.release_id, reason)
