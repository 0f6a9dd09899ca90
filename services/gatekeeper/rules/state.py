"""The gatekeeper's state as the rules read it: a snapshot the caller builds from its store."""

from dataclasses import dataclass, field
from datetime import datetime

from contracts.identity import Role
from contracts.release import ReleaseClass
from services.gatekeeper.domain import Freeze
from services.gatekeeper.policy import Severity


@dataclass(frozen=True)
class Failure:
    """A failed or rolled-back deployment."""

    service: str
    environment: str
    at: datetime
    release_id: str = ""


@dataclass(frozen=True)
class Incident:
    incident_id: str
    environment: str
    severity: Severity
    opened_at: datetime
    summary: str = ""


@dataclass(frozen=True)
class Slot:
    """A deployment in flight, or a release waiting for one, in an environment."""

    release_id: str
    service: str
    environment: str
    since: datetime
    release_class: ReleaseClass = ReleaseClass.STANDARD


@dataclass(frozen=True)
class Success:
    digest: str
    environment: str
    at: datetime


@dataclass(frozen=True)
class Evidence:
    digest: str
    kind: str
    passed: bool
    at: datetime
    url: str = ""
    team: str = ""  # the CI team that submitted it: it counts for that team's releases only (empty: any)
    service: str = ""  # the service it is about; empty or all-services: any of the team's


@dataclass(frozen=True)
class Live:
    """The version of a service live in an environment, as the deployer last reported it."""

    service: str
    environment: str
    version: str
    release_id: str = ""


@dataclass(frozen=True)
class Approval:
    """One person's yes, with the roles and teams the identity registry gave them when they signed."""

    release_id: str
    approver: str
    roles: tuple[Role, ...]
    teams: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class GateState:
    recent_failures: tuple[Failure, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    incidents: tuple[Incident, ...] = ()  # open ones
    in_flight: tuple[Slot, ...] = ()
    waiting_for_slot: tuple[Slot, ...] = ()
    successes: tuple[Success, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    approvals: tuple[Approval, ...] = ()
    # Change records the releases being decided name: number -> record (None: the source does not know it).
    changes: dict[str, object] = field(default_factory=dict)
    unreachable_changes: dict[str, str] = field(default_factory=dict)  # number -> why the source could not say
    live: tuple[Live, ...] = ()
    # Release in flight -> the services it is tied to (its `requires` and `dependents`), for requirements.
    ties: dict[str, frozenset[str]] = field(default_factory=dict)
    owed_pirs: frozenset[str] = field(default_factory=frozenset)  # services that owe a post-implementation review
    # The risk factors each service's latest post-implementation review named (what made its last failure likely).
    pir_risk_factors: dict[str, tuple[str, ...]] = field(default_factory=dict)
