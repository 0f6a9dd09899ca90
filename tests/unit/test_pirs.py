"""Which deployments owe a post-implementation review, what a review feeds the risk score, and why a record is refused."""

from datetime import UTC, datetime, timedelta

from services.gatekeeper.pirs import Deployment, Owed, Review, latest_risk_factors, owed_reviews, record_refusal
from services.gatekeeper.policy import ClassesPolicy, ClassPolicy

T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)
CLASSES = ClassesPolicy(emergency=ClassPolicy(pir_owed=True), pir_after_failure_in=["prod"])


def deployment(release_id: str, outcome: str = "failed", environment: str = "prod", release_class: str = "standard",
               minutes: int = 0) -> Deployment:
    return Deployment(release_id, "shop", environment, release_class, outcome, T0 + timedelta(minutes=minutes))


def review(release_id: str, service: str, factors: tuple[str, ...], minutes: int) -> Review:
    return Review(release_id, service, "prod", "s", "a", factors, "failed", "person:sam", T0 + timedelta(minutes=minutes))


def test_a_failure_in_production_owes_a_review_a_failure_elsewhere_or_a_success_does_not() -> None:
    found = owed_reviews([deployment("r1"), deployment("r2", environment="staging"),
                          deployment("r3", outcome="succeeded"), deployment("r4", outcome="in-flight")], set(), CLASSES)
    assert found == [Owed("r1", "shop", "prod", "failed or rolled back in prod", T0)]


def test_an_approved_emergency_release_owes_one_whatever_its_outcome_and_environment() -> None:
    found = owed_reviews([deployment("e1", outcome="in-flight", environment="staging", release_class="emergency"),
                          deployment("e2", outcome="succeeded", release_class="emergency", minutes=-5)], set(), CLASSES)
    assert [(o.release_id, o.reason) for o in found] == [("e2", "emergency release"), ("e1", "emergency release")]


def test_a_recorded_review_is_owed_no_longer_and_policy_names_the_environments() -> None:
    assert owed_reviews([deployment("r1")], {"r1"}, CLASSES) == []
    staging_too = ClassesPolicy(pir_after_failure_in=["prod", "staging"])
    assert [o.release_id for o in owed_reviews([deployment("r2", environment="staging")], set(), staging_too)] == ["r2"]
    assert owed_reviews([deployment("e1", release_class="emergency", outcome="succeeded")], set(),
                        ClassesPolicy()) == []  # no class owes one unless policy says so


def test_the_latest_review_of_a_service_gives_its_risk_factors() -> None:
    factors = latest_risk_factors([review("r1", "shop", ("no canary",), 1), review("r2", "shop", ("untested migration",
                                   "friday deploy"), 5), review("r3", "cart", (), 2)])
    assert factors == {"shop": ("untested migration", "friday deploy")}


def test_a_record_is_refused_for_an_unknown_release_one_that_owes_nothing_and_one_already_reviewed() -> None:
    owed = Owed("r1", "shop", "prod", "failed or rolled back in prod", T0)
    assert record_refusal("r1", True, owed, None) is None
    assert record_refusal("nope", False, None, None) == "no release nope has reached the gatekeeper"
    assert "release r9 owes no post-implementation review" in (record_refusal("r9", True, None, None) or "")
    done = review("r1", "shop", (), 0)
    assert "was already recorded by person:sam" in (record_refusal("r1", True, None, done) or "")


def test_audit_verify_ties_a_recorded_review_to_the_signed_command_that_caused_it() -> None:
    from contracts import subjects
    from contracts.events import PostImplementationReviewRecorded
    from contracts.governance import RecordPir
    from services.metrics_collector.domain import command_mismatch

    command = RecordPir(release_id="r1", summary="s", actions="a", risk_factors=["no canary"]).model_dump(mode="json")
    event = PostImplementationReviewRecorded(release_id="r1", service="shop", environment="prod", summary="s",
                                             actions="a", risk_factors=["no canary"], owed_because="x")
    body = event.model_dump(mode="json")
    assert command_mismatch(body, subjects.CMD_RECORD_PIR, command) is None
    assert command_mismatch({**body, "risk_factors": []}, subjects.CMD_RECORD_PIR, command) == (
        "the signed command names risk_factors ['no canary'], the event []")
