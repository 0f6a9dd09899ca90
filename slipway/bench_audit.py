"""`make bench`, the audit trail's rows: `audit verify` from the newest signed checkpoint and in full, on the
log the collector's query rows seeded, next to plain sqlite3 + hashlib re-hashing the same file; at 10^6
records when SLIPWAY_BENCH_MILLION is set."""

import hashlib
import os
import sqlite3
import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.table import Table

from contracts import subjects
from contracts.commands import VerifyAudit
from contracts.identity import Kind
from libs.client import connected
from libs.identities import IdentityStore, seed_path
from libs.settings import Settings

VERIFY_REPEATS = 3
# Checkpoints at 15,000, 30,000 ... 90,000 of 100,000 records: a verify re-hashes the 10,000 after the newest,
# about the most the default interval (10,000) leaves, rather than the nothing a round number would.
CHECKPOINT_EVERY = 15_000


def with_key(settings: Settings, scratch: Path) -> Settings:
    """The collector as `slipway up` runs it: a key of its own in a registry, so it signs checkpoints."""
    store = IdentityStore(scratch / "credentials")
    store.ensure(Kind.SERVICE, "metrics-collector")
    return settings.model_copy(update={"credentials": seed_path(store.directory, Kind.SERVICE, "metrics-collector"),
                                       "identity_registry": store.registry_path,
                                       "audit_checkpoint_every": CHECKPOINT_EVERY})


def show_probes(now: datetime) -> dict[str, tuple[str, Any]]:
    """`audit show` (a page of 50 and the count) for each kind of filter: one field with a type (one index
    range), a field alone, several types, two fields, a time range alone and with a field, over the seeded
    releases (teams team-0..2, services svc-0..6, prod and staging, spread over the 90 days before `now`)."""
    from contracts.audit_queries import ShowAudit

    week, month = now - timedelta(days=7), now - timedelta(days=30)
    asked = {
        "--team team-1 --type StepVerdict": ShowAudit(team="team-1", types=["StepVerdict"]),
        "--team team-1": ShowAudit(team="team-1"),
        "--type DeploymentSucceeded --type RollbackCompleted": ShowAudit(types=["DeploymentSucceeded", "RollbackCompleted"]),
        "--team team-1 --environment prod --type StepVerdict": ShowAudit(team="team-1", environment="prod",
                                                                         types=["StepVerdict"]),
        "--service svc-1 --environment prod": ShowAudit(service="svc-1", environment="prod"),
        "--since 7d": ShowAudit(since=week),
        "--since/--until one hour 30 days ago": ShowAudit(since=month - timedelta(hours=1), until=month),
        "--team team-1 --type StepVerdict --since 7d": ShowAudit(team="team-1", types=["StepVerdict"], since=week),
    }
    return {f"audit show {name} (a page of 50)": (subjects.CMD_AUDIT_SHOW, query) for name, query in asked.items()}


def raw_rehash_s(database: Path, after: int = 0) -> tuple[float, int]:
    """Ceiling: plain sqlite3 reading the records after `after` in seq order and sha256-chaining them in a loop."""
    start, count = time.perf_counter(), 0
    db = sqlite3.connect(database)
    try:
        found = db.execute("SELECT hash FROM event_log WHERE seq = ?", (after,)).fetchone()
        prev = found[0] if found else "0" * 64
        rows = db.execute("SELECT payload, prev_hash, hash FROM event_log WHERE seq > ? ORDER BY seq", (after,))
        for payload, prev_hash, digest in rows:
            if prev_hash != prev or hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest() != digest:
                raise RuntimeError("the seeded log does not verify")
            prev, count = digest, count + 1
    finally:
        db.close()
    return time.perf_counter() - start, count


async def verify_ms(settings: Settings, query: VerifyAudit) -> tuple[float, dict[str, Any]]:
    from contracts.commands import CommandResult

    times, data = [], {}
    async with connected(settings.nats_url) as nc:
        for _ in range(VERIFY_REPEATS):
            start = time.perf_counter()
            reply = CommandResult.model_validate_json(
                (await nc.request(subjects.CMD_AUDIT_VERIFY, query.model_dump_json().encode(), timeout=600)).data)
            times.append(time.perf_counter() - start)
            if not reply.ok:
                raise RuntimeError(f"audit verify: {reply.message}")
            data = reply.data
    return statistics.median(times) * 1000, data


async def audit_rows(table: Table, settings: Settings, round_trip_ms: float) -> None:
    """Verify from the newest checkpoint and in full, against a running collector over the seeded log."""
    from services.metrics_collector.app import build

    app = build(settings)
    await app.start()
    try:
        incremental, said = await verify_ms(settings, VerifyAudit())
        full, _ = await verify_ms(settings, VerifyAudit(full=True))
    finally:
        await app.stop()
    database = settings.data_dir / "metrics-collector.db"
    raw_s, records = raw_rehash_s(database)
    raw_after_s, rehashed = raw_rehash_s(database, said["checkpoint_seq"] or 0)
    table.add_row(f"audit verify from the newest signed checkpoint at {records:,} records ({rehashed:,} after it, "
                  f"median of {VERIFY_REPEATS})", f"{incremental:.1f} ms", f"{raw_after_s * 1000:.1f} ms",
                  f"plain sqlite3 + hashlib re-hashing those {rehashed:,}")
    table.add_row(f"audit verify --full at {records:,} records (median of {VERIFY_REPEATS})", f"{full:,.0f} ms",
                  f"{raw_s * 1000:,.0f} ms", "plain sqlite3 + hashlib re-hashing the same file")
    if os.environ.get(MILLION_SWITCH):
        await million_rows(table, settings.model_copy(update={"data_dir": settings.data_dir.parent / "million"}))


MILLION = 1_000_000
SEED_BATCH = 20_000
# Seeding a million records takes a minute or more here and a full verify 10-20 s: past make bench's budget, so
# the 10^6 rows run only when asked for (SLIPWAY_BENCH_MILLION=1 make bench).
MILLION_SWITCH = "SLIPWAY_BENCH_MILLION"


def seed_chain(database: Path, count: int, signer: Any, every: int) -> None:
    """A log of `count` chained records written straight into the collector's tables with plain sqlite3 (the
    collector's own appends would take minutes at this size), signed checkpoints every `every` records. The
    audit index is left empty: verifying reads the chain and the checkpoints only."""
    from datetime import UTC, datetime

    from libs.identities import sign
    from services.metrics_collector.audit_rules import checkpoint_bytes
    from services.metrics_collector.domain import canonical_json, chain_hash

    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")  # 256 MiB: the unique prev_hash index takes random keys
    at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    prev, seq = "0" * 64, 0
    while seq < count:
        log, checkpoints = [], []
        for _ in range(min(SEED_BATCH, count - seq)):
            seq += 1
            payload = canonical_json({"event_id": f"m{seq}", "type": "StepVerdict", "release_id": f"m-{seq // 8}",
                                      "service": f"svc-{seq % 7}", "environment": "prod", "actor": "service:bench",
                                      "verdict": "pass", "occurred_at": at})
            digest = chain_hash(prev, payload)
            log.append((seq, f"m{seq}", "StepVerdict", "slipway.evt.health.step_verdict", f"m-{seq // 8}",
                        f"svc-{seq % 7}", "prod", at, at, payload, prev, digest))
            if seq % every == 0:
                signed_at = datetime.now(UTC)
                signature = sign(signer.seed, checkpoint_bytes(seq, digest, seq, signed_at, signer.identity))
                checkpoints.append((seq, digest, seq, signed_at.strftime("%Y-%m-%d %H:%M:%S.%f"), signer.identity,
                                    signature))
            prev = digest
        with db:
            db.executemany("INSERT INTO event_log (seq, event_id, type, subject, release_id, service, environment, "
                           "occurred_at, recorded_at, payload, prev_hash, hash) VALUES "
                           "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", log)
            db.executemany("INSERT INTO audit_checkpoints (seq, hash, records, created_at, signer, signature) "
                           "VALUES (?, ?, ?, ?, ?, ?)", checkpoints)
    db.close()


async def million_rows(table: Table, settings: Settings) -> None:
    """Verify at 10^6 records through the collector's use case itself (no NATS: its transport was measured
    above), from the newest checkpoint and in full, beside plain sqlite3 + hashlib over the same file."""
    import asyncio

    from libs.bus import own_signer
    from libs.runtime import build_runtime
    from services.metrics_collector.audit_handlers import AuditTrail
    from services.metrics_collector.store import NAME, metadata

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    runtime = build_runtime(NAME, settings, metadatas=[metadata])
    try:
        await runtime.db.migrate(NAME, metadata)
        signer = own_signer(settings)
        started = time.perf_counter()
        await asyncio.to_thread(seed_chain, settings.data_dir / "metrics-collector.db", MILLION, signer,
                                settings.audit_checkpoint_every)
        seeded_s = time.perf_counter() - started
        trail = AuditTrail(runtime, signer, IdentityStore(settings.identity_registry.parent), asyncio.Lock(),
                           lambda _: None, settings.audit_checkpoint_every)
        timings, start_seq = {}, 0
        for name, query in (("checkpoint", VerifyAudit()), ("full", VerifyAudit(full=True))):
            start = time.perf_counter()
            result = await trail.verify(query)
            timings[name] = (time.perf_counter() - start) * 1000
            if not result.ok:
                raise RuntimeError(f"audit verify at 10^6: {result.message}")
            start_seq = start_seq or result.data["checkpoint_seq"] or 0
    finally:
        await runtime.db.dispose()
    database = settings.data_dir / "metrics-collector.db"
    raw_s, records = raw_rehash_s(database)
    raw_after_s, rehashed = raw_rehash_s(database, start_seq)
    table.add_row(f"audit verify from the newest signed checkpoint at {records:,} records ({rehashed:,} after it; "
                  f"the use case, no NATS)", f"{timings['checkpoint']:.1f} ms", f"{raw_after_s * 1000:.1f} ms",
                  f"plain sqlite3 + hashlib re-hashing those (log seeded with sqlite3 in {seeded_s:.0f} s)")
    table.add_row(f"audit verify --full at {records:,} records (the use case, no NATS)",
                  f"{timings['full']:,.0f} ms", f"{raw_s * 1000:,.0f} ms", "plain sqlite3 + hashlib re-hashing all")
