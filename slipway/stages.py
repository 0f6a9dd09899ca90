"""A release as pipeline stages with their timings, from its events (pure): verification, governance, the
deployment's start, the smoke test of a new pool before it gets traffic, the pilot group's phase, each traffic step
and its analysis (named by its region in a regional release, with each wave and the bake between two waves), a
rollback, the end. `slipway status --release-id` shows them above the events."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from slipway.timeline import Event, event_time, in_time_order, seconds_between

VERIFIED, REFUSED_ARTIFACT = "ArtifactVerified", ("ArtifactRejected", "ReleaseRequestRejected")
DECIDED = {"ReleaseApproved": "approved", "ReleaseBlocked": "blocked", "ReleaseRejected": "rejected",
           "ReleaseExpired": "expired"}
ENDED = {"DeploymentSucceeded": "succeeded", "DeploymentFailed": "failed", "RollbackCompleted": "rolled back"}


@dataclass(frozen=True)
class Stage:
    name: str
    started: datetime | None
    ended: datetime | None
    outcome: str  # passed, failed, waiting, running, ...
    detail: str = ""

    @property
    def seconds(self) -> float | None:
        return seconds_between(self.started, self.ended)


def stages(events: Iterable[Event]) -> list[Stage]:
    timeline = in_time_order(events)
    found: list[Stage] = []
    for build in (_verification, _governance, _start, _smoke_tests, _steps, _waves, _rollback, _end):
        found += build(timeline)
    return found


def _first(timeline: list[Event], *kinds: str) -> Event | None:
    return next((e for e in timeline if e.get("type") in kinds), None)


def _verification(timeline: list[Event]) -> list[Stage]:
    requested = _first(timeline, "ReleaseRequested")
    done = _first(timeline, VERIFIED, *REFUSED_ARTIFACT)
    if requested is None and done is None:
        return []
    if done is None:
        return [Stage("artifact verification", event_time(requested or {}), None, "running")]
    passed = done.get("type") == VERIFIED
    detail = f"{done.get('size_bytes')} bytes match the digest" if passed else str(done.get("reason") or "")
    return [Stage("artifact verification", event_time(requested or done), event_time(done),
                  "passed" if passed else "failed", detail)]


def _governance(timeline: list[Event]) -> list[Stage]:
    verified = _first(timeline, VERIFIED)
    if verified is None:
        return []
    decided = _first(timeline, *DECIDED)
    waits = list(dict.fromkeys(str(e.get("waiting_for")) for e in timeline if e.get("type") == "ReleaseWaiting"))
    approvals = sum(1 for e in timeline if e.get("type") == "ApprovalRecorded")
    detail = "; ".join(filter(None, (f"waited: {', '.join(waits)}" if waits else "",
                                     f"{approvals} approval(s)" if approvals else "")))
    if decided is None:
        return [Stage("governance", event_time(verified), None, "waiting", detail)]
    return [Stage("governance", event_time(verified), event_time(decided), DECIDED[str(decided["type"])], detail)]


def _start(timeline: list[Event]) -> list[Stage]:
    approved, started = _first(timeline, "ReleaseApproved"), _first(timeline, "DeploymentStarted")
    if approved is None or started is None:
        return []
    detail = f"{started.get('strategy')} of {started.get('version')} (stable {started.get('stable_version') or 'none'})"
    if started.get("scope") not in (None, "full"):
        detail += f", {started['scope']} scope"
    if instances := started.get("instances"):
        sizes = ", ".join(f"{where} {count}" for where, count in instances.items())
        detail += f", instances {sizes} (from the {started.get('instances_from')})"
    return [Stage("new version started", event_time(approved), event_time(started), "passed", detail)]


def _smoke_tests(timeline: list[Event]) -> list[Stage]:
    found = []
    for done in (e for e in timeline if e.get("type") == "SmokeTestCompleted"):
        started = event_time({"occurred_at": done.get("started_at")}) or event_time(done)
        detail = str(done.get("problem") or "") or f"requests pinned to {done.get('version')} answered"
        found.append(Stage(f"smoke test of {done.get('version')}", started, event_time(done),
                           str(done.get("outcome")), detail))
    return found


def _verdict_of(timeline: list[Event], started: Event) -> Event | None:
    return next((e for e in timeline if e.get("type") == "StepVerdict" and e.get("step_index") == started.get(
        "step_index") and e.get("deployment_id") == started.get("deployment_id")), None)


def _steps(timeline: list[Event]) -> list[Stage]:
    found = []
    for started in (e for e in timeline if e.get("type") == "StepStarted"):
        index = started.get("step_index")
        verdict = _verdict_of(timeline, started)
        name = f"step {int(index or 0) + 1}/{started.get('step_count', '?')}: {started.get('weight')}%"
        if started.get("pilot"):
            name += " (pilot group)"
        if started.get("region"):
            name += f" in {started['region']}"
        if verdict is None:
            found.append(Stage(name, event_time(started), None, "analysing"))
            continue
        detail = (f"error rate {float(verdict.get('error_rate') or 0) * 100:.1f}%, "
                  f"p99 {float(verdict.get('p99_latency_ms') or 0):.0f} ms, {verdict.get('requests')} requests")
        found.append(Stage(name, event_time(started), event_time(verdict), str(verdict.get("verdict")), detail))
    return found


def _waves(timeline: list[Event]) -> list[Stage]:
    """A regional release's waves (first step started to last verdict in a region) and the bakes between them."""
    by_region: dict[str, list[Event]] = {}
    for started in (e for e in timeline if e.get("type") == "StepStarted" and e.get("region")):
        by_region.setdefault(str(started["region"]), []).append(started)
    found: list[Stage] = []
    passed_at: datetime | None = None
    for region, steps in by_region.items():
        if passed_at is not None:
            found.append(Stage(f"bake before {region}", passed_at, event_time(steps[0]), "passed"))
        verdicts = [_verdict_of(timeline, step) for step in steps]
        last = verdicts[-1]
        failed = next((v for v in verdicts if v is not None and v.get("verdict") == "fail"), None)
        outcome = "fail" if failed else "analysing" if last is None else str(last.get("verdict"))
        ended = event_time(failed or last) if (failed or last) else None
        found.append(Stage(f"wave {region}", event_time(steps[0]), ended, outcome, f"{len(steps)} step(s)"))
        passed_at = ended if outcome in ("pass", "marginal") else None
    return found


def _rollback(timeline: list[Event]) -> list[Stage]:
    asked = _first(timeline, "RollbackRequested")
    if asked is None:
        return []
    done = _first(timeline, "RollbackCompleted")
    detail = f"{asked.get('bad_version')} -> {asked.get('restore_version') or 'nothing'}"
    if done is not None and done.get("regions"):
        detail += f" in {', '.join(done['regions'])}"
    return [Stage("rollback", event_time(asked), event_time(done) if done else None,
                  "restored" if done else "running", detail)]


def _end(timeline: list[Event]) -> list[Stage]:
    requested = _first(timeline, "ReleaseRequested")
    ended = next((e for e in reversed(timeline) if e.get("type") in ENDED), None)
    if requested is None or ended is None:
        return []
    return [Stage("request to end", event_time(requested), event_time(ended), ENDED[str(ended["type"])])]
