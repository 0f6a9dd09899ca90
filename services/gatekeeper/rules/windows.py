"""Recurring windows (iCalendar RRULEs) and one-off freezes: does one cover a release now, and until when?"""

from dataclasses import dataclass
from datetime import datetime

from services.gatekeeper.domain import Freeze
from services.gatekeeper.policy import Actor, Policy, RecurringWindow, WindowAction
from services.gatekeeper.release_terms import Candidate
from services.gatekeeper.rules.outcome import Effect, RuleOutcome
from services.gatekeeper.policy import WaitKind

RULE = "windows"
# Openings chained back to back (each starting before the last ends) are followed this far at most:
# a rule that never leaves a gap (FREQ=HOURLY with a 2h duration) has no end to report.
MAX_CHAINED = 1000


@dataclass(frozen=True)
class Opening:
    """One occurrence of a window (or a run of overlapping ones): blocked from `starts` until `ends`."""

    name: str
    starts: datetime
    ends: datetime | None  # None: no end found within MAX_CHAINED openings
    action: WindowAction
    reason: str


def opening_at(window: RecurringWindow, now: datetime) -> Opening | None:
    """The opening of `window` that covers `now`, if any; `ends` is when the window is over."""
    rule = window.recurrence()
    latest = rule.before(now, inc=True)
    if latest is None or latest + window.duration <= now:
        return None
    ends: datetime | None = latest + window.duration
    current = latest
    for _ in range(MAX_CHAINED):
        following = rule.after(current)
        if following is None or ends is None or following >= ends:
            break
        current, ends = following, max(ends, following + window.duration)
    else:
        ends = None
    return Opening(window.name, latest, ends, window.action, window.reason)


def blocking_openings(candidate: Candidate, policy: Policy, freezes: tuple[Freeze, ...], at: datetime) -> list[Opening]:
    actor = Actor.AUTOMATION if candidate.automated else Actor.PEOPLE
    found = []
    for window in policy.windows.windows:
        if actor in window.blocks and window.scope.covers(candidate.environment, candidate.service, candidate.spec.team):
            if (opening := opening_at(window, at)) is not None:
                found.append(opening)
    for freeze in freezes:
        if freeze.covers(candidate.environment, at):
            found.append(Opening(f"freeze {freeze.freeze_id}", freeze.starts_at, freeze.ends_at,
                                 policy.windows.freeze_action, f"{freeze.reason} (declared by {freeze.actor})"))
    return found


def expected_start(candidate: Candidate, policy: Policy, freezes: tuple[Freeze, ...], now: datetime) -> datetime | None:
    """When no window or freeze blocks the release any more (the next may open as one ends); None: not foreseeable."""
    at = now
    for _ in range(MAX_CHAINED):
        blocking = blocking_openings(candidate, policy, freezes, at)
        if not blocking:
            return at
        ends = [o.ends for o in blocking]
        if any(end is None for end in ends):
            return None
        at = max(end for end in ends if end is not None)
    return None


def window_outcomes(candidate: Candidate, policy: Policy, freezes: tuple[Freeze, ...], now: datetime) -> list[RuleOutcome]:
    blocking = blocking_openings(candidate, policy, freezes, now)
    if not blocking:
        return [RuleOutcome(rule=RULE, effect=Effect.PASS,
                            reason=f"no window or freeze blocks {candidate.service} in {candidate.environment} now")]
    described = [f"{o.name} until {o.ends.isoformat() if o.ends else 'no foreseeable end'}"
                 + (f": {o.reason}" if o.reason else "") for o in blocking]
    exception_role = policy.classes.of(candidate.release_class).exception_role
    if exception_role is not None:
        return [RuleOutcome(rule=RULE, effect=Effect.NEEDS_APPROVAL,
                            reason=f"{candidate.release_class.value} release inside {'; '.join(described)}: "
                            f"passes only with an exception approved by {exception_role.value}")]
    if any(o.action is WindowAction.REFUSE for o in blocking):
        refusing = [d for d, o in zip(described, blocking, strict=True) if o.action is WindowAction.REFUSE]
        return [RuleOutcome(rule=RULE, effect=Effect.REFUSE, reason=f"refused inside {'; '.join(refusing)}")]
    start = expected_start(candidate, policy, freezes, now)
    return [RuleOutcome(rule=RULE, effect=Effect.WAIT, wait=WaitKind.WINDOW, until=start,
                        reason=f"queued inside {'; '.join(described)}; expected start "
                        f"{start.isoformat() if start else 'not foreseeable'}")]
