"""The collector's pull loops: they stop promptly, survive idle periods and a broker restart, append
batches that keep the chain intact, and log a duplicate once."""

import asyncio
import time
from pathlib import Path

import nats

from contracts import subjects
from contracts.commands import CommandResult, QueryReleases, VerifyAudit
from contracts.events import ReleaseBlocked
from contracts.identity import Kind
from libs.bus import ensure_streams
from libs.client import connected, publish_event, send_command
from libs.embedded_nats import EmbeddedNats
from libs.nats_auth import ADMIN, ONCALL, bootstrap, write_authorization
from libs.settings import Settings
from services.metrics_collector.app import FETCH_TIMEOUT_S, build
from tests.conftest import running
from tests.support.poll import eventually
from tests.support.releases import release_for

STOP_BOUND_S = 3.0


def blocked(n: int, prefix: str = "flood") -> ReleaseBlocked:
    return ReleaseBlocked(release_id=f"{prefix}-{n}", service="shop", environment="prod", reasons=["test"])


async def logged(settings: Settings, count: int, timeout: float = 10.0) -> CommandResult:
    async def audit_when_complete() -> CommandResult | None:
        try:
            audit = await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit())
        except Exception:  # noqa: BLE001 - the server may still be coming back; the deadline decides
            return None
        return audit if audit.ok and audit.data["records"] >= count else None

    return await eventually(audit_when_complete, timeout, f"an audit log of {count} records")


async def flood(url: str, events: list[ReleaseBlocked], copies: bool = False) -> None:
    """Publish fast, awaiting the acks in chunks; with `copies`, each event also under a second msg id."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for start in range(0, len(events), 200):
        chunk = events[start:start + 200]
        sends = [js.publish(e.subject, e.model_dump_json().encode(), headers=e.headers()) for e in chunk]
        if copies:  # past the stream's duplicate window as far as JetStream can tell: only the log can spot them
            sends += [js.publish(e.subject, e.model_dump_json().encode(), headers={"Nats-Msg-Id": f"{e.event_id}-copy"})
                      for e in chunk]
        await asyncio.gather(*sends)
    await nc.close()


async def test_the_collector_stops_within_a_bound_while_idle_and_while_busy(settings: Settings) -> None:
    app = build(settings)
    await app.start()
    await publish_event(settings.nats_url, blocked(0))
    await logged(settings, 1)
    await asyncio.sleep(FETCH_TIMEOUT_S * 2)  # the idle period itself: fetches come back empty and go out again
    began = time.monotonic()
    await app.stop()  # idle: its loops sit in a fetch (left to the drain, one used to cost its 30 s timeout)
    assert time.monotonic() - began < STOP_BOUND_S

    app = build(settings)
    await app.start()
    await flood(settings.nats_url, [blocked(n) for n in range(1, 2001)])
    began = time.monotonic()
    await app.stop()  # busy: a batch may be in hand; it finishes, nothing more is fetched
    assert time.monotonic() - began < STOP_BOUND_S
    async with running(build(settings)):  # what was not acknowledged comes back, once
        audit = await logged(settings, 2001, timeout=60)
    assert audit.ok and audit.data["records"] == 2001


async def test_the_collector_keeps_consuming_after_an_idle_period_longer_than_a_fetch(settings: Settings) -> None:
    async with running(build(settings)):
        await publish_event(settings.nats_url, blocked(0))
        await logged(settings, 1)
        await asyncio.sleep(FETCH_TIMEOUT_S * 3)  # the idle period itself: several fetches come back empty
        await publish_event(settings.nats_url, blocked(1))
        audit = await logged(settings, 2)
    assert audit.ok and audit.data["records"] == 2


async def test_the_collector_keeps_consuming_after_the_server_restarts(settings: Settings, nats_server: EmbeddedNats) -> None:
    async with running(build(settings)):
        await publish_event(settings.nats_url, blocked(0))
        await logged(settings, 1)
        nats_server.stop()
        nats_server.start()  # same port, same JetStream data: the durables are still there
        await publish_event(settings.nats_url, blocked(1))
        audit = await logged(settings, 2, timeout=30)
    assert audit.ok and audit.data["records"] == 2


async def test_a_flood_with_every_event_twice_is_logged_once_and_the_chain_verifies(settings: Settings) -> None:
    events = [blocked(n) for n in range(1000)]
    async with running(build(settings)):
        await flood(settings.nats_url, events, copies=True)
        audit = await logged(settings, len(events), timeout=60)
        status = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(limit=5))
        await eventually(lambda: all_acknowledged(settings.nats_url, 2 * len(events)), 30, "every copy acknowledged")
        again = await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit())
    assert audit.ok, audit.message
    assert again.ok and again.data["records"] == len(events), again.message
    assert status.data["total"] == len(events) and len(status.data["releases"]) == 5


async def all_acknowledged(url: str, published: int) -> bool:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(subjects.EVENTS_STREAM, "metrics-collector-events")
    finally:
        await nc.close()
    return info.ack_floor.stream_seq == published and not info.num_ack_pending


def test_nothing_connects_when_the_collector_is_built(tmp_path: Path) -> None:
    build(Settings(nats_url="nats://127.0.0.1:1", data_dir=tmp_path / "data"))
    assert not (tmp_path / "data").exists()


async def test_on_a_secured_bus_an_event_whose_publisher_cannot_be_verified_is_logged_flagged(tmp_path: Path) -> None:
    store = bootstrap(tmp_path / "data", ("metrics-collector",), ("payments",), person=None)
    write_authorization(tmp_path / "nats", store.registry())
    artifact = tmp_path / "app.pyz"
    artifact.write_bytes(b"dummy artifact")
    signed, unsigned = release_for(artifact, "1.0.0"), release_for(artifact, "2.0.0")
    ci, oncall = store.seed_file(Kind.CI, "payments"), store.seed_file(Kind.ONCALL, ONCALL)
    with EmbeddedNats(tmp_path / "nats", authorization=True) as server:
        await ensure_streams(server.url, store.seed_file(Kind.ADMIN, ADMIN))
        settings = Settings(nats_url=server.url, data_dir=tmp_path / "data", identity_registry=store.registry_path,
                            credentials=store.seed_file(Kind.SERVICE, "metrics-collector"))
        async with running(build(settings)):  # its durables, fetches and inbox under its own identity
            await publish_event(server.url, signed, ci)
            async with connected(server.url, ci) as nc:  # the CI's connection, but no signature on the event
                await nc.jetstream().publish(unsigned.address(), unsigned.model_dump_json().encode(),
                                             headers=unsigned.headers(), stream=subjects.EVENTS_STREAM)

            async def both_logged() -> CommandResult | None:
                audit = await send_command(server.url, subjects.CMD_AUDIT_VERIFY, VerifyAudit(), credentials=oncall)
                return audit if audit.data["records"] == 2 else None

            audit = await eventually(both_logged, 10, "both events in the log")
    assert audit.ok and audit.data["flagged_count"] == 1, audit.message
    assert audit.data["flagged"][0]["reason"].startswith("publisher not verified: unsigned")
