"""The broker factory, the JetStream streams, and how slipway reads a message (signature, then payload).

How a service consumes (the pull loop, retries, dead letters) is libs.consume; the broker here
starts its consumers once it is connected and stops them before it disconnects.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from weakref import WeakKeyDictionary

import nats
from faststream.nats import ConsumerConfig, NatsBroker
from faststream.nats.annotations import NatsMessage
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.security import NatsNKey
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, ConnectionReconnectingError
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ValidationError

from contracts import subjects
from contracts.events import DeadLettered
from contracts.identity import IdentityRecord
from libs.identities import IdentityStore
from libs.nats_auth import connect_options
from libs.settings import Settings
from libs.signing import Signer, check_event, publisher_refusal

log = logging.getLogger("slipway.bus")
M = TypeVar("M", bound=BaseModel)

DUPLICATE_WINDOW_S = 120.0

STREAM_SUBJECTS = {
    subjects.EVENTS_STREAM: subjects.EVENTS_WILDCARD,
    subjects.ALERTS_STREAM: subjects.ALERTS_WILDCARD,
    subjects.DLQ_STREAM: subjects.DLQ_WILDCARD,
}
STREAM_CONFIGS = [
    StreamConfig(name=name, subjects=[wildcard], storage="file", duplicate_window=DUPLICATE_WINDOW_S)
    for name, wildcard in STREAM_SUBJECTS.items()
]


async def connect(nats_url: str, credentials: Path | None = None) -> nats.NATS:
    """A plain nats-py connection as the identity whose seed file is `credentials` (short set-up calls)."""
    return await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3, **connect_options(credentials))


async def ensure_streams(nats_url: str, credentials: Path | None = None) -> None:
    """Create (or bring up to date) the three streams, so publishing never races a subscriber's declaration.

    A stream that already has slipway's configuration is left alone: under authorization only the
    operator's identity may create or change streams (`slipway up` does it before any service starts).
    """
    nc = await connect(nats_url, credentials)
    try:
        js = nc.jetstream()
        for config in STREAM_CONFIGS:
            try:
                info = await js.stream_info(config.name)
            except NotFoundError:
                await js.add_stream(config)
                continue
            if _stream_differs(info.config, config):
                await js.update_stream(config)
    finally:
        await nc.close()


def _stream_differs(current: StreamConfig, wanted: StreamConfig) -> bool:
    return (current.subjects, current.duplicate_window) != (wanted.subjects, wanted.duplicate_window)


async def let_go(connection: nats.NATS) -> None:
    """Drain a connection whose server is there; close one whose server is gone, which nats-py refuses to drain."""
    try:
        await connection.drain()
    except (ConnectionReconnectingError, ConnectionClosedError):
        await connection.close()


GRACE_S = 15.0  # at a stop, what a handler in flight gets to finish before it is cancelled


class PullConsumer(Protocol):
    async def start(self, nc: nats.NATS) -> None: ...

    async def stop(self, grace_s: float) -> None: ...


class Broker(NatsBroker):
    """FastStream's broker (publishing, commands, telemetry) that also runs slipway's pull consumers.

    They start once the connection is up and stop before it drains, whether the broker runs in a
    FastStream app or on its own (`async with broker: await broker.start()`).
    """

    def __init__(self, *args: Any, tracer_provider: TracerProvider | None = None, graceful_timeout: float = GRACE_S,
                 **kwargs: Any) -> None:
        super().__init__(*args, graceful_timeout=graceful_timeout, **kwargs)
        self.grace_s = graceful_timeout  # FastStream's subscribers (commands) get the same at a stop
        self.tracer_provider = tracer_provider  # the consumers' spans continue the traces messages carry
        self.consumers: list[PullConsumer] = []  # libs.consume registers them

    async def start(self) -> None:
        await super().start()
        for consumer in self.consumers:
            await consumer.start(self.connection)

    async def stop(self, *exc_info: Any) -> None:
        # All at once: the whole stop takes one grace at most, not one per consumer.
        await asyncio.gather(*(consumer.stop(self.grace_s) for consumer in self.consumers))
        try:
            await super().stop(*exc_info)
        except (ConnectionReconnectingError, ConnectionClosedError):
            # The server is gone and nats-py refuses to drain (the last step of FastStream's stop), which
            # ended the process with a traceback. Closed instead, what the connection still buffers is lost
            # harmlessly: an unsent ack is a redelivery, an unsent event is still in its service's outbox.
            if self._connection is not None:
                await self._connection.close()
                self._connection = None
            self.config.disconnect()


def make_broker(service: str, settings: Settings, provider: TracerProvider | None = None) -> Broker:
    # FastStream's own messages (access log, task callbacks at every stop) are chatter next to the
    # services' logs; its warnings and errors still come through.
    faststream_log = logging.getLogger("slipway.faststream")
    faststream_log.setLevel(logging.WARNING)
    middlewares = [NatsTelemetryMiddleware(tracer_provider=provider)] if provider else []
    return Broker(
        settings.nats_url,
        tracer_provider=provider,
        name=f"slipway-{service}",
        middlewares=middlewares,
        logger=faststream_log,
        log_level=logging.DEBUG,  # per-message access log costs throughput; errors are still logged
        max_reconnect_attempts=-1,
        **_broker_identity(settings),
    )


def _broker_identity(settings: Settings) -> dict[str, Any]:
    """FastStream takes the nkey as `security` (its `nkeys_seed` argument is deprecated); the inbox as is."""
    options = connect_options(settings.credentials)
    if seed := options.pop("nkeys_seed", None):
        options["security"] = NatsNKey(seed)
    return options


# What the consumers of one broker declared, so start-up can bring existing durables up to date
# (JetStream binds an existing durable as it is: a shorter ack wait in code would never reach it).
_declared: WeakKeyDictionary[NatsBroker, list[tuple[str, ConsumerConfig]]] = WeakKeyDictionary()


async def keep_raw(msg: NatsMessage) -> bytes:
    """FastStream decoder that leaves the body as bytes.

    The framework's own JSON decoding raises on hostile payloads (20,000 nested brackets, a
    5,000-digit integer) before any slipway code runs, and the message is then redelivered and
    dropped without a dead letter. Every slipway handler parses the bytes itself, with bounds.
    """
    return msg.body


_stores: dict[str, IdentityStore] = {}
_signers: dict[str, Signer] = {}


def identity_store(settings: Settings) -> IdentityStore | None:
    """The registry this process checks events' signatures against, or None.

    Only a service that runs as an identity of its own (settings.credentials) is on a secured bus
    where everyone signs; one without (tests of a single service) can sign nothing itself, and
    insists on nobody else's signature either. People's commands are checked whenever a registry
    is configured (libs.commands).
    """
    if settings.identity_registry is None or settings.credentials is None:
        return None
    key = str(settings.identity_registry)
    if key not in _stores:  # one per path: the store re-reads the file only when it changes
        _stores[key] = IdentityStore(settings.identity_registry.parent)
    return _stores[key]


def own_signer(settings: Settings) -> Signer | None:
    """This process's signing key (its credentials), or None when it runs without one."""
    if settings.credentials is None:
        return None
    key = str(settings.credentials)
    if key not in _signers:
        _signers[key] = Signer.from_seed_file(settings.credentials)
    return _signers[key]


def parse(model: type[M], body: bytes) -> M:
    """`model` from JSON bytes; every way the bytes can be wrong is a ValidationError or ValueError."""
    try:
        return model.model_validate_json(body)
    except RecursionError as exc:  # nesting deeper than the parser's own limit
        raise ValueError(f"payload nests too deeply to be read: {exc}") from None


def unreadable(exc: ValueError) -> str:
    return describe(exc) if isinstance(exc, ValidationError) else f"(body): {exc}"


@dataclass(frozen=True)
class Received:
    """One message read the way every slipway consumer reads it: who signed it, then what it says."""

    parsed: BaseModel | None
    publisher: IdentityRecord | None
    refused: str | None  # why its publisher is not trusted (unsigned, unknown, may not publish this type)
    invalid: ValidationError | None = None
    unreadable: str | None = None  # not JSON the parser can read: the dead letter's reason


def receive(store: IdentityStore | None, model: type[BaseModel], raw: Msg) -> Received:
    publisher, refused = None, None
    if store is not None:
        publisher, refused = check_event(store, raw.subject, raw.data, raw.headers)
    try:
        parsed = parse(model, raw.data)
    except ValidationError as invalid:
        return Received(None, publisher, refused, invalid=invalid)
    except ValueError as unparsable:
        return Received(None, publisher, refused, unreadable=f"unreadable {model.__name__}: {unreadable(unparsable)}")
    if publisher is not None and refused is None:
        refused = publisher_refusal(publisher, getattr(parsed, "type", "") or model.__name__)
    return Received(parsed, publisher, refused)


async def dead_letter_raw(broker: NatsBroker, durable: str, raw: Msg, deliveries: int, error: str) -> None:
    """Move a message `durable` gives up on to its dead-letter subject, with the reason."""
    letter = DeadLettered(
        consumer=durable,
        subject=raw.subject,
        deliveries=deliveries,
        error=error[:2000],
        payload=raw.data.decode(errors="replace")[:100_000],
        occurred_at=datetime.now(UTC),
    )
    await broker.publish(letter, subjects.dead_letter_subject(durable), stream=subjects.DLQ_STREAM, timeout=5.0)
    log.error("dead-lettered a message for %s after %d deliveries: %s", durable, deliveries, error)


def declare_durable(broker: NatsBroker, stream: str, config: ConsumerConfig) -> None:
    """Record a durable this broker's service reads, so start-up creates or updates it (`update_consumers`)."""
    _declared.setdefault(broker, []).append((stream, config))


async def update_consumers(broker: NatsBroker, nats_url: str, credentials: Path | None = None) -> None:
    """Create the broker's durables, or bring existing ones to the configuration in code."""
    declared = _declared.get(broker, [])
    if not declared:
        return
    nc = await connect(nats_url, credentials)
    try:
        js = nc.jetstream()
        for stream, config in declared:
            await js.add_consumer(stream, config)  # create-or-update for the editable fields
    finally:
        await nc.close()


def describe(error: ValidationError) -> str:
    """`field.path: message; ...`: what is wrong, in words a person can act on."""
    return "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in error.errors(include_url=False))


def field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(body)"
