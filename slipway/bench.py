"""`make bench`: slipway's throughput and latency next to ceilings measured in the same run.

Bounded in count and time; everything runs on an embedded nats-server on a loopback port and
SQLite files in a temporary directory, which are removed afterwards.
"""

import asyncio
import base64
import shutil
import json
import statistics
import tempfile
import time
import timeit
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import nacl.signing
import nats
import nkeys
from rich.console import Console
from rich.table import Table

from contracts import catalogue, subjects
from contracts.commands import FreezeEnvironment
from contracts.envelope import utcnow
from contracts.identity import Kind
from libs.bus import ensure_streams
from libs.client import publish_event
from libs.command_signing import command_refusal, sign_command
from libs.embedded_nats import EmbeddedNats
from libs.identities import IdentityStore, verify
from libs.nats_auth import ADMIN, bootstrap, connect_options, write_authorization
from libs.settings import Settings
from libs.signing import SIGNATURE_HEADER, Signer, check_event, event_bytes
from slipway.bench_collector import collector_table
from slipway.bench_dashboard import dashboard_figures, dashboard_rows

EVENTS = 2000
RELEASES = 60  # each on the open and on the secured path, taking turns
DASHBOARD_EVENTS = 30  # published one after another, each awaited on the page
MICRO_CALLS = 1000  # per timing loop; five loops per figure, the best one counts
BENCH_TEAM = "bench"  # owns the bench's service in the secured run's catalogue; its CI identity publishes
BENCH_PERSON = "bench-person"
console = Console(width=150)  # wide enough that the table's rows do not wrap when piped


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


@dataclass
class DecisionPath:
    """The artifact-verifier and gatekeeper in this process, and how a CI system publishes to them."""

    url: str
    apps: list[Any]
    listener: nats.NATS  # sees ReleaseApproved (and, on the secured server, every event: counted)
    team: str = "payments"
    credentials: Path | None = None  # the CI identity's seed; None on the open server
    seen: Counter[str] = field(default_factory=Counter)

    async def time_release(self, artifact: Path, version: str) -> tuple[float, float]:
        """(publish_event returned, its ReleaseApproved seen), in seconds after the ReleaseRequested was
        published (signed when the path has credentials: connect as the CI identity, sign, JetStream ack)."""
        from tests.support.releases import release_for

        # A service per release: with no deployer to report it done, a release would hold its service's slot.
        request = release_for(artifact, version, service=f"bench-{version.replace('.', '-')}", team=self.team)
        approved = asyncio.get_running_loop().create_future()

        async def on_approved(msg):  # type: ignore[no-untyped-def]
            if request.release_id.encode() in msg.data and not approved.done():
                approved.set_result(time.perf_counter())

        sub = await self.listener.subscribe(subjects.RELEASE_APPROVED, cb=on_approved)
        try:
            start = time.perf_counter()
            await publish_event(self.url, request, self.credentials)
            published = time.perf_counter()
            return published - start, (await asyncio.wait_for(approved, 30)) - start
        finally:
            await sub.unsubscribe()

    async def stop(self) -> None:
        await self.listener.close()
        for app in self.apps:
            await app.stop()


async def start_decision_path(verifier: Settings, gatekeeper: Settings, listener: Path | None = None,
                              credentials: Path | None = None, team: str = "payments") -> DecisionPath:
    from services.artifact_verifier.app import build as build_verifier
    from services.gatekeeper.app import build as build_gatekeeper

    apps = [build_verifier(verifier), build_gatekeeper(gatekeeper)]
    for app in apps:
        await app.start()
    nc = await nats.connect(verifier.nats_url, **connect_options(listener))
    path = DecisionPath(verifier.nats_url, apps, nc, team, credentials)
    if credentials is not None:
        async def count(msg):  # type: ignore[no-untyped-def]
            if (msg.headers or {}).get(SIGNATURE_HEADER):
                path.seen[(msg.headers or {}).get("slipway-type", msg.subject)] += 1

        await nc.subscribe(subjects.EVENTS_WILDCARD, cb=count)
    return path


@dataclass(frozen=True)
class SecuredBus:
    """A server with authorization, the identities of a real stack, and the bench's service owned by a team."""

    server: EmbeddedNats
    store: IdentityStore

    def settings(self, base: Settings, service: str) -> Settings:
        return base.model_copy(update={
            "nats_url": self.server.url, "data_dir": self.store.directory.parent,
            "credentials": self.store.seed_file(Kind.SERVICE, service), "identity_registry": self.store.registry_path,
            "service_catalogue": self.store.directory.parent / "services.yaml",
        })

    def seed(self, kind: Kind, name: str) -> Path:
        return self.store.seed_file(kind, name)


def bench_catalogue(team: str) -> str:
    # A risk profile that scores 0 (infra/policies/risk.yaml): its standard releases are pre-approved, so the
    # decision path measures verification and the gatekeeper's rules, not a wait for a person's approval.
    return f"services:\n  \"bench*\": {{team: {team}, tier: 4, visibility: internal, reach: few}}\n"


def bench_policy(directory: Path) -> Path:
    """The committed policy with no limit on deployments in flight: nothing deploys in the bench to free a slot."""
    directory.mkdir(parents=True, exist_ok=True)
    for source in Path(Settings().policy_dir).glob("*.yaml"):
        shutil.copy(source, directory / source.name)
    (directory / "concurrency.yaml").write_text("default: 100\n")  # the most policy allows; more than the bench sends
    return directory


@contextmanager
def secured_bus(scratch: Path) -> Iterator[SecuredBus]:
    """As slipway/supervisor.Stack wires it: bootstrap, write_authorization, EmbeddedNats(authorization=True)."""
    data_dir = scratch / "secured"
    store = bootstrap(data_dir, catalogue.SERVICES, (BENCH_TEAM,), BENCH_PERSON)
    (data_dir / "services.yaml").write_text(bench_catalogue(BENCH_TEAM))
    write_authorization(data_dir / "nats", store.registry())
    with EmbeddedNats(data_dir / "nats", authorization=True) as server:
        yield SecuredBus(server, store)


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)  # ReleaseRequested -> ReleaseApproved
    publishes: list[float] = field(default_factory=list)  # the CI's publish_event alone, part of the above

    def add(self, publish: float, latency: float) -> None:
        self.publishes.append(publish)
        self.latencies.append(latency)

    def services(self) -> list[float]:
        """From the request's JetStream ack to the approval: the artifact-verifier's and gatekeeper's part."""
        return [latency - publish for publish, latency in zip(self.publishes, self.latencies, strict=True)]


@dataclass
class DecisionRun:
    open: Samples = field(default_factory=Samples)
    secured: Samples = field(default_factory=Samples)
    events: dict[str, float] = field(default_factory=dict)  # signed events per release, by type (counted)
    checks: dict[str, float] = field(default_factory=dict)  # deliveries (each one signature check) per release


async def decision_latencies(settings: Settings, bus: SecuredBus, artifacts: Path, count: int) -> DecisionRun:
    """ReleaseRequested -> ReleaseApproved through the artifact-verifier and gatekeeper, twice, interleaved:
    on the open server without identities, and on the secured one (every event signed and checked).

    One release on each in turn, so whatever else loads the machine meanwhile loads both alike.
    """
    await ensure_streams(bus.server.url, bus.seed(Kind.ADMIN, ADMIN))
    ci = bus.seed(Kind.CI, BENCH_TEAM)
    paths = [
        await start_decision_path(settings, settings),
        await start_decision_path(bus.settings(settings, "artifact-verifier"), bus.settings(settings, "gatekeeper"),
                                  listener=ci, credentials=ci, team=BENCH_TEAM),
    ]
    artifact = artifacts / "bench.pyz"
    artifact.write_bytes(b"bench" * 1000)
    run = DecisionRun()
    try:
        for n in range(count):
            for path, samples in zip(paths, (run.open, run.secured), strict=True):
                samples.add(*await path.time_release(artifact, f"1.0.{n}"))
        run.events = {name: seen / count for name, seen in sorted(paths[1].seen.items())}
        run.checks = await deliveries_per_consumer(bus.server.url, bus.seed(Kind.ADMIN, ADMIN), count)
    finally:
        for path in paths:
            await path.stop()
    return run


async def deliveries_per_consumer(url: str, admin: Path, releases: int) -> dict[str, float]:
    """Each delivery to a durable is one check_event: JetStream's own count of them, per release."""
    nc = await nats.connect(url, **connect_options(admin))
    try:
        infos = await nc.jetstream().consumers_info(subjects.EVENTS_STREAM)
        return {info.name: (info.delivered.consumer_seq or 0) / releases for info in infos if info.delivered}
    finally:
        await nc.close()


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


def per_call_us(calls: dict[str, Callable[[], object]], number: int = MICRO_CALLS, repeat: int = 5) -> dict[str, float]:
    """timeit's way, µs per call: the best of `repeat` loops of `number` calls each (the least disturbed).

    The loops take turns across `calls`, so a burst of load from elsewhere on the machine falls on
    a figure and its ceiling alike rather than on one of them.
    """
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeat):
        for name, call in calls.items():
            best[name] = min(best[name], timeit.timeit(call, number=number))
    return {name: seconds / number * 1e6 for name, seconds in best.items()}


@dataclass(frozen=True)
class MicroCosts:
    sign: float  # Signer.headers: what the outbox and publish_event add per event
    sign_floor: float  # the same signature with the seed decoded once
    check: float  # check_event with the registry cached: what each consumer adds per delivery
    verify: float  # its ed25519 verify alone (libs.identities.verify)
    verify_floor: float  # PyNaCl's verify with the key decoded once
    command: float  # a person's command: registry lookup + command_refusal, as CommandGate.check does
    command_verify: float  # its ed25519 verify alone


def micro_costs(store: IdentityStore) -> MicroCosts:
    """Each cost on the bytes slipway really signs: a release request as its team's CI identity, and a
    person's freeze command; next to the bare ed25519 operation it is built on."""
    from tests.support.releases import release_for

    scratch = store.directory.parent
    artifact = scratch / "micro.pyz"
    artifact.write_bytes(b"micro" * 1000)
    request = release_for(artifact, "3.0.0", service="bench", team=BENCH_TEAM)
    subject, payload = request.address(), request.model_dump_json().encode()
    signer = Signer.from_seed_file(store.seed_file(Kind.CI, BENCH_TEAM))
    headers = signer.headers(subject, payload)
    signing_key = nacl.signing.SigningKey(nkeys.decode_seed(signer.seed)[1])  # what nkeys does on every sign
    record, refused = check_event(store, subject, payload, headers)
    if record is None or refused:  # timing a refusal would time the wrong path
        raise RuntimeError(f"the bench's own signed event does not check: {refused}")
    signed_bytes, signature = event_bytes(subject, payload), headers[SIGNATURE_HEADER]
    raw_signature = base64.urlsafe_b64decode(signature + "==")
    verify_key = signing_key.verify_key

    person = next(r for r in store.registry().identities if r.kind is Kind.PERSON)
    command = FreezeEnvironment(environment="prod", starts_at=utcnow(), ends_at=utcnow() + timedelta(hours=1),
                                reason="bench")
    order = sign_command(subjects.CMD_FREEZE, command, person.id, store.seed(Kind.PERSON, person.name))
    window = timedelta(seconds=Settings().command_window_s)
    if refused := command_refusal(order, subjects.CMD_FREEZE, person, utcnow(), window):
        raise RuntimeError(f"the bench's own signed command does not check: {refused}")
    return MicroCosts(**per_call_us({
        "sign": lambda: signer.headers(subject, payload),
        "sign_floor": lambda: signing_key.sign(signed_bytes),
        "check": lambda: check_event(store, subject, payload, headers),
        "verify": lambda: verify(record.public_key, signed_bytes, signature),
        "verify_floor": lambda: verify_key.verify(signed_bytes, raw_signature),
        "command": lambda: command_refusal(order, subjects.CMD_FREEZE, store.get(person.id), utcnow(), window),
        "command_verify": lambda: verify(person.public_key, order.signed_bytes(), order.signature),
    }))


def shift(before: list[float], after: list[float]) -> float:
    """How much later the median of `after` is than that of `before`, in ms."""
    return (statistics.median(after) - statistics.median(before)) * 1000


def auth_cost_ms(events: dict[str, float], checks: float, costs: MicroCosts) -> float:
    """CPU the signatures take per release: every event signed once, each delivery checked once."""
    return (sum(events.values()) * costs.sign + checks * costs.check) / 1000


def stack_checks(events: dict[str, float]) -> float:
    """Checks per release in a full stack: each event's consumers (contracts.catalogue) check it once."""
    return sum(count * len(catalogue.consumers_of(name)) for name, count in events.items())


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
    with EmbeddedNats(scratch / "nats") as server, secured_bus(scratch) as bus:
        (scratch / "services.yaml").write_text(bench_catalogue("payments"))
        settings = Settings(
            nats_url=server.url, data_dir=scratch / "data", log_level="WARNING", artifact_dirs=[scratch],
            service_catalogue=scratch / "services.yaml", policy_dir=bench_policy(scratch / "policy"),
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
        table.add_row(f"JetStream fetch(100) + ack, {EVENTS} events", f"{consume:,.0f} /s", f"{publish:,.0f} /s",
                      "its publish with ack (above)")
        trips = await round_trip_latencies(server.url, RELEASES)
        # Printed at once: the metrics-collector's figures do not wait on the decision path's.
        console.print(await collector_table(settings, scratch, statistics.median(trips) * 1000))
        decisions = await decision_latencies(settings, bus, scratch, RELEASES)
        costs = micro_costs(bus.store)  # the services are stopped by now: nothing else in this process runs
        decision_rows(table, decisions, trips)
        auth_rows(table, decisions, costs)
        alone, beside = await verification_latencies(settings, scratch, 10)
        table.add_row("ReleaseRequested -> ArtifactVerified beside a hanging URL and 0.5 GiB hash (median)",
                      f"{statistics.median(beside) * 1000:.1f} ms", f"{statistics.median(alone) * 1000:.1f} ms",
                      "the same, verified alone")
        dashboard_rows(table, await dashboard_figures(settings, DASHBOARD_EVENTS))
        console.print(table)
        console.print(per_release_note(decisions, costs))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def decision_rows(table: Table, run: DecisionRun, trips: list[float]) -> None:
    opened, secured = run.open.latencies, run.secured.latencies
    path = "ReleaseRequested -> ReleaseApproved"
    table.add_row(f"{path}, open server, no identities (median)", ms(statistics.median(opened)),
                  f"{statistics.median(trips) * 1000:.2f} ms", "core NATS request/reply round trip")
    table.add_row(f"{path}, open server, no identities (max)", ms(max(opened)), f"{max(trips) * 1000:.2f} ms", "")
    table.add_row(f"{path}, authorization, every event signed and checked (median)", ms(statistics.median(secured)),
                  ms(statistics.median(opened)), "the same on the open server (releases taking turns)")
    table.add_row(f"{path}, authorization, every event signed and checked (max)", ms(max(secured)), ms(max(opened)), "")
    table.add_row("  of which the CI's publish_event (connect as ci:bench, sign, JetStream ack) (median)",
                  ms(statistics.median(run.secured.publishes)), ms(statistics.median(run.open.publishes)),
                  "the same on the open server: no identity, unsigned")
    table.add_row("  of which the services' part (request acknowledged -> approval seen) (median)",
                  ms(statistics.median(run.secured.services())), ms(statistics.median(run.open.services())),
                  "the same on the open server")


def auth_rows(table: Table, run: DecisionRun, costs: MicroCosts) -> None:
    signs, checks = sum(run.events.values()), sum(run.checks.values())
    table.add_row(f"auth and signatures per release ({signs:g} events signed, {checks:g} checks on this path)",
                  f"{shift(run.open.latencies, run.secured.latencies):+.2f} ms",
                  f"{auth_cost_ms(run.events, checks, costs):.2f} ms",
                  "slipway: median with auth - median open; ceiling: signs x sign + checks x check (rows below)")
    table.add_row("sign an event (Signer.headers)", f"{costs.sign:.0f} µs", f"{costs.sign_floor:.0f} µs",
                  "PyNaCl ed25519 sign, seed decoded once")
    table.add_row("check a signed event (check_event, registry cached)", f"{costs.check:.0f} µs",
                  f"{costs.verify:.0f} µs", "its ed25519 verify alone (libs.identities.verify)")
    table.add_row("ed25519 verify (libs.identities.verify)", f"{costs.verify:.0f} µs",
                  f"{costs.verify_floor:.0f} µs", "PyNaCl verify, key decoded once")
    table.add_row("check a person's command (registry lookup + command_refusal)", f"{costs.command:.0f} µs",
                  f"{costs.command_verify:.0f} µs", "its ed25519 verify alone")


def per_release_note(decisions: DecisionRun, costs: MicroCosts) -> str:
    full = stack_checks(decisions.events)
    events = ", ".join(f"{name} {count:g}" for name, count in decisions.events.items())
    checks = ", ".join(f"{name} {count:g}" for name, count in decisions.checks.items())
    return (f"Per release on the secured path (counted in this run): signed events {events}; checks (JetStream "
            f"deliveries) {checks}. A full stack checks each event once per consumer (contracts.catalogue, "
            f"metrics-collector included): {full:g} checks, {auth_cost_ms(decisions.events, full, costs):.2f} ms "
            f"of CPU per release, spread over the services' processes.")


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("faststream").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="slipway-bench-") as scratch:
        asyncio.run(run(Path(scratch)))


if __name__ == "__main__":
    main()
