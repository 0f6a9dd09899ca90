"""Shared pieces of the crash-recovery tests: kill plans, release outcomes, the recovery table.

A kill plan is a crash point (libs/faults.py) for one release: the named service SIGKILLs itself
at that point once, the test starts it again the way `slipway up` does (`Stack.revive_dead`),
and then checks what a user cares about: the release reached exactly one terminal state, no
deployment action ran twice, nothing was left running that should not be, and the audit trail
has every event. The time from the kill to the release's next new event is recorded.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libs.faults import CrashPoint
from tests.support.watch import EventWatcher

TERMINAL = {"DeploymentSucceeded", "RollbackCompleted", "DeploymentFailed", "ReleaseBlocked", "ArtifactRejected"}


@dataclass(frozen=True)
class Kill:
    service: str  # the process, as the supervisor names it
    stage: str  # libs.faults.STAGES
    consumer: str  # the durable (stage "handled") or inbox consumer (stage "committed") that crashes
    faulty: bool = False  # ship a faulty version, so the rollback path runs

    @property
    def label(self) -> str:
        return f"{self.service} {self.stage} {self.consumer}" + (" (faulty)" if self.faulty else "")


KILLS = (
    Kill("artifact_verifier", "handled", "artifact-verifier"),
    Kill("artifact_verifier", "committed", "artifact-verifier"),
    Kill("gatekeeper", "handled", "gatekeeper"),
    Kill("gatekeeper", "committed", "gatekeeper"),
    Kill("deployer", "handled", "deployer-approved"),
    Kill("deployer", "committed", "deployer-approved"),
    Kill("deployer", "spawned", "local-driver"),
    Kill("deployer", "handled", "deployer-verdicts"),
    Kill("deployer", "committed", "deployer-verdicts"),
    Kill("deployer", "handled", "deployer-rollbacks", faulty=True),
    Kill("deployer", "committed", "deployer-rollbacks", faulty=True),
    Kill("health_watcher", "handled", "health-watcher"),
    Kill("health_watcher", "committed", "health-watcher"),
    Kill("rollback_controller", "handled", "rollback-controller-verdicts", faulty=True),
    Kill("rollback_controller", "committed", "rollback-controller-verdicts", faulty=True),
    Kill("rollback_controller", "committed", "rollback-controller-completions", faulty=True),
    Kill("metrics_collector", "handled", "metrics-collector-events"),
    Kill("metrics_collector", "committed", "metrics-collector"),
)


def rounds(plans: dict[str, Kill]) -> list[list[str]]:
    """Release ids grouped so that each round kills every service at most once: a round runs concurrently."""
    grouped: list[list[str]] = []
    for release_id, kill in plans.items():
        for group in grouped:
            if all(plans[other].service != kill.service for other in group):
                group.append(release_id)
                break
        else:
            grouped.append([release_id])
    return grouped


def kill_key(kill: Kill, release_id: str, service: str = "", version: str = "") -> str:
    """What a crash point is keyed on: the release, or for `spawned` the app process the driver starts."""
    if kill.stage != "spawned":
        return release_id
    return ".".join(re.sub(r"[^A-Za-z0-9_-]", "_", part) for part in ("app", service, "prod", version))


def crash_spec(plans: dict[str, tuple[Kill, str, str]]) -> str:
    """`plans`: release id -> (kill, service, version)."""
    return ",".join(f"{kill.stage}:{kill.consumer}:{kill_key(kill, rid, service, version)}"
                    for rid, (kill, service, version) in plans.items())


def killed_at(data_dir: Path, kill: Kill, key: str) -> float | None:
    """Wall-clock time of the kill: the marker the crash point writes just before SIGKILL."""
    marker = data_dir / "crash-points" / CrashPoint(kill.stage, kill.consumer, key).marker
    return marker.stat().st_mtime if marker.exists() else None


def release_events(watcher: EventWatcher, release_id: str) -> list[tuple[float, str, dict[str, Any]]]:
    """Distinct events and alerts of one release as (arrival, subject, body), first arrival of each id."""
    first: dict[str, tuple[float, str, dict[str, Any]]] = {}
    for arrival, (subject, body) in zip(watcher.arrived, watcher.seen):
        if subject.startswith(("slipway.evt.", "slipway.alert.")) and body.get("release_id") == release_id:
            first.setdefault(body["event_id"], (arrival, subject, body))
    return sorted(first.values(), key=lambda item: item[0])


@dataclass
class Outcome:
    kill: Kill
    release_id: str
    killed: float | None = None
    moved: float | None = None
    terminal: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def recovery_s(self) -> float | None:
        return None if self.killed is None or self.moved is None else self.moved - self.killed


def judge(watcher: EventWatcher, kill: Kill, release_id: str, key: str, data_dir: Path) -> Outcome:
    outcome = Outcome(kill, release_id, killed=killed_at(data_dir, kill, key))
    events = release_events(watcher, release_id)
    outcome.terminal = [body["type"] for _, _, body in events if body.get("type") in TERMINAL]
    expected = "RollbackCompleted" if kill.faulty else "DeploymentSucceeded"
    if outcome.killed is None:
        outcome.problems.append("the crash point never fired")
    else:
        outcome.moved = next((arrival for arrival, _, _ in events if arrival > outcome.killed), None)
    if outcome.terminal != [expected]:
        outcome.problems.append(f"terminal events {outcome.terminal}, expected exactly [{expected}]")
    counts: dict[tuple[str, int | None], int] = {}
    for _, _, body in events:
        key = (body["type"], body.get("step_index"))
        counts[key] = counts.get(key, 0) + 1
    for (kind, step), count in counts.items():
        if kind in {"DeploymentStarted", "StepStarted", "StepVerdict", "RollbackRequested", "RollbackCompleted",
                    "ArtifactVerified", "ReleaseApproved"} and count > 1:
            outcome.problems.append(f"{kind}{'' if step is None else f' step {step}'} happened {count} times")
    return outcome


def table(outcomes: list[Outcome]) -> str:
    lines = [f"{'kill point':58} {'kill -> release moves again':>28}  outcome"]
    for o in outcomes:
        took = "(nothing follows)" if o.recovery_s is None else f"{o.recovery_s:.2f} s"
        lines.append(f"{o.kill.label:58} {took:>28}  {'; '.join(o.problems) or ','.join(o.terminal)}")
    return "\n".join(lines)

