"""`make bench`, the metrics-collector's part: its append rate under a flood, next to plain sqlite3
doing the same chained inserts in the same run; and its queries at 10^4, 10^5 and 10^6 logged events,
each log written by the bulk seeder (bench_seed: a few minutes at 10^6, where the collector's own
append use case takes tens of minutes).

    python -m slipway.bench_collector    # the query rows alone
"""

import asyncio
import hashlib
import os
import tempfile
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
from rich.table import Table
from sqlalchemy import create_engine

from contracts import subjects
from contracts.bottleneck_queries import QueryBottlenecks
from contracts.commands import CommandResult, QueryDora, QueryReleases, VerifyAudit
from contracts.dora_queries import QueryDoraTeams
from contracts.events import ReleaseBlocked
from libs.bus import ensure_streams
from libs.client import connected, send_command
from libs.embedded_nats import EmbeddedNats
from libs.settings import Settings
from services.metrics_collector import domain
from slipway.bench_audit import audit_rows, show_probes, with_key
from slipway.bench_bus import bus_alone_rate

FLOOD = 20_000
FLOOD_DEADLINE_S = 300.0


def flood_events(count: int, prefix: str = "flood") -> list[ReleaseBlocked]:
    # One release each: every event also adds a row to the release-status projection.
    return [ReleaseBlocked(release_id=f"{prefix}-{n}", service="bench", environment="prod", reasons=["bench"])
            for n in range(count)]


async def publish_backlog(url: str, events: list[ReleaseBlocked]) -> None:
    """Publish everything before the collector starts, so its rate is the collector's alone."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for start in range(0, len(events), 500):
        await asyncio.gather(*(js.publish(e.subject, e.model_dump_json().encode(), headers=e.headers())
                               for e in events[start:start + 500]))
    await nc.close()


async def collector_append_rate(settings: Settings, count: int) -> "Flood":
    """slipway: a backlog of `count` events drained into the hash-chained log (fetch, check, chain, project,
    commit, ack) by the collector in a process of its own, as `slipway up` runs it, per second from its first
    committed batch to its last (its start-up, imports and migrations left out); and what `audit verify`
    says afterwards."""
    from services.metrics_collector.app import EVENTS_DURABLE

    await publish_backlog(settings.nats_url, flood_events(count))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, NATS_URL=settings.nats_url, SLIPWAY_NATS_URL=settings.nats_url, SLIPWAY_DATA_DIR=str(settings.data_dir),
               SLIPWAY_LOG_LEVEL="WARNING")
    with open(settings.data_dir / "metrics-collector.log", "ab") as out:
        collector = subprocess.Popen([sys.executable, "-m", "services.metrics_collector"], env=env,
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        first, began, ended = await drained(settings.nats_url, EVENTS_DURABLE, time.perf_counter() + FLOOD_DEADLINE_S)
        caught_up = await projections_caught_up(settings.nats_url, time.perf_counter() + FLOOD_DEADLINE_S) - ended
        audit = await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit(), timeout=60)
    finally:
        collector.terminate()
        try:
            collector.wait(timeout=30)
        except subprocess.TimeoutExpired:
            collector.kill()
            collector.wait()
    if ended <= began:
        raise RuntimeError("the backlog was logged between two looks at the durable: too small to time")
    return Flood((count - first) / (ended - began), audit.message.split(",")[0], caught_up)


@dataclass(frozen=True)
class Flood:
    rate: float  # events appended per second
    audit: str  # what `audit verify` said of the log afterwards
    caught_up_s: float  # from the last append to the projections holding it all


async def projections_caught_up(url: str, deadline: float) -> float:
    """When a status query first came back with nothing left uncounted: the collector answers a query once its
    projections hold what the log held (or says what they still lack after a wait)."""
    while True:
        answer = await send_command(url, subjects.CMD_RELEASE_STATUS, QueryReleases(limit=1), timeout=60)
        if answer.ok and "not counted yet" not in answer.message:
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"the projections did not catch up within {FLOOD_DEADLINE_S:.0f} s: {answer.message}")


async def drained(url: str, durable: str, deadline: float) -> tuple[int, float, float]:
    """(acked at the first sight of progress, when that was seen, when all was acked): the collector acks
    after each commit, so its durable's ack floor is how far the log has got.

    Asked of the nats-server, not of the collector, so the waiting costs the collector nothing (asking
    the collector for its status every 50 ms took a fifth of its time)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        last, first, began = (await js.stream_info(subjects.EVENTS_STREAM)).state.last_seq, 0, 0.0
        while True:
            floor = 0
            try:
                info = await js.consumer_info(subjects.EVENTS_STREAM, durable)
                floor = (info.ack_floor.stream_seq or 0) if info.ack_floor is not None else 0
            except nats.js.errors.NotFoundError:
                pass  # the collector has not created its durable yet
            now = time.perf_counter()
            if floor and not began:
                first, began = floor, now
            if floor >= last:
                return first, began, now
            if now > deadline:
                raise TimeoutError(f"the collector did not log the backlog within {FLOOD_DEADLINE_S:.0f} s")
            await asyncio.sleep(0.02)  # polling a figure that no event announces
    finally:
        await nc.close()


def chained_insert_rate(database: Path, count: int, batch: int) -> float:
    """Ceiling: plain sqlite3 into the collector's own event_log table (same schema, same pragmas), the
    same payloads sha256-chained, `batch` rows per transaction."""
    from services.metrics_collector.store import metadata

    engine = create_engine(f"sqlite:///{database}")
    metadata.create_all(engine)
    engine.dispose()
    payloads = [domain.canonical_json(e.model_dump(mode="json")) for e in flood_events(count, "ceiling")]
    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    insert = ("INSERT INTO event_log (seq, event_id, type, subject, release_id, service, environment, occurred_at, "
              "recorded_at, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    start, prev, seq = time.perf_counter(), domain.GENESIS_HASH, 0
    for first in range(0, count, batch):
        rows = []
        for payload in payloads[first:first + batch]:
            seq += 1
            digest = hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest()
            rows.append((seq, f"ceiling-{seq}", "ReleaseBlocked", subjects.RELEASE_BLOCKED, f"ceiling-{seq}", "bench",
                         "prod", "2026-01-01 00:00:00", "2026-01-01 00:00:00", payload, prev, digest))
            prev = digest
        with db:
            db.executemany(insert, rows)
    elapsed = time.perf_counter() - start
    db.close()
    return count / elapsed


async def collector_rows(table: Table, settings: Settings, scratch: Path) -> None:
    from services.metrics_collector.app import BATCH_SIZE

    # The ceiling before and after, the better one counts: a burst of load from elsewhere on the machine
    # lowers one of them, not the comparison.
    before = chained_insert_rate(scratch / "ceiling-before.db", FLOOD, BATCH_SIZE)
    # A server of its own: the flood stays out of the stream the later decision-path figures read from.
    with EmbeddedNats(scratch / "nats-flood") as server:
        await ensure_streams(server.url)
        flood_settings = settings.model_copy(update={"nats_url": server.url, "data_dir": scratch / "flood"})
        flood = await collector_append_rate(flood_settings, FLOOD)
        bus = await bus_alone_rate(server.url, FLOOD, BATCH_SIZE)  # the same backlog, still in the stream
    ceiling = max(before, chained_insert_rate(scratch / "ceiling-after.db", FLOOD, BATCH_SIZE))
    rebuilt = await rebuild_time(flood_settings)
    rate = flood.rate
    table.add_row(f"events appended by the metrics-collector (a process of its own, first commit to last), a "
                  f"backlog of {FLOOD:,} ({flood.audit})",
                  f"{rate:,.0f} /s ({rate / ceiling:.0%})", f"{ceiling:,.0f} /s",
                  f"plain sqlite3, same table, sha256-chained, {BATCH_SIZE} per transaction")
    table.add_row("its projections (status, DORA, bottlenecks, audit index) caught up, after the last append",
                  f"{flood.caught_up_s * 1000:,.0f} ms", f"{rebuilt * 1000:,.0f} ms",
                  "slipway audit rebuild of that log, from nothing")
    table.add_row("the same backlog fetched and acked, nothing else done (what the bus client alone allows)",
                  f"{bus:,.0f} /s ({bus / ceiling:.0%})", f"{ceiling:,.0f} /s", "the sqlite3 ceiling above")


async def rebuild_time(settings: Settings) -> float:
    from services.metrics_collector.rebuild import rebuild_projections

    start = time.perf_counter()
    await rebuild_projections(settings)
    return time.perf_counter() - start


QUERY_SIZES = (10_000, 100_000, 1_000_000)
AUDIT_SIZE = QUERY_SIZES[-1]  # the log the audit rows verify through the collector: the largest seeded, 10^6
QUERY_REPEATS = 20
EVENTS_PER_RELEASE = 8


def release_payloads(n: int, now: datetime) -> list[dict[str, Any]]:
    """One release's events as the services send them, spread over the last 90 days; every fifth rolls back.
    Lead times spread from one hour to about two days (so the histograms fill many buckets); some releases are
    rework, said (every 11th) or inferred (every 13th an emergency, every 17th linked to an incident)."""
    at = now - timedelta(minutes=(n * 37) % (90 * 24 * 60))
    lead = timedelta(hours=1 + (n * 7919) % 480 / 10)
    base = {"release_id": f"seed-{n}", "service": f"svc-{n % 7}", "environment": ("prod", "staging")[n % 2],
            "actor": "ci:bench", "source": "bench", "version": f"1.{n}.0", "team": f"team-{n % 3}"}
    spec = {"unplanned": n % 11 == 0, "release_class": "emergency" if n % 13 == 0 else "standard",
            "incident": f"INC-{n}" if n % 17 == 0 else None}

    def event(kind: str, minutes: float, **fields: Any) -> dict[str, Any]:
        return {**base, "event_id": f"seed-{n}-{kind}-{minutes}", "type": kind,
                "occurred_at": (at + timedelta(minutes=minutes)).isoformat(), **fields}

    failed = n % 5 == 0
    return [
        event("ReleaseRequested", 0, commit={"sha": "abc1234", "committed_at": (at - lead).isoformat()}, **spec),
        event("ArtifactVerified", 1), event("ReleaseApproved", 2),
        event("DeploymentStarted", 3, committed_at=(at - lead).isoformat()),
        event("StepStarted", 4, step_index=0, step_count=2, weight=10),
        event("StepVerdict", 6, step_index=0, verdict="fail" if failed else "pass", reasons=["bench"]),
        event("StepStarted", 7, step_index=1, step_count=2, weight=100),
        event("RollbackCompleted", 9, root_cause="bench") if failed else event("DeploymentSucceeded", 9),
    ]


def query_probes(now: datetime) -> dict[str, tuple[str, Any]]:
    """The queries the bench times, by row name: (subject, query); times are relative to `now`, the seeded
    log's."""
    return {
        "status (newest 20 releases)": (subjects.CMD_RELEASE_STATUS, QueryReleases()),
        "status --release-id (one release, its events)": (subjects.CMD_RELEASE_STATUS, QueryReleases(release_id="seed-1")),
        "metrics dora (all, 30 days)": (subjects.CMD_DORA, QueryDora(days=30)),
        "metrics dora --service svc-1 --environment prod": (subjects.CMD_DORA,
                                                            QueryDora(service="svc-1", environment="prod")),
        "metrics bottlenecks (all teams, 30 days)": (subjects.CMD_BOTTLENECKS, QueryBottlenecks(days=30)),
        "metrics bottlenecks --team team-1 --days 7": (subjects.CMD_BOTTLENECKS, QueryBottlenecks(team="team-1", days=7)),
        **show_probes(now),
        "metrics dora --team team-1 --environment prod --bands": (
            subjects.CMD_DORA, QueryDora(team="team-1", environment="prod", bands=True)),
        "metrics teams --environment prod (30 days)": (subjects.CMD_DORA_TEAMS, QueryDoraTeams(environment="prod")),
    }


async def query_latencies(settings: Settings, now: datetime) -> dict[str, float]:
    """Median ms of each query against a running collector, asked `QUERY_REPEATS` times."""
    latencies: dict[str, float] = {}
    async with connected(settings.nats_url) as nc:
        for name, (subject, query) in query_probes(now).items():
            body, times = query.model_dump_json().encode(), []
            for _ in range(QUERY_REPEATS):
                start = time.perf_counter()
                reply = CommandResult.model_validate_json((await nc.request(subject, body, timeout=30)).data)
                times.append(time.perf_counter() - start)
                if not reply.ok:
                    raise RuntimeError(f"{name}: {reply.message}")
            latencies[name] = statistics.median(times) * 1000
    return latencies


def log_settings(settings: Settings, size: int) -> Settings:
    """Each size's log in a directory of its own: the bulk seeder writes fresh databases only."""
    return settings.model_copy(update={"data_dir": settings.data_dir / f"log-{size}"})


async def query_rows(table: Table, settings: Settings, round_trip_ms: float) -> None:
    """Each query at each size of the log: flat means the larger logs cost about what the smallest does."""
    from services.metrics_collector.app import build
    from slipway.bench_seed import seed_database

    figures: dict[int, dict[str, float]] = {}
    now = datetime.now(UTC)
    for size in QUERY_SIZES:
        sized = log_settings(settings, size)
        await seed_database(sized, size // EVENTS_PER_RELEASE, now,
                            progress=lambda said, size=size: print(f"  seeding {size:,} events: {said}", flush=True))
        app = build(sized)
        await app.start()
        try:
            figures[size] = await query_latencies(sized, now)
        finally:
            await app.stop()
    for name in figures[QUERY_SIZES[0]]:
        table.add_row(f"{name} at {' / '.join(f'{size:,}' for size in QUERY_SIZES)} events (median)",
                      " / ".join(f"{figures[size][name]:.1f}" for size in QUERY_SIZES) + " ms",
                      f"{round_trip_ms:.2f} ms", "core NATS request/reply round trip")


async def collector_table(settings: Settings, scratch: Path, round_trip_ms: float) -> Table:
    table = Table(title="metrics-collector (embedded nats-server, SQLite)")
    for column in ("path", "slipway", "ceiling (same run)", "ceiling path"):
        table.add_column(column)
    await collector_rows(table, settings, scratch)
    queries = with_key(settings.model_copy(update={"data_dir": scratch / "queries"}), scratch / "queries-key")
    await query_rows(table, queries, round_trip_ms)
    await audit_rows(table, log_settings(queries, AUDIT_SIZE), round_trip_ms)
    return table


async def query_table_alone() -> Table:
    """The query rows on a server and scratch directory of their own (python -m slipway.bench_collector)."""
    from libs.embedded_nats import EmbeddedNats
    from slipway.bench import round_trip_latencies

    with tempfile.TemporaryDirectory(prefix="slipway-bench-collector-") as directory:
        scratch = Path(directory)
        with EmbeddedNats(scratch / "nats") as server:
            await ensure_streams(server.url)
            settings = Settings(nats_url=server.url, data_dir=scratch / "queries", log_level="WARNING")
            trips = await round_trip_latencies(server.url, 200)
            table = Table(title="metrics-collector queries (embedded nats-server, SQLite)")
            for column in ("path", "slipway", "ceiling (same run)", "ceiling path"):
                table.add_column(column)
            await query_rows(table, settings, statistics.median(trips) * 1000)
    return table


if __name__ == "__main__":
    from rich.console import Console

    Console().print(asyncio.run(query_table_alone()))
