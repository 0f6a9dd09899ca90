"""DORA for every team: the per-team query and the typed replies of both DORA queries.

`QueryDora` (contracts.commands) is answered with a `DoraScopeReply`, one service / team /
environment; `QueryDoraTeams` with a `DoraTeamsReply`, one row per team, a page at a time, every
row computed by the same definitions. Both carry their window's whole UTC days; percentiles come
from per-day histograms, within `percentile_relative_error` of the samples' own.
"""

from datetime import date
from typing import Annotated, Self

from pydantic import Field, model_validator

from contracts.envelope import Model, Name
from contracts.queries import PAGE_MAX, DoraReply, Page

WINDOW_DAYS_MAX = 3650
DEFAULT_DAYS = 30
# A UTC day on the wire, ISO 8601 (2030-01-31); the pattern bounds it in the schema.
Day = Annotated[date, Field(json_schema_extra={"pattern": r"^\d{4}-\d{2}-\d{2}$"})]
TEAMS_PAGE_DEFAULT = 50


def check_window(days: int | None, since: date | None, until: date | None) -> None:
    """Why a window cannot be asked for, raised as ValueError (pydantic reports it as the model's error)."""
    if until is not None and since is None:
        raise ValueError("until needs since: give since (and until), or days")
    if since is None:
        return
    if days is not None:
        raise ValueError("give days, or since (and until), not both")
    if until is not None and since > until:
        raise ValueError(f"since ({since}) is after until ({until})")
    if until is not None and (until - since).days + 1 > WINDOW_DAYS_MAX:
        raise ValueError(f"the window spans {(until - since).days + 1} days, more than {WINDOW_DAYS_MAX}")


class WindowQuery(Model):
    days: int | None = Field(default=None, ge=1, le=WINDOW_DAYS_MAX,
                             description=f"The window: from this many days ago to today ({DEFAULT_DAYS} unless since is given)")
    since: Day | None = Field(default=None, description="The window's first UTC day (instead of days)")
    until: Day | None = Field(default=None, description="The window's last UTC day (with since; default today)")
    bands: bool = Field(default=False, description="Also place each figure in the 2024 DORA report's tiers")

    @model_validator(mode="after")
    def a_window(self) -> Self:
        check_window(self.days, self.since, self.until)
        return self

    @property
    def window_days(self) -> int:
        return self.days or DEFAULT_DAYS


class QueryDoraTeams(WindowQuery):
    """One row of DORA figures per team that has facts in the window, teams in name order."""

    environment: Name | None = Field(default=None, description="Only this environment (e.g. prod)")
    page: int = Field(default=1, ge=1, le=1_000_000)
    limit: int = Field(default=TEAMS_PAGE_DEFAULT, ge=1, le=PAGE_MAX)


class ReworkReasons(Model):
    """Rework deployments by why slipway counts them: the release said so, or it inferred it."""

    declared: int = Field(default=0, ge=0, description="The release said it is unplanned (spec.unplanned)")
    emergency: int = Field(default=0, ge=0, description="Inferred from the emergency release class")
    incident: int = Field(default=0, ge=0, description="Inferred from a link to an incident")


class DoraBands(Model):
    """Each figure's band by itself, and where the thresholds come from; null where there is nothing to band."""

    source: str
    year: int
    deployment_frequency: str | None
    lead_time: str | None
    change_failure_rate: str | None
    recovery_time: str | None
    rework_rate: None = Field(default=None, description="No tiers were ever published for rework rate")


class DoraFigures(Model):
    """The figures DORA for every team adds to the four keys."""

    team: str | None = None
    time_to_restore_p90_s: float | None = None
    rework: int = Field(default=0, ge=0, description="Deployments that were unplanned fixes of a user-facing problem")
    rework_rate: float = Field(default=0.0, description="rework / deployments")
    rework_reasons: ReworkReasons = ReworkReasons()
    percentile_relative_error: float = Field(
        default=0.0, description="Medians and p90s are within this share of the samples' own (per-day histograms)")
    bands: DoraBands | None = None
    note: str | None = Field(default=None, description="Why the figures are empty, when they are")


class DoraScopeReply(DoraReply, DoraFigures):
    """QueryDora's reply: one service, team and/or environment (or everything) over the window."""


class TeamDora(Model):
    team: str = Field(description='"(no team)" for releases that name none')
    services: list[str]
    deployments: int
    deployment_frequency_per_day: float
    lead_time_median_s: float | None
    lead_time_p90_s: float | None
    changes: int
    failed_changes: int
    change_failure_rate: float
    restores: int
    time_to_restore_median_s: float | None
    time_to_restore_p90_s: float | None
    rework: int
    rework_rate: float
    rework_reasons: ReworkReasons
    bands: DoraBands | None = None


class DoraTeamsReply(Page):
    window_days: int
    first_day: date
    last_day: date
    environment: str | None = None
    percentile_relative_error: float
    teams: list[TeamDora]
