"""The release workflow: decide a verified release, keep it waiting for what it needs, go on when that comes.

Every evaluation reads a snapshot of the gatekeeper's state, applies the pure rules (rules.evaluate)
under the current policy and acts in the same transaction: approve, refuse, expire, or record what the
release waits for (a ReleaseWaiting each time that changes). Waiting releases are evaluated again when
something they may wait for changes (an approval, a freed slot, a lifted freeze, a resolved incident)
and on a short tick (windows open and deadlines pass by themselves).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.events import (
    AppliedRule, ArtifactVerified, ReleaseApproved, ReleaseBlocked, ReleaseExpired, ReleaseWaiting, Risk, RiskFactor,
)
from contracts.governance import IncidentSeverity
from contracts.identity import Role
from libs.store import Transaction
from services.gatekeeper import incident_store, inventory_store, pir_store, store, workflow_store as ws
from services.gatekeeper.changes import ChangeRecords, ChangeSourceUnavailable
from services.gatekeeper.policy import Severity, WaitKind
from services.gatekeeper.policy_source import PolicySource
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.evaluate import Decision, Verdict, evaluate
from services.gatekeeper.rules.outcome import Effect
from services.gatekeeper.rules.risk import RiskAssessment
from services.gatekeeper.rules.requirements import ties_of
from services.gatekeeper.strategy_choice import with_strategy
from services.gatekeeper.rules.state import Approval, Evidence, Failure, GateState, Incident, Live, Slot, Success

log = logging.getLogger("slipway.gatekeeper.workflow")
SOURCE = "gatekeeper"
HISTORY = timedelta(days=30)  # how far back failures and successes are read for risk and promotion


def candidate_of(workflow: ws.Workflow) -> Candidate:
    verified = workflow.verified
    return Candidate(verified.release_id, verified.service, verified.environment, verified.release,
                     workflow.requested_at)


async def snapshot(tx: Transaction, environment: str, release_ids: list[str], now: datetime) -> GateState:
    session = tx.session
    rows = await ws.deployment_rows(session, since=now - HISTORY)
    in_flight = tuple(Slot(r["release_id"], r["service"], r["environment"], r["since"]) for r in rows
                      if r["outcome"] == ws.IN_FLIGHT)
    failures = tuple(Failure(r["service"], r["environment"], r["ended_at"], r["release_id"]) for r in rows
                     if r["outcome"] == ws.FAILED and r["ended_at"] is not None)
    successes = tuple(Success(r["digest"], r["environment"], r["ended_at"]) for r in rows
                      if r["outcome"] == ws.SUCCEEDED and r["ended_at"] is not None)
    queued = tuple(Slot(w.release_id, w.service, w.environment, w.requested_at, w.verified.release.release_class)
                   for w in await ws.waiting(session, state=Verdict.WAITING_FOR_SLOT.value))
    opened = await incident_store.open_incidents(session, environment, IncidentSeverity.INFO)
    incidents = tuple(Incident(i.incident_id, i.environment, Severity(i.severity.value), i.opened_at, i.summary)
                      for i in opened)
    approvals = tuple(
        Approval(a["release_id"], a["approver"], tuple(Role(r) for r in a["roles"].split(",") if r in Role.__members__.values()),
                 tuple(t for t in a["teams"].split(",") if t), a["at"])
        for a in await ws.approvals_of(session, release_ids)
    )
    freezes = tuple(await store.load_freezes(session, environment, since=now))
    return GateState(recent_failures=failures, freezes=freezes, incidents=incidents, in_flight=in_flight,
                     waiting_for_slot=queued, successes=successes, approvals=approvals,
                     **await _inventory(session, environment, in_flight, now))


async def _inventory(session: AsyncSession, environment: str, in_flight: tuple[Slot, ...], now: datetime) -> dict:
    """What is live in `environment`, what ties each release in flight there, and recent evidence (GateState fields)."""
    live = tuple(Live(r["service"], r["environment"], r["version"], r["release_id"])
                 for r in await inventory_store.live_in(session, environment))
    ties = {}
    for slot in (s for s in in_flight if s.environment == environment):
        if (other := await ws.get_workflow(session, slot.release_id)) is not None:
            ties[slot.release_id] = ties_of(other.verified.release.requires, other.verified.release.dependents)
    evidence = tuple(Evidence(r["digest"], r["kind"], r["passed"], r["at"], r["url"], r["team"], r["service"])
                     for r in await inventory_store.evidence_since(session, now - HISTORY))
    return {"live": live, "ties": ties, "evidence": evidence}


def applied(decision: Decision) -> list[AppliedRule]:
    return [AppliedRule(rule=o.rule, effect=o.effect.value, reason=o.reason, until=o.until) for o in decision.outcomes]


def risk_of(assessment: RiskAssessment) -> Risk:
    return Risk(score=assessment.score, level=assessment.level, raised_by=assessment.raised_by,
                factors=[RiskFactor(factor=c.factor, detail=c.detail, points=c.points) for c in assessment.contributions])


def summary_of(decision: Decision) -> str:
    waiting = [o.reason for o in decision.outcomes if o.effect in (Effect.WAIT, Effect.NEEDS_APPROVAL)]
    return "; ".join(waiting) or decision.verdict.value


def outstanding_of(decision: Decision) -> list[str]:
    return [f"{n.quorum} x {n.role.value}{' of the release team' if n.same_team else ''} ({n.purpose})"
            for n in decision.outstanding]


class ReleaseWorkflow:
    def __init__(self, runtime, policy: PolicySource, changes: ChangeRecords,  # noqa: ANN001 - libs.runtime.Runtime
                 tick_s: float = 1.0) -> None:
        self.runtime = runtime
        self.policy = policy
        self.changes = changes
        self.tick_s = tick_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # The earliest moment a waiting release expects to go by itself (a window ends): evaluated then, not a tick later.
        self._due: datetime | None = None
        # One evaluation at a time: a command and the tick never decide the same release twice.
        self.turn = asyncio.Lock()
        # Other level-triggered work that follows the same wake-ups (rollout_pauses.RolloutPauses.reconcile).
        self.also: list[Callable[[], Awaitable[None]]] = []

    # --- entry points ------------------------------------------------------------------------

    async def on_verified(self, tx: Transaction, verified: ArtifactVerified, now: datetime) -> None:
        await ws.add_workflow(tx.session, verified, now)
        workflow = await ws.get_workflow(tx.session, verified.release_id)
        assert workflow is not None
        await self.advance(tx, workflow, now)

    def wake(self) -> None:
        """Something a waiting release may wait for changed: evaluate the waiting ones now."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="release-workflow")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with suppress(asyncio.CancelledError):
                await self._task

    # --- the decision ------------------------------------------------------------------------

    async def decision(self, tx: Transaction, workflow: ws.Workflow, now: datetime) -> Decision:
        return (await self.judged(tx, workflow, now))[1]

    async def judged(self, tx: Transaction, workflow: ws.Workflow, now: datetime) -> tuple[GateState, Decision]:
        """The state the rules read and what they decide from it: checking an approval needs both."""
        self.policy.refresh()  # a few stat calls: every decision uses the policy as it is on disk now
        state = await snapshot(tx, workflow.environment, [workflow.release_id], now)
        # Reviews owed and their risk factors (rules.readiness, rules.risk); what is owed follows from policy.
        state = replace(state, **await pir_store.gate_inputs(tx.session, self.policy.current().classes))
        candidate = candidate_of(workflow)
        if (number := candidate.terms.change) is not None:
            state = await self._with_change(state, number)
        return state, evaluate(candidate, self.policy.current(), state, now)

    async def _with_change(self, state: GateState, number: str) -> GateState:
        try:
            record = await self.changes.get(number)
        except ChangeSourceUnavailable as unavailable:
            return replace(state, unreachable_changes={number: str(unavailable)})
        return replace(state, changes={number: record})

    async def advance(self, tx: Transaction, workflow: ws.Workflow, now: datetime) -> str:
        """Evaluate one release and act; returns its state afterwards."""
        decision = await self.decision(tx, workflow, now)
        verified, policy = workflow.verified, self.policy.current()
        if decision.verdict is Verdict.APPROVED:
            approvers = sorted({a["approver"] for a in await ws.approvals_of(tx.session, [workflow.release_id])})
            release, chosen = with_strategy(verified.release, workflow.service, policy.services)
            await tx.emit(ReleaseApproved.caused_by(
                verified, SOURCE, release=release, reasons=decision.reasons()[-100:], rules=applied(decision)[-100:],
                risk=risk_of(decision.risk), approvers=approvers,
                strategy_source="recommended" if chosen else "named", strategy_reasons=chosen[:100],
            ))
            await ws.set_state(tx.session, workflow.release_id, ws.APPROVED, now, summary_of(decision))
            await ws.deployment_started(tx.session, workflow.release_id, workflow.service, workflow.environment,
                                        verified.release.artifact.digest, verified.release.release_class.value, now)
            log.info("release %s approved: %s", workflow.release_id, "; ".join(decision.reasons()))
            return ws.APPROVED
        if decision.verdict is Verdict.REFUSED:
            refusals = [o.reason for o in decision.outcomes if o.effect is Effect.REFUSE]
            await tx.emit(ReleaseBlocked.caused_by(verified, SOURCE, reasons=refusals[:100], rules=applied(decision)[-100:],
                                                   risk=risk_of(decision.risk)))
            await ws.set_state(tx.session, workflow.release_id, ws.REFUSED, now, "; ".join(refusals))
            return ws.REFUSED
        deadline = workflow.requested_at + policy.deadlines.of(_wait_kind(decision))
        if now >= deadline:
            reason = f"waited past its deadline ({deadline.isoformat()}) for: {summary_of(decision)}"
            await tx.emit(ReleaseExpired.caused_by(verified, SOURCE, waited_for=decision.verdict.value, reason=reason))
            await ws.set_state(tx.session, workflow.release_id, ws.EXPIRED, now, reason)
            return ws.EXPIRED
        for moment in (decision.until, deadline):
            # Only a moment still ahead: one already past would make the loop spin instead of wait.
            if moment is not None and moment > now and (self._due is None or moment < self._due):
                self._due = moment
        summary, outstanding = summary_of(decision), outstanding_of(decision)
        if (workflow.state, workflow.summary, workflow.outstanding) != (decision.verdict.value, summary, outstanding):
            await tx.emit(ReleaseWaiting.caused_by(
                verified, SOURCE, waiting_for=decision.verdict.value, summary=summary, outstanding=outstanding,
                until=decision.until, deadline=deadline, rules=applied(decision)[-100:], risk=risk_of(decision.risk),
                release_class=verified.release.release_class.value,
            ))
            await ws.set_state(tx.session, workflow.release_id, decision.verdict.value, now, summary, outstanding, deadline)
        return decision.verdict.value

    # --- waiting releases ----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            wait_s = self.tick_s
            if self._due is not None:
                wait_s = min(wait_s, max(0.0, (self._due - datetime.now(UTC)).total_seconds()))
            try:
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            try:
                self.policy.refresh()
                await self.advance_waiting()
                async with self.turn:
                    for work in self.also:
                        await work()
            except Exception:  # noqa: BLE001 - the next tick tries again; the releases stay recorded
                log.exception("evaluating waiting releases failed; trying again at the next tick")

    async def advance_waiting(self) -> int:
        """Evaluate every waiting release once, oldest first (first come, first served); returns how many moved on."""
        moved = 0
        self._due = None  # set again by whatever still waits
        async with self.turn:
            async with self.runtime.db.transaction() as tx:
                pending = await ws.waiting(tx.session)
            for workflow in pending:
                async with self.runtime.db.transaction() as tx:
                    current = await ws.get_workflow(tx.session, workflow.release_id)
                    if current is None or current.state in ws.FINAL:
                        continue
                    after = await self.advance(tx, current, datetime.now(UTC))
                if tx.emitted:
                    self.runtime.relay.wake()
                moved += after in ws.FINAL
        return moved


def _wait_kind(decision: Decision) -> WaitKind:
    return decision.wait or WaitKind.APPROVAL
