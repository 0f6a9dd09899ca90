"""A release's events as pipeline stages with their timings."""

from slipway.stages import stages
from tests.unit.test_postmortem import TIMELINE, ev


def test_a_rolled_back_canary_as_stages() -> None:
    found = [(s.name, s.outcome, s.seconds) for s in stages(reversed(TIMELINE))]
    assert found == [
        ("artifact verification", "passed", 0.2),
        ("governance", "approved", 0.1),
        ("new version started", "passed", 0.7),
        ("step 1/?: 10%", "fail", 3.0),
        ("rollback", "restored", 0.4),
        ("request to end", "rolled back", 5.0),
    ]


def test_a_release_still_waiting_shows_what_it_waited_for_and_no_end() -> None:
    waiting = [ev("ReleaseRequested", 0), ev("ArtifactVerified", 0.5, size_bytes=10),
               ev("ReleaseWaiting", 1, waiting_for="pending-approval"),
               ev("ApprovalRecorded", 2, actor="person:a"), ev("ReleaseWaiting", 3, waiting_for="queued-for-window")]
    [verification, governance] = stages(waiting)
    assert (verification.outcome, verification.detail) == ("passed", "10 bytes match the digest")
    assert (governance.outcome, governance.ended, governance.detail) == (
        "waiting", None, "waited: pending-approval, queued-for-window; 1 approval(s)")


def test_a_rejected_artifact_ends_at_verification() -> None:
    [only] = stages([ev("ReleaseRequested", 0), ev("ArtifactRejected", 1.5, reason="digest mismatch")])
    assert (only.name, only.outcome, only.seconds, only.detail) == ("artifact verification", "failed", 1.5,
                                                                    "digest mismatch")


def test_smoke_tests_and_a_step_still_in_analysis() -> None:
    events = [ev("ReleaseRequested", 0), ev("ArtifactVerified", 0.1), ev("ReleaseApproved", 0.2),
              ev("DeploymentStarted", 0.5, strategy="blue-green"), ev("SmokeTestsStarted", 0.6),
              ev("SmokeTestsPassed", 0.9), ev("StepStarted", 1.0, step_index=0, step_count=1, weight=100)]
    names = [(s.name, s.outcome) for s in stages(events)]
    assert names[-2:] == [("smoke tests", "passed"), ("step 1/1: 100%", "analysing")]
