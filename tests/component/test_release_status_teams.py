"""The release-status query filtered by team through a real collector (real NATS, SQLite): over NATS, from the
CLI (`slipway status --team`) and from the dashboard over real HTTP, where a team-scoped reader's list is their
teams' alone, counted by the collector."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from contracts import subjects
from contracts.commands import CommandResult, QueryReleases
from contracts.envelope import Event
from contracts.queries import ReleasesReply
from libs.client import connected, publish_event, send_command
from libs.settings import Settings
from services.dashboard.app import DashboardServer
from services.metrics_collector.app import build
from tests.component.test_cli import slipway
from tests.component.test_dashboard import dashboard, token_of  # noqa: F401 - the fixture: a real dashboard on a free port
from tests.component.test_metrics_collector import logged
from tests.conftest import running
from tests.support.people import People
from tests.support.releases import release_for

NOW = datetime.now(UTC)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.pyz"
    path.write_bytes(b"dummy artifact")
    return path


def requests(artifact: Path) -> list[Event]:
    """Five releases, newest first by the minute: payments 3, web 1, discovery 1."""
    teams = ["payments", "web", "payments", "discovery", "payments"]
    return [release_for(artifact, f"1.{n}.0", team=team, service="shop" if team == "payments" else "site",
                        occurred_at=NOW - timedelta(minutes=n))
            for n, team in enumerate(teams)]


async def status(settings: Settings, query: QueryReleases) -> CommandResult:
    return await send_command(settings.nats_url, subjects.CMD_RELEASE_STATUS, query)


async def test_the_collector_pages_and_counts_the_releases_of_the_teams_asked_for(
    settings: Settings, artifact: Path
) -> None:
    events = requests(artifact)
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
        everyone = await status(settings, QueryReleases())
        payments = await status(settings, QueryReleases(teams=["payments"], limit=2))
        second = await status(settings, QueryReleases(teams=["payments"], limit=2, page=2))
        two = await status(settings, QueryReleases(teams=["web", "discovery"]))
        nobody = await status(settings, QueryReleases(teams=["nobody"]))
        theirs = await status(settings, QueryReleases(release_id=events[1].release_id, teams=["payments"]))
        mine = await status(settings, QueryReleases(release_id=events[0].release_id, teams=["payments"]))
        async with connected(settings.nats_url) as nc:
            bad = CommandResult.model_validate_json((await nc.request(
                subjects.CMD_RELEASE_STATUS, json.dumps({"teams": ["Payments Team"]}).encode(), timeout=5)).data)
            empty = CommandResult.model_validate_json((await nc.request(
                subjects.CMD_RELEASE_STATUS, json.dumps({"teams": []}).encode(), timeout=5)).data)

    assert ReleasesReply.model_validate(everyone.data).total == 5
    first = ReleasesReply.model_validate(payments.data)
    assert first.total == 3 and [r.release_id for r in first.releases] == [events[0].release_id, events[2].release_id]
    assert "releases of team payments 1-2 of 3" in payments.message
    rest = ReleasesReply.model_validate(second.data)
    assert rest.total == 3 and [r.release_id for r in rest.releases] == [events[4].release_id]
    both = ReleasesReply.model_validate(two.data)
    assert (both.total, {r.team for r in both.releases}) == (2, {"web", "discovery"})
    assert nobody.ok and nobody.data["total"] == 0 and nobody.data["releases"] == []
    assert not theirs.ok and f"{events[1].release_id} is of team web, not of team payments" in theirs.message
    assert mine.ok and mine.data["releases"][0]["team"] == "payments"
    assert not bad.ok and "invalid QueryReleases" in bad.message and "teams" in bad.message
    assert not empty.ok and "teams" in empty.message


async def test_slipway_status_shows_one_teams_releases(settings: Settings, artifact: Path, tmp_path: Path) -> None:
    events = requests(artifact)
    url = ["--nats-url", settings.nats_url]
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
        web = await slipway(*url, "status", "--team", "web", data_dir=tmp_path)
        paged = await slipway(*url, "status", "--team", "payments", "--limit", "2", data_dir=tmp_path)
        none = await slipway(*url, "status", "--team", "nobody", data_dir=tmp_path)
        bad = await slipway(*url, "status", "--team", "Not A Team", data_dir=tmp_path)

    code, shown, err = web
    assert code == 0, shown + err
    assert events[1].release_id in shown and events[0].release_id not in shown and events[3].release_id not in shown
    code, shown, err = paged
    assert code == 0, shown + err
    assert "page 1 of 2 (3 releases" in shown.replace("\n", " ")
    assert none[0] == 0 and "no releases of team nobody yet" in none[1]
    assert bad[0] != 0 and "teams.0" in bad[2] and "pattern" in bad[2].replace("\n", " ")


async def test_a_team_scoped_reader_lists_and_counts_their_teams_releases_over_http(
    settings: Settings, artifact: Path, dashboard: DashboardServer, people: People  # noqa: F811 - the fixture imported above
) -> None:
    events = requests(artifact)
    dev = {"Authorization": f"Bearer {token_of(people, 'dev')}"}  # a developer of team payments
    sam = {"Authorization": f"Bearer {token_of(people, 'sam')}"}  # an SRE: every team
    async with running(build(settings)), httpx.AsyncClient(base_url=dashboard.url, timeout=20) as http:
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
        mine = await http.get("/api/releases", params={"limit": 2}, headers=dev)
        page_two = await http.get("/api/releases", params={"limit": 2, "page": 2}, headers=dev)
        asked = await http.get("/api/releases", params={"team": "payments"}, headers=dev)
        other = await http.get("/api/releases", params={"team": "web"}, headers=dev)
        everyone = await http.get("/api/releases", headers=sam)
        one_team = await http.get("/api/releases", params={"team": ["web", "discovery"]}, headers=sam)
        bad = await http.get("/api/releases", params={"team": "Bad Team"}, headers=sam)

    assert mine.status_code == 200, mine.text
    assert mine.json()["total"] == 3 and [r["team"] for r in mine.json()["releases"]] == ["payments", "payments"]
    assert [r["release_id"] for r in page_two.json()["releases"]] == [events[4].release_id]
    assert asked.json()["total"] == 3
    assert other.status_code == 403 and "person:dev reads the teams payments" in other.json()["detail"]
    assert everyone.json()["total"] == 5
    assert one_team.json()["total"] == 2 and {r["team"] for r in one_team.json()["releases"]} == {"web", "discovery"}
    assert bad.status_code == 422 and "teams" in bad.json()["detail"]
