"""Post-implementation reviews as people's commands, and `release show` for support.

`pir record` is signed: the reviewer is the verified identity, never a field. A review is refused,
with its reason and a CommandRefused event, for an unknown release, a release that owes none, or one
already reviewed. Recording wakes the release workflow: a major release of that service may be
waiting for exactly this review (rules.readiness), and its risk factors count from now on (rules.risk).
"""

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from contracts import subjects
from contracts.commands import CommandResult
from contracts.events import PostImplementationReviewRecorded
from contracts.governance import ListPirs, RecordPir, ShowRelease
from libs.commands import Refused, Signed, serve_command, serve_signed_command
from libs.runtime import Runtime
from libs.store import outbox
from services.gatekeeper import pir_store, workflow_store as ws
from services.gatekeeper.pirs import Review, record_refusal
from services.gatekeeper.workflow import SOURCE, ReleaseWorkflow

LISTED_MAX = 100
# The gatekeeper's decisions about a release, as it published them: the latest one says which rules applied.
DECISIONS = (subjects.RELEASE_WAITING, subjects.RELEASE_APPROVED, subjects.RELEASE_BLOCKED)


class PirCommands:
    def __init__(self, workflow: ReleaseWorkflow) -> None:
        self.workflow = workflow
        self.runtime = workflow.runtime

    def _classes(self):  # noqa: ANN202 - policy.ClassesPolicy
        self.workflow.policy.refresh()
        return self.workflow.policy.current().classes

    async def record(self, command: RecordPir, by: Signed) -> CommandResult:
        release_id = command.release_id
        async with self.runtime.db.transaction() as tx:
            workflow = await ws.get_workflow(tx.session, release_id)
            existing = await pir_store.get(tx.session, release_id)
            owed = None
            if workflow is not None:
                owed = next((o for o in await pir_store.owed(tx.session, self._classes(), workflow.service)
                             if o.release_id == release_id), None)
            problem = record_refusal(release_id, workflow is not None, owed, existing)
            if problem is None and workflow is not None:  # those who ran or own it: their team, or every team's role
                problem = by.team_refusal(release_id, workflow.verified.release.team)
            if problem is not None:
                raise Refused(problem, release_id, workflow.environment if workflow else None)
            assert workflow is not None and owed is not None
            review = Review(
                release_id=release_id, service=workflow.service, environment=workflow.environment,
                summary=command.summary, actions=command.actions, risk_factors=tuple(command.risk_factors),
                owed_because=owed.reason, recorded_by=by.actor, recorded_at=datetime.now(UTC),
            )
            await pir_store.add(tx.session, review)
            await tx.emit(PostImplementationReviewRecorded.caused_by(
                workflow.verified, SOURCE, actor=by.actor, summary=review.summary, actions=review.actions,
                risk_factors=list(review.risk_factors), owed_because=owed.reason, signed_command=by.proof,
            ))
        self.runtime.relay.wake()
        self.workflow.wake()  # a release of this service may wait for this review
        return CommandResult(ok=True, message=f"post-implementation review of {release_id} recorded by {by.actor}; "
                             f"{workflow.service} owes it no longer", data={"service": workflow.service})

    async def list(self, query: ListPirs) -> CommandResult:
        async with self.runtime.db.transaction() as tx:
            owed = await pir_store.owed(tx.session, self._classes(), query.service)
            done = await pir_store.recorded(tx.session, query.service, limit=LISTED_MAX)
        rows = {
            "owed": [{"release_id": o.release_id, "service": o.service, "environment": o.environment,
                      "reason": o.reason, "since": o.since.isoformat()} for o in owed[:LISTED_MAX]],
            "recorded": [_review_data(r) for r in done],
        }
        return CommandResult(ok=True, message=f"{len(owed)} review(s) owed, {len(done)} recorded", data=rows)

    async def show(self, query: ShowRelease) -> CommandResult:
        release_id = query.release_id
        async with self.runtime.db.transaction() as tx:
            workflow = await ws.get_workflow(tx.session, release_id)
            if workflow is None:
                return CommandResult(ok=False, message=f"no release {release_id} has reached the gatekeeper")
            given = await ws.approvals_of(tx.session, [release_id])
            decision = await _last_decision(tx.session, release_id)
            review = await pir_store.get(tx.session, release_id)
            owed = next((o for o in await pir_store.owed(tx.session, self._classes(), workflow.service)
                         if o.release_id == release_id), None)
        spec = workflow.verified.release
        data = {
            "release_id": release_id, "service": workflow.service, "environment": workflow.environment,
            "state": workflow.state, "summary": workflow.summary, "outstanding": workflow.outstanding,
            "deadline": workflow.deadline.isoformat() if workflow.deadline else None,
            "requested_at": workflow.requested_at.isoformat(), "updated_at": workflow.updated_at.isoformat(),
            "spec": spec.model_dump(mode="json"),
            "known_issues": [issue.model_dump(mode="json") for issue in spec.known_issues or []],
            "known_issues_stated": spec.known_issues is not None,
            "approvals": [{"approver": a["approver"], "roles": a["roles"], "comment": a["comment"],
                           "at": a["at"].isoformat()} for a in given],
            "decision": decision,
            "pir": {"owed": owed.reason if owed else None, "recorded": _review_data(review) if review else None},
        }
        return CommandResult(ok=True, message=f"release {release_id}: {workflow.state}", data=data)


async def _last_decision(session, release_id: str) -> dict[str, Any] | None:  # noqa: ANN001 - AsyncSession
    """The rules and risk of the latest decision the gatekeeper published about the release (its outbox keeps them)."""
    query = (select(outbox.c.payload)
             .where(outbox.c.subject.in_(DECISIONS), outbox.c.payload.contains(f'"release_id":"{release_id}"',
                                                                               autoescape=True))
             .order_by(outbox.c.id.desc()).limit(1))
    payload = await session.scalar(query)
    if payload is None:
        return None
    event = json.loads(payload)
    return {"type": event.get("type"), "at": event.get("occurred_at"), "rules": event.get("rules") or [],
            "risk": event.get("risk")}


def _review_data(review: Review) -> dict[str, Any]:
    return {"release_id": review.release_id, "service": review.service, "environment": review.environment,
            "summary": review.summary, "actions": review.actions, "risk_factors": list(review.risk_factors),
            "owed_because": review.owed_because, "recorded_by": review.recorded_by,
            "recorded_at": review.recorded_at.isoformat()}


def register(runtime: Runtime, workflow: ReleaseWorkflow) -> PirCommands:
    """Serve `pir record`, `pir list` and `release show` on the gatekeeper's runtime, with the reviews' table."""
    commands = PirCommands(workflow)
    serve_signed_command(runtime, subjects.CMD_RECORD_PIR, RecordPir, commands.record)
    serve_command(runtime.broker, subjects.CMD_LIST_PIRS, ListPirs, commands.list)
    serve_command(runtime.broker, subjects.CMD_SHOW_RELEASE, ShowRelease, commands.show)
    return commands
