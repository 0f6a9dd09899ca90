"""The gatekeeper's one-off freezes, as plain data (the release rules are in rules/)."""

from dataclasses import dataclass
from datetime import datetime



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


def freeze_problem(starts_at: datetime, ends_at: datetime, now: datetime) -> str | None:
    if ends_at <= now:
        return f"the freeze would already be over (ends_at {ends_at.isoformat()} is in the past)"
    return None
