"""libs.consume on slipway's own pull loop: it keeps consuming after idle periods longer than a fetch
and after nats-server restarts, and a stop is bounded: a handler in flight finishes, or is cancelled
after the broker's grace and its message comes back."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import nats
import pytest

from contracts import subjects
from contracts.events import ReleaseBlocked
from libs.bus import Broker, ensure_streams, make_broker
from libs.client import publish_event
from libs.consume import FETCH_TIMEOUT_S, consume
from libs.embedded_nats import EmbeddedNats
from libs.settings import Settings
from tests.support.poll import eventually

DURABLE = "test-consume"
STOP_BOUND_S = 2.0  # an idle stop, or the grace, plus this at most
GRACE_S = 1.0


def blocked(release_id: str) -> ReleaseBlocked:
    return ReleaseBlocked(release_id=release_id, service="shop", environment="prod", source="test", reasons=["x"])


@asynccontextmanager
async def consuming(broker: Broker, settings: Settings, handle: Callable[[ReleaseBlocked], Awaitable[None]],
                    workers: int = 1) -> AsyncIterator[Broker]:
    await ensure_streams(settings.nats_url)
    consume(broker, settings, subject=ReleaseBlocked.subject, durable=DURABLE, model=ReleaseBlocked, handle=handle,
            max_workers=workers)
    async with broker:
        await broker.start()
        yield broker


async def unacknowledged(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(subjects.EVENTS_STREAM, DURABLE)
    finally:
        await nc.close()
    return info.num_ack_pending + info.num_pending


async def unacknowledged_is_zero(url: str) -> bool:
    return await unacknowledged(url) == 0


async def test_a_consumer_keeps_consuming_after_idle_periods_longer_than_a_fetch_and_logs_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[str] = []

    async def handle(event: ReleaseBlocked) -> None:
        handled.append(event.release_id)

    caplog.set_level(logging.WARNING)
    async with consuming(make_broker("test", settings), settings, handle):
        for n in range(2):
            await publish_event(settings.nats_url, blocked(f"after-idle-{n}"))
            await eventually(lambda: len(handled) == n + 1, what=f"event {n} handled")
            await asyncio.sleep(FETCH_TIMEOUT_S * 2.5)  # the idle period itself: fetches come back empty and go out again
        began = time.monotonic()
    assert time.monotonic() - began < STOP_BOUND_S  # idle: the fetch in flight is cancelled, not waited out
    assert handled == ["after-idle-0", "after-idle-1"]
    # Before: FastStream's fetch task died on nats-py's TimeoutError, logged a traceback and was restarted.
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_a_consumer_keeps_consuming_after_the_server_restarts(settings: Settings, nats_server: EmbeddedNats) -> None:
    handled: list[str] = []

    async def handle(event: ReleaseBlocked) -> None:
        handled.append(event.release_id)

    async with consuming(make_broker("test", settings), settings, handle):
        for n in range(2):
            await publish_event(settings.nats_url, blocked(f"restart-{n}"))
            await eventually(lambda: len(handled) == n + 1, timeout=30, what=f"event {n} handled")
            # Its ack is a publish the server may not have read yet: stopped before, it would redeliver.
            await eventually(lambda: unacknowledged_is_zero(settings.nats_url), what=f"event {n} acknowledged")
            nats_server.stop()
            nats_server.start()  # same port, same JetStream data: the durable is still there
        await publish_event(settings.nats_url, blocked("restart-2"))
        await eventually(lambda: len(handled) >= 3, timeout=30, what="the event after two restarts handled")
    assert handled == ["restart-0", "restart-1", "restart-2"]


async def test_a_stop_lets_a_handler_in_flight_finish_and_acks_it(settings: Settings) -> None:
    started, finished = asyncio.Event(), []

    async def handle(event: ReleaseBlocked) -> None:
        started.set()
        await asyncio.sleep(GRACE_S / 2)  # the work itself, shorter than the grace
        finished.append(event.release_id)

    broker = Broker(settings.nats_url, graceful_timeout=GRACE_S)
    async with consuming(broker, settings, handle):
        await publish_event(settings.nats_url, blocked("in-flight"))
        await asyncio.wait_for(started.wait(), 10)
        began = time.monotonic()
    assert time.monotonic() - began < GRACE_S + STOP_BOUND_S
    assert finished == ["in-flight"]
    assert await unacknowledged(settings.nats_url) == 0


@pytest.mark.parametrize("workers", [1, 4])
async def test_a_handler_past_the_grace_is_cancelled_and_its_message_comes_back(settings: Settings, workers: int) -> None:
    started, cancelled = asyncio.Event(), []

    async def stuck(event: ReleaseBlocked) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a handler that never finishes on its own
        except asyncio.CancelledError:
            cancelled.append(event.release_id)
            raise

    broker = Broker(settings.nats_url, graceful_timeout=GRACE_S)
    async with consuming(broker, settings, stuck, workers):
        await publish_event(settings.nats_url, blocked("stuck"))
        await asyncio.wait_for(started.wait(), 10)
        began = time.monotonic()
    assert time.monotonic() - began < GRACE_S + STOP_BOUND_S
    assert cancelled == ["stuck"]
    assert await unacknowledged(settings.nats_url) == 1  # never acked: JetStream delivers it again
