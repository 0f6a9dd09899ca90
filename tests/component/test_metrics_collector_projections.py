"""The projections the collector keeps beside its log: what appending builds equals a rebuild from
the log, queries page through them, and events that are about no release are logged and left out."""

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import subjects
from contracts.bottleneck_queries import QueryBottlenecks
from contracts.commands import CommandResult, QueryDora, QueryReleases
from contracts.envelope import Event, new_event_id
from contracts.events import DeploymentSucceeded, RollbackCompleted, Verdict
from contracts.queries import DoraReply, ReleasesReply
from libs.client import connected, publish_event, publish_raw, send_command
from libs.settings import Settings
from services.metrics_collector import domain
from services.metrics_collector.app import build
from services.metrics_collector.bottleneck_counts import bottleneck_team_days
from services.metrics_collector.bottlenecks import TABLES as BOTTLENECK_TABLES, bottleneck_daily
from services.metrics_collector.dora import RELATIVE_ERROR
from services.metrics_collector.dora_projection import dora_daily, dora_facts
from services.metrics_collector.dora_rollup import dora_rollup
from services.metrics_collector.projections import release_count, release_status
from services.metrics_collector.rebuild import rebuild_projections
from tests.component.test_metrics_collector import SOURCE, logged, started, step, verdict
from tests.conftest import running
from tests.support.releases import release_for

# Everything the log's rows are projected into (the audit index came with revision 0004).
TABLES = (release_status.name, release_count.name, dora_facts.name, dora_daily.name, dora_rollup.name, "audit_index")


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.pyz"
    path.write_bytes(b"dummy artifact")
    return path


def shipped(artifact: Path, version: str, at: datetime, fail: bool) -> list[Event]:
    """A release's events, its request last: the log gets them out of the order they happened."""
    request = release_for(artifact, version, occurred_at=at - timedelta(minutes=5))
    events: list[Event] = [
        started(request, at, committed_at=at - timedelta(hours=2)),
        step(request, at + timedelta(minutes=1), 0, 10),
        verdict(request, at + timedelta(minutes=2), Verdict.FAIL if fail else Verdict.PASS, ["checked"]),
    ]
    if fail:
        events.append(RollbackCompleted.caused_by(
            request, SOURCE, occurred_at=at + timedelta(minutes=6), deployment_id=request.release_id,
            bad_version=version, restored_version="0.9.0", root_cause="errors", failed_at=at + timedelta(minutes=2)))
    else:
        events.append(DeploymentSucceeded.caused_by(request, SOURCE, occurred_at=at + timedelta(minutes=9),
                                                    version=version, previous_version="0.9.0"))
    return [*events, request]


def snapshot(database: Path, tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple]]:
    with sqlite3.connect(database) as db:
        rows = {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in tables}
    db.close()
    return rows


async def test_what_appending_builds_equals_a_rebuild_from_the_log(settings: Settings, artifact: Path) -> None:
    now = datetime.now(UTC)
    events = [e for n in range(6) for e in shipped(artifact, f"1.{n}.0", now - timedelta(days=n, hours=1), n % 3 == 1)]
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
        page = ReleasesReply.model_validate((await send_command(
            settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(limit=4, page=2))).data)
        past = ReleasesReply.model_validate((await send_command(
            settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(limit=4, page=3))).data)
        figures = DoraReply.model_validate((await send_command(
            settings.nats_url, subjects.CMD_DORA, QueryDora(days=30))).data)
    database = settings.data_dir / "metrics-collector.db"
    appended = snapshot(database)
    assert all(appended.values()), appended

    assert await rebuild_projections(settings) == 6
    assert snapshot(database) == appended

    # Newest first, four a page: the second page holds the two oldest; a page past the end is empty but counts.
    assert (page.total, [r.version for r in page.releases]) == (6, ["1.4.0", "1.5.0"])
    assert (past.total, past.releases) == (6, [])
    assert (figures.deployments, figures.changes, figures.failed_changes, figures.restores_total) == (4, 6, 2, 2)
    # Percentiles come from the daily histograms: within their relative error of the samples' own.
    assert figures.lead_time_median_s == pytest.approx(2 * 3600 + 9 * 60, rel=RELATIVE_ERROR)
    assert figures.time_to_restore_median_s == pytest.approx(5 * 60, rel=RELATIVE_ERROR)
    # The projection's figures are those of the pure rule over the whole log.
    with sqlite3.connect(database) as db:
        payloads = [json.loads(row[0]) for row in db.execute("SELECT payload FROM event_log")]
    db.close()
    expected = domain.dora(payloads, datetime.now(UTC), 30)
    assert (figures.deployments, figures.changes, figures.failed_changes) == (
        expected.deployments, expected.changes, expected.failed_changes)
    assert (figures.lead_time_median_s, figures.time_to_restore_median_s) == (
        pytest.approx(expected.lead_time_median_s, rel=RELATIVE_ERROR),
        pytest.approx(expected.time_to_restore_median_s, rel=RELATIVE_ERROR))
    assert [(s.release_id, s.seconds) for s in figures.lead_times] == [(d.release_id, d.seconds) for d in expected.lead_times]


async def test_a_log_written_before_the_projections_gets_them_when_the_collector_starts(
    settings: Settings, artifact: Path
) -> None:
    events = shipped(artifact, "2.0.0", datetime.now(UTC) - timedelta(hours=1), fail=False)
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
    database = settings.data_dir / "metrics-collector.db"
    with sqlite3.connect(database) as db:
        for table in (*TABLES, "audit_checkpoints", "projection_cursor", *(t.name for t in (*BOTTLENECK_TABLES, bottleneck_daily, bottleneck_team_days))):
            db.execute(f"DROP TABLE {table}")  # as a log from before the projections: no such tables,
        db.execute("UPDATE alembic_version SET version_num = '0001'")  # at the revision before them
    db.close()
    async with running(build(settings)):
        status = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases())
        figures = await send_command(settings.nats_url, subjects.CMD_DORA, QueryDora())
        waits = await send_command(settings.nats_url, subjects.CMD_BOTTLENECKS, QueryBottlenecks())
    assert [(r["version"], r["state"], r["events"]) for r in status.data["releases"]] == [("2.0.0", "succeeded", 5)]
    assert [w["kind"] for w in waits.data["releases"][0]["waits"]] == ["analysis"]
    assert (figures.data["deployments"], figures.data["changes"]) == (1, 1)


async def test_one_release_shows_its_events_a_page_at_a_time(settings: Settings, artifact: Path) -> None:
    events = shipped(artifact, "3.0.0", datetime.now(UTC) - timedelta(hours=1), fail=True)
    release_id = events[-1].release_id
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
        pages = [ReleasesReply.model_validate((await send_command(
            settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(release_id=release_id, limit=2, page=n))).data)
            for n in (1, 2, 3, 4)]
        async with connected(settings.nats_url) as nc:
            reply = await nc.request(subjects.CMD_RELEASE_STATUS, b'{"page": 0}', timeout=5)
        invalid = CommandResult.model_validate_json(reply.data)
    history = [e["type"] for p in pages for e in p.releases[0].history or []]
    assert history == ["ReleaseRequested", "DeploymentStarted", "StepStarted", "StepVerdict", "RollbackCompleted"]
    assert [p.total for p in pages] == [5, 5, 5, 5] and pages[3].releases[0].history == []
    assert not invalid.ok and invalid.message.startswith("invalid QueryReleases: page:")


async def test_an_event_about_no_release_is_logged_and_moves_no_projection(settings: Settings, artifact: Path) -> None:
    request = release_for(artifact)
    lifted = {"event_id": new_event_id(), "type": "FreezeLifted", "freeze_id": "f-1", "actor": "person:alice",
              "occurred_at": datetime.now(UTC).isoformat(), "source": "gatekeeper"}
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        await publish_raw(settings.nats_url, subjects.FREEZE_LIFTED, json.dumps(lifted).encode(),
                          {"Nats-Msg-Id": lifted["event_id"]})
        audit = await logged(settings, 2)
        status = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases())
    assert audit.ok and audit.data["records"] == 2
    assert [r["release_id"] for r in status.data["releases"]] == [request.release_id]
    with sqlite3.connect(settings.data_dir / "metrics-collector.db") as db:
        row = db.execute("SELECT release_id, service, environment FROM event_log WHERE event_id = ?",
                         (lifted["event_id"],)).fetchone()
    db.close()
    assert row == (None, None, None)


async def test_releases_new_to_the_log_and_known_ones_in_one_batch_project_as_a_rebuild_does(
        settings: Settings, artifact: Path) -> None:
    """A release the log has never named is projected from the batch's own events, a known one from its history
    read back: batches mixing both leave the rows a rebuild makes (on the collector's one-hop SQLite path)."""
    from libs.runtime import build_runtime
    from services.metrics_collector.handlers import Handlers, LoggedEvent, arrival
    from services.metrics_collector.store import NAME, metadata

    now = datetime.now(UTC)
    releases = [shipped(artifact, f"2.{n}.0", now - timedelta(days=n, hours=1), n % 2 == 1) for n in range(6)]
    first = [e for events in releases[:4] for e in events[:2]]  # four releases, two events each, all new
    second = [e for events in releases[:4] for e in events[2:]] + [e for events in releases[4:] for e in events]
    runtime = build_runtime(NAME, settings, metadatas=[metadata])
    await runtime.db.migrate(NAME, metadata)
    handlers = Handlers(runtime)
    try:
        await handlers.prepare()
        for batch in (first, second):  # projected batch by batch: the second's releases are known, two are new
            await handlers.append([arrival(LoggedEvent.model_validate(e.model_dump(mode="json")), e.address(), None)
                                   for e in batch])
            await handlers.projector.catch_up()
    finally:
        await handlers.close()
        await runtime.db.dispose()
    database = settings.data_dir / "metrics-collector.db"
    tables = (*TABLES, *(t.name for t in BOTTLENECK_TABLES), bottleneck_daily.name, bottleneck_team_days.name)
    appended = snapshot(database, tables)
    assert len(appended[release_status.name]) == 6 and appended[dora_facts.name], appended

    assert await rebuild_projections(settings) == 6
    assert snapshot(database, tables) == appended
