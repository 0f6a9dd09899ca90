"""`audit show`, `audit who` and `audit export` against a real collector (real nats-server, real SQLite), the
CLI run as a user runs it."""

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cloudevents.core.formats.json import JSONFormat

from contracts import subjects
from contracts.audit_queries import AuditEventsReply, ShowAudit, WhoAudit, WhoReply
from contracts.commands import CommandResult, VerifyAudit
from contracts.envelope import Event
from contracts.events import (ApprovalRecorded, DeploymentSucceeded, FreezeDeclared, ReleaseApproved, ReleaseRequested,
                              RollbackCompleted)
from contracts.release import ReleaseSpec
from libs.bus import ensure_streams
from libs.client import connected, publish_event, publish_raw, send_command
from libs.settings import Settings
from services.dashboard.app import DashboardServer
from services.metrics_collector.app import build
from tests.component.test_dashboard import token_of
from tests.component.test_metrics_collector import started, step
from tests.conftest import running
from tests.support.poll import eventually
from tests.support.people import People
from tests.support.releases import release_for

SLIPWAY = str(Path(sys.executable).parent / "slipway")
NOW = datetime.now(UTC)


def history(artifact: Path) -> tuple[ReleaseRequested, ReleaseRequested, list[Event]]:
    shop = release_for(artifact, "2.0.0", requested_by="dana@example.com", occurred_at=NOW - timedelta(hours=3))
    cart = release_for(artifact, "3.0.0", service="cart", team="web", occurred_at=NOW - timedelta(minutes=30))
    spec = ReleaseSpec.model_validate(shop.model_dump())
    events: list[Event] = [
        shop,
        ApprovalRecorded.caused_by(shop, "gatekeeper", actor="person:alice", occurred_at=NOW - timedelta(hours=3),
                                   roles=["release-manager"], comment="ship it"),
        ReleaseApproved.caused_by(shop, "gatekeeper", actor="service:gatekeeper", release=spec, reasons=["approved"],
                                  approvers=["person:alice"], occurred_at=NOW - timedelta(hours=3)),
        started(shop, NOW - timedelta(hours=2, minutes=50), committed_at=NOW - timedelta(hours=4)),
        step(shop, NOW - timedelta(hours=2, minutes=45), 0, 100),
        DeploymentSucceeded.caused_by(shop, "deployer", actor="service:deployer", version="2.0.0",
                                      previous_version="1.0.0", occurred_at=NOW - timedelta(hours=2, minutes=40)),
        cart,
        RollbackCompleted.caused_by(cart, "deployer", actor="service:deployer", deployment_id=cart.release_id,
                                    bad_version="3.0.0", restored_version="2.9.0", root_cause="errors",
                                    failed_at=NOW - timedelta(minutes=20), occurred_at=NOW - timedelta(minutes=19)),
        FreezeDeclared(environment="prod", freeze_id="fz-1", starts_at=NOW, ends_at=NOW + timedelta(hours=1),
                       reason="holiday", actor="person:alice", source="gatekeeper"),
    ]
    return shop, cart, events


async def show(settings: Settings, **filters: object) -> AuditEventsReply:
    result = await send_command(settings.nats_url, subjects.CMD_AUDIT_SHOW, ShowAudit(**filters))
    assert result.ok, result.message
    return AuditEventsReply.model_validate(result.data)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.pyz"
    path.write_bytes(b"app")
    return path


async def slipway(*args: str, data_dir: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "SLIPWAY_NATS_URL", "SLIPWAY_CREDENTIALS")}
    proc = await asyncio.create_subprocess_exec(SLIPWAY, "--data-dir", str(data_dir), *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_show_filters_pages_and_who_answers_from_the_log(settings: Settings, artifact: Path,
                                                              tmp_path: Path) -> None:
    shop, cart, events = history(artifact)
    future = {"event_id": "from-the-future", "type": "ReleaseBlocked", "release_id": "later", "service": "shop",
              "environment": "prod", "reasons": ["x"], "occurred_at": (NOW + timedelta(days=1)).isoformat()}
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await publish_raw(settings.nats_url, subjects.RELEASE_BLOCKED, json.dumps(future).encode(),
                          {"Nats-Msg-Id": "from-the-future"})

        async def everything() -> CommandResult | None:
            audit = await send_command(settings.nats_url, subjects.CMD_AUDIT_VERIFY, VerifyAudit())
            return audit if audit.data["records"] >= len(events) + 1 else None

        await eventually(everything, 10, "every event logged")

        of_shop = await show(settings, release_id=shop.release_id)
        assert of_shop.total == 6 and [e.type for e in of_shop.events] == [
            "ReleaseRequested", "ApprovalRecorded", "ReleaseApproved", "DeploymentStarted", "StepStarted",
            "DeploymentSucceeded"]
        assert all(e.intact and e.flag is None for e in of_shop.events)
        # A DeploymentSucceeded names no team: it is filed under its release's.
        web = await show(settings, team="web")
        assert [(e.type, e.team) for e in web.events] == [("ReleaseRequested", "web"), ("RollbackCompleted", "web")]
        assert [e.type for e in (await show(settings, actor="person:alice")).events] == [
            "ApprovalRecorded", "FreezeDeclared"]
        outcomes = await show(settings, types=["DeploymentSucceeded", "RollbackCompleted"], service="cart")
        assert [e.release_id for e in outcomes.events] == [cart.release_id]
        recent = await show(settings, since="1h", until=(NOW + timedelta(hours=1)).isoformat(), environment="prod")
        assert [e.type for e in recent.events] == ["ReleaseRequested", "RollbackCompleted", "FreezeDeclared"]
        flagged = (await show(settings, release_id="later")).events
        assert len(flagged) == 1 and "after the collector received it" in str(flagged[0].flag)

        first = await show(settings, service="shop", limit=4)
        rest = await show(settings, service="shop", limit=4, after=first.next_after)
        assert (first.total, len(first.events), rest.total, len(rest.events), rest.next_after) == (7, 4, 7, 3, None)
        assert [e.seq for e in first.events + rest.events] == sorted({e.seq for e in first.events + rest.events})
        past = await show(settings, service="shop", limit=4, page=3)
        assert (past.total, past.events, past.next_after) == (7, [], None)

        async with connected(settings.nats_url) as nc:
            refused = [CommandResult.model_validate_json((await nc.request(subjects.CMD_AUDIT_SHOW, body, timeout=5)).data)
                       for body in (b'{"types": ["Nope"]}', b'{"since": "last tuesday"}', b'{"page": -1}')]
        assert [r.ok for r in refused] == [False, False, False]
        assert refused[0].message == ("invalid filter: 'Nope' is not an event type: not declared in slipway's contracts "
                                      "and not in the log")
        assert "neither an ISO 8601 time" in refused[1].message and "page:" in refused[2].message

        who = await send_command(settings.nats_url, subjects.CMD_AUDIT_WHO, WhoAudit(release_id=shop.release_id))
        assert who.ok, who.message
        found = WhoReply.model_validate(who.data)
        assert (found.requested_by, found.requested_via, found.commit_sha, found.artifact_digest) == (
            "dana@example.com", "ci:test", "abc1234", shop.artifact.digest)
        assert [(a.actor, a.comment) for a in found.approvers] == [("person:alice", "ship it")]
        assert (found.outcome, found.deployed_version, found.team) == ("deployed", "2.0.0", "payments")
        missing = await send_command(settings.nats_url, subjects.CMD_AUDIT_WHO, WhoAudit(release_id="nope"))
        assert not missing.ok and "nope is not in the event log" in missing.message

        code, out, err = await slipway("--nats-url", settings.nats_url, "audit", "show", "--release", shop.release_id,
                                       data_dir=tmp_path / "cli")
        assert code == 0, err
        assert "dana@example.com" in out and "abc1234" in out and "person:alice" in out and "DeploymentSucceeded" in out
        code, _, err = await slipway("--nats-url", settings.nats_url, "audit", "show", "--type", "Nope",
                                     data_dir=tmp_path / "cli")
        assert code == 1 and "'Nope' is not an event type" in err
        code, _, err = await slipway("--nats-url", settings.nats_url, "audit", "show", "--since", "soon",
                                     data_dir=tmp_path / "cli")
        assert code == 2 and "neither an ISO 8601 time" in err

        exported = tmp_path / "audit.jsonl"
        code, _, err = await slipway("--nats-url", settings.nats_url, "audit", "export", "--service", "shop",
                                     "--output", str(exported), data_dir=tmp_path / "cli")
        assert code == 0 and "exported 7 of 7 matching events" in err, err
    lines = exported.read_bytes().splitlines()
    read = [JSONFormat().read(None, line) for line in lines]
    assert [e.get_type() for e in read] == [
        "dev.slipway.ReleaseRequested.v1", "dev.slipway.ApprovalRecorded.v1", "dev.slipway.ReleaseApproved.v1",
        "dev.slipway.DeploymentStarted.v1", "dev.slipway.StepStarted.v1", "dev.cdevents.service.deployed.0.3.0",
        "dev.slipway.ReleaseBlocked.v1"]
    deployed = read[5]
    assert (deployed.get_id(), deployed.get_subject(), deployed.get_source()) == (
        events[5].event_id, shop.release_id, "/slipway/deployer")
    cdevent = deployed.get_data()
    assert isinstance(cdevent, dict) and cdevent["subject"]["content"] == {
        "environment": {"id": "prod"}, "artifactId": "pkg:generic/shop@2.0.0"}
    assert cdevent["customData"]["event_id"] == events[5].event_id
    assert read[-1].get_extension("slipwayflag") and read[0].get_extension("slipwayseq") == 1


async def test_the_dashboard_serves_the_same_audit_query_over_http(settings: Settings, artifact: Path,
                                                                  people: People) -> None:
    shop, cart, events = history(artifact)
    sre = {"Authorization": f"Bearer {token_of(people, 'sam')}"}
    developer = {"Authorization": f"Bearer {token_of(people, 'dev')}"}  # reads team payments only
    await ensure_streams(settings.nats_url, None)
    server = DashboardServer(settings)
    serving = asyncio.create_task(server.run_until_stopped())
    try:
        await asyncio.wait_for(server.ready.wait(), timeout=20)
        async with running(build(settings)), httpx.AsyncClient(base_url=server.url, timeout=30, headers=sre) as http:
            for event in events:
                await publish_event(settings.nats_url, event)

            async def all_logged() -> dict | None:
                answer = (await http.get("/api/audit")).json()
                return answer if answer.get("records", 0) >= len(events) else None

            verified = await eventually(all_logged, 10, "every event logged")
            assert verified["ok"] and verified["mode"] == "full"
            page = (await http.get("/api/audit/events", params={
                "team": "payments", "type": ["DeploymentSucceeded", "ApprovalRecorded"], "since": "1d"})).json()
            over_nats = await show(settings, team="payments", types=["DeploymentSucceeded", "ApprovalRecorded"],
                                   since="1d")
            assert [e["seq"] for e in page["events"]] == [e.seq for e in over_nats.events] and page["total"] == 2
            who = (await http.get(f"/api/audit/who/{shop.release_id}")).json()
            assert (who["requested_by"], who["outcome"]) == ("dana@example.com", "deployed")
            unknown = await http.get("/api/audit/events", params={"type": "Nope"})
            assert unknown.status_code == 400 and "'Nope' is not an event type" in unknown.json()["detail"]
            bad_time = await http.get("/api/audit/events", params={"until": "whenever"})
            assert bad_time.status_code == 422 and "neither an ISO 8601 time" in bad_time.json()["detail"]
            ranged = (await http.get("/api/audit", params={"from_seq": 2, "to_seq": 3})).json()
            assert (ranged["ok"], ranged["mode"], ranged["rehashed"]) == (True, "range", 2)
            # A developer reads their own team's trail, and nobody else's.
            own = (await http.get("/api/audit/events", headers=developer)).json()
            assert {e["team"] for e in own["events"]} == {"payments"} and own["total"] == 6
            other = await http.get("/api/audit/events", params={"team": "web"}, headers=developer)
            assert other.status_code == 403 and "person:dev reads the teams payments" in other.json()["detail"]
            theirs = await http.get(f"/api/audit/who/{cart.release_id}", headers=developer)
            assert theirs.status_code == 403
            assert (await http.get("/api/audit", headers=developer)).status_code == 403
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=10)
