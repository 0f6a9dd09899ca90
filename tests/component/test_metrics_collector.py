import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import subjects
from contracts.commands import CommandResult, QueryDora, QueryReleases, VerifyAudit
from contracts.envelope import Event
from contracts.events import (
    AlertRaised,
    DeploymentStarted,
    DeploymentSucceeded,
    ReleaseRequested,
    RollbackCompleted,
    Severity,
    StepStarted,
    StepVerdict,
    Verdict,
)
from libs.client import connected, publish_event, publish_raw, send_command
from libs.settings import Settings
from services.metrics_collector.app import build
from services.metrics_collector.dora import RELATIVE_ERROR
from tests.support.poll import eventually
from tests.conftest import running
from tests.support.releases import release_for
from tests.support.watch import EventWatcher

SOURCE = "deployer"


async def logged(settings: Settings, count: int, timeout: float = 5.0) -> CommandResult:
    """Ask the collector until its audit log holds `count` records (a deadline, never a fixed sleep)."""
    async def audit_when_complete() -> CommandResult | None:
        audit = await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit())
        return audit if audit.data["records"] >= count else None

    return await eventually(audit_when_complete, timeout, f"an audit log of {count} records")


def started(request: ReleaseRequested, when: datetime, committed_at: datetime) -> DeploymentStarted:
    return DeploymentStarted.caused_by(
        request, SOURCE, occurred_at=when, version=request.version, stable_version="0.9.0", strategy="canary",
        steps=[10, 100], router_url="http://127.0.0.1:1", commit_sha=request.commit.sha, committed_at=committed_at,
    )


def step(request: ReleaseRequested, when: datetime, index: int, weight: int) -> StepStarted:
    return StepStarted.caused_by(
        request, SOURCE, occurred_at=when, deployment_id=request.release_id, step_index=index, step_count=2,
        weight=weight, version=request.version, stable_version="0.9.0", team="payments", analysis_interval_s=1.0,
        max_error_rate=0.05, max_p99_latency_ms=500.0, min_requests=10, router_url="http://127.0.0.1:1",
        metrics_url="http://127.0.0.1:1/metrics",
    )


def verdict(request: ReleaseRequested, when: datetime, outcome: Verdict, reasons: list[str]) -> StepVerdict:
    return StepVerdict.caused_by(
        request, "health-watcher", occurred_at=when, deployment_id=request.release_id, step_index=0,
        version=request.version, stable_version="0.9.0", team="payments", verdict=outcome, reasons=reasons,
        requests=100, errors=20 if outcome is Verdict.FAIL else 0, error_rate=0.2 if outcome is Verdict.FAIL else 0.0,
        p99_latency_ms=40.0,
    )


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.pyz"
    path.write_bytes(b"dummy artifact")
    return path


async def test_logs_every_event_reports_dora_and_status_and_detects_tampering(
    settings: Settings, artifact: Path
) -> None:
    now = datetime.now(UTC)
    good_at, bad_at = now - timedelta(hours=3), now - timedelta(hours=1)
    good = release_for(artifact, "1.0.0", occurred_at=good_at - timedelta(minutes=5))
    bad = release_for(artifact, "1.1.0", occurred_at=bad_at - timedelta(minutes=5))
    events: list[Event] = [
        good,
        started(good, good_at, committed_at=good_at - timedelta(hours=1)),
        step(good, good_at + timedelta(minutes=1), 0, 10),
        verdict(good, good_at + timedelta(minutes=2), Verdict.PASS, []),
        step(good, good_at + timedelta(minutes=3), 1, 100),
        DeploymentSucceeded.caused_by(good, SOURCE, occurred_at=good_at + timedelta(minutes=20), version="1.0.0",
                                      previous_version="0.9.0"),
        bad,
        started(bad, bad_at, committed_at=bad_at - timedelta(minutes=30)),
        step(bad, bad_at + timedelta(minutes=1), 0, 10),
        verdict(bad, bad_at + timedelta(minutes=2), Verdict.FAIL, ["error rate 0.20 > 0.05"]),
        RollbackCompleted.caused_by(bad, SOURCE, occurred_at=bad_at + timedelta(minutes=5), deployment_id=bad.release_id,
                                    bad_version="1.1.0", restored_version="0.9.0", root_cause="error rate 0.20 > 0.05",
                                    failed_at=bad_at + timedelta(minutes=2)),
    ]
    alert = AlertRaised.caused_by(bad, "health-watcher", occurred_at=bad_at + timedelta(minutes=2),
                                  severity=Severity.CRITICAL, team="payments", summary="shop 1.1.0 failing")
    alert_subject = subjects.alert_subject("critical", "payments", "shop")

    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        async with connected(settings.nats_url) as nc:
            await nc.jetstream().publish(alert_subject, alert.model_dump_json().encode(),
                                         stream=subjects.ALERTS_STREAM, headers=alert.headers())

        audit = await logged(settings, len(events) + 1)
        assert audit.ok, audit.message
        assert audit.data["records"] == len(events) + 1
        assert audit.data["first_bad_seq"] is None and len(audit.data["head_hash"]) == 64
        assert audit.data["flagged_count"] == 0, audit.data["flagged"]

        status = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases())
        assert status.ok
        releases = status.data["releases"]
        assert [r["release_id"] for r in releases] == [bad.release_id, good.release_id]
        assert {k: releases[0][k] for k in ("service", "environment", "version", "state", "last_event", "events")} == {
            "service": "shop", "environment": "prod", "version": "1.1.0", "state": "rolled back",
            "last_event": "RollbackCompleted", "events": 6}
        assert releases[0]["reason"] == "error rate 0.20 > 0.05"
        assert (releases[1]["state"], releases[1]["events"]) == ("succeeded", 6)
        one = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(release_id=good.release_id))
        assert [r["release_id"] for r in one.data["releases"]] == [good.release_id]
        # `slipway status --release-id` prints this history; before, only a count came back.
        assert [e["type"] for e in one.data["releases"][0]["history"]] == [
            "ReleaseRequested", "DeploymentStarted", "StepStarted", "StepVerdict", "StepStarted", "DeploymentSucceeded"]
        assert status.data["releases"][0].get("history") is None  # the list of all releases stays small

        figures = await send_command(settings.nats_url, subjects.CMD_DORA, QueryDora(service="shop", days=7))
        assert figures.ok, figures.message
        data = figures.data
        assert data["deployments"] == 1 and data["deployment_frequency_per_day"] == pytest.approx(1 / 7)
        assert data["lead_times"] == [{"release_id": good.release_id, "seconds": pytest.approx(80 * 60)}]
        assert (data["changes"], data["failed_changes"], data["change_failure_rate"]) == (2, 1, 0.5)
        assert data["restores"] == [{"release_id": bad.release_id, "seconds": pytest.approx(4 * 60)}]
        assert data["time_to_restore_median_s"] == pytest.approx(240, rel=RELATIVE_ERROR)  # from the day's histogram
        elsewhere = await send_command(settings.nats_url, subjects.CMD_DORA, QueryDora(environment="staging"))
        assert (elsewhere.data["changes"], elsewhere.data["lead_time_median_s"]) == (0, None)

        database = settings.data_dir / "metrics-collector.db"
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT seq, subject, payload FROM event_log ORDER BY seq").fetchall()
            alert_row = next(r for r in rows if json.loads(r[2])["type"] == "AlertRaised")
            assert alert_row[1] == alert_subject
            # The full payload is kept. (Events and alerts come from two streams, so their rows interleave.)
            requested = next(json.loads(r[2]) for r in rows if json.loads(r[2])["type"] == "ReleaseRequested")
            assert requested["artifact"]["uri"] == str(artifact)
            victim = next(seq for seq, _, payload in rows if json.loads(payload)["type"] == "DeploymentSucceeded")
            db.execute("UPDATE event_log SET payload = replace(payload, '1.0.0', '6.6.6') WHERE seq = ?", (victim,))
        db.close()

        tampered = await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit())
        assert not tampered.ok
        assert tampered.data["first_bad_seq"] == victim
        assert f"record {victim}" in tampered.message


async def test_the_same_event_twice_is_logged_once(settings: Settings, artifact: Path) -> None:
    request = release_for(artifact)
    later = release_for(artifact, "2.0.0")
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        await publish_event(settings.nats_url, request)  # same Nats-Msg-Id: the stream drops it
        # A copy that got past the stream's duplicate window: only the collector can spot it.
        await publish_raw(settings.nats_url, request.subject, request.model_dump_json().encode(),
                          {"Nats-Msg-Id": f"{request.event_id}-again"})
        await publish_event(settings.nats_url, later)
        audit = await logged(settings, 2)
        status = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases())
    assert audit.ok and audit.data["records"] == 2
    assert [(r["release_id"], r["events"]) for r in status.data["releases"]] == [
        (later.release_id, 1), (request.release_id, 1)]


async def test_bad_commands_get_a_reason_and_the_service_keeps_answering(settings: Settings) -> None:
    async with running(build(settings)):
        async with connected(settings.nats_url) as nc:
            reply = await nc.request(subjects.CMD_DORA, b'{"days": 0}', timeout=5)
            invalid = CommandResult.model_validate_json(reply.data)
            garbage = CommandResult.model_validate_json((await nc.request(subjects.CMD_RELEASE_STATUS, b"{", timeout=5)).data)
            empty = CommandResult.model_validate_json((await nc.request(subjects.CMD_AUDIT_VERIFY, b"", timeout=5)).data)
        missing = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases(release_id="nope"))
    assert not invalid.ok and invalid.message.startswith("invalid QueryDora: days:")
    assert not garbage.ok and garbage.message.startswith("invalid QueryReleases:")
    assert empty.ok and empty.data | {"mode": "full"} == empty.data and {
        k: empty.data[k] for k in ("records", "first_bad_seq", "reason", "head_hash", "flagged", "flagged_count",
                                   "signed_commands", "unverified_commands", "unverified_count", "rehashed",
                                   "checkpoints", "bad_checkpoints")} == {
        "records": 0, "first_bad_seq": None, "reason": "", "head_hash": None, "flagged": [], "flagged_count": 0,
        "signed_commands": 0, "unverified_commands": [], "unverified_count": 0, "rehashed": 0, "checkpoints": 0,
        "bad_checkpoints": []}
    assert not missing.ok and "nope" in missing.message


async def test_unknown_types_and_misfits_are_logged_flagged_and_left_out_of_reports(
    settings: Settings, artifact: Path
) -> None:
    request = release_for(artifact)
    envelope = {"release_id": request.release_id, "service": "shop", "environment": "prod",
                "occurred_at": datetime.now(UTC).isoformat()}
    teleported = {**envelope, "event_id": "teleport-1", "type": "ReleaseTeleported", "to": "mars"}
    forged = {**envelope, "event_id": "forged-1", "type": "DeploymentSucceeded"}  # no version: not a real one
    misplaced = json.loads(request.model_dump_json()) | {"event_id": "misplaced-1"}
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        await publish_raw(settings.nats_url, "slipway.evt.release.teleported", json.dumps(teleported).encode(),
                          {"Nats-Msg-Id": "teleport-1"})
        await publish_raw(settings.nats_url, subjects.DEPLOYMENT_SUCCEEDED, json.dumps(forged).encode(),
                          {"Nats-Msg-Id": "forged-1"})
        await publish_raw(settings.nats_url, subjects.DEPLOYMENT_STARTED, json.dumps(misplaced).encode(),
                          {"Nats-Msg-Id": "misplaced-1"})
        audit = await logged(settings, 4)
        status = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS,
                                    QueryReleases(release_id=request.release_id))
    assert audit.ok, audit.message
    assert audit.data["records"] == 4 and audit.data["flagged_count"] == 3
    assert "3 flagged, left out of reports" in audit.message
    reasons = " | ".join(flag["reason"] for flag in audit.data["flagged"])
    assert "type 'ReleaseTeleported' is not a declared event type" in reasons
    assert "does not validate as DeploymentSucceeded: version: Field required" in reasons
    misplaced_reason = f"a ReleaseRequested belongs on {subjects.RELEASE_REQUESTED}, it arrived on {subjects.DEPLOYMENT_STARTED}"
    assert misplaced_reason in reasons
    # The forged success does not make the release succeeded: only the real request counts.
    assert [(r["state"], r["events"]) for r in status.data["releases"]] == [("requested", 1)]
    with sqlite3.connect(settings.data_dir / "metrics-collector.db") as db:
        kept = {row[0] for row in db.execute("SELECT event_id FROM event_log")}
    db.close()
    assert kept == {request.event_id, "teleport-1", "forged-1", "misplaced-1"}


async def test_an_event_from_the_future_is_logged_flagged_and_counts_in_no_report(
    settings: Settings, artifact: Path
) -> None:
    request = release_for(artifact)
    now = datetime.now(UTC)
    ahead = DeploymentSucceeded.caused_by(request, SOURCE, occurred_at=now + timedelta(days=2), version=request.version,
                                          previous_version="0.9.0")
    skewed = RollbackCompleted.caused_by(request, "rollback-controller", occurred_at=now + timedelta(seconds=30),
                                         deployment_id=request.release_id, bad_version=request.version,
                                         restored_version="0.9.0", root_cause="tolerated skew", failed_at=now)
    async with running(build(settings)):
        for event in (request, ahead, skewed):
            await publish_event(settings.nats_url, event)
        audit = await logged(settings, 3)
        status = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS,
                                    QueryReleases(release_id=request.release_id))
        dora = await send_command(settings.nats_url, subjects.CMD_DORA, QueryDora(days=30))
    assert audit.ok and audit.data["records"] == 3 and audit.data["flagged_count"] == 1, audit.message
    [flag] = audit.data["flagged"]
    assert flag["seq"] == 2 and "after the collector received it" in flag["reason"], flag
    # Half a minute of clock skew is believed: the rollback counts; the success two days ahead does not.
    assert [r["state"] for r in status.data["releases"]] == ["rolled back"]
    assert dora.ok and dora.data["deployments"] == 0


async def test_oversize_or_missing_envelope_fields_are_dead_lettered_with_the_reason(
    settings: Settings, artifact: Path, watcher: EventWatcher
) -> None:
    request = release_for(artifact)
    body = json.loads(request.model_dump_json())
    huge = body | {"event_id": "e" * 100_000}
    anonymous = {k: v for k, v in body.items() if k != "event_id"}
    async with running(build(settings)):
        await publish_raw(settings.nats_url, request.subject, json.dumps(huge).encode(), {"Nats-Msg-Id": "huge-1"})
        await publish_raw(settings.nats_url, request.subject, json.dumps(anonymous).encode(), {"Nats-Msg-Id": "anon-1"})
        await publish_event(settings.nats_url, request)
        letters = await watcher.wait_for(lambda subject, _b: subject == "slipway.dlq.metrics-collector-events", count=2)
        audit = await logged(settings, 1)
    errors = sorted(letter["error"] for letter in letters)
    assert errors[0].startswith("invalid LoggedEvent: event_id: Field required")
    assert errors[1].startswith("invalid LoggedEvent: event_id: String should have at most 64 characters")
    assert audit.ok and audit.data["records"] == 1 and audit.data["flagged_count"] == 0


async def test_a_log_created_before_flags_existed_keeps_working(settings: Settings, artifact: Path) -> None:
    # The event_log table as the collector created it before event_flags existed (create_all does not alter it).
    settings.data_dir.mkdir(parents=True)
    with sqlite3.connect(settings.data_dir / "metrics-collector.db") as db:
        db.execute(
            "CREATE TABLE event_log (seq INTEGER NOT NULL PRIMARY KEY, event_id VARCHAR(64) NOT NULL UNIQUE, "
            "type VARCHAR(100) NOT NULL, subject VARCHAR(300) NOT NULL, release_id VARCHAR(128) NOT NULL, "
            "service VARCHAR(63) NOT NULL, environment VARCHAR(63) NOT NULL, occurred_at DATETIME NOT NULL, "
            "recorded_at DATETIME NOT NULL, payload TEXT NOT NULL, prev_hash VARCHAR(64) NOT NULL UNIQUE, "
            "hash VARCHAR(64) NOT NULL)"
        )
    db.close()
    request = release_for(artifact)
    stray = json.loads(request.model_dump_json()) | {"event_id": "stray-1", "type": "Stray"}
    # Not about a release: this old table's NOT NULL columns get empty strings, and no projection moves.
    lifted = {"event_id": "lifted-1", "type": "FreezeLifted", "freeze_id": "f-1", "occurred_at": datetime.now(UTC).isoformat()}
    async with running(build(settings)):
        await publish_event(settings.nats_url, request)
        await publish_raw(settings.nats_url, "slipway.evt.stray", json.dumps(stray).encode(),
                          {"Nats-Msg-Id": "stray-1"})
        await publish_raw(settings.nats_url, subjects.FREEZE_LIFTED, json.dumps(lifted).encode(),
                          {"Nats-Msg-Id": "lifted-1"})
        audit = await logged(settings, 3)
        status = await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, QueryReleases())
    assert audit.ok and audit.data["records"] == 3 and audit.data["flagged_count"] >= 1  # the stray at least
    assert [r["release_id"] for r in status.data["releases"]] == [request.release_id]
