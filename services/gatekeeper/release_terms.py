"""What a governed release declares beyond today's ReleaseSpec, and the release as the rules see it.

ReleaseTerms are proposed additions to contracts.release.ReleaseSpec, all optional so that every
release CI sends today stays valid; they live here until they move into the contract.
"""

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import Field

from contracts.envelope import ID_PATTERN, NAME_PATTERN, Model
from contracts.identity import Kind
from contracts.release import ReleaseClass, ReleaseSpec

ITEM_MAX = 500


class KnownIssue(Model):
    summary: str = Field(min_length=1, max_length=ITEM_MAX)
    workaround: str = Field(default="", max_length=ITEM_MAX)


class Requirement(Model):
    service: str = Field(pattern=NAME_PATTERN)
    versions: str = Field(min_length=1, max_length=200, description="PEP 440 specifiers, e.g. >=2.1,<3")


class ReleaseTerms(Model):
    known_issues: list[KnownIssue] | None = Field(
        default=None, max_length=100, description="None: not stated; []: stated that there are none")
    migrations: list[str] = Field(default=[], max_length=100, description="database migrations it runs")
    irreversible_steps: list[str] = Field(default=[], max_length=100, description="steps a rollback cannot undo")
    dependents: list[str] = Field(default=[], max_length=200, description="services that depend on this one")
    change: str | None = Field(default=None, max_length=64, pattern=ID_PATTERN, description="change record, e.g. CHG0012345")
    requires: list[Requirement] = Field(default=[], max_length=50)
    incident: str | None = Field(default=None, max_length=128, pattern=ID_PATTERN,
                                 description="the incident an emergency release fixes")
    unplanned: bool = Field(default=False, description="not in any plan: a hotfix, a reaction")


AUTOMATED_KINDS = (Kind.CI, Kind.SERVICE)


@dataclass(frozen=True)
class Candidate:
    """One release as every rule reads it: where it goes, what it is, what it declares, when it asked."""

    release_id: str
    service: str
    environment: str
    spec: ReleaseSpec
    requested_at: datetime
    terms: ReleaseTerms = field(default_factory=ReleaseTerms)

    @property
    def release_class(self) -> ReleaseClass:
        return self.spec.release_class

    @property
    def requester(self) -> str:
        return self.spec.requested_by

    @property
    def automated(self) -> bool:
        # Identities are `<kind>:<name>`: a pipeline's or a service's release is automation, anyone else's a person's.
        kind = self.spec.requested_by.partition(":")[0]
        return kind in {k.value for k in AUTOMATED_KINDS}
