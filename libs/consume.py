"""The one way slipway consumes an event, through a pull loop of its own.

Every consumer is a durable pull consumer (replicas share it by name), validates the payload
itself so bad input gets a reason instead of a crash, retries a failing handler with back-off
up to `max_deliver`, and then moves the message to a dead-letter subject with the last error.

The fetches are libs.pull_loop's: an idle period of any length, a restarted nats-server and a stop
are the loop's business, not a framework task that logs a traceback and is restarted (FastStream
0.7.8's pull subscriber did, on the builtin TimeoutError of nats-py 2.16's fetch). This module
hands each fetched message to its handler, up to `max_workers` at once, and acks each after its
own handler. The broker (libs.bus.Broker) starts the consumers once it is connected and stops
them before it disconnects.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from contextvars import ContextVar
from typing import Any, cast

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError

from contracts import subjects
from contracts.events import EventRefused
from contracts.identity import IdentityRecord
from libs.bus import Broker, dead_letter_raw, declare_durable, describe, identity_store, own_signer, receive
from libs.faults import crash_if_planned
from libs.nats_auth import connect_options
from libs.pull_loop import PullLoop
from libs.settings import Settings
from libs.telemetry import consuming

log = logging.getLogger("slipway.consume")

FETCH_TIMEOUT_S = 1.0  # an idle fetch comes back empty after this long and the loop fetches again

# Any: each handler takes its own event type, which Callable[[BaseModel], ...] would reject.
Handler = Callable[[Any], Awaitable[None]]
InvalidHandler = Callable[[bytes, ValidationError], Awaitable[None]]
# Called with the refused event (when it could be read) and the reason, after EventRefused is out.
RefusedHandler = Callable[[BaseModel | None, str], Awaitable[None]]

# The identity that published the message being handled, as its signature proved (None when the
# service runs without an identity registry). Handlers that scope by team read it.
current_publisher: ContextVar[IdentityRecord | None] = ContextVar("current_publisher", default=None)
# The message being handled, for handlers that need more than its parsed body (its subject, its sequence).
current_message: ContextVar[Msg | None] = ContextVar("current_message", default=None)
# Why the message being handled is not trusted, for a consumer that keeps it anyway (the audit trail).
unverified: ContextVar[str | None] = ContextVar("unverified", default=None)


def broker_message() -> Msg | None:
    return current_message.get()


class PullConsumer:
    """Fetched messages to `handle_one`, up to `workers` at once, each in a task (and context) of its own.

    With one worker a fetched batch is handled in order before the next fetch; with more, the loop
    fetches again as soon as the batch is handed out, waiting only when every worker is busy, so one
    slow message holds one worker, not the ones behind it.
    """

    def __init__(self, handle_one: Callable[[Msg], Awaitable[None]], *, workers: int, inbox_prefix: bytes | None,
                 **loop_options: Any) -> None:  # loop_options: libs.pull_loop.PullLoop's, but `handle`
        self.loop = PullLoop(handle=self._dispatch, **loop_options)
        self.handle_one, self.workers, self.inbox_prefix = handle_one, max(1, workers), inbox_prefix
        self._running: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()  # a worker finished, or the consumer is stopping
        self._stopping = False

    async def start(self, nc: NATS) -> None:
        self._stopping = False
        await self.loop.start(nc, inbox_prefix=self.inbox_prefix)

    async def stop(self, grace_s: float) -> None:
        """Fetch nothing more and start no other message; handlers in flight get `grace_s`, then are cancelled.

        Messages fetched but not started were never acknowledged: JetStream redelivers them after the ack wait.
        """
        began = asyncio.get_running_loop().time()
        self._stopping = True
        self._changed.set()
        await self.loop.stop(grace_s)
        if not self._running:
            return
        left = max(0.0, grace_s - (asyncio.get_running_loop().time() - began))
        _, pending = await asyncio.wait(set(self._running), timeout=left)
        if pending:
            log.warning("%s: %d handlers did not finish within %.0f s; cancelled", self.loop.durable, len(pending), grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _dispatch(self, batch: list[Msg]) -> None:
        for msg in batch:
            while len(self._running) >= self.workers and not self._stopping:
                self._changed.clear()
                await self._changed.wait()
            if self._stopping:
                return
            task = asyncio.create_task(self.handle_one(msg), name=f"{self.loop.durable} message")
            self._running.add(task)
            task.add_done_callback(self._finished)
            if self.workers == 1:
                await task  # cancelling the loop (a stop past its grace) cancels the handler too

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._changed.set()
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s: a handler task failed: %r", self.loop.durable, error)


def consume(
    broker: Broker,
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
    """Read `subject` through the durable consumer `durable` and call `handle(parsed)` for each message.

    With `max_workers` > 1 messages are handled concurrently, so one slow message does not hold
    back the ones behind it; otherwise a fetched batch is handled together before the next fetch.

    With an identity registry in the settings, a message must be signed by an identity that may
    publish its event type; any other is refused (EventRefused, dead letter, `on_refused`) unless
    `refuse_unverified` is False (the audit trail keeps everything and flags it instead).
    """
    store = identity_store(settings)

    async def dead_letter(raw: Msg, deliveries: int, error: str) -> None:
        await dead_letter_raw(broker, durable, raw, deliveries, error)

    async def refuse(raw: Msg, parsed: BaseModel | None, publisher: IdentityRecord | None, reason: str) -> None:
        """Say on the bus who tried what, keep the message as a dead letter, and never act on it."""
        claimed = (raw.headers or {}).get("slipway-signer")
        refusal = EventRefused.about(
            parsed, consumer=durable, refused_subject=raw.subject[:1024],
            claimed_signer=(publisher.id if publisher else claimed or None), reason=reason,
            source=durable, refused_sequence=raw.metadata.sequence.stream,
        )
        body = refusal.model_dump_json().encode()
        signer = own_signer(settings)
        headers = {**refusal.headers(), **(signer.headers(refusal.address(), body) if signer else {})}
        await broker.publish(body, refusal.address(), stream=subjects.EVENTS_STREAM, headers=headers, timeout=5.0)
        await dead_letter(raw, 1, f"refused: {reason}")
        if on_refused is not None:
            await on_refused(parsed, reason)

    async def on_message(raw: Msg) -> bool:
        """Handle one message; True when it is done with (ack), False when it was handed back for a retry."""
        got = receive(store, model, raw)
        publisher, refused, parsed = got.publisher, got.refused, got.parsed
        if got.unreadable is not None:
            await dead_letter(raw, 1, got.unreadable)
            return True
        if parsed is None:  # readable, but not a `model`: got.invalid says why
            invalid = cast(ValidationError, got.invalid)
            if refused and refuse_unverified:
                await refuse(raw, None, publisher, refused)
            elif on_invalid is not None:
                await on_invalid(raw.data, invalid)
            else:
                await dead_letter(raw, 1, f"invalid {model.__name__}: {describe(invalid)}")
            return True
        if refused and refuse_unverified:
            await refuse(raw, parsed, publisher, refused)
            return True
        current_publisher.set(publisher if refused is None else None)
        current_message.set(raw)
        unverified.set(refused)
        deliveries = raw.metadata.num_delivered
        try:
            async with in_progress(raw, heartbeat_period(settings.ack_wait_s)):
                await handle(parsed)
            crash_if_planned(settings.crash_points, settings.data_dir, "handled", durable, getattr(parsed, "release_id", ""))
        except Exception as exc:  # noqa: BLE001 - any failure is retried, then dead-lettered with its reason
            reason = f"{type(exc).__name__}: {exc}"
            if deliveries >= settings.max_deliver:
                await dead_letter(raw, deliveries, reason)
                return True
            log.warning("%s failed (delivery %d of %d), retrying: %s", durable, deliveries, settings.max_deliver, reason)
            await raw.nak(delay=min(10.0, 0.5 * 2 ** (deliveries - 1)))
            return False
        return True

    async def handle_one(raw: Msg) -> None:
        try:
            with consuming(broker.tracer_provider, f"{subject} process", raw.subject, raw.headers):
                if await on_message(raw):
                    await raw.ack()
        except Exception:  # noqa: BLE001 - publishing a refusal or dead letter failed: try again later
            log.exception("%s: a message could not be handled; it is handed back", durable)
            with suppress(Exception):  # the connection may be what failed; then the ack wait brings it back
                await raw.nak()

    # Pull replies come to this identity's own inbox, the only one the server lets it read.
    inbox = connect_options(settings.credentials).get("inbox_prefix")
    consumer = PullConsumer(
        handle_one, workers=max_workers, inbox_prefix=f"{inbox}.".encode() if inbox else None,
        stream=stream, subject=subject, durable=durable, batch_size=batch_size, fetch_timeout_s=FETCH_TIMEOUT_S,
        max_deliver=settings.max_deliver + 1, ack_wait_s=settings.ack_wait_s,
    )
    declare_durable(broker, stream, consumer.loop.config)
    broker.consumers.append(consumer)


@asynccontextmanager
async def in_progress(raw: Msg, every_s: float) -> AsyncIterator[None]:
    """Tell JetStream the message is being worked on, so a short ack wait does not redeliver it
    while a live handler is busy, yet a dead process's messages come back within the ack wait."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every_s)  # the heartbeat period itself, not a wait for an event
            try:
                await raw.in_progress()
            except Exception as exc:  # noqa: BLE001 - a lost heartbeat only risks a redelivery
                log.debug("in-progress heartbeat failed: %s", exc)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def heartbeat_period(ack_wait_s: float) -> float:
    # Three beats per ack wait: one lost or late beat still leaves the message with its handler.
    return max(0.1, ack_wait_s / 3)
