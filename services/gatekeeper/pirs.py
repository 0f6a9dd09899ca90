"""Post-implementation reviews, decided without a database: which deployments owe one, what a review
feeds into the risk score, and why a `pir record` is refused.

A deployment owes a review when it failed (or was rolled back) in an environment policy names
(`classes.pir_after_failure_in`), or when its class always owes one (`classes.<class>.pir_owed`: an
approved emergency release). It owes it until a review of that release is recorded; its service owes
one while any of its deployments does.
"""

from dataclasses import dataclass
from datetime import datetime

from contracts.release import ReleaseClass
from services.gatekeeper.policy import ClassesPolicy

FAILED = "failed"  # workflow_store.FAILED: a failed deployment or a completed rollback


@dataclass(frozen=True)
class Deployment:
    release_id: str
    service: str
    environment: str
    release_class: str
    outcome: str  # in-flight | succeeded | failed
    since: datetime  # when it failed, or when it was approved


@dataclass(frozen=True)
class Review:
    release_id: str
    service: str
    environment: str
    summary: str
    actions: str
    risk_factors: tuple[str, ...]
    owed_because: str
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class Owed:
    release_id: str
    service: str
    environment: str
    reason: str
    since: datetime


def owing_reason(deployment: Deployment, classes: ClassesPolicy) -> str | None:
    """Why this deployment owes a review; None when it does not."""
    if deployment.outcome == FAILED and deployment.environment in classes.pir_after_failure_in:
        return f"failed or rolled back in {deployment.environment}"
    try:
        release_class = ReleaseClass(deployment.release_class)
    except ValueError:  # a class this version does not know owes nothing it cannot name
        return None
    if classes.of(release_class).pir_owed:
        return f"{release_class.value} release"
    return None


def owed_reviews(deployments: list[Deployment], recorded: set[str], classes: ClassesPolicy) -> list[Owed]:
    """The reviews still owed, oldest first."""
    owed = [Owed(d.release_id, d.service, d.environment, reason, d.since) for d in deployments
            if d.release_id not in recorded and (reason := owing_reason(d, classes)) is not None]
    return sorted(owed, key=lambda o: (o.since, o.release_id))


def latest_risk_factors(reviews: list[Review]) -> dict[str, tuple[str, ...]]:
    """Service -> the risk factors its latest review named (a later review replaces what an earlier one said)."""
    latest: dict[str, Review] = {}
    for review in reviews:
        if review.service not in latest or review.recorded_at >= latest[review.service].recorded_at:
            latest[review.service] = review
    return {service: review.risk_factors for service, review in latest.items() if review.risk_factors}


def record_refusal(release_id: str, known: bool, owed: Owed | None, recorded: Review | None) -> str | None:
    """Why a review of `release_id` cannot be recorded now; None when it can."""
    if recorded is not None:
        return (f"a post-implementation review of release {release_id} was already recorded by "
                f"{recorded.recorded_by} at {recorded.recorded_at.isoformat()}")
    if not known:
        return f"no release {release_id} has reached the gatekeeper"
    if owed is None:
        return (f"release {release_id} owes no post-implementation review (only a release that failed or was rolled "
                "back in production, or an approved emergency release, owes one)")
    return None
