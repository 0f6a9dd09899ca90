"""Request/reply commands: validate, run the one handler, always answer with a CommandResult."""

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from faststream.nats import NatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import BaseModel, ValidationError

from contracts.commands import REPLY_MESSAGE_MAX, CommandResult
from libs.bus import describe, keep_raw, parse, unreadable

log = logging.getLogger("slipway.commands")
M = TypeVar("M", bound=BaseModel)


def serve_command(
    broker: NatsBroker, subject: str, model: type[M], handle: Callable[[M], Awaitable[CommandResult]]
) -> None:
    """Core NATS request/reply: a person is waiting, so errors come back as a message, not a crash.

    Replicas of a service share a queue group per command, so each request is answered once.
    """

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
        try:
            return await handle(command)
        except Exception as exc:  # noqa: BLE001 - reply with the reason; the service stays up
            log.exception("%s failed", subject)
            return refusal(f"{subject} failed: {type(exc).__name__}: {exc}")


def refusal(message: str) -> CommandResult:
    # A hostile request can make the reason itself huge (thousands of field errors); the reply
    # must still fit its contract, or the requester would get no answer at all.
    if len(message) > REPLY_MESSAGE_MAX:
        message = message[: REPLY_MESSAGE_MAX - 40] + f" ... ({len(message):,} characters in all)"
    return CommandResult(ok=False, message=message)
