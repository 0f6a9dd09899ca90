"""Pure rules of the metrics-collector: the audit hash chain, DORA figures, release states.

Everything here works on logged event payloads (plain dicts as they were received), so a
producer that adds fields or a new event type never breaks a report.
"""

import functools
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import median
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from contracts import subjects

GENESIS_HASH = "0" * 64

Payload = Mapping[str, Any]
ChainRecord = tuple[int, str, str, str]  # seq, payload, prev_hash, hash


# --- the audit chain -------------------------------------------------------------------------


def canonical_json(payload: Payload) -> str:
    """One spelling per payload (sorted keys, no spaces, UTF-8 as is), so re-serialising never changes a hash.

    The chain hashes the stored text, so records written before this spelling (the standard library's, with
    non-ASCII escaped) verify as they are. An integer past 64 bits, which orjson refuses, keeps that spelling.
    """
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def chain_hash(prev_hash: str, payload: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()


# --- people's signed commands in the log ---------------------------------------------------

REFUSED_COMMAND = "CommandRefused"  # carries what was refused: its signature is not expected to hold

# The events a person's command causes: the command subject that must have been signed, and the
# fields the event and the command both name, which must agree, so a genuine signature cannot be
# carried over to an event it did not cause.
SIGNED_CAUSES: dict[str, tuple[str, tuple[str, ...]]] = {
    "FreezeDeclared": (subjects.CMD_FREEZE, ("environment", "reason")),
    "FreezeLifted": (subjects.CMD_LIFT_FREEZE, ("freeze_id",)),
    "ReleaseResumed": (subjects.CMD_RESUME_RELEASE, ("release_id", "comment")),
    "ReleasePaused": (subjects.CMD_PAUSE_RELEASE, ("release_id", "reason")),
    "ReleasePromoted": (subjects.CMD_PROMOTE_RELEASE, ("release_id", "comment")),
    "RollbackRequested": (subjects.CMD_ABORT_RELEASE, ("release_id",)),
    "ChangeRecordCreated": (subjects.CMD_CREATE_CHANGE, ("summary", "risk")),
    "ChangeRecordApproved": (subjects.CMD_APPROVE_CHANGE, ("number", "comment")),
    "IncidentOpened": (subjects.CMD_OPEN_INCIDENT, ("environment", "severity", "summary")),
    "IncidentResolved": (subjects.CMD_RESOLVE_INCIDENT, ("incident_id",)),
    "ApprovalRecorded": (subjects.CMD_APPROVE, ("release_id", "comment")),
    "PolicyReloaded": (subjects.CMD_RELOAD_POLICY, ("reason",)),
    "DriftDetected": (subjects.CMD_CHECK_DRIFT, ("environment",)),
    "DriftReconciled": (subjects.CMD_CHECK_DRIFT, ("environment",)),
    "ReleaseRejected": (subjects.CMD_REJECT, ("release_id", "comment")),
    "PostImplementationReviewRecorded": (subjects.CMD_RECORD_PIR, ("release_id", "summary", "actions", "risk_factors")),
    "FlagChanged": (subjects.CMD_CHANGE_FLAG, ("flag", "environment", "percent")),
}


def command_mismatch(event: Payload, subject: str, command: Payload) -> str | None:
    """Why the signed command an event carries is not the command that caused it; None when it is."""
    kind = str(event.get("type"))
    if kind not in SIGNED_CAUSES:
        return f"{kind} is not caused by a person's command, yet carries one"
    expected, shared = SIGNED_CAUSES[kind]
    # A command about one release may be addressed to its team and service: <subject>.<team>.<service>.
    addressed = subject.startswith(expected + ".") and len(subject.split(".")) == len(expected.split(".")) + 2
    if subject != expected and not addressed:
        return f"a {kind} carries a command signed for {subject}, not {expected}"
    if addressed and subject.split(".")[-1] != event.get("service"):
        return f"a {kind} of service {event.get('service')} carries a command addressed to {subject}"
    for name in shared:
        if command.get(name) != event.get(name):
            return f"the signed command names {name} {command.get(name)!r}, the event {event.get(name)!r}"
    return None


@dataclass(frozen=True)
class UnvouchedCommand:
    seq: int
    event_id: str
    type: str
    reason: str


def unvouched_commands(records: Sequence[ChainRecord],
                       check: Callable[[Payload], str | None]) -> tuple[int, list[UnvouchedCommand]]:
    """How many logged events carry a person's signed command, and those whose signature does not vouch for them.

    `check` says what is wrong with one event's signed command (None when it holds).
    """
    checked, failed = 0, []
    for seq, payload, _, _ in records:
        if '"signed_command"' not in payload:  # most records name none: not worth parsing (`audit verify` at scale)
            continue
        event = json.loads(payload)
        if not isinstance(event, dict) or event.get("signed_command") is None or event.get("type") == REFUSED_COMMAND:
            continue
        checked += 1
        if (problem := check(event)) is not None:
            failed.append(UnvouchedCommand(seq, str(event.get("event_id")), str(event.get("type")), problem))
    return checked, failed


# --- what the log cannot vouch for ----------------------------------------------------------

FLAG_REASON_MAX = 2000
# How far ahead of the collector's clock an event may say it happened: clocks of different hosts disagree
# by seconds, not minutes. Anything further ahead would count towards windows that have not started yet.
FUTURE_TOLERANCE = timedelta(minutes=5)
UNTYPED = "unknown"


def flag_reason(payload: Payload, subject: str, declared: Mapping[str, type[BaseModel]]) -> str | None:
    """Why a logged event is not what slipway's contracts say it is, or None when it is.

    `declared` maps event type names to their models with a `subject` (contracts.envelope.Event.registry).
    Such events are kept in the chain, because the log records what was sent, but flagged.
    """
    kind = str(payload.get("type") or UNTYPED)
    model = declared.get(kind)
    if model is None:
        known = "no type given" if kind == UNTYPED else f"type {kind!r} is not a declared event type"
        return f"{known}: nobody promised to send it, and no reader knows it"
    expected = str(getattr(model, "subject", ""))
    if not _subject_matches(expected, subject):
        return f"a {kind} belongs on {expected}, it arrived on {subject}"
    try:
        model.model_validate(payload)
    except ValidationError as invalid:
        errors = invalid.errors(include_url=False)
        problems = "; ".join(f"{'.'.join(str(part) for part in e['loc']) or '(body)'}: {e['msg']}" for e in errors)
        return f"does not validate as {kind}: {problems}"[:FLAG_REASON_MAX]
    return None


def future_reason(occurred_at: datetime, received_at: datetime, tolerance: timedelta = FUTURE_TOLERANCE) -> str | None:
    """Why an event that says it happened after it reached the collector cannot be counted, or None.

    `received_at` is the collector's own clock when it read the event, not a time the event carries.
    """
    ahead = occurred_at - received_at
    if ahead <= tolerance:
        return None
    return (f"occurred_at {occurred_at.isoformat()} is {human_duration(ahead.total_seconds())} after the collector "
            f"received it ({received_at.isoformat()}); more than {human_duration(tolerance.total_seconds())} of "
            "clock skew is not believed")


def _subject_matches(template: str, subject: str) -> bool:
    return _subject_pattern(template).fullmatch(subject) is not None


@functools.cache  # a few dozen declared subjects, asked once per logged event
def _subject_pattern(template: str) -> re.Pattern[str]:
    # Templated subjects (slipway.alert.{severity}.{team}.{service}) match one token per parameter.
    return re.compile(re.sub(r"\\{\w+\\}", r"[^.]+", re.escape(template)))


# --- reading payloads ------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """An ISO timestamp from a payload; naive times are UTC, unreadable ones are None."""
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def matching(events: Iterable[Payload], service: str | None = None, environment: str | None = None) -> list[Payload]:
    """Events of one service and/or environment; None matches every value."""
    return [
        e
        for e in events
        if (service is None or e.get("service") == service)
        and (environment is None or e.get("environment") == environment)
    ]


def _timed(events: Iterable[Payload]) -> list[tuple[datetime, Payload]]:
    # Order by when things happened, not when they reached the log: the events and alerts streams
    # are consumed independently. sorted() is stable, so equal times keep log order.
    pairs = [(at, e) for e in events if (at := parse_time(e.get("occurred_at"))) is not None]
    return sorted(pairs, key=lambda pair: pair[0])


def _by_release(timed: Iterable[tuple[datetime, Payload]]) -> dict[str, list[tuple[datetime, Payload]]]:
    releases: dict[str, list[tuple[datetime, Payload]]] = defaultdict(list)
    for at, e in timed:
        # Events not about a release (freezes, incidents, policy, refusals) name none since schema version 2.
        if release_id := e.get("release_id"):
            releases[str(release_id)].append((at, e))
    return releases


# --- DORA ------------------------------------------------------------------------------------

FAILURE_TYPES = frozenset({"RollbackCompleted", "DeploymentFailed"})
# The only event types release_facts reads: an event of another type never changes a release's facts.
FACT_TYPES = frozenset({"ReleaseRequested", "DeploymentStarted", "StepStarted", "DeploymentSucceeded", *FAILURE_TYPES})


@dataclass(frozen=True)
class Duration:
    release_id: str
    seconds: float


@dataclass(frozen=True)
class DoraReport:
    window_days: int
    deployments: int
    deployment_frequency_per_day: float
    lead_times: tuple[Duration, ...]
    lead_time_median_s: float | None
    changes: int
    failed_changes: int
    change_failure_rate: float
    restores: tuple[Duration, ...]
    time_to_restore_median_s: float | None

    def as_data(self) -> dict[str, Any]:
        return {
            "window_days": self.window_days,
            "deployments": self.deployments,
            "deployment_frequency_per_day": self.deployment_frequency_per_day,
            "lead_time_median_s": self.lead_time_median_s,
            "lead_times": [{"release_id": d.release_id, "seconds": d.seconds} for d in self.lead_times],
            "changes": self.changes,
            "failed_changes": self.failed_changes,
            "change_failure_rate": self.change_failure_rate,
            "time_to_restore_median_s": self.time_to_restore_median_s,
            "restores": [{"release_id": d.release_id, "seconds": d.seconds} for d in self.restores],
        }

    def summary(self, service: str | None = None, environment: str | None = None) -> str:
        return dora_summary(self, service, environment)


def dora_summary(figures: Any, service: str | None = None, environment: str | None = None) -> str:
    """One line of DORA figures; `figures` is a DoraReport or a reply with the same fields."""
    scope = f"{service or 'all services'} in {environment or 'all environments'}"
    return (
        f"{scope}, last {figures.window_days} days: "
        f"{figures.deployments} deployments ({figures.deployment_frequency_per_day:.2f}/day), "
        f"lead time median {human_duration(figures.lead_time_median_s)}, "
        f"change failure rate {figures.change_failure_rate:.0%} ({figures.failed_changes} of {figures.changes}), "
        f"time to restore median {human_duration(figures.time_to_restore_median_s)}"
    )


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile by linear interpolation between closest ranks (p=50 is the median)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Fact:
    """What one release adds to DORA: a deployment (with its lead time), a change (failed or not), a restore."""

    kind: str  # DEPLOYMENT, CHANGE or RESTORE
    at: datetime
    seconds: float | None = None  # lead time of a deployment, time to restore; None when it cannot be told
    failed: bool = False  # a change that ended in a rollback or a failed deployment


DEPLOYMENT, CHANGE, RESTORE = "deployment", "change", "restore"


def release_facts(history: Iterable[Payload]) -> list[Fact]:
    """The DORA facts of one release's logged events, in the order they happened.

    Every fact depends on the release's events only, so a projection can recompute them whenever
    one of its events is logged, and a rebuild from the log gives the same facts.
    """
    timed = _timed(history)
    facts = []
    for at, e in timed:
        if e.get("type") == "DeploymentSucceeded":
            committed = _commit_time(timed, before=at)
            facts.append(Fact(DEPLOYMENT, at, (at - committed).total_seconds() if committed else None))
    started = next((at for at, e in timed if e.get("type") == "DeploymentStarted"), None)
    if started is not None:
        failed = any(e.get("type") in FAILURE_TYPES and at >= started for at, e in timed)
        facts.append(Fact(CHANGE, started, failed=failed))
    for at, e in timed:
        if e.get("type") != "RollbackCompleted":
            continue
        # The bad version began hurting users when it first took traffic.
        first_step = next((t for t, x in timed if x.get("type") == "StepStarted" and t <= at), None)
        if first_step is not None:
            facts.append(Fact(RESTORE, at, (at - first_step).total_seconds()))
    return sorted(facts, key=lambda fact: fact.at)


def window_days(now: datetime, days: int) -> tuple[date, date]:
    """The whole UTC days a DORA window covers: from the day `days` days ago to today, both included."""
    today = now.astimezone(UTC).date()
    return (now - timedelta(days=days)).astimezone(UTC).date(), today


def dora(
    events: Iterable[Payload], now: datetime, days: int, *, service: str | None = None, environment: str | None = None
) -> DoraReport:
    """The four DORA keys over the window's days, from the logged events of the matching releases.

    The rule over the whole log; the collector answers from projections of the same facts, and the
    tests hold the two to the same figures."""
    first, last = window_days(now, days)
    facts = [
        (release_id, fact)
        for release_id, history in _by_release(_timed(matching(events, service, environment))).items()
        for fact in release_facts(e for _, e in history)
        if first <= fact.at.date() <= last
    ]
    facts.sort(key=lambda pair: pair[1].at)
    succeeded = [(r, f) for r, f in facts if f.kind == DEPLOYMENT]
    changes = [f for _, f in facts if f.kind == CHANGE]
    lead_times = [Duration(r, f.seconds) for r, f in succeeded if f.seconds is not None]
    restores = [Duration(r, f.seconds) for r, f in facts if f.kind == RESTORE and f.seconds is not None]
    failed = sum(1 for f in changes if f.failed)
    return DoraReport(
        window_days=days,
        deployments=len(succeeded),
        deployment_frequency_per_day=len(succeeded) / days,
        lead_times=tuple(lead_times),
        lead_time_median_s=_median(lead_times),
        changes=len(changes),
        failed_changes=failed,
        change_failure_rate=failed / len(changes) if changes else 0.0,
        restores=tuple(restores),
        time_to_restore_median_s=_median(restores),
    )


def _commit_time(history: Sequence[tuple[datetime, Payload]], before: datetime) -> datetime | None:
    """The commit time of the change: the deployer's DeploymentStarted, else the CI's ReleaseRequested."""
    for at, e in reversed(history):
        if e.get("type") == "DeploymentStarted" and at <= before:
            committed = parse_time(e.get("committed_at"))
            if committed is not None:
                return committed
    for _, e in history:
        commit = e.get("commit")
        if e.get("type") == "ReleaseRequested" and isinstance(commit, Mapping):
            committed = parse_time(commit.get("committed_at"))
            if committed is not None:
                return committed
    return None


def _median(durations: Sequence[Duration]) -> float | None:
    return median(d.seconds for d in durations) if durations else None


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    remaining = int(round(abs(seconds)))
    sign = "-" if seconds < 0 else ""
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    if remaining or not parts:
        parts.append(f"{remaining}s")
    return sign + "".join(parts[:2])


# --- release states --------------------------------------------------------------------------

STATES = {
    "ReleaseRequested": "requested",
    "ReleaseRequestRejected": "rejected",
    "ArtifactVerified": "verified",
    "ArtifactRejected": "rejected",
    "ReleaseApproved": "approved",
    "ReleaseBlocked": "blocked",
    "ReleaseRejected": "rejected by a person",
    "ReleaseExpired": "expired",
    "DeploymentStarted": "deploying",
    "RollbackRequested": "rolling back",
    "RollbackCompleted": "rolled back",
    "DeploymentSucceeded": "succeeded",
    "DeploymentFailed": "failed",
}
# A release ends with these: an incident's pause does not outlive them.
ENDS = frozenset({"DeploymentSucceeded", "DeploymentFailed", "RollbackRequested", "RollbackCompleted"})
# Events whose reason explains the state they lead to (a passing verdict's reasons explain nothing).
REASONED = frozenset(
    {"ReleaseRequestRejected", "ArtifactRejected", "ReleaseBlocked", "DeploymentFailed", "RollbackRequested",
     "RollbackCompleted", "StepVerdict", "ReleaseWaiting", "ReleaseExpired", "RolloutPaused"}
)


@dataclass(frozen=True)
class ReleaseState:
    release_id: str
    service: str
    environment: str
    version: str
    state: str
    last_event: str
    updated_at: datetime
    reason: str
    events: int
    team: str | None = None  # as the release's events name it (a request, a step); None when none does


def release_states(events: Iterable[Payload]) -> list[ReleaseState]:
    """Where each release stands, newest first; ids only ever named by non-release events are left out."""
    states = []
    for release_id, history in _by_release(_timed(events)).items():
        significant = [e for e in _own_chain([e for _, e in history]) if state_of(e) is not None]
        if not significant:
            continue
        first, (last_at, last) = history[0][1], history[-1]
        latest, pause = significant[-1], _open_pause(significant)
        state, reason = state_of(latest) or "", reason_of(latest)
        if pause is not None and pause is not latest:
            # A verdict after the pause does not end it: the release holds there until the incident is resolved.
            state, reason = f"{state_of(pause)}; {state}", "; ".join(filter(None, (reason_of(pause), reason)))
        states.append(
            ReleaseState(
                release_id=release_id,
                service=str(first.get("service", "")),
                environment=str(first.get("environment", "")),
                version=_version(significant),
                state=state,
                last_event=str(last.get("type", "")),
                updated_at=last_at,
                reason=reason,
                events=len(history),
                team=next((e["team"] for _, e in history if isinstance(e.get("team"), str)), None),
            )
        )
    return sorted(states, key=lambda s: s.updated_at, reverse=True)


def _open_pause(history: Sequence[Payload]) -> Payload | None:
    """The RolloutPaused still in force at the end of `history`: not resumed, and the release not ended."""
    pause = None
    for event in history:
        kind = event.get("type")
        if kind == "RolloutPaused":
            pause = event
        elif kind == "RolloutResumed" or kind in ENDS:
            pause = None
    return pause


def _own_chain(history: Sequence[Payload]) -> list[Payload]:
    """The events that move a release: a CI retry of it (a later ReleaseRequested) and the rejection of a
    request that reused its id with another specification are about those requests, not this release."""
    first = next((e for e in history if e.get("type") == "ReleaseRequested"), None)
    if first is None:
        return list(history)
    return [
        e for e in history
        if not (e.get("type") == "ReleaseRequested" and e is not first)
        and not (e.get("type") == "ReleaseRequestRejected" and e.get("causation_id") != first.get("event_id"))
    ]


def state_of(event: Payload) -> str | None:
    """A readable state for a release-path event; None for events that do not move a release (alerts, freezes)."""
    kind = event.get("type")
    if kind == "StepStarted":
        return f"canary step {_step(event)}/{event.get('step_count', '?')} at {event.get('weight', '?')}%"
    if kind == "StepVerdict":
        if event.get("verdict") == "inconclusive":
            return f"held at step {_step(event)}: waiting for a person"
        return f"step {_step(event)} verdict {event.get('verdict', '?')}"
    if kind == "ReleaseWaiting":
        # What it waits for, in the gatekeeper's words: approvals still missing, a window, an incident, a slot.
        waits = str(event.get("waiting_for", "waiting")).replace("-", " ")
        missing = event.get("outstanding") or []
        expected = f" (expected to start at {event['until']})" if event.get("until") else ""
        return f"{waits}{expected}" + (f": needs {'; '.join(map(str, missing))}" if missing else "")
    if kind == "ApprovalRecorded":
        return f"approval by {event.get('actor', '?')} recorded"
    if kind == "ReleaseRejected":
        return f"rejected by {event.get('actor', '?')}: {event.get('comment', '')}"
    if kind == "ReleaseResumed":
        return f"step {_step(event)} resumed by {event.get('actor', '?')}: {event.get('comment', '')}"
    if kind == "ReleasePaused":
        return f"paused at step {_step(event)} by {event.get('actor', '?')}: {event.get('reason', '')}"
    if kind == "ReleasePromoted":
        return f"promoted at step {_step(event)} by {event.get('actor', '?')}: {event.get('comment', '')}"
    if kind == "RolloutPaused":
        return f"paused for incident {event.get('incident_id', '?')}: holds its weights after the current step"
    if kind == "RolloutResumed":
        return f"resumed: {event.get('reason', '')}"
    return STATES.get(str(kind))


def reason_of(event: Payload) -> str:
    if event.get("type") not in REASONED or event.get("verdict") == "pass":
        return ""
    parts: list[str] = []
    for key in ("reason", "root_cause", "summary"):
        if isinstance(event.get(key), str) and event[key]:
            parts.append(event[key])
    reasons = event.get("reasons")
    if isinstance(reasons, list):
        parts.extend(str(r) for r in reasons if r)
    return "; ".join(parts)


def _step(event: Payload) -> str:
    index = event.get("step_index")
    # step_index counts from 0 on the wire; people count steps from 1.
    return str(index + 1) if isinstance(index, int) else "?"


def _version(history: Sequence[Payload]) -> str:
    for kind in ("ReleaseRequested", "DeploymentStarted"):
        for e in history:
            if e.get("type") == kind and isinstance(e.get("version"), str):
                return e["version"]
    return ""
