"""The release as the rules see it. What it declares for governance (known issues, migrations,
change record, ...) is part of contracts.release.ReleaseSpec."""

from dataclasses import dataclass
from datetime import datetime

from contracts.identity import Kind
from contracts.release import ReleaseClass, ReleaseSpec

AUTOMATED_KINDS = (Kind.CI, Kind.SERVICE)


@dataclass(frozen=True)
class Candidate:
    """One release as every rule reads it: where it goes, what it is, what it declares, when it asked."""

    release_id: str
    service: str
    environment: str
    spec: ReleaseSpec
    requested_at: datetime

    @property
    def terms(self) -> ReleaseSpec:
        """What the release declares for governance: the spec's own fields (known_issues, migrations, ...)."""
        return self.spec

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
