"""Identities on the bus: who a key belongs to, what it may do, and the registry that says so.

Every service, every team's CI, the on-call engineers, the operator who runs slipway and each
person has an nkey (an ed25519 key pair in NATS's encoding). The same key authenticates the
connection to nats-server and signs what that identity sends, so the server and the receiving
service check the same identity.
"""

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from contracts.envelope import Model, ZonedDatetime

IDENTITY_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
PUBLIC_KEY_PATTERN = r"^U[A-Z2-7]{55}$"  # an nkey user public key


class Kind(StrEnum):
    SERVICE = "service"  # one of slipway's six services
    CI = "ci"  # one team's pipeline: requests releases of that team's services
    ONCALL = "oncall"  # reads alerts and asks for status
    ADMIN = "admin"  # the operator of this slipway: creates streams, manages identities
    PERSON = "person"  # sends signed commands, within its roles and teams


class Role(StrEnum):
    """What a person may do beyond reading; the commands each role allows are in contracts.permissions."""

    RELEASE_MANAGER = "release-manager"  # declares and lifts freezes
    SRE = "sre"  # resumes and aborts any team's releases
    DEVELOPER = "developer"  # resumes and aborts the releases of their own teams' services
    # Approval authorities the gatekeeper's policy names (infra/policies/approvals.yaml, classes.yaml).
    TEAM_LEAD = "team-lead"
    CHANGE_MANAGER = "change-manager"  # approves change records (never their own)
    CAB_MEMBER = "cab-member"  # change advisory board
    EXECUTIVE = "executive"  # lets an emergency through a freeze
    OPERATIONS = "operations"  # readiness sign-offs of a major release
    SECURITY = "security"
    BUSINESS = "business"


class IdentityRecord(Model):
    """One registry entry: public, so every service can read it; the private key never leaves its file."""

    id: str = Field(description="`<kind>:<name>`, the identity as events record it")
    kind: Kind
    name: str = Field(pattern=IDENTITY_NAME_PATTERN)
    public_key: str = Field(pattern=PUBLIC_KEY_PATTERN)
    roles: tuple[Role, ...] = ()
    teams: tuple[str, ...] = ()
    created_at: ZonedDatetime
    revoked_at: ZonedDatetime | None = None

    def revoked_by(self, moment: datetime) -> bool:
        return self.revoked_at is not None and self.revoked_at <= moment


class Registry(Model):
    identities: tuple[IdentityRecord, ...] = ()


def identity_id(kind: Kind | str, name: str) -> str:
    return f"{Kind(kind).value}:{name}"
