"""Incidents on the gatekeeper: people open and resolve them (signed commands), a monitoring tool through the
PagerDuty webhook (services.gatekeeper.webhook); anyone may list them.

What an open incident does to releases is the release workflow's business: it asks
`incident_store.open_incidents(session, environment, at_least)`.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts import subjects
from contracts.commands import CommandResult
from contracts.envelope import new_event_id
from contracts.events import IncidentOpened, IncidentResolved, IncidentWebhookRefused
from contracts.governance import ListIncidents, OpenIncident, ResolveIncident
from libs.commands import Refused, Signed, serve_command, serve_signed_command
from libs.runtime import Runtime
from libs.store import Transaction
from services.gatekeeper import incident_store
from services.gatekeeper.incidents import Incident, resolve_refusal
from services.gatekeeper.pagerduty import PagerDutyEvent

SOURCE = "gatekeeper"
WEBHOOK_ACTOR = "webhook:pagerduty"


def new_incident_id() -> str:
    return f"inc-{new_event_id().lower()}"


@dataclass(frozen=True)
class WebhookOutcome:
    message: str
    dedup_key: str | None
    incident_id: str | None = None


class IncidentHandlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # Called after an incident opened or resolved: waiting releases may be able to go (set in app.py).
        self.on_change: Callable[[], None] = lambda: None
        # Webhook calls run concurrently: two triggers with one dedup_key must not both open an incident.
        self._webhook_lock = asyncio.Lock()

    async def _opened(self, tx: Transaction, incident: Incident, **fields: object) -> None:
        await incident_store.add(tx.session, incident)
        await tx.emit(IncidentOpened(
            environment=incident.environment, actor=incident.opened_by, source=SOURCE, incident_id=incident.incident_id, severity=incident.severity,
            summary=incident.summary, origin=incident.origin, dedup_key=incident.dedup_key,
            component=incident.component, reported_by=incident.reported_by, **fields,
        ))

    async def open(self, command: OpenIncident, by: Signed) -> CommandResult:
        incident = Incident(
            incident_id=new_incident_id(), environment=command.environment, severity=command.severity,
            summary=command.summary, origin="slipway", opened_by=by.actor, opened_at=datetime.now(UTC),
            component=command.component,
        )
        async with self.runtime.db.transaction() as tx:
            await self._opened(tx, incident, signed_command=by.proof)
        self.runtime.relay.wake()
        self.on_change()
        return CommandResult(ok=True, message=f"incident {incident.incident_id} open in {incident.environment} "
                                              f"({incident.severity.value})", data={"incident_id": incident.incident_id})

    async def resolve(self, command: ResolveIncident, by: Signed) -> CommandResult:
        async with self.runtime.db.transaction() as tx:
            incident = await incident_store.get(tx.session, command.incident_id)
            problem = resolve_refusal(incident, command.incident_id)
            if problem is None and incident is not None:
                if not await incident_store.resolve(tx.session, incident.incident_id, by.actor, datetime.now(UTC)):
                    problem = f"incident {command.incident_id} was resolved by someone else meanwhile"
            if problem is not None or incident is None:
                raise Refused(problem or "", command.incident_id, incident.environment if incident else None)
            await tx.emit(IncidentResolved(
                environment=incident.environment, actor=by.actor, source=SOURCE, incident_id=incident.incident_id, origin="slipway",
                dedup_key=incident.dedup_key, comment=command.comment, signed_command=by.proof,
            ))
        self.runtime.relay.wake()
        self.on_change()
        return CommandResult(ok=True, message=f"incident {incident.incident_id} resolved by {by.actor}")

    async def list(self, command: ListIncidents) -> CommandResult:
        async with self.runtime.db.transaction() as tx:
            found = await incident_store.listed(tx.session, command.environment, command.include_resolved)
        rows = [incident.as_data() for incident in found]
        return CommandResult(ok=True, message=f"{len(rows)} incident(s)", data={"incidents": rows})

    async def on_pagerduty(self, event: PagerDutyEvent, environment: str) -> WebhookOutcome:
        """Act on an authenticated Events API v2 event: a trigger opens (once per dedup_key), a resolve closes."""
        async with self._webhook_lock, self.runtime.db.transaction() as tx:
            outcome = await self._pagerduty(tx, event, environment)
        if tx.emitted:
            self.runtime.relay.wake()
        self.on_change()
        return outcome

    async def _pagerduty(self, tx: Transaction, event: PagerDutyEvent, environment: str) -> WebhookOutcome:
        dedup_key = event.dedup_key or new_event_id()  # PagerDuty makes one up for a trigger without one, too
        current = await incident_store.open_by_dedup_key(tx.session, dedup_key)
        if event.event_action == "trigger" and event.payload is not None:
            if current is not None:
                return WebhookOutcome(f"incident {current.incident_id} is already open for this dedup_key",
                                      dedup_key, current.incident_id)
            payload = event.payload
            incident = Incident(
                incident_id=new_incident_id(), environment=environment, severity=payload.severity,
                summary=payload.summary, origin="pagerduty", opened_by=WEBHOOK_ACTOR, opened_at=datetime.now(UTC),
                dedup_key=dedup_key, component=payload.component, reported_by=payload.source,
            )
            await self._opened(tx, incident)
            return WebhookOutcome(f"incident {incident.incident_id} opened in {environment}", dedup_key,
                                  incident.incident_id)
        if current is None:
            return WebhookOutcome(f"no open incident has this dedup_key: nothing to {event.event_action}", dedup_key)
        if event.event_action == "acknowledge":  # someone is on it; releases still wait until it is resolved
            return WebhookOutcome(f"incident {current.incident_id} acknowledged; it stays open", dedup_key,
                                  current.incident_id)
        await incident_store.resolve(tx.session, current.incident_id, WEBHOOK_ACTOR, datetime.now(UTC))
        await tx.emit(IncidentResolved(
            environment=current.environment, actor=WEBHOOK_ACTOR, source=SOURCE, incident_id=current.incident_id, origin="pagerduty",
            dedup_key=dedup_key,
        ))
        return WebhookOutcome(f"incident {current.incident_id} resolved", dedup_key, current.incident_id)

    async def webhook_refused(self, reason: str, status: int, remote: str, dedup_key: str | None = None) -> None:
        await self.runtime.emit(IncidentWebhookRefused(
            actor="unverified", source=SOURCE, reason=reason[:4000], status=status,
            remote_address=remote[:100], dedup_key=dedup_key,
        ))


def register(runtime: Runtime) -> IncidentHandlers:
    """Serve the incident commands on the gatekeeper's runtime and hook the webhook into its start and stop."""
    from services.gatekeeper.webhook import IncidentWebhook

    handlers = IncidentHandlers(runtime)
    serve_signed_command(runtime, subjects.CMD_OPEN_INCIDENT, OpenIncident, handlers.open)
    serve_signed_command(runtime, subjects.CMD_RESOLVE_INCIDENT, ResolveIncident, handlers.resolve)
    serve_command(runtime.broker, subjects.CMD_LIST_INCIDENTS, ListIncidents, handlers.list)
    if runtime.settings.incident_webhook_port is not None:
        webhook = IncidentWebhook(runtime.settings, handlers)
        runtime.on_start.append(webhook.start)
        runtime.on_stop.append(webhook.stop)
    return handlers
