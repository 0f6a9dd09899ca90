"""The read API: each route builds the collector's query from its parameters, asks, answers JSON.

Every route that shows data needs a reader (services.dashboard.auth: 401 with the reason without one);
a reader scoped to some teams sees those teams' releases, alerts and figures only (403 with the reason
for another team's, or for what covers every team). /metrics stays open: loopback only, counters only.
Bad parameters are refused with 422 and the reason the query's own model gives, before anything is
asked; a collector that does not answer is a 503 naming the query.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ValidationError

from contracts import subjects
from contracts.audit_queries import ShowAudit, WhoAudit
from contracts.bottleneck_queries import QueryBottlenecks
from contracts.commands import CommandResult, QueryDora, QueryReleases, VerifyAudit
from contracts.dora_queries import QueryDoraTeams
from contracts.envelope import Model
from libs.bus import describe
from libs.dashboard_tokens import Reader
from libs.service_catalogue import ServiceCatalogue
from services.dashboard.auth import Authenticator, forbidden_team
from services.dashboard.live import LiveFeed
from services.dashboard.metrics import CONTENT_TYPE, DashboardMetrics
from services.dashboard.queries import Queries, QueryUnavailable



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


def read_api(queries: Queries, feed: LiveFeed, metrics: DashboardMetrics, catalogue: ServiceCatalogue,
             authenticator: Authenticator) -> APIRouter:
    api = APIRouter()
    Who = Annotated[Reader, Depends(authenticator)]

    def every_team(who: Reader, what: str) -> None:
        if who.teams is not None:
            raise HTTPException(403, f"{what} covers every team; {who.identity} reads the teams "
                                f"{', '.join(sorted(who.teams)) or 'none'} (a role beyond developer or team-lead reads all)")

    async def one_release(who: Reader, release_id: str, limit: int | None, page: int | None) -> CommandResult:
        result = await ask(queries, subjects.CMD_RELEASE_STATUS,
                           query(QueryReleases, release_id=release_id, limit=limit, page=page))
        if not result.ok:
            raise HTTPException(404, result.message)
        team = (result.data.get("releases") or [{}])[0].get("team")
        if not who.reads(team):
            raise forbidden_team(who, team, f"release {release_id}")
        return result

    @api.get("/api/me", tags=["auth"])
    async def me(who: Who) -> dict[str, Any]:
        """Who the credential names, which teams they read (null: every team), until when, and the token's id
        (what `slipway dashboard revoke` ends it by)."""
        return {"identity": who.identity, "teams": sorted(who.teams) if who.teams is not None else None,
                "expires_at": who.expires_at.isoformat(), "token_id": who.token_id}

    @api.get("/api/releases", tags=["releases"])
    async def releases(who: Who, limit: Annotated[int | None, Query(description="Releases per page")] = None,
                       page: Annotated[int | None, Query(description="Which page, from 1")] = None,
                       team: Annotated[list[str] | None, Query(description="Only these teams' releases (repeat)")] = None,
                       ) -> dict[str, Any]:
        """Releases newest first, a page at a time, from the event log (the collector's status query), of the
        teams asked for; a team-scoped reader's of their teams only (all of them unless some are asked for), the
        collector filtering, so pages and the total count those teams' releases alone."""
        if who.teams is not None and not team:
            if not who.teams:
                return {"message": f"{who.identity} reads no team's releases", "releases": [], "total": 0}
            team = sorted(who.teams)
        question = query(QueryReleases, teams=team, limit=limit, page=page)
        if (other := next((t for t in team or () if not who.reads(t)), None)) is not None:
            raise forbidden_team(who, other, "the releases asked for")
        return answered(await ask(queries, subjects.CMD_RELEASE_STATUS, question))

    @api.get("/api/releases/{release_id}", tags=["releases"])
    async def release(who: Who, release_id: str, limit: int | None = None, page: int | None = None) -> dict[str, Any]:
        """One release with a page of its logged events, and what the dashboard saw of its progress on the bus."""
        result = await one_release(who, release_id, limit, page)
        progress = feed.releases.get(release_id)
        return {"message": result.message, **result.data, "progress": progress.as_data() if progress else None}

    @api.get("/api/live", tags=["releases"])
    async def live(who: Who) -> dict[str, Any]:
        """Releases as the dashboard saw them on the bus since it started: weights and verdicts per step."""
        return {"releases": [p.as_data() for p in feed.releases.newest_first() if who.reads(p.team)]}

    @api.get("/api/audit", tags=["audit"])
    async def audit(who: Who, full: bool = False, from_seq: int | None = None,
                    to_seq: int | None = None) -> dict[str, Any]:
        """Verify the hash-chained audit trail from the newest signed checkpoint that holds (`full`: all of it;
        `from_seq`/`to_seq`: a range); `ok` is false, with where it breaks, when it does not verify."""
        every_team(who, "the audit trail")
        question = query(VerifyAudit, full=full or None, from_seq=from_seq, to_seq=to_seq)
        result = await ask(queries, subjects.CMD_AUDIT_VERIFY, question)
        return {"ok": result.ok, "message": result.message, **result.data}

    @api.get("/api/audit/events", tags=["audit"])
    async def audit_events(who: Who, release_id: str | None = None, service: str | None = None,
                           team: str | None = None, actor: str | None = None, environment: str | None = None,
                           type: Annotated[list[str] | None, Query(description="Event types (repeat)")] = None,
                           since: Annotated[str | None, Query(description="ISO 8601 or ago: 2h, 7d")] = None,
                           until: Annotated[str | None, Query(description="ISO 8601 or ago: 30m")] = None,
                           limit: int | None = None, page: int | None = None,
                           after: Annotated[int | None, Query(description="The previous page's next_after")] = None,
                           ) -> dict[str, Any]:
        """A page of the logged events matching every filter, in log order: `slipway audit show`'s query. A
        team-scoped reader names one of their teams (or reads their only one)."""
        if who.teams is not None:
            if team is None and len(who.teams) == 1:
                team = next(iter(who.teams))
            if team is None:
                every_team(who, "the audit trail without a team filter")
            elif not who.reads(team):
                raise forbidden_team(who, team, "the events asked for")
        question = query(ShowAudit, release_id=release_id, service=service, team=team, actor=actor,
                         environment=environment, types=type, since=since, until=until, limit=limit, page=page,
                         after=after)
        return answered(await ask(queries, subjects.CMD_AUDIT_SHOW, question))

    @api.get("/api/audit/who/{release_id}", tags=["audit"])
    async def audit_who(who: Who, release_id: str) -> dict[str, Any]:
        """Who requested a release, which commit and artifact it deployed, who approved and intervened, the outcome."""
        result = await ask(queries, subjects.CMD_AUDIT_WHO, query(WhoAudit, release_id=release_id))
        if not result.ok:
            raise HTTPException(404, result.message)
        if not who.reads(result.data.get("team")):
            raise forbidden_team(who, result.data.get("team"), f"release {release_id}")
        return {"message": result.message, **result.data}

    @api.get("/api/dora", tags=["dora"])
    async def dora(who: Who, service: str | None = None, team: str | None = None, environment: str | None = None,
                   days: Annotated[int | None, Query(description="Window in days, up to today (default 30)")] = None,
                   since: Annotated[str | None, Query(description="Window's first UTC day (instead of days)")] = None,
                   until: Annotated[str | None, Query(description="Window's last UTC day (with since)")] = None,
                   bands: Annotated[bool, Query(description="Also the 2024 DORA report's tier of each figure")] = False,
                   ) -> dict[str, Any]:
        """The DORA figures of one service, team and/or environment, or of everything (the collector's QueryDora)."""
        question = query(QueryDora, service=service, team=team, environment=environment, days=days, since=since,
                         until=until, bands=bands)
        if team is not None:
            if not who.reads(team):
                raise forbidden_team(who, team, f"team {team}")
        elif service is None:
            every_team(who, "DORA without a service or a team")
        elif not who.reads(owner := catalogue.team_of(service)):
            raise forbidden_team(who, owner, f"service {service}")
        return answered(await ask(queries, subjects.CMD_DORA, question))

    @api.get("/api/dora/teams", tags=["dora"])
    async def dora_teams(who: Who, environment: str | None = None, days: int | None = None, since: str | None = None,
                         until: str | None = None, bands: bool = False, page: int | None = None,
                         limit: int | None = None) -> dict[str, Any]:
        """One row of DORA figures per team, the same definitions for every team (the collector's QueryDoraTeams);
        a reader scoped to some teams gets their rows only."""
        question = query(QueryDoraTeams, environment=environment, days=days, since=since, until=until, bands=bands,
                         page=page, limit=limit)
        reply = answered(await ask(queries, subjects.CMD_DORA_TEAMS, question))
        reply["teams"] = [row for row in reply.get("teams", []) if who.reads(row.get("team"))]
        return reply

    @api.get("/api/alerts", tags=["alerts"])
    async def alerts(who: Who, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
        """Alerts raised since the dashboard started, newest first (`slipway alerts tail --since-start`
        replays the whole alert stream)."""
        return {"alerts": [a for a in feed.alerts if who.reads(a.get("team"))][:limit]}

    @api.get("/api/bottlenecks", tags=["bottlenecks"])
    async def bottlenecks(who: Who, team: str | None = None,
                          days: Annotated[int | None, Query(description="Releases that began in this many days")] = None,
                          limit: int | None = None, page: int | None = None) -> dict[str, Any]:
        """Where the window's releases waited (approval, freeze, slot, pause, hold, analysis...), ranked per team;
        each release's waits and people's commands; checks that failed then passed on the same artifact.
        A team-scoped reader names one of their teams (or has only one)."""
        if team is None and who.teams is not None and len(who.teams) == 1:
            team = next(iter(who.teams))
        question = query(QueryBottlenecks, team=team, days=days, limit=limit, page=page)
        if team is None:
            every_team(who, "bottlenecks without ?team=")
        elif not who.reads(team):
            raise forbidden_team(who, team, "the bottlenecks asked for")
        return answered(await ask(queries, subjects.CMD_BOTTLENECKS, question))

    @api.get("/api/stream", response_class=EventSourceResponse, tags=["live"])
    async def stream(who: Who) -> Any:
        """Server-sent events: `release` (an event and the release's progress after it), `alert`, `resync`."""
        async with feed.page() as messages:
            shown = [p for p in feed.releases.newest_first() if who.reads(p.team)]
            yield ServerSentEvent(event="hello", data={"releases": len(shown), "identity": who.identity})
            while True:
                message = await messages.get()
                if who.reads(_team_of(message)) or message["kind"] == "resync":
                    yield ServerSentEvent(event=message["kind"], data=message)

    @api.get("/metrics", tags=["metrics"])
    async def prometheus() -> Response:
        """Prometheus exposition: deployments, rollbacks and verdicts counted, release durations."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return api


def _team_of(message: dict[str, Any]) -> str | None:
    about = message.get("alert") or message.get("release") or {}
    return about.get("team") if isinstance(about, dict) else None
