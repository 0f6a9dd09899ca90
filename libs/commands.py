"""Request/reply commands: validate, check who sent it, run the one handler, always answer with a CommandResult.

Queries (status, DORA, audit, freezes) are served by `serve_command`. A person's command
(contracts.rights.PEOPLE_COMMANDS) is served only by `serve_signed_command`, which verifies the
SignedCommand in one place before the handler runs: the signature against the identity registry,
the signer a person whose key is not revoked, the time of issue within the window, the command
id never seen before by this service, and a role that allows the command. Every refusal is
answered with its reason and recorded as a CommandRefused event; nothing else happens.
"""

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from contracts.commands import REPLY_MESSAGE_MAX, CommandResult, SignedCommand
from contracts.envelope import ID_PATTERN, NAME_PATTERN, RELEASE_ID_MAX, utcnow
from contracts.events import CommandRefused
from contracts.identity import IdentityRecord
from contracts.rights import PEOPLE_COMMANDS, TEAM_SCOPED_COMMANDS, command_name, role_refusal, team_refusal
from libs.bus import describe, keep_raw, parse, unreadable
from libs.identities import IdentityStore
from libs.runtime import Runtime
from libs.command_signing import command_refusal, signature_refusal
from libs.store import seen_commands

log = logging.getLogger("slipway.commands")
M = TypeVar("M", bound=BaseModel)
UNVERIFIED = "unverified"  # a CommandRefused's actor when the signature did not verify


def serve_command(
    broker: NatsBroker, subject: str, model: type[M], handle: Callable[[M], Awaitable[CommandResult]]
) -> None:
    """Core NATS request/reply: a person is waiting, so errors come back as a message, not a crash.

    Replicas of a service share a queue group per command, so each request is answered once.
    """
    if subject in PEOPLE_COMMANDS:
        raise ValueError(f"{subject} is a person's command: serve it with serve_signed_command")

    @broker.subscriber(
        subject, queue=subject, decoder=keep_raw, title=subject, description=f"{model.__name__} -> CommandResult"
    )
    async def on_command(msg: NatsMessage) -> CommandResult:
        try:
            # An empty request means "all defaults", so `nats req <subject> ''` works by hand.
            command = parse(model, msg.body.strip() or b"{}")
        except ValidationError as invalid:
            return refusal(f"invalid {model.__name__}: {describe(invalid)}")
        except ValueError as unparsable:
            return refusal(f"unreadable {model.__name__}: {unreadable(unparsable)}")
        return await _answer(subject, handle(command))


@dataclass(frozen=True)
class Signed:
    """A person's command that passed every check: who sent it and the proof to keep with what it caused."""

    signer: IdentityRecord
    proof: SignedCommand
    command: str  # the command's own subject, without the team and service the sender addressed it to

    @property
    def actor(self) -> str:
        return self.signer.id

    @property
    def addressed_team(self) -> str | None:
        """The team a team-scoped command was sent for (`<command>.<team>.<service>`, what the server checked)."""
        extra = self.proof.subject.removeprefix(self.command).split(".")
        return extra[1] if len(extra) == 3 else None

    def team_refusal(self, release_id: str, team: str | None) -> str | None:
        addressed = self.addressed_team
        if addressed is not None and team is not None and addressed != team:
            return (f"the command was sent for team {addressed} ({self.proof.subject}), but release {release_id} "
                    f"is of team {team}")
        return team_refusal(self.command, self.actor, self.signer.roles, self.signer.teams, team, release_id)


class Refused(Exception):
    """Raised by a handler that refuses a verified command on rights (a team it may not act on).

    Recorded like the checks' own refusals; `about` names the release (freeze, incident, change) the
    command was about, `environment` where, when known.
    """

    def __init__(self, reason: str, about: str | None = None, environment: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.scope = reason, (about, environment)


def serve_signed_command(
    runtime: Runtime, subject: str, model: type[M], handle: Callable[[M, Signed], Awaitable[CommandResult]]
) -> None:
    if subject not in PEOPLE_COMMANDS:
        raise ValueError(f"{subject} is not a person's command (contracts.rights)")
    gate = CommandGate(runtime, subject)

    async def on_command(msg: NatsMessage) -> CommandResult:
        body = msg.body.strip()
        checked = await gate.check(body, msg.raw_message.subject)
        if isinstance(checked, CommandResult):
            return checked
        try:
            command = parse(model, checked.proof.command.encode())
        except ValueError as invalid:
            text = describe(invalid) if isinstance(invalid, ValidationError) else unreadable(invalid)
            return await gate.refuse(f"invalid {model.__name__}: {text}", body, checked.proof, checked.actor)
        try:
            return await _answer(subject, handle(command, checked))
        except Refused as refused:
            return await gate.refuse(refused.reason, body, checked.proof, checked.actor, refused.scope)

    # A team-scoped command also comes addressed to `<subject>.<team>.<service>`: nats-server lets a
    # developer send it only for their own teams, and the handler checks the release is that team's.
    addresses = (subject, f"{subject}.*.*") if subject in TEAM_SCOPED_COMMANDS else (subject,)
    for address in addresses:
        runtime.broker.subscriber(
            address, queue=subject, decoder=keep_raw, title=address,
            description=f"SignedCommand of {model.__name__} -> CommandResult",
        )(on_command)


class CommandGate:
    """The checks every person's command passes on one subject, and the record of each refusal."""

    def __init__(self, runtime: Runtime, subject: str) -> None:
        self.runtime, self.subject = runtime, subject
        path = runtime.settings.identity_registry
        # The store re-reads registry.json whenever it changes, so a revocation counts from that moment.
        self.identities = IdentityStore(path.parent) if path is not None else None
        self.window = timedelta(seconds=runtime.settings.command_window_s)

    async def check(self, body: bytes, received_on: str) -> Signed | CommandResult:
        if self.identities is None:
            return await self.refuse("no identity registry is configured (SLIPWAY_IDENTITY_REGISTRY): "
                                     "people's commands are refused", body)
        try:
            signed = parse(SignedCommand, body or b"{}")
        except ValueError as unreadable_body:
            return await self.refuse(self._unsigned_reason(body, unreadable_body), body)
        record, now = self.identities.get(signed.signer), utcnow()
        problem = command_refusal(signed, received_on, record, now, self.window)
        if problem is not None or record is None:
            verified = record is not None and signed.subject == received_on and not signature_refusal(signed, record)
            return await self.refuse(problem or f"unknown identity {signed.signer}", body, signed,
                                     signed.signer if verified else UNVERIFIED)
        if earlier := await self._claim(signed, now):
            return await self.refuse(f"replayed command_id {signed.command_id}: this service received it at "
                                     f"{earlier.isoformat()} already", body, signed, record.id)
        if problem := role_refusal(self.subject, record.id, record.roles):
            return await self.refuse(problem, body, signed, record.id)
        return Signed(record, signed, self.subject)

    def _unsigned_reason(self, body: bytes, error: ValueError) -> str:
        text = describe(error) if isinstance(error, ValidationError) else unreadable(error)
        if "signature" not in _loose_json(body or b"{}"):
            return (f"unsigned: {command_name(self.subject)} is a person's command and must come as a "
                    f"SignedCommand (`slipway` signs it with your identity; see `slipway identity`)")
        return f"invalid SignedCommand: {text}"

    async def _claim(self, signed: SignedCommand, now: datetime) -> datetime | None:
        """Take the command id; the time it was first received when it was taken before."""
        table = seen_commands.c
        try:
            async with self.runtime.db.transaction() as tx:
                earlier = await tx.session.scalar(select(table.received_at).where(table.command_id == signed.command_id))
                if earlier is not None:
                    return earlier
                # Older than the window, an id would be refused as too old anyway: no need to keep it.
                await tx.session.execute(delete(seen_commands).where(table.issued_at < now - self.window))
                await tx.session.execute(seen_commands.insert().values(
                    command_id=signed.command_id, subject=signed.subject, signer=signed.signer,
                    issued_at=signed.issued_at, received_at=now,
                ))
        except IntegrityError:  # a replica took the same id between our read and our insert
            return now
        return None

    async def refuse(self, reason: str, body: bytes, signed: SignedCommand | None = None, actor: str = UNVERIFIED,
                     scope: tuple[str | None, str | None] | None = None) -> CommandResult:
        about, environment = scope or _scope_of(body, signed)
        claimed = signed.signer if signed is not None else _claimed_signer(body)
        log.warning("%s refused (signer %s): %s", self.subject, claimed or "none", reason)
        await self.runtime.emit(CommandRefused(
            about=about, environment=environment, actor=actor, source=self.runtime.name,
            command=self.subject, command_id=signed.command_id if signed else None,
            claimed_signer=claimed, reason=reason[:4000], signed_command=signed,
        ))
        return refusal(f"refused: {reason}")


def _loose_json(text: bytes | str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _scope_of(body: bytes, signed: SignedCommand | None) -> tuple[str | None, str | None]:
    """The release, freeze, change or incident a refused command named, and its environment, where readable."""
    if signed is not None:
        command = _loose_json(signed.command)
    else:  # a signed command that did not validate, or a bare command sent unsigned
        sent = _loose_json(body)
        command = _loose_json(sent["command"]) if isinstance(sent.get("command"), str) else sent
    named = next((v for k in ("release_id", "freeze_id", "number", "incident_id")
                  if isinstance(v := command.get(k), str)), None)
    about = named if named is not None and len(named) <= RELEASE_ID_MAX and re.fullmatch(ID_PATTERN, named) else None
    env = command.get("environment")
    environment = env if isinstance(env, str) and re.fullmatch(NAME_PATTERN, env) else None
    return about, environment


def _claimed_signer(body: bytes) -> str | None:
    signer = _loose_json(body).get("signer")
    return signer[:200] if isinstance(signer, str) else None


async def _answer(subject: str, handling: Awaitable[CommandResult]) -> CommandResult:
    try:
        return await handling
    except Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - reply with the reason; the service stays up
        log.exception("%s failed", subject)
        return refusal(f"{subject} failed: {type(exc).__name__}: {exc}")


def refusal(message: str) -> CommandResult:
    # A hostile request can make the reason itself huge (thousands of field errors); the reply
    # must still fit its contract, or the requester would get no answer at all.
    if len(message) > REPLY_MESSAGE_MAX:
        message = message[: REPLY_MESSAGE_MAX - 40] + f" ... ({len(message):,} characters in all)"
    return CommandResult(ok=False, message=message)
