"""Delivery settings that decide how fast a crash is recovered and whether acknowledged events survive."""

import asyncio
from pathlib import Path

import httpx
import nats
from nats.js.api import AckPolicy, ConsumerConfig

from contracts.events import ReleaseBlocked
from libs.bus import ensure_streams
from libs.consume import consume
from libs.client import publish_event
from libs.embedded_nats import EmbeddedNats
from libs.runtime import build_app, build_runtime
from libs.settings import Settings
from tests.conftest import running
from tests.support.poll import eventually

DURABLE = "test-delivery"


def blocked(release_id: str) -> ReleaseBlocked:
    return ReleaseBlocked(release_id=release_id, service="shop", environment="prod", source="test", reasons=["x"])


async def ack_wait_of(nats_url: str, durable: str) -> float:
    nc = await nats.connect(nats_url)
    try:
        return (await nc.jetstream().consumer_info("SLIPWAY_EVENTS", durable)).config.ack_wait
    finally:
        await nc.close()


async def test_an_existing_durable_takes_the_ack_wait_in_code_at_start(settings: Settings) -> None:
    """Before: JetStream bound an existing durable as it was, so an old 60 s ack wait stayed forever."""
    await ensure_streams(settings.nats_url)
    nc = await nats.connect(settings.nats_url)
    await nc.jetstream().add_consumer("SLIPWAY_EVENTS", ConsumerConfig(
        durable_name=DURABLE, name=DURABLE, filter_subject=ReleaseBlocked.subject, ack_policy=AckPolicy.EXPLICIT,
        ack_wait=60, max_deliver=settings.max_deliver + 1,
    ))
    await nc.close()
    runtime = build_runtime("test", settings)
    handled: list[str] = []

    async def handle(event: ReleaseBlocked) -> None:
        handled.append(event.release_id)

    consume(runtime.broker, settings, subject=ReleaseBlocked.subject, durable=DURABLE, model=ReleaseBlocked, handle=handle)
    async with running(build_app(runtime)):
        assert await ack_wait_of(settings.nats_url, DURABLE) == settings.ack_wait_s
        await publish_event(settings.nats_url, blocked("flows"))
        await eventually(lambda: handled == ["flows"], what="the event handled through the updated durable")


async def test_a_handler_longer_than_the_ack_wait_is_not_redelivered_under_itself(tmp_path: Path, nats_url: str) -> None:
    settings = Settings(nats_url=nats_url, data_dir=tmp_path / "data", ack_wait_s=0.6)
    await ensure_streams(nats_url)
    runtime = build_runtime("test", settings)
    deliveries: list[int] = []
    done = asyncio.Event()

    async def handle(event: ReleaseBlocked) -> None:
        deliveries.append(1)
        await asyncio.sleep(settings.ack_wait_s * 4)  # the slow work itself: four ack waits long
        done.set()

    consume(runtime.broker, settings, subject=ReleaseBlocked.subject, durable=DURABLE, model=ReleaseBlocked, handle=handle)
    async with running(build_app(runtime)):
        await publish_event(nats_url, blocked("slow"))
        await asyncio.wait_for(done.wait(), 20)
    assert len(deliveries) == 1


async def test_a_message_held_by_a_dead_consumer_comes_back_within_the_ack_wait(settings: Settings) -> None:
    """A consumer that fetched a message and died (connection gone, no ack) costs the ack wait, not a minute."""
    await ensure_streams(settings.nats_url)
    runtime = build_runtime("test", settings)
    handled: list[float] = []

    async def handle(event: ReleaseBlocked) -> None:
        handled.append(asyncio.get_running_loop().time())

    consume(runtime.broker, settings, subject=ReleaseBlocked.subject, durable=DURABLE, model=ReleaseBlocked, handle=handle)
    async with running(build_app(runtime)):
        pass  # creates the durable with the configured ack wait
    dying = await nats.connect(settings.nats_url)
    sub = await dying.jetstream().pull_subscribe(ReleaseBlocked.subject, durable=DURABLE, stream="SLIPWAY_EVENTS")
    await publish_event(settings.nats_url, blocked("held"))
    assert len(await sub.fetch(1, timeout=5)) == 1
    died_at = asyncio.get_running_loop().time()
    await dying.close()  # dies holding the message, without an ack
    async with running(build_app(runtime)):
        await eventually(lambda: handled, timeout=settings.ack_wait_s + 10, what="the held message redelivered")
    assert handled[0] - died_at <= settings.ack_wait_s + 2


def test_the_embedded_server_fsyncs_before_it_acknowledges(tmp_path: Path) -> None:
    with EmbeddedNats(tmp_path / "nats") as server:
        varz = httpx.get(f"{server.monitor_url}/varz", timeout=5, trust_env=False).json()
    assert varz["jetstream"]["config"]["sync_always"] is True
