"""How people and CI systems talk to a running slipway: publish events, send commands."""

from contextlib import asynccontextmanager
from collections.abc import AsyncIterator

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from contracts.commands import CommandResult
from contracts.envelope import Event, Model
from contracts.subjects import EVENTS_STREAM


class SlipwayUnavailable(Exception):
    """NATS or the service that owns a command is not reachable."""


@asynccontextmanager
async def connected(nats_url: str) -> AsyncIterator[Client]:
    try:
        # max_reconnect_attempts=0 means "forever" to nats-py; one attempt makes a dead server fail fast.
        nc = await nats.connect(
            nats_url, connect_timeout=3, max_reconnect_attempts=1, reconnect_time_wait=0.1, allow_reconnect=False
        )
    except Exception as exc:  # noqa: BLE001 - nats-py raises several types for "cannot connect"
        raise SlipwayUnavailable(f"cannot reach NATS at {nats_url}: {exc}") from exc
    try:
        yield nc
    finally:
        await nc.close()


async def publish_event(nats_url: str, event: Event) -> None:
    await publish_raw(nats_url, event.subject, event.model_dump_json().encode(), event.headers())


async def publish_raw(nats_url: str, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> None:
    """Publish to JetStream and wait for the stream's acknowledgement, so the event is durable."""
    async with connected(nats_url) as nc:
        await nc.jetstream().publish(subject, payload, headers=headers, stream=EVENTS_STREAM, timeout=5)


async def send_command(nats_url: str, subject: str, command: Model, timeout: float = 10.0) -> CommandResult:
    async with connected(nats_url) as nc:
        try:
            reply = await nc.request(subject, command.model_dump_json().encode(), timeout=timeout)
        except NoRespondersError as exc:
            raise SlipwayUnavailable(f"no service answers {subject}: is `slipway up` running?") from exc
        except NatsTimeout as exc:
            raise SlipwayUnavailable(f"{subject} did not answer within {timeout}s") from exc
    return CommandResult.model_validate_json(reply.data)
