"""The broker factory, the JetStream streams, and the one way slipway consumes an event.

Every consumer is a durable pull consumer (replicas share it by name), validates the payload
itself so bad input gets a reason instead of a crash, retries a failing handler with back-off
up to `max_deliver`, and then moves the message to a dead-letter subject with the last error.
"""

import asyncio
import logging
from contextvars import ContextVar
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

import nats
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub, StorageType
from faststream.nats.annotations import NatsMessage
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.security import NatsNKey
from nats.aio.msg import Msg
from nats.js import api as nats_api
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ValidationError

from contracts import subjects
from contracts.events import DeadLettered, EventRefused
from contracts.identity import IdentityRecord
from libs.faults import crash_if_planned
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


def jstream(name: str) -> JStream:
    # A fresh object per subscriber: FastStream adds each subscriber's subject to the JStream it is
    # given, so a shared module-level instance would leak subjects between brokers.
    return JStream(
        name=name,
        subjects=[STREAM_SUBJECTS[name]],
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_S,
        declare=False,  # ensure_streams() owns the stream configuration
    )


# The identity that published the message being handled, as its signature proved (None when the
# service runs without an identity registry). Handlers that scope by team read it.
current_publisher: ContextVar[IdentityRecord | None] = ContextVar("current_publisher", default=None)
# The message being handled, for handlers that need more than its parsed body (its subject).
current_message: ContextVar[NatsMessage | None] = ContextVar("current_message", default=None)
# Why the message being handled is not trusted, for a consumer that keeps it anyway (the audit trail).
unverified: ContextVar[str | None] = ContextVar("unverified", default=None)


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


def make_broker(service: str, settings: Settings, provider: TracerProvider | None = None) -> NatsBroker:
    # FastStream's own messages (access log, task callbacks at every stop) are chatter next to the
    # services' logs; its warnings and errors still come through.
    faststream_log = logging.getLogger("slipway.faststream")
    faststream_log.setLevel(logging.WARNING)
    middlewares = [NatsTelemetryMiddleware(tracer_provider=provider)] if provider else []
    return NatsBroker(
        settings.nats_url,
        name=f"slipway-{service}",
        middlewares=middlewares,
        graceful_timeout=15.0,
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


# Any: each handler takes its own event type, which Callable[[BaseModel], ...] would reject.
Handler = Callable[[Any], Awaitable[None]]
InvalidHandler = Callable[[bytes, ValidationError], Awaitable[None]]
# Called with the refused event (when it could be read) and the reason, after EventRefused is out.
RefusedHandler = Callable[[BaseModel | None, str], Awaitable[None]]

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


def broker_message() -> NatsMessage | None:
    return current_message.get()


def parse(model: type[M], body: bytes) -> M:
    """`model` from JSON bytes; every way the bytes can be wrong is a ValidationError or ValueError."""
    try:
        return model.model_validate_json(body)
    except RecursionError as exc:  # nesting deeper than the parser's own limit
        raise ValueError(f"payload nests too deeply to be read: {exc}") from None


def unreadable(exc: ValueError) -> str:
    return describe(exc) if isinstance(exc, ValidationError) else f"(body): {exc}"


@asynccontextmanager
async def in_progress(msg: NatsMessage, every_s: float) -> AsyncIterator[None]:
    """Tell JetStream the message is being worked on, so a short ack wait does not redeliver it
    while a live handler is busy, yet a dead process's messages come back within the ack wait."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every_s)  # the heartbeat period itself, not a wait for an event
            try:
                await msg.raw_message.in_progress()
            except Exception as exc:  # noqa: BLE001 - a lost heartbeat only risks a redelivery
                log.debug("in-progress heartbeat failed: %s", exc)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def consume(
    broker: NatsBroker,
    settings: Settings,
    *,
    subject: str,
    durable: str,
    model: type[BaseModel],
    handle: Handler,
    stream: str = subjects.EVENTS_STREAM,
    on_invalid: InvalidHandler | None = None,
    on_refused: RefusedHandler | None = None,
    refuse_unverified: bool = True,
    batch_size: int = 10,
    max_workers: int = 1,  # handlers run at once; each message is still acked after its own handler
) -> None:
    """Subscribe `handle(parsed)` to `subject` through the durable consumer `durable`.

    With `max_workers` > 1 messages are handled concurrently, so one slow message does not hold
    back the ones behind it; otherwise a fetched batch is handled together before the next fetch.

    With an identity registry in the settings, a message must be signed by an identity that may
    publish its event type; any other is refused (EventRefused, dead letter, `on_refused`) unless
    `refuse_unverified` is False (the audit trail keeps everything and flags it instead).
    """
    store = identity_store(settings)

    async def dead_letter(msg: NatsMessage, deliveries: int, error: str) -> None:
        await dead_letter_raw(broker, durable, msg.raw_message, deliveries, error)

    async def refuse(msg: NatsMessage, parsed: BaseModel | None, publisher: IdentityRecord | None, reason: str) -> None:
        """Say on the bus who tried what, keep the message as a dead letter, and never act on it."""
        claimed = (msg.raw_message.headers or {}).get("slipway-signer")
        refusal = EventRefused.about(
            parsed, consumer=durable, refused_subject=msg.raw_message.subject[:1024],
            claimed_signer=(publisher.id if publisher else claimed or None), reason=reason,
            source=durable, refused_sequence=msg.raw_message.metadata.sequence.stream,
        )
        body = refusal.model_dump_json().encode()
        signer = own_signer(settings)
        headers = {**refusal.headers(), **(signer.headers(refusal.address(), body) if signer else {})}
        await broker.publish(body, refusal.address(), stream=subjects.EVENTS_STREAM, headers=headers, timeout=5.0)
        await dead_letter(msg, 1, f"refused: {reason}")
        if on_refused is not None:
            await on_refused(parsed, reason)

    # Pull replies come to this identity's own inbox, the only one the server lets it read.
    inbox = connect_options(settings.credentials).get("inbox_prefix")
    config = ConsumerConfig(max_deliver=settings.max_deliver + 1, ack_wait=settings.ack_wait_s)
    declare_durable(broker, stream, ConsumerConfig(
        durable_name=durable, name=durable, filter_subject=subject, ack_policy=nats_api.AckPolicy.EXPLICIT,
        max_deliver=config.max_deliver, ack_wait=config.ack_wait,
    ))

    @broker.subscriber(
        subject,
        stream=jstream(stream),
        durable=durable,
        pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        config=config,
        decoder=keep_raw,
        max_workers=max_workers,
        **({"inbox_prefix": f"{inbox}.".encode()} if inbox else {}),
        title=durable,
        description=f"{durable}: {model.__name__}",
    )
    async def on_message(msg: NatsMessage) -> None:
        got = receive(store, model, msg.raw_message)
        publisher, refused, parsed = got.publisher, got.refused, got.parsed
        if got.unreadable is not None:
            await dead_letter(msg, 1, got.unreadable)
            return
        if parsed is None:  # readable, but not a `model`: got.invalid says why
            invalid = cast(ValidationError, got.invalid)
            if refused and refuse_unverified:
                await refuse(msg, None, publisher, refused)
                return
            if on_invalid is not None:
                await on_invalid(msg.body, invalid)
            else:
                await dead_letter(msg, 1, f"invalid {model.__name__}: {describe(invalid)}")
            return
        if refused and refuse_unverified:
            await refuse(msg, parsed, publisher, refused)
            return
        current_publisher.set(publisher if refused is None else None)
        current_message.set(msg)
        unverified.set(refused)
        deliveries = msg.raw_message.metadata.num_delivered
        try:
            async with in_progress(msg, heartbeat_period(settings.ack_wait_s)):
                await handle(parsed)
            crash_if_planned(settings.crash_points, settings.data_dir, "handled", durable, getattr(parsed, "release_id", ""))
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered with its reason
            reason = f"{type(exc).__name__}: {exc}"
            if deliveries >= settings.max_deliver:
                await dead_letter(msg, deliveries, reason)
                return
            log.warning("%s failed (delivery %d of %d), retrying: %s", durable, deliveries, settings.max_deliver, reason)
            await msg.nack(delay=min(10.0, 0.5 * 2 ** (deliveries - 1)))


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


def heartbeat_period(ack_wait_s: float) -> float:
    # Three beats per ack wait: one lost or late beat still leaves the message with its handler.
    return max(0.1, ack_wait_s / 3)


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
