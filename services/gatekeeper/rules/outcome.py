"""What a rule says about a release, and what the rules together decide."""

from enum import StrEnum

from pydantic import Field

from contracts.envelope import Model, Text, ZonedDatetime
from contracts.identity import Role
from services.gatekeeper.policy import WaitKind


class Effect(StrEnum):
    PASS = "pass"  # the rule lets it through
    WAIT = "wait"  # it may go later, by itself (a window ends, a slot frees, an incident closes)
    NEEDS_APPROVAL = "needs-approval"  # it may go once people approve
    REFUSE = "refuse"  # it will never go as it is
    NOTE = "note"  # recorded, decides nothing (a risk factor, an audit flag)


class RuleOutcome(Model):
    rule: str = Field(max_length=100)
    effect: Effect
    reason: Text
    wait: WaitKind | None = None
    until: ZonedDatetime | None = Field(default=None, description="when a wait is expected to end, if known")


class ApprovalNeed(Model):
    """`quorum` distinct people with `role` (of the release's team when `same_team`), for `purpose`."""

    role: Role
    quorum: int = Field(ge=1)
    same_team: bool = False
    purpose: str

