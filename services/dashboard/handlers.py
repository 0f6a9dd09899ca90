"""The read API: each route builds the collector's query from its parameters, asks, answers JSON.

Bad parameters are refused with 422 and the reason the query's own model gives, before anything is
asked; a collector that does not answer is a 503 naming the query.
"""

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ValidationError

from contracts import subjects
from contracts.commands import CommandResult, QueryDora, QueryReleases, VerifyAudit
from contracts.dora_queries import QueryDoraTeams
from contracts.envelope import Model
from libs.bus import describe
from services.dashboard.live import LiveFeed
from services.dashboard.metrics import CONTENT_TYPE, DashboardMetrics
from services.dashboard.queries import Queries, QueryUnavailable

BOTTLENECKS_MISSING = ("bottleneck timings are not recorded yet: they come with the metrics-collector's bottleneck "
                       "projection (issue 9, item 3)")


def query(model: type[Model], **params: Any) -> Model:
    """The collector's query from HTTP parameters, or 422 with what is wrong with them."""
    try:
        return model(**{name: value for name, value in params.items() if value is not None})
    except ValidationError as invalid:
        raise HTTPException(422, f"invalid {model.__name__}: {describe(invalid)}") from invalid


async def ask(queries: Queries, subject: str, question: Model) -> CommandResult:
    try:
        return await queries.ask(subject, question)
    except QueryUnavailable as exc:
        raise HTTPException(503, str(exc)) from exc


def answered(result: CommandResult) -> dict[str, Any]:
    """The reply's data with its message; a refused query is the asker's mistake (400), with the reason."""
    if not result.ok:
        raise HTTPException(400, result.message)
    return {"message": result.message, **result.data}


def read_api(queries: Queries, feed: LiveFeed, metrics: DashboardMetrics) -> APIRouter:
    api = APIRouter()

    @api.get("/api/releases", tags=["releases"])
    async def releases(limit: Annotated[int | None, Query(description="Releases per page")] = None,
                       page: Annotated[int | None, Query(description="Which page, from 1")] = None) -> dict[str, Any]:
        """Releases newest first, a page at a time, from the event log (the collector's status query)."""
        return answered(await ask(queries, subjects.CMD_RELEASE_STATUS, query(QueryReleases, limit=limit, page=page)))

    @api.get("/api/releases/{release_id}", tags=["releases"])
    async def release(release_id: str, limit: int | None = None, page: int | None = None) -> dict[str, Any]:
        """One release with a page of its logged events, and what the dashboard saw of its progress on the bus."""
        question = query(QueryReleases, release_id=release_id, limit=limit, page=page)
        result = await ask(queries, subjects.CMD_RELEASE_STATUS, question)
        if not result.ok:
            raise HTTPException(404, result.message)
        progress = feed.releases.get(release_id)
        return {"message": result.message, **result.data, "progress": progress.as_data() if progress else None}

    @api.get("/api/live", tags=["releases"])
    async def live() -> dict[str, Any]:
        """Releases as the dashboard saw them on the bus since it started: weights and verdicts per step."""
        return {"releases": [p.as_data() for p in feed.releases.newest_first()]}

    @api.get("/api/audit", tags=["audit"])
    async def audit() -> dict[str, Any]:
        """Verify the hash-chained audit trail; `ok` is false, with where it breaks, when it does not verify."""
        result = await ask(queries, subjects.CMD_AUDIT_VERIFY, VerifyAudit())
        return {"ok": result.ok, "message": result.message, **result.data}

    @api.get("/api/audit/events", tags=["audit"])
    async def audit_events(release_id: str, limit: int | None = None, page: int | None = None) -> dict[str, Any]:
        """A page of one release's logged events, in the order they happened (the only filter the collector
        answers today; service, team, actor, type and time filters come with its audit show query)."""
        question = query(QueryReleases, release_id=release_id, limit=limit, page=page)
        result = await ask(queries, subjects.CMD_RELEASE_STATUS, question)
        if not result.ok:
            raise HTTPException(404, result.message)
        found = result.data.get("releases") or [{}]
        return {"release_id": release_id, "page": result.data.get("page"), "total": result.data.get("total"),
                "events": found[0].get("history") or []}

    @api.get("/api/dora", tags=["dora"])
    async def dora(service: str | None = None, team: str | None = None, environment: str | None = None,
                   days: Annotated[int | None, Query(description="Window in days, up to today (default 30)")] = None,
                   since: Annotated[str | None, Query(description="Window's first UTC day (instead of days)")] = None,
                   until: Annotated[str | None, Query(description="Window's last UTC day (with since)")] = None,
                   bands: Annotated[bool, Query(description="Also the 2024 DORA report's tier of each figure")] = False,
                   ) -> dict[str, Any]:
        """The DORA figures of one service, team and/or environment, or of everything (the collector's QueryDora)."""
        question = query(QueryDora, service=service, team=team, environment=environment, days=days, since=since,
                         until=until, bands=bands)
        return answered(await ask(queries, subjects.CMD_DORA, question))

    @api.get("/api/dora/teams", tags=["dora"])
    async def dora_teams(environment: str | None = None, days: int | None = None, since: str | None = None,
                         until: str | None = None, bands: bool = False, page: int | None = None,
                         limit: int | None = None) -> dict[str, Any]:
        """One row of DORA figures per team, the same definitions for every team (the collector's QueryDoraTeams)."""
        question = query(QueryDoraTeams, environment=environment, days=days, since=since, until=until, bands=bands,
                         page=page, limit=limit)
        return answered(await ask(queries, subjects.CMD_DORA_TEAMS, question))

    @api.get("/api/alerts", tags=["alerts"])
    async def alerts(limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        """Alerts raised since the dashboard started, newest first (`slipway alerts tail --since-start`
        replays the whole alert stream)."""
        return {"alerts": list(feed.alerts)[:limit]}

    @api.get("/api/bottlenecks", tags=["bottlenecks"], status_code=501)
    async def bottlenecks() -> dict[str, Any]:
        """Not served yet: answers 501 with the reason until the collector keeps bottleneck timings."""
        raise HTTPException(501, BOTTLENECKS_MISSING)

    @api.get("/api/stream", response_class=EventSourceResponse, tags=["live"])
    async def stream() -> Any:
        """Server-sent events: `release` (an event and the release's progress after it), `alert`, `resync`."""
        async with feed.page() as messages:
            yield ServerSentEvent(event="hello", data={"releases": len(feed.releases.newest_first())})
            while True:
                message = await messages.get()
                yield ServerSentEvent(event=message["kind"], data=message)

    @api.get("/metrics", tags=["metrics"])
    async def prometheus() -> Response:
        """Prometheus exposition: deployments, rollbacks and verdicts counted, release durations."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return api
