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
from contracts.audit_queries import ShowAudit, WhoAudit
from contracts.commands import CommandResult, QueryDora, QueryReleases, VerifyAudit
from contracts.envelope import Model
from libs.bus import describe
from libs.service_catalogue import ServiceCatalogue
from services.dashboard.live import LiveFeed
from services.dashboard.metrics import CONTENT_TYPE, DashboardMetrics
from services.dashboard.queries import Queries, QueryUnavailable
from services.dashboard.teams import team_figures

RELEASES_FOR_TEAMS = 1000  # the releases whose services the per-team table covers
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


def read_api(queries: Queries, feed: LiveFeed, metrics: DashboardMetrics, catalogue: ServiceCatalogue) -> APIRouter:
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
    async def audit(full: bool = False, from_seq: int | None = None, to_seq: int | None = None) -> dict[str, Any]:
        """Verify the hash-chained audit trail from the newest signed checkpoint that holds (`full`: all of it;
        `from_seq`/`to_seq`: a range); `ok` is false, with where it breaks, when it does not verify."""
        question = query(VerifyAudit, full=full or None, from_seq=from_seq, to_seq=to_seq)
        result = await ask(queries, subjects.CMD_AUDIT_VERIFY, question)
        return {"ok": result.ok, "message": result.message, **result.data}

    @api.get("/api/audit/events", tags=["audit"])
    async def audit_events(release_id: str | None = None, service: str | None = None, team: str | None = None,
                           actor: str | None = None, environment: str | None = None,
                           type: Annotated[list[str] | None, Query(description="Event types (repeat)")] = None,
                           since: Annotated[str | None, Query(description="ISO 8601 or ago: 2h, 7d")] = None,
                           until: Annotated[str | None, Query(description="ISO 8601 or ago: 30m")] = None,
                           limit: int | None = None, page: int | None = None,
                           after: Annotated[int | None, Query(description="The previous page's next_after")] = None,
                           ) -> dict[str, Any]:
        """A page of the logged events matching every filter, in log order: `slipway audit show`'s query."""
        question = query(ShowAudit, release_id=release_id, service=service, team=team, actor=actor,
                         environment=environment, types=type, since=since, until=until, limit=limit, page=page,
                         after=after)
        return answered(await ask(queries, subjects.CMD_AUDIT_SHOW, question))

    @api.get("/api/audit/who/{release_id}", tags=["audit"])
    async def audit_who(release_id: str) -> dict[str, Any]:
        """Who requested a release, which commit and artifact it deployed, who approved and intervened, the outcome."""
        result = await ask(queries, subjects.CMD_AUDIT_WHO, query(WhoAudit, release_id=release_id))
        if not result.ok:
            raise HTTPException(404, result.message)
        return {"message": result.message, **result.data}

    @api.get("/api/dora", tags=["dora"])
    async def dora(service: str | None = None, environment: str | None = None,
                   days: Annotated[int | None, Query(description="Window in days, up to today")] = None) -> dict[str, Any]:
        """The DORA figures of one service and/or environment, or of everything."""
        question = query(QueryDora, service=service, environment=environment, days=days)
        return answered(await ask(queries, subjects.CMD_DORA, question))

    @api.get("/api/dora/teams", tags=["dora"])
    async def dora_teams(environment: str | None = None, days: int | None = None) -> dict[str, Any]:
        """One row per team (the service catalogue's owners) of the services with releases in the log."""
        query(QueryDora, environment=environment, days=days)  # refuse bad parameters before asking anything
        listed = answered(await ask(queries, subjects.CMD_RELEASE_STATUS, QueryReleases(limit=RELEASES_FOR_TEAMS)))
        services = sorted({str(r["service"]) for r in listed.get("releases", []) if r.get("service")})
        by_team: dict[str, dict[str, dict[str, Any]]] = {}
        for service in services:
            reply = answered(await ask(queries, subjects.CMD_DORA,
                                       query(QueryDora, service=service, environment=environment, days=days)))
            by_team.setdefault(catalogue.team_of(service) or "(no team)", {})[service] = reply
        return {"teams": [team_figures(team, figures) for team, figures in sorted(by_team.items())]}

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
