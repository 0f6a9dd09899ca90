"""The broker factory, the JetStream streams, and the one way slipway consumes an event.

Every consumer is a durable pull consumer (replicas share it by name), validates the payload
itself so bad input gets a reason instead of a crash, retries a failing handler with back-off
up to `max_deliver`, and then moves the message to a dead-letter subject with the last error.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import nats
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, NatsBroker, PullSub, StorageType
from faststream.nats.annotations import NatsMessage
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ValidationError

from contracts import subjects
from contracts.events import DeadLettered
from libs.settings import Settings

log = logging.getLogger("slipway.bus")

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
    """Subscribe `handle(parsed)` to `subject` through the durable consumer `durable`."""

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

    @broker.subscriber(
        subject,
        stream=jstream(stream),
        durable=durable,
        pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
        max_workers=max_workers,
        ack_policy=AckPolicy.NACK_ON_ERROR,
        config=ConsumerConfig(max_deliver=settings.max_deliver + 1, ack_wait=settings.ack_wait_s),
        title=durable,
        description=f"{durable}: {model.__name__}",
    )
    async def on_message(msg: NatsMessage) -> None:
        try:
            parsed = model.model_validate_json(msg.body)
        except ValidationError as invalid:
            if on_invalid is not None:
                await on_invalid(msg.body, invalid)
            else:
                await dead_letter(msg, 1, f"invalid {model.__name__}: {describe(invalid)}")
            return
        deliveries = msg.raw_message.metadata.num_delivered
        try:
            await handle(parsed)
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered with its reason
            reason = f"{type(exc).__name__}: {exc}"
            if deliveries >= settings.max_deliver:
                await dead_letter(msg, deliveries, reason)
                return
            log.warning("%s failed (delivery %d of %d), retrying: %s", durable, deliveries, settings.max_deliver, reason)
            await msg.nack(delay=min(10.0, 0.5 * 2 ** (deliveries - 1)))


def describe(error: ValidationError) -> str:
    """`field.path: message; ...`: what is wrong, in words a person can act on."""
    return "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in error.errors(include_url=False))


def field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(body)"
