"""The events the gatekeeper, health-watcher and rollback-controller send the deployer, built for tests."""

from datetime import UTC, datetime

from contracts.events import ReleaseApproved, ReleaseRequested, RollbackRequested, StepStarted, StepVerdict
from contracts.release import ReleaseSpec


def approve(request: ReleaseRequested) -> ReleaseApproved:
    return ReleaseApproved.caused_by(
        request, "gatekeeper", release=ReleaseSpec.model_validate(request.model_dump()), reasons=["approved by test"]
    )


def verdict_for(step: StepStarted, verdict: str = "pass") -> StepVerdict:
    return StepVerdict.caused_by(
        step, "health-watcher", deployment_id=step.deployment_id, step_index=step.step_index, version=step.version,
        stable_version=step.stable_version, team=step.team, verdict=verdict, reasons=[f"{verdict} by test"],
        requests=20, errors=0, error_rate=0.0, p99_latency_ms=5.0,
    )


def rollback_of(step: StepStarted, reason: str = "error rate 50.0% exceeds 5.0%") -> RollbackRequested:
    return RollbackRequested.caused_by(
        step, "rollback-controller", deployment_id=step.deployment_id, bad_version=step.version,
        restore_version=step.stable_version, reason=reason, failed_at=datetime.now(UTC),
    )
