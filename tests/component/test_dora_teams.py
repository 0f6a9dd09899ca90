"""DORA for every team through a real collector (real NATS, SQLite, and PostgreSQL where it runs): figures per
team and per scope by one definition, rework and why, bands when asked, pages, unknown names and bad windows."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from contracts import subjects
from contracts.commands import CommandResult, QueryDora
from contracts.dora_queries import DoraScopeReply, DoraTeamsReply, QueryDoraTeams
from contracts.envelope import Event
from contracts.events import DeploymentSucceeded, ReleaseRequested, RollbackCompleted, Verdict
from libs.client import connected, publish_event, send_command
from libs.settings import Settings
from services.dashboard.app import DashboardServer
from services.metrics_collector import domain
from services.metrics_collector.app import build
from services.metrics_collector.dora import RELATIVE_ERROR
from tests.component.test_cli import slipway
from tests.component.test_dashboard import dashboard, token_of  # noqa: F401 - the fixture: a real dashboard process on a free port
from tests.component.test_metrics_collector import SOURCE, logged, started, step, verdict
from tests.conftest import running
from tests.support.people import People
from tests.support.postgres import own_database
from tests.support.releases import release_for

NOW = datetime.now(UTC)


def shipped(artifact: Path, team: str, service: str, days_ago: float, lead_hours: float, *, fail: bool = False,
            environment: str = "prod", **spec: object) -> list[Event]:
    """One release's events; a deployment `lead_hours` after its commit (plus the 9 minutes it takes)."""
    at = NOW - timedelta(days=days_ago)
    request: ReleaseRequested = release_for(artifact, f"1.{uuid.uuid4().int % 10_000}.0", service=service, team=team,
                                            environment=environment, occurred_at=at - timedelta(minutes=5), **spec)
    events: list[Event] = [request, started(request, at, committed_at=at - timedelta(hours=lead_hours)),
                           step(request, at + timedelta(minutes=1), 0, 10),
                           verdict(request, at + timedelta(minutes=2), Verdict.FAIL if fail else Verdict.PASS, ["ok"])]
    if fail:
        events.append(RollbackCompleted.caused_by(
            request, SOURCE, occurred_at=at + timedelta(minutes=6), deployment_id=request.release_id,
            bad_version=request.version, restored_version="0.9.0", root_cause="errors", failed_at=at))
    else:
        events.append(DeploymentSucceeded.caused_by(request, SOURCE, occurred_at=at + timedelta(minutes=9),
                                                    version=request.version, previous_version="0.9.0"))
    return events


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "app.pyz"
    path.write_bytes(b"dummy artifact")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def collector_settings(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Settings]:
    """The collector's database on SQLite, or in a PostgreSQL database made and dropped here."""
    if request.param == "sqlite":
        yield settings
        return
    async with own_database() as url:
        yield settings.model_copy(update={"database_url": url})


async def ask(settings: Settings, subject: str, query: object) -> CommandResult:
    return await send_command(settings.nats_url, subject, query)  # type: ignore[arg-type]


async def test_one_table_of_dora_figures_per_team_with_rework_and_its_reasons(
    collector_settings: Settings, artifact: Path
) -> None:
    settings = collector_settings
    payments_leads = [2, 5, 30, 1]
    events = [
        *shipped(artifact, "payments", "shop", 1, payments_leads[0]),
        *shipped(artifact, "payments", "shop", 2, payments_leads[1], unplanned=True),
        *shipped(artifact, "payments", "cart", 3, payments_leads[2], release_class="emergency", incident="INC-1"),
        *shipped(artifact, "payments", "cart", 4, payments_leads[3], fail=True),
        *shipped(artifact, "web", "site", 1, 3, incident="INC-2"),
        *shipped(artifact, "web", "site", 2, 4),
        *shipped(artifact, "web", "site", 1, 6, environment="staging"),
        *shipped(artifact, "web", "site", 12, 8),  # outside a 7-day window, inside 30 days
    ]
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events), timeout=30)
        teams = DoraTeamsReply.model_validate((await ask(settings, subjects.CMD_DORA_TEAMS,
                                                         QueryDoraTeams(environment="prod", days=7, bands=True))).data)
        second = DoraTeamsReply.model_validate((await ask(settings, subjects.CMD_DORA_TEAMS,
                                                          QueryDoraTeams(days=30, limit=1, page=2))).data)
        past = await ask(settings, subjects.CMD_DORA_TEAMS, QueryDoraTeams(days=30, limit=1, page=3))
        payments = await ask(settings, subjects.CMD_DORA, QueryDora(team="payments", environment="prod", days=7))
        since = await ask(settings, subjects.CMD_DORA, QueryDora(
            team="web", environment="prod", since=(NOW - timedelta(days=13)).date(),
            until=(NOW - timedelta(days=10)).date()))

    assert (teams.total, [t.team for t in teams.teams]) == (2, ["payments", "web"])
    mine, theirs = teams.teams
    assert (mine.services, mine.deployments, mine.changes, mine.failed_changes, mine.restores) == (
        ["cart", "shop"], 3, 4, 1, 1)
    assert mine.deployment_frequency_per_day == pytest.approx(3 / 7)
    # Rework: said by the release (unplanned), inferred from the emergency class; the incident link of the same
    # emergency release does not count it twice.
    assert (mine.rework, mine.rework_reasons.declared, mine.rework_reasons.emergency, mine.rework_reasons.incident) == (
        2, 1, 1, 0)
    assert mine.rework_rate == pytest.approx(2 / 3)
    leads = [h * 3600 + 9 * 60 for h in payments_leads[:3]]  # the failed one never deployed
    assert mine.lead_time_median_s == pytest.approx(domain.percentile(leads, 50), rel=RELATIVE_ERROR)
    assert mine.lead_time_p90_s == pytest.approx(domain.percentile(leads, 90), rel=RELATIVE_ERROR)
    assert mine.time_to_restore_median_s == pytest.approx(5 * 60, rel=RELATIVE_ERROR)
    assert mine.bands is not None and mine.bands.year == 2024 and "2024" in mine.bands.source
    assert (mine.bands.deployment_frequency, mine.bands.lead_time, mine.bands.recovery_time) == ("high", "elite", "elite")
    assert (theirs.services, theirs.deployments, theirs.rework, theirs.rework_reasons.incident) == (["site"], 2, 1, 1)
    assert teams.percentile_relative_error == RELATIVE_ERROR

    # Pages of teams over 30 days in every environment; a page past the end still counts them.
    assert (second.total, [t.team for t in second.teams], second.teams[0].deployments) == (2, ["web"], 4)
    assert past.ok and past.data["teams"] == [] and "no teams on page 3: 2 teams" in past.message

    # One team's scope answers the same figures as its row, with samples; no bands unless asked.
    scoped = DoraScopeReply.model_validate(payments.data)
    assert (scoped.team, scoped.deployments, scoped.rework, scoped.lead_time_p90_s, scoped.bands) == (
        "payments", 3, 2, mine.lead_time_p90_s, None)
    assert len(scoped.lead_times) == 3 and scoped.time_to_restore_p90_s == mine.time_to_restore_p90_s
    assert "rework rate 67% (2: 1 declared, 1 emergency, 0 incident)" in payments.message

    # --since/--until: only the release 12 days ago, over a 4-day window.
    window = DoraScopeReply.model_validate(since.data)
    assert (window.window_days, window.deployments, window.deployment_frequency_per_day) == (4, 1, 0.25)


async def test_unknown_names_answer_empty_figures_that_say_so_and_bad_windows_are_refused(
    settings: Settings, artifact: Path
) -> None:
    events = shipped(artifact, "payments", "shop", 1, 2)
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
        nobody = await ask(settings, subjects.CMD_DORA, QueryDora(team="nobody", days=30))
        quiet = await ask(settings, subjects.CMD_DORA, QueryDora(team="payments", environment="staging", days=30))
        no_teams = await ask(settings, subjects.CMD_DORA_TEAMS, QueryDoraTeams(environment="nowhere"))
        future = await ask(settings, subjects.CMD_DORA, QueryDora(since=(NOW + timedelta(days=2)).date()))
        async with connected(settings.nats_url) as nc:
            backwards = CommandResult.model_validate_json((await nc.request(subjects.CMD_DORA_TEAMS, json.dumps(
                {"since": "2030-02-01", "until": "2030-01-01"}).encode(), timeout=5)).data)
            both = CommandResult.model_validate_json((await nc.request(subjects.CMD_DORA, json.dumps(
                {"days": 7, "since": "2030-01-01"}).encode(), timeout=5)).data)
        alive = await ask(settings, subjects.CMD_DORA, QueryDora(team="payments"))

    assert nobody.ok and nobody.data["deployments"] == 0
    assert "no deployment, change or restore of team 'nobody'" in nobody.data["note"] and "team 'nobody'" in nobody.message
    assert quiet.ok and quiet.data["note"] == "no deployment or change of all services of team payments in staging in the window"
    assert no_teams.ok and no_teams.data["teams"] == [] and "no team has a deployment" in no_teams.message
    assert not future.ok and "after today" in future.message
    assert not backwards.ok and "invalid QueryDoraTeams" in backwards.message and "after until" in backwards.message
    assert not both.ok and "give days, or since (and until), not both" in both.message
    assert alive.ok and alive.data["deployments"] == 1  # the service kept answering


async def test_the_cli_shows_dora_per_team_and_one_team_with_bands_only_when_asked(
    settings: Settings, artifact: Path, tmp_path: Path
) -> None:
    events = [*shipped(artifact, "payments", "shop", 1, 2, unplanned=True), *shipped(artifact, "payments", "shop", 2, 3),
              *shipped(artifact, "web", "site", 1, 30, fail=True)]
    url = ["--nats-url", settings.nats_url]
    async with running(build(settings)):
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
        teams = await slipway(*url, "metrics", "teams", "--environment", "prod", "--days", "7", data_dir=tmp_path)
        banded = await slipway(*url, "metrics", "dora", "--team", "payments", "--bands", data_dir=tmp_path)
        plain = await slipway(*url, "metrics", "dora", "--team", "payments", data_dir=tmp_path)
        unknown = await slipway(*url, "metrics", "dora", "--service", "nothing-here", data_dir=tmp_path)
        backwards = await slipway(*url, "metrics", "teams", "--since", "2030-02-01", "--until", "2030-01-01",
                                  data_dir=tmp_path)
        not_a_day = await slipway(*url, "metrics", "dora", "--since", "last tuesday", data_dir=tmp_path)

    code, shown, err = teams
    assert code == 0, shown + err
    rows = {cells[0]: cells for line in shown.splitlines() if (cells := [c.strip() for c in line.split("│")[1:-1]])}
    assert rows["payments"][1:3] == ["2", "0.29"] and rows["payments"][6] == "50.0% (1: 1 declared)", shown
    assert rows["web"][1] == "0" and rows["web"][4] == "100.0% (1/1)", shown
    assert "elite" not in shown and "bands" not in shown  # figures first, bands only when asked
    code, shown, err = banded
    assert code == 0, shown + err
    assert "rework rate" in shown and "bands (DORA, Accelerate State of DevOps report 2024" in shown.replace("\n", " ")
    assert "lead time elite" in shown.replace("\n", " ")
    assert plain[0] == 0 and "bands" not in plain[1]
    assert unknown[0] == 0 and "no deployment, change or restore of service 'nothing-here'" in unknown[1].replace("\n", " ")
    assert backwards[0] != 0 and "since (2030-02-01) is after until (2030-01-01)" in backwards[2].replace("\n", " ")
    assert not_a_day[0] != 0 and "--since must be a day such as 2030-01-31" in not_a_day[2].replace("\n", " ")


async def test_the_dashboard_serves_the_same_dora_over_http_as_the_collector_over_nats(
    settings: Settings, artifact: Path, dashboard: DashboardServer, people: People  # noqa: F811 - the fixture imported above
) -> None:
    events = [*shipped(artifact, "payments", "shop", 1, 2, release_class="emergency"), *shipped(artifact, "web", "site", 1, 4)]
    bearer = {"Authorization": f"Bearer {token_of(people, 'sam')}"}  # an SRE: reads every team
    async with running(build(settings)), httpx.AsyncClient(base_url=dashboard.url, timeout=20, headers=bearer) as http:
        for event in events:
            await publish_event(settings.nats_url, event)
        await logged(settings, len(events))
        over_nats = await ask(settings, subjects.CMD_DORA_TEAMS, QueryDoraTeams(environment="prod", days=7, bands=True))
        over_http = await http.get("/api/dora/teams", params={"environment": "prod", "days": 7, "bands": "true"})
        one_nats = await ask(settings, subjects.CMD_DORA, QueryDora(team="payments"))
        one_http = await http.get("/api/dora", params={"team": "payments"})
        refused = await http.get("/api/dora/teams", params={"since": "2030-02-01", "until": "2030-01-01"})
        future = await http.get("/api/dora", params={"since": (NOW + timedelta(days=3)).date().isoformat()})
    assert over_http.status_code == 200, over_http.text
    assert over_http.json() == {"message": over_nats.message, **over_nats.data}
    assert [t["team"] for t in over_http.json()["teams"]] == ["payments", "web"]
    assert over_http.json()["teams"][0]["rework_reasons"]["emergency"] == 1
    assert one_http.json()["deployments"] == one_nats.data["deployments"] == 1
    assert one_http.json()["lead_time_median_s"] == one_nats.data["lead_time_median_s"]
    assert refused.status_code == 422 and "after until" in refused.json()["detail"]
    assert future.status_code == 400 and "after today" in future.json()["detail"]
