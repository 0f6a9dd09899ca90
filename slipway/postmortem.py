"""A blameless post-mortem of one release, written from its events in the log: pure, no I/O.

Blameless: every line names a system or a role, never a person. A person's identity becomes the roles the
identity registry gives it ("a release-manager"); a pipeline becomes "the payments CI pipeline"; a slipway
service is named as itself. Times are the events' own (`occurred_at`), offsets from the request.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slipway.render import percent
from slipway.timeline import Event, event_time, in_time_order, seconds_between

RolesOf = Callable[[str], tuple[str, ...] | None]  # identity id -> its roles, None when not known

FAILING = ("fail",)
PIPELINE_EVENTS = ("ReleaseRequested", "EvidenceSubmitted")  # what a CI pipeline publishes itself, whatever tool it uses
ENDINGS = ("DeploymentSucceeded", "DeploymentFailed", "RollbackCompleted", "ReleaseBlocked", "ReleaseRejected",
           "ReleaseExpired", "ArtifactRejected", "ReleaseRequestRejected")
# Prompts every post-mortem asks; release-specific ones are added by `_prompts`.
PROMPTS = (
    "What in the change itself led to the failure (code, configuration, data, a dependency)?",
    "Why did the earlier stages (tests, staging, evidence, smoke tests) not catch it?",
    "Was the failure detected as early and with as little traffic as it could have been?",
    "Did the rollback restore service fully, and was anything left to clean up by hand?",
    "Which signal, check or checklist item would have caught it sooner, and who will add it?",
)


@dataclass(frozen=True)
class KeyTimes:
    requested: datetime | None
    first_traffic: datetime | None
    detected: datetime | None
    recovered: datetime | None
    ended: datetime | None

    @property
    def to_detect_s(self) -> float | None:
        return seconds_between(self.first_traffic, self.detected)

    @property
    def to_recover_s(self) -> float | None:
        return seconds_between(self.detected, self.recovered)

    @property
    def request_to_recovery_s(self) -> float | None:
        return seconds_between(self.requested, self.recovered)


def postmortem(release_id: str, events: Iterable[Event], roles_of: RolesOf, review: Event | None = None) -> str:
    """The Markdown post-mortem of `release_id` from its events (any order), linked to its PIR when one exists."""
    timeline = in_time_order(events)
    if not timeline:
        raise ValueError(f"no event of release {release_id} is in the log")
    first = next((e for e in timeline if e.get("type") == "ReleaseRequested"), timeline[0])
    times = key_times(timeline)
    trigger = next((e for e in timeline if e.get("type") == "StepVerdict" and e.get("verdict") in FAILING), None)
    lines = [
        f"# Post-mortem: {first.get('service', '?')} {first.get('version') or _version(timeline)} to "
        f"{first.get('environment', '?')}",
        "",
        f"Release `{release_id}`. Blameless: this document names systems and roles, not people; it is written "
        "from slipway's event log, so every time below is what the log recorded.",
        "",
        "## Outcome",
        "",
        f"- **Outcome**: {outcome(timeline)}",
        f"- **Strategy**: {_strategy(timeline)}",
        f"- **Requested**: {_at(times.requested)} by {who(first, roles_of)}",
        f"- **Ended**: {_at(times.ended)}",
        "",
        "## Detection and recovery",
        "",
        f"- **Time to detect** (first user traffic on the new version to the failing verdict): "
        f"{_duration(times.to_detect_s)}",
        f"- **Time to recover** (failing verdict to traffic restored): {_duration(times.to_recover_s)}",
        f"- **Request to recovery**: {_duration(times.request_to_recovery_s)}",
        f"- **Most traffic the new version took**: {_exposure(timeline)}",
        "",
        "## Triggering metric",
        "",
        *_trigger_lines(trigger, timeline),
        "",
        "## Timeline",
        "",
        "| time (UTC) | since request | what happened | by |",
        "|---|---|---|---|",
        *(_row(e, times.requested, roles_of) for e in timeline),
        "",
        "## Contributing factors (to fill in)",
        "",
        *(f"- {prompt}" for prompt in (*PROMPTS, *_prompts(first))),
        "",
        "## Post-implementation review",
        "",
        *_review_lines(release_id, review),
        "",
    ]
    return "\n".join(lines)


def key_times(timeline: list[Event]) -> KeyTimes:
    def at(kind: str, match: Callable[[Event], bool] = lambda _e: True) -> datetime | None:
        return next((event_time(e) for e in timeline if e.get("type") == kind and match(e)), None)

    traffic = at("StepStarted", lambda e: int(e.get("weight") or 0) > 0)
    detected = at("StepVerdict", lambda e: e.get("verdict") in FAILING) or at("RollbackRequested")
    ended = next((event_time(e) for e in reversed(timeline) if e.get("type") in ENDINGS), None)
    return KeyTimes(at("ReleaseRequested"), traffic, detected, at("RollbackCompleted"), ended)


def outcome(timeline: list[Event]) -> str:
    kinds = [e.get("type") for e in timeline]
    if "RollbackCompleted" in kinds:
        done = next(e for e in timeline if e.get("type") == "RollbackCompleted")
        return f"rolled back to {done.get('restored_version') or 'nothing'} ({done.get('root_cause', 'no cause given')})"
    for kind, text in (("DeploymentFailed", "deployment failed"), ("DeploymentSucceeded", "deployed"),
                       ("ReleaseBlocked", "blocked by the gatekeeper"), ("ReleaseRejected", "rejected"),
                       ("ReleaseExpired", "expired while waiting"), ("ArtifactRejected", "artifact rejected")):
        if kind in kinds:
            found = next(e for e in timeline if e.get("type") == kind)
            reason = found.get("reason") or "; ".join(map(str, found.get("reasons") or []))
            return f"{text}{f' ({reason})' if reason else ''}"
    return f"still in progress (last event {kinds[-1]})"


def who(event: Event, roles_of: RolesOf) -> str:
    """The system or role behind an event; never a person's name.

    A release's events carry its requester as actor all along; what a service did on its own is the
    service's (its `source`), what a person did (actor `person:...`) is their role's.
    """
    actor = str(event.get("actor") or "")
    kind, _, name = actor.partition(":")
    if kind == "person":
        roles = roles_of(actor)
        return f"a {' and '.join(roles)}" if roles else "a person"
    if kind == "ci" and event.get("type") in PIPELINE_EVENTS:
        return f"the {name} CI pipeline"
    if event.get("source"):
        return str(event["source"])
    if kind == "ci":
        return f"the {name} CI pipeline"
    if kind == "oncall":
        return "on-call"
    if kind == "service":
        return name
    return "slipway"


def _row(event: Event, requested: datetime | None, roles_of: RolesOf) -> str:
    at = event_time(event)
    since = seconds_between(requested, at)
    offset = f"+{since:.1f} s" if since is not None else "-"
    return f"| {_at(at)} | {offset} | {_cell(_what(event))} | {_cell(who(event, roles_of))} |"


def _what(event: Event) -> str:
    kind = str(event.get("type", "?"))
    if kind == "StepStarted":
        return f"StepStarted: step {int(event.get('step_index') or 0) + 1}, {event.get('weight')}% to {event.get('version')}"
    if kind == "StepVerdict":
        return (f"StepVerdict: {event.get('verdict')} at step {int(event.get('step_index') or 0) + 1} "
                f"(error rate {percent(event.get('error_rate'))}, p99 {_ms(event.get('p99_latency_ms'))}, "
                f"{event.get('requests')} requests)")
    if kind == "ReleaseApproved":  # its rules are in the log; here the gist, and no approver's name
        risk = (event.get("risk") or {}).get("level", "?") if isinstance(event.get("risk"), dict) else "?"
        approvals = len(event.get("approvers") or [])
        return f"ReleaseApproved: risk {risk}, " + (f"{approvals} approval(s)" if approvals else "pre-approved by policy")
    if kind == "ReleaseWaiting":
        return f"ReleaseWaiting: {event.get('waiting_for')}: {event.get('summary', '')}"
    if kind == "ApprovalRecorded":
        return f"ApprovalRecorded: approved as {', '.join(event.get('roles') or []) or 'an approver'}"
    if kind == "RollbackRequested":
        return f"RollbackRequested: {event.get('bad_version')} -> {event.get('restore_version') or 'nothing'}"
    if kind == "RollbackCompleted":
        return f"RollbackCompleted: restored {event.get('restored_version') or 'nothing'}"
    if kind == "DeploymentSucceeded":
        return f"DeploymentSucceeded: {event.get('version')} is live"
    if kind == "AlertRaised":
        return f"AlertRaised ({event.get('severity')}): {event.get('summary', '')}"
    detail = event.get("reason") or "; ".join(map(str, event.get("reasons") or []))
    return f"{kind}: {detail}" if detail else kind


def _trigger_lines(trigger: Event | None, timeline: list[Event]) -> list[str]:
    if trigger is None:
        return ["No step failed its analysis: nothing measured triggered a rollback."]
    step = next((e for e in timeline if e.get("type") == "StepStarted"
                 and e.get("step_index") == trigger.get("step_index")), {})
    return [
        f"Step {int(trigger.get('step_index') or 0) + 1} failed its analysis at {_at(event_time(trigger))}:",
        "",
        "| metric | observed | limit |",
        "|---|---|---|",
        f"| error rate | {percent(trigger.get('error_rate'))} | {percent(step.get('max_error_rate'))} |",
        f"| p99 latency | {_ms(trigger.get('p99_latency_ms'))} | {_ms(step.get('max_p99_latency_ms'))} |",
        f"| requests | {trigger.get('requests')} | at least {step.get('min_requests', '-')} |",
        "",
        *(f"- {reason}" for reason in trigger.get("reasons") or []),
    ]


def _prompts(request: Event) -> list[str]:
    asked = []
    if request.get("migrations"):
        asked.append("The release declared database migrations: did they run, and were they reversible?")
    if request.get("irreversible_steps"):
        asked.append("It declared irreversible steps: what state did they leave behind?")
    if request.get("known_issues"):
        asked.append("It shipped with known issues: did any of them contribute?")
    if request.get("release_class") == "emergency":
        asked.append("It was an emergency release: what made it urgent, and what did the shortcut cost?")
    return asked


def _review_lines(release_id: str, review: Event | None) -> list[str]:
    recorded = (review or {}).get("recorded")
    if recorded:
        return [f"Recorded at {recorded.get('recorded_at')} ({recorded.get('owed_because', '')}).", "",
                f"- **Summary**: {recorded.get('summary', '')}", f"- **Actions**: {recorded.get('actions', '')}",
                *(f"- **Risk factor**: {factor}" for factor in recorded.get("risk_factors") or [])]
    if (review or {}).get("owed"):
        return [f"Owed ({review['owed']}) and not recorded yet: "
                f"`slipway pir record {release_id} --summary ... --actions ...`."]
    return ["None is owed or recorded for this release."]


def _strategy(timeline: list[Event]) -> str:
    started = next((e for e in timeline if e.get("type") == "DeploymentStarted"), None)
    if started is None:
        return "not deployed"
    steps = "/".join(str(w) for w in started.get("steps") or [])
    return f"{started.get('strategy')} {steps}%".strip()


def _exposure(timeline: list[Event]) -> str:
    weights = [int(e.get("weight") or 0) for e in timeline if e.get("type") == "StepStarted"]
    return f"{max(weights)}% of requests" if weights else "none (no traffic step started)"


def _version(timeline: list[Event]) -> str:
    return next((str(e["version"]) for e in timeline if e.get("version")), "?")


def _duration(seconds: float | None) -> str:
    return f"{seconds:.1f} s" if seconds is not None else "not reached"


def _at(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if moment is not None else "-"


def _ms(value: Any) -> str:
    try:
        return f"{float(value):.1f} ms"
    except (TypeError, ValueError):
        return "-"


def _cell(text: str) -> str:
    # A table cell stays one cell: pipes escaped, line breaks folded.
    return text.replace("|", "\\|").replace("\n", " ")
