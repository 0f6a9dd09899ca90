"""Use cases of the gatekeeper: decide on verified releases, manage freeze windows."""

import logging
from datetime import UTC, datetime

from contracts.commands import CommandResult, FreezeEnvironment, LiftFreeze, ListFreezes
from contracts.envelope import ReleaseEvent, new_event_id
from contracts.events import ArtifactVerified, FreezeDeclared, FreezeLifted
from libs.commands import Signed
from libs.runtime import Runtime
from libs.store import Transaction
from services.gatekeeper import inventory_store, store
from services.gatekeeper import workflow_store as ws
from services.gatekeeper.domain import Freeze, freeze_problem
from services.gatekeeper.workflow import ReleaseWorkflow

log = logging.getLogger("slipway.gatekeeper")
SOURCE = CONSUMER = "gatekeeper"
DEPLOYMENTS_CONSUMER, ROLLBACKS_CONSUMER = "gatekeeper-deployments", "gatekeeper-rollbacks"
DEPLOYMENT_OUTCOMES = {
    "DeploymentStarted": ws.IN_FLIGHT, "DeploymentSucceeded": ws.SUCCEEDED, "DeploymentFailed": ws.FAILED,
    "RollbackCompleted": ws.FAILED,
}


class DeploymentNews(ReleaseEvent):
    """Any deployer or rollback event: the envelope is what the gatekeeper needs (release, service, when).

    No `subject` of its own, which keeps this reader out of Event.registry. `version` (DeploymentSucceeded)
    and `restored_version` (RollbackCompleted) keep the inventory of what is live where."""

    version: str | None = None
    restored_version: str | None = None
# Freezes are not about one release or service; their events use these envelope values.


class Handlers:
    def __init__(self, runtime: Runtime, workflow: ReleaseWorkflow) -> None:
        self.runtime = runtime
        self.workflow = workflow

    async def on_artifact_verified(self, verified: ArtifactVerified) -> None:
        async def decide_and_record(tx: Transaction) -> None:
            if not await store.claim_decision(tx.session, verified.release_id, verified.event_id):
                log.warning("release %s was already decided: ignoring ArtifactVerified %s", verified.release_id,
                            verified.event_id)
                return
            await self.workflow.on_verified(tx, verified, datetime.now(UTC))

        async with self.workflow.turn:
            await self.runtime.process_once(CONSUMER, verified, decide_and_record)

    async def on_deployment_news(self, news: DeploymentNews) -> None:
        """What the deployer reports frees or takes slots, and counts as a success or a failure."""
        outcome = DEPLOYMENT_OUTCOMES.get(news.type)
        if outcome is None:
            return

        async def record(tx: Transaction) -> None:
            workflow = await ws.get_workflow(tx.session, news.release_id)
            if news.type == "DeploymentStarted" and workflow is not None:
                spec = workflow.verified.release
                await ws.deployment_started(tx.session, news.release_id, news.service, news.environment,
                                            spec.artifact.digest, spec.release_class.value, news.occurred_at)
            elif outcome != ws.IN_FLIGHT:
                await ws.deployment_ended(tx.session, news.release_id, outcome, news.occurred_at)
            if news.type == "DeploymentSucceeded" and news.version is not None:
                await inventory_store.set_live(tx.session, news.environment, news.service, news.version,
                                               news.release_id, news.occurred_at)
            elif news.type == "RollbackCompleted":
                await inventory_store.set_live(tx.session, news.environment, news.service, news.restored_version,
                                               news.release_id, news.occurred_at)

        await self.runtime.process_once(DEPLOYMENTS_CONSUMER, news, record)
        self.workflow.wake()

    async def freeze(self, command: FreezeEnvironment, by: Signed) -> CommandResult:
        if problem := freeze_problem(command.starts_at, command.ends_at, datetime.now(UTC)):
            return CommandResult(ok=False, message=problem)
        freeze = Freeze(
            freeze_id=f"frz-{new_event_id().lower()}",
            environment=command.environment,
            starts_at=command.starts_at,
            ends_at=command.ends_at,
            reason=command.reason,
            actor=by.actor,
        )
        declared = FreezeDeclared(
            environment=freeze.environment, actor=freeze.actor,
            source=SOURCE, freeze_id=freeze.freeze_id, starts_at=freeze.starts_at, ends_at=freeze.ends_at,
            reason=freeze.reason, signed_command=by.proof,
        )
        async with self.runtime.db.transaction() as tx:
            await store.add_freeze(tx.session, freeze)
            await tx.emit(declared)
        self.runtime.relay.wake()
        return CommandResult(
            ok=True,
            message=f"{freeze.environment} frozen from {freeze.starts_at.isoformat()} to {freeze.ends_at.isoformat()} "
            f"(freeze {freeze.freeze_id})",
            data={"freeze_id": freeze.freeze_id},
        )

    async def lift_freeze(self, command: LiftFreeze, by: Signed) -> CommandResult:
        async with self.runtime.db.transaction() as tx:
            freeze = await store.get_freeze(tx.session, command.freeze_id)
            if freeze is None or not await store.lift_freeze(tx.session, command.freeze_id):
                return CommandResult(ok=False, message=f"no active freeze with id {command.freeze_id}")
            await tx.emit(
                FreezeLifted(
                    environment=freeze.environment,
                    actor=by.actor, source=SOURCE, freeze_id=command.freeze_id, signed_command=by.proof,
                )
            )
        self.runtime.relay.wake()
        self.workflow.wake()  # releases queued behind the freeze may go now
        return CommandResult(ok=True, message=f"freeze {command.freeze_id} lifted by {by.actor}")

    async def list_freezes(self, command: ListFreezes) -> CommandResult:
        now = datetime.now(UTC)
        async with self.runtime.db.transaction() as tx:
            found = await store.load_freezes(tx.session, command.environment, since=now)
        rows = [
            {
                "freeze_id": f.freeze_id, "environment": f.environment, "starts_at": f.starts_at.isoformat(),
                "ends_at": f.ends_at.isoformat(), "reason": f.reason, "actor": f.actor,
                "active": f.covers(f.environment, now),
            }
            for f in found
            if not f.lifted
        ]
        return CommandResult(ok=True, message=f"{len(rows)} freeze window(s) current or upcoming", data={"freezes": rows})

