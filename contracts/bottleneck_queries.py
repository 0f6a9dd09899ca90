"""Where releases wait: the metrics-collector's bottleneck query and its typed, paginated reply.

Asked on `slipway.cmd.metrics.bottlenecks` (CLI `slipway metrics bottlenecks`, dashboard
`/api/bottlenecks`); answered in CommandResult.data as a BottlenecksReply. A wait belongs to the
window of the day it began; a wait still going on counts up to the moment of the answer.
"""

from datetime import date, datetime
from enum import StrEnum

from pydantic import Field

from contracts.envelope import Model
from contracts.queries import PAGE_MAX, Page
from contracts.release import Team

FLAKY_SHOWN = 50  # the newest flaky checks a reply lists; flaky_total counts them all


class WaitKind(StrEnum):
    """What a release waited for. The gate's waits are its ReleaseWaiting.waiting_for, named shorter."""

    APPROVAL = "approval"  # pending-approval: sign-offs, risk approvals, exceptions
    FREEZE = "freeze"  # queued-for-window: a freeze or a blocked recurring window
    SLOT = "slot"  # waiting-for-slot: the concurrency limit of its environment
    INCIDENT = "incident"  # waiting-for-incident: an open incident where it would go
    CHANGE = "change"  # waiting-for-change: its change record
    PIR = "pir"  # waiting-for-pir: a post-implementation review its service owes
    PROMOTION = "promotion"  # waiting-for-promotion: success in the environment before
    REQUIREMENTS = "requirements"  # waiting-for-requirements: evidence or releases it requires
    PAUSED = "paused"  # RolloutPaused until RolloutResumed (an incident halts it mid-rollout)
    MANUAL_PAUSE = "manual-pause"  # a person's ReleasePaused until ReleaseResumed or ReleasePromoted
    HELD = "held"  # an inconclusive verdict until a person resumes, promotes or aborts it
    ANALYSIS = "analysis"  # StepStarted until that step's StepVerdict


class QueryBottlenecks(Model):
    """Waits, interventions and flaky checks of the releases that began in the window; one team or all."""

    team: Team | None = None
    days: int = Field(default=30, ge=1, le=3650, description="Window in days, up to today")
    limit: int = Field(default=20, ge=1, le=PAGE_MAX, description="Releases per page")
    page: int = Field(default=1, ge=1, le=1_000_000, description="Which page of releases, counting from 1")


class WaitFigure(Model):
    """One kind of wait over the window: its total, how many releases waited and their median."""

    kind: WaitKind
    releases: int = Field(ge=0, description="Releases whose waits for it are over (the median is over them)")
    waits: int = Field(ge=0, description="Separate waits, ongoing ones included (a release may wait twice)")
    total_s: float = Field(ge=0, description="All its waits added up, ongoing ones up to the moment of the answer")
    median_s: float | None = Field(
        ge=0, description="Median over those releases of each one's time waiting for it, off by less than 19% "
        "(from log-spaced buckets of their count and sum, so it costs the same however many releases there are; "
        "exact when its bucket holds one value); None: none is over")
    ongoing: int = Field(ge=0, description="Waits not over yet")


class TeamBottlenecks(Model):
    """A team's waits, biggest total first: the top of `ranked` is its biggest bottleneck."""

    team: str
    releases: int = Field(ge=0, description="Releases of the team that began in the window")
    ranked: list[WaitFigure]
    interventions: int = Field(ge=0, description="People's commands on those releases")
    flaky_checks: int = Field(ge=0, description="Checks of the team's artifacts that failed then passed")


class Wait(Model):
    kind: WaitKind
    started_at: datetime
    seconds: float = Field(ge=0)
    ongoing: bool = False


class Intervention(Model):
    """A person's signed command on the release: approve, reject, resume, abort, record_pir..."""

    command: str
    actor: str
    at: datetime
    event: str = Field(description="The event the command turned into")


class ReleaseBottlenecks(Model):
    release_id: str
    service: str
    environment: str
    team: str | None = None
    began_at: datetime
    waited_s: float = Field(ge=0, description="All its waits added up")
    waits: list[Wait]
    interventions: list[Intervention]


class FlakyCheck(Model):
    """A check of one artifact digest that failed and later passed, with nothing changed in the artifact."""

    digest: str
    check: str = Field(description="`verification`, or the evidence kind (performance, security...)")
    team: str | None = None
    service: str | None = None
    failures: int = Field(ge=1)
    first_failed_at: datetime
    passed_at: datetime


class BottlenecksReply(Page):
    """`total` and the page count releases that began in the window, most recent first."""

    window_days: int
    first_day: date
    last_day: date
    team: str | None = None
    teams: list[TeamBottlenecks] = Field(description="Per team, its waits ranked; biggest total wait first")
    releases: list[ReleaseBottlenecks]
    flaky: list[FlakyCheck] = Field(description=f"The newest {FLAKY_SHOWN} flaky checks")
    flaky_total: int = Field(ge=0)
