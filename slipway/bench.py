"""`make bench`: slipway's throughput and latency next to ceilings measured in the same run.

Bounded in count and time; everything runs on an embedded nats-server on a loopback port and
SQLite files in a temporary directory, which are removed afterwards.
"""

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import nats
from rich.console import Console
from rich.table import Table

from contracts import subjects
from contracts.commands import VerifyAudit
from contracts.events import ReleaseBlocked
from libs.bus import ensure_streams
from libs.client import publish_event, send_command
from libs.embedded_nats import EmbeddedNats
from libs.settings import Settings

EVENTS = 2000
RELEASES = 30
console = Console()


async def raw_publish_rate(url: str, count: int) -> float:
    """Ceiling: nats-py JetStream publishes, each awaiting its ack."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    # A stream of its own, so the ceiling's messages never reach slipway's consumers.
    await js.add_stream(name="BENCH", subjects=["bench.raw"], storage="file")
    start = time.perf_counter()
    for n in range(count):
        await js.publish("bench.raw", b'{"n": %d}' % n, stream="BENCH")
    elapsed = time.perf_counter() - start
    await nc.close()
    return count / elapsed


async def raw_consume_rate(url: str, count: int) -> float:
    """Ceiling: a raw pull consumer fetching 100 at a time and acking each."""
    nc = await nats.connect(url)
    sub = await nc.jetstream().pull_subscribe("bench.raw", durable="bench-raw", stream="BENCH")
    start, seen = time.perf_counter(), 0
    while seen < count:
        for msg in await sub.fetch(100, timeout=5):
            await msg.ack()
            seen += 1
    elapsed = time.perf_counter() - start
    await nc.close()
    return count / elapsed


async def collector_ingest_rate(settings: Settings, count: int) -> float:
    """slipway: events appended to the hash-chained log per second (publish, consume, chain, commit)."""
    from services.metrics_collector.app import build

    app = build(settings)
    await app.start()
    try:
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        events = [ReleaseBlocked(release_id=f"b-{n}", service="bench", environment="prod", reasons=["bench"]) for n in range(count)]
        start = time.perf_counter()
        for chunk in range(0, count, 200):
            await asyncio.gather(*(js.publish(e.subject, e.model_dump_json().encode(), headers=e.headers())
                                   for e in events[chunk:chunk + 200]))
        deadline = start + 120
        while (await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit())).data["records"] < count:
            if time.perf_counter() > deadline:
                raise TimeoutError("the collector did not log every bench event within 120 s")
            await asyncio.sleep(0.5)  # polling (each poll re-hashes the whole log, so not too often)
        elapsed = time.perf_counter() - start
        await nc.close()
        return count / elapsed
    finally:
        await app.stop()


async def decision_latencies(settings: Settings, artifacts: Path, count: int) -> list[float]:
    """slipway: ReleaseRequested -> ReleaseApproved through the artifact-verifier and gatekeeper."""
    from services.artifact_verifier.app import build as verifier
    from services.gatekeeper.app import build as gatekeeper
    from tests.support.releases import release_for

    apps = [verifier(settings), gatekeeper(settings)]
    for app in apps:
        await app.start()
    artifact = artifacts / "bench.pyz"
    artifact.write_bytes(b"bench" * 1000)
    latencies: list[float] = []
    nc = await nats.connect(settings.nats_url)
    try:
        for n in range(count):
            request = release_for(artifact, f"1.0.{n}", service="bench")
            approved = asyncio.get_running_loop().create_future()

            async def on_approved(msg, request=request, approved=approved):  # type: ignore[no-untyped-def]
                if request.release_id.encode() in msg.data and not approved.done():
                    approved.set_result(time.perf_counter())

            sub = await nc.subscribe(subjects.RELEASE_APPROVED, cb=on_approved)
            start = time.perf_counter()
            await publish_event(settings.nats_url, request)
            latencies.append((await asyncio.wait_for(approved, 30)) - start)
            await sub.unsubscribe()
    finally:
        await nc.close()
        for app in apps:
            await app.stop()
    return latencies


async def verification_latencies(settings: Settings, scratch: Path, count: int) -> tuple[list[float], list[float]]:
    """slipway: ReleaseRequested -> ArtifactVerified alone, then beside a hanging URL and a 0.5 GiB hash."""
    from services.artifact_verifier.app import build
    from tests.support.releases import release_for

    async def say_nothing(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    held: list[asyncio.StreamWriter] = []
    hanging = await asyncio.start_server(say_nothing, "127.0.0.1", 0)
    big = scratch / "big.pyz"
    with big.open("wb") as handle:
        handle.truncate(1 << 29)  # sparse: hashed for real, written to disk not at all
    # The hanging download gives up after 3 s, so stopping the verifier does not wait out the default 30 s.
    port = hanging.sockets[0].getsockname()[1]
    app = build(settings.model_copy(update={"artifact_read_timeout_s": 3.0, "artifact_hosts": [f"127.0.0.1:{port}"]}))
    await app.start()
    nc = await nats.connect(settings.nats_url)
    verified: dict[str, asyncio.Future[float]] = {}

    async def on_verified(msg):  # type: ignore[no-untyped-def]
        release_id = json.loads(msg.data)["release_id"]
        if release_id in verified and not verified[release_id].done():
            verified[release_id].set_result(time.perf_counter())

    async def timed(n: int) -> float:
        artifact = scratch / f"verify-{n}.pyz"
        artifact.write_bytes(b"verify %d" % n * 1000)
        request = release_for(artifact, f"2.0.{n}", service="bench-verify")
        verified[request.release_id] = asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        await publish_event(settings.nats_url, request)
        return (await asyncio.wait_for(verified[request.release_id], 30)) - start

    try:
        await nc.subscribe(subjects.ARTIFACT_VERIFIED, cb=on_verified)
        alone = [await timed(n) for n in range(count)]
        hashed = release_for(big, "9.0.0", service="bench-slow", digest="sha256:" + "1" * 64)
        never_answered = hashed.artifact.model_copy(update={"uri": f"http://127.0.0.1:{port}/app.pyz"})
        for request in (hashed, hashed.model_copy(update={"release_id": "bench-hanging", "artifact": never_answered})):
            await publish_event(settings.nats_url, request)
        beside = [await timed(n) for n in range(count, 2 * count)]
    finally:
        await nc.close()
        await app.stop()
        for writer in held:
            writer.close()
        hanging.close()
    return alone, beside


async def round_trip_latencies(url: str, count: int) -> list[float]:
    """Ceiling: a core NATS request/reply round trip on the same server."""
    nc = await nats.connect(url)

    async def echo(msg):  # type: ignore[no-untyped-def]
        await msg.respond(msg.data)

    await nc.subscribe("bench.echo", cb=echo)
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        await nc.request("bench.echo", b"x", timeout=5)
        latencies.append(time.perf_counter() - start)
    await nc.close()
    return latencies


async def unsynced_publish_rate(scratch: Path, count: int) -> float:
    """Ceiling for durability's cost: the same publishes on a server with JetStream's default 2-minute flush."""
    with EmbeddedNats(scratch / "nats-default-sync", sync_interval="2m") as server:
        return await raw_publish_rate(server.url, count)


async def run(scratch: Path) -> None:
    with EmbeddedNats(scratch / "nats") as server:
        settings = Settings(
            nats_url=server.url, data_dir=scratch / "data", log_level="WARNING", artifact_dirs=[scratch]
        )
        await ensure_streams(server.url)
        table = Table(title=f"slipway bench (embedded nats-server, SQLite, {EVENTS} events, {RELEASES} releases)")
        for column in ("path", "slipway", "ceiling (same run)", "ceiling path"):
            table.add_column(column)
        publish = await raw_publish_rate(server.url, EVENTS)
        unsynced = await unsynced_publish_rate(scratch, EVENTS)
        table.add_row("JetStream publish with ack, fsync before every ack (slipway's server)", f"{publish:,.0f} /s",
                      f"{unsynced:,.0f} /s", "same publishes, JetStream's default 2-minute flush")
        consume = await raw_consume_rate(server.url, EVENTS)
        ingest = await collector_ingest_rate(settings, EVENTS)
        table.add_row("events logged by the metrics-collector", f"{ingest:,.0f} /s",
                      f"{min(publish, consume):,.0f} /s", "raw JetStream publish with ack / fetch(100)+ack, slower of two")
        decisions = await decision_latencies(settings, scratch, RELEASES)
        trips = await round_trip_latencies(server.url, RELEASES)
        table.add_row("ReleaseRequested -> ReleaseApproved (median)", f"{statistics.median(decisions) * 1000:.1f} ms",
                      f"{statistics.median(trips) * 1000:.2f} ms", "core NATS request/reply round trip")
        table.add_row("ReleaseRequested -> ReleaseApproved (max)", f"{max(decisions) * 1000:.1f} ms",
                      f"{max(trips) * 1000:.2f} ms", "")
        alone, beside = await verification_latencies(settings, scratch, 10)
        table.add_row("ReleaseRequested -> ArtifactVerified beside a hanging URL and 0.5 GiB hash (median)",
                      f"{statistics.median(beside) * 1000:.1f} ms", f"{statistics.median(alone) * 1000:.1f} ms",
                      "the same, verified alone")
        console.print(table)


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("faststream").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="slipway-bench-") as scratch:
        asyncio.run(run(Path(scratch)))


if __name__ == "__main__":
    main()
