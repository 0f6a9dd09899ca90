"""The gatekeeper's policy as data: one strict model per file under infra/policies/ (see load_policy).

Every model forbids unknown fields, so a misspelt key is an error at load, not a rule silently
left at its default. Defaults are what a missing file means; the committed files say the same
explicitly, with comments.
"""

import re
from fnmatch import fnmatchcase
from functools import lru_cache
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule as RecurrenceRule
from dateutil.rrule import rrulestr
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from contracts.envelope import NAME_PATTERN
from contracts.identity import Role
from contracts.release import TEAM_PATTERN, ReleaseClass
from libs.service_catalogue import Reach, ServiceCatalogue, Visibility

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _duration(value: Any) -> Any:
    # "90m", "48h", "7d" read better in a hand-written file than seconds; ISO 8601 (PT48H) and seconds still work.
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(**{_UNITS[match[2]]: float(match[1])})
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration), Field(gt=timedelta(0))]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Team = Annotated[str, Field(pattern=TEAM_PATTERN)]
ServicePattern = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9*?\[\]][a-z0-9._*?\[\]-]*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(Strict):
    """Where a rule applies; an empty list means every one. Services may be shell-style patterns."""

    environments: tuple[Name, ...] = ()
    services: tuple[ServicePattern, ...] = ()
    teams: tuple[Team, ...] = ()

    def covers(self, environment: str, service: str, team: str) -> bool:
        return ((not self.environments or environment in self.environments)
                and (not self.services or any(fnmatchcase(service, p) for p in self.services))
                and (not self.teams or team in self.teams))


# --- classes.yaml ---------------------------------------------------------------------------------

class ChecklistItem(Strict):
    """One readiness question a release of the class answers (`checklist` in the release)."""

    item: Name
    question: str = Field(default="", max_length=300)
    required: bool = Field(default=False, description="a release that has not done it (or found it not applicable) "
                           "is refused")


class ClassPolicy(Strict):
    risk_approvals: bool = Field(default=True, description="needs the approvals its risk level asks for (approvals.yaml)")
    sign_offs: tuple[Role, ...] = Field(default=(), description="readiness review: one person of each role signs off")
    known_issues_required: bool = Field(default=False, description="the release must list its known issues ([] for none)")
    exception_role: Role | None = Field(default=None, description="who may let it through a freeze, window or incident")
    exception_quorum: int = Field(default=1, ge=1, le=10)
    pir_owed: bool = Field(default=False, description="always owes a post-implementation review afterwards")
    waits_for_owed_pir: bool = Field(default=False, description="waits while its service owes a PIR")
    flagged: bool = Field(default=False, description="marked in the audit trail")
    checklist: tuple[ChecklistItem, ...] = Field(default=(), max_length=50,
                                                 description="readiness questions its releases answer")


class ClassesPolicy(Strict):
    standard: ClassPolicy = ClassPolicy()
    major: ClassPolicy = ClassPolicy()
    emergency: ClassPolicy = ClassPolicy()
    pir_after_failure_in: list[Name] = Field(
        default=["prod"], max_length=100,
        description="environments where a failed or rolled-back deployment makes its service owe a PIR")

    def of(self, release_class: ReleaseClass | str) -> ClassPolicy:
        return getattr(self, ReleaseClass(release_class).value)


# --- risk.yaml ------------------------------------------------------------------------------------

class Counted(Strict):
    """Points per item, capped: the third migration adds less worry than the first."""

    each: int = Field(default=0, ge=0, le=1000)
    max: int | None = Field(default=None, ge=0, le=1000)

    def points(self, count: int) -> int:
        total = self.each * count
        return total if self.max is None else min(total, self.max)


class Profile(Strict):
    """What to assume of a service whose catalogue entry leaves a field out."""

    tier: int = Field(default=1, ge=1, le=4)
    visibility: Visibility = Visibility.CUSTOMER_FACING
    reach: Reach = Reach.ALL


class RecentFailure(Strict):
    within: Duration = timedelta(hours=24)
    raise_levels: int = Field(default=1, ge=0, le=10)
    applies_from: Name | None = Field(default=None, description="lowest level a failure raises; unset: every level")


def _default_levels() -> dict[str, int]:
    return {"low": 0, "medium": 40, "high": 60, "critical": 80}


class RiskPolicy(Strict):
    tier: dict[Annotated[int, Field(ge=1, le=4)], Annotated[int, Field(ge=0, le=1000)]] = {1: 40, 2: 25, 3: 10, 4: 0}
    visibility: dict[Visibility, Annotated[int, Field(ge=0, le=1000)]] = {
        Visibility.CUSTOMER_FACING: 15, Visibility.INTERNAL: 0}
    reach: dict[Reach, Annotated[int, Field(ge=0, le=1000)]] = {Reach.FEW: 0, Reach.SOME: 5, Reach.MANY: 10, Reach.ALL: 15}
    migrations: Counted = Counted(each=10, max=30)
    irreversible_steps: Counted = Counted(each=25)
    dependents: Counted = Counted(each=5, max=20)
    known_issues: Counted = Counted()
    pir_risk_factors: Counted = Field(default=Counted(each=5, max=15),
                                      description="risk factors the service's latest post-implementation review named")
    unplanned: int = Field(default=0, ge=0, le=1000)
    assume: Profile = Profile()
    levels: dict[Name, Annotated[int, Field(ge=0)]] = Field(
        default_factory=_default_levels, description="level name: lowest score of that level, ascending from 0")
    recent_failure: RecentFailure = RecentFailure()

    @field_validator("levels")
    @classmethod
    def levels_ascend(cls, levels: dict[str, int]) -> dict[str, int]:
        thresholds = list(levels.values())
        if not thresholds or thresholds[0] != 0:
            raise ValueError("the first level must start at score 0")
        if thresholds != sorted(set(thresholds)):
            raise ValueError(f"level thresholds must strictly increase, got {thresholds}")
        return levels

    @field_validator("tier", "visibility", "reach")
    @classmethod
    def every_value_scored(cls, table: dict[Any, int], info: ValidationInfo) -> dict[Any, int]:
        # A profile value with no points would score as harmless; make the file say so explicitly.
        every = {"tier": (1, 2, 3, 4), "visibility": tuple(Visibility), "reach": tuple(Reach)}[info.field_name]
        if missing := [str(value) for value in every if value not in table]:
            raise ValueError(f"no points given for {', '.join(missing)}")
        return table

    def level_of(self, score: int) -> str:
        return [name for name, lowest in self.levels.items() if score >= lowest][-1]


# --- approvals.yaml -------------------------------------------------------------------------------

class Authority(Strict):
    role: Role
    quorum: int = Field(default=1, ge=1, le=20, description="distinct people of that role")
    same_team: bool = Field(default=False, description="approvers must belong to the release's team")


def _default_authorities() -> dict[str, tuple[Authority, ...]]:
    return {
        "low": (),
        "medium": (Authority(role=Role.TEAM_LEAD, same_team=True),),
        "high": (Authority(role=Role.CHANGE_MANAGER),),
        "critical": (Authority(role=Role.CAB_MEMBER, quorum=2),),
    }


class ApprovalsPolicy(Strict):
    levels: dict[Name, tuple[Authority, ...]] = Field(default_factory=_default_authorities)


# --- windows.yaml ---------------------------------------------------------------------------------

class Actor(StrEnum):
    """Who acts: Google Cloud Deploy's deploy policies distinguish the same two."""

    AUTOMATION = "automation"  # a pipeline's release (CI and service identities)
    PEOPLE = "people"  # a person's release or command


class WindowAction(StrEnum):
    QUEUE = "queue"  # held until the window ends, then started
    REFUSE = "refuse"


class RecurringWindow(Strict):
    name: Name
    rrule: str = Field(min_length=1, max_length=500, description="iCalendar RRULE, e.g. FREQ=WEEKLY;BYDAY=SA")
    start: datetime = Field(description="first occurrence (DTSTART); local time in `timezone` unless it has an offset")
    timezone: str = "UTC"
    duration: Duration
    scope: Scope = Scope()
    blocks: tuple[Actor, ...] = Field(default=(Actor.AUTOMATION, Actor.PEOPLE), min_length=1)
    action: WindowAction = WindowAction.QUEUE
    reason: str = Field(default="", max_length=500)

    @field_validator("timezone")
    @classmethod
    def known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as Europe/Berlin)") from None
        return zone

    @field_validator("rrule")
    @classmethod
    def rule_parses(cls, text: str) -> str:
        if "DTSTART" in text.upper():
            raise ValueError("give the first occurrence in `start`, not as DTSTART in the rrule")
        try:
            # Any zoned start will do to check the syntax: first() is always zoned.
            if not isinstance(rrulestr(text, dtstart=datetime(2000, 1, 1, tzinfo=UTC)), RecurrenceRule):
                raise ValueError("expected one RRULE")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a valid iCalendar RRULE: {exc}") from None
        return text

    def first(self) -> datetime:
        # Wall-clock recurrence in the window's zone: "Saturday 00:00 Berlin" stays 00:00 across DST.
        return self.start if self.start.tzinfo is not None else self.start.replace(tzinfo=ZoneInfo(self.timezone))

    def recurrence(self) -> RecurrenceRule:
        return _recurrence(self.rrule, self.first())


@lru_cache(maxsize=256)
def _recurrence(text: str, first: datetime) -> RecurrenceRule:
    # Parsed once per rule and caching its occurrences: each decision asks the same rules again.
    return rrulestr(text, dtstart=first, cache=True)


class WindowsPolicy(Strict):
    windows: tuple[RecurringWindow, ...] = ()
    freeze_action: WindowAction = Field(default=WindowAction.QUEUE, description="what a one-off freeze does")

    @field_validator("windows")
    @classmethod
    def names_unique(cls, windows: tuple[RecurringWindow, ...]) -> tuple[RecurringWindow, ...]:
        names = [w.name for w in windows]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"window names must be unique: {', '.join(twice)} appear more than once")
        return windows


# --- incidents.yaml -------------------------------------------------------------------------------

class Severity(StrEnum):
    """PagerDuty Events API v2 severities, least to most severe."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class IncidentsPolicy(Strict):
    halt_at: Severity = Field(default=Severity.ERROR, description="an open incident this severe or worse halts releases")
    pause_in_flight: bool = Field(default=True, description="in-flight rollouts in that environment pause at their next step")
    emergency_may_pass: bool = Field(default=True, description="an emergency release that names the incident goes ahead")


# --- concurrency.yaml -----------------------------------------------------------------------------

class ConcurrencyPolicy(Strict):
    default: int = Field(default=1, ge=1, le=100, description="deployments in flight per environment")
    environments: dict[Name, Annotated[int, Field(ge=1, le=100)]] = {}

    def limit(self, environment: str) -> int:
        return self.environments.get(environment, self.default)


# --- promotion.yaml -------------------------------------------------------------------------------

EvidenceKind = Annotated[str, Field(pattern=NAME_PATTERN)]


class Gate(Strict):
    after: tuple[Name, ...] = Field(default=(), description="environments where the same digest must have succeeded")
    evidence: tuple[EvidenceKind, ...] = Field(default=(), description="kinds of passing evidence for the digest")
    evidence_max_age: Duration | None = None
    services: tuple[ServicePattern, ...] = Field(default=(), description="services it applies to; empty: every")
    on_missing: WindowAction = Field(default=WindowAction.REFUSE, description="queue: wait (with the deadline) for it")


class PromotionPolicy(Strict):
    environments: dict[Name, Gate] = {}

    @field_validator("environments")
    @classmethod
    def no_gate_on_itself(cls, gates: dict[str, Gate]) -> dict[str, Gate]:
        for environment, gate in gates.items():
            if environment in gate.after:
                raise ValueError(f"{environment} cannot require a success in {environment} itself")
        return gates


# --- deadlines.yaml -------------------------------------------------------------------------------

class WaitKind(StrEnum):
    APPROVAL = "approval"
    CHANGE = "change"
    WINDOW = "window"
    INCIDENT = "incident"
    SLOT = "slot"
    PROMOTION = "promotion"
    REQUIREMENTS = "requirements"
    PIR = "pir"


class DeadlinesPolicy(Strict):
    """How long a release may wait for each thing before it expires with a reason."""

    approval: Duration = timedelta(hours=24)
    change: Duration = timedelta(days=3)
    window: Duration = timedelta(days=3)
    incident: Duration = timedelta(hours=12)
    slot: Duration = timedelta(hours=2)
    promotion: Duration = timedelta(hours=24)
    requirements: Duration = timedelta(hours=24)
    pir: Duration = timedelta(days=7)

    def of(self, kind: WaitKind) -> timedelta:
        return getattr(self, kind.value)


class ChangesPolicy(Strict):
    """Which releases must link a change record (`change: CHG...`) that is approved and whose
    implementation window covers the deployment. Standard releases are pre-approved changes (ITIL's
    standard change): by default a major release to prod needs its own record."""

    environments: list[str] = Field(default_factory=list, max_length=100)
    classes: list[ReleaseClass] = Field(default_factory=list, max_length=3)

    def required(self, environment: str, release_class: ReleaseClass) -> bool:
        return environment in self.environments and release_class in self.classes


class Policy(Strict):
    services: ServiceCatalogue = ServiceCatalogue()
    classes: ClassesPolicy = ClassesPolicy()
    risk: RiskPolicy = RiskPolicy()
    approvals: ApprovalsPolicy = ApprovalsPolicy()
    windows: WindowsPolicy = WindowsPolicy()
    incidents: IncidentsPolicy = IncidentsPolicy()
    concurrency: ConcurrencyPolicy = ConcurrencyPolicy()
    promotion: PromotionPolicy = PromotionPolicy()
    deadlines: DeadlinesPolicy = DeadlinesPolicy()
    changes: ChangesPolicy = ChangesPolicy()
