"""How people and CI systems talk to a running slipway: publish events, send commands."""

from contextlib import asynccontextmanager
from collections.abc import AsyncIterator
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

from contracts.commands import CommandResult
from contracts.envelope import Event, Model
from contracts.subjects import EVENTS_STREAM
from libs.nats_auth import connect_options
from libs.signing import Signer

# The identity a process (the CLI, a test) connects as when a call names none: its seed file.
_default_credentials: list[Path | None] = [None]


class SlipwayUnavailable(Exception):
    """NATS or the service that owns a command is not reachable."""


class NotPermitted(Exception):
    """nats-server refused this identity a publish or a subscription: the message names which."""


def use_credentials(credentials: Path | None) -> None:
    """Connect as this identity from now on, unless a call names another (the CLI sets it once per command)."""
    _default_credentials[0] = credentials


def current_credentials() -> Path | None:
    return _default_credentials[0]


@asynccontextmanager
async def connected(nats_url: str, credentials: Path | None = None, identity: str | None = None) -> AsyncIterator[Client]:
    """A connection as `credentials`' identity (or the process default). A permission the server refused
    during the block is raised as NotPermitted, naming the identity, instead of a bare timeout."""
    seed_file = credentials or _default_credentials[0]
    refusals: list[str] = []

    async def on_error(exc: Exception) -> None:
        if "permissions violation" in str(exc).lower():
            refusals.append(str(exc).removeprefix("nats: "))

    try:
        # max_reconnect_attempts=0 means "forever" to nats-py; one attempt makes a dead server fail fast.
        nc = await nats.connect(
            nats_url, connect_timeout=3, max_reconnect_attempts=1, reconnect_time_wait=0.1, allow_reconnect=False,
            error_cb=on_error, **connect_options(seed_file, identity),
        )
    except Exception as exc:  # noqa: BLE001 - nats-py raises several types for "cannot connect"
        if "authorization violation" in str(exc).lower():
            who = f"the identity in {seed_file}" if seed_file else "a client without credentials"
            raise NotPermitted(f"NATS at {nats_url} does not accept {who} (revoked, or another slipway's key?)") from exc
        raise SlipwayUnavailable(f"cannot reach NATS at {nats_url}: {exc}") from exc
    try:
        yield nc
    except (NatsTimeout, TimeoutError, SlipwayUnavailable) as exc:
        # A refused publish is never answered: say why, not that nobody answered.
        if refusals:
            raise NotPermitted(_refused(identity, seed_file, refusals[0])) from exc
        raise
    finally:
        await nc.close()
    if refusals:
        raise NotPermitted(_refused(identity, seed_file, refusals[0]))


def _refused(identity: str | None, seed_file: Path | None, refusal: str) -> str:
    who = identity or (seed_file.name.removesuffix(".nk").replace(".", ":", 1) if seed_file else "anonymous")
    return f"NATS refused {who}: {refusal}"


async def publish_event(nats_url: str, event: Event, credentials: Path | None = None) -> None:
    await publish_raw(nats_url, event.address(), event.model_dump_json().encode(), event.headers(), credentials)


async def publish_raw(
    nats_url: str, subject: str, payload: bytes, headers: dict[str, str] | None = None, credentials: Path | None = None
) -> None:
    """Publish to JetStream, signed as `credentials`' identity, and wait for the stream's acknowledgement."""
    credentials = credentials or _default_credentials[0]
    if credentials is not None:
        headers = {**(headers or {}), **Signer.from_seed_file(credentials).headers(subject, payload)}
    async with connected(nats_url, credentials) as nc:
        await nc.jetstream().publish(subject, payload, headers=headers, stream=EVENTS_STREAM, timeout=5)


async def send_command(
    nats_url: str, subject: str, command: Model, timeout: float = 10.0,
    credentials: Path | None = None, identity: str | None = None,
) -> CommandResult:
    """Request/reply as `credentials`' identity (or the process default); the reply, or SlipwayUnavailable."""
    async with connected(nats_url, credentials, identity) as nc:
        try:
            reply = await nc.request(subject, command.model_dump_json().encode(), timeout=timeout)
        except NoRespondersError as exc:
            raise SlipwayUnavailable(f"no service answers {subject}: is `slipway up` running?") from exc
        except NatsTimeout as exc:
            raise SlipwayUnavailable(f"{subject} did not answer within {timeout}s") from exc
    return CommandResult.model_validate_json(reply.data)
