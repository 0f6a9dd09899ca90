"""The bottleneck projection through a real collector (real NATS, real SQLite): a release that waits for
approval, is approved by a person, is paused by an incident and held by an inconclusive verdict; its
artifact's performance check fails then passes. The query answers it per release and per team, and a
rebuild from the log gives the same rows."""

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import subjects
from contracts.bottleneck_queries import BottlenecksReply, QueryBottlenecks, WaitKind
from contracts.commands import ApproveRelease, ResumeRelease
from contracts.envelope import Event, new_event_id
from contracts.events import (ApprovalRecorded, DeploymentSucceeded, EvidenceSubmitted, ReleaseApproved, ReleaseResumed,
                              ReleaseWaiting, RolloutPaused, RolloutResumed, Verdict)
from libs.client import connected, publish_event, send_command
from libs.settings import Settings
from services.metrics_collector.app import build
from services.metrics_collector.bottleneck_counts import bottleneck_team_days
from services.metrics_collector.bottlenecks import TABLES, bottleneck_daily
from services.metrics_collector.rebuild import rebuild_projections
from tests.component.test_cli import slipway
from tests.support.postgres import own_database
from tests.component.test_metrics_collector import SOURCE, logged, started, step, verdict
from tests.conftest import running
from tests.support.people import People
from tests.support.releases import release_for

INCIDENT = "inc-" + "0" * 26


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.pyz"
    path.write_bytes(b"dummy artifact")
    return path


def waited_and_paused(artifact: Path, people: People, at: datetime) -> list[Event]:
    request = release_for(artifact, "2.0.0", occurred_at=at)
    minutes = lambda n: at + timedelta(minutes=n)  # noqa: E731 - reads as the release's clock
    approve = people.sign("alice", subjects.CMD_APPROVE, ApproveRelease(release_id=request.release_id, comment="ok"))
    resume = people.sign("dev", f"{subjects.CMD_RESUME_RELEASE}.payments.shop",
                         ResumeRelease(release_id=request.release_id, comment="looks fine"))
    gate = dict(summary="approval", deadline=minutes(600))
    return [
        request,
        ReleaseWaiting.caused_by(request, "gatekeeper", occurred_at=minutes(1), waiting_for="pending-approval", **gate),
        ApprovalRecorded.caused_by(request, "gatekeeper", occurred_at=minutes(31), actor="person:alice", comment="ok",
                                   signed_command=approve),
        ReleaseApproved.caused_by(request, "gatekeeper", occurred_at=minutes(31), release=request, reasons=["ok"]),
        started(request, minutes(32), committed_at=at - timedelta(hours=1)),
        step(request, minutes(33), 0, 10),
        RolloutPaused.caused_by(request, "gatekeeper", occurred_at=minutes(34), incident_id=INCIDENT,
                                reason="incident"),
        verdict(request, minutes(35), Verdict.INCONCLUSIVE, ["too few requests"]),
        RolloutResumed.caused_by(request, "gatekeeper", occurred_at=minutes(44), incident_id=INCIDENT,
                                 reason="resolved"),
        ReleaseResumed.caused_by(request, SOURCE, occurred_at=minutes(55), actor="person:dev", step_index=0,
                                 comment="looks fine", signed_command=resume),
        DeploymentSucceeded.caused_by(request, SOURCE, occurred_at=minutes(60), version="2.0.0", previous_version=None),
    ]


def evidence(digest: str, at: datetime, outcome: str) -> EvidenceSubmitted:
    return EvidenceSubmitted(event_id=new_event_id(), actor="ci:payments", source="ci", occurred_at=at, team="payments",
                             digest=digest, kind="performance", outcome=outcome)


def snapshot(database: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(database) as db:
        rows = {t.name: sorted(db.execute(f"SELECT * FROM {t.name}").fetchall(), key=repr)
                for t in (*TABLES, bottleneck_daily, bottleneck_team_days)}
    db.close()
    return rows


async def ask(settings: Settings, query: QueryBottlenecks) -> tuple[BottlenecksReply, str]:
    result = await send_command(settings.nats_url, subjects.CMD_BOTTLENECKS, query)
    assert result.ok, result.message
    return BottlenecksReply.model_validate(result.data), result.message


def assert_measured(reply: BottlenecksReply, digest: str) -> None:
    [release] = reply.releases
    waits = {(w.kind, round(w.seconds)) for w in release.waits}
    assert waits == {(WaitKind.APPROVAL, 30 * 60), (WaitKind.ANALYSIS, 2 * 60), (WaitKind.PAUSED, 10 * 60),
                     (WaitKind.HELD, 20 * 60)}
    assert [(i.command, i.actor) for i in release.interventions] == [("approve", "person:alice"),
                                                                     ("resume_release", "person:dev")]
    [team] = reply.teams
    assert team.team == "payments" and team.releases == 1 and team.interventions == 2 and team.flaky_checks == 1
    assert [f.kind for f in team.ranked][:2] == [WaitKind.APPROVAL, WaitKind.HELD]
    assert team.ranked[0].median_s == pytest.approx(1800)
    assert [(f.digest, f.check, f.failures) for f in reply.flaky] == [(digest, "performance", 1)]


async def test_a_release_that_waited_for_approval_and_was_paused_is_measured_per_release_and_team(
        settings: Settings, artifact: Path, people: People) -> None:
    at = datetime.now(UTC) - timedelta(hours=2)
    events = waited_and_paused(artifact, people, at)
    digest = events[0].artifact.digest  # type: ignore[attr-defined]
    checks = [evidence(digest, at - timedelta(minutes=20), "fail"), evidence(digest, at - timedelta(minutes=10), "pass")]
    async with running(build(settings)):
        for event in [*events, *checks]:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events) + len(checks))
        reply, message = await ask(settings, QueryBottlenecks(team="payments", days=7))
        elsewhere, _ = await ask(settings, QueryBottlenecks(team="search", days=7))
        past_the_end, _ = await ask(settings, QueryBottlenecks(page=2, limit=1))
        async with connected(settings.nats_url) as nc:
            refused = await nc.request(subjects.CMD_BOTTLENECKS, b'{"days": 0}', timeout=10)
        code, printed, errors = await slipway("--nats-url", settings.nats_url, "metrics", "bottlenecks", "--team",
                                              "payments", "--days", "7", data_dir=settings.data_dir)

    assert_measured(reply, digest)
    assert "payments: approval 30m in all, median 30m" in message
    assert elsewhere.total == 0 and elsewhere.releases == [] and elsewhere.flaky_total == 0
    assert past_the_end.total == 1 and past_the_end.releases == []
    assert code == 0, errors
    assert "Team payments: 1 releases, 2 people's commands, 1 flaky checks" in printed
    assert "approve by person:alice, resume_release by person:dev" in " ".join(printed.split())
    assert b"days" in refused.data and b'"ok":false' in refused.data.replace(b" ", b"")

    database = settings.data_dir / "metrics-collector.db"
    appended = snapshot(database)
    assert all(appended.values()), appended
    assert await rebuild_projections(settings) == 1
    assert snapshot(database) == appended


@pytest.mark.postgres
async def test_the_projection_and_its_query_hold_on_postgresql(settings: Settings, artifact: Path, people: People) -> None:
    at = datetime.now(UTC) - timedelta(hours=2)
    events = waited_and_paused(artifact, people, at)
    digest = events[0].artifact.digest  # type: ignore[attr-defined]
    checks = [evidence(digest, at - timedelta(minutes=20), "fail"), evidence(digest, at - timedelta(minutes=10), "pass")]
    async with own_database() as url:
        on_postgres = settings.model_copy(update={"database_url": url})
        async with running(build(on_postgres)):
            for event in [*events, *checks]:
                await publish_event(settings.nats_url, event)
            await logged(on_postgres, len(events) + len(checks))
            reply, _ = await ask(on_postgres, QueryBottlenecks(team="payments", days=7))
        assert_measured(reply, digest)
        assert await rebuild_projections(on_postgres) == 1
        async with running(build(on_postgres)):
            rebuilt, _ = await ask(on_postgres, QueryBottlenecks(team="payments", days=7))
        assert rebuilt == reply
