"""An attempt to make the deployer act without the pipeline's say-so is an incident, not just a log line."""

import re

from pydantic import BaseModel

from contracts.envelope import ReleaseEvent
from contracts.events import AlertRaised, Severity
from contracts.release import TEAM_PATTERN

SOURCE = "deployer"


def alert_for_refused(refused: BaseModel | None, reason: str) -> AlertRaised:
    """A critical alert for an approval, verdict or rollback request the deployer refused to act on.

    Addressed to the team of the release it names when it could be read (they own what the forger
    aimed at); an unreadable one names no team or release; the refusal itself is already on the bus as EventRefused.
    """
    team = getattr(refused, "team", None) or getattr(getattr(refused, "release", None), "team", None)
    about = refused if isinstance(refused, ReleaseEvent) else None
    kind = about.type if about else "a message"
    scope = {"release_id": about.release_id, "service": about.service, "environment": about.environment,
             "correlation_id": about.correlation_id, "causation_id": about.event_id} if about else {}
    return AlertRaised(
        **scope,
        source=SOURCE,
        severity=Severity.CRITICAL,
        team=team if isinstance(team, str) and re.fullmatch(TEAM_PATTERN, team) else None,
        summary=f"the deployer refused {kind} that did not come from the pipeline: {reason}",
        details={"reason": reason[:2000], "refused_type": kind},
    )
