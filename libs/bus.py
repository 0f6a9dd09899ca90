"""The broker factory, the JetStream streams, and the one way slipway consumes an event.

Every consumer is a durable pull consumer (replicas share it by name), validates the payload
itself so bad input gets a reason instead of a crash, retries a failing handler with back-off
up to `max_deliver`, and then moves the message to a dead-letter subject with the last error.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import nats
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub, StorageType
from faststream.nats.annotations import NatsMessage
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from nats.js import api as nats_api
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ValidationError

from contracts import subjects
from contracts.events import DeadLettered
from libs.faults import crash_if_planned
from libs.settings import Settings

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


async def ensure_streams(nats_url: str) -> None:
    """Create (or bring up to date) the three streams, so publishing never races a subscriber's declaration."""
    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        for config in STREAM_CONFIGS:
            try:
                await js.add_stream(config)
            except BadRequestError:
                await js.update_stream(config)
    finally:
        await nc.close()


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
    )


# Any: each handler takes its own event type, which Callable[[BaseModel], ...] would reject.
Handler = Callable[[Any], Awaitable[None]]
InvalidHandler = Callable[[bytes, ValidationError], Awaitable[None]]

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
    batch_size: int = 10,
    max_workers: int = 1,  # handlers run at once; each message is still acked after its own handler
) -> None:
    """Subscribe `handle(parsed)` to `subject` through the durable consumer `durable`.

    With `max_workers` > 1 messages are handled concurrently, so one slow message does not hold
    back the ones behind it; otherwise a fetched batch is handled together before the next fetch.
    """

    async def dead_letter(msg: NatsMessage, deliveries: int, error: str) -> None:
        letter = DeadLettered(
            consumer=durable,
            subject=msg.raw_message.subject,
            deliveries=deliveries,
            error=error[:2000],
            payload=msg.body.decode(errors="replace")[:100_000],
            occurred_at=datetime.now(UTC),
        )
        await broker.publish(letter, subjects.dead_letter_subject(durable), stream=subjects.DLQ_STREAM, timeout=5.0)
        log.error("dead-lettered a message for %s after %d deliveries: %s", durable, deliveries, error)

    config = ConsumerConfig(max_deliver=settings.max_deliver + 1, ack_wait=settings.ack_wait_s)
    _declared.setdefault(broker, []).append((stream, ConsumerConfig(
        durable_name=durable, name=durable, filter_subject=subject, ack_policy=nats_api.AckPolicy.EXPLICIT,
        max_deliver=config.max_deliver, ack_wait=config.ack_wait,
    )))

    @broker.subscriber(
        subject,
        stream=jstream(stream),
        durable=durable,
        pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        config=config,
        decoder=keep_raw,
        max_workers=max_workers,
        title=durable,
        description=f"{durable}: {model.__name__}",
    )
    async def on_message(msg: NatsMessage) -> None:
        try:
            parsed = parse(model, msg.body)
        except ValidationError as invalid:
            if on_invalid is not None:
                await on_invalid(msg.body, invalid)
            else:
                await dead_letter(msg, 1, f"invalid {model.__name__}: {describe(invalid)}")
            return
        except ValueError as unparsable:
            await dead_letter(msg, 1, f"unreadable {model.__name__}: {unreadable(unparsable)}")
            return
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


def heartbeat_period(ack_wait_s: float) -> float:
    # Three beats per ack wait: one lost or late beat still leaves the message with its handler.
    return max(0.1, ack_wait_s / 3)


async def update_consumers(broker: NatsBroker, nats_url: str) -> None:
    """Create the broker's durables, or bring existing ones to the configuration in code."""
    declared = _declared.get(broker, [])
    if not declared:
        return
    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3)
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
