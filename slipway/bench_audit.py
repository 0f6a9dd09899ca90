"""`make bench`, the audit trail's rows: `audit verify` from the newest signed checkpoint and in full, on the
log the collector's query rows seeded, next to plain sqlite3 + hashlib re-hashing the same file."""

import hashlib
import sqlite3
import statistics
import time
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
SHOW_PROBE = "audit show --team team-1 --type StepVerdict (a page of 50)"


def with_key(settings: Settings, scratch: Path) -> Settings:
    """The collector as `slipway up` runs it: a key of its own in a registry, so it signs checkpoints."""
    store = IdentityStore(scratch / "credentials")
    store.ensure(Kind.SERVICE, "metrics-collector")
    return settings.model_copy(update={"credentials": seed_path(store.directory, Kind.SERVICE, "metrics-collector"),
                                       "identity_registry": store.registry_path})


def show_probe() -> tuple[str, tuple[str, Any]]:
    from contracts.audit_queries import ShowAudit

    return SHOW_PROBE, (subjects.CMD_AUDIT_SHOW, ShowAudit(team="team-1", types=["StepVerdict"]))


def raw_rehash_s(database: Path) -> tuple[float, int]:
    """Ceiling: plain sqlite3 reading every record in seq order and sha256-chaining it in a loop."""
    start, prev, count = time.perf_counter(), "0" * 64, 0
    db = sqlite3.connect(database)
    try:
        for payload, prev_hash, digest in db.execute("SELECT payload, prev_hash, hash FROM event_log ORDER BY seq"):
            if prev_hash != prev or hashlib.sha256(f"{prev}\n{payload}".encode()).hexdigest() != digest:
                raise RuntimeError("the seeded log does not verify")
            prev, count = digest, count + 1
    finally:
        db.close()
    return time.perf_counter() - start, count


async def verify_ms(settings: Settings, query: VerifyAudit) -> tuple[float, str]:
    from contracts.commands import CommandResult

    times, message = [], ""
    async with connected(settings.nats_url) as nc:
        for _ in range(VERIFY_REPEATS):
            start = time.perf_counter()
            reply = CommandResult.model_validate_json(
                (await nc.request(subjects.CMD_AUDIT_VERIFY, query.model_dump_json().encode(), timeout=600)).data)
            times.append(time.perf_counter() - start)
            if not reply.ok:
                raise RuntimeError(f"audit verify: {reply.message}")
            message = reply.message
    return statistics.median(times) * 1000, message


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
    raw_s, records = raw_rehash_s(settings.data_dir / "metrics-collector.db")
    rehashed = said.split(", ")[2] if said.count(", ") >= 2 else said
    table.add_row(f"audit verify from the newest signed checkpoint at {records:,} records ({rehashed})",
                  f"{incremental:.1f} ms", f"{round_trip_ms:.2f} ms", "core NATS request/reply round trip")
    table.add_row(f"audit verify --full at {records:,} records (median of {VERIFY_REPEATS})", f"{full:,.0f} ms",
                  f"{raw_s * 1000:,.0f} ms", "plain sqlite3 + hashlib re-hashing the same file")
