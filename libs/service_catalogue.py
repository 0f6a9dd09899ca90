"""The service catalogue (infra/policies/services.yaml): who owns each deployed service and how much it matters.

Ownership (`team`) scopes who may release a service; the profile (tier, visibility, reach) is what
the gatekeeper's risk classification scores. A profile field left out is scored as the risk
policy's `assume` says, so a service nobody described is not treated as harmless.
"""

import fnmatch
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from contracts.release import TEAM_PATTERN
from libs.policy_yaml import PolicyError, load_model


class Visibility(StrEnum):
    CUSTOMER_FACING = "customer-facing"
    INTERNAL = "internal"


class Reach(StrEnum):
    """How many of the service's users a bad release can touch."""

    FEW = "few"
    SOME = "some"
    MANY = "many"
    ALL = "all"


class Migrations(StrEnum):
    """What a release's schema migrations do to the version before it."""

    NONE = "none"
    COMPATIBLE = "compatible"  # expand/contract: old and new versions both work on the migrated schema
    BREAKING = "breaking"  # the old version cannot run on the migrated schema


class DeliveryProfile(BaseModel):
    """How the service can be replaced: what `slipway strategy recommend` reasons from (libs.strategy_advice)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stateful: bool | None = Field(default=None, description="Instances hold state of their own (disk, memory, quorum)")
    session_affinity: bool | None = Field(default=None, description="A user's requests must keep reaching one instance")
    spare_capacity: bool | None = Field(default=None, description="Room to run a second full pool beside the live one")
    rto_s: int | None = Field(default=None, ge=0, description="Recovery time objective: longest tolerable outage, seconds")
    migrations: Migrations | None = None


class ServiceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str = Field(pattern=TEAM_PATTERN)
    tier: int | None = Field(default=None, ge=1, le=4, description="1: business-critical ... 4: experimental")
    visibility: Visibility | None = None
    reach: Reach | None = None
    delivery: DeliveryProfile | None = None


class ServiceCatalogue(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    services: dict[str, ServiceEntry] = {}

    @classmethod
    def load(cls, path: Path) -> "ServiceCatalogue":
        """The catalogue in `path`; a missing file is an empty catalogue, a broken one an error naming line and field."""
        try:
            return load_model(path, cls)[0]
        except FileNotFoundError:
            return cls()
        except PolicyError as broken:
            raise CatalogueError("; ".join(str(p) for p in broken.problems)) from None

    def entry(self, service: str) -> ServiceEntry | None:
        exact = self.services.get(service)
        if exact is not None:
            return exact
        return next((e for pattern, e in self.services.items() if fnmatch.fnmatchcase(service, pattern)), None)

    def team_of(self, service: str) -> str | None:
        found = self.entry(service)
        return found.team if found is not None else None

    def teams(self) -> tuple[str, ...]:
        return tuple(sorted({entry.team for entry in self.services.values()}))


class CatalogueError(ValueError):
    """The catalogue file cannot be used; the message names the file, the line and the field."""
