"""`make bench`'s log of a given size, written in minutes instead of the tens of minutes the collector's own
append use case takes at 10^6 events.

The records are the ones the append path would write: each release's events (bench_collector.release_payloads)
read as the collector reads them (LoggedEvent), canonical JSON and chain hash by the collector's own functions
(domain.canonical_json / chain_hash), in the same columns, with plain sqlite3 executemany in big transactions.
What the collector keeps beside the log is not written here but by its own code: the signed checkpoints
(audit_handlers.sign_checkpoint, at the seqs the append path signs them) and the audit index and projections
(rebuild.rebuild_projections). tests/component/test_bench_seed.py checks the result against a log appended
through the use case.
"""

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from libs.settings import Settings

TRANSACTION = 50_000  # records per sqlite3 transaction
SUBJECT = "slipway.evt.bench"  # what the bench's arrivals were filed under when it appended through the use case
INSERT = ("INSERT INTO event_log (seq, event_id, type, subject, release_id, service, environment, occurred_at, "
          "recorded_at, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def stored_time(at: datetime) -> str:
    """How UtcDateTime stores a datetime in SQLite: UTC wall-clock time, microseconds always written."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def log_rows(releases: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    """event_log rows of releases 0.. in the order appending them one after another logs them, chained from genesis."""
    from services.metrics_collector import domain
    from services.metrics_collector.handlers import LoggedEvent
    from slipway.bench_collector import release_payloads

    prev, seq, recorded_at = domain.GENESIS_HASH, 0, stored_time(now)
    for n in range(releases):
        for sent in release_payloads(n, now):
            event = LoggedEvent.model_validate(sent)
            payload = domain.canonical_json(event.model_dump(mode="json"))
            seq, digest = seq + 1, domain.chain_hash(prev, payload)
            yield (seq, event.event_id, event.type, SUBJECT, event.release_id, event.service, event.environment,
                   stored_time(event.occurred_at), recorded_at, payload, prev, digest)
            prev = digest


def write_log(database: Path, releases: int, now: datetime, every: int,
              progress: Callable[[str], None]) -> list[tuple[int, str]]:
    """Write the records; returns (seq, hash) of those the append path signs a checkpoint at (every `every`th)."""
    from services.metrics_collector.audit_rules import checkpoint_due

    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")  # a bench's scratch file: a crash loses nothing worth keeping
    db.execute("PRAGMA cache_size=-262144")  # 256 MiB: the unique prev_hash and event_id indexes take random keys
    due: list[tuple[int, str]] = []
    try:
        batch: list[tuple[Any, ...]] = []
        for row in log_rows(releases, now):
            batch.append(row)
            if checkpoint_due(due[-1][0] if due else 0, row[0], every):
                due.append((row[0], row[-1]))
            if len(batch) >= TRANSACTION:
                with db:
                    db.executemany(INSERT, batch)
                batch = []
                if row[0] % (10 * TRANSACTION) == 0:
                    progress(f"{row[0]:,} records written")
        if batch:
            with db:
                db.executemany(INSERT, batch)
    finally:
        db.close()
    return due


async def seed_database(settings: Settings, releases: int, now: datetime | None = None,
                        progress: Callable[[str], None] = lambda _: None) -> float:
    """A fresh collector database in `settings.data_dir` holding releases 0..`releases`-1; returns seconds taken."""
    from libs.bus import own_signer
    from libs.runtime import service_database
    from services.metrics_collector.audit_handlers import sign_checkpoint
    from services.metrics_collector.audit_store import Checkpoints
    from services.metrics_collector.rebuild import rebuild_projections
    from services.metrics_collector.store import NAME, metadata
    from slipway.bench_collector import EVENTS_PER_RELEASE

    started = time.perf_counter()
    database = settings.data_dir / "metrics-collector.db"
    if database.exists():
        raise FileExistsError(f"{database} exists: the bulk seeder writes a fresh log only")
    db = service_database(NAME, settings)
    try:
        await db.migrate(NAME, metadata)  # the schema the collector itself migrates to
    finally:
        await db.dispose()
    signer = own_signer(settings)
    due = await asyncio.to_thread(write_log, database, releases, now or datetime.now(UTC),
                                  settings.audit_checkpoint_every if signer is not None else 0, progress)
    progress(f"{releases * EVENTS_PER_RELEASE:,} records chained in {time.perf_counter() - started:.0f} s")
    if signer is not None and due:
        db = service_database(NAME, settings)
        try:
            async with db.transaction() as tx:
                for seq, digest in due:
                    await sign_checkpoint(Checkpoints(tx.session), signer, seq, digest)
        finally:
            await db.dispose()
    await rebuild_projections(settings)
    elapsed = time.perf_counter() - started
    progress(f"audit index and projections rebuilt, {elapsed:.0f} s in all")
    return elapsed
