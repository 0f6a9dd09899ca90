"""The gatekeeper's rules: may this release go out now? Pure functions over plain data."""

from dataclasses import dataclass
from datetime import datetime

from contracts.envelope import ITEMS_MAX
from contracts.release import ReleaseClass, ReleaseSpec


@dataclass(frozen=True)
class Freeze:
    freeze_id: str
    environment: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    actor: str
    lifted: bool = False

    def covers(self, environment: str, at: datetime) -> bool:
        return not self.lifted and self.environment == environment and self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class Decision:
    approved: bool
    reasons: list[str]


def decide(release: ReleaseSpec, environment: str, freezes: list[Freeze], now: datetime) -> Decision:
    """Every decision carries its reasons, whichever way it goes."""
    blocking = [f for f in freezes if f.covers(environment, now)]
    if blocking:
        # A verdict's reasons are bounded in the contract: name as many freezes as fit, count the rest.
        shown = blocking if len(blocking) <= ITEMS_MAX else blocking[: ITEMS_MAX - 1]
        reasons = [
            f"environment {environment} is frozen until {f.ends_at.isoformat()} by {f.actor}: {f.reason} "
            f"(freeze {f.freeze_id})"
            for f in shown
        ]
        if len(shown) < len(blocking):
            reasons.append(f"and {len(blocking) - len(shown)} more freezes on {environment}")
        return Decision(False, reasons)
    if release.release_class is not ReleaseClass.STANDARD:
        # Emergency and major releases need their own workflows (approvals by a change authority);
        # until those exist, refusing is safer than treating them as standard.
        return Decision(
            False,
            [f"release class {release.release_class.value} needs a manual approval workflow, which slipway does not have yet"],
        )
    return Decision(True, [f"standard release with no freeze on {environment}: approved automatically"])


def freeze_problem(starts_at: datetime, ends_at: datetime, now: datetime) -> str | None:
    if ends_at <= now:
        return f"the freeze would already be over (ends_at {ends_at.isoformat()} is in the past)"
    return None
