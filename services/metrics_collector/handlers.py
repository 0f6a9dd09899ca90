"""Use cases of the metrics-collector: log every event in the audit chain, answer queries over it."""

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ConfigDict, Field, ValidationError
from sqlalchemy import inspect

from contracts.commands import CommandResult, QueryDora, QueryReleases, SignedCommand
from contracts.envelope import EVENT_ID_DESCRIPTION, Event, EventId, Name, ReleaseId
from contracts.dora_queries import QueryDoraTeams
from contracts.queries import ReleasesReply, ReleaseView
from libs.bus import describe, own_signer
from libs.command_signing import audit_refusal
from libs.identities import IdentityStore
from libs.runtime import Runtime
from libs.store import sqlite_pragmas
from services.metrics_collector import domain, dora_queries
from services.metrics_collector.audit_handlers import AuditTrail, index_backlog
from services.metrics_collector.bottlenecks import BottleneckStore
from services.metrics_collector.inline_writer import InlineWriter
from services.metrics_collector.projections import Projections
from services.metrics_collector.projector import Projector, cursor_of, move_cursor
from services.metrics_collector.store import EventLog

log = logging.getLogger("slipway.metrics_collector")
T = TypeVar("T")


class LoggedEvent(Event):
    """Any event: the envelope is validated, every other field is kept, so the log holds what was sent.

    release_id, service and environment are checked when present: a release's events carry them,
    freezes, incidents and the other events not about a release do not.

    The envelope's bounds apply, so an oversize or malformed envelope is refused (dead-lettered
    with the reason) rather than logged. It declares no `subject`, which keeps this reader out of
    Event.registry. Not every event is about a release (freezes, incidents, policies): release,
    service and environment are optional here, whatever the envelope requires of its own events.
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


@dataclass(frozen=True)
class Arrival:
    """An event as it reached the collector: the subject it came on, and why the log cannot vouch for it."""

    event: LoggedEvent
    subject: str
    flag: str | None
    payload: str  # the canonical JSON the chain hashes


def arrival(event: LoggedEvent, subject: str, unverified_publisher: str | None,
            received_at: datetime | None = None) -> Arrival:
    """`received_at`: the collector's clock when it read the event (now, unless a caller replays)."""
    received = event.model_dump(mode="json")
    # A message whose publisher could not be verified is still the log's to keep, flagged with why;
    # so is one from the future: kept as sent, left out of every report.
    flag = (f"publisher not verified: {unverified_publisher}" if unverified_publisher
            else domain.flag_reason(received, subject, Event.registry)
            or domain.future_reason(event.occurred_at, received_at or datetime.now(UTC)))
    return Arrival(event, subject, flag, domain.canonical_json(received))


class Handlers:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # Both consumers append to one chain and each append reads the head first: serialising
        # them here avoids the unique prev_hash rejecting one of two interleaved appends.
        self._append_lock = asyncio.Lock()
        self._no_release: str | None = None  # what a log created before NULL-able columns stores instead
        # SQLite on a file: the whole append in one thread hop (inline_writer); PostgreSQL and an
        # in-memory database (one connection's own) keep the async session.
        db = runtime.db
        self._writer = (InlineWriter(db.url, sqlite_pragmas)
                        if db.is_sqlite and not db.url.endswith(":memory:") else None)
        registry = runtime.settings.identity_registry
        self.identities = IdentityStore(registry.parent) if registry is not None else None
        self.audit = AuditTrail(runtime, own_signer(runtime.settings), self.identities, self._append_lock,
                                self._signature_problem, runtime.settings.audit_checkpoint_every)
        # The read models follow the log; `intake_backlog` says when the intake has more than a batch waiting.
        self.intake_backlog: Callable[[], bool] = lambda: False
        self.projector = Projector(self.transaction, self._append_lock, lambda: self.intake_backlog())

    async def prepare(self) -> None:
        """Before consuming: learn whether this log's release columns take NULL (a log created by an older
        version does not), fill the projections of a log written before they existed, and start the projector
        from where it was."""
        def nullable(connection: Any) -> bool:
            columns = {c["name"]: c for c in inspect(connection).get_columns("event_log")}
            return bool(columns["release_id"]["nullable"])

        async with self.runtime.db.engine.connect() as connection:
            self._no_release = None if await connection.run_sync(nullable) else ""
        async with self.runtime.db.transaction() as tx:
            projections, head = Projections(tx.session), (await EventLog(tx.session).head())[0]
            if (await projections.empty() or await BottleneckStore(tx.session).empty()) and head:
                log.info("the event log predates its projections: rebuilt %d releases", await projections.rebuild())
                await move_cursor(tx.session, head)
            if indexed := await index_backlog(tx.session, upto=await cursor_of(tx.session)):
                log.info("indexed %d records logged before the audit index existed", indexed)
        await self.projector.start(head)

    async def stop(self) -> None:
        """Once nothing is appended any more: let the projector finish the chunk in hand."""
        await self.projector.stop()

    async def close(self) -> None:
        """Stop the projector, let go of the append path's own SQLite connection (the runtime disposes of the async
        engine)."""
        await self.projector.stop()
        if self._writer is not None:
            self._writer.dispose()

    async def append(self, arrivals: Sequence[Arrival]) -> list[Arrival]:
        """Append events to the chain in one transaction; returns those newly logged. The read models follow
        (services.metrics_collector.projector).

        An event already in the log (a redelivery, a copy published past the stream's duplicate
        window) is left out: it is a duplicate, not a break in the chain.
        """
        async with self._append_lock:
            fresh, head = await self.transaction(lambda session: self._append_in(session, arrivals))
        self.projector.appended(head)
        return fresh

    async def transaction(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """`work(session)` in one transaction: in one thread hop on SQLite (inline_writer), else an async session."""
        if self._writer is not None:
            return await self._writer.transaction(work)
        async with self.runtime.db.transaction() as tx:
            return await work(tx.session)

    async def _append_in(self, session: Any, arrivals: Sequence[Arrival]) -> tuple[list[Arrival], int]:
        """The append's statements, inside the caller's transaction (an AsyncSession, or an InlineSession);
        what was newly logged, and the log's head after it."""
        fresh: list[Arrival] = []
        entries = EventLog(session)
        seen = await entries.logged(a.event.event_id for a in arrivals)
        seq, prev_hash = await entries.head()
        rows, flags, recorded_at = [], [], datetime.now(UTC)
        for a in arrivals:
            if a.event.event_id in seen:
                continue
            seen.add(a.event.event_id)
            seq, digest = seq + 1, domain.chain_hash(prev_hash, a.payload)
            rows.append(self._row(a, seq, prev_hash, digest, recorded_at))
            if a.flag is not None:
                log.warning("event %s is logged flagged: %s", a.event.event_id, a.flag)
                flags.append((seq, a.flag))
            prev_hash = digest
            fresh.append(a)
        await entries.append(rows, flags)
        await self.audit.appended(session, rows)
        return fresh, seq

    def _row(self, a: Arrival, seq: int, prev_hash: str, digest: str, recorded_at: datetime) -> dict[str, Any]:
        event = a.event
        absent = self._no_release
        return {
            "seq": seq, "event_id": event.event_id, "type": event.type, "subject": a.subject,
            "release_id": event.release_id if event.release_id is not None else absent,
            "service": event.service if event.service is not None else absent,
            "environment": event.environment if event.environment is not None else absent,
            "occurred_at": event.occurred_at, "recorded_at": recorded_at, "payload": a.payload,
            "prev_hash": prev_hash, "hash": digest,
        }

    async def query_dora(self, query: QueryDora) -> CommandResult:
        return await dora_queries.query_dora(self.runtime.db.sessions, query, datetime.now(UTC))

    async def query_dora_teams(self, query: QueryDoraTeams) -> CommandResult:
        return await dora_queries.query_dora_teams(self.runtime.db.sessions, query, datetime.now(UTC))

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
        offset = (query.page - 1) * query.limit
        async with self.runtime.db.sessions() as session:
            read = Projections(session)
            teams = set(query.teams) if query.teams is not None else None
            of = f" of team{'s' if len(teams) > 1 else ''} {', '.join(sorted(teams))}" if teams else ""
            if query.release_id is None:
                total, rows = await read.releases(offset, query.limit, teams)
                reply = ReleasesReply(page=query.page, limit=query.limit, total=total,
                                      releases=[ReleaseView.model_validate(r) for r in rows])
                shown = (f"releases{of} {offset + 1}-{offset + len(rows)} of {total}" if rows
                         else f"no releases{of} on page {query.page} ({total} in all)")
                return CommandResult(ok=True, message=f"{shown}, newest first", data=reply.model_dump(mode="json"))
            found = await read.release(query.release_id)
            if found is None:
                return CommandResult(ok=False, message=f"release {query.release_id} is not in the event log")
            if teams is not None and found["team"] not in teams:
                return CommandResult(ok=False, message=f"release {query.release_id} is of team "
                                                       f"{found['team'] or '(none)'}, not{of}")
            total, history = await EventLog(session).history_page(query.release_id, offset, query.limit)
        # One release: a page of its history, in the order things happened (events of one batch are
        # logged in the order their handlers finished).
        view = ReleaseView.model_validate(found | {"history": history})
        reply = ReleasesReply(page=query.page, limit=query.limit, total=total, releases=[view])
        more = f" (events {offset + 1}-{offset + len(history)} of {total})" if total > len(history) or offset else ""
        return CommandResult(ok=True, message=f"{view.release_id}: {view.state}{more}", data=reply.model_dump(mode="json"))

