"""The bench's bulk seeder writes a real log: the one the collector's own append use case writes from the same
releases, record for record, and a collector over it verifies and answers every benched query the same."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.commands import CommandResult, VerifyAudit
from contracts import subjects
from libs.client import send_command
from libs.runtime import build_runtime
from libs.settings import Settings
from services.metrics_collector import domain
from services.metrics_collector.app import build
from services.metrics_collector.bottleneck_counts import bottleneck_team_days
from services.metrics_collector.bottlenecks import TABLES as BOTTLENECK_TABLES, bottleneck_daily
from services.metrics_collector.dora_projection import TABLES as DORA_TABLES
from services.metrics_collector.handlers import Arrival, Handlers, LoggedEvent
from services.metrics_collector.store import NAME, metadata
from slipway.bench_audit import with_key
from slipway.bench_collector import query_probes, release_payloads
from slipway.bench_seed import SUBJECT, seed_database
from tests.component.test_metrics_collector_projections import TABLES, snapshot
from tests.conftest import running

RELEASES = 40  # 320 records: checkpoints at 50, 100 ... 300, and across the append path's batches of 96
EVERY = 50


async def append_through_collector(settings: Settings, releases: int, now: datetime) -> None:
    """The reference: the same releases appended through the collector's use case (no bus), 12 releases a batch."""
    runtime = build_runtime(NAME, settings, metadatas=[metadata])
    await runtime.db.migrate(NAME, metadata)  # as the collector itself does when it starts
    handlers = Handlers(runtime)
    await handlers.prepare()
    try:
        for first in range(0, releases, 12):
            batch = []
            for n in range(first, min(first + 12, releases)):
                for payload in release_payloads(n, now):
                    event = LoggedEvent.model_validate(payload)
                    batch.append(Arrival(event, SUBJECT, None, domain.canonical_json(event.model_dump(mode="json"))))
            await handlers.append(batch)
        await handlers.projector.catch_up()
    finally:
        await handlers.close()
        await runtime.db.dispose()


def without_recorded_at(value: Any) -> Any:
    """An answer with the times the collector read each record dropped: the one thing the two logs may differ in."""
    if isinstance(value, dict):
        return {k: without_recorded_at(v) for k, v in value.items() if k != "recorded_at"}
    if isinstance(value, list):
        return [without_recorded_at(v) for v in value]
    return value


async def answers(settings: Settings, now: datetime) -> dict[str, Any]:
    """A running collector's verify --full and every query the bench times, over this log."""
    found: dict[str, Any] = {}
    async with running(build(settings)):
        audit = await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit(full=True), timeout=30)
        assert audit.ok, audit.message
        found["verify"] = {k: audit.data[k] for k in ("records", "head_hash", "rehashed", "checkpoints", "mode")}
        for name, (subject, query) in query_probes(now).items():
            reply: CommandResult = await send_command(settings.nats_url, subject, query, timeout=30)
            assert reply.ok, f"{name}: {reply.message}"
            found[name] = (reply.message, without_recorded_at(reply.data))
    return found


def log_without_recorded_at(database: Path) -> list[tuple]:
    rows = snapshot(database, ("event_log",))["event_log"]
    return sorted(row[:8] + row[9:] for row in rows)  # recorded_at is the ninth column


async def test_the_bulk_seeded_log_is_the_log_the_append_use_case_writes(settings: Settings, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    keyed = with_key(settings, tmp_path / "key").model_copy(update={"audit_checkpoint_every": EVERY})
    appended = keyed.model_copy(update={"data_dir": tmp_path / "appended"})
    seeded = keyed.model_copy(update={"data_dir": tmp_path / "seeded"})
    await append_through_collector(appended, RELEASES, now)
    await seed_database(seeded, RELEASES, now)

    ours, theirs = seeded.data_dir / "metrics-collector.db", appended.data_dir / "metrics-collector.db"
    assert log_without_recorded_at(ours) == log_without_recorded_at(theirs)
    assert len(log_without_recorded_at(ours)) == RELEASES * 8
    projections = tuple({*TABLES, *(t.name for t in (*DORA_TABLES, *BOTTLENECK_TABLES, bottleneck_daily,
                                                               bottleneck_team_days))})
    assert snapshot(ours, projections) == snapshot(theirs, projections)
    checkpoints = [snapshot(db, ("audit_checkpoints",))["audit_checkpoints"] for db in (ours, theirs)]
    assert [c[:3] for c in checkpoints[0]] == [c[:3] for c in checkpoints[1]]  # seq, hash, records; then when, by whom
    assert sorted(c[0] for c in checkpoints[0]) == list(range(EVERY, RELEASES * 8 + 1, EVERY))

    from_seeded, from_appended = await answers(seeded, now), await answers(appended, now)
    assert from_seeded["verify"]["records"] == RELEASES * 8 and from_seeded["verify"]["mode"] == "full"
    assert from_seeded == from_appended
