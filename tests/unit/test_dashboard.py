"""The dashboard's pure parts and its read API over a fake query port: no NATS, no server process."""

from typing import Any

import pytest
from fastapi import FastAPI
import httpx

from contracts import subjects
from contracts.bottleneck_queries import QueryBottlenecks
from contracts.commands import CommandResult, QueryDora, QueryReleases
from contracts.dora_queries import QueryDoraTeams
from contracts.envelope import Model
from libs.service_catalogue import ServiceCatalogue
from services.dashboard.auth import Authenticator
from services.dashboard.handlers import read_api
from services.dashboard.live import LiveFeed
from services.dashboard.metrics import DashboardMetrics
from services.dashboard.progress import Releases, duration_s
from services.dashboard.queries import QueryUnavailable
from tests.conftest import TEST_CATALOGUE
from tests.unit.test_dashboard_tokens import NOW, Keys

T0 = "2026-11-01T10:00:00+00:00"


def event(kind: str, at: str = T0, release_id: str = "shop-1", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "release_id": release_id, "service": "shop", "environment": "prod", "occurred_at": at,
            **fields}


def test_a_release_is_folded_from_its_events_with_weights_and_verdicts_per_step() -> None:
    releases = Releases()
    releases.apply(event("ReleaseRequested", version="2.0.0", team="payments"))
    releases.apply(event("StepStarted", step_index=0, step_count=3, weight=10))
    releases.apply(event("StepVerdict", step_index=0, verdict="pass", error_rate=0.0))
    releases.apply(event("StepStarted", step_index=1, step_count=3, weight=50))
    progress = releases.apply(event("StepVerdict", step_index=1, verdict="marginal", error_rate=0.02))
    assert progress is not None
    assert (progress.state, progress.weight, progress.step, progress.steps) == ("deploying", 50, 1, 3)
    assert [(v["step"], v["verdict"], v["weight"]) for v in progress.verdicts] == [(0, "pass", 10), (1, "marginal", 50)]
    done = releases.apply(event("DeploymentSucceeded", "2026-11-01T10:01:30+00:00"))
    assert done is not None and (done.state, done.weight, done.team) == ("succeeded", 100, "payments")


def test_events_not_about_a_release_are_not_rows_and_memory_is_bounded() -> None:
    releases = Releases(kept=2)
    assert releases.apply({"type": "FreezeDeclared", "freeze_id": "f1"}) is None
    for n in range(3):
        releases.apply(event("ReleaseRequested", release_id=f"r{n}"))
    assert [p.release_id for p in releases.newest_first()] == ["r2", "r1"]


@pytest.mark.parametrize("start, end, expected", [
    (T0, "2026-11-01T10:01:30+00:00", 90.0), (None, T0, None), (T0, "yesterday", None), (T0, "2026-11-01T10:01:30", None),
])
def test_duration_needs_two_readable_zoned_times(start: str | None, end: str, expected: float | None) -> None:
    assert duration_s(start, end) == expected


def test_metrics_count_outcomes_rollbacks_verdicts_and_time_the_releases_whose_request_was_seen() -> None:
    metrics, releases = DashboardMetrics(), Releases()
    for body in (event("ReleaseRequested"), event("StepVerdict", verdict="fail"),
                 event("RollbackCompleted", "2026-11-01T10:00:42+00:00"),
                 event("DeploymentSucceeded", release_id="unseen-request")):
        metrics.observe(body, releases.apply(body))
    text = metrics.exposition().decode()
    assert 'slipway_deployments_total{environment="prod",outcome="rolled_back",service="shop"} 1.0' in text
    assert 'slipway_deployments_total{environment="prod",outcome="succeeded",service="shop"} 1.0' in text
    assert 'slipway_rollbacks_total{environment="prod",service="shop"} 1.0' in text
    assert 'slipway_verdicts_total{verdict="fail"} 1.0' in text
    assert 'slipway_release_duration_seconds_sum{outcome="rolled_back"} 42.0' in text
    assert 'slipway_release_duration_seconds_count{outcome="succeeded"}' not in text  # no request seen: not timed


class FakeQueries:
    """Answers as the collector does, from canned replies; records what was asked."""

    def __init__(self, replies: dict[str, CommandResult] | None = None, down: bool = False) -> None:
        self.replies, self.down, self.asked = replies or {}, down, []  # type: list[tuple[str, Model]]

    async def ask(self, subject: str, query: Model) -> CommandResult:
        self.asked.append((subject, query))
        if self.down:
            raise QueryUnavailable(f"no service answers {subject}")
        return self.replies.get(subject, CommandResult(ok=True, message="fine", data={}))


KEYS = Keys()


def client(queries: FakeQueries, feed: LiveFeed | None = None, token: str | None = KEYS.token("alice")) -> httpx.AsyncClient:
    """The read API as a person reads it: alice (a release manager) unless another token is given."""
    app = FastAPI()
    app.include_router(read_api(queries, feed or LiveFeed(DashboardMetrics()), DashboardMetrics(),
                                ServiceCatalogue.load(TEST_CATALOGUE), Authenticator(KEYS.lookup, lambda: NOW)))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://dashboard", headers=headers)


@pytest.mark.parametrize("path, reason", [
    ("/api/dora?days=0", "days"), ("/api/dora?service=Not%20A%20Name", "service"),
    ("/api/releases?limit=5000", "limit"), ("/api/releases?page=0", "page"), ("/api/audit/events?release_id=x&page=-1", "page"), ("/api/dora/teams?days=99999", "days"), ("/api/alerts?limit=0", "limit"),
    ("/api/dora/teams?since=2030-02-01&until=2030-01-01", "after until"), ("/api/dora?days=3&since=2030-01-01", "not both"),
    ("/api/dora?team=Bad%20Team", "team"), ("/api/dora/teams?page=0", "page"), ("/api/releases?team=Bad%20Team", "teams"),
])
async def test_bad_parameters_are_refused_with_the_reason_before_anything_is_asked(path: str, reason: str) -> None:
    queries = FakeQueries()
    answer = await client(queries).get(path)
    assert answer.status_code == 422, answer.text
    assert reason in answer.text
    assert queries.asked == []


async def test_each_route_asks_the_collectors_own_query_and_answers_its_data() -> None:
    listed = CommandResult(ok=True, message="2 releases", data={"releases": [
        {"release_id": "s-1", "service": "shop"}, {"release_id": "q-1", "service": "search"}]})
    queries = FakeQueries({subjects.CMD_RELEASE_STATUS: listed})
    http = client(queries)
    assert (await http.get("/api/releases?limit=2&page=3")).json()["releases"][0]["release_id"] == "s-1"
    assert queries.asked[-1] == (subjects.CMD_RELEASE_STATUS, QueryReleases(limit=2, page=3))
    await http.get("/api/dora/teams?days=7&environment=prod&bands=true&page=2")
    assert queries.asked[-1] == (subjects.CMD_DORA_TEAMS, QueryDoraTeams(days=7, environment="prod", bands=True, page=2))
    await http.get("/api/dora?team=payments&since=2030-01-01&until=2030-01-31")
    assert queries.asked[-1] == (subjects.CMD_DORA, QueryDora(team="payments", since="2030-01-01", until="2030-01-31"))


async def test_a_refused_query_is_a_400_an_unknown_release_a_404_a_silent_collector_a_503() -> None:
    refused = CommandResult(ok=False, message="release x is not in the event log")
    assert (await client(FakeQueries({subjects.CMD_RELEASE_STATUS: refused})).get("/api/releases/x")).status_code == 404
    assert (await client(FakeQueries({subjects.CMD_RELEASE_STATUS: refused})).get("/api/releases")).status_code == 400
    down = await client(FakeQueries(down=True)).get("/api/dora")
    assert down.status_code == 503 and "no service answers" in down.json()["detail"]
    bottlenecks = await client(FakeQueries()).get("/api/bottlenecks?days=0")
    assert bottlenecks.status_code == 422 and "days" in bottlenecks.json()["detail"]


async def test_without_a_credential_every_data_route_is_a_401_with_the_reason_and_metrics_stay_open() -> None:
    queries = FakeQueries()
    anonymous = client(queries, token=None)
    for path in ("/api/releases", "/api/live", "/api/audit", "/api/dora", "/api/alerts", "/api/bottlenecks", "/api/me"):
        answer = await anonymous.get(path)
        assert answer.status_code == 401, path
        assert "no credential" in answer.json()["detail"] and answer.headers["www-authenticate"].startswith("Bearer")
    forged = await client(queries, token=KEYS.token("alice", signed_by="dev")).get("/api/releases")
    assert forged.status_code == 401 and "bad signature" in forged.json()["detail"]
    assert queries.asked == []
    assert (await anonymous.get("/metrics")).status_code == 200


async def test_a_team_scoped_reader_sees_their_teams_only_and_is_told_why_not_the_rest() -> None:
    listed = CommandResult(ok=True, message="2 releases", data={"total": 2, "releases": [
        {"release_id": "s-1", "service": "shop", "team": "payments"},
        {"release_id": "q-1", "service": "search", "team": "discovery"}]})
    per_team = CommandResult(ok=True, message="2 teams", data={"total": 2, "teams": [
        {"team": "discovery", "services": ["search"]}, {"team": "payments", "services": ["shop"]}]})
    queries = FakeQueries({subjects.CMD_RELEASE_STATUS: listed, subjects.CMD_DORA_TEAMS: per_team})
    feed = LiveFeed(DashboardMetrics())
    feed.receive("slipway.alert.warning.payments.shop", {"team": "payments", "summary": "mine"})
    feed.receive("slipway.alert.warning.discovery.search", {"team": "discovery", "summary": "theirs"})
    dev = client(queries, feed, token=KEYS.token("dev"))
    me = (await dev.get("/api/me")).json()
    assert me["identity"] == "person:dev" and me["teams"] == ["payments"]
    await dev.get("/api/releases?limit=5")  # the collector filters, so the page and its total are theirs alone
    assert queries.asked[-1] == (subjects.CMD_RELEASE_STATUS, QueryReleases(teams=["payments"], limit=5))
    assert (await dev.get("/api/releases?team=discovery")).status_code == 403
    assert (await client(queries).get("/api/releases?team=discovery&team=payments")).status_code == 200
    assert queries.asked[-1] == (subjects.CMD_RELEASE_STATUS, QueryReleases(teams=["discovery", "payments"]))
    assert [a["summary"] for a in (await dev.get("/api/alerts")).json()["alerts"]] == ["mine"]
    audit = await dev.get("/api/audit")
    assert audit.status_code == 403 and "covers every team" in audit.json()["detail"]
    other = await dev.get("/api/bottlenecks?team=discovery")
    assert other.status_code == 403 and "person:dev reads the teams payments" in other.json()["detail"]
    assert (await dev.get("/api/dora?service=search")).status_code == 403
    assert (await dev.get("/api/dora?team=discovery")).status_code == 403
    assert (await dev.get("/api/bottlenecks")).status_code == 200  # their only team, asked for them
    assert queries.asked[-1] == (subjects.CMD_BOTTLENECKS, QueryBottlenecks(team="payments"))
    teams = (await dev.get("/api/dora/teams")).json()["teams"]
    assert [t["team"] for t in teams] == ["payments"]
    everyone = client(queries, feed)
    assert len((await everyone.get("/api/releases")).json()["releases"]) == 2
    assert len((await everyone.get("/api/alerts")).json()["alerts"]) == 2
