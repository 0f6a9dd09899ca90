"""Use cases of the metrics-collector: log every event in the audit chain, answer queries over it."""

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from contracts.commands import CommandResult, QueryDora, QueryReleases, SignedCommand, VerifyAudit
from contracts.envelope import EVENT_ID_DESCRIPTION, Event, EventId, Name, ReleaseId
from libs.bus import describe, unverified
from libs.identities import IdentityStore
from libs.runtime import Runtime
from libs.command_signing import audit_refusal
from libs.store import Transaction
from services.metrics_collector import domain
from services.metrics_collector.store import EventLog

log = logging.getLogger("slipway.metrics_collector")
CONSUMER = "metrics-collector"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # sorts an event without a readable time first
HISTORY_MAX = 200  # events of one release in a status reply; bounded so the reply stays under NATS's 1 MB
FLAGS_SHOWN = 20  # the newest flags an audit reply lists; flagged_count covers them all


class LoggedEvent(Event):
    """Any event: the envelope is validated, every other field is kept, so the log holds what was sent.

    release_id, service and environment are checked when present: a release's events carry them,
    freezes, incidents and the other events not about a release do not.

    The envelope's bounds apply, so an oversize or malformed envelope is refused (dead-lettered
    with the reason) rather than logged. It declares no `subject`, which keeps this reader out of
    Event.registry.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    # Required here: an id made up on receipt would differ on every redelivery, logging one event twice.
    event_id: EventId = Field(description=EVENT_ID_DESCRIPTION)
    release_id: ReleaseId | None = None
    service: Name | None = None
    environment: Name | None = None

    def model_post_init(self, context: Any) -> None:
        # Event would name an untyped message after this class; "unknown" does not pretend to know.
        if not self.type:
            object.__setattr__(self, "type", "unknown")
        if self.release_id and not self.correlation_id:  # as ReleaseEvent does
            object.__setattr__(self, "correlation_id", self.release_id)
        super().model_post_init(context)


class Handlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # Both consumers append to one chain and each append reads the head first: serialising
        # them here avoids the unique prev_hash rejecting one of two interleaved appends.
        self._append_lock = asyncio.Lock()
        registry = runtime.settings.identity_registry
        self.identities = IdentityStore(registry.parent) if registry is not None else None

    async def on_event(self, event: LoggedEvent, subject: str) -> None:
        received = event.model_dump(mode="json")
        payload = domain.canonical_json(received)
        # A message whose publisher could not be verified is still the log's to keep, flagged with why.
        refused = unverified.get()
        flag = f"publisher not verified: {refused}" if refused else domain.flag_reason(received, subject, Event.registry)

        async def append(tx: Transaction) -> None:
            if flag is not None:
                log.warning("event %s is logged flagged: %s", event.event_id, flag)
            entries = EventLog(tx.session)
            prev_hash = await entries.head_hash()
            await entries.append(
                flag=flag,
                event_id=event.event_id,
                type=event.type,
                subject=subject,
                # The columns predate events without a release: "" there means "not about one".
                release_id=event.release_id or "",
                service=event.service or "",
                environment=event.environment or "",
                occurred_at=event.occurred_at,
                recorded_at=datetime.now(UTC),
                payload=payload,
                prev_hash=prev_hash,
                hash=domain.chain_hash(prev_hash, payload),
            )

        async with self._append_lock:
            if not await self.runtime.process_once(CONSUMER, event, append):
                log.debug("event %s is already in the log", event.event_id)

    async def query_dora(self, query: QueryDora) -> CommandResult:
        events = await self._payloads()
        report = domain.dora(
            events, datetime.now(UTC), query.days, service=query.service, environment=query.environment
        )
        return CommandResult(ok=True, message=report.summary(query.service, query.environment), data=report.as_data())

    async def verify_audit(self, _: VerifyAudit) -> CommandResult:
        async with self.runtime.db.sessions() as session:
            entries = EventLog(session)
            records = await entries.chain()
            flagged, flagged_count = await entries.flagged(FLAGS_SHOWN), await entries.flagged_count()
        report = domain.verify_chain(records)
        signed, unvouched = domain.unvouched_commands(records, self._signature_problem)
        head = records[-1][3] if records else None
        # Flagged records are part of the chain (it covers what was sent) but left out of reports.
        flags = f" ({flagged_count} flagged, left out of reports)" if flagged_count else ""
        if not report.ok:
            message = f"audit trail BROKEN at record {report.first_bad_seq} of {report.records}: {report.reason}"
        elif unvouched:
            first = unvouched[0]
            message = (f"audit trail linked, but {len(unvouched)} of {signed} signed commands do not verify; "
                       f"first at record {first.seq} ({first.type} {first.event_id}): {first.reason}")
        else:
            message = (f"audit trail intact: {report.records} records{flags}, {signed} signed commands verified, "
                       f"head {head or domain.GENESIS_HASH}")
        data = {"records": report.records, "first_bad_seq": report.first_bad_seq, "reason": report.reason,
                "head_hash": head, "flagged": [{"seq": seq, "reason": reason} for seq, reason in flagged],
                "flagged_count": flagged_count, "signed_commands": signed,
                "unverified_commands": [u.__dict__ for u in unvouched[:FLAGS_SHOWN]],
                "unverified_count": len(unvouched)}
        return CommandResult(ok=report.ok and not unvouched, message=message, data=data)

    def _signature_problem(self, event: dict[str, Any]) -> str | None:
        """What is wrong with a logged event's signed command, checked against the registry as it is now."""
        try:
            proof = SignedCommand.model_validate(event["signed_command"])
        except ValidationError as invalid:
            return f"unreadable signed command: {describe(invalid)}"
        if self.identities is None:
            return "no identity registry is configured (SLIPWAY_IDENTITY_REGISTRY): the signature cannot be checked"
        if problem := audit_refusal(proof, self.identities.get(proof.signer), str(event.get("actor"))):
            return problem
        try:
            command = json.loads(proof.command)
        except (ValueError, RecursionError):
            return "the signed command's text is not JSON"
        return domain.command_mismatch(event, proof.subject, command if isinstance(command, dict) else {})

    async def query_releases(self, query: QueryReleases) -> CommandResult:
        payloads = await self._payloads(query.release_id)
        states = domain.release_states(payloads)[: query.limit]
        if query.release_id is not None and not states:
            return CommandResult(ok=False, message=f"release {query.release_id} is not in the event log")
        releases = [_release_data(s) for s in states]
        if query.release_id is None:
            return CommandResult(ok=True, message=f"{len(releases)} releases, newest first", data={"releases": releases})
        # One release: its history too, in the order things happened (events of one batch are logged
        # in the order their handlers finished), newest last, cut to what fits one NATS message.
        history = sorted(payloads, key=lambda p: domain.parse_time(p.get("occurred_at")) or EPOCH)
        releases[0]["history"] = history[-HISTORY_MAX:]
        cut = max(0, len(payloads) - HISTORY_MAX)
        message = f"{states[0].release_id}: {states[0].state}" + (f" (the {cut} oldest events left out)" if cut else "")
        return CommandResult(ok=True, message=message, data={"releases": releases})

    async def _payloads(self, release_id: str | None = None) -> list[dict[str, Any]]:
        async with self.runtime.db.sessions() as session:
            return await EventLog(session).payloads(release_id)


def _release_data(state: domain.ReleaseState) -> dict[str, Any]:
    return {
        "release_id": state.release_id,
        "service": state.service,
        "environment": state.environment,
        "version": state.version,
        "state": state.state,
        "last_event": state.last_event,
        "updated_at": state.updated_at.isoformat(),
        "reason": state.reason,
        "events": state.events,
    }
