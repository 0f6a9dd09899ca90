"""People approve or reject waiting releases (signed commands), and list what waits for whom.

Whether an approval counts is the policy's: the approver's roles and teams come from the identity
registry through the verified signature, never from the command. The requester never approves
(four eyes), one person approves once, and an approval that no missing need can use is refused.
"""

from datetime import UTC, datetime

from contracts.commands import ApproveRelease, CommandResult, ListApprovals, RejectRelease
from contracts.events import ApprovalRecorded, ReleaseRejected
from libs.commands import Refused, Signed
from services.gatekeeper import workflow_store as ws
from services.gatekeeper.rules.approvals import approval_refusal
from services.gatekeeper.rules.evaluate import Verdict
from services.gatekeeper.workflow import SOURCE, ReleaseWorkflow, candidate_of


def is_requester(actor: str, requested_by: str) -> bool:
    """`person:alice` requested a release whose requested_by is `person:alice` or plain `alice`."""
    return requested_by in (actor, actor.partition(":")[2])


class ApprovalCommands:
    def __init__(self, workflow: ReleaseWorkflow) -> None:
        self.workflow = workflow
        self.runtime = workflow.runtime

    async def approve(self, command: ApproveRelease, by: Signed) -> CommandResult:
        async with self.workflow.turn:
            async with self.runtime.db.transaction() as tx:
                now = datetime.now(UTC)
                workflow = await self._waiting(tx, command.release_id, pending_only=True)
                candidate = candidate_of(workflow)
                if is_requester(by.actor, candidate.requester):
                    raise Refused(f"four eyes: {by.actor} requested release {workflow.release_id} and may not "
                                  f"approve it", *_scope(workflow))
                state, decision = await self.workflow.judged(tx, workflow, now)
                # Every need as evaluated, with its whole quorum, including an exception when a window or freeze
                # blocks it: the approvals already given are assigned against these, then this one.
                problem = approval_refusal(candidate, by.actor, by.signer.roles, by.signer.teams, list(decision.needs),
                                           state.approvals)
                if problem is not None:
                    raise Refused(problem, *_scope(workflow))
                await ws.add_approval(tx.session, workflow.release_id, by.actor, tuple(by.signer.roles),
                                      tuple(by.signer.teams), command.comment, now)
                await tx.emit(ApprovalRecorded.caused_by(
                    workflow.verified, SOURCE, actor=by.actor, roles=[r.value for r in by.signer.roles],
                    comment=command.comment, signed_command=by.proof,
                ))
                after = await self.workflow.advance(tx, await ws.get_workflow(tx.session, workflow.release_id), now)
        self.runtime.relay.wake()
        if after == ws.APPROVED:
            return CommandResult(ok=True, message=f"approved by {by.actor}: release {workflow.release_id} may go out now",
                                 data={"state": after})
        return CommandResult(ok=True, message=f"approval by {by.actor} recorded; release {workflow.release_id} is "
                             f"{after}", data={"state": after})

    async def reject(self, command: RejectRelease, by: Signed) -> CommandResult:
        async with self.workflow.turn:
            async with self.runtime.db.transaction() as tx:
                now = datetime.now(UTC)
                workflow = await self._waiting(tx, command.release_id, pending_only=False)
                await tx.emit(ReleaseRejected.caused_by(
                    workflow.verified, SOURCE, actor=by.actor, comment=command.comment, signed_command=by.proof))
                await ws.set_state(tx.session, workflow.release_id, ws.REJECTED, now,
                                   f"rejected by {by.actor}: {command.comment}")
        self.runtime.relay.wake()
        self.workflow.wake()  # its place in a queue is free
        return CommandResult(ok=True, message=f"release {workflow.release_id} rejected by {by.actor}: {command.comment}")

    async def _waiting(self, tx, release_id: str, pending_only: bool) -> ws.Workflow:  # noqa: ANN001 - Transaction
        workflow = await ws.get_workflow(tx.session, release_id)
        if workflow is None:
            raise Refused(f"no release {release_id} has reached the gatekeeper", release_id)
        if workflow.state in ws.FINAL:
            raise Refused(f"release {release_id} is not waiting: it was {workflow.state}", *_scope(workflow))
        if pending_only and workflow.state != Verdict.PENDING_APPROVAL.value:
            raise Refused(f"release {release_id} is not waiting for an approval: it is {workflow.state} "
                          f"({workflow.summary})", *_scope(workflow))
        return workflow

    async def list(self, query: ListApprovals) -> CommandResult:
        async with self.runtime.db.transaction() as tx:
            pending = await ws.waiting(tx.session, state=Verdict.PENDING_APPROVAL.value)
            given = await ws.approvals_of(tx.session, [w.release_id for w in pending])
        rows = [
            {
                "release_id": w.release_id, "service": w.service, "environment": w.environment,
                "version": w.verified.release.version, "release_class": w.verified.release.release_class.value,
                "requested_by": w.verified.release.requested_by, "waiting_since": w.requested_at.isoformat(),
                "deadline": w.deadline.isoformat() if w.deadline else None, "needs": w.outstanding,
                "approved_by": [a["approver"] for a in given if a["release_id"] == w.release_id],
            }
            for w in pending if query.environment in (None, w.environment)
        ]
        return CommandResult(ok=True, message=f"{len(rows)} release(s) wait for approvals, oldest first",
                             data={"approvals": rows[:50]})


def _scope(workflow: ws.Workflow) -> tuple[str, str]:
    return workflow.release_id, workflow.environment
