"""The dashboard's pure parts and its read API over a fake query port: no NATS, no server process."""

from typing import Any

import pytest
from fastapi import FastAPI
import httpx

from contracts import subjects
from contracts.commands import CommandResult, QueryDora, QueryReleases
from contracts.dora_queries import QueryDoraTeams
from contracts.envelope import Model
from services.dashboard.handlers import read_api
from services.dashboard.live import LiveFeed
from services.dashboard.metrics import DashboardMetrics
from services.dashboard.progress import Releases, duration_s
from services.dashboard.queries import QueryUnavailable

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


def client(queries: FakeQueries) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(read_api(queries, LiveFeed(DashboardMetrics()), DashboardMetrics()))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://dashboard")


@pytest.mark.parametrize("path, reason", [
    ("/api/dora?days=0", "days"), ("/api/dora?service=Not%20A%20Name", "service"),
    ("/api/releases?limit=5000", "limit"), ("/api/releases?page=0", "page"), ("/api/audit/events?release_id=x&page=-1", "page"), ("/api/dora/teams?days=99999", "days"), ("/api/alerts?limit=0", "limit"),
    ("/api/dora/teams?since=2030-02-01&until=2030-01-01", "after until"), ("/api/dora?days=3&since=2030-01-01", "not both"),
    ("/api/dora?team=Bad%20Team", "team"), ("/api/dora/teams?page=0", "page"),
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
    bottlenecks = await client(FakeQueries()).get("/api/bottlenecks")
    assert bottlenecks.status_code == 501 and "projection" in bottlenecks.json()["detail"]
